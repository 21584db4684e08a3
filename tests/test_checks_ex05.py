"""Tests of the checks of exercise 05 (GoogLeNet): right answers pass, planted mistakes fail with the
message that names the mistake, untouched stubs say "not attempted"."""

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from checkhelpers import StubModule, assert_incorrect, stub
from icdl.checks import ex05_googlenet as ex
from icdl.checks.core import Outcome
from icdl.models import googlenet
from torch import nn

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5]


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_untouched_answers_are_not_attempted(q):
    assert q.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    assert q.evaluate(StubModule if q is ex.q2 else stub).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "05_googlenet"


# -- q1: multiply-adds per branch ---------------------------------------------
def inception_macs(c_in, size, c1, c3r, c3, c5r, c5, pool_proj):
    hw = size * size
    return {"1x1": c_in * c1 * hw, "3x3": (c_in * c3r + c3r * c3 * 9) * hw,
            "5x5": (c_in * c5r + c5r * c5 * 25) * hw, "pool": c_in * pool_proj * hw}


def test_q1_correct():
    result = ex.q1.evaluate(inception_macs)
    assert result.outcome is Outcome.CORRECT, result
    assert "9.7x fewer" in result.message


def test_q1_without_reduction_is_named():
    def no_reduction(c_in, size, c1, c3r, c3, c5r, c5, pool_proj):
        d = inception_macs(c_in, size, c1, c3r, c3, c5r, c5, pool_proj)
        d["5x5"] = c_in * c5 * 25 * size * size
        return d
    assert_incorrect(ex.q1.evaluate(no_reduction), "inception (3a)", "branch '5x5'", "WITHOUT the 1x1 reduction")


def test_q1_forgotten_reduce_cost_is_named():
    def only_kxk(c_in, size, c1, c3r, c3, c5r, c5, pool_proj):
        d = inception_macs(c_in, size, c1, c3r, c3, c5r, c5, pool_proj)
        d["3x3"] = c3r * c3 * 9 * size * size
        return d
    assert_incorrect(ex.q1.evaluate(only_kxk), "branch '3x3'", "expected 101,154,816",
                     "counted only the 3x3 convolution")


