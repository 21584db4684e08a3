"""Checks for the exercise notebook ``solutions/01_cnn_basics.ipynb`` (How a CNN sees an image).

=====  ==============================================  ==========================================
q      the learner writes                              checked against
=====  ==============================================  ==========================================
q1     ``same_padding(kernel_size, dilation=1)``:      PyTorch's ``padding="same"`` (total
       the (left, right) zeros that keep the size at   d(k - 1), the odd zero on the right), on odd
       stride 1 (a derivation from the output-size     and even kernels, with and without dilation
       formula; ``FunctionQuestion``)
q2     ``conv2d(x, weight, bias, stride, padding)``    ``F.conv2d`` (switched off while checking)
q3     three parameter counts (``ValueQuestion``)      ``nn.Module.parameters()``
q4     ``receptive_field(layers)`` of (kernel_size,    the recurrence r += d (k - 1) j, j *= s
       stride, dilation) layers (``FunctionQuestion``)
q5     ``max_pool2d(x, kernel_size, stride=None)``     ``F.max_pool2d`` (switched off while checking), also
                                                       where (H - k) is not a multiple of the stride
q6     ``log_softmax(z)`` by log-sum-exp               ``torch.log_softmax`` (it, ``logsumexp`` and
       (``FunctionQuestion``)                          ``cross_entropy`` switched off while checking), on
                                                       rows like [0, 1000] and [-1000, 0]
q7     ``SmallCNN`` (an ``nn.Module`` class)           the spec's layer shapes and parameter count, and
                                                       its values: the learner's own layers in the spec's order
=====  ==============================================  ==========================================

Each check tries to say *which* mistake was made (forgot the dilation, flipped
kernel, ignored the stride, log of an underflowed softmax, ...) by comparing the
answer with the results of the common mistakes, not only that the numbers differ.
"""

from __future__ import annotations

import contextlib
import re

from .core import Incorrect, Question, call, describe, expect_close, register, trace_forward
from .kinds import FunctionQuestion, ValueQuestion
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


@contextlib.contextmanager
def _switched_off(*targets):
    """Temporarily replace library functions so that a learner's answer cannot call them.

    ``targets`` are ``(module_or_class, attribute_name, what_to_do_instead)`` triples. A method that
    ``torch.Tensor`` only inherits (``Tensor.log_softmax``) is shadowed, then the shadow removed.
    """
    saved = [(mod, name, name in vars(mod), getattr(mod, name)) for mod, name, _ in targets]

    def refusing(name, advice):
        def fn(*args, **kwargs):
            raise RuntimeError(f"`{name}` is switched off during this check: {advice}")
        return fn

    try:
        for mod, name, advice in targets:
            setattr(mod, name, refusing(name, advice))
        yield
    finally:
        for mod, name, own, original in reversed(saved):
            if own:
                setattr(mod, name, original)
            else:
                delattr(mod, name)


# --------------------------------------------------------------------------
# q1: the padding that keeps the size (derived from the output-size formula)
# --------------------------------------------------------------------------
def reference_same_padding(kernel_size, dilation=1) -> tuple[int, int]:
    """The zeros (left, right) that keep n_out = n at stride 1, placed as PyTorch's ``padding="same"`` does.

    n + left + right - d(k - 1) - 1 + 1 = n, so left + right = d(k - 1); when that is odd the extra
    zero goes on the right (bottom).
    """
    total = dilation * (kernel_size - 1)
    return total // 2, total - total // 2


