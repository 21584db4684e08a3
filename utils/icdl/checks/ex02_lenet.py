"""Checks for the exercise notebook ``02_lenet``: LeNet-5 by hand, then trained.

    from icdl.checks import ex02_lenet as ex
    ex.q1.check(shapes)          # per-layer output shapes from a 32x32 input
    ex.q2.check(params)          # parameters per layer
    ex.q3.check(LeNet5)          # the network as an nn.Module class
    ex.q4.check(train_step)      # one optimisation step
    ex.q5.check(model)           # a trained model: beats 1-NN on the held-out test set
    ex.q6.check(answer)          # which split selects the epoch
"""

from __future__ import annotations

import copy

from .core import Incorrect, NotAttempted, Question, call, describe, expect_number, expect_type, register, \
    trace_forward

NOTEBOOK = "02_lenet"

# The modern LeNet-5 of the exercise, from a (N, 1, 32, 32) input.
LAYERS = ("C1", "S2", "C3", "S4", "C5")
SHAPES = [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]
# How each layer maps the previous size, for the messages.
RULES = {
    "C1": "a 5x5 convolution, stride 1, no padding, 6 maps: (32 - 5) / 1 + 1 = 28",
    "S2": "2x2 subsampling with stride 2 keeps the 6 maps and halves the size: 28 / 2 = 14",
    "C3": "a 5x5 convolution, no padding, 16 maps: 14 - 5 + 1 = 10",
    "S4": "2x2 subsampling with stride 2 keeps the 16 maps: 10 / 2 = 5",
    "C5": "a 5x5 convolution with 120 maps on a 5x5 input: 5 - 5 + 1 = 1",
}
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
# Q1: shapes
# ---------------------------------------------------------------------------
class LayerShapes(Question):
    title = "LeNet-5's output shape after each layer, from a 1x32x32 input"
    hints = [
        "A convolution with kernel k, stride s and padding p turns size n into (n + 2p - k) // s + 1; "
        "LeNet-5's convolutions are 5x5 with stride 1 and no padding.",
        "Subsampling (pooling) 2x2 with stride 2 halves height and width and keeps the number of maps.",
        "The channel counts are 6 (C1, S2), 16 (C3, S4) and 120 (C5).",
    ]

    def verify(self, shapes):
        expect_type(shapes, (list, tuple), "`shapes`")
        if len(shapes) != len(SHAPES):
            raise Incorrect(f"`shapes` should hold {len(SHAPES)} shapes, one for each of "
                            f"{', '.join(LAYERS)}; yours has {len(shapes)}.")
        for layer, got, want in zip(LAYERS, shapes, SHAPES):
            try:
                got = tuple(int(v) for v in got)
            except (TypeError, ValueError):
                raise Incorrect(f"The shape for {layer} should be a tuple of 3 ints (C, H, W), "
                                f"but it is {describe(got)}.") from None
            if len(got) != 3:
                raise Incorrect(f"The shape for {layer} should have 3 numbers (C, H, W), but it is {got}.")
            if got != want:
                what = "number of maps" if got[0] != want[0] else "height and width"
                raise Incorrect(f"{layer}: expected {want}, got {got} (the {what} is off). "
                                f"{layer} is {RULES[layer]}.")


# ---------------------------------------------------------------------------
# Q2: parameters per layer
# ---------------------------------------------------------------------------
def _diagnose_params(layer: str, got: int, weights: int, biases: int) -> str:
    """Why a learner's count for one layer is off, when a common slip explains it."""
    want = weights + biases
    if got == weights:
        return f"params['{layer}'] is {got:,}, expected {want:,}: you forgot the {biases} biases (one per output)."
    if layer == "conv2" and got == 16 * (5 * 5 + 1):
        return (f"params['conv2'] is {got:,}, expected {want:,}: each of the 16 filters reads all 6 input "
                f"maps, so it has 6 * 5 * 5 weights, not 5 * 5.")
    if layer == "fc1" and got in (120 * 16 + 120, 120 * 16):
        return (f"params['fc1'] is {got:,}, expected {want:,}: fc1 reads the flattened 16x5x5 = 400 values "
                f"of pool2, not 16.")
    return f"params['{layer}'] is {got:,}, expected {want:,} (off by {got - want:+,})."


class LayerParams(Question):
    title = "the number of parameters in each layer of the modern LeNet-5"
    hints = [
        "A Conv2d layer has out_channels * in_channels * k * k weights plus out_channels biases; "
        "a Linear layer has out_features * in_features weights plus out_features biases.",
        "conv2 sees all 6 maps of the layer before it; fc1 sees the flattened 16x5x5 output of pool2.",
        "Pooling and ReLU have no parameters. The total should equal "
        "sum(p.numel() for p in model.parameters()).",
    ]

    def verify(self, params):
        expect_type(params, dict, "`params`")
        missing = [k for k in PARAMS if k not in params]
        if missing:
            raise Incorrect(f"`params` should have the keys {list(PARAMS)}; missing: {missing}.")
        for layer, (weights, biases) in PARAMS.items():
            got = params[layer]
            if got is None:
                raise NotAttempted(f"Not attempted yet: `params['{layer}']` is still None.")
            if hasattr(got, "item"):
                got = got.item()
            if isinstance(got, bool) or not isinstance(got, int):
                raise Incorrect(f"params['{layer}'] should be an int, but it is {describe(got)}.")
            if got != weights + biases:
                raise Incorrect(_diagnose_params(layer, got, weights, biases))
        return f"Correct! The modern LeNet-5 has {TOTAL_PARAMS:,} parameters, {sum(PARAMS['fc1']):,} of them in fc1."


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

    def __init__(self, test_set=None, train_set=None):
        super().__init__()
        self.test_set = test_set  # None: load the test split of data.load("mnist") when checking
        self.train_set = train_set  # None: its training split, for the 1-NN baseline

    def verify(self, model):
        import torch
        from torch import nn

        from .. import data, env

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
CHOICES = {
    "a": "the test set",
    "b": "a validation split carved from the training set",
    "c": "the training set",
}
WHY_NOT = {
    "a": "Picking the epoch by test accuracy uses the test set for a decision, so the accuracy you then report "
         "on it is optimistically biased: it no longer estimates accuracy on unseen data.",
    "c": "Training accuracy keeps rising while the model overfits, so it would nearly always pick the last epoch; "
         "it says nothing about new images.",
}


class SelectionSplit(Question):
    title = "which split selects the epoch to keep"
    hints = [
        "The test set must stay unseen until the very end: one final measurement, no decisions.",
        "You need data the model does not train on but that you may use for decisions.",
    ]

    def verify(self, answer):
        expect_type(answer, str, "`answer`")
        key = answer.strip().lower().strip("()")
        if key not in CHOICES:
            raise Incorrect(f"Answer with one letter: {', '.join(repr(k) for k in CHOICES)}; got {answer!r}.")
        if key != "b":
            raise Incorrect(f"({key}) {CHOICES[key]}: {WHY_NOT[key]}")
        return ("Correct! The validation split chooses the epoch (and the hyperparameters); the test set is "
                "measured once, at the end, and that number is what you report.")


q1 = LayerShapes()
q2 = LayerParams()
q3 = BuildLeNet()
q4 = TrainStep()
q5 = TrainedAccuracy()
q6 = SelectionSplit()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5, q6=q6)
