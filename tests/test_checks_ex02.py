"""The checks of exercise notebook 02_lenet: right answers pass, stubs are "not attempted",
planted wrong answers fail with a message that says what is wrong."""

import pytest
import torch
from checkhelpers import stub
from icdl import baselines, data
from icdl.checks import ex02_lenet as ex
from icdl.checks.core import Outcome
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
SHAPES = [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]


def test_q1_shapes():
    correct(ex.q1, SHAPES)
    correct(ex.q1, [list(s) for s in SHAPES])
    not_attempted(ex.q1, None)
    msg = wrong(ex.q1, [(6, 32, 32), *SHAPES[1:]])  # forgot that a 5x5 conv shrinks the image
    assert "C1: expected (6, 28, 28), got (6, 32, 32)" in msg and "height and width" in msg and "32 - 5" in msg
    msg = wrong(ex.q1, [SHAPES[0], SHAPES[1], (6, 10, 10), *SHAPES[3:]])
    assert "C3: expected (16, 10, 10), got (6, 10, 10)" in msg and "number of maps" in msg
    assert "hold 5 shapes" in wrong(ex.q1, SHAPES[:4])
    assert "tuple of 3 ints" in wrong(ex.q1, [None, *SHAPES[1:]])


# --------------------------------------------------------------------- Q2
PARAMS = {"conv1": 156, "conv2": 2416, "fc1": 48120, "fc2": 10164, "fc3": 850}


def test_q2_params():
    assert "61,706" in correct(ex.q2, PARAMS)
    not_attempted(ex.q2, None)
    not_attempted(ex.q2, {**PARAMS, "fc2": None})
    msg = wrong(ex.q2, {**PARAMS, "fc1": 48000})
    assert "params['fc1'] is 48,000, expected 48,120" in msg and "forgot the 120 biases" in msg
    msg = wrong(ex.q2, {**PARAMS, "conv2": 416})
    assert "params['conv2']" in msg and "all 6 input maps" in msg
    assert "off by +1" in wrong(ex.q2, {**PARAMS, "fc3": 851})
    assert "missing: ['fc3']" in wrong(ex.q2, {k: v for k, v in PARAMS.items() if k != "fc3"})
    assert "should be an int" in wrong(ex.q2, {**PARAMS, "conv1": "156"})


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


# --------------------------------------------------------------------- Q6
def test_q6_selection_split():
    correct(ex.q6, "b")
    correct(ex.q6, " B ")
    not_attempted(ex.q6, None)
    assert "optimistically biased" in wrong(ex.q6, "a")
    assert "overfits" in wrong(ex.q6, "c")
    assert "one letter" in wrong(ex.q6, "validation")
    assert "should be a str" in wrong(ex.q6, 2)


def test_every_question_has_hints_and_a_title():
    for q in (ex.q1, ex.q2, ex.q3, ex.q4, ex.q5, ex.q6):
        assert q.title and len(q.hints) >= 2 and q.notebook == "02_lenet"
