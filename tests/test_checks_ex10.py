"""Tests of the checks of exercise 10 (ConvNeXt and the ViT): the solutions pass, planted mistakes fail with the
message that names the mistake, untouched stubs say "not attempted"."""

import math

import pytest
import torch
import torch.nn.functional as F
from checkhelpers import assert_incorrect, stub
from icdl import summary
from icdl.checks import ex10_convnext_vit as ex
from icdl.checks.core import Outcome
from icdl.models import vit
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5, ex.q6, ex.q7]
FUNCTIONS = [ex.q1, ex.q2, ex.q3]
CHOICES = [ex.q4, ex.q6, ex.q7]


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "10_convnext_vit"
    assert q.evaluate(None).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize("q", FUNCTIONS, ids=lambda q: q.name)
def test_untouched_functions_are_not_attempted(q):
    assert q.evaluate(stub).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize("q", CHOICES, ids=lambda q: q.name)
def test_choices_right_letter_and_every_wrong_one_explained(q):
    assert q.evaluate(q.answer).outcome is Outcome.CORRECT
    assert q.evaluate(f" ({q.answer.upper()}) ").outcome is Outcome.CORRECT
    assert set(q.why) == set(q.options) - {q.answer}
    for letter, why in q.why.items():
        assert_incorrect(q.evaluate(letter), f"Not ({letter})", why[:40])
    assert_incorrect(q.evaluate("z"), "not one of the options")
    assert_incorrect(q.evaluate(2), "should be a letter")


# -- q1: parameters of an encoder block ---------------------------------------------
def encoder_block_params(dim, mlp_ratio):
    return 4 * dim + 4 * (dim * dim + dim) + 2 * mlp_ratio * dim * dim + mlp_ratio * dim + dim


def test_q1_correct_and_the_reference_is_the_real_blocks():
    assert ex.q1.evaluate(encoder_block_params).outcome is Outcome.CORRECT
    for args in ex.q1.cases:
        d, r = args
        block = vit.EncoderBlock(d, num_heads=4, mlp_dim=r * d)
        assert summary.count_params(block) == ex.q1.reference(d, r)
    assert summary.count_params(vit.vit_b_16().encoder.layers[0]) == 7_087_872  # the success note's number


@pytest.mark.parametrize("fn, fragments", [
    (lambda d, r: (4 + 2 * r) * d * d, ["encoder_block_params(768, 4) returned", "left out the biases and the LayerNorms"]),
    (lambda d, r: (4 + 2 * r) * d * d + (5 + r) * d, ["left out the two LayerNorms"]),
    (lambda d, r: (4 + 2 * r) * d * d + (7 + r) * d, ["weights but not their biases"]),
    (lambda d, r: (3 + 2 * r) * d * d + (8 + r) * d, ["left out the output projection"]),
    (lambda d, r: (4 + r) * d * d + (8 + r) * d, ["counted one linear layer of the MLP"]),
    (lambda d, r: (4 + 2 * r) * d * d + 4 * d, ["left out the biases"]),
    (lambda d, r: float(encoder_block_params(d, r)), ["should be an int"]),
    (lambda d, r: encoder_block_params(d, r) + 1, ["returned 7,087,873", "expected 7,087,872"]),
])
def test_q1_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q1.evaluate(fn), *fragments)