def test_q1_weights_instead_of_macs():
    def weights(c_in, size, c1, c3r, c3, c5r, c5, pool_proj):
        return {k: v // (size * size) for k, v in inception_macs(c_in, size, c1, c3r, c3, c5r, c5, pool_proj).items()}
    assert_incorrect(ex.q1.evaluate(weights), "branch '1x1'", "counted weights, not multiply-adds")


def test_q1_wrong_type_and_missing_key():
    assert_incorrect(ex.q1.evaluate(lambda *a: 5), "should return a dict")
    assert_incorrect(ex.q1.evaluate(lambda *a: {"1x1": 1}), "missing the key(s)", "'pool'")


# -- q2: the Inception module ---------------------------------------------------
class Inception(nn.Module):
    def __init__(self, c_in, c1, c3r, c3, c5r, c5, pool_proj, five=5, dim=1, single=False, relu=True,
                 pool=nn.MaxPool2d, order=(0, 1, 2, 3), inner_relu=True):
        super().__init__()
        act = nn.ReLU() if inner_relu else nn.Identity()
        self.b1 = nn.Conv2d(c_in, c1, 1)
        self.b2 = nn.Sequential(nn.Conv2d(c_in, c3r, 1), act, nn.Conv2d(c3r, c3, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(c_in, c5r, 1), act, nn.Conv2d(c5r, c5, five, padding=five // 2))
        self.b4 = nn.Sequential(pool(3, 1, 1), nn.Conv2d(c_in, pool_proj, 1))
        self.dim, self.single, self.relu, self.order = dim, single, relu, order

    def forward(self, x):
        outs = [self.b1(x), self.b2(x), self.b3(x), self.b4(x)]
        outs = [outs[i] for i in self.order]
        if self.single:
            return F.relu(outs[1])
        out = torch.cat(outs, dim=self.dim)
        return F.relu(out) if self.relu else out


def test_q2_correct():
    assert ex.q2.evaluate(Inception).outcome is Outcome.CORRECT


def test_q2_single_branch_is_diagnosed():
    cls = type("OneBranch", (Inception,), {"__init__": lambda self, *a: Inception.__init__(self, *a, single=True)})
    assert_incorrect(ex.q2.evaluate(cls), "128 channels, the size of a single branch", "expected 256",
                     "torch.cat([...], dim=1)")


def test_q2_wrong_cat_dim_is_diagnosed():
    class Dim0(Inception):
        def forward(self, x):
            same = [F.relu(self.b1(x))] * 4  # equal shapes, so dim 0 concatenation "works"
            return torch.cat(same, dim=0)
    assert_incorrect(ex.q2.evaluate(Dim0), "batch size changed", "dim=1")


def test_q2_3x3_instead_of_5x5_and_missing_relu():
    cls = type("Tv", (Inception,), {"__init__": lambda self, *a: Inception.__init__(self, *a, five=3)})
    assert_incorrect(ex.q2.evaluate(cls), "uses a 3x3 kernel", "torchvision's quirk")
    cls = type("NoRelu", (Inception,), {"__init__": lambda self, *a: Inception.__init__(self, *a, relu=False)})
    assert_incorrect(ex.q2.evaluate(cls), "negative", "ReLU")


def test_q2_missing_padding_and_not_a_class():
    class NoPad(Inception):
        def __init__(self, c_in, c1, c3r, c3, c5r, c5, pool_proj):
            super().__init__(c_in, c1, c3r, c3, c5r, c5, pool_proj)
            self.b2[2].padding = (0, 0)
        def forward(self, x):
            outs = [self.b1(x), self.b2(x)[..., :x.shape[-2], :x.shape[-1]], self.b3(x), self.b4(x)]
            return F.relu(torch.cat([o[..., 1:-1, 1:-1] for o in outs[:1]] + [outs[1]] +
                                    [o[..., 1:-1, 1:-1] for o in outs[2:]], dim=1))
    assert_incorrect(ex.q2.evaluate(NoPad), "height and width changed", "padding")
    assert_incorrect(ex.q2.evaluate(Inception(192, 64, 96, 128, 16, 32, 32)), "Pass your class itself")


def inception_with(**kw):
    return type("Variant", (Inception,), {"__init__": lambda self, *a: Inception.__init__(self, *a, **kw)})


@pytest.mark.parametrize("kw, fragments", [
    ({"pool": nn.AvgPool2d}, ["pool branch", "average pooling", "3x3 max pool"]),
    ({"order": (0, 1, 3, 2)}, ["concatenated in the order 1x1, 3x3, pool, 5x5", "1x1, 3x3, 5x5, pool"]),
    ({"order": (3, 0, 1, 2)}, ["concatenated in the order pool, 1x1, 3x3, 5x5"]),
    ({"inner_relu": False}, ["no ReLU between", "1x1 reduction"]),
])
def test_q2_right_shapes_wrong_values_are_named(kw, fragments):
    # Same shapes and parameter counts as the right answer: only the values, computed with the
    # learner's own convolutions wired as the paper wires them, tell these apart.
    assert_incorrect(ex.q2.evaluate(inception_with(**kw)), *fragments)


def test_q2_missing_biases_named():
    class NoBias(Inception):
        def __init__(self, *a):
            super().__init__(*a)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    m.bias = None
    assert_incorrect(ex.q2.evaluate(NoBias), "parameters; expected", "the biases")


# -- q3: stem output size -------------------------------------------------------
def stem_output_size(n):
    n = (n + 2 * 3 - 7) // 2 + 1
    n = math.ceil((n - 3) / 2) + 1
    return math.ceil((n - 3) / 2) + 1


def test_q3_correct():
    assert ex.q3.evaluate(stem_output_size).outcome is Outcome.CORRECT


def test_q3_success_message_teaches_a_formula_that_holds():
    message = ex.q3.evaluate(stem_output_size).message
    assert "(n + 1) // 8" in message and "try n // 8" not in message
    for n in range(8, 400):
        assert stem_output_size(n) == (n + 1) // 8, n
    assert stem_output_size(231) == 29 != 231 // 8  # n = 7 mod 8: n // 8 is one short


def test_q3_floor_and_divide_by_8():
    def floor(n):
        n = (n + 2 * 3 - 7) // 2 + 1
        n = (n - 3) // 2 + 1
        return (n - 3) // 2 + 1
    assert_incorrect(ex.q3.evaluate(floor), "stem_output_size(224) is 27, expected 28", "ceil_mode=True")
    assert_incorrect(ex.q3.evaluate(lambda n: n // 4), "stem_output_size(224) is 56", "one of the two")
    assert_incorrect(ex.q3.evaluate(lambda n: (n + 1) // 2), "after conv1 only")
    assert_incorrect(ex.q3.evaluate(lambda n: "28"), "should be a number", "str")
    assert_incorrect(ex.q3.evaluate(lambda n: float(stem_output_size(n))), "should be an int", "//")


# -- q4: auxiliary loss ---------------------------------------------------------
def googlenet_loss(outputs, targets):
    logits, aux2, aux1 = outputs
    return F.cross_entropy(logits, targets) + 0.3 * (F.cross_entropy(aux1, targets) + F.cross_entropy(aux2, targets))


def test_q4_correct_and_matches_the_package():
    assert ex.q4.evaluate(googlenet_loss).outcome is Outcome.CORRECT
    assert ex.q4.evaluate(lambda o, t: googlenet.googlenet_loss(googlenet.GoogLeNetOutputs(*o), t)).outcome \
        is Outcome.CORRECT


def test_q4_planted_mistakes():
    def weight_one(o, t):
        return sum(F.cross_entropy(z, t) for z in o)
    assert_incorrect(ex.q4.evaluate(weight_one), "weight 1 instead of 0.3")
    assert_incorrect(ex.q4.evaluate(lambda o, t: F.cross_entropy(o[0], t)), "auxiliary losses are missing")
    assert_incorrect(ex.q4.evaluate(lambda o, t: weight_one(o, t) / 3), "averaged the three losses")
    assert_incorrect(ex.q4.evaluate(lambda o, t: F.cross_entropy(o[0], t) + 0.3 * F.cross_entropy(o[1], t)),
                     "only one auxiliary head")
    assert_incorrect(ex.q4.evaluate(lambda o, t: 1.0), "scalar tensor")


# -- q5: torchvision's weights ----------------------------------------------------
def load_torchvision(tv_model):
    model = googlenet.googlenet(num_classes=tv_model.fc.out_features)
    model.load_state_dict(tv_model.state_dict(), strict=True)
    return model


def test_q5_correct():
    assert ex.q5.evaluate(load_torchvision).outcome is Outcome.CORRECT


def test_q5_planted_mistakes():
    assert_incorrect(ex.q5.evaluate(lambda tv: tv), "torchvision's model itself", "googlenet.googlenet(")
    assert_incorrect(ex.q5.evaluate(lambda tv: googlenet.googlenet(num_classes=tv.fc.out_features)),
                     "outputs differ", "load_state_dict")
    assert_incorrect(ex.q5.evaluate(lambda tv: googlenet.googlenet(num_classes=1000)),
                     "aux1.fc2.weight (1000, 1024) vs (7, 1024)", "number of classes")
    assert_incorrect(ex.q5.evaluate(lambda tv: torchvision.models.googlenet(weights=None, init_weights=True)),
                     "is a torchvision model", "not the course's GoogLeNet")
    assert_incorrect(ex.q5.evaluate(lambda tv: googlenet.googlenet(num_classes=7, aux_logits=False)),
                     "missing keys", "aux1.")


def wrong_direction(tv_model):
    model = googlenet.googlenet(num_classes=tv_model.fc.out_features, aux_logits=True)
    tv_model.load_state_dict(model.state_dict())  # torchvision's model overwritten by the course's
    return model


def test_q5_copy_in_the_wrong_direction():
    assert_incorrect(ex.q5.evaluate(wrong_direction),
                     "you copied in the wrong direction: torchvision's weights were overwritten")


def test_q5_a_changed_reference_is_named_and_cannot_poison_a_later_check():
    def to_double(tv_model):
        tv_model.double()  # changes torchvision's model
        return load_torchvision(tv_model)

    assert_incorrect(ex.q5.evaluate(to_double), "changed torchvision's model", "torch.float64")

    def breaks_then_raises(tv_model):
        tv_model.half()
        with torch.no_grad():
            next(tv_model.parameters()).zero_()
        raise RuntimeError("oops")

    assert_incorrect(ex.q5.evaluate(breaks_then_raises), "RuntimeError: oops")
    assert ex.q5.evaluate(load_torchvision).outcome is Outcome.CORRECT
