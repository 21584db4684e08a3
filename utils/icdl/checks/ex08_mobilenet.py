"""Checks for the exercise notebook ``08_mobilenet``: the costs of MobileNet's layers and v2's block.

    from icdl.checks import ex08_mobilenet as ex
    ex.q1.check(separable_macs)            # multiply-adds of a depthwise separable layer, stride and padding
                                           # included (a FunctionQuestion; references checked by the FLOP counter)
    ex.q2.check(ratio)                     # separable / standard multiply-adds for one given layer
    ex.q3.check(inverted_residual_params)  # parameters of a v2 block with expansion t (batch norms included)
    ex.q4.check(prediction)                # predict, then measure: v1 at alpha = 0.5 and 160 pixels
    ex.q5.check(InvertedResidual)          # debug a given inverted residual block (a ReLU6 after the projection)
    ex.q6.check(shortcut_blocks)           # which blocks of a v2-style table can have the shortcut
"""

from __future__ import annotations

from .core import Incorrect, Question, call, describe, register
from .kinds import ChoiceQuestion, FunctionQuestion, ValueQuestion

NOTEBOOK = "08_mobilenet"


def _out(n: int, k: int, s: int) -> int:
    """Output size of a k x k convolution with stride s and padding k // 2 (MobileNet's "same" padding)."""
    return (n + 2 * (k // 2) - k) // s + 1


# --------------------------------------------------------------------------
# q1: multiply-adds of a depthwise separable layer
# --------------------------------------------------------------------------
def _separable(m, n, k, h, w, stride=1, *, dw=lambda k, m, n: k * k * m, pw=lambda m, n: m * n,
               size=_out, pw_at_input=False):
    """Multiply-adds by formula, with switches for the common slips."""
    fh, fw = size(h, k, stride), size(w, k, stride)
    pw_area = h * w if pw_at_input else fh * fw
    return dw(k, m, n) * fh * fw + pw(m, n) * pw_area


class SeparableMacs(FunctionQuestion):
    title = "the multiply-adds of a depthwise separable layer"
    hints = [
        "Two layers: a k x k depthwise convolution (one filter per input channel, with the stride), then a 1x1 "
        "pointwise convolution from M to N channels. Count each one, then add.",
        "Both layers produce the same output map, F_h x F_w positions, with F = (size + 2 * (k // 2) - k) // stride "
        "+ 1. At each position, the depthwise layer does k * k multiply-adds per channel; the pointwise layer one per "
        "(input channel, output channel) pair.",
        "Skeleton: `fh, fw = ____, ____` (the output size), then `return ____ * fh * fw + ____ * fh * fw` (the "
        "depthwise part, then the pointwise part).",
    ]
    function = "separable_macs"
    result = "int"
    cases = [
        (32, 64, 3, 16, 16),
        (512, 512, 3, 14, 14),
        ((128, 256, 3, 56, 56), {"stride": 2}),
        (64, 128, 5, 9, 12),
        ((24, 40, 5, 17, 17), {"stride": 2}),
        (3, 7, 3, 5, 5),
    ]
    mistakes = [
        ("forgot the pointwise part: the 1x1 convolution from M to N channels comes after the depthwise one, and it "
         "does most of the work", lambda m, n, k, h, w, stride=1: _separable(m, n, k, h, w, stride, pw=lambda m, n: 0)),
        ("counted only the pointwise part: the depthwise k x k convolution costs k * k multiply-adds per channel and "
         "position too", lambda m, n, k, h, w, stride=1: _separable(m, n, k, h, w, stride, dw=lambda k, m, n: 0)),
        ("used k instead of k * k: a k x k filter has k² weights, each used once per position",
         lambda m, n, k, h, w, stride=1: _separable(m, n, k, h, w, stride, dw=lambda k, m, n: k * m)),
        ("multiplied the depthwise part by N: the depthwise layer has one filter per INPUT channel (M of them), and "
         "its output has M channels; N appears only in the pointwise layer",
         lambda m, n, k, h, w, stride=1: _separable(m, n, k, h, w, stride, dw=lambda k, m, n: k * k * m * n)),
        ("computed a standard convolution (k² M N per position): the question asks for the separable pair",
         lambda m, n, k, h, w, stride=1: _separable(m, n, k, h, w, stride, dw=lambda k, m, n: k * k * m * n,
                                                    pw=lambda m, n: 0)),
        ("counted at the input's size: with stride 2 both layers produce a smaller map, and the cost is per OUTPUT "
         "position", lambda m, n, k, h, w, stride=1: _separable(m, n, k, h, w, stride, size=lambda n_, k_, s_: n_)),
        ("ran the pointwise layer at the input's resolution: the stride is in the depthwise layer, so the 1x1 layer "
         "reads the smaller map", lambda m, n, k, h, w, stride=1: _separable(m, n, k, h, w, stride, pw_at_input=True)),
        ("left out the padding: MobileNet pads by k // 2, so with stride 1 the map keeps its size",
         lambda m, n, k, h, w, stride=1: _separable(m, n, k, h, w, stride,
                                                    size=lambda n_, k_, s_: (n_ - k_) // s_ + 1)),
        ("counted FLOPs (2 per multiply-add), as torch's counter does: the question asks for multiply-adds",
         lambda m, n, k, h, w, stride=1: 2 * _separable(m, n, k, h, w, stride)),
    ]
    success = ("Correct! Divide by the standard convolution's k² M N F_h F_w and you get 1/N + 1/k²: F and M cancel.")

    @staticmethod
    def reference(in_channels, out_channels, kernel_size, height, width, stride=1):
        return _separable(in_channels, out_channels, kernel_size, height, width, stride)


# --------------------------------------------------------------------------
# q2: the ratio for one layer
# --------------------------------------------------------------------------
RATIO_LAYER = dict(in_channels=96, out_channels=160, kernel_size=5, size=14)  # a v3-like 5x5 layer


def _counted_ratio() -> float:
    """Separable over standard multiply-adds of RATIO_LAYER, counted by torch's FLOP counter on real layers."""
    import torch
    from torch import nn

    from ..summary import count_flops

    m, n, k, s = (RATIO_LAYER[key] for key in ("in_channels", "out_channels", "kernel_size", "size"))
    with torch.device("meta"):
        standard = nn.Conv2d(m, n, k, padding=k // 2, bias=False)
        separable = nn.Sequential(nn.Conv2d(m, m, k, padding=k // 2, groups=m, bias=False),
                                  nn.Conv2d(m, n, 1, bias=False))
    return count_flops(separable, (1, m, s, s)) / count_flops(standard, (1, m, s, s))


class Ratio(ValueQuestion):
    title = "separable against standard: the ratio of multiply-adds for one layer"
    names = ("ratio",)
    integer = False
    rel = 1e-6
    wrong = ("count both versions' multiply-adds for this layer (or use the ratio the chapter derived, with this "
             "layer's numbers) and divide the separable pair's by the standard convolution's")
    mistakes = {"ratio": [
        (lambda r: 1 / r, "it is upside down: that is how many times CHEAPER the separable pair is; the question "
                          "asks for separable / standard, a number below 1"),
        (1 / 96 + 1 / 25, "the 1/N term uses the number of OUTPUT channels (160), not the input's (96)"),
        (1 / 160 + 1 / 5, "the kernel enters squared: a 5x5 filter has 25 weights, so the term is 1/k² = 1/25"),
        (1 / 160 + 1 / 9, "this layer has a 5x5 kernel, not 3x3"),
        (1 / 25, "that leaves out the 1/N term, the depthwise layer's share (k² M per position, against the "
                 "standard convolution's k² M N): both layers count"),
        (1 / 160, "that leaves out the 1/k² term, the pointwise layer's share (M N per position, against the "
                  "standard convolution's k² M N): both layers count"),
    ]}
    hints = [
        "The chapter derived the ratio for any layer: (k² M F² + M N F²) / (k² M N F²). Which letters cancel?",
        "M is 96, N is 160 (the output channels), k is 5. The map size cancels.",
    ]

    def expected(self):
        return (_counted_ratio(),)

    @property
    def success(self):
        return (f"Correct! The separable pair costs {_counted_ratio():.4f} of the standard convolution, "
                f"{1 / _counted_ratio():.1f} times less: with a 5x5 kernel the saving is larger than with 3x3.")


# --------------------------------------------------------------------------
# q3: parameters of an inverted residual block
# --------------------------------------------------------------------------
def _block_params(c_in, c_out, t, *, bn=2, dw=lambda h: 9 * h, expand_always=False, hidden=None, bias=0,
                  project_bn=True):
    hidden = round(c_in * t) if hidden is None else hidden
    total = 0
    if t != 1 or expand_always:
        total += c_in * hidden + bn * hidden + bias * hidden
    total += dw(hidden) + bn * hidden + bias * hidden
    total += hidden * c_out + (bn * c_out if project_bn else 0) + bias * c_out
    return total


class InvertedResidualParams(FunctionQuestion):
    title = "the parameters of an inverted residual block with expansion t"
    hints = [
        "Three convolutions, none with a bias: 1x1 from c_in to t * c_in (left out when t = 1), 3x3 depthwise on "
        "t * c_in channels, 1x1 from t * c_in to c_out. Each is followed by a batch norm.",
        "A depthwise 3x3 convolution on h channels has one 3x3 filter per channel: 9 * h weights. A batch norm on "
        "h channels has 2 * h parameters (its weight and bias; the running mean and variance are buffers, not "
        "parameters). The shortcut has none.",
        "Skeleton: `hidden = in_channels * expand_ratio`; `total = 0`; `if expand_ratio != 1: total += ____`; then "
        "add the depthwise layer with its batch norm and the projection with its batch norm.",
    ]
    function = "inverted_residual_params"
    result = "int"
    cases = [(16, 24, 6), (24, 24, 6), (32, 16, 1), (96, 160, 6), (7, 13, 3)]
    mistakes = [
        ("left out the batch norms: each of them has a weight and a bias per channel",
         lambda c, o, t: _block_params(c, o, t, bn=0)),
        ("counted the batch norms' running mean and variance: they are buffers, not parameters (2 per channel, not "
         "4)", lambda c, o, t: _block_params(c, o, t, bn=4)),
        ("counted the depthwise convolution as a full one (9 h² weights): a depthwise layer has ONE 3x3 filter per "
         "channel, 9 h", lambda c, o, t: _block_params(c, o, t, dw=lambda h: 9 * h * h)),
        ("kept the expansion layer when t = 1: the block then starts with the depthwise convolution",
         lambda c, o, t: _block_params(c, o, t, expand_always=True)),
        ("expanded the output width: the hidden width is t times the INPUT channels",
         lambda c, o, t: _block_params(c, o, t, hidden=o * t)),
        ("gave the convolutions biases: each is followed by a batch norm, whose bias makes a convolution's bias "
         "redundant, so they have none", lambda c, o, t: _block_params(c, o, t, bias=1)),
        ("left out the projection's batch norm: the linear bottleneck has no activation, but it has a batch norm",
         lambda c, o, t: _block_params(c, o, t, project_bn=False)),
    ]
    success = "Correct! Almost all of a block's weights are in its two 1x1 convolutions: 2 t c² for c_in = c_out = c."

    @staticmethod
    def reference(in_channels, out_channels, expand_ratio):
        return _block_params(in_channels, out_channels, expand_ratio)  # the tests check it against the real block


# --------------------------------------------------------------------------
# q4: predict, then measure: alpha and rho together
# --------------------------------------------------------------------------
class AlphaRho(ChoiceQuestion):
    title = "predict the cost of MobileNet v1 with alpha = 0.5 at 160x160 pixels"
    options = {
        "a": "multiply-adds and parameters both fall to about 0.13 of the full network's (alpha² rho² each)",
        "b": "multiply-adds fall to about 0.13 (alpha² rho²); parameters to about 0.3 (a little over alpha², and "
             "nothing from the resolution)",
        "c": "multiply-adds fall to about 0.36 (alpha rho) and parameters to about 0.5 (alpha)",
        "d": "multiply-adds and parameters both fall to about 0.25 (alpha²): the resolution changes neither",
        "e": "multiply-adds fall to about 0.51 (rho²): the width multiplier changes only the parameters",
    }
    answer = "b"
    why = {
        "a": "the multiply-adds are right, but a convolution's weights do not depend on the size of the image they "
             "slide over: the same weights run on a 160x160 image as on a 224x224 one.",
        "c": "most of the cost is in 1x1 convolutions, M N weights and M N F² multiply-adds each. The width "
             "multiplier shrinks BOTH M and N, so the cost falls as alpha², and a smaller image shrinks the map "
             "area F², so as rho², not rho.",
        "d": "alpha² is right for the width, but every convolution's multiply-adds are proportional to its output "
             "area, and that shrinks by rho² = (160/224)² when the input does.",
        "e": "rho² is right for the resolution, but the width multiplier thins every layer: a 1x1 convolution with "
             "half the input and half the output channels does a quarter of the multiply-adds.",
    }
    success = ("Correct! Width enters the 1x1 layers twice (M and N), resolution through the map area. The "
               "parameters fall a little less than alpha² because the depthwise layers, the stem and the "
               "1000-class classifier scale with alpha, not alpha².")
    hints = [
        "Most of MobileNet v1's multiply-adds and weights are in 1x1 convolutions: M N weights, M N F² "
        "multiply-adds. What does alpha do to M and N, and what does rho do to F?",
        "Does a convolution have more weights when its input image is larger?",
    ]


# --------------------------------------------------------------------------
# q5: debug a given inverted residual block
# --------------------------------------------------------------------------
BUGGY_SOURCE = '''class BuggyInvertedResidual(nn.Module):
    # torchvision's layout: conv.0 and conv.1 are (conv, BN, ReLU6) groups, conv.2 and conv.3 the projection and its BN
    def __init__(self, in_channels, out_channels, stride, expand_ratio):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        layers = []
        if expand_ratio != 1:  # 1x1 expansion
            layers.append(nn.Sequential(nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                                        nn.ReLU6()))
        layers.append(nn.Sequential(  # 3x3 depthwise, carrying the stride
            nn.Conv2d(hidden, hidden, 3, stride, padding=1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU6()))
        layers += [
            nn.Conv2d(hidden, out_channels, 1, bias=False),  # 1x1 projection
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        out = self.conv(x)
        return x + out if self.use_residual else out
'''


def buggy_block_class():
    """The given block, as a class (the notebook prints ``BUGGY_SOURCE`` and defines the same class)."""
    from torch import nn

    namespace = {"nn": nn}
    exec(BUGGY_SOURCE, namespace)  # noqa: S102 - the course's own fixed source
    return namespace["BuggyInvertedResidual"]


def _reference_block(c_in, c_out, stride, t, seed):
    """The course's block in torchvision's layout, with random weights and batch-norm statistics."""
    import torch
    from torch import nn

    from ..models.mobilenet import InvertedResidual

    torch.manual_seed(seed)
    block = InvertedResidual(c_in, c_out, stride, t)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
    return block.eval()


class DebugInvertedResidual(Question):
    title = "debug an inverted residual block"
    hints = [
        "Run the symptom cell: the given block's outputs are never negative where there is no shortcut. Which layer "
        "forces that?",
        "MobileNetV2's block ends with a LINEAR bottleneck: after the 1x1 projection comes a batch norm, and then "
        "nothing. The chapter's spiral shows what a ReLU does to a narrow tensor.",
        "Keep every layer and name of the given code (so that torchvision's weights still load); remove exactly "
        "one layer.",
    ]
    # (in, out, stride, t): a shortcut block, a strided one, a strided one of equal widths, a widening one, t = 1.
    CONFIGS = [(16, 16, 1, 6), (16, 24, 2, 6), (16, 16, 2, 6), (8, 12, 1, 6), (16, 16, 1, 1)]

    def verify(self, cls):
        import torch
        from torch import nn

        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise Incorrect(f"Pass your class itself (`InvertedResidual`, an nn.Module subclass); got "
                            f"{describe(cls)}.")
        for i, (c_in, c_out, stride, t) in enumerate(self.CONFIGS):
            label = f"InvertedResidual({c_in}, {c_out}, stride={stride}, expand_ratio={t})"
            block = call(cls, c_in, c_out, stride, t, doing=f"Creating {label}")
            if not isinstance(block, nn.Module):
                raise Incorrect(f"{label} should create an nn.Module, but it gave {describe(block)}.")
            reference = _reference_block(c_in, c_out, stride, t, seed=i)
            try:
                block.load_state_dict(reference.state_dict(), strict=True)
            except RuntimeError as exc:
                lines = " ".join(line.strip() for line in str(exc).splitlines()[1:])[:300]
                raise Incorrect(f"torchvision's weights for {label} do not load into yours with strict=True "
                                f"({lines}). Keep the given code's layers and names: the bug is not in the weights, "
                                f"and removing a layer without weights changes no name.") from None
            block.eval()
            x = torch.randn(4, c_in, 8, 8, generator=torch.Generator().manual_seed(i))
            with torch.no_grad():
                want = reference(x)
                got = call(block, x, doing=f"{label} on a {tuple(x.shape)} input")
            if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
                shape = tuple(got.shape) if isinstance(got, torch.Tensor) else describe(got)
                raise Incorrect(f"{label} gives {shape} for a {tuple(x.shape)} input; expected {tuple(want.shape)}.")
            if torch.allclose(got, want, atol=1e-5, rtol=1e-4):
                continue
            with torch.no_grad():
                branch = reference.conv(x)
                relu_branch = torch.nn.functional.relu6(branch)
            shortcut = reference.use_residual
            if torch.allclose(got, (x + relu_branch) if shortcut else relu_branch, atol=1e-5, rtol=1e-4):
                raise Incorrect(f"{label}: the block's branch still ends with an activation, so it can only add "
                                f"values in [0, 6]: remove the ReLU6 after the projection's batch norm (the linear "
                                f"bottleneck).")
            if shortcut and torch.allclose(got, branch, atol=1e-5, rtol=1e-4):
                raise Incorrect(f"{label}: stride 1 and equal widths, yet your block returns its branch without "
                                f"adding the input: keep the shortcut where the shapes allow it.")
            if not shortcut and c_in == c_out and torch.allclose(got, x[..., ::stride, ::stride] + branch, atol=1e-5):
                raise Incorrect(f"{label}: a strided block has no shortcut (its output is smaller than its input).")
            diff = (got - want).abs().max().item()
            raise Incorrect(f"{label}: with torchvision's weights your block's output differs from MobileNetV2's "
                            f"by up to {diff:.3g}. Change only the one buggy layer.")
        return ("Correct! Expansion and depthwise layers end with ReLU6; the projection is linear, so the narrow "
                "tensor that travels between blocks keeps its negative values.")


# --------------------------------------------------------------------------
# q6: which blocks can have the shortcut
# --------------------------------------------------------------------------
def _shortcuts(config, in_channels, *, rule=lambda s, c_in, c: s == 1 and c_in == c, row_stride=False,
               update=True, first_never=False):
    out, channels = [], in_channels
    for _t, c, n, s in config:
        row_in = channels
        for i in range(n):
            stride = s if (i == 0 or row_stride) else 1
            reads = channels if update else row_in
            out.append(False if (first_never and i == 0) else rule(stride, reads, c))
            channels = c
    return out


class ShortcutBlocks(FunctionQuestion):
    title = "which blocks of a MobileNetV2-style table can have the shortcut"
    hints = [
        "A shortcut computes x + F(x): it needs F(x) to have exactly x's shape. What changes the shape?",
        "A block's stride is the row's s for its first block and 1 for the others; its input width is the previous "
        "block's output width (in_channels for the very first block).",
        "Skeleton: `out, channels = [], in_channels`; for each row `(t, c, n, s)` and each `i in range(n)`: "
        "`stride = s if i == 0 else 1`, append `____`, then `channels = c`.",
    ]
    function = "shortcut_blocks"
    result = "value"
    V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
    cases = [
        (V2, 32),
        (((1, 16, 1, 1), (6, 16, 2, 1), (6, 24, 3, 2)), 16),
        (((6, 8, 2, 2), (4, 8, 2, 1), (4, 12, 1, 1), (4, 12, 2, 1)), 8),
    ]
    mistakes = [
        ("looked at the stride only: a block that changes the width cannot add its input either",
         lambda config, c: _shortcuts(config, c, rule=lambda s, c_in, c_out: s == 1)),
        ("looked at the widths only: a block with stride 2 halves the map, so x and F(x) differ in size",
         lambda config, c: _shortcuts(config, c, rule=lambda s, c_in, c_out: c_in == c_out)),
        ("gave every block of a row the row's stride: only the first block of a row has stride s, the others 1",
         lambda config, c: _shortcuts(config, c, row_stride=True)),
        ("compared every block of a row with the row's input width: after the first block, a block reads the "
         "previous block's output, c channels", lambda config, c: _shortcuts(config, c, update=False)),
        ("never gave a row's first block a shortcut: it can have one when s = 1 and the width does not change",
         lambda config, c: _shortcuts(config, c, first_never=True)),
    ]
    success = "Correct! In MobileNetV2's own table, 10 of the 17 blocks have the shortcut."

    @staticmethod
    def reference(config, in_channels):
        return _shortcuts(config, in_channels)  # the tests check it against the course's MobileNetV2

    def normalise(self, got, label: str):
        if isinstance(got, (str, bytes)) or not isinstance(got, (list, tuple)):
            raise Incorrect(f"{label} should return a list of booleans, one per block; it returned {describe(got)}.")
        if not all(isinstance(v, bool) for v in got):
            bad = next(v for v in got if not isinstance(v, bool))
            raise Incorrect(f"{label} should return a list of booleans (True or False), one per block; it contains "
                            f"{describe(bad)}.")
        return list(got)

    def explain(self, got, expected, args, kwargs):
        if len(got) != len(expected):
            return (f"it has {len(got)} entries, but the table has {len(expected)} blocks (a row of n blocks gives n "
                    f"entries).")
        first = next(i for i, (g, e) in enumerate(zip(got, expected)) if g != e)
        return f"block {first} (counting from 0) is wrong."


q1 = SeparableMacs()
q2 = Ratio()
q3 = InvertedResidualParams()
q4 = AlphaRho()
q5 = DebugInvertedResidual()
q6 = ShortcutBlocks()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5, q6=q6)

__all__ = ["q1", "q2", "q3", "q4", "q5", "q6", "RATIO_LAYER", "BUGGY_SOURCE", "buggy_block_class"]
