"""Tests of the checks of exercise 01 (How a CNN sees an image): right answers pass, planted
mistakes fail with the message that names the mistake, untouched stubs say "not attempted"."""

import math

import pytest
import torch
import torch.nn.functional as F
from checkhelpers import assert_incorrect, stub
from icdl.checks import ex01_cnn_basics as ex
from icdl.checks.core import Outcome
from torch import nn

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5, ex.q6, ex.q7]


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_untouched_answers_are_not_attempted(q):
    nones = (None, None, None) if q is ex.q3 else (None,)
    assert q.evaluate(*nones).outcome is Outcome.NOT_ATTEMPTED
    if q is not ex.q3:
        assert q.evaluate(stub).outcome is Outcome.NOT_ATTEMPTED
    else:
        assert q.evaluate(1792, None, 73_728).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "01_cnn_basics"


@pytest.mark.parametrize("q", [ex.q1, ex.q4, ex.q6], ids=lambda q: q.name)
def test_every_listed_mistake_is_reported_with_its_own_message(q):
    # each slip in the table, handed in as an answer, is recognised as itself (no other slip's message wins)
    for message, wrong in q.mistakes:
        assert_incorrect(q.evaluate(wrong), "it looks like you " + message)


# -- q1: the padding that keeps the size -----------------------------------
def same_padding(kernel_size, dilation=1):
    total = dilation * (kernel_size - 1)
    return total // 2, total - total // 2


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("case", ex.q1.cases, ids=str)
def test_q1_reference_is_what_pytorch_pads(case):
    # padding="same" in nn.Conv2d gives the same output as F.pad with (left, right) and no padding
    args, kwargs = case if isinstance(case[0], tuple) else (case, {})
    k, d = [*args, kwargs.get("dilation", 1)][:2]
    left, right = same_padding(k, d)
    conv = nn.Conv2d(1, 1, k, dilation=d, padding="same", bias=False)
    x = torch.randn(1, 1, 23, 19, generator=torch.Generator().manual_seed(0))
    padded = F.conv2d(F.pad(x, (left, right, left, right)), conv.weight, dilation=d)
    assert padded.shape == conv(x).shape == x.shape
    assert torch.allclose(padded, conv(x), atol=1e-6)