class SamePadding(FunctionQuestion):
    title = "the padding that keeps the size"
    function = "same_padding"
    hints = [
        "Start from the chapter's formula at stride 1, with p_left zeros before and p_right after: "
        "n_out = n + p_left + p_right - d(k - 1). Ask for n_out = n.",
        "So the two sides together need d(k - 1) zeros: 2 for a plain 3 x 3 kernel, 4 for a 3 x 3 kernel with "
        "dilation 2. Split them as evenly as you can.",
        "When d(k - 1) is odd the two sides cannot be equal: the left side gets d(k - 1) // 2, the right side "
        "the rest. Return (left, right).",
    ]
    # (kernel_size,) or (kernel_size, dilation): odd kernels first, then dilation, then even kernels
    # Kernels 2 and 4 with dilations 2 and 3 come before the plain even kernels: on them padding k // 2 on
    # each side, rounding both halves up and rounding both down give three different answers.
    cases = [(3,), (5,), (1,), (7,), (3, 2), (5, 3), ((3,), {"dilation": 4}), (2, 2), (4, 3), (2,), (4,), (6, 2),
             (8, 1)]
    mistakes = [
        ("forgot the dilation: a dilated kernel covers d(k - 1) + 1 pixels, so it needs d(k - 1) zeros in all",
         lambda k, dilation=1: reference_same_padding(k)),
        ("padded k // 2 (times the dilation) on each side: that is right for odd kernels only. For an even "
         "kernel k // 2 is k / 2, not (k - 1) / 2, so the output comes out larger than the input",
         lambda k, dilation=1: (dilation * (k // 2), dilation * (k // 2))),
        ("put the extra zero on the left (top): PyTorch's padding=\"same\" puts it on the right (bottom)",
         lambda k, dilation=1: tuple(reversed(reference_same_padding(k, dilation)))),
        ("padded d(k - 1) on each side: padding goes on both sides, so the two sides together add d(k - 1)",
         lambda k, dilation=1: (dilation * (k - 1), dilation * (k - 1))),
        ("took d * k pixels for the span of a dilated kernel: its k taps are d apart, so it spans d(k - 1) + 1",
         lambda k, dilation=1: ((dilation * k - 1) // 2, dilation * k - 1 - (dilation * k - 1) // 2)),
        ("rounded both sides down: when d(k - 1) is odd one side needs one more zero, or the output shrinks by one",
         lambda k, dilation=1: (dilation * (k - 1) // 2, dilation * (k - 1) // 2)),
        ("rounded both sides up: when d(k - 1) is odd that is one zero too many, and the output grows by one",
         lambda k, dilation=1: (-(-dilation * (k - 1) // 2), -(-dilation * (k - 1) // 2))),
    ]
    reference = staticmethod(reference_same_padding)
    success = ("Correct! For odd kernels at dilation 1 this is the familiar (k - 1) / 2 on each side. Whenever "
               "d(k - 1) is odd, as for an even kernel at dilation 1, the zeros cannot be split evenly and the output "
               "shifts by half a pixel: one reason most networks use odd kernels.")

    def normalise(self, got, label: str):
        """Two whole numbers (left, right), as a tuple; a list is accepted too."""
        if isinstance(got, (tuple, list)) and len(got) == 2:
            return tuple(whole_number(v, f"{side} padding of {label}") for side, v in zip(("the left", "the right"),
                                                                                         got))
        raise Incorrect(f"{label} should return two whole numbers (left, right), the zeros before and after; "
                        f"it returned {describe(got)}.")


# --------------------------------------------------------------------------
# q2: a convolution layer by hand
# --------------------------------------------------------------------------
class Conv2d(Question):
    title = "conv2d by hand"
    hints = [
        "First pad x with zeros (torch.nn.functional.pad(x, (p, p, p, p))), then compute the output size "
        "with the chapter's formula, (n + 2p - k) // s + 1.",
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
def _layers_of_q3():
    """The three layers of q3, on the meta device (shapes only, no memory, no initialisation)."""
    from torch import nn

    return (nn.Conv2d(3, 64, kernel_size=3, device="meta"), nn.Linear(224 * 224 * 3, 64, device="meta"),
            nn.Conv2d(64, 128, kernel_size=3, bias=False, device="meta"))


class ParamCounts(ValueQuestion):
    title = "parameter counts of a convolution and a fully connected layer"
    names = ("conv_params", "fc_params", "conv2_params")
    hints = [
        "A Conv2d has one kernel of size in_channels x k x k per output channel, plus one bias per "
        "output channel.",
        "A Linear layer has one weight per (input, output) pair plus one bias per output. "
        "A 224 x 224 RGB image has 224 * 224 * 3 inputs.",
        "bias=False removes the bias term. Check yourself with "
        "sum(p.numel() for p in layer.parameters()).",
    ]
    # Wrong counts a learner plausibly writes, each with the slip it reveals (the right count is never printed).
    mistakes = {
        "conv_params": [
            (3 * 64 * 3 * 3, "you forgot the bias: one per output channel"),
            (64 * 3 * 3 + 64, "you forgot the input channels: each kernel spans all 3 of them"),
            (3 * 64 * 3 * 3 + 3 * 64, "the bias is one number per output channel, not per (input, output) pair"),
        ],
        "fc_params": [
            (224 * 224 * 3 * 64, "you forgot the bias: one per output unit"),
            (224 * 224 * 64 + 64, "you forgot the 3 colour channels of the input"),
            (224 * 224 * 3 + 64, "each of the 64 units has its own weight for every input"),
        ],
        "conv2_params": [
            (64 * 128 * 3 * 3 + 128, "this layer has bias=False: no bias terms"),
            (128 * 3 * 3, "you forgot the input channels: each kernel spans all 64 of them"),
        ],
    }
    wrong = ("count the weights and the biases separately, then add them. A Conv2d has out_channels x in_channels "
             "x k x k weights and one bias per output channel unless bias=False; a Linear layer has in_features x "
             "out_features weights and one bias per output unit")

    def expected(self) -> tuple:
        return tuple(sum(p.numel() for p in layer.parameters()) for layer in _layers_of_q3())

    @property
    def success(self) -> str:
        conv, fc, _ = self.expected()
        return (f"Correct! The fully connected layer has {fc // conv:,} times as many parameters as the "
                "convolution, although the convolution computes 64 outputs at every position of the image.")


# --------------------------------------------------------------------------
# q4: receptive field of a stack, with dilation (a derivation the chapter did not print)
# --------------------------------------------------------------------------
def reference_receptive_field(layers) -> int:
    """Receptive field (input pixels, one side) after a stack of (kernel_size, stride, dilation) layers."""
    field, jump = 1, 1  # jump: distance in input pixels between neighbouring units of the current layer
    for k, s, d in layers:
        field += d * (k - 1) * jump  # k taps, d units apart, each unit `jump` input pixels from the next
        jump *= s
    return field


def _rf(layers, grow, step) -> int:
    """A receptive-field recurrence with the field update ``grow(field, jump, k, d)`` and jump update ``step``."""
    field, jump = 1, 1
    for k, s, d in layers:
        field = grow(field, jump, k, d)
        jump = step(jump, s, d)
    return field


def _early(layers) -> int:
    """The "stride too early" slip: the jump is multiplied by a layer's stride before its own field update."""
    field, jump = 1, 1
    for k, s, d in layers:
        jump *= s
        field += d * (k - 1) * jump
    return field


class _Layers(list):
    """A list of layers whose repr has no spaces, so that a failing case shows whole in the message."""

    def __repr__(self) -> str:
        return "[" + ",".join("(" + ",".join(map(str, layer)) + ")" for layer in self) + "]"


class ReceptiveField(FunctionQuestion):
    title = "the receptive field of a stack of dilated layers"
    function = "receptive_field"
    result = "int"
    hints = [
        "Keep the chapter's two numbers: the field r (start at 1) and the jump j, the distance in input pixels "
        "between neighbouring units of the current layer (start at 1).",
        "A dilated kernel's k taps sit d units apart, so one application spans d(k - 1) + 1 units of its input: "
        "how much wider than 1 unit is that, in input pixels?",
        "The field grows by d(k - 1) j. Then the stride multiplies j; the dilation does not: it spreads this "
        "layer's taps, it does not move this layer's output units further apart.",
    ]
    # Layers are (kernel_size, stride, dilation); one list per case, simplest first.
    # A dilated layer after a plain one comes before a dilated layer alone: from a field of 1, "the span is
    # d * k" and "dilation multiplies the field" give the same number, after a plain layer they do not.
    cases = [(_Layers(),), (_Layers([(3, 1, 1)]),), (_Layers([(3, 1, 1), (3, 1, 2)]),), (_Layers([(3, 1, 2)]),),
             (_Layers([(5, 1, 3)]),), (_Layers([(3, 2, 1), (3, 1, 1)]),),
             (_Layers([(3, 1, 1), (3, 1, 2), (3, 1, 4)]),), (_Layers([(3, 2, 1), (3, 1, 2)]),),
             (_Layers([(3, 2, 2), (3, 1, 1)]),), (_Layers([(2, 2, 1), (3, 1, 2), (3, 1, 2)]),),
             (_Layers([(7, 2, 1), (3, 2, 2), (3, 1, 4)]),)]
    reference = staticmethod(reference_receptive_field)
    mistakes = [
        ("ignored the dilation: a dilated kernel's taps are d units apart, so it spans d(k - 1) + 1 of them",
         lambda ls: _rf(ls, lambda r, j, k, d: r + (k - 1) * j, lambda j, s, d: j * s)),
        ("ignored the strides: after a stride-s layer neighbouring units are s times further apart in the input",
         lambda ls: _rf(ls, lambda r, j, k, d: r + d * (k - 1) * j, lambda j, s, d: j)),
        ("multiplied the jump by the dilation too: dilation spreads this layer's taps but keeps its output units "
         "where they were, so only the stride multiplies the jump",
         lambda ls: _rf(ls, lambda r, j, k, d: r + d * (k - 1) * j, lambda j, s, d: j * s * d)),
        ("multiplied the receptive field by the dilation: dilation widens this layer's step only, by "
         "(d - 1)(k - 1) jumps, it does not scale what the earlier layers already see",
         lambda ls: _rf(ls, lambda r, j, k, d: (r + (k - 1) * j) * d, lambda j, s, d: j * s)),
        ("took d * k pixels for the span of a dilated kernel: its k taps are d apart, so it spans d(k - 1) + 1",
         lambda ls: _rf(ls, lambda r, j, k, d: r + (d * k - 1) * j, lambda j, s, d: j * s)),
        ("multiplied the jump by a layer's own stride too early: a layer's stride only affects the layers after it",
         _early),
        ("added the spans d(k - 1) + 1 of the layers; each layer adds d(k - 1) jumps to the field",
         lambda ls: sum(d * (k - 1) + 1 for k, _, d in ls)),
    ]
    success = ("Correct! With dilations 1, 2, 4, three 3 x 3 layers see 15 x 15 pixels, with 9 weights per pair of "
               "channels in each layer and no loss of resolution: the exponential growth that Yu & Koltun (2016, "
               "Section 2) build on.")


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
# q6: a numerically stable log_softmax, by log-sum-exp (the chapter printed softmax, not this)
# --------------------------------------------------------------------------
def reference_log_softmax(z):
    """log_softmax over the last dimension, computed in float64 from the log-sum-exp identity."""
    z64 = z.double()
    m = z64.amax(dim=-1, keepdim=True)
    return (z64 - m - (z64 - m).exp().sum(dim=-1, keepdim=True).log()).to(z.dtype)


def _stable_softmax(z):
    e = (z - z.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


def _log_softmax_shifted_by(z, c):
    """z - c - log(sum exp(z - c)): right for any finite c in exact arithmetic, not in float32."""
    return z - c - (z - c).exp().sum(dim=-1, keepdim=True).log()


class LogSoftmax(FunctionQuestion):
    title = "a numerically stable log_softmax"
    function = "log_softmax"
    result = "tensor"
    atol, rtol = 1e-4, 1e-5
    hints = [
        "log softmax(z)_i = z_i - log(sum_j exp(z_j)). The danger is the log of the sum: exp(1000) is inf in "
        "float32, and a sum of exp(-1000)'s is 0, whose log is -inf.",
        "For any constant c, log(sum_j exp(z_j)) = c + log(sum_j exp(z_j - c)). Which c makes the largest term "
        "exp(0) = 1, so the sum lies between 1 and K?",
        "Take c = each row's maximum, kept as a column (keepdim=True) so that each row subtracts its own. Do not "
        "take the log of a softmax: a probability that underflowed to 0 has no log. Skeleton: "
        "m = ...; return z - ... - (...).exp().sum(dim=-1, keepdim=True).log()",
    ]

    @staticmethod
    def _cases():
        import torch

        g = torch.Generator().manual_seed(3)
        return [
            torch.randn(5, 5, generator=g),
            3 * torch.randn(2, 3, 7, generator=g),
            torch.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -1000.0, -999.0]]),
            # exp(100) overflows float32: shifting by the row minimum fails here, shifting by the mean does not
            torch.tensor([[-100.0, 0.0, 0.0], [0.0, 0.0, 50.0]]),
            # far apart within a row: shifting by the mean (500) still overflows, and softmax underflows to 0
            torch.tensor([[0.0, 1000.0], [-1000.0, 0.0]]),
            torch.tensor([[-1000.0, 0.0], [0.0, 1000.0]]),
            torch.linspace(-20.0, 30.0, 11),
        ]

    @property
    def cases(self):
        return [(z,) for z in self._cases()]

    reference = staticmethod(reference_log_softmax)
    mistakes = [
        ("did not shift the logits: exp(1000) is inf in float32, so its log is inf too. Subtract each row's "
         "maximum m before exp, and add m back outside the log",
         lambda z: z - z.exp().sum(dim=-1, keepdim=True).log()),
        ("took the log of a softmax: where a probability underflows to 0 (exp(-1000) is 0 in float32) its log is "
         "-inf, where the right answer is about -1000. Stay in log space: z - m - log(sum exp(z - m))",
         lambda z: _stable_softmax(z).log()),
        ("shifted by the row mean (or another value that is not the row's maximum): for the row [0, 1000] that "
         "leaves exp(1000 - 500) = inf. Only the maximum makes every exponent at most 0",
         lambda z: _log_softmax_shifted_by(z, z.mean(dim=-1, keepdim=True))),
        ("shifted by the row minimum: then every exponent is at least 0 and the largest, exp(max - min), "
         "overflows (exp(100) is inf in float32). Shift by the maximum, so every exponent is at most 0",
         lambda z: _log_softmax_shifted_by(z, z.amin(dim=-1, keepdim=True))),
        ("shifted by the maximum of the whole tensor, not of each row: a row far below it sums exp's that all "
         "underflow to 0. Use z.amax(dim=-1, keepdim=True)",
         lambda z: _log_softmax_shifted_by(z, z.amax())),
        ("dropped the m from log-sum-exp: log(sum exp(z)) = m + log(sum exp(z - m)), so the result is "
         "z - m - log(sum exp(z - m))",
         lambda z: z - (z - z.amax(dim=-1, keepdim=True)).exp().sum(dim=-1, keepdim=True).log()),
        ("added m instead of subtracting it: log_softmax(z) = z - m - log(sum exp(z - m))",
         lambda z: z + z.amax(dim=-1, keepdim=True) - (z - z.amax(dim=-1, keepdim=True)).exp()
         .sum(dim=-1, keepdim=True).log()),
        ("reduced over dim 0 (down the columns): each row, the last dimension, is one set of logits: use dim=-1",
         lambda z: z - z.amax(dim=0, keepdim=True)
         - (z - z.amax(dim=0, keepdim=True)).exp().sum(dim=0, keepdim=True).log()),
        ("forgot keepdim=True: the row maxima and sums of shape (N,) were subtracted along the wrong axis. "
         "Keep them as (N, 1) so each row subtracts its own",
         lambda z: z - z.amax(dim=-1) - (z - z.amax(dim=-1)).exp().sum(dim=-1).log()),
    ]
    success = ("Correct! log_softmax(z) = z - m - log(sum exp(z - m)) never takes the log of a number that "
               "underflowed: F.cross_entropy computes the loss this way, from the logits.")

    def same(self, got, expected) -> bool:
        """As the kind's, with inf equal to inf and NaN to NaN, so a slip that overflows is recognised."""
        import torch

        return (isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(expected.shape)
                and bool(torch.isclose(got.detach().double().cpu(), expected.double().cpu(), atol=self.atol,
                                       rtol=self.rtol, equal_nan=True).all()))

    def verify(self, fn):
        import torch
        import torch.nn.functional as F

        advice = "compute log-sum-exp yourself (subtract each row's maximum first)."
        off = [(torch, "log_softmax", advice), (F, "log_softmax", advice), (torch.Tensor, "log_softmax", advice),
               (torch, "logsumexp", advice), (torch.Tensor, "logsumexp", advice),
               (torch.special, "log_softmax", advice), (torch.special, "logsumexp", advice),
               (F, "cross_entropy", advice), (F, "nll_loss", advice)]
        try:
            with _switched_off(*off):
                return super().verify(fn)
        except Incorrect as exc:
            text = str(exc)
            if "it looks like" not in text and re.search(r"\bNaN\b|-?\binf\b", text):
                raise Incorrect(text + " Somewhere exp overflowed to inf, or a sum underflowed to 0 whose log is "
                                "-inf: subtract each row's maximum m before exp, add m back outside the log, and "
                                "never take the log of a probability.") from None
            raise


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


q1 = SamePadding()
q2 = Conv2d()
q3 = ParamCounts()
q4 = ReceptiveField()
q5 = MaxPool2d()
q6 = LogSoftmax()
q7 = SmallCNN()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5, q6=q6, q7=q7)
