"""Checks for the exercise notebook ``04_vgg``: VGG from its configuration list, and its arithmetic.

    from icdl.checks import ex04_vgg as ex
    ex.q1.check(make_layers)          # the feature extractor from a list like [64, "M", 128, ...]; its values
                                      # are compared with the learner's own weights in torchvision's layout
    ex.q2.check(receptive_field)      # receptive field of n stacked 3x3 convolutions
    ex.q3.check(stack_weights)        # weights of n stacked 3x3 convolutions, C channels in and out
    ex.q4.check(ratio)                # weights of two 3x3 layers / weights of one 5x5 layer
    ex.q5.check(conv_and_fc_params)   # parameters in conv layers and in fully connected layers
"""

from __future__ import annotations

import math

from .core import (Incorrect, NotAttempted, Question, call, describe, expect_number, plain_number,
                   randomize_bn_stats, register, trace_forward)
from .shared import whole_number

NOTEBOOK = "04_vgg"

# A small configuration with every case: two pools, two convs in a row, channel changes.
SMALL = [8, "M", 16, 16, "M", 32]
SMALL_INPUT = (2, 3, 16, 16)


def _layers(module) -> list:
    """The layers of an nn.Sequential in the order it runs them (a module used twice is listed twice)."""
    return list(module)


def _kinds(layers) -> list[str]:
    """The kind of each layer of an nn.Sequential or a list (a subclass of nn.ReLU counts as ReLU, and so on)."""
    from torch import nn

    known = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d)
    return [next((k.__name__ for k in known if isinstance(m, k)), type(m).__name__) for m in layers]


def _listed(kinds: list[str], limit: int = 16) -> str:
    """A list of layer kinds for a message, never longer than ``limit`` entries."""
    return str(kinds) if len(kinds) <= limit else str(kinds[:limit])[:-1] + f", ... ({len(kinds)} in all)]"


def _pair(value) -> int | tuple:
    """A pool's kernel_size, stride or padding as one int when both sides agree."""
    if isinstance(value, (tuple, list)):
        return value[0] if len(set(value)) == 1 else tuple(value)
    return value


