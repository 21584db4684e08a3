"""Checks for the exercise notebook ``solutions/01_cnn_basics.ipynb`` (How a CNN sees an image).

=====  ==============================================  ==========================================
q      the learner writes                              checked against
=====  ==============================================  ==========================================
q1     ``conv_output_size(n, kernel_size, ...)``       the formula, on cases run by ``nn.Conv2d``
q2     ``conv2d(x, weight, bias, stride, padding)``    ``F.conv2d`` (switched off while checking)
q3     three parameter counts (numbers)                ``nn.Module.parameters()``
q4     ``receptive_field(layers)``                     the recurrence r += (k - 1) * jump
q5     ``max_pool2d(x, kernel_size, stride=None)``     ``F.max_pool2d`` (switched off while checking), also
                                                       where (H - k) is not a multiple of the stride
q6     ``softmax(logits)``                             ``torch.softmax``, also on huge logits and on rows
                                                       like [0, 1000] (where shifting by the mean overflows)
q7     ``SmallCNN`` (an ``nn.Module`` class)           the spec's layer shapes and parameter count, and
                                                       its values: the learner's own layers in the spec's order
=====  ==============================================  ==========================================

Each check tries to say *which* mistake was made (forgot the bias, flipped
kernel, ignored the stride, overflow, ...) by comparing the answer with the
results of the common mistakes, not only that the numbers differ.
"""

from __future__ import annotations

import contextlib
import math

from .core import Incorrect, NotAttempted, Question, call, describe, expect_close, register, trace_forward
from .shared import whole_number

NOTEBOOK = "01_cnn_basics"


# --------------------------------------------------------------------------
# Small helpers shared by the questions
# --------------------------------------------------------------------------
def _same(a, b, atol=1e-4, rtol=1e-4) -> bool:
    """True when two tensors have the same shape and (nearly) the same values."""
    import torch

    return (isinstance(a, torch.Tensor) and a.shape == b.shape
            and torch.allclose(a.detach().double(), b.double(), atol=atol, rtol=rtol))


def _as_int(value, what: str) -> int:
    """A learner's whole number (int, NumPy or 1-element tensor) as a plain ``int``, or :class:`Incorrect`.

    Floats are refused, even 28.0 (a size is an int: use ``//``), and an ``int`` subclass is reduced to
    its plain value, so a class whose ``==`` always says True changes nothing (``core.plain_number``).
    """
    if value is None:
        raise NotAttempted(f"Not attempted yet: {what} is still None.")
    number = value
    if hasattr(value, "item") and hasattr(value, "shape"):
        count = getattr(value, "numel", None)
        if callable(count) and count() == 1:
            number = value.item()
    if isinstance(number, float) or (type(number).__module__ == "numpy" and "float" in type(number).__name__):
        if float(number).is_integer():
            raise Incorrect(f"{what} is {describe(value)}: a size or a count must be an int, not a float. "
                            "Use floor division `//` (or int(...)) so the result is an int.")
        raise Incorrect(f"{what} is {describe(value)}, not a whole number: the formula rounds down, "
                        "so use floor division `//`.")
    if isinstance(number, bool) or not hasattr(type(number), "__index__"):
        raise Incorrect(f"{what} should be a whole number, but it is {describe(value)}.")
    return whole_number(value, what)


@contextlib.contextmanager
def _switched_off(*targets):
    """Temporarily replace library functions so that a learner's answer cannot call them.

    ``targets`` are ``(module, attribute_name, what_to_do_instead)`` triples.
    """
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in targets]

    def refusing(name, advice):
        def fn(*args, **kwargs):
            raise RuntimeError(f"`{name}` is switched off during this check: {advice}")
        return fn

    try:
        for mod, name, advice in targets:
            setattr(mod, name, refusing(name, advice))
        yield
    finally:
        for mod, name, original in saved:
            setattr(mod, name, original)


