"""Tests of the checks of exercise 05 (GoogLeNet): right answers pass, planted mistakes fail with the
message that names the mistake, untouched stubs say "not attempted"."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from checkhelpers import StubModule, assert_incorrect, stub
from icdl.checks import ex05_googlenet as ex
from icdl.checks.core import Outcome
from icdl.env import repo_root
from icdl.models import googlenet
from torch import nn


def given(name):
    """The code the notebook gives the learner (its own cell, in solutions/ and exercises/ alike), defined here."""
    found = []
    for folder in ("solutions", "exercises"):
        cells = json.loads((repo_root() / folder / "05_googlenet.ipynb").read_text())["cells"]
        found += ["".join(c["source"]) for c in cells if c["cell_type"] == "code"
                  and "".join(c["source"]).startswith(f"class {name}(")]
    assert len(found) == 2 and found[0] == found[1], f"the cell defining {name} is missing or differs"
    namespace = {"nn": nn, "torch": torch}
    exec(found[0], namespace)
    return namespace[name]

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
    result = ex.q1.evaluate(only_kxk)
    assert_incorrect(result, "branch '3x3'", "got 86,704,128", "counted only the 3x3 convolution")
    assert "101,154,816" not in result.message  # a named slip does not print the answer


def test_q1_other_slips_are_named():
    def only_reduce(c_in, size, c1, c3r, c3, c5r, c5, pool_proj):
        d = inception_macs(c_in, size, c1, c3r, c3, c5r, c5, pool_proj)
        d["5x5"] = c_in * c5r * size * size
        return d
    assert_incorrect(ex.q1.evaluate(only_reduce), "branch '5x5'", "counted only the 1x1 reduction")

    def free_pool(c_in, size, c1, c3r, c3, c5r, c5, pool_proj):
        return {**inception_macs(c_in, size, c1, c3r, c3, c5r, c5, pool_proj), "pool": 0}
    assert_incorrect(ex.q1.evaluate(free_pool), "branch 'pool'", "'pool proj' convolution after it does")


def test_q1_an_unnamed_slip_shows_the_expected_count_except_when_graded(monkeypatch):
    def off_by_one(*args):
        return {k: v + 1 for k, v in inception_macs(*args).items()}
    assert_incorrect(ex.q1.evaluate(off_by_one), "branch '1x1'", "expected 9,633,792", "off by +1")
    monkeypatch.setenv("COURSE_GRADING", "1")
    result = ex.q1.evaluate(off_by_one)
    assert_incorrect(result, "off by +1")
    assert "9,633,792" not in result.message


def test_q1_weights_instead_of_macs():
    def weights(c_in, size, c1, c3r, c3, c5r, c5, pool_proj):
        return {k: v // (size * size) for k, v in inception_macs(c_in, size, c1, c3r, c3, c5r, c5, pool_proj).items()}
    assert_incorrect(ex.q1.evaluate(weights), "branch '1x1'", "counted weights, not multiply-adds")


def test_q1_wrong_type_and_missing_key():
    assert_incorrect(ex.q1.evaluate(lambda *a: 5), "should return a dict")
    assert_incorrect(ex.q1.evaluate(lambda *a: {"1x1": 1}), "missing the key(s)", "'pool'")
    assert_incorrect(ex.q1.evaluate(lambda *a: {k: float(v) for k, v in inception_macs(*a).items()}),
                     "The '1x1' entry should be an int")


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


def test_q2_the_given_module_fails_with_a_message_about_its_bug():
    buggy = given("BuggyInception")
    with torch.no_grad():  # the symptom the notebook shows: 416 channels instead of 256
        assert buggy(192, 64, 96, 128, 16, 32, 32)(torch.zeros(1, 192, 8, 8)).shape[1] == 416
    assert_incorrect(ex.q2.evaluate(buggy), "416 = 64 + 128 + 32 + 192 channels", "expected 256",
                     "pool branch passes all 192 input channels through", "'pool proj' convolution")


class FixedBuggy(nn.Module):
    """The given module, fixed in one of the ways a learner might try."""

    def __init__(self, c_in, c1, c3r, c3, c5r, c5, pool_proj, pool_branch="right"):
        super().__init__()
        self.branch1 = nn.Sequential(nn.Conv2d(c_in, c1, 1), nn.ReLU())
        self.branch2 = nn.Sequential(nn.Conv2d(c_in, c3r, 1), nn.ReLU(), nn.Conv2d(c3r, c3, 3, padding=1), nn.ReLU())
        self.branch3 = nn.Sequential(nn.Conv2d(c_in, c5r, 1), nn.ReLU(), nn.Conv2d(c5r, c5, 5, padding=2), nn.ReLU())
        pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.pool_proj = pool_proj
        self.branch4 = {
            "right": lambda: nn.Sequential(pool, nn.Conv2d(c_in, pool_proj, 1), nn.ReLU()),
            "projection first": lambda: nn.Sequential(nn.Conv2d(c_in, pool_proj, 1), nn.ReLU(), pool),
            "no relu": lambda: nn.Sequential(pool, nn.Conv2d(c_in, pool_proj, 1)),
            "sliced": lambda: nn.Sequential(pool),
        }[pool_branch]()
        self.sliced = pool_branch == "sliced"

    def forward(self, x):
        b4 = self.branch4(x)[:, :self.pool_proj] if self.sliced else self.branch4(x)
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), b4], dim=1)


def fixed(how):
    return type("Fixed", (FixedBuggy,), {"__init__": lambda self, *a: FixedBuggy.__init__(self, *a, pool_branch=how)})


def test_q2_plausible_fixes_that_are_still_wrong():
    assert ex.q2.evaluate(fixed("right")).outcome is Outcome.CORRECT
    assert_incorrect(ex.q2.evaluate(fixed("projection first")), "1x1 projection before the max pool", "pools first")
    assert_incorrect(ex.q2.evaluate(fixed("no relu")), "negative", "ReLU")
    assert_incorrect(ex.q2.evaluate(fixed("sliced")), "no 1x1 convolution from the 192 input channels",
                     "pool_proj = 32", "mixes all 192 of them")


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
    assert_incorrect(ex.q3.evaluate(floor), "stem_output_size(224) returned 27", "ceil_mode=True")
    assert_incorrect(ex.q3.evaluate(lambda n: n // 4), "stem_output_size(224) returned 56", "one of the two")
    assert_incorrect(ex.q3.evaluate(lambda n: (n + 1) // 2), "after conv1 only")
    assert_incorrect(ex.q3.evaluate(lambda n: n // 2), "after conv1 only")
    result = ex.q3.evaluate(lambda n: n // 8)  # right for every size but those with n % 8 == 7
    assert_incorrect(result, "stem_output_size(231) returned 28", "divided n by 8 rounding down")
    assert "(n + 1) // 8" not in result.message
    assert_incorrect(ex.q3.evaluate(lambda n: 28), "stem_output_size(96) returned 28; expected 12.")
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
    ce = F.cross_entropy
    assert_incorrect(ex.q4.evaluate(weight_one), "weight 1 instead of 0.3")
    assert_incorrect(ex.q4.evaluate(lambda o, t: ce(o[0], t)), "left the auxiliary losses out")
    assert_incorrect(ex.q4.evaluate(lambda o, t: weight_one(o, t) / 3), "averaged the three losses")
    assert_incorrect(ex.q4.evaluate(lambda o, t: ce(o[0], t) + 0.3 * ce(o[1], t)), "only one auxiliary head")
    assert_incorrect(ex.q4.evaluate(lambda o, t: ce(o[0], t) + 0.3 * ce(o[2], t)), "only one auxiliary head")
    assert_incorrect(ex.q4.evaluate(lambda o, t: 0.3 * ce(o[0], t) + ce(o[1], t) + ce(o[2], t)),
                     "weighted the main loss by 0.3")
    assert_incorrect(ex.q4.evaluate(lambda o, t: ce(o[0], t) + 0.15 * (ce(o[1], t) + ce(o[2], t))),
                     "averaged the two auxiliary losses")
    assert_incorrect(ex.q4.evaluate(lambda o, t: 1.0), "scalar tensor")
    assert_incorrect(ex.q4.evaluate(lambda o, t: torch.stack([ce(z, t) for z in o])), "scalar tensor")
    assert_incorrect(ex.q4.evaluate(lambda o, t: ce(o[0], t) + 0.2 * (ce(o[1], t) + ce(o[2], t))),
                     "differs from the expected values")


def test_q4_a_loss_of_shape_one_is_accepted():
    assert ex.q4.evaluate(lambda o, t: googlenet_loss(o, t).reshape(1)).outcome is Outcome.CORRECT


# -- q5: a checkpoint saved from nn.DataParallel ------------------------------------
def load_checkpoint(state_dict):
    renamed = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}
    model = googlenet.googlenet(num_classes=renamed["fc.weight"].shape[0],
                                aux_logits=any(k.startswith("aux1.") for k in renamed))
    model.load_state_dict(renamed, strict=True)
    return model


def test_q5_correct_and_the_checkpoints_are_what_data_parallel_saves():
    assert ex.q5.evaluate(load_checkpoint).outcome is Outcome.CORRECT
    model = ex._trained(10, False)
    assert list(ex._checkpoint(model)) == list(nn.DataParallel(model).state_dict())


def test_q5_torch_s_own_prefix_helper_is_fine_too():
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

    def with_helper(state_dict):
        consume_prefix_in_state_dict_if_present(state_dict, "module.")  # in place
        model = googlenet.googlenet(num_classes=len(state_dict["fc.bias"]),
                                    aux_logits="aux1.fc2.weight" in state_dict)
        model.load_state_dict(state_dict)
        return model.train()  # the check puts it in evaluation mode itself

    assert ex.q5.evaluate(with_helper).outcome is Outcome.CORRECT


def test_q5_strict_false_on_the_raw_checkpoint_skips_everything():
    def skips(state_dict):
        model = googlenet.googlenet(num_classes=state_dict["module.fc.weight"].shape[0],
                                    aux_logits="module.aux1.fc2.weight" in state_dict)
        model.load_state_dict(state_dict, strict=False)
        return model
    assert_incorrect(ex.q5.evaluate(skips), "none of the checkpoint's 344 tensors", "strict=False",
                     "skips every one of them")


def test_q5_the_prefix_stripped_from_only_some_keys():
    def some(state_dict):
        renamed = {k.replace("module.inception", "inception"): v for k, v in state_dict.items()}
        model = googlenet.googlenet(num_classes=10, aux_logits=False)
        model.load_state_dict(renamed, strict=False)
        return model
    assert_incorrect(ex.q5.evaluate(some), "tensors were not loaded", "conv1.bn.bias", "not only some")


def test_q5_heads_left_on_and_loaded_with_strict_false():
    def heads_on(state_dict):
        renamed = {k[7:]: v for k, v in state_dict.items()}
        model = googlenet.googlenet(num_classes=renamed["fc.weight"].shape[0], aux_logits=True)
        model.load_state_dict(renamed, strict=False)
        return model
    assert_incorrect(ex.q5.evaluate(heads_on), "10 classes without auxiliary heads", "your model has auxiliary heads",
                     "aux1.", "aux_logits=False", "skipped them silently")


def test_q5_heads_dropped_from_a_checkpoint_that_has_them():
    def heads_off(state_dict):
        renamed = {k[7:]: v for k, v in state_dict.items() if not k.startswith(("module.aux1", "module.aux2"))}
        model = googlenet.googlenet(num_classes=renamed["fc.weight"].shape[0], aux_logits=False)
        model.load_state_dict(renamed)
        return model
    assert_incorrect(ex.q5.evaluate(heads_off), "5 classes with auxiliary heads", "your model has none",
                     "dropped")


def test_q5_hard_coded_sizes_fail_on_the_second_checkpoint():
    def hard_coded(state_dict):
        model = googlenet.googlenet(num_classes=10, aux_logits=False)
        model.load_state_dict({k[7:]: v for k, v in state_dict.items()})
        return model
    assert_incorrect(ex.q5.evaluate(hard_coded), "5 classes with auxiliary heads", "RuntimeError",
                     "Unexpected key(s)", "Read what to build from the checkpoint itself")


def test_q5_other_wrong_models():
    def wrapped(state_dict):
        model = nn.DataParallel(googlenet.googlenet(num_classes=state_dict["module.fc.weight"].shape[0],
                                                    aux_logits="module.aux1.fc2.weight" in state_dict))
        model.load_state_dict(state_dict)
        return model
    assert_incorrect(ex.q5.evaluate(wrapped), "nn.DataParallel wrapper", ".module")

    def tv(state_dict):
        return torchvision.models.googlenet(weights=None, init_weights=False, aux_logits=False, num_classes=10)
    assert_incorrect(ex.q5.evaluate(tv), "torchvision model", "googlenet.googlenet(")

    def transformed(state_dict):
        renamed = {k[7:]: v for k, v in state_dict.items()}
        model = googlenet.googlenet(num_classes=renamed["fc.weight"].shape[0],
                                    aux_logits="aux1.fc2.weight" in renamed, transform_input=True)
        model.load_state_dict(renamed)
        return model
    assert_incorrect(ex.q5.evaluate(transformed), "every tensor is loaded, but the outputs differ", "defaults")

    def wrong_classes(state_dict):
        model = googlenet.googlenet(num_classes=1000, aux_logits=False)
        return model
    assert_incorrect(ex.q5.evaluate(wrong_classes), "`fc.weight` has shape (1000, 1024)", "(10, 1024)",
                     "number of classes")
    assert_incorrect(ex.q5.evaluate(lambda sd: None), "forget the `return`")


def test_q5_a_learner_who_changes_the_checkpoint_in_place_is_still_compared_with_the_saved_model():
    def zeroes_then_loads(state_dict):
        model = load_checkpoint(state_dict)
        for v in state_dict.values():
            v.zero_()  # the learner's copy only: the check compares with its own fresh one
        return model

    assert ex.q5.evaluate(zeroes_then_loads).outcome is Outcome.CORRECT
