"""Checks for the exercise notebook ``04_vgg``: VGG from its configuration list, and its arithmetic.

    from icdl.checks import ex04_vgg as ex
    ex.q1.check(make_layers)               # debug a given make_layers (batch norm after the ReLU); its values are
                                           # compared with the learner's own weights in torchvision's layout
    ex.q2.check(receptive_field)           # receptive field of a configuration list, 2x2 pools included
    ex.q3.check(conv_macs)                 # multiply-adds of a convolution with stride and groups
    ex.q4.check(ratio)                     # two 3x3 layers / one 5x5 layer where the width doubles (64 -> 128)
    ex.q5.check(conv_params, fc_params)    # VGG16-BN's parameters in conv layers and in fully connected layers
"""

from __future__ import annotations

import functools

from .core import Incorrect, NotAttempted, Question, call, describe, randomize_bn_stats, register, trace_forward
from .kinds import FunctionQuestion, ValueQuestion

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


def _bn_after_relu(kinds: list[str]) -> list[str]:
    """The layer kinds with every (BatchNorm2d, ReLU) pair swapped: the batch norm after the ReLU."""
    out = list(kinds)
    for i in range(len(out) - 1):
        if out[i] == "BatchNorm2d" and out[i + 1] == "ReLU":
            out[i], out[i + 1] = "ReLU", "BatchNorm2d"
    return out


def _bn_before_conv(kinds: list[str]) -> list[str]:
    """The layer kinds with every (Conv2d, BatchNorm2d) pair swapped: the batch norm before the convolution."""
    out = list(kinds)
    for i in range(len(out) - 1):
        if out[i] == "Conv2d" and out[i + 1] == "BatchNorm2d":
            out[i], out[i + 1] = "BatchNorm2d", "Conv2d"
    return out


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
    if batch_norm and kinds == _bn_after_relu(want_kinds):
        raise Incorrect(f"{label}: every batch norm comes after its ReLU (conv, ReLU, batch norm). torchvision's "
                        f"VGG-BN normalises each convolution's output before the non-linearity, as Ioffe & Szegedy "
                        f"(2015, Section 3.2) do: conv, batch norm, ReLU. The order changes what the ReLU sees, and "
                        f"it changes the names: in an nn.Sequential a layer's name is its position, so "
                        f"`features.1` must be the batch norm for torchvision's weights to load.")
    if batch_norm and kinds == _bn_before_conv(want_kinds):
        raise Incorrect(f"{label}: every batch norm comes before its convolution (batch norm, conv, ReLU). "
                        f"torchvision's VGG-BN normalises the convolution's output: conv, batch norm, ReLU.")
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
    title = "debug make_layers: VGG's feature extractor from a configuration list"
    hints = [
        "Run the given function with batch_norm=False and with batch_norm=True, and print both nn.Sequential "
        "objects next to the course's `vgg.make_layers(...)` for the same list. Which layers differ, and where?",
        "The error lists names such as `2.running_mean` as missing (the given layers have a batch norm at "
        "position 2) and `1.running_mean` as unexpected (torchvision's have one at position 1). In an nn.Sequential "
        "a layer's name is its position: which kind of layer should sit at position 1?",
        "torchvision's VGG-BN runs conv, batch norm, ReLU for every number. Compare that with the order in which "
        "the given function appends its layers.",
    ]

    def verify(self, fn):
        _verify_layers(fn, batch_norm=False)
        _verify_layers(fn, batch_norm=True)
        return ("Correct! Conv, batch norm, ReLU: the batch norm normalises what the convolution computed, and "
                "the names (features.1 is a batch norm) match torchvision's, so its VGG-BN weights load.")


# --------------------------------------------------------------------------
# Question 2: the receptive field of a whole configuration (pools included)
# --------------------------------------------------------------------------
def reference_receptive_field(config) -> int:
    """Side of the input window one output position of ``config`` sees (3x3 stride-1 convs, 2x2 stride-2 pools)."""
    field, step = 1, 1  # step: input pixels between neighbouring positions of the current layer
    for item in config:
        if item == "M":
            field += step  # a 2x2 window adds (2 - 1) steps
            step *= 2
        else:
            field += 2 * step  # a 3x3 window adds (3 - 1) steps
    return field