def _verify_layers(fn, batch_norm: bool):
    import torch
    from torch import nn

    from ..models.vgg import make_layers as reference_layers

    label = f"make_layers({SMALL}, batch_norm={batch_norm})"
    got = call(fn, SMALL, batch_norm=batch_norm, doing=label)
    if got is None:
        raise NotAttempted()
    if not isinstance(got, nn.Sequential):
        raise Incorrect(f"{label} should return an nn.Sequential, but it returned {describe(got)}.")
    nested = [name for name, m in got.named_children() if list(m.children())]
    if nested:
        raise Incorrect(f"{label}: child `{nested[0]}` is itself a container ({type(getattr(got, nested[0])).__name__}). "
                        f"Keep one flat nn.Sequential of layers, so the parameter names match torchvision's "
                        f"(features.0.weight, features.1.weight, ...).")
    want = reference_layers(SMALL, batch_norm=batch_norm)
    kinds, want_kinds = _kinds(got), _kinds(want)
    convs = [m for m in _layers(got) if isinstance(m, nn.Conv2d)]
    for conv in convs:
        if conv.kernel_size != (3, 3):
            raise Incorrect(f"{label}: every convolution should be 3x3; one is {conv.kernel_size[0]}x{conv.kernel_size[1]}.")
        if conv.padding != (1, 1) or conv.stride != (1, 1):
            raise Incorrect(f"{label}: a convolution has padding {conv.padding[0]} and stride {conv.stride[0]}, so "
                            f"it changes the image size; VGG's 3x3 convolutions use padding=1, stride=1 and keep "
                            f"H and W (only the pools halve them).")
        if conv.padding_mode != "zeros":
            raise Incorrect(f"{label}: a convolution uses padding_mode={conv.padding_mode!r}; VGG pads with zeros "
                            f"(the default, padding_mode='zeros').")
        if conv.dilation != (1, 1) or conv.groups != 1:
            raise Incorrect(f"{label}: a convolution has dilation {conv.dilation[0]} and groups {conv.groups}; VGG's "
                            f"are plain 3x3 convolutions (dilation=1, groups=1).")
    if kinds.count("MaxPool2d") != SMALL.count("M"):
        raise Incorrect(f"{label} has {kinds.count('MaxPool2d')} MaxPool2d layers; expected {SMALL.count('M')}, one "
                        f"for each 'M' in the list.")
    if kinds.count("ReLU") != kinds.count("Conv2d"):
        raise Incorrect(f"{label} has {kinds.count('Conv2d')} convolutions but {kinds.count('ReLU')} ReLUs: each "
                        f"convolution needs its own ReLU, or the stack collapses into one linear map.")
    if batch_norm and kinds.count("BatchNorm2d") != kinds.count("Conv2d"):
        raise Incorrect(f"{label} has {kinds.count('BatchNorm2d')} BatchNorm2d layers for {kinds.count('Conv2d')} "
                        f"convolutions: with batch_norm=True put one after every convolution.")
    if not batch_norm and "BatchNorm2d" in kinds:
        raise Incorrect(f"{label} contains BatchNorm2d layers, but batch_norm=False (the paper's VGG has none).")
    if kinds != want_kinds:
        bn = ", batch norm" if batch_norm else ""
        raise Incorrect(f"{label}: the layers are {_listed(kinds)}; expected {want_kinds} (conv{bn}, ReLU for each "
                        f"number; a pool for each 'M'; in the list's order).")
    for pool in (m for m in _layers(got) if isinstance(m, nn.MaxPool2d)):
        k, s, p = _pair(pool.kernel_size), _pair(pool.stride), _pair(pool.padding)
        if (k, s, p) != (2, 2, 0) or _pair(pool.dilation) != 1:
            raise Incorrect(f"{label}: a pool is MaxPool2d(kernel_size={k}, stride={s}, padding={p}); VGG's pools "
                            f"take the max over 2x2 windows with stride 2 and no padding "
                            f"(nn.MaxPool2d(kernel_size=2, stride=2)), which halves H and W.")
    channels = SMALL_INPUT[1]
    for name, module in got.named_children():
        if isinstance(module, nn.Conv2d):
            if module.in_channels != channels:
                raise Incorrect(f"{label}: convolution `{name}` reads {module.in_channels} channels, but the layer "
                                f"before it writes {channels}. After each convolution set in_channels to its "
                                f"out_channels: the next layer reads what this one wrote.")
            channels = module.out_channels
    x = torch.randn(*SMALL_INPUT, generator=torch.Generator().manual_seed(0))
    randomize_bn_stats(got)  # so that a batch norm in the wrong place changes the values
    got.eval()
    out, records = trace_forward(got, x)
    want_records = trace_forward(want, x)[1]
    ran = _kinds([m for _, m, _ in records])
    if ran != want_kinds:
        raise Incorrect(f"{label}: your model's forward ran the layers {_listed(ran)}, but it should run every "
                        f"layer of the list once, in the list's order: {want_kinds}.")
    for (name, module, shape), (_, _, want_shape) in zip(records, want_records):
        if shape != want_shape:
            hint = ""
            if isinstance(module, nn.Conv2d) and shape[-1] < want_shape[-1]:
                hint = " The convolution shrinks the image: a 3x3 convolution needs padding=1 to keep H and W."
            raise Incorrect(f"{label}: layer `{name}` ({type(module).__name__}) outputs {shape} for an input of "
                            f"{SMALL_INPUT}; expected {want_shape}.{hint}")
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, 32, 4, 4):
        raise Incorrect(f"{label} outputs {describe(out)} for an input of {SMALL_INPUT}; expected shape (2, 32, 4, 4).")
    ours, theirs = got.state_dict(), want.state_dict()
    if ours.keys() != theirs.keys():
        extra, missing = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
        parts = ([f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else "")] if missing else []) + \
                ([f"unexpected {', '.join(describe(k, 40) for k in extra[:3])}" + (" ..." if len(extra) > 3 else "")]
                 if extra else [])
        raise Incorrect(f"{label}: the parameter names differ from torchvision's ({'; '.join(parts)}): keep one "
                        f"flat nn.Sequential, and keep the convolutions' bias (torchvision keeps it even with "
                        f"batch norm).")
    wrong = [k for k in theirs if tuple(ours[k].shape) != tuple(theirs[k].shape)]
    if wrong:
        raise Incorrect(f"{label}: `{wrong[0]}` has shape {tuple(ours[wrong[0]].shape)}; torchvision's has "
                        f"{tuple(theirs[wrong[0]].shape)}.")
    # The values: the same layers (the learner's own weights and BN statistics) run as VGG runs them.
    want.load_state_dict(ours)
    want.eval()
    with torch.no_grad():
        expected = want(x)
    if not torch.allclose(out.double(), expected.double(), atol=1e-5, rtol=1e-4):
        diff = (out.double() - expected.double()).abs().max().item()
        raise Incorrect(f"{label}: the layers have the right kinds, shapes and names, but the output differs from "
                        f"the one computed with your own layers run as VGG runs them (by up to {diff:.3g}): conv"
                        f"{', batch norm' if batch_norm else ''}, ReLU for each number and a 2x2 max pool for each "
                        f"'M', in the list's order. Does your nn.Sequential run every layer, once, in order?")