# --------------------------------------------------------------------------
# q1: the output-size formula
# --------------------------------------------------------------------------
def reference_output_size(n, kernel_size, stride=1, padding=0, dilation=1) -> int:
    """floor((n + 2p - d(k - 1) - 1) / s) + 1, the size PyTorch's ``nn.Conv2d`` produces."""
    return (n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


class OutputSize(Question):
    title = "the output-size formula"
    hints = [
        "Without padding, stride or dilation a k-wide kernel fits in n - k + 1 positions.",
        "Padding adds p pixels on BOTH sides (n + 2p). A stride s keeps one position in s: "
        "floor((n + 2p - k) / s) + 1. Use `//` for the floor.",
        "Dilation d spreads the kernel's taps d pixels apart, so it covers d * (k - 1) + 1 pixels: "
        "use that in place of k.",
    ]
    # (n, kernel_size, stride, padding, dilation): simple cases first, so the first failure is telling.
    cases = [(32, 5, 1, 0, 1), (28, 3, 1, 1, 1), (28, 3, 2, 1, 1), (224, 7, 2, 3, 1), (7, 3, 2, 0, 1),
             (6, 4, 3, 0, 1), (10, 3, 1, 0, 2), (32, 3, 1, 2, 2), (15, 5, 2, 1, 3)]
    mistakes = [
        ("forgot the padding (it adds 2p, p on each side)",
         lambda n, k, s, p, d: (n - d * (k - 1) - 1) // s + 1),
        ("counted the padding once; it is added on both sides, so it adds 2p",
         lambda n, k, s, p, d: (n + p - d * (k - 1) - 1) // s + 1),
        ("ignored the stride", lambda n, k, s, p, d: n + 2 * p - d * (k - 1)),
        ("forgot the + 1 (a kernel as wide as the input still fits once)",
         lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) // s),
        ("ignored the dilation: a dilated kernel covers d * (k - 1) + 1 pixels",
         lambda n, k, s, p, d: (n + 2 * p - k) // s + 1),
        ("rounded up instead of down", lambda n, k, s, p, d: -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1),
    ]

    def verify(self, fn):
        # The defaults must work: conv_output_size(32, 5) is a plain 5x5 convolution.
        got = _as_int(call(fn, 32, 5, doing="`conv_output_size(32, 5)`"), "conv_output_size(32, 5)")
        if got != 28:
            raise Incorrect(f"conv_output_size(32, 5) returned {got}; expected 28 (stride 1, no padding, "
                            "no dilation are the defaults).")
        for n, k, s, p, d in self.cases:
            what = f"conv_output_size({n}, kernel_size={k}, stride={s}, padding={p}, dilation={d})"
            got = _as_int(call(fn, n, kernel_size=k, stride=s, padding=p, dilation=d, doing=f"`{what}`"), what)
            expected = reference_output_size(n, k, s, p, d)
            if got != expected:
                why = [text for text, wrong in self.mistakes if wrong(n, k, s, p, d) == got != expected]
                raise Incorrect(f"{what} returned {got}; expected {expected}."
                                + (f" It looks like you {why[0]}." if why else ""))


# --------------------------------------------------------------------------
# q2: a convolution layer by hand
# --------------------------------------------------------------------------
class Conv2d(Question):
    title = "conv2d by hand"
    hints = [
        "First pad x with zeros (torch.nn.functional.pad(x, (p, p, p, p))), then compute the output size "
        "with your conv_output_size.",
        "Each output pixel (n, o, i, j) is sum over c, u, v of x[n, c, i*s + u, j*s + v] * weight[o, c, u, v], "
        "plus bias[o]. Loops over i and j with a slice of x and a broadcasted product are enough.",
        "Vectorised: F.unfold(x, k, stride=s, padding=p) gives (N, C*kH*kW, L) patches; multiply by "
        "weight.view(O, -1) and reshape to (N, O, H_out, W_out).",
    ]

    @staticmethod
    def cases():
        """(x, weight, bias, stride, padding): several shapes, strides, paddings, one without bias."""
        import torch

        g = torch.Generator().manual_seed(1)

        def r(*shape):
            return torch.randn(*shape, generator=g)

        return [
            (r(1, 1, 5, 5), r(1, 1, 3, 3), r(1), 1, 0),
            (r(2, 3, 7, 6), r(4, 3, 3, 3), r(4), 1, 0),
            (r(2, 3, 8, 8), r(5, 3, 3, 3), r(5), 2, 1),
            (r(1, 2, 6, 9), r(3, 2, 2, 4), None, 1, 2),
            (r(3, 4, 9, 7), r(2, 4, 5, 3), r(2), 3, 1),
        ]

    def verify(self, fn):
        import torch
        import torch.nn.functional as F

        for x, w, b, s, p in self.cases():
            expected = F.conv2d(x, w, b, stride=s, padding=p)
            what = (f"conv2d(x of shape {tuple(x.shape)}, weight of shape {tuple(w.shape)}, "
                    f"bias={'None' if b is None else 'a tensor'}, stride={s}, padding={p})")
            x_in = x.clone()
            with _switched_off((F, "conv2d", "compute the convolution yourself (loops, or F.unfold)."),
                               (torch, "conv2d", "compute the convolution yourself (loops, or F.unfold).")):
                got = call(fn, x_in, w.clone(), None if b is None else b.clone(), stride=s, padding=p,
                           doing=f"`{what}`")
            if got is None:
                raise Incorrect(f"{what} returned None: did you forget the `return`?")
            if not isinstance(got, torch.Tensor):
                raise Incorrect(f"{what} should return a torch.Tensor, but it returned {describe(got)}.")
            if not torch.equal(x_in, x):
                raise Incorrect(f"{what} changed its input x in place; pad into a new tensor instead.")
            if tuple(got.shape) != tuple(expected.shape):
                raise Incorrect(f"{what} returned shape {tuple(got.shape)}; expected {tuple(expected.shape)}."
                                + self._shape_diagnosis(got, x, w, s, p))
            if b is not None and _same(got, F.conv2d(x, w, None, stride=s, padding=p)):
                raise Incorrect(f"{what}: your output is right except for the bias: add bias[o] to every "
                                "pixel of output channel o.")
            if _same(got, F.conv2d(x, w.flip(-2, -1), b, stride=s, padding=p)):
                raise Incorrect(f"{what}: you flipped the kernel. That is the textbook convolution; deep-learning "
                                "libraries compute cross-correlation, x[i*s + u, j*s + v] * weight[u, v] with "
                                "no flip.")
            expect_close(got, expected, what, atol=1e-4, rtol=1e-4)

    @staticmethod
    def _shape_diagnosis(got, x, w, s, p) -> str:
        """Name the mistake whose output shape the learner's shape matches."""
        import torch.nn.functional as F

        if got.dim() != 4:
            return " The output must be 4-D: (N, out_channels, H_out, W_out)."
        if got.shape[1] != w.shape[0]:
            return f" The second dimension must be out_channels = weight.shape[0] = {w.shape[0]}."
        if s > 1 and tuple(got.shape) == tuple(F.conv2d(x, w, stride=1, padding=p).shape):
            return f" That is the shape for stride 1: keep only every {s}-th position."
        if p > 0 and tuple(got.shape) == tuple(F.conv2d(x, w, stride=s, padding=0).shape):
            return f" That is the shape without padding: pad x with {p} zeros on every side first."
        return " The output size is floor((n + 2p - k) / s) + 1 for each of H and W."


# --------------------------------------------------------------------------
# q3: parameter counts
# --------------------------------------------------------------------------
class ParamCounts(Question):
    title = "parameter counts of a convolution and a fully connected layer"
    hints = [
        "A Conv2d has one kernel of size in_channels x k x k per output channel, plus one bias per "
        "output channel.",
        "A Linear layer has one weight per (input, output) pair plus one bias per output. "
        "A 224 x 224 RGB image has 224 * 224 * 3 inputs.",
        "bias=False removes the bias term. Check yourself with "
        "sum(p.numel() for p in layer.parameters()).",
    ]
    # (variable name, the layer it describes, expected, [(wrong value, what it means), ...], how to count it).
    # A wrong count's message names the mistake, or says too large / too small and how to count:
    # never the expected count itself, which is the answer.
    conv_rule = ("A Conv2d has out_channels x in_channels x k x k weights, plus one bias per output "
                 "channel unless bias=False.")
    items = [
        ("conv_params", "nn.Conv2d(3, 64, kernel_size=3)", 3 * 64 * 3 * 3 + 64, [
            (3 * 64 * 3 * 3, "you forgot the bias: one per output channel (+64)"),
            (64 * 3 * 3 + 64, "you forgot the input channels: each kernel spans all 3 of them"),
            (3 * 64 * 3 + 64, "you used k instead of k x k weights per kernel"),
            (3 * 64 * 3 * 3 + 3 * 64, "the bias is one number per output channel, not per (input, output) pair"),
        ], conv_rule),
        ("fc_params", "nn.Linear(224 * 224 * 3, 64)", 224 * 224 * 3 * 64 + 64, [
            (224 * 224 * 3 * 64, "you forgot the bias: one per output unit (+64)"),
            (224 * 224 * 64 + 64, "you forgot the 3 colour channels of the input"),
            (224 * 224 * 3 + 64, "each of the 64 units has its own weight for every input"),
        ], "A Linear layer has in_features x out_features weights, plus one bias per output unit."),
        ("conv2_params", "nn.Conv2d(64, 128, kernel_size=3, bias=False)", 64 * 128 * 3 * 3, [
            (64 * 128 * 3 * 3 + 128, "this layer has bias=False: no bias terms"),
            (128 * 3 * 3, "you forgot the input channels: each kernel spans all 64 of them"),
        ], conv_rule),
    ]

    def verify(self, *answers):
        if len(answers) != len(self.items):
            raise Incorrect(f"Pass the three counts: ex.q3.check(conv_params, fc_params, conv2_params); "
                            f"got {len(answers)} value(s).")
        for value, (name, layer, expected, mistakes, rule) in zip(answers, self.items):
            got = _as_int(value, name)
            if got != expected:
                why = [text for wrong, text in mistakes if wrong == got]
                if why:
                    raise Incorrect(f"{name} (for {layer}) is {got:,}: {why[0]}.")
                size = "large" if got > expected else "small"
                raise Incorrect(f"{name} (for {layer}) is {got:,}, which is too {size}. {rule} Count the weights "
                                f"and the biases separately, then add them.")
        return (f"Correct! The fully connected layer has {self.items[1][2] // self.items[0][2]:,} times "
                "as many parameters as the convolution, although the convolution computes 64 outputs "
                "at every position of the image.")


# --------------------------------------------------------------------------
# q4: receptive field of a stack
# --------------------------------------------------------------------------
def reference_receptive_field(layers) -> int:
    """Receptive field (in input pixels) of one unit after a stack of (kernel_size, stride) layers."""
    field, jump = 1, 1  # jump: distance in input pixels between neighbouring units of the current layer
    for k, s in layers:
        field += (k - 1) * jump
        jump *= s
    return field


class ReceptiveField(Question):
    title = "the receptive field of a stack of layers"
    hints = [
        "Start with r = 1 (one input pixel) and a jump j = 1 (neighbouring units are 1 input pixel apart).",
        "A layer with kernel k widens the field by (k - 1) * j: its k taps are j input pixels apart.",
        "After that layer, multiply j by its stride. Update r before j: a layer's own stride "
        "only affects the layers after it.",
    ]
    cases = [[], [(3, 1)], [(3, 1), (3, 1)], [(3, 1), (3, 1), (3, 1)], [(3, 1), (2, 2), (3, 1)],
             [(5, 1), (2, 2), (5, 1), (2, 2)], [(7, 2), (3, 2), (3, 1), (3, 1)], [(11, 4), (3, 2), (5, 1)]]
    mistakes = [
        ("ignores the strides: after a stride-s layer neighbouring units are s times further apart in the input",
         lambda ls: 1 + sum(k - 1 for k, _ in ls)),
        ("multiplies by a layer's own stride too early: a layer's stride only affects the layers after it",
         lambda ls: reference_receptive_field([(1 + (k - 1) * s, s) for k, s in ls])),
        ("adds the kernel sizes; each layer adds (k - 1) * jump", lambda ls: sum(k for k, _ in ls)),
        ("multiplies the kernel sizes; each layer adds (k - 1) * jump", lambda ls: math.prod(k for k, _ in ls)),
    ]

    def verify(self, fn):
        for layers in self.cases:
            what = f"receptive_field({layers})"
            got = _as_int(call(fn, [tuple(layer) for layer in layers], doing=f"`{what}`"), what)
            expected = reference_receptive_field(layers)
            if got != expected:
                why = [text for text, wrong in self.mistakes if wrong(layers) == got]
                raise Incorrect(f"{what} returned {got}; expected {expected}."
                                + (f" Your formula {why[0]}." if why else ""))


# --------------------------------------------------------------------------
# q5: max pooling by hand
# --------------------------------------------------------------------------
class MaxPool2d(Question):
    title = "max_pool2d by hand"
    hints = [
        "The output size is the convolution formula with no padding: (n - k) // s + 1, "
        "and stride=None means stride = kernel_size.",
        "Each output pixel is the max over a k x k window: x[..., i*s:i*s+k, j*s:j*s+k].amax(dim=(-2, -1)).",
        "Vectorised: x.unfold(2, k, s).unfold(3, k, s) has shape (N, C, H_out, W_out, k, k).",
    ]

    @staticmethod
    def cases():
        """(x, kernel_size, stride) with some all-negative windows (a max that starts at 0 fails)."""
        import torch

        g = torch.Generator().manual_seed(2)
        return [
            (torch.randn(2, 3, 8, 8, generator=g), 2, None),
            (torch.randn(1, 2, 7, 9, generator=g), 3, 2),
            (torch.randn(2, 1, 6, 6, generator=g) - 3.0, 2, None),  # every value negative
            (torch.randn(1, 4, 10, 7, generator=g), 3, 1),
            # (H - k) and (W - k) not multiples of the stride: a partial window at the edge must be dropped
            (torch.randn(1, 3, 8, 10, generator=g), 3, 2),
            (torch.randn(2, 2, 7, 9, generator=g), 2, None),
        ]

    def verify(self, fn):
        import torch
        import torch.nn.functional as F

        for x, k, s in self.cases():
            expected = F.max_pool2d(x, k, stride=s)
            args = (x.clone(), k) if s is None else (x.clone(), k, s)
            what = f"max_pool2d(x of shape {tuple(x.shape)}, {k}" + ("" if s is None else f", {s}") + ")"
            advice = "take the max over each window yourself."
            with _switched_off((F, "max_pool2d", advice), (torch, "max_pool2d", advice)):
                got = call(fn, *args, doing=f"`{what}`")
            if got is None:
                raise Incorrect(f"{what} returned None: did you forget the `return`?")
            if not isinstance(got, torch.Tensor):
                raise Incorrect(f"{what} should return a torch.Tensor, but it returned {describe(got)}.")
            if tuple(got.shape) != tuple(expected.shape):
                extra = ""
                if s is None and tuple(got.shape) == tuple(F.max_pool2d(x, k, stride=1).shape):
                    extra = " That is the shape for stride 1: stride=None means stride = kernel_size."
                elif tuple(got.shape) == tuple(F.max_pool2d(x, k, stride=s, ceil_mode=True).shape):
                    extra = (" You rounded the output size up: max pooling without padding keeps only whole "
                             "windows, so a partial window at the edge is dropped and each side is "
                             "(n - k) // s + 1.")
                raise Incorrect(f"{what} returned shape {tuple(got.shape)}; expected {tuple(expected.shape)}.{extra}")
            if _same(got, F.avg_pool2d(x, k, stride=s)):
                raise Incorrect(f"{what}: you averaged each window; max pooling keeps the largest value.")
            if _same(got, expected.clamp(min=0)) and not _same(got, expected):
                raise Incorrect(f"{what}: where every value in a window is negative you returned 0. Start each "
                                "max from the window's values (or -inf), not from 0.")
            expect_close(got, expected, what)


# --------------------------------------------------------------------------
# q6: a numerically stable softmax
# --------------------------------------------------------------------------
class Softmax(Question):
    title = "a numerically stable softmax"
    hints = [
        "softmax(z)_i = exp(z_i) / sum_j exp(z_j), over the last dimension (dim=-1, keepdim=True).",
        "exp(1000.0) is inf in float32, and inf / inf is NaN. Subtracting a constant c from every logit "
        "does not change the result: exp(z_i - c) / sum_j exp(z_j - c).",
        "Use c = z.amax(dim=-1, keepdim=True): then the largest exponent is exp(0) = 1. "
        "Do not change z in place (z -= c); write z - c.",
    ]

    @staticmethod
    def cases():
        import torch

        g = torch.Generator().manual_seed(3)
        return [
            ("logits of shape (4, 10)", torch.randn(4, 10, generator=g)),
            ("logits of shape (2, 3, 5)", 3 * torch.randn(2, 3, 5, generator=g)),
            ("huge logits [[1000, 1001, 1002], [-1000, -1000, -999]]",
             torch.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -1000.0, -999.0]])),
            # far apart within a row: shifting by the row mean (500) still overflows; only the max is safe
            ("logits far apart [[0, 1000], [1000, 0]]", torch.tensor([[0.0, 1000.0], [1000.0, 0.0]])),
        ]

    def verify(self, fn):
        import torch

        for label, z in self.cases():
            z_in = z.clone()
            what = f"softmax({label})"
            got = call(fn, z_in, doing=f"`{what}`")
            if got is None:
                raise Incorrect(f"{what} returned None: did you forget the `return`?")
            if not isinstance(got, torch.Tensor):
                raise Incorrect(f"{what} should return a torch.Tensor, but it returned {describe(got)}.")
            if not torch.equal(z_in, z):
                raise Incorrect(f"{what} changed its input in place (e.g. `z -= ...`); compute `z - c` "
                                "into a new tensor instead.")
            expected = torch.softmax(z, dim=-1)
            if tuple(got.shape) != tuple(expected.shape):
                raise Incorrect(f"{what} returned shape {tuple(got.shape)}; expected {tuple(expected.shape)} "
                                "(softmax keeps the shape: use keepdim=True for the sum).")
            if not torch.isfinite(got).all():
                if "far apart" in label:  # the huge logits passed, so the shift is there but is not the max
                    raise Incorrect(f"{what} contains NaN or inf: exp overflowed on the row [0, 1000]. Shifting "
                                    "by the row mean (or any constant other than the maximum) leaves exp(1000 - 500) "
                                    "= inf in float32; subtract each row's maximum, so the largest exponent is "
                                    "exp(0) = 1.")
                raise Incorrect(f"{what} contains NaN or inf: exp overflowed (exp(1000) is inf in float32, "
                                "and inf / inf is NaN). Subtract each row's maximum before exp.")
            if z.dim() > 1 and _same(got, torch.softmax(z, dim=0)) and not _same(got, expected):
                raise Incorrect(f"{what}: you normalised over dim 0 (down the columns). Each row, "
                                "the last dimension, must sum to 1: use dim=-1.")
            sums = got.sum(dim=-1)
            if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
                raise Incorrect(f"{what}: the probabilities along the last dimension should sum to 1; "
                                f"yours sum to {sums.flatten()[:3].tolist()}...")
            expect_close(got, expected, what)


# --------------------------------------------------------------------------
# q7: design a small CNN to a spec
# --------------------------------------------------------------------------
SMALL_CNN_SPEC = [
    # (layer in the spec, module type, output shape for a batch of 2 images of 1 x 28 x 28)
    ("conv1 = Conv2d(1, 8, 3, padding=1)", "Conv2d", (2, 8, 28, 28)),
    ("conv2 = Conv2d(8, 16, 3, padding=1)", "Conv2d", (2, 16, 14, 14)),
    ("fc = Linear(16 * 7 * 7, 10)", "Linear", (2, 10)),
]
SMALL_CNN_PARAMS = (1 * 8 * 9 + 8) + (8 * 16 * 9 + 16) + (16 * 7 * 7 * 10 + 10)  # 80 + 1,168 + 7,850 = 9,098


class SmallCNN(Question):
    title = "a small CNN built to a spec"
    hints = [
        "In __init__: self.conv1 = nn.Conv2d(1, 8, 3, padding=1), self.conv2 = nn.Conv2d(8, 16, 3, padding=1), "
        "self.pool = nn.MaxPool2d(2), self.fc = nn.Linear(16 * 7 * 7, 10).",
        "In forward: pool(relu(conv1(x))) -> (N, 8, 14, 14); pool(relu(conv2(...))) -> (N, 16, 7, 7); "
        "flatten(1) -> (N, 784); fc -> (N, 10).",
        "Print the shapes as you go: x = torch.zeros(2, 1, 28, 28), then run each step and print x.shape.",
    ]

    def verify(self, answer):
        import torch
        from torch import nn

        # The class (or any function returning the model), or a model already built.
        model = answer
        if callable(answer) and not isinstance(answer, nn.Module):
            model = call(answer, doing="Creating your model with `SmallCNN()`")
        if not isinstance(model, nn.Module):
            raise Incorrect(f"Pass the class SmallCNN (an nn.Module subclass); got {describe(model)}.")
        model.eval()
        x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(4))
        out, records = trace_forward(model, x)
        layers = [(name, mod, shape) for name, mod, shape in records if isinstance(mod, (nn.Conv2d, nn.Linear))]
        kinds = [type(mod).__name__ for _, mod, _ in layers]
        want = [kind for _, kind, _ in SMALL_CNN_SPEC]
        if kinds != want:
            ran = str(kinds) if len(kinds) <= 8 else str(kinds[:8])[:-1] + f", ... ({len(kinds)} in all)]"
            raise Incorrect(f"The forward pass should run the layers {want} in this order, as nn.Module "
                            f"attributes; yours ran {ran}.")
        for (name, mod, shape), (spec, _, expected) in zip(layers, SMALL_CNN_SPEC):
            if shape != expected:
                raise Incorrect(f"Layer `{name}` ({type(mod).__name__}, spec: {spec}) outputs shape {shape} "
                                f"for an input of shape (2, 1, 28, 28); expected {expected}."
                                + self._why(mod, shape, expected))
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, 10):
            raise Incorrect(f"The model should return the fc layer's output of shape (2, 10); it returned "
                            f"{describe(out)}.")
        self._check_relu(model, layers, x)
        n = sum(p.numel() for p in model.parameters())
        if n != SMALL_CNN_PARAMS:
            raise Incorrect(f"Your model has {n:,} parameters; the spec has {SMALL_CNN_PARAMS:,} "
                            "(80 + 1,168 + 7,850): remove any extra layers, and keep the biases.")
        self._check_values(out, [mod for _, mod, _ in layers], x)

    @staticmethod
    def _check_values(out, layers, x):
        """Compare with the learner's own conv1, conv2 and fc run in the spec's order."""
        import torch
        import torch.nn.functional as F

        conv1, conv2, fc = layers

        def spec(pool=F.max_pool2d, act=F.relu):
            h = pool(act(F.conv2d(x, conv1.weight, conv1.bias, padding=1)), 2)
            h = pool(act(F.conv2d(h, conv2.weight, conv2.bias, padding=1)), 2)
            return F.linear(h.flatten(1), fc.weight, fc.bias)

        with torch.no_grad():
            want = spec()
            if _same(out, want, atol=1e-5):
                return
            if _same(out, want.softmax(dim=1), atol=1e-5):
                raise Incorrect("Your model returns probabilities (a softmax of the fc layer's output). Return the "
                                "logits, the fc layer's output itself: nn.CrossEntropyLoss applies the softmax.")
            if _same(out, want.log_softmax(dim=1), atol=1e-5):
                raise Incorrect("Your model returns log-probabilities (a log_softmax of the fc layer's output). "
                                "Return the logits, the fc layer's output itself: nn.CrossEntropyLoss applies "
                                "log_softmax.")
            if _same(out, spec(pool=F.avg_pool2d), atol=1e-5):
                raise Incorrect("Your model uses average pooling; the spec uses 2x2 max pooling (nn.MaxPool2d(2)).")
            diff = (out.double() - want.double()).abs().max().item()
        raise Incorrect(f"The layers and shapes match the spec, but the output differs from your own layers run in "
                        f"the spec's order (by up to {diff:.3g}): conv1, ReLU, 2x2 max pool, conv2, ReLU, 2x2 max "
                        f"pool, flatten, fc. Check the activations (ReLU) and the pooling in forward.")

    @staticmethod
    def _why(mod, shape, expected) -> str:
        from torch import nn

        if isinstance(mod, nn.Conv2d):
            if shape[1] != expected[1]:
                return f" Its out_channels should be {expected[1]}."
            if shape[2:] == tuple(2 * d for d in expected[2:]):
                return " Its input is twice too large: did you max-pool (2 x 2) after the previous convolution?"
            if shape[2:] == tuple(d - 2 for d in expected[2:]):
                return " It loses 2 pixels per side pair: use padding=1 with the 3 x 3 kernel."
        return ""

    @staticmethod
    def _check_relu(model, layers, x):
        """The inputs of conv2 and fc must be non-negative if a ReLU came before them."""
        import torch

        seen = {}

        def record_min(name):
            def hook(module, inputs):  # returns None: a pre-hook's return value would replace the input
                seen.setdefault(name, inputs[0].min().item())
            return hook

        handles = [mod.register_forward_pre_hook(record_min(name)) for name, mod, _ in layers[1:]]
        try:
            with torch.no_grad():
                model(x)
        finally:
            for h in handles:
                h.remove()
        for (name, _, _), (prev_spec, _, _) in zip(layers[1:], SMALL_CNN_SPEC):
            if seen.get(name, 0.0) < 0:
                raise Incorrect(f"The input of `{name}` has negative values: apply ReLU after "
                                f"{prev_spec.split(' =')[0]} (before pooling).")


q1 = OutputSize()
q2 = Conv2d()
q3 = ParamCounts()
q4 = ReceptiveField()
q5 = MaxPool2d()
q6 = Softmax()
q7 = SmallCNN()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5, q6=q6, q7=q7)