def _rf_convs_only(config):
    return 1 + 2 * sum(item != "M" for item in config)


def _rf_no_step(config):
    return 1 + sum(1 if item == "M" else 2 for item in config)


def _rf_pool_doubles(config):
    field = 1
    for item in config:
        field = 2 * field if item == "M" else field + 2
    return field


def _rf_pool_window_forgotten(config):
    field, step = 1, 1
    for item in config:
        if item == "M":
            step *= 2
        else:
            field += 2 * step
    return field


def _rf_step_first(config):
    field, step = 1, 1
    for item in config:
        if item == "M":
            step *= 2
            field += step
        else:
            field += 2 * step
    return field


class ReceptiveField(FunctionQuestion):
    title = "the receptive field of a VGG configuration, pools included"
    function = "receptive_field"
    result = "int"
    # Ordered so that each listed slip first fails on a case where no other slip gives the same number.
    cases = [([64],), ([64, 64],), ([64, "M", 128],), (["M", "M", 64],), ([64, "M"],),
             ([64, 64, "M", 128, 128, "M"],), ([64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],)]
    reference = staticmethod(reference_receptive_field)
    mistakes = [
        ("counted the convolutions only (1 + 2n): a 2x2 pool also widens the window, and every layer after a "
         "pool works on a coarser grid", _rf_convs_only),
        ("added the same number of pixels for a layer wherever it sits: after a stride-2 pool, neighbouring "
         "positions are 2 input pixels apart, so a 3x3 convolution there widens the window by 2 x 2 = 4 pixels",
         _rf_no_step),
        ("doubled the window at each pool: the pool doubles the distance between neighbouring positions (what "
         "the next layers add), but its own 2x2 window adds only one such distance to the field", _rf_pool_doubles),
        ("left out the pool's own 2x2 window: it sees two neighbouring positions, which widens the field by one "
         "step before the step doubles", _rf_pool_window_forgotten),
        ("doubled the step before adding the pool's own window: the pool's 2x2 window spans positions of the "
         "layer below it, so it adds the step of that layer, and only then the step doubles", _rf_step_first),
    ]

    @property
    def success(self):
        from ..models.vgg import CONFIGS

        d = CONFIGS["D"]
        return (f"Correct! One output of VGG16's last convolution sees {reference_receptive_field(d[:-1])} x "
                f"{reference_receptive_field(d[:-1])} pixels of a 224 x 224 image: the pools make every later "
                f"layer add more, not the number of layers alone (13 stride-1 convolutions without pools would see "
                f"27 x 27).")

    hints = [
        "Keep two numbers as you walk the list: the field so far, and the step: how many input pixels apart two "
        "neighbouring positions of the current layer are (1 at the input).",
        "A k x k window spans k neighbouring positions, so it widens the field by (k - 1) x step. A stride-2 "
        "layer then doubles the step for every layer after it.",
        "Skeleton: field, step = 1, 1; for each item: if 'M': field += ___; step *= ___; else: field += ___.",
    ]


