"""Tests of the checks of exercise 08 (MobileNet): right answers pass, planted mistakes fail with the
message that names the mistake, untouched stubs say "not attempted"."""

import pytest
import torch
from checkhelpers import StubModule, assert_not_attempted, assert_wrong, stub
from icdl.checks import ex08_mobilenet as ex
from icdl.checks.core import Outcome
from icdl.summary import count_flops, count_params
from icdl.models import mobilenet
from torch import nn

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5, ex.q6]


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_untouched_answers_are_not_attempted(q):
    if q is ex.q5:
        assert_not_attempted(q, StubModule)
    elif q in (ex.q2, ex.q4):
        assert_not_attempted(q, None)
    else:
        assert_not_attempted(q)


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "08_mobilenet"


# -- q1: multiply-adds of a depthwise separable layer ------------------------------
def separable_macs(m, n, k, h, w, stride=1):
    fh, fw = (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1
    return k * k * m * fh * fw + m * n * fh * fw


def test_q1_correct():
    assert ex.q1.evaluate(separable_macs).outcome is Outcome.CORRECT


@pytest.mark.parametrize("case", ex.q1.cases)
def test_q1_reference_is_what_the_flop_counter_counts_on_the_real_layer(case):
    args, kwargs = case if isinstance(case[0], tuple) else (case, {})
    m, n, k, h, w = args
    layer = mobilenet.depthwise_separable(m, n, kwargs.get("stride", 1), kernel_size=k)
    assert count_flops(layer, (1, m, h, w)) == 2 * ex.q1.reference(*args, **kwargs)


def _out(h, k, s):
    return (h + 2 * (k // 2) - k) // s + 1


@pytest.mark.parametrize("fn, fragment", [
    (lambda m, n, k, h, w, stride=1: k * k * m * _out(h, k, stride) * _out(w, k, stride), "forgot the pointwise part"),
    (lambda m, n, k, h, w, stride=1: m * n * _out(h, k, stride) * _out(w, k, stride), "counted only the pointwise"),
    (lambda m, n, k, h, w, stride=1: (k * m + m * n) * _out(h, k, stride) * _out(w, k, stride), "k instead of k * k"),
    (lambda m, n, k, h, w, stride=1: (k * k * m * n + m * n) * _out(h, k, stride) * _out(w, k, stride),
     "multiplied the depthwise part by N"),
    (lambda m, n, k, h, w, stride=1: k * k * m * n * _out(h, k, stride) * _out(w, k, stride), "standard convolution"),
    (lambda m, n, k, h, w, stride=1: (k * k * m + m * n) * h * w, "counted at the input's size"),
    (lambda m, n, k, h, w, stride=1: k * k * m * _out(h, k, stride) * _out(w, k, stride) + m * n * h * w,
     "pointwise layer at the input's resolution"),
    (lambda m, n, k, h, w, stride=1: (k * k * m + m * n) * ((h - k) // stride + 1) * ((w - k) // stride + 1),
     "left out the padding"),
    (lambda m, n, k, h, w, stride=1: 2 * separable_macs(m, n, k, h, w, stride), "counted FLOPs"),
])
def test_q1_planted_mistakes(fn, fragment):
    assert_wrong(ex.q1, fn, fragment)


def test_q1_other_wrong_answers():
    assert_wrong(ex.q1, lambda *a, **kw: float(separable_macs(*a, **kw)), "int")
    assert_wrong(ex.q1, lambda *a, **kw: separable_macs(*a, **kw) + 1, "separable_macs(32, 64, 3, 16, 16) returned")
    assert_wrong(ex.q1, lambda m, n, k, h, w: separable_macs(m, n, k, h, w), "stride")  # no stride argument


# -- q2: the ratio for one layer --------------------------------------------------
def test_q2_correct_and_the_counted_ratio_is_the_formula():
    assert ex.q2.evaluate(1 / 160 + 1 / 25).outcome is Outcome.CORRECT
    assert ex.q2.expected()[0] == pytest.approx(mobilenet.separable_cost(96, 160, 5), rel=1e-12)


@pytest.mark.parametrize("value, fragment", [
    (1 / (1 / 160 + 1 / 25), "upside down"),
    (1 / 96 + 1 / 25, "OUTPUT channels"),
    (1 / 160 + 1 / 5, "squared"),
    (1 / 160 + 1 / 9, "5x5 kernel, not 3x3"),
    (1 / 25, "leaves out the 1/N term"),
    (1 / 160, "leaves out the 1/k² term"),
    (0.5, "divide the separable pair's"),
    ("0.046", "number"),
])
def test_q2_planted_mistakes(value, fragment):
    assert_wrong(ex.q2, value, fragment)


# -- q3: parameters of an inverted residual block ---------------------------------
def block_params(c_in, c_out, t):
    h = c_in * t
    return (c_in * h + 2 * h if t != 1 else 0) + 11 * h + h * c_out + 2 * c_out


def test_q3_correct():
    assert ex.q3.evaluate(block_params).outcome is Outcome.CORRECT


@pytest.mark.parametrize("case", ex.q3.cases)
def test_q3_reference_counts_the_real_block(case):
    assert count_params(mobilenet.InvertedResidual(*case[:2], 1, case[2])) == ex.q3.reference(*case)


@pytest.mark.parametrize("fn, fragment", [
    (lambda c, o, t: block_params(c, o, t) - 2 * (2 * c * t if t != 1 else c * t) - 2 * o, "left out the batch norms"),
    (lambda c, o, t: block_params(c, o, t) + 2 * (2 * c * t if t != 1 else c * t) + 2 * o, "running mean"),
    (lambda c, o, t: block_params(c, o, t) - 9 * c * t + 9 * (c * t) ** 2, "as a full one"),
    (lambda c, o, t: block_params(c, o, t) + (c * c + 2 * c if t == 1 else 0), "expansion layer when t = 1"),
    (lambda c, o, t: ((c * o * t + 2 * o * t) if t != 1 else 0) + 11 * o * t + o * t * o + 2 * o, "INPUT channels"),
    (lambda c, o, t: block_params(c, o, t) + (2 * c * t if t != 1 else c * t) + o, "biases"),
    (lambda c, o, t: block_params(c, o, t) - 2 * o, "projection's batch norm"),
])
def test_q3_planted_mistakes(fn, fragment):
    assert_wrong(ex.q3, fn, fragment)


# -- q4: predict alpha and rho ----------------------------------------------------
def test_q4_correct_and_the_measurement_agrees():
    assert ex.q4.evaluate("b").outcome is Outcome.CORRECT
    assert ex.q4.evaluate(" (B) ").outcome is Outcome.CORRECT
    with torch.device("meta"):
        full, small = mobilenet.mobilenet_v1(), mobilenet.mobilenet_v1(width_mult=0.5)
        macs = count_flops(small, (1, 3, 160, 160)) / count_flops(full, (1, 3, 224, 224))
    params = count_params(small) / count_params(full)
    assert 0.12 < macs < 0.145 and 0.28 < params < 0.35  # option (b)'s "about 0.13" and "about 0.3"


@pytest.mark.parametrize("letter, fragment", [
    ("a", "do not depend on the size of the image"),
    ("c", "BOTH M and N"),
    ("d", "rho²"),
    ("e", "thins every layer"),
    ("z", "not one of the options"),
    (2, "a letter"),
])
def test_q4_wrong_options_are_explained(letter, fragment):
    assert_wrong(ex.q4, letter, fragment)


# -- q5: debug the inverted residual block -----------------------------------------
Buggy = ex.buggy_block_class()


class Fixed(Buggy):
    def __init__(self, in_channels, out_channels, stride, expand_ratio, drop_shortcut=False, stride2_shortcut=False):
        super().__init__(in_channels, out_channels, stride, expand_ratio)
        self.conv = self.conv[:-1]  # no ReLU6 after the projection
        if drop_shortcut:
            self.use_residual = False
        if stride2_shortcut:
            self.use_residual = in_channels == out_channels


def variant(**kw):
    return type("Variant", (Fixed,), {"__init__": lambda self, a, b, s, t: Fixed.__init__(self, a, b, s, t, **kw)})


def test_q5_correct_including_the_course_block():
    assert ex.q5.evaluate(Fixed).outcome is Outcome.CORRECT
    assert ex.q5.evaluate(mobilenet.InvertedResidual).outcome is Outcome.CORRECT


def test_q5_the_given_bug_is_rejected_with_its_own_message():
    assert_wrong(ex.q5, Buggy, "still ends with an activation", "ReLU6 after the projection")


def test_q5_planted_mistakes():
    assert_wrong(ex.q5, variant(drop_shortcut=True), "without adding the input")
    assert_wrong(ex.q5, variant(stride2_shortcut=True), "stride=2", "raised RuntimeError")

    class Renamed(nn.Module):  # right computation, own names: torchvision's weights cannot load
        def __init__(self, a, b, s, t):
            super().__init__()
            self.block = Fixed(a, b, s, t)

        def forward(self, x):
            return self.block(x)
    assert_wrong(ex.q5, Renamed, "do not load into yours with strict=True", "Keep the given code's layers and names")

    wrong_layer = type("WrongLayer", (Buggy,), {})

    def init(self, a, b, s, t):
        Buggy.__init__(self, a, b, s, t)
        self.conv[-4][2] = nn.Identity()  # the depthwise ReLU6 removed instead of the projection's
    wrong_layer.__init__ = init
    assert_wrong(ex.q5, wrong_layer, "differs from MobileNetV2's", "Change only the one buggy layer")
    assert_wrong(ex.q5, "InvertedResidual", "Pass your class itself")


# -- q6: where the shortcut can go ------------------------------------------------
def shortcut_blocks(config, c):
    out = []
    for _t, c_out, n, s in config:
        for i in range(n):
            out.append((s if i == 0 else 1) == 1 and c == c_out)
            c = c_out
    return out


def test_q6_correct():
    assert ex.q6.evaluate(shortcut_blocks).outcome is Outcome.CORRECT


@pytest.mark.parametrize("case", ex.q6.cases)
def test_q6_reference_is_what_the_course_blocks_decide(case):
    config, stem = case
    built, channels = [], stem
    for t, c, n, s in config:  # the course's blocks, row by row, as MobileNetV2 stacks them
        for i in range(n):
            built.append(mobilenet.InvertedResidual(channels, c, s if i == 0 else 1, t).use_residual)
            channels = c
    assert built == ex.q6.reference(config, stem)
    if stem == mobilenet.V2_STEM and config == mobilenet.V2_CONFIG:
        model = mobilenet.mobilenet_v2()
        assert [b.use_residual for b in model.features if isinstance(b, mobilenet.InvertedResidual)] == built


@pytest.mark.parametrize("fn, fragment", [
    (lambda config, c: [s2 == 1 for _t, _c, n, s in config for s2 in [s] + [1] * (n - 1)], "stride only"),
    (lambda config, c: [a == b for a, b in zip([c] + [row[1] for row in config for _ in range(row[2])],
                                               [row[1] for row in config for _ in range(row[2])])], "widths only"),
    (lambda config, c: [x for x in _row_stride(config, c)], "row's stride"),
    (lambda config, c: _row_input(config, c), "row's input width"),
    (lambda config, c: [ok and not first for ok, first in zip(shortcut_blocks(config, c), _firsts(config))],
     "never gave a row's first block"),
])
def test_q6_planted_mistakes(fn, fragment):
    assert_wrong(ex.q6, fn, fragment)


def _firsts(config):
    return [i == 0 for _t, _c, n, _s in config for i in range(n)]


def _row_stride(config, c):
    out = []
    for _t, c_out, n, s in config:
        for _ in range(n):
            out.append(s == 1 and c == c_out)
            c = c_out
    return out


def _row_input(config, c):
    out = []
    for _t, c_out, n, s in config:
        for i in range(n):
            out.append((s if i == 0 else 1) == 1 and c == c_out)
        c = c_out
    return out


def test_q6_wrong_types_and_lengths():
    assert_wrong(ex.q6, lambda config, c: [int(v) for v in shortcut_blocks(config, c)], "list of booleans")
    assert_wrong(ex.q6, lambda config, c: "yes", "list of booleans")
    assert_wrong(ex.q6, lambda config, c: shortcut_blocks(config, c)[:-1], "the table has 17 blocks")
    assert_wrong(ex.q6, lambda config, c: [not v if i == 5 else v for i, v in enumerate(shortcut_blocks(config, c))],
                 "block 5")


def test_every_wrong_option_of_q4_is_explained():
    # (tests/test_checks_kinds.py lists the exercise modules up to 07; the same rule for this one)
    assert ex.q4.answer in ex.q4.options and set(ex.q4.why) == set(ex.q4.options) - {ex.q4.answer}
