"""Checks for the exercise notebook ``04_vgg``: VGG from its configuration list, and its arithmetic.

    from icdl.checks import ex04_vgg as ex
    ex.q1.check(make_layers)          # the feature extractor from a list like [64, "M", 128, ...]
    ex.q2.check(receptive_field)      # receptive field of n stacked 3x3 convolutions
    ex.q3.check(stack_weights)        # weights of n stacked 3x3 convolutions, C channels in and out
    ex.q4.check(ratio)                # weights of two 3x3 layers / weights of one 5x5 layer
    ex.q5.check(conv_and_fc_params)   # parameters in conv layers and in fully connected layers
"""

from __future__ import annotations

from .core import Incorrect, NotAttempted, Question, call, describe, expect_number, register, trace_forward

NOTEBOOK = "04_vgg"

# A small configuration with every case: two pools, two convs in a row, channel changes.
SMALL = [8, "M", 16, 16, "M", 32]
SMALL_INPUT = (2, 3, 16, 16)


def _kinds(module) -> list[str]:
    """The kind of each child layer (a subclass of nn.ReLU counts as ReLU, and so on)."""
    from torch import nn

    known = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d)
    return [next((k.__name__ for k in known if isinstance(m, k)), type(m).__name__) for m in module.children()]


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
    convs = [m for m in got.children() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        if conv.kernel_size != (3, 3):
            raise Incorrect(f"{label}: every convolution should be 3x3; one is {conv.kernel_size[0]}x{conv.kernel_size[1]}.")
        if conv.padding != (1, 1) or conv.stride != (1, 1):
            raise Incorrect(f"{label}: a convolution has padding {conv.padding[0]} and stride {conv.stride[0]}, so "
                            f"it changes the image size; VGG's 3x3 convolutions use padding=1, stride=1 and keep "
                            f"H and W (only the pools halve them).")
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
        raise Incorrect(f"{label}: the layers are {kinds}; expected {want_kinds} (conv{', batch norm' if batch_norm else ''}"
                        f", ReLU for each number; a pool for each 'M'; in the list's order).")
    channels = SMALL_INPUT[1]
    for name, module in got.named_children():
        if isinstance(module, nn.Conv2d):
            if module.in_channels != channels:
                raise Incorrect(f"{label}: convolution `{name}` reads {module.in_channels} channels, but the layer "
                                f"before it writes {channels}. After each convolution set in_channels to its "
                                f"out_channels: the next layer reads what this one wrote.")
            channels = module.out_channels
    x = torch.randn(*SMALL_INPUT, generator=torch.Generator().manual_seed(0))
    out, records = trace_forward(got, x)
    for (name, module, shape), (_, _, want_shape) in zip(records, trace_forward(want, x)[1]):
        if shape != want_shape:
            hint = ""
            if isinstance(module, nn.Conv2d) and shape[-1] < want_shape[-1]:
                hint = " The convolution shrinks the image: a 3x3 convolution needs padding=1 to keep H and W."
            raise Incorrect(f"{label}: layer `{name}` ({type(module).__name__}) outputs {shape} for an input of "
                            f"{SMALL_INPUT}; expected {want_shape}.{hint}")
    if tuple(out.shape) != (2, 32, 4, 4):
        raise Incorrect(f"{label} outputs {tuple(out.shape)} for an input of {SMALL_INPUT}; expected (2, 32, 4, 4).")
    ours, theirs = got.state_dict(), want.state_dict()
    if ours.keys() != theirs.keys():
        raise Incorrect(f"{label}: the parameter names {sorted(ours)[:4]}... differ from torchvision's "
                        f"{sorted(theirs)[:4]}...: keep one flat nn.Sequential, and keep the convolutions' "
                        f"bias (torchvision keeps it even with batch norm).")


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
            got = call(fn, n, doing=f"receptive_field({n})")
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
            got = call(fn, c, n, doing=f"stack_weights({c}, {n})")
            what = f"stack_weights({c}, {n})"
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

    def verify(self, value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if abs(value - 25 / 18) < 1e-3:
                raise Incorrect(f"Your ratio {value:.3f} is upside down: divide the stack's weights (18 C^2) by "
                                f"the 5x5 layer's (25 C^2).")
            if abs(value - 9 / 25) < 1e-3:
                raise Incorrect(f"Your ratio {value:.3f} compares ONE 3x3 layer with the 5x5; the stack has two.")
        expect_number(value, 18 / 25, "`ratio`", rel=1e-3)
        return "Correct! 18/25 = 0.72: the stack needs 28% fewer weights and adds a second ReLU."


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
            g_conv, g_fc = got
            if (g_conv, g_fc) == (fc, conv):
                raise Incorrect(f"For {label} your pair is the wrong way round: return (conv, fc).")
            conv_w = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
            fc_w = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
            if (g_conv, g_fc) == (conv_w, fc_w):
                raise Incorrect(f"For {label} you counted weights only ({conv_w:,}, {fc_w:,}); count the biases too "
                                f"({conv:,}, {fc:,}).")
            expect_number(g_conv, conv, f"The conv count for {label}")
            expect_number(g_fc, fc, f"The fully connected count for {label}")
        return "Correct! The three fully connected layers hold 89% of VGG16's parameters."


q1, q2, q3, q4, q5 = MakeLayers(), ReceptiveField(), StackWeights(), Ratio(), ConvAndFcParams()
register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5)