class MakeLayers(Question):
    title = "VGG's feature extractor from a configuration list"
    hints = [
        "Loop over the list: 'M' adds nn.MaxPool2d(kernel_size=2, stride=2); a number c adds "
        "nn.Conv2d(in_channels, c, kernel_size=3, padding=1), [nn.BatchNorm2d(c),] nn.ReLU(inplace=True).",
        "After each convolution, set in_channels = c: the next convolution reads what this one wrote.",
        "Return nn.Sequential(*layers), one flat list, so the names match torchvision's (features.0.weight, ...).",
    ]

    def verify(self, fn):
        _verify_layers(fn, batch_norm=False)
        _verify_layers(fn, batch_norm=True)
        return "Correct! make_layers(CONFIGS['D']) is VGG16's feature extractor."


class ReceptiveField(Question):
    title = "the receptive field of n stacked 3x3 convolutions (stride 1)"
    hints = [
        "One 3x3 convolution sees 3x3 pixels. What does a second one, on top of it, see?",
        "Each extra 3x3 layer (stride 1) widens the window by one pixel on each side.",
    ]

    def verify(self, fn):
        for n in range(1, 7):
            got = whole_number(call(fn, n, doing=f"receptive_field({n})"), f"receptive_field({n})")
            if got == 3 * n and n > 1:
                raise Incorrect(f"receptive_field({n}) is {got}, expected {1 + 2 * n}: the windows of neighbouring "
                                f"outputs overlap, so each layer adds 2 pixels, not 3.")
            if got == 3 ** n and n > 1:
                raise Incorrect(f"receptive_field({n}) is {got}, expected {1 + 2 * n}: the window grows by 2 per "
                                f"layer (stride 1), it does not multiply by 3.")
            expect_number(got, 1 + 2 * n, f"receptive_field({n})")


class StackWeights(Question):
    title = "the weights of n stacked 3x3 convolutions, C channels in and out (no biases)"
    hints = [
        "One k x k convolution from C to C channels has C * C * k * k weights.",
        "n such 3x3 layers: n * 9 * C * C.",
    ]

    def verify(self, fn):
        for c, n in [(64, 2), (256, 3), (10, 1)]:
            want = n * 9 * c * c
            what = f"stack_weights({c}, {n})"
            got = whole_number(call(fn, c, n, doing=what), what)
            if got == want + n * c:
                raise Incorrect(f"{what} is {got:,}, expected {want:,}: count the weights only, not the {n * c} biases.")
            if got == n * 9 * c:
                raise Incorrect(f"{what} is {got:,}, expected {want:,}: each of the C filters has C x 3 x 3 "
                                f"weights, one 3x3 slice per input channel: C * C * 9 per layer.")
            if got == 9 * c * c and n > 1:
                raise Incorrect(f"{what} is {got:,}, expected {want:,}: that is one layer; multiply by n = {n}.")
            expect_number(got, want, what)