# --------------------------------------------------------------------------
# Question 3: the multiply-adds of a convolution, stride and groups included
# --------------------------------------------------------------------------
def _side(size, k, stride):
    return (size + 2 * (k // 2) - k) // stride + 1  # padding k // 2


def reference_conv_macs(c_in, c_out, k, size, stride=1, groups=1) -> int:
    """Multiply-adds of a k x k convolution (padding k // 2, no bias) on a size x size input."""
    return (c_in // groups) * c_out * k * k * _side(size, k, stride) ** 2


class ConvMacs(FunctionQuestion):
    title = "the multiply-adds of a convolution, with stride and groups"
    function = "conv_macs"
    result = "int"
    cases = [
        (3, 64, 3, 32),
        (64, 64, 3, 56),
        (64, 64, 1, 28),
        ((64, 128, 3, 56), {"stride": 2}),
        ((64, 64, 3, 7), {"stride": 2}),
        ((128, 128, 3, 28), {"groups": 32}),
        ((64, 64, 3, 14), {"groups": 64}),
        ((256, 512, 3, 15), {"stride": 2, "groups": 4}),
    ]
    reference = staticmethod(reference_conv_macs)
    mistakes = [
        ("counted each weight once, not once per output position: multiply by the output's H x W",
         lambda c_in, c_out, k, size, stride=1, groups=1: (c_in // groups) * c_out * k * k),
        ("counted FLOPs (a multiply-add is 2 FLOPs); the question asks for multiply-adds",
         lambda c_in, c_out, k, size, stride=1, groups=1: 2 * reference_conv_macs(c_in, c_out, k, size, stride,
                                                                                  groups)),
        ("counted a k x k window as k weights per channel: it has k x k",
         lambda c_in, c_out, k, size, stride=1, groups=1: (c_in // groups) * c_out * k * _side(size, k, stride) ** 2),
        ("added the biases: count the multiply-adds of the weights only",
         lambda c_in, c_out, k, size, stride=1, groups=1: reference_conv_macs(c_in, c_out, k, size, stride, groups)
         + c_out * _side(size, k, stride) ** 2),
        ("used the input's size: with stride 2 the convolution computes only every second position in each "
         "direction, so count the output's positions",
         lambda c_in, c_out, k, size, stride=1, groups=1: (c_in // groups) * c_out * k * k * size * size),
        ("divided the size by the stride rounding down: with padding k // 2 an odd size keeps its last row, so "
         "the output side is (size - 1) // stride + 1",
         lambda c_in, c_out, k, size, stride=1, groups=1: (c_in // groups) * c_out * k * k * (size // stride) ** 2),
        ("ignored the groups: with groups=g each filter reads only c_in / g of the input channels",
         lambda c_in, c_out, k, size, stride=1, groups=1: reference_conv_macs(c_in, c_out, k, size, stride)),
        ("divided by the groups twice: each filter reads c_in / g channels, but there are still c_out filters "
         "(c_out / g in each of the g groups)",
         lambda c_in, c_out, k, size, stride=1, groups=1: reference_conv_macs(c_in, c_out, k, size, stride, groups)
         // groups),
    ]
    success = ("Correct! Cutting a convolution into g groups divides its cost by g; with groups = c_in (a "
               "depthwise convolution) each filter reads one channel.")
    hints = [
        "Each output value is one filter applied at one position: it costs one multiply-add per weight the "
        "filter has. Count the weights of one filter, the filters, and the output positions.",
        "With padding k // 2 and stride s, the output side is (size + 2 * (k // 2) - k) // s + 1. With groups=g, "
        "a filter has (c_in / g) x k x k weights.",
        "Skeleton: side = ___; return (c_in // groups) * ___ * k * k * side * side.",
    ]


# --------------------------------------------------------------------------
# Question 4: two 3x3 layers against one 5x5 where the width doubles
# --------------------------------------------------------------------------
C_IN, C_OUT = 64, 128  # VGG16's second stage reads the first stage's 64 channels and writes 128


def _weights(c_in, c_out, k) -> int:
    import torch
    from torch import nn

    with torch.device("meta"):
        return nn.Conv2d(c_in, c_out, k, bias=False).weight.numel()


def _with_biases(c: int) -> float:
    return (9 * c * 2 * c + 2 * c + 9 * 4 * c * c + 2 * c) / (25 * c * 2 * c + 2 * c)


class Ratio(ValueQuestion):
    title = "two 3x3 layers against one 5x5 layer in a stage that doubles the width"
    names = ("ratio",)
    integer = False
    rel = 1e-9  # a ratio of two counts is exact
    wrong = ("count the weights of each of the three convolutions as out x in x k x k, with the channels each one "
             "really reads and writes (no biases), then divide the stack's sum by the 5x5 layer's")
    mistakes = {"ratio": [
        (18 / 25, "that is the chapter's ratio, for the same number of channels in and out of every layer. Here "
                  "the stage's first convolution goes from 64 to 128 channels: count each of the three "
                  "convolutions with the channels it reads and writes"),
        (25 / 27, "it is upside down: divide the stack's weights by the 5x5 layer's, not the other way round"),
        (27 / 50, "count each layer with its own channels: in VGG the first convolution of a stage doubles the "
                  "width (64 -> 128), so the second reads 128 channels, and the 5x5 layer that replaces both reads "
                  "the stage's input, 64"),
        (9 / 25, "that compares ONE 3x3 layer (the first) with the 5x5; the stack has two"),
        (_with_biases(C_IN), "it counts the biases: the question compares weights only"),
    ]}

    def expected(self):
        stack = _weights(C_IN, C_OUT, 3) + _weights(C_OUT, C_OUT, 3)
        return (stack / _weights(C_IN, C_OUT, 5),)

    success = ("Correct! Where the width doubles, the two 3x3 layers have 8% MORE weights than one 5x5 layer: the "
               "second convolution already works at the doubled width. The chapter's 0.72 holds where the width "
               "stays the same, as in most of VGG's layers.")
    hints = [
        "Write down the three convolutions: the stack is conv3x3 (64 -> 128) then conv3x3 (128 -> 128); the 5x5 "
        "layer replaces both, so it reads the stage's 64 channels and writes 128.",
        "A k x k convolution from c_in to c_out channels has c_out x c_in x k x k weights; "
        "nn.Conv2d(c_in, c_out, k, bias=False).weight.numel() counts them for you.",
    ]


# --------------------------------------------------------------------------
# Question 5: where the parameters of VGG16-BN sit
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _vgg16_bn_counts() -> dict:
    """Parameter counts of VGG16-BN (plain ints, so caching them cannot leak any state between checks)."""
    import torch
    from torch import nn

    from ..models.vgg import vgg

    with torch.device("meta"):  # shapes only: a 138M-parameter model costs nothing
        model = vgg("D", True, init_weights=False)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    count = lambda ms: sum(p.numel() for m in ms for p in m.parameters())  # noqa: E731
    return {"conv": count(convs), "fc": count(linears), "conv_weights": sum(m.weight.numel() for m in convs),
            "fc_weights": sum(m.weight.numel() for m in linears),
            "features": sum(p.numel() for p in model.features.parameters())}


class ConvAndFcParams(ValueQuestion):
    title = "the parameters of VGG16-BN in convolutions and in fully connected layers"
    names = ("conv_params", "fc_params")
    wrong = "add p.numel() for every parameter p of every layer of that kind (model.modules() visits them all)"

    def expected(self):
        counts = _vgg16_bn_counts()
        return counts["conv"], counts["fc"]

    @property
    def mistakes(self):
        counts = _vgg16_bn_counts()
        return {
            "conv_params": [
                (counts["fc"], "that is the fully connected layers' count: the two answers are swapped"),
                (counts["conv_weights"], "that counts the convolutions' weights only: count their biases too"),
                (counts["features"], "that counts everything in `features`, the batch norms' weights and biases "
                                     "included; count the nn.Conv2d layers only"),
            ],
            "fc_params": [
                (counts["conv"], "that is the convolutions' count: the two answers are swapped"),
                (counts["fc_weights"], "that counts the fully connected layers' weights only: count their biases "
                                       "too"),
            ],
        }

    @property
    def success(self):
        counts = _vgg16_bn_counts()
        share = counts["fc"] / (counts["features"] + counts["fc"])
        return (f"Correct! The three fully connected layers hold {share:.0%} of VGG16-BN's parameters, and the "
                f"first one alone (512 x 7 x 7 inputs, 4096 outputs) more than all thirteen convolutions.")
    hints = [
        "Loop over model.modules(); add p.numel() for p in m.parameters() to one sum for nn.Conv2d layers and to "
        "another for nn.Linear layers.",
        "Count biases too. The batch norms' parameters belong to neither sum.",
    ]


q1, q2, q3, q4, q5 = MakeLayers(), ReceptiveField(), ConvMacs(), Ratio(), ConvAndFcParams()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5)
