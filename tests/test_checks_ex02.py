"""The checks of exercise notebook 02_lenet: right answers pass, stubs are "not attempted",
planted wrong answers fail with a message that says what is wrong."""

import pytest
import torch
from checkhelpers import stub
from icdl import baselines, data
from icdl.checks import ex02_lenet as ex
from icdl.checks.core import Outcome, trace_forward
from icdl.models import lenet
from torch import nn
from torch.nn import functional as F


def correct(q, *answers):
    result = q.evaluate(*answers)
    assert result.outcome is Outcome.CORRECT, result.message
    return result.message


def wrong(q, *answers):
    result = q.evaluate(*answers)
    assert result.outcome is Outcome.INCORRECT, result
    return result.message


def not_attempted(q, *answers):
    assert q.evaluate(*answers).outcome is Outcome.NOT_ATTEMPTED


# --------------------------------------------------------------------- Q1
SHAPES_32 = [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]


def lenet_shapes(size):
    shapes, n = [], size
    for maps, k in ((6, "conv"), (6, "pool"), (16, "conv"), (16, "pool"), (120, "conv")):
        n = n - 4 if k == "conv" else n // 2
        shapes.append((maps, n, n))
    return shapes


def with_rule(conv=lambda n: n - 4, pool=lambda n: n // 2):
    def shapes(size):
        out, n = [], size
        for maps, k in ((6, conv), (6, pool), (16, conv), (16, pool), (120, conv)):
            n = k(n)
            out.append((maps, n, n))
        return out
    return shapes


def test_q1_reference_is_the_real_network():
    """The expected shapes are those of the course's modern LeNet-5 (C5 a 5x5 convolution) at every case size."""
    for size in ex.q1.cases:
        _, records = trace_forward(lenet.LeNet5("modern").features, torch.randn(1, 1, size, size))
        got = [s[1:] for name, m, s in records if not isinstance(m, nn.ReLU)]
        assert got == ex.lenet_shapes(size), size
    assert ex.lenet_shapes(32) == SHAPES_32


def test_q1_shapes():
    assert "C5 is 1x1 only when S4 is 5x5" in correct(ex.q1, lenet_shapes)
    correct(ex.q1, lambda size: [list(s) for s in lenet_shapes(size)])  # lists are fine too
    not_attempted(ex.q1, None)
    not_attempted(ex.q1, stub)
    assert "shapes of a 32x32 input whatever `size` is" in wrong(ex.q1, lambda size: SHAPES_32)
    assert "shrinks each side by 4" in wrong(ex.q1, with_rule(conv=lambda n: n))
    assert "n - k + 1, not n - k" in wrong(ex.q1, with_rule(conv=lambda n: n - 5))
    msg = wrong(ex.q1, with_rule(pool=lambda n: -(-n // 2)))  # ceil: right on 32, 36, 40, wrong on 33
    assert "lenet_shapes(33)" in msg and "rounded the pooling up" in msg
    msg = wrong(ex.q1, lambda size: lenet_shapes(size)[:4] + [(120, 1, 1)])
    assert "lenet_shapes(36)" in msg and "made C5 1x1 whatever its input" in msg
    # No listed mistake: the first layer that is off is named, with its rule, without the answer.
    msg = wrong(ex.q1, lambda size: lenet_shapes(size)[:2] + [(6, *lenet_shapes(size)[2][1:])] + lenet_shapes(size)[3:])
    assert "lenet_shapes(32): the shape after C3 is (6, 10, 10)" in msg and "number of maps" in msg
    assert "S2's (6, 14, 14)" in msg and "(16, 10, 10)" not in msg
    assert "list of 5 (C, H, W) tuples" in wrong(ex.q1, lambda size: lenet_shapes(size)[:4])
    assert "shape for C1 should be a (C, H, W) tuple" in wrong(ex.q1, lambda size: [None, *lenet_shapes(size)[1:]])
    assert "should be an int" in wrong(ex.q1, lambda size: [tuple(float(v) for v in s) for s in lenet_shapes(size)])
    assert "forget the `return`" in wrong(ex.q1, lambda size: None)


# --------------------------------------------------------------------- Q2
COUNTS = {"conv1_params": 6 * (3 * 25 + 1), "conv2_params": 16 * (6 * 25 + 1), "fc1_params": 120 * (16 * 6 * 6 + 1),
          "fc2_params": 84 * 121, "fc3_params": 100 * 85}


def params_with(**changes):
    return list({**COUNTS, **changes}.values())


def test_q2_expected_counts_come_from_real_layers():
    layers = ex.adapted_layers()
    assert [sum(p.numel() for p in layer.parameters()) for layer in layers] == list(COUNTS.values())
    model = nn.Sequential(layers[0], nn.MaxPool2d(2), layers[1], nn.MaxPool2d(2), nn.Flatten(), *layers[2:])
    assert model(torch.randn(1, 3, 36, 36)).shape == (1, 100)  # fc1 really reads the flattened S4 of a 36x36 input


def test_q2_params():
    assert "fc1" in correct(ex.q2, *COUNTS.values())
    not_attempted(ex.q2, *[None] * 5)
    not_attempted(ex.q2, *params_with(fc2_params=None))
    assert "left out the biases" in wrong(ex.q2, *params_with(fc1_params=120 * 576))
    assert "left out the biases" in wrong(ex.q2, *params_with(conv1_params=6 * 75))
    assert "for grey images" in wrong(ex.q2, *params_with(conv1_params=156))
    assert "reads all 6 maps of S2" in wrong(ex.q2, *params_with(conv2_params=416))
    msg = wrong(ex.q2, *params_with(fc1_params=48120))  # copied the 32x32 network's fc1
    assert "only for a 32x32 input" in msg and "69,240" not in msg
    assert "not 16" in wrong(ex.q2, *params_with(fc1_params=120 * 17))
    assert "one unit per class" in wrong(ex.q2, *params_with(fc3_params=850))
    msg = wrong(ex.q2, *params_with(fc2_params=10165))
    assert "`fc2_params` = 10,165 is not right" in msg and "10,164" not in msg
    assert "should be an int" in wrong(ex.q2, *params_with(conv1_params=456.0))
    assert "takes 5 answers" in wrong(ex.q2, 456, 2416)


# --------------------------------------------------------------------- Q3
class GoodLeNet(nn.Module):
    def __init__(self, activation=F.relu, conv2_padding=0, bias=True):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5, padding=conv2_padding)
        self.fc1 = nn.Linear(16 * 5 * 5, 120, bias=bias)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.activation = activation

    def forward(self, x):
        x = self.pool(self.activation(self.conv1(x)))
        x = self.pool(self.activation(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(self.activation(self.fc2(self.activation(self.fc1(x)))))


class PaddedConv2(GoodLeNet):
    def __init__(self):
        super().__init__(conv2_padding=1)


class SigmoidLeNet(GoodLeNet):
    def __init__(self):
        super().__init__(activation=torch.sigmoid)


class NoBiasFc1(GoodLeNet):
    def __init__(self):
        super().__init__(bias=False)


class TanhModules(GoodLeNet):
    def __init__(self):
        super().__init__(activation=nn.Tanh())


class CrashingLeNet(GoodLeNet):
    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        return self.fc1(x)  # forgot to flatten


class StubLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        raise NotImplementedError


def test_q3_model():
    assert "61,706" in correct(ex.q3, GoodLeNet)
    correct(ex.q3, lambda_free_reference())
    not_attempted(ex.q3, None)
    not_attempted(ex.q3, StubLeNet)
    msg = wrong(ex.q3, PaddedConv2)
    assert "expected (2, 16, 10, 10), got (2, 16, 12, 12) after layer `conv2`" in msg
    assert "no zeros" in wrong(ex.q3, SigmoidLeNet)
    assert "Tanh" in wrong(ex.q3, TanhModules) and "nn.ReLU" in wrong(ex.q3, TanhModules)
    msg = wrong(ex.q3, NoBiasFc1)
    assert "61,586 parameters" in msg and "61,706" in msg
    msg = wrong(ex.q3, CrashingLeNet)
    assert "RuntimeError" in msg and "`pool`" in msg  # names the last layer that ran
    assert "class itself" in wrong(ex.q3, GoodLeNet())


def lambda_free_reference():
    """The course's own modern LeNet-5 (C5 as a 5x5 convolution) must pass too."""
    return type("CourseLeNet", (lenet.LeNet5,), {})


# --------------------------------------------------------------------- Q4
def good_step(model, batch, optimizer, loss_fn):
    x, y = batch
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def no_zero_grad(model, batch, optimizer, loss_fn):
    x, y = batch
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def no_step(model, batch, optimizer, loss_fn):
    x, y = batch
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss.item()


def no_backward(model, batch, optimizer, loss_fn):
    x, y = batch
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    optimizer.step()
    return loss.item()


def zero_grad_too_late(model, batch, optimizer, loss_fn):
    x, y = batch
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def returns_graph(model, batch, optimizer, loss_fn):
    good_step(model, batch, optimizer, loss_fn)
    x, y = batch
    return loss_fn(model(x), y)


def test_q4_train_step():
    assert "fell from" in correct(ex.q4, good_step)
    not_attempted(ex.q4, None)
    not_attempted(ex.q4, stub)
    assert "second was not" in wrong(ex.q4, no_zero_grad) and "zero_grad()" in wrong(ex.q4, no_zero_grad)
    assert "call optimizer.step()" in wrong(ex.q4, no_step)
    assert "no gradients were computed" in wrong(ex.q4, no_backward)
    assert "did not change" in wrong(ex.q4, zero_grad_too_late)
    assert "holds the graph" in wrong(ex.q4, returns_graph)
    assert "returned None" in wrong(ex.q4, lambda m, b, o, f: good_step(m, b, o, f) and None)


# --------------------------------------------------------------------- Q5
@pytest.fixture(scope="module")
def held_out():
    """A small held-out set the checker scores on, and training images for its 1-NN baseline."""
    test = data.take(data.load("mnist", split="test", source="standin"), 300, seed=0)
    references = data.take(data.load("mnist", split="train", source="standin"), 2000, seed=0)
    return test, references


def trained_lenet(steps=60):
    torch.manual_seed(0)
    train_set = data.load("mnist", split="train", source="standin")
    model = lenet.LeNet5("modern", c1_padding=2)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    loader = data.DeviceLoader(train_set, batch_size=64, shuffle=True)
    done = 0
    while done < steps:
        for x, y in loader:
            good_step(model, (x, y), opt, nn.CrossEntropyLoss())
            done += 1
            if done == steps:
                break
    return model.eval()


def test_q5_accuracy_band(held_out, monkeypatch):
    test, references = held_out
    monkeypatch.setenv("COURSE_BUDGET", "smoke")
    q = ex.TrainedAccuracy(test_set=test, train_set=references)
    trained = trained_lenet()
    assert "band for smoke: >= 50%" in correct(q, trained)
    not_attempted(q, None)
    torch.manual_seed(0)
    msg = wrong(q, lenet.LeNet5("modern", c1_padding=2))  # untrained: about chance
    assert "the smoke budget asks for at least 50%" in msg and test.source in msg
    msg = wrong(q, lenet.LeNet5("modern"))  # expects 32x32 inputs
    assert "RuntimeError" in msg and f"({len(test)}, 1, 28, 28)" in msg
    assert "should be a Module" in wrong(q, "model")


def test_q5_quick_and_full_ask_for_more_than_1nn(held_out, monkeypatch):
    test, references = held_out
    q = ex.TrainedAccuracy(test_set=test, train_set=references)
    bar = ex.nearest_neighbour_bar(references, test)
    assert bar == baselines.nearest_neighbour(references, test, max_train=None)
    assert bar > ex.SMOKE_BAR  # the bar of quick and full sits above the smoke floor and far above chance
    for budget in ("quick", "full"):
        monkeypatch.setenv("COURSE_BUDGET", budget)
        msg = wrong(q, lenet.LeNet5("modern", c1_padding=2))
        assert f"the {budget} budget asks for more than a simple baseline" in msg
        assert f"scores {bar:.2%} on the same test images" in msg and "2,000 training images" in msg


def test_q5_passes_a_model_that_beats_1nn(held_out, monkeypatch):
    """A model right on (nearly) every test image is far above the 1-NN bar: the check accepts it."""
    test, references = held_out
    monkeypatch.setenv("COURSE_BUDGET", "quick")
    q = ex.TrainedAccuracy(test_set=test, train_set=references)

    class Oracle(nn.Module):  # looks each test image up by its pixel sum
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))
            self.lookup = {img.float().sum().item(): int(label) for img, label in zip(test.images, test.labels)}

        def forward(self, x):
            raw = (x * torch.tensor(test.std).view(1, -1, 1, 1) + torch.tensor(test.mean).view(1, -1, 1, 1)) * 255
            keys = raw.round().flatten(1).sum(1).tolist()
            return F.one_hot(torch.tensor([self.lookup.get(round(k), 0) for k in keys]), 10).float() * self.scale

    msg = correct(q, Oracle())
    assert "points above the baseline" in msg and "one-nearest-neighbour" in msg


# --------------------------------------------------------------------- Q5 graded from saved weights
def test_q5_rebuild_loads_the_course_model_and_scores_it(held_out, monkeypatch):
    """The grader scores question 5 in a clean process: rebuild(state_dict), then evaluate."""
    test, references = held_out
    monkeypatch.setenv("COURSE_BUDGET", "smoke")
    q = ex.TrainedAccuracy(test_set=test, train_set=references)
    trained = trained_lenet()
    state = {k: v.detach().clone() for k, v in trained.state_dict().items()}
    rebuilt = q.rebuild(state)
    assert isinstance(rebuilt, lenet.LeNet5) and not rebuilt.training
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in state.items())
    assert correct(q, rebuilt) == correct(q, trained)  # the same score as the model in the notebook
    torch.manual_seed(0)  # an untrained model rebuilt from its weights is still only about chance
    assert "asks for at least 50%" in wrong(q, q.rebuild(lenet.LeNet5("modern", c1_padding=2).state_dict()))
    for variant, bn in (("classic", False), ("modern", True)):  # the other course models load too
        model = q.rebuild(lenet.LeNet5(variant, c1_padding=2, batch_norm=bn).state_dict())
        assert isinstance(model, lenet.LeNet5) and model.variant == variant


def test_q5_rebuild_of_weights_that_fit_no_course_model_is_incorrect_not_a_crash():
    q = ex.q5
    own = GoodLeNet().state_dict()  # the learner's own class: other names
    msg = wrong(q, q.rebuild(own))
    assert "graded from its saved weights" in msg and "conv1.weight" in msg and "features.c1.weight" in msg
    assert 'lenet.LeNet5("modern", c1_padding=2)' in msg
    wider = lenet.LeNet5("modern", c1_padding=2, num_classes=12).state_dict()  # right names, wrong shapes
    assert "do not have that model's names and shapes" in wrong(q, q.rebuild(wider))
    assert "not a state_dict" in wrong(q, q.rebuild({"features.c1.weight": "not a tensor"}))


def test_q5_grader_path_in_a_clean_process(tmp_path):
    """What the grader's scorer does: torch.load the saved weights, rebuild, evaluate; here in the smoke budget."""
    import subprocess
    import sys

    torch.manual_seed(0)
    path = tmp_path / "q5.pt"
    torch.save(GoodLeNet().state_dict(), path)
    code = ("import torch, sys; from icdl.checks import ex02_lenet as ex; "
            f"s = torch.load({str(path)!r}, weights_only=True); r = ex.QUESTIONS['q5'].evaluate("
            "ex.QUESTIONS['q5'].rebuild(s)); print(r.outcome.value, '|', r.message)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "COURSE_BUDGET": "smoke"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("incorrect | Your model is graded from its saved weights"), out.stdout


# --------------------------------------------------------------------- Q6
def test_q6_selection_split():
    assert "measured once, at the end" in correct(ex.q6, "b")
    correct(ex.q6, " B ")
    correct(ex.q6, "(b)")
    not_attempted(ex.q6, None)
    assert "optimistically biased" in wrong(ex.q6, "a")
    assert "overfits" in wrong(ex.q6, "c")
    assert "one letter" in wrong(ex.q6, "validation")
    assert "as a string" in wrong(ex.q6, 2)
    assert set(ex.q6.why) == set(ex.q6.options) - {ex.q6.answer}  # every wrong option is explained


def test_every_question_has_hints_and_a_title():
    for q in (ex.q1, ex.q2, ex.q3, ex.q4, ex.q5, ex.q6):
        assert q.title and len(q.hints) >= 2 and q.notebook == "02_lenet"
