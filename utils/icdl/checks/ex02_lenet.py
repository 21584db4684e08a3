"""Checks for the exercise notebook ``02_lenet``: LeNet-5 by hand, then trained.

    from icdl.checks import ex02_lenet as ex
    ex.q1.check(lenet_shapes)    # per-layer output shapes for an input of any size
    ex.q2.check(conv1_params, conv2_params, fc1_params, fc2_params, fc3_params)  # LeNet-5 for 3x36x36, 100 classes
    ex.q3.check(LeNet5)          # the network as an nn.Module class
    ex.q4.check(train_step)      # one optimisation step
    ex.q5.check(model)           # a trained model: beats 1-NN on the held-out test set (graded from its weights)
    ex.q6.check(answer)          # which split selects the epoch
"""

from __future__ import annotations

import copy

from .core import Incorrect, Question, call, describe, expect_number, expect_type, register, trace_forward
from .kinds import ChoiceQuestion, ShapeListQuestion, ValueQuestion

NOTEBOOK = "02_lenet"

# The modern LeNet-5 of the exercise (its fc1 reads the flattened S4 maps), from a (N, 1, 32, 32) input.
LAYERS = ("C1", "S2", "C3", "S4", "C5")
MAPS = (6, 6, 16, 16, 120)
# Parameters of the modern LeNet-5 (full C3), as (weights, biases).
PARAMS = {
    "conv1": (6 * 1 * 5 * 5, 6),
    "conv2": (16 * 6 * 5 * 5, 16),
    "fc1": (120 * 16 * 5 * 5, 120),
    "fc2": (84 * 120, 84),
    "fc3": (10 * 84, 10),
}
TOTAL_PARAMS = sum(w + b for w, b in PARAMS.values())  # 61,706


# ---------------------------------------------------------------------------
# Q1: shapes for any input size
# ---------------------------------------------------------------------------
def _conv5(n: int) -> int:
    return n - 5 + 1  # a 5x5 convolution, stride 1, no padding


def _pool2(n: int) -> int:
    return (n - 2) // 2 + 1  # 2x2 pooling, stride 2 (rounds down)


def lenet_shapes(size: int) -> list[tuple[int, int, int]]:
    """(C, H, W) after C1, S2, C3, S4 and C5 for a (1, size, size) input (the reference of question 1)."""
    shapes, n = [], size
    for maps, step in zip(MAPS, (_conv5, _pool2, _conv5, _pool2, _conv5)):
        n = step(n)
        shapes.append((maps, n, n))
    return shapes


def _slip(conv=_conv5, pool=_pool2, c5=None):
    """A learner's lenet_shapes with one wrong rule."""
    def shapes(size):
        out, n = [], size
        for i, (maps, step) in enumerate(zip(MAPS, (conv, pool, conv, pool, conv))):
            n = step(n)
            out.append((maps, n, n) if not (i == 4 and c5) else c5)
        return out
    return shapes


RULES = {
    "C1": "a 5x5 convolution, stride 1, no padding: n - 5 + 1",
    "S2": "2x2 pooling with stride 2 keeps the 6 maps and halves the size, rounding down: (n - 2) // 2 + 1",
    "C3": "a 5x5 convolution with 16 maps: n - 5 + 1",
    "S4": "2x2 pooling with stride 2 keeps the 16 maps, rounding down",
    "C5": "a 5x5 convolution with 120 maps: n - 5 + 1 (1x1 only when its input is 5x5)",
}