def test_q1_right_answers_pass():
    assert ex.q1.evaluate(same_padding).outcome is Outcome.CORRECT
    assert ex.q1.evaluate(lambda k, dilation=1: [dilation * (k - 1) // 2, (dilation * (k - 1) + 1) // 2]).outcome \
        is Outcome.CORRECT  # a list is fine too


@pytest.mark.parametrize("wrong, fragments", [
    (lambda k, dilation=1: ((k - 1) // 2, k - 1 - (k - 1) // 2),
     ["same_padding(3, 2) returned tuple (1, 1)", "forgot the dilation"]),
    (lambda k, dilation=1: (k // 2, k // 2), ["same_padding(3, 2)", "forgot the dilation"]),
    (lambda k, dilation=1: (dilation * (k // 2),) * 2,
     ["same_padding(2, 2) returned tuple (2, 2)", "odd kernels only"]),
    (lambda k, dilation=1: same_padding(k, dilation)[::-1], ["same_padding(4, 3)", "extra zero on the left"]),
    (lambda k, dilation=1: (dilation * (k - 1),) * 2, ["same_padding(3) returned tuple (2, 2)", "on each side"]),
    (lambda k, dilation=1: ((dilation * k - 1) // 2, dilation * k - 1 - (dilation * k - 1) // 2),
     ["same_padding(3, 2) returned tuple (2, 3)", "d * k pixels"]),
    (lambda k, dilation=1: (dilation * (k - 1) // 2,) * 2,
     ["same_padding(4, 3) returned tuple (4, 4)", "rounded both sides down"]),
    (lambda k, dilation=1: (math.ceil(dilation * (k - 1) / 2),) * 2,
     ["same_padding(4, 3) returned tuple (5, 5)", "rounded both sides up"]),
])
def test_q1_mistakes_are_named(wrong, fragments):
    assert_incorrect(ex.q1.evaluate(wrong), *fragments)


def test_q1_wrong_types_are_named():
    assert_incorrect(ex.q1.evaluate(lambda k, dilation=1: (dilation * (k - 1) / 2,) * 2), "float", "//")
    assert_incorrect(ex.q1.evaluate(lambda k, dilation=1: dilation * (k - 1) // 2), "two whole numbers", "int 1")
    assert_incorrect(ex.q1.evaluate(lambda k, dilation=1: (0, 1, 1)), "two whole numbers")
    assert_incorrect(ex.q1.evaluate(lambda k, dilation=1: None), "forget the `return`")
    # a signature without dilation fails with the learner's TypeError, not a crash
    assert_incorrect(ex.q1.evaluate(lambda k: same_padding(k)), "same_padding(3, 2)` raised TypeError",
                     "takes 1 positional argument")


# -- q2: conv2d by hand ------------------------------------------------------
def conv2d(x, weight, bias=None, stride=1, padding=0):
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    x = F.pad(x, (padding,) * 4)
    h_out = (h + 2 * padding - kh) // stride + 1
    w_out = (w + 2 * padding - kw) // stride + 1
    out = torch.zeros(n, o, h_out, w_out)
    for i in range(h_out):
        for j in range(w_out):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]  # (N, C, kh, kw)
            out[:, :, i, j] = torch.einsum("nchw,ochw->no", patch, weight)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def conv2d_unfold(x, weight, bias=None, stride=1, padding=0):
    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    cols = F.unfold(x, (kh, kw), stride=stride, padding=padding)  # (N, C*kh*kw, L)
    out = (weight.view(o, -1) @ cols).view(n, o, (h + 2 * padding - kh) // stride + 1, -1)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def test_q2_right_answers_pass():
    assert ex.q2.evaluate(conv2d).outcome is Outcome.CORRECT
    assert ex.q2.evaluate(conv2d_unfold).outcome is Outcome.CORRECT


def test_q2_mistakes_are_named():
    assert_incorrect(ex.q2.evaluate(lambda x, w, b=None, stride=1, padding=0: conv2d(x, w, None, stride, padding)),
                     "except for the bias", "bias[o]")
    assert_incorrect(ex.q2.evaluate(lambda x, w, b=None, stride=1, padding=0:
                                    conv2d(x, w.flip(-2, -1), b, stride, padding)),
                     "flipped the kernel", "cross-correlation")
    assert_incorrect(ex.q2.evaluate(lambda x, w, b=None, stride=1, padding=0: conv2d(x, w, b, 1, padding)),
                     "stride=2", "returned shape (2, 5, 8, 8); expected (2, 5, 4, 4)", "every 2-th position")
    assert_incorrect(ex.q2.evaluate(lambda x, w, b=None, stride=1, padding=0: conv2d(x, w, b, stride, 0)),
                     "padding=1", "without padding")
    assert_incorrect(ex.q2.evaluate(lambda x, w, b=None, stride=1, padding=0: F.conv2d(x, w, b, stride, padding)),
                     "switched off")
    assert_incorrect(ex.q2.evaluate(lambda x, w, b=None, stride=1, padding=0: conv2d(x, w, b, stride, padding) * 2),
                     "differs from the expected values")
    assert_incorrect(ex.q2.evaluate(lambda x, w, b=None, stride=1, padding=0: None), "forget the `return`")


def test_q2_restores_the_library_function():
    ex.q2.evaluate(lambda x, w, b=None, stride=1, padding=0: F.conv2d(x, w, b, stride, padding))
    assert torch.nn.functional.conv2d is torch.conv2d
    assert nn.Conv2d(1, 1, 3)(torch.zeros(1, 1, 5, 5)).shape == (1, 1, 3, 3)


# -- q3: parameter counts ----------------------------------------------------
def test_q3_right_answer_passes_and_matches_pytorch():
    counts = [sum(p.numel() for p in layer.parameters()) for layer in
              (nn.Conv2d(3, 64, 3), nn.Linear(224 * 224 * 3, 64), nn.Conv2d(64, 128, 3, bias=False))]
    assert list(ex.q3.expected()) == counts
    result = ex.q3.evaluate(*counts)
    assert result.outcome is Outcome.CORRECT and "5,376 times" in result.message


def test_q3_mistakes_are_named():
    assert_incorrect(ex.q3.evaluate(3 * 64 * 9, 9_633_856, 73_728), "conv_params", "1,728", "forgot the bias")
    assert_incorrect(ex.q3.evaluate(64 * 9 + 64, 9_633_856, 73_728), "conv_params", "input channels")
    assert_incorrect(ex.q3.evaluate(1792 + 128, 9_633_856, 73_728), "conv_params", "per output channel")
    assert_incorrect(ex.q3.evaluate(1792, 224 * 224 * 64 + 64, 73_728), "fc_params", "colour channels")
    assert_incorrect(ex.q3.evaluate(1792, 224 * 224 * 3 * 64, 73_728), "fc_params", "forgot the bias")
    assert_incorrect(ex.q3.evaluate(1792, 224 * 224 * 3 + 64, 73_728), "fc_params", "every input")
    assert_incorrect(ex.q3.evaluate(1792, 9_633_856, 73_728 + 128), "conv2_params", "bias=False")
    assert_incorrect(ex.q3.evaluate(1792, 9_633_856, 128 * 9), "conv2_params", "all 64 of them")
    assert_incorrect(ex.q3.evaluate(1792, 9_633_856, 73_729), "conv2_params", "weights and the biases separately")
    assert_incorrect(ex.q3.evaluate(1792.5, 9_633_856, 73_728), "conv_params", "should be an int")
    assert_incorrect(ex.q3.evaluate(1792.0, 9_633_856, 73_728), "float 1792.0", "//")


@pytest.mark.parametrize("answers", [(3 * 64 * 9, 9_633_856, 73_728), (1792, 9_633_856, 73_729),
                                     (1792, 9_633_855, 73_728), (1000, 9_633_856, 73_728)])
def test_q3_messages_do_not_print_the_expected_count(answers):
    message = ex.q3.evaluate(*answers).message
    for right in ("1,792", "1792", "9,633,856", "9633856", "73,728", "73728"):
        if right.replace(",", "") not in {str(a) for a in answers}:
            assert right not in message, message
    assert ex.q3.evaluate(1792, None, None).outcome is Outcome.NOT_ATTEMPTED


# -- q4: receptive field with dilation ---------------------------------------
def receptive_field(layers):
    field, jump = 1, 1
    for k, s, d in layers:
        field += d * (k - 1) * jump
        jump *= s
    return field


def measured_receptive_field(layers, size=96):
    """The input pixels one central output unit depends on, by autograd (as in the chapter), with dilation."""
    stack = nn.Sequential(*[nn.Conv2d(1, 1, k, stride=s, dilation=d, bias=False) for k, s, d in layers])
    for conv in stack:
        nn.init.constant_(conv.weight, 1.0)
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    y = stack(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows = x.grad[0, 0].abs().sum(dim=1).nonzero()
    return int(rows.max() - rows.min() + 1)


def test_q4_right_answer_passes_and_matches_autograd():
    assert ex.q4.evaluate(receptive_field).outcome is Outcome.CORRECT
    for (layers,) in ex.q4.cases[1:]:
        assert receptive_field(layers) == measured_receptive_field(layers), layers
    assert receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)]) == 15  # Yu & Koltun (2016): 2^(i+2) - 1


def test_q4_mistakes_are_named():
    def rf(layers, grow, step):
        field, jump = 1, 1
        for k, s, d in layers:
            field, jump = grow(field, jump, k, d), step(jump, s, d)
        return field

    assert_incorrect(ex.q4.evaluate(lambda ls: rf(ls, lambda r, j, k, d: r + (k - 1) * j, lambda j, s, d: j * s)),
                     "receptive_field([(3,1,1),(3,1,2)]) returned 5", "ignored the dilation")
    assert_incorrect(ex.q4.evaluate(lambda ls: 1 + sum(d * (k - 1) for k, _, d in ls)),
                     "receptive_field([(3,2,1),(3,1,1)]) returned 5", "ignored the strides")
    assert_incorrect(ex.q4.evaluate(lambda ls: rf(ls, lambda r, j, k, d: r + d * (k - 1) * j,
                                                  lambda j, s, d: j * s * d)),
                     "returned 23", "multiplied the jump by the dilation")
    assert_incorrect(ex.q4.evaluate(lambda ls: rf(ls, lambda r, j, k, d: (r + (k - 1) * j) * d,
                                                  lambda j, s, d: j * s)),
                     "returned 10", "multiplied the receptive field by the dilation")
    assert_incorrect(ex.q4.evaluate(lambda ls: rf(ls, lambda r, j, k, d: r + (d * k - 1) * j,
                                                  lambda j, s, d: j * s)),
                     "returned 8", "d * k pixels")

    def too_early(layers):
        field, jump = 1, 1
        for k, s, d in layers:
            jump *= s
            field += d * (k - 1) * jump
        return field
    assert_incorrect(ex.q4.evaluate(too_early), "receptive_field([(3,2,1),(3,1,1)]) returned 9", "too early")
    assert_incorrect(ex.q4.evaluate(lambda ls: sum(d * (k - 1) + 1 for k, _, d in ls)),
                     "receptive_field([])", "returned 0", "added the spans")
    # the old (kernel_size, stride) answer from the chapter fails with the learner's own error, not a crash
    assert_incorrect(ex.q4.evaluate(lambda ls: 1 + sum(k - 1 for k, _ in ls)), "ValueError", "unpack")
    assert_incorrect(ex.q4.evaluate(lambda ls: float(receptive_field(ls))), "float", "//")


# -- q5: max pooling ---------------------------------------------------------
def max_pool2d(x, kernel_size, stride=None):
    stride = stride or kernel_size
    return x.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride).amax(dim=(-2, -1))


def test_q5_right_answer_passes():
    assert ex.q5.evaluate(max_pool2d).outcome is Outcome.CORRECT


def test_q5_mistakes_are_named():
    def averaged(x, k, s=None):
        s = s or k
        return x.unfold(2, k, s).unfold(3, k, s).mean(dim=(-2, -1))
    assert_incorrect(ex.q5.evaluate(averaged), "averaged")
    assert_incorrect(ex.q5.evaluate(lambda x, k, s=None: max_pool2d(x, k, s or 1)),
                     "expected (2, 3, 4, 4)", "stride=None means stride = kernel_size")
    assert_incorrect(ex.q5.evaluate(lambda x, k, s=None: max_pool2d(x, k, s).clamp(min=0)),
                     "every value in a window is negative", "-inf")
    assert_incorrect(ex.q5.evaluate(lambda x, k, s=None: F.max_pool2d(x, k, s)), "switched off")

    def rounds_up(x, k, s=None):  # keeps a partial last window: the output size is rounded up
        s = s or k
        h, w = x.shape[-2:]
        pad_h, pad_w = (-(h - k)) % s, (-(w - k)) % s
        return max_pool2d(F.pad(x, (0, pad_w, 0, pad_h), value=float("-inf")), k, s)
    assert_incorrect(ex.q5.evaluate(rounds_up), "rounded the output size up", "whole windows", "(n - k) // s + 1")
    assert F.max_pool2d(torch.ones(1, 1, 2, 2), 2).item() == 1.0  # restored after the check


# -- q6: a stable log_softmax (log-sum-exp) ----------------------------------
def log_softmax(z):
    m = z.amax(dim=-1, keepdim=True)
    return z - m - (z - m).exp().sum(dim=-1, keepdim=True).log()


def test_q6_right_answer_passes_and_the_reference_is_torch():
    assert ex.q6.evaluate(log_softmax).outcome is Outcome.CORRECT
    for (z,) in ex.q6.cases:
        assert torch.allclose(ex.reference_log_softmax(z), torch.log_softmax(z, dim=-1), atol=1e-5)
    row = ex.reference_log_softmax(torch.tensor([[0.0, 1000.0], [-1000.0, 0.0]]))
    assert row.tolist() == [[-1000.0, 0.0], [-1000.0, 0.0]]


def stable_softmax(z):
    e = (z - z.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


@pytest.mark.parametrize("wrong, fragments", [
    (lambda z: z - torch.log(torch.exp(z).sum(dim=-1, keepdim=True)), ["did not shift", "exp(1000)"]),
    (lambda z: stable_softmax(z).log(), ["log of a softmax", "underflows to 0"]),
    (lambda z: torch.softmax(z, dim=-1).log(), ["log of a softmax", "-inf"]),
    (lambda z: (z - z.mean(-1, keepdim=True)) - (z - z.mean(-1, keepdim=True)).exp().sum(-1, keepdim=True).log(),
     ["row mean", "[0, 1000]"]),
    (lambda z: (z - z.min(-1, keepdim=True).values) - (z - z.min(-1, keepdim=True).values).exp().sum(-1, keepdim=True)
     .log(), ["row minimum", "exp(100)"]),
    (lambda z: (z - z.max()) - (z - z.max()).exp().sum(-1, keepdim=True).log(), ["whole tensor", "each row"]),
    (lambda z: z - (z - z.amax(-1, keepdim=True)).exp().sum(-1, keepdim=True).log(), ["dropped the m"]),
    (lambda z: z - z.amax(0, keepdim=True) - (z - z.amax(0, keepdim=True)).exp().sum(0, keepdim=True).log(),
     ["dim 0"]),
    (lambda z: z - z.amax(-1) - (z - z.amax(-1)).exp().sum(-1).log(), ["keepdim=True"]),
])
def test_q6_mistakes_are_named(wrong, fragments):
    assert_incorrect(ex.q6.evaluate(wrong), *fragments)


def test_q6_torch_own_functions_are_switched_off_and_restored():
    for answer in (lambda z: torch.log_softmax(z, dim=-1), lambda z: F.log_softmax(z, dim=-1),
                   lambda z: z.log_softmax(-1), lambda z: nn.LogSoftmax(dim=-1)(z),
                   lambda z: z - torch.logsumexp(z, dim=-1, keepdim=True),
                   lambda z: z - z.logsumexp(-1, keepdim=True)):
        assert_incorrect(ex.q6.evaluate(answer), "switched off")
    z = torch.randn(3, 4)
    assert torch.allclose(z.log_softmax(-1), F.log_softmax(z, dim=-1)) and "log_softmax" not in vars(torch.Tensor)
    assert torch.allclose(torch.logsumexp(z, -1), z.logsumexp(-1)) and "logsumexp" not in vars(torch.Tensor)
    assert F.cross_entropy(z, torch.tensor([0, 1, 2])).isfinite()


def test_q6_an_unnamed_overflow_is_explained():
    # dividing by exp(m) after the sum, instead of shifting before exp, is not a listed mistake:
    # exp(1000) is inf and exp(-1002) is 0, so the sum becomes inf * 0 = NaN
    def divides_late(z):
        m = z.amax(dim=-1, keepdim=True)
        return z - m - (z.exp().sum(dim=-1, keepdim=True) * (-m).exp()).log()
    assert_incorrect(ex.q6.evaluate(divides_late), "contains NaN", "overflowed to inf", "subtract each row's maximum")
    assert_incorrect(ex.q6.evaluate(lambda z: log_softmax(z) * float("nan")), "contains NaN", "each row's maximum")
    # a plain wrong value gets the plain message, without the overflow explanation
    result = ex.q6.evaluate(lambda z: z - z.amax(-1, keepdim=True) - (z - z.amax(-1, keepdim=True)).exp().sum().log())
    assert_incorrect(result, "differs from the expected values")
    assert "overflowed" not in result.message


# -- q7: a small CNN built to a spec -----------------------------------------
class SmallCNN(nn.Module):
    def __init__(self, pool_after_conv1=True, relu=True, out1=8, extra=False, act=F.relu, pool=nn.MaxPool2d,
                 head=lambda t: t):
        super().__init__()
        self.conv1 = nn.Conv2d(1, out1, 3, padding=1)
        self.conv2 = nn.Conv2d(out1, 16, 3, padding=1)
        self.pool = pool(2)
        self.extra = nn.Conv2d(16, 16, 1) if extra else nn.Identity()
        self.fc = nn.Linear(16 * 7 * 7 * (4 if not pool_after_conv1 else 1), 10)
        self.pool_after_conv1, self.relu, self.act, self.head = pool_after_conv1, relu, act, head

    def forward(self, x):
        act = self.act if self.relu else (lambda t: t)
        x = act(self.conv1(x))
        x = self.pool(x) if self.pool_after_conv1 else x
        x = self.pool(act(self.conv2(x)))
        return self.head(self.fc(self.extra(x).flatten(1)))


def test_q7_right_answer_passes_class_or_instance():
    assert ex.q7.evaluate(SmallCNN).outcome is Outcome.CORRECT
    assert ex.q7.evaluate(SmallCNN()).outcome is Outcome.CORRECT
    assert sum(p.numel() for p in SmallCNN().parameters()) == ex.SMALL_CNN_PARAMS == 9098


def test_q7_mistakes_are_named():
    assert_incorrect(ex.q7.evaluate(lambda: SmallCNN(pool_after_conv1=False)),
                     "Layer `conv2`", "outputs shape (2, 16, 28, 28)", "expected (2, 16, 14, 14)", "max-pool")
    assert_incorrect(ex.q7.evaluate(lambda: SmallCNN(out1=6)), "Layer `conv1`", "out_channels should be 8")
    assert_incorrect(ex.q7.evaluate(lambda: SmallCNN(relu=False)), "`conv2` has negative values", "ReLU")
    assert_incorrect(ex.q7.evaluate(lambda: SmallCNN(extra=True)), "['Conv2d', 'Conv2d', 'Linear']",
                     "['Conv2d', 'Conv2d', 'Conv2d', 'Linear']")

    class Broken(SmallCNN):
        def forward(self, x):
            return self.fc(self.conv1(x).flatten(1))
    assert_incorrect(ex.q7.evaluate(Broken), "RuntimeError", "`conv1`")
    assert_incorrect(ex.q7.evaluate(42), "SmallCNN", "int 42")


@pytest.mark.parametrize("kw, fragments", [
    ({"head": lambda t: t.softmax(dim=1)}, ["probabilities", "logits"]),
    ({"head": lambda t: t.log_softmax(dim=1)}, ["log-probabilities", "logits"]),
    ({"pool": nn.AvgPool2d}, ["average pooling", "max pooling"]),
    ({"act": torch.sigmoid}, ["differs from", "your own layers", "ReLU"]),
])
def test_q7_right_shapes_wrong_values_are_named(kw, fragments):
    # Same layers, shapes and parameter count as the spec: only the values, computed with the
    # learner's own conv1, conv2 and fc in the spec's order, tell these apart.
    assert_incorrect(ex.q7.evaluate(lambda: SmallCNN(**kw)), *fragments)


def test_odd_answers_are_reported_not_crashed():
    # wrong types and values give INCORRECT with a message; never UNCHECKABLE (a checker bug)
    assert_incorrect(ex.q1.evaluate(lambda *a, **k: "28"), "two whole numbers", "str")
    assert_incorrect(ex.q1.evaluate(lambda *a, **k: ("1", 1)), "left padding", "str")
    assert_incorrect(ex.q2.evaluate(lambda x, w, b=None, stride=1, padding=0: [[0.0]]), "torch.Tensor", "list")
    assert_incorrect(ex.q2.evaluate(lambda x, w, b=None, stride=1, padding=0: conv2d(x, w, b, stride, padding)[0]),
                     "must be 4-D")
    assert_incorrect(ex.q4.evaluate(lambda layers: 1 / 0), "ZeroDivisionError")
    assert_incorrect(ex.q4.evaluate(lambda layers: "15"), "str")
    assert_incorrect(ex.q5.evaluate(lambda x, k, s=None: max_pool2d(x, k, s).numpy()), "torch.Tensor", "ndarray")
    assert_incorrect(ex.q6.evaluate(lambda z: log_softmax(z).numpy()), "torch.Tensor", "ndarray")
    assert_incorrect(ex.q6.evaluate(lambda z: log_softmax(z)[..., :-1]), "shape")
    assert_incorrect(ex.q3.evaluate(1792, "9633856", 73_728), "fc_params", "should be a number", "str")
    assert_incorrect(ex.q3.evaluate(1792, 9_633_856), "takes 3 answers", "you passed 2")