# -- q2: tokens ----------------------------------------------------------------------
def test_q2_correct_and_agrees_with_the_model():
    assert ex.q2.evaluate(lambda s, p: (s // p) ** 2 + 1).outcome is Outcome.CORRECT
    net = vit.VisionTransformer(image_size=64, patch_size=8, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=8)
    assert net.forward_features(torch.randn(1, 3, 64, 64)).shape[1] == ex.q2.reference(64, 8)


@pytest.mark.parametrize("fn, fragments", [
    (lambda s, p: (s // p) ** 2, ["num_tokens(224, 16) returned 196", "class token"]),
    (lambda s, p: s // p + 1, ["along one side only"]),
    (lambda s, p: s // p, ["along one side and left out the class token"]),
    (lambda s, p: s * s // p + 1, ["patch_size² pixels"]),
    (lambda s, p: (s // p) ** 2 + 2, ["one class token"]),
    (lambda s, p: (s / p) ** 2 + 1, ["should be an int"]),
])
def test_q2_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q2.evaluate(fn), *fragments)


# -- q3: multiply-adds of attention ------------------------------------------------------
def attention_macs(tokens, dim, heads):
    return 4 * tokens * dim * dim + 2 * tokens * tokens * dim


def counted(tokens, dim, heads):
    with torch.device("meta"):
        attention = vit.SelfAttention(dim, heads)
        with FlopCounterMode(display=False) as counter:
            attention(torch.randn(1, tokens, dim))
    return counter.get_total_flops() // 2


def test_q3_correct_and_the_reference_is_the_counters():
    assert ex.q3.evaluate(attention_macs).outcome is Outcome.CORRECT
    for args in ex.q3.cases:
        args = args[0] if isinstance(args[-1], dict) else args
        assert counted(*args) == ex.q3.reference(*args), args


@pytest.mark.parametrize("fn, fragments", [
    (lambda t, d, h: 4 * t * d * d + 2 * t * t * d * h, ["attention_macs(197, 768, 12) returned",
                                                          "multiplied the token-to-token part by the number of heads"]),
    (lambda t, d, h: 4 * t * d * d + t * t * d, ["left out the weighted sum of the values"]),
    (lambda t, d, h: 2 * t * t * d, ["left out the projections"]),
    (lambda t, d, h: 3 * t * d * d + 2 * t * t * d, ["left out the output projection"]),
    (lambda t, d, h: 4 * t * d * d + 2 * t * t * (d // h), ["left out that there are h heads"]),
    (lambda t, d, h: 2 * t * d * d + 2 * t * t * d, ["there are three of them"]),
    (lambda t, d, h: 4 * t * d * d + 2 * t * t * d + t * t * h, ["returned", "expected"]),
])
def test_q3_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q3.evaluate(fn), *fragments)


def test_q4_the_right_option_is_what_the_counter_says():
    d = 768
    for tokens, projections_win in [(197, True), (3137, False)]:
        proj, between = 4 * tokens * d * d, 2 * tokens * tokens * d
        assert (proj > between) is projections_win
        assert counted(tokens, d, 12) == proj + between


# -- q5: debug attention -------------------------------------------------------------------
class GivenAttention(nn.Module):
    """The exercise's block; ``forward`` takes switches for the bugs."""

    softmax_dim, scale, split = -2, "sqrt", "right"

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.randn(3 * dim, dim) / math.sqrt(dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x, return_weights=False):
        n, t, d = x.shape
        h = self.num_heads
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        if self.split == "right":
            q, k, v = (z.reshape(n, t, h, d // h).transpose(1, 2) for z in (q, k, v))
        else:
            q, k, v = (z.reshape(n, h, t, d // h) for z in (q, k, v))
        divisor = {"sqrt": math.sqrt(d // h), "none": 1.0, "d": d // h, "full": math.sqrt(d)}[self.scale]
        weights = torch.softmax(q @ k.transpose(-2, -1) / divisor, dim=self.softmax_dim)
        out = weights @ v
        out = out.transpose(1, 2).reshape(n, t, d) if self.split == "right" else out.reshape(n, t, d)
        out = self.out_proj(out)
        return (out, weights) if return_weights else out


def fixed(**kw):
    return type("Variant", (GivenAttention,), {"softmax_dim": -1, **kw})


def test_q5_correct_answers_and_the_given_block_fails():
    assert ex.q5.evaluate(fixed()).outcome is Outcome.CORRECT
    assert ex.q5.evaluate(vit.SelfAttention).outcome is Outcome.CORRECT
    assert_incorrect(ex.q5.evaluate(GivenAttention), "still the given block's", "dim=-1")


class StubAttention(GivenAttention):
    def forward(self, x, return_weights=False):
        raise NotImplementedError("Replace this line with your code.")


def test_q5_untouched_stub_is_not_attempted():
    assert ex.q5.evaluate(StubAttention).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize("variant, fragments", [
    (fixed(scale="none"), ["not divided by sqrt(d)"]),
    (fixed(scale="d"), ["divided by d, the head size"]),
    (fixed(scale="full"), ["sqrt(D), the whole hidden size"]),
    (fixed(split="mixed"), ["mixes tokens and channels"]),
    (type("Both", (GivenAttention,), {"scale": "none"}), ["still over the queries", "sqrt(d) scale is gone"]),
])
def test_q5_planted_mistakes(variant, fragments):
    assert_incorrect(ex.q5.evaluate(variant), *fragments)


def test_q5_wrong_kinds_of_answer():
    assert_incorrect(ex.q5.evaluate(fixed()(8, 2)), "Pass your class itself")

    class Renamed(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            return x
    assert_incorrect(ex.q5.evaluate(Renamed), "strict=True", "parameter names")

    class Sums(fixed()):
        def forward(self, x, return_weights=False):
            return super().forward(x).sum(1)
    assert_incorrect(ex.q5.evaluate(Sums), "shape (2, 5, 24)")

    class Off(fixed()):
        def forward(self, x, return_weights=False):
            return super().forward(x) + 0.1
    assert_incorrect(ex.q5.evaluate(Off), "Change only the line with the bug")