class LayerShapes(ShapeListQuestion):
    title = "LeNet-5's output shape after each layer, for an input of any size"
    function = "lenet_shapes"
    layers, rules = LAYERS, RULES
    input_text = "the {0}x{0} input"
    channel_word = "number of maps"
    cases = [32, 36, 40, 33, 45, 64]  # simplest first; 33 and 45 need pooling that rounds down
    reference = staticmethod(lenet_shapes)
    mistakes = [
        ("answered with the shapes of a 32x32 input whatever `size` is: use `size`",
         lambda size: lenet_shapes(32)),
        ("let the convolutions keep the size: a 5x5 convolution without padding shrinks each side by 4",
         _slip(conv=lambda n: n)),
        ("shrank each side by 5 at each convolution: the output is n - k + 1, not n - k", _slip(conv=lambda n: n - 5)),
        ("rounded the pooling up: 2x2 pooling with stride 2 drops an odd last row (n // 2)",
         _slip(pool=lambda n: -(-n // 2))),
        ("made C5 1x1 whatever its input: it is a 5x5 convolution, 1x1 only on a 5x5 input",
         _slip(c5=(120, 1, 1))),
    ]
    success = ("Correct! C5 is 1x1 only when S4 is 5x5 (inputs of 32 to 35 pixels): on a larger input it is a "
               "convolution that slides, and the flattened features grow with the image.")
    hints = [
        "A convolution with kernel k, stride s and padding p turns size n into (n + 2p - k) // s + 1; "
        "LeNet-5's convolutions are 5x5 with stride 1 and no padding.",
        "Subsampling (pooling) 2x2 with stride 2 halves height and width, rounding down, and keeps the number of maps.",
        "The channel counts are 6 (C1, S2), 16 (C3, S4) and 120 (C5). Loop over the five layers, updating n.",
    ]


# ---------------------------------------------------------------------------
# Q2: parameters of LeNet-5 adapted to other images
# ---------------------------------------------------------------------------
Q2_CHANNELS, Q2_SIZE, Q2_CLASSES = 3, 36, 100  # colour images of 36x36 pixels, 100 classes


def adapted_layers(in_channels: int = Q2_CHANNELS, size: int = Q2_SIZE, classes: int = Q2_CLASSES):
    """The exercise's LeNet-5 (fc1 on the flattened S4 maps) for these images, as real layers."""
    from torch import nn

    s4 = lenet_shapes(size)[3]
    return [nn.Conv2d(in_channels, 6, 5), nn.Conv2d(6, 16, 5), nn.Linear(s4[0] * s4[1] * s4[2], 120),
            nn.Linear(120, 84), nn.Linear(84, classes)]


def _minus_biases(layer):
    return lambda *counts: counts[layer] - (6, 16, 120, 84, Q2_CLASSES)[layer]


_FORGOT = "you left out the biases (one per output map or unit)"


class LayerParams(ValueQuestion):
    title = (f"the parameters of each layer of LeNet-5 for {Q2_CHANNELS}x{Q2_SIZE}x{Q2_SIZE} images "
             f"and {Q2_CLASSES} classes")
    names = ("conv1_params", "conv2_params", "fc1_params", "fc2_params", "fc3_params")
    wrong = ("count out x in x k x k weights for a convolution (out x in for a linear layer), plus one bias "
             "per output; then ask which layers the image's size, its channels and the classes reach")
    mistakes = {
        "conv1_params": [(_minus_biases(0), _FORGOT),
                          (6 * (1 * 5 * 5 + 1), f"that is conv1 for grey images: these have {Q2_CHANNELS} "
                                                "channels, and each filter reads all of them")],
        "conv2_params": [(_minus_biases(1), _FORGOT),
                          (16 * (5 * 5 + 1), "each of the 16 filters reads all 6 maps of S2, so it has "
                                             "6 x 5 x 5 weights, not 5 x 5")],
        "fc1_params": [(_minus_biases(2), _FORGOT),
                        (120 * (16 * 5 * 5 + 1), "S4 is 16x5x5 only for a 32x32 input: work out S4's shape for "
                                                 f"{Q2_SIZE}x{Q2_SIZE} (question 1) and flatten it"),
                        (120 * (16 + 1), "fc1 reads every value of the flattened S4 maps, 16 x H x W, not 16")],
        "fc2_params": [(_minus_biases(3), _FORGOT)],
        "fc3_params": [(_minus_biases(4), _FORGOT),
                        (10 * (84 + 1), f"the output layer has one unit per class: {Q2_CLASSES} here")],
    }
    hints = [
        "A Conv2d layer has out_channels * in_channels * k * k weights plus out_channels biases; "
        "a Linear layer has out_features * in_features weights plus out_features biases.",
        "The input's channels reach only conv1, the number of classes only fc3, and the image's size only fc1 "
        "(through the shape of S4, question 1). Pooling and ReLU have no parameters.",
        "fc1 reads the flattened S4 maps: 16 * H * W inputs, with H and W from lenet_shapes(36).",
    ]

    def expected(self):
        return tuple(sum(p.numel() for p in layer.parameters()) for layer in adapted_layers())

    def verify(self, *answers):
        note = super().verify(*answers)
        return note or (f"Correct! {sum(self.expected()):,} parameters, {self.expected()[2]:,} of them in fc1: "
                        f"the image's size reaches only fc1; the convolutions' parameters do not depend on it.")


# ---------------------------------------------------------------------------
# Q3: the model
# ---------------------------------------------------------------------------
# Output shapes of the layers with parameters, in order, for a (2, 1, 32, 32) input.
WEIGHTED_SHAPES = [(2, 6, 28, 28), (2, 16, 10, 10), (2, 120), (2, 84), (2, 10)]


class BuildLeNet(Question):
    title = "LeNet-5 (modern variant) as an nn.Module"
    hints = [
        "In __init__, create conv1 = nn.Conv2d(1, 6, 5), conv2 = nn.Conv2d(6, 16, 5), "
        "fc1 = nn.Linear(16 * 5 * 5, 120), fc2 = nn.Linear(120, 84), fc3 = nn.Linear(84, 10), "
        "and a 2x2 max pooling.",
        "In forward: conv1 -> ReLU -> pool -> conv2 -> ReLU -> pool -> flatten -> fc1 -> ReLU -> "
        "fc2 -> ReLU -> fc3. No activation after fc3: cross-entropy wants raw logits.",
        "torch.flatten(x, 1) keeps the batch dimension and flattens the rest.",
    ]

    @staticmethod
    def _compare_shapes(weighted, after_crash=False):
        """Name the first Conv2d/Linear layer whose output shape is not LeNet-5's."""
        for i, want in enumerate(WEIGHTED_SHAPES):
            if i >= len(weighted):
                if after_crash:
                    return  # the crash message says more
                raise Incorrect(f"Your model has {len(weighted)} Conv2d/Linear layers; LeNet-5 has "
                                f"{len(WEIGHTED_SHAPES)} (2 convolutions, 3 fully connected).")
            name, got = weighted[i]
            if got == (2, 120, 1, 1) and want == (2, 120):
                continue  # C5 written as a 5x5 convolution is the same layer
            if got != want:
                then = " (and later the forward pass failed)" if after_crash else ""
                raise Incorrect(f"For an input of shape (2, 1, 32, 32): expected {want}, got {got} "
                                f"after layer `{name}`{then}.")

    def verify(self, model_class):
        import torch
        from torch import nn

        if not isinstance(model_class, type):
            raise Incorrect(f"Pass the class itself (`LeNet5`), not an instance or a call: got {describe(model_class)}.")
        if not issubclass(model_class, nn.Module):
            raise Incorrect(f"`{model_class.__name__}` should subclass nn.Module.")
        model = call(model_class, doing=f"Creating `{model_class.__name__}()`")
        model.eval()
        torch.manual_seed(0)
        x = torch.randn(2, 1, 32, 32)
        # Our own hooks record the weighted layers even when the forward crashes later on.
        weighted, last_input = [], {}
        names = {m: n for n, m in model.named_modules()}
        hooks = [m.register_forward_hook(lambda m, i, o: weighted.append((names[m], tuple(o.shape))))
                 for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if linears:
            hooks.append(linears[-1].register_forward_pre_hook(
                lambda m, inp: last_input.update(x=inp[0].detach())))
        try:
            out, _ = trace_forward(model, x)
        except Incorrect as crash:
            self._compare_shapes(weighted, after_crash=True)
            raise crash
        finally:
            for h in hooks:
                h.remove()
        self._compare_shapes(weighted)
        if len(weighted) > len(WEIGHTED_SHAPES):
            raise Incorrect(f"Your model has {len(weighted)} Conv2d/Linear layers; LeNet-5 has "
                            f"{len(WEIGHTED_SHAPES)}: `{weighted[len(WEIGHTED_SHAPES)][0]}` is one too many.")
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, 10):
            raise Incorrect(f"forward should return logits of shape (2, 10), but it returned {describe(out)}.")
        n = sum(p.numel() for p in model.parameters())
        if n != TOTAL_PARAMS:
            raise Incorrect(f"Your model has {n:,} parameters; the modern LeNet-5 has {TOTAL_PARAMS:,}. "
                            f"Check for bias=False or extra layers.")
        kinds = {type(m).__name__ for m in model.modules()}
        for wrong in ("Tanh", "Sigmoid", "AvgPool2d"):
            if wrong in kinds:
                fix = "nn.ReLU" if wrong != "AvgPool2d" else "nn.MaxPool2d(2)"
                raise Incorrect(f"Your model uses {wrong}; the modern variant uses {fix} "
                                f"(the 1998 paper used a scaled tanh and trainable average subsampling).")
        hidden = last_input.get("x")
        if hidden is not None and hidden.min() < 0:
            raise Incorrect(f"The input of the last Linear layer has negative values (min {hidden.min():.3f}): "
                            f"apply ReLU after fc2 (and after conv1, conv2, fc1).")
        if hidden is not None and (hidden == 0).float().mean() == 0:
            raise Incorrect("The input of the last Linear layer has no zeros, so no ReLU runs after fc2 "
                            "(a sigmoid or no activation?). Use ReLU.")
        return f"Correct! {TOTAL_PARAMS:,} parameters and the right shape after every layer."


# ---------------------------------------------------------------------------
# Q4: the training step
# ---------------------------------------------------------------------------
def _toy_problem(seed: int = 0):
    """A tiny model, a fixed batch and a loss: a fast, exact test bench for a training step."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 4))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    x = torch.randn(16, 1, 8, 8, generator=g)
    y = torch.randint(0, 4, (16,), generator=g)
    return model, (x, y), nn.CrossEntropyLoss()


def _reference_step(model, batch, optimizer, loss_fn) -> float:
    x, y = batch
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _flat(model):
    import torch

    return torch.cat([p.detach().flatten() for p in model.parameters()])


class TrainStep(Question):
    title = "one training step: zero_grad, forward, loss, backward, step"
    hints = [
        "Five lines: optimizer.zero_grad(); logits = model(x); loss = loss_fn(logits, y); "
        "loss.backward(); optimizer.step().",
        "Without zero_grad(), PyTorch adds the new gradients to the old ones: the second step then "
        "moves by the sum of two gradients.",
        "Return loss.item(), a Python float: returning the tensor keeps the whole graph alive.",
    ]

    def verify(self, train_step):
        import torch

        if not callable(train_step):
            raise Incorrect(f"`train_step` should be a function, but it is {describe(train_step)}.")
        model, batch, loss_fn = _toy_problem()
        ref = copy.deepcopy(model)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
        start = _flat(model)

        losses = []
        for step in (1, 2):
            got = call(train_step, model, batch, opt, loss_fn, doing="Calling `train_step(model, batch, optimizer, loss_fn)`")
            want = _reference_step(ref, batch, ref_opt, loss_fn)
            if got is None:
                raise Incorrect("`train_step` returned None; return the loss as a float (loss.item()).")
            if isinstance(got, torch.Tensor) and got.requires_grad:
                raise Incorrect("`train_step` returned a tensor that still holds the graph; return loss.item().")
            expect_number(got, want, f"The loss returned by call {step}", rel=1e-4, abs_=1e-6)
            losses.append(float(got))
            moved = _flat(model)
            if step == 1:
                if torch.equal(moved, start):
                    if all(p.grad is None for p in model.parameters()):
                        raise Incorrect("The parameters did not change and no gradients were computed: "
                                        "call loss.backward() before optimizer.step().")
                    raise Incorrect("The parameters did not change after one call: call optimizer.step() "
                                    "after loss.backward() (and zero_grad() before the backward pass, not between "
                                    "backward and step).")
                if not torch.allclose(moved, _flat(ref), atol=1e-6):
                    raise Incorrect("After one call the parameters differ from one SGD step on the loss of the "
                                    "batch: compute the loss on model(x) against y, then backward and step.")
            elif not torch.allclose(moved, _flat(ref), atol=1e-6):
                raise Incorrect("The first call was right but the second was not: the gradients from the first "
                                "call were added to the second. Call optimizer.zero_grad() at the start of each step.")
        for _ in range(20):
            losses.append(float(call(train_step, model, batch, opt, loss_fn, doing="Calling `train_step`")))
        if not losses[-1] < losses[0]:
            raise Incorrect(f"22 steps on one fixed batch should lower the loss, but it went from "
                            f"{losses[0]:.4f} to {losses[-1]:.4f}.")
        return f"Correct! On a fixed batch the loss fell from {losses[0]:.3f} to {losses[-1]:.3f} in 22 steps."


# ---------------------------------------------------------------------------
# Q5: a trained model that beats a simple baseline on the same data
# ---------------------------------------------------------------------------
# The smoke budget trains for seconds and only shows that training works: its bar sits well above chance (10%).
# The quick and full budgets ask for more than one-nearest-neighbour on raw pixels scores on the same test set,
# with every image of the training split as a reference (about 97% on MNIST, 85% on Fashion-MNIST).
SMOKE_BAR = 0.5
_BASELINE_CACHE: dict = {}


def held_out_set():
    """The test split of ``data.load("mnist")``: MNIST, or what stands in for it on this machine."""
    from .. import data

    return data.load("mnist", split="test")


def reference_set():
    """The training split of the same data: the references of the 1-NN baseline."""
    from .. import data

    return data.load("mnist", split="train")


def nearest_neighbour_bar(train_set, test_set) -> float:
    """Test accuracy of 1-NN on raw pixels with all of ``train_set`` as references (cached per data)."""
    from .. import baselines

    key = (train_set.source, len(train_set), int(train_set.labels.sum()), test_set.source, len(test_set),
           int(test_set.labels.sum()))
    if key not in _BASELINE_CACHE:
        _BASELINE_CACHE[key] = baselines.nearest_neighbour(train_set, test_set, max_train=None)
    return _BASELINE_CACHE[key]


class UnloadableWeights:
    """What :meth:`TrainedAccuracy.rebuild` returns for weights that fit no accepted model: the reason, in words."""

    def __init__(self, reason: str):
        self.reason = reason


class TrainedAccuracy(Question):
    title = "train LeNet-5 to beat a simple baseline on the held-out test set"
    hints = [
        "Check the learning curves: if the validation accuracy still rises at the last epoch, train for more "
        "epochs; if the training loss barely moves, raise the learning rate (AdamW around 1e-3 to 3e-3 works).",
        "The model must take the images as `DeviceLoader` gives them: 28x28, normalised with the dataset's "
        "mean and std; pad C1 with `padding=2` (or use `c1_padding=2`).",
        "A learning rate that decays to zero over the run (train.warmup_cosine) usually adds a point or more "
        "at the end of a short run.",
        "Select the epoch on the validation split (train.fit does with keep_best=True), never on the test set.",
    ]

    build_text = 'lenet.LeNet5("modern", c1_padding=2)'

    def __init__(self, test_set=None, train_set=None):
        super().__init__()
        self.test_set = test_set  # None: load the test split of data.load("mnist") when checking
        self.train_set = train_set  # None: its training split, for the 1-NN baseline

    @staticmethod
    def candidates():
        """The models this question accepts, as ``(how to build it, model)``: the course's LeNet-5 for 28x28
        images, either variant, with or without batch norm."""
        from ..models import lenet

        return [(f'lenet.LeNet5("{variant}", c1_padding=2{", batch_norm=True" if bn else ""})',
                 lenet.LeNet5(variant, c1_padding=2, batch_norm=bn))
                for variant in ("modern", "classic") for bn in (False, True)]

    def rebuild(self, state_dict):
        """The model the grader scores: the course's LeNet-5 whose layers match ``state_dict``, with those weights.

        Never raises: weights that fit none of the accepted models give an :class:`UnloadableWeights`, which
        ``evaluate`` reports as incorrect, with the reason.
        """
        import torch

        if not isinstance(state_dict, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                       for k, v in state_dict.items()):
            return UnloadableWeights(f"The saved weights are {describe(state_dict)}, not a state_dict.")
        for how, model in self.candidates():
            ours = model.state_dict()
            if ours.keys() == state_dict.keys() and all(ours[k].shape == state_dict[k].shape for k in ours):
                try:
                    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                                           for k, v in state_dict.items()}, strict=True)
                except RuntimeError as exc:  # pragma: no cover - the keys and shapes were checked above
                    return UnloadableWeights(f"The saved weights do not load into {how}: {str(exc)[:300]}")
                return model.eval()
        keys = sorted(state_dict)
        shown = ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
        return UnloadableWeights(
            f"Your model is graded from its saved weights, loaded into the course's {self.build_text}; but its "
            f"weights ({shown or 'none'}) do not have that model's names and shapes "
            f"({', '.join(list(self.candidates()[0][1].state_dict())[:3])}, ...). Train "
            f"{self.build_text} itself, not a class of your own.")

    def verify(self, model):
        import torch
        from torch import nn

        from .. import data, env

        if isinstance(model, UnloadableWeights):
            raise Incorrect(model.reason)
        expect_type(model, nn.Module, "`model`")
        test = self.test_set if self.test_set is not None else held_out_set()
        budget = env.get_budget()
        try:
            device = next(model.parameters()).device
        except StopIteration:
            raise Incorrect("`model` has no parameters: pass the trained LeNet-5.") from None
        loader = data.DeviceLoader(test, batch_size=500, device=device)
        was_training = model.training
        model.eval()
        correct = 0
        try:
            with torch.no_grad():
                for x, y in loader:
                    out = call(model, x, doing=f"Your model on a test batch of shape {tuple(x.shape)}")
                    if not isinstance(out, torch.Tensor) or out.shape != (len(y), len(test.classes)):
                        raise Incorrect(f"On a batch of shape {tuple(x.shape)} the model should return logits of "
                                        f"shape {(len(y), len(test.classes))}, but it returned {describe(out)}.")
                    correct += (out.argmax(1) == y).sum().item()
        finally:
            model.train(was_training)
        acc = correct / len(test)
        scored = f"Test accuracy {acc:.2%} on {len(test):,} images of {test.source}"
        if budget == "smoke":
            if acc < SMOKE_BAR:
                raise Incorrect(f"{scored}; the smoke budget asks for at least {SMOKE_BAR:.0%} (chance is about "
                                f"{1 / len(test.classes):.0%}). Train longer or with a higher learning rate; "
                                f"see the hints.")
            return f"Correct! {scored} (band for smoke: >= {SMOKE_BAR:.0%}, well above chance)."
        references = self.train_set if self.train_set is not None else reference_set()
        bar = nearest_neighbour_bar(references, test)
        baseline = (f"one-nearest-neighbour on raw pixels, with the {len(references):,} training images as "
                    f"references, scores {bar:.2%} on the same test images")
        if acc <= bar:
            raise Incorrect(f"{scored}; the {budget} budget asks for more than a simple baseline: {baseline}. "
                            f"Train longer or with a better schedule; see the hints.")
        return f"Correct! {scored}, {100 * (acc - bar):.1f} points above the baseline: {baseline}."


# ---------------------------------------------------------------------------
# Q6: evaluation hygiene
# ---------------------------------------------------------------------------
class SelectionSplit(ChoiceQuestion):
    title = "which split selects the epoch to keep"
    options = {
        "a": "the test set",
        "b": "a validation split carved from the training set",
        "c": "the training set",
    }
    answer = "b"
    why = {
        "a": "picking the epoch by test accuracy uses the test set for a decision, so the accuracy you then report "
             "on it is optimistically biased: it no longer estimates accuracy on unseen data.",
        "c": "training accuracy keeps rising while the model overfits, so it would nearly always pick the last "
             "epoch; it says nothing about new images.",
    }
    success = ("Correct! The validation split chooses the epoch (and the hyperparameters); the test set is "
               "measured once, at the end, and that number is what you report.")
    hints = [
        "The test set must stay unseen until the very end: one final measurement, no decisions.",
        "You need data the model does not train on but that you may use for decisions.",
    ]


q1 = LayerShapes()
q2 = LayerParams()
q3 = BuildLeNet()
q4 = TrainStep()
q5 = TrainedAccuracy()
q6 = SelectionSplit()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5, q6=q6)
