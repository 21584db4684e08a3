"""Tests of the checks of exercise 01 (How a CNN sees an image): right answers pass, planted
mistakes fail with the message that names the mistake, untouched stubs say "not attempted"."""

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


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "01_cnn_basics"


# -- q1: the output-size formula --------------------------------------------
def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def test_q1_right_answer_passes_and_matches_nn_conv2d():
    assert ex.q1.evaluate(conv_output_size).outcome is Outcome.CORRECT
    for n, k, s, p, d in ex.q1.cases:  # the reference formula is what PyTorch does
        conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
        assert conv(torch.zeros(1, 1, n, n)).shape[-1] == conv_output_size(n, k, s, p, d)


def test_q1_mistakes_are_named():
    assert_incorrect(ex.q1.evaluate(lambda n, kernel_size, stride=1, padding=0, dilation=1:
                                    (n - dilation * (kernel_size - 1) - 1) // stride + 1),
                     "padding=1", "expected 28", "forgot the padding")
    assert_incorrect(ex.q1.evaluate(lambda n, kernel_size, stride=1, padding=0, dilation=1:
                                    (n + 2 * padding - kernel_size) // stride + 1),
                     "dilation=2", "returned 8; expected 6", "ignored the dilation")
    assert_incorrect(ex.q1.evaluate(lambda n, kernel_size, stride=1, padding=0, dilation=1:
                                    (n + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1),
                     "a float", "//")
    assert_incorrect(ex.q1.evaluate(lambda n, kernel_size, stride=1, padding=0, dilation=1:
                                    (n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride),
                     "returned 27; expected 28")
    # an int subclass whose comparisons always say "equal" is judged by its real value
    class Liar(int):
        def __eq__(self, other):
            return True

        def __ne__(self, other):
            return False

        __hash__ = int.__hash__
    assert_incorrect(ex.q1.evaluate(lambda *a, **k: Liar(0)), "conv_output_size(32, 5) returned 0")
    assert_incorrect(ex.q1.evaluate(lambda n, kernel_size, stride=1, padding=0, dilation=1:
                                    torch.tensor((n + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1)),
                     "a float", "//")
    # a signature without dilation fails with the learner's TypeError, not a crash
    assert_incorrect(ex.q1.evaluate(lambda n, kernel_size, stride=1, padding=0:
                                    (n + 2 * padding - kernel_size) // stride + 1),
                     "TypeError", "dilation")


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
    result = ex.q3.evaluate(*counts)
    assert result.outcome is Outcome.CORRECT and "5,376 times" in result.message


def test_q3_mistakes_are_named():
    assert_incorrect(ex.q3.evaluate(3 * 64 * 9, 9_633_856, 73_728), "conv_params", "1,728", "forgot the bias")
    assert_incorrect(ex.q3.evaluate(1792, 224 * 224 * 64 + 64, 73_728), "fc_params", "colour channels")
    assert_incorrect(ex.q3.evaluate(1792, 9_633_856, 73_728 + 128), "conv2_params", "bias=False")
    assert_incorrect(ex.q3.evaluate(1792, 9_633_856, 73_729), "conv2_params", "too large", "weights")
    assert_incorrect(ex.q3.evaluate(1792.5, 9_633_856, 73_728), "not a whole number")
    assert_incorrect(ex.q3.evaluate(1792.0, 9_633_856, 73_728), "a float", "//")


@pytest.mark.parametrize("answers", [(3 * 64 * 9, 9_633_856, 73_728), (1792, 9_633_856, 73_729),
                                     (1792, 9_633_855, 73_728), (1000, 9_633_856, 73_728)])
def test_q3_messages_do_not_print_the_expected_count(answers):
    message = ex.q3.evaluate(*answers).message
    for right in ("1,792", "1792", "9,633,856", "9633856", "73,728", "73728"):
        if right.replace(",", "") not in {str(a) for a in answers}:
            assert right not in message, message
    assert ex.q3.evaluate(1792, None, None).outcome is Outcome.NOT_ATTEMPTED


# -- q4: receptive field -----------------------------------------------------
def receptive_field(layers):
    field, jump = 1, 1
    for k, s in layers:
        field += (k - 1) * jump
        jump *= s
    return field


def test_q4_right_answer_passes():
    assert ex.q4.evaluate(receptive_field).outcome is Outcome.CORRECT
    assert receptive_field([(3, 1)] * 3) == 7 and receptive_field([(3, 1), (2, 2), (3, 1)]) == 8


def test_q4_mistakes_are_named():
    assert_incorrect(ex.q4.evaluate(lambda layers: 1 + sum(k - 1 for k, _ in layers)),
                     "receptive_field([(3, 1), (2, 2), (3, 1)]) returned 6; expected 8", "ignores the strides")

    def too_early(layers):
        field, jump = 1, 1
        for k, s in layers:
            jump *= s
            field += (k - 1) * jump
        return field
    assert_incorrect(ex.q4.evaluate(too_early), "returned 9; expected 8", "too early")
    assert_incorrect(ex.q4.evaluate(lambda layers: sum(k for k, _ in layers)), "receptive_field([])", "expected 1")


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


# -- q6: stable softmax ------------------------------------------------------
def softmax(z):
    e = torch.exp(z - z.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)


def test_q6_right_answer_passes():
    assert ex.q6.evaluate(softmax).outcome is Outcome.CORRECT


def test_q6_mistakes_are_named():
    assert_incorrect(ex.q6.evaluate(lambda z: torch.exp(z) / torch.exp(z).sum(dim=-1, keepdim=True)),
                     "huge logits", "overflow")
    assert_incorrect(ex.q6.evaluate(lambda z: torch.exp(z) / torch.exp(z).sum(dim=0, keepdim=True)),
                     "shape (4, 10)", "dim 0")

    def in_place(z):
        z -= z.amax(dim=-1, keepdim=True)
        return softmax(z)
    assert_incorrect(ex.q6.evaluate(in_place), "in place")
    assert_incorrect(ex.q6.evaluate(lambda z: torch.exp(z - z.amax(dim=-1, keepdim=True))), "sum to 1")
    assert_incorrect(ex.q6.evaluate(lambda z: softmax(z).sum(dim=-1)), "expected (4, 10)", "keepdim")

    def minus_mean(z):  # shifts by the row mean: fine for [1000, 1001, 1002], overflows for [0, 1000]
        e = torch.exp(z - z.mean(dim=-1, keepdim=True))
        return e / e.sum(dim=-1, keepdim=True)
    assert_incorrect(ex.q6.evaluate(minus_mean), "[0, 1000]", "maximum", "mean")


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
    assert_incorrect(ex.q1.evaluate(lambda *a, **k: "28"), "whole number", "str")
    assert_incorrect(ex.q2.evaluate(lambda x, w, b=None, stride=1, padding=0: [[0.0]]), "torch.Tensor", "list")
    assert_incorrect(ex.q2.evaluate(lambda x, w, b=None, stride=1, padding=0: conv2d(x, w, b, stride, padding)[0]),
                     "must be 4-D")
    assert_incorrect(ex.q4.evaluate(lambda layers: 1 / 0), "ZeroDivisionError")
    assert_incorrect(ex.q5.evaluate(lambda x, k, s=None: max_pool2d(x, k, s).numpy()), "torch.Tensor", "ndarray")
    assert_incorrect(ex.q6.evaluate(lambda z: softmax(z) * float("nan")), "NaN or inf")
    assert_incorrect(ex.q3.evaluate(1792, "9633856", 73_728), "fc_params", "whole number")
    assert_incorrect(ex.q3.evaluate(1792, 9_633_856), "three counts")