class Ratio(Question):
    title = "weights of two 3x3 layers divided by weights of one 5x5 layer (C channels in and out)"
    hints = [
        "Two 3x3 layers: 2 * 9 * C^2 weights; one 5x5 layer: 25 * C^2. C^2 cancels.",
    ]

    # The messages never print the expected ratio: it is the answer.
    def verify(self, value):
        value = plain_number(value, "`ratio`")
        try:
            value = float(value)
        except OverflowError:
            raise Incorrect("`ratio` is an int far too large for a ratio of two weight counts.") from None
        if math.isnan(value):
            raise Incorrect("`ratio` is NaN: divide the number of weights of the stack by that of the 5x5 layer.")
        if math.isclose(value, 18 / 25, rel_tol=1e-9):
            return "Correct! 18/25 = 0.72: the stack needs 28% fewer weights and adds a second ReLU."
        if math.isclose(value, 25 / 18, rel_tol=1e-9):
            raise Incorrect(f"Your ratio {value:.4g} is upside down: divide the stack's weights by the 5x5 "
                            f"layer's, not the other way round.")
        if math.isclose(value, 9 / 25, rel_tol=1e-9):
            raise Incorrect(f"Your ratio {value:.4g} compares ONE 3x3 layer with the 5x5; the stack has two.")
        # With biases (bias=True), 2 (9 C^2 + C) / (25 C^2 + C): solve for C and see if it is a channel count.
        if 25 * value != 18:
            c = (2 - value) / (25 * value - 18)
            if c >= 1 and math.isclose(value, 2 * (9 * round(c) + 1) / (25 * round(c) + 1), rel_tol=1e-9):
                raise Incorrect(f"Your ratio {value:.6g} counts the biases (it is the ratio for C = {round(c)} "
                                f"with bias=True). The question compares weights only: without the biases C^2 "
                                f"cancels and the ratio is the same for every C.")
        raise Incorrect(f"`ratio` is {value:.4g}, which is too {'small' if value < 18 / 25 else 'large'}. Count the "
                        f"weights of each layer (out x in x k x k, C channels in and out, no biases); C^2 cancels "
                        f"in the ratio.")


class ConvAndFcParams(Question):
    title = "the parameters (weights and biases) in conv layers and in fully connected layers"
    hints = [
        "Loop over model.modules(); add p.numel() for p in m.parameters() to one sum for nn.Conv2d, "
        "to another for nn.Linear.",
        "Count biases too; BatchNorm parameters belong to neither sum.",
    ]

    def verify(self, fn):
        import torch
        from torch import nn

        from ..models.vgg import vgg

        with torch.device("meta"):  # shapes only: a 138M-parameter model costs nothing
            cases = {"vgg16()": vgg("D"), "a small VGG-A with batch norm": vgg("A", True, 10, width=0.25, hidden=64)}
        for label, model in cases.items():
            conv = sum(p.numel() for m in model.modules() if isinstance(m, nn.Conv2d) for p in m.parameters())
            fc = sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters())
            got = call(fn, model, doing=f"conv_and_fc_params({label})")
            if got is None:
                raise NotAttempted()
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise Incorrect(f"`conv_and_fc_params` should return a pair (conv, fc); it returned {describe(got)}.")
            g_conv = whole_number(got[0], f"The conv count for {label}")
            g_fc = whole_number(got[1], f"The fully connected count for {label}")
            if (g_conv, g_fc) == (fc, conv):
                raise Incorrect(f"For {label} your pair is the wrong way round: return (conv, fc).")
            conv_w = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
            fc_w = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
            if (g_conv, g_fc) == (conv_w, fc_w):
                raise Incorrect(f"For {label} you counted weights only ({conv_w:,}, {fc_w:,}); count the biases "
                                f"too: p.numel() for every p in m.parameters().")
            expect_number(g_conv, conv, f"The conv count for {label}")
            expect_number(g_fc, fc, f"The fully connected count for {label}")
        return "Correct! The three fully connected layers hold 89% of VGG16's parameters."


q1, q2, q3, q4, q5 = MakeLayers(), ReceptiveField(), StackWeights(), Ratio(), ConvAndFcParams()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5)
