"""Tests of the checks of exercise 09 (EfficientNet): right answers pass, planted mistakes fail with the
message that names the mistake, untouched stubs say "not attempted"."""

import math
import re

import pytest
import torch
import torch.nn.functional as F
from checkhelpers import assert_incorrect, stub
from icdl.checks import ex09_efficientnet as ex
from icdl.checks.core import Outcome
from icdl.summary import count_flops
from icdl.models import efficientnet
from torch import nn

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5, ex.q6]


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "09_efficientnet"


def test_untouched_answers_are_not_attempted():
    for q in (ex.q1, ex.q3, ex.q5, ex.q6):
        assert q.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    assert ex.q1.evaluate(stub).outcome is Outcome.NOT_ATTEMPTED
    assert ex.q5.evaluate(stub).outcome is Outcome.NOT_ATTEMPTED
    assert ex.q2.evaluate(None, None, None, None).outcome is Outcome.NOT_ATTEMPTED

    class Untouched(BrokenSE):  # the generated stub: forward still raises
        def forward(self, x):
            raise NotImplementedError("Replace this line with your code.")
    assert ex.q4.evaluate(Untouched).outcome is Outcome.NOT_ATTEMPTED


# -- q1: MBConv's multiply-adds ------------------------------------------------------
def mbconv_macs(c_in, c_out, t, k, stride, size, se=True):
    e = c_in * t
    out = math.ceil(size / stride)
    total = (size * size * c_in * e if t != 1 else 0) + out * out * e * k * k + out * out * e * c_out
    return total + (2 * e * max(1, c_in // 4) if se else 0)


def test_q1_correct_and_the_reference_is_the_counter_on_a_real_block():
    assert ex.q1.evaluate(mbconv_macs).outcome is Outcome.CORRECT
    block = efficientnet.MBConv(24, 40, 5, 2, 6)
    assert count_flops(block, (1, 24, 15, 15)) // 2 == mbconv_macs(24, 40, 6, 5, 2, 15)
    # every case really tells the formula apart from a block without SE and from FLOPs
    assert ex.q1.reference(40, 40, 6, 5, 1, 14) != ex.q1.reference(40, 40, 6, 5, 1, 14, se=False)


def with_(**changes):
    def fn(c_in, c_out, t, k, stride, size, se=True):
        e = c_in * t
        out = size // stride if changes.get("floor") else math.ceil(size / stride)
        total = size * size * c_in * e if (t != 1 or changes.get("expand_always")) else 0
        dw_pixels = size * size if changes.get("dw_at_input") else out * out
        total += dw_pixels * e * k * k * (e if changes.get("dw_full") else 1)
        use_se = changes.get("se", se)
        if use_se:
            squeeze = max(1, (e if changes.get("squeeze_expanded") else c_in) // 4)
            total += 2 * e * squeeze * (out * out if changes.get("se_per_pixel") else 1)
        total += (size * size if changes.get("project_at_input") else out * out) * e * c_out
        return 2 * total if changes.get("flops") else total
    return fn


@pytest.mark.parametrize("changes, fragments", [
    ({"dw_full": True}, ["mbconv_macs(40, 40, 6, 5, 1, 14) returned", "depthwise convolution as a full one"]),
    ({"dw_at_input": True}, ["depthwise convolution at the input's size"]),
    ({"project_at_input": True}, ["projection at the input's size"]),
    ({"expand_always": True}, ["expansion convolution for expand_ratio = 1"]),
    ({"se_per_pixel": True}, ["at every pixel"]),
    ({"squeeze_expanded": True}, ["quarter of the *expanded* channels"]),
    ({"floor": True}, ["ceil(size / stride)"]),
    ({"flops": True}, ["counted FLOPs"]),
    ({"se": False}, ["left out squeeze-and-excitation"]),
    ({"se": True}, ["although se=False"]),
])
def test_q1_planted_mistakes(changes, fragments):
    assert_incorrect(ex.q1.evaluate(with_(**changes)), *fragments)


def test_q1_wrong_types_and_unnamed_errors():
    assert_incorrect(ex.q1.evaluate(lambda *a, se=True: float(mbconv_macs(*a, se=se))), "should be an int")
    assert_incorrect(ex.q1.evaluate(lambda *a, se=True: mbconv_macs(*a, se=se) + 1), "returned", "expected")
    no_se_keyword = lambda c_in, c_out, t, k, s, n: mbconv_macs(c_in, c_out, t, k, s, n)  # noqa: E731
    assert_incorrect(ex.q1.evaluate(no_se_keyword), "se=False", "unexpected keyword argument 'se'")


# -- q2: compound scaling at phi = 4 ------------------------------------------------------
RIGHT = (1.2 ** 4, 1.1 ** 4, round(224 * 1.15 ** 4), (1.2 * 1.1 ** 2 * 1.15 ** 2) ** 4)


def test_q2_correct_and_the_values_are_the_modules():
    assert ex.q2.evaluate(*RIGHT).outcome is Outcome.CORRECT
    assert RIGHT[2] == 392 and math.isclose(RIGHT[3], efficientnet.flops_growth(4))


@pytest.mark.parametrize("index, value, fragment", [
    (0, 1.2 * 4, "not 1.2 * 4"),
    (1, 1.1 * 4, "not 1.1 * 4"),
    (2, round(224 * 1.15 * 4), "not 224 * 1.15 * 4"),
    (2, math.floor(224 * 1.15 ** 4), "not down"),
    (2, round(224 * 1.15 ** 8), "the square belongs to the FLOPs"),
    (3, 16, "design target"),
    (3, (1.2 * 1.1 * 1.15) ** 4, "enter the FLOPs squared"),
    (3, 1.2 * 1.1 ** 2 * 1.15 ** 2 * 4, "not multiplied by it"),
    (3, 15.0, "step by step"),
    (2, 391.77, "should be an int"),
])
def test_q2_planted_mistakes(index, value, fragment):
    answers = list(RIGHT)
    answers[index] = value
    assert_incorrect(ex.q2.evaluate(*answers), fragment)


def test_q2_wrong_number_of_answers():
    assert_incorrect(ex.q2.evaluate(*RIGHT[:3]), "takes 4 answers")


# -- q3 and q6: choices ----------------------------------------------------------------
def test_q3_the_answer_is_what_the_models_measure():
    assert ex.q3.evaluate("c").outcome is Outcome.CORRECT
    with torch.device("meta"):
        params = {key: sum(p.numel() for p in efficientnet.EfficientNet(**kw).parameters())
                  for key, kw in [("a", {"depth_mult": 2.0}), ("b", {"width_mult": math.sqrt(2)}), ("c", {})]}
    assert params["c"] == 5_288_548  # B0 itself
    assert min(params, key=params.get) == "c" and params["a"] > 1.8 * params["c"] and params["b"] > 1.8 * params["c"]
    assert_incorrect(ex.q3.evaluate("d"), "say nothing about the parameters")
    assert_incorrect(ex.q3.evaluate("a"), "most parameters")
    assert_incorrect(ex.q3.evaluate("B"), "multiplies most")


def test_q6_every_wrong_option_is_explained():
    assert ex.q6.evaluate("(b)").outcome is Outcome.CORRECT
    for letter, fragment in [("a", "tiny next to the convolution"), ("c", "affine map"), ("d", "still non-linear"),
                             ("e", "*expanded* channels")]:
        assert_incorrect(ex.q6.evaluate(letter), fragment)
    assert_incorrect(ex.q6.evaluate("f"), "not one of the options")
    assert_incorrect(ex.q6.evaluate(2), "a letter")


# -- q4: debug the SE block --------------------------------------------------------------
class BrokenSE(nn.Module):  # the exercise's given block: no sigmoid
    def __init__(self, channels, squeeze_channels):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x):
        return x * self.fc2(F.silu(self.fc1(F.adaptive_avg_pool2d(x, 1))))


def se_variant(body):
    return type("Variant", (BrokenSE,), {"forward": body})


def test_q4_correct_and_the_given_block_fails_with_its_own_message():
    assert ex.q4.evaluate(se_variant(lambda s, x: x * torch.sigmoid(s.fc2(F.silu(s.fc1(x.mean((2, 3), keepdim=True))))))
                          ).outcome is Outcome.CORRECT
    assert_incorrect(ex.q4.evaluate(BrokenSE), "raw output", "the given bug")


@pytest.mark.parametrize("body, fragments", [
    (lambda s, x: x * torch.sigmoid(s.fc2(F.relu(s.fc1(F.adaptive_avg_pool2d(x, 1))))), ["ReLU between"]),
    (lambda s, x: x * F.hardsigmoid(s.fc2(F.silu(s.fc1(F.adaptive_avg_pool2d(x, 1))))), ["hard sigmoid"]),
    (lambda s, x: x * torch.softmax(s.fc2(F.silu(s.fc1(F.adaptive_avg_pool2d(x, 1)))), 1), ["softmax over the channels"]),
    (lambda s, x: x * torch.sigmoid(s.fc2(F.silu(s.fc1(F.adaptive_max_pool2d(x, 1))))), ["max pooling"]),
    (lambda s, x: x + torch.sigmoid(s.fc2(F.silu(s.fc1(F.adaptive_avg_pool2d(x, 1))))), ["adds the gate"]),
    (lambda s, x: torch.sigmoid(s.fc2(F.silu(s.fc1(F.adaptive_avg_pool2d(x, 1))))), ["returns the gate itself"]),
    (lambda s, x: F.adaptive_avg_pool2d(x, 1) * torch.sigmoid(s.fc2(F.silu(s.fc1(F.adaptive_avg_pool2d(x, 1))))),
     ["pooled vector times the gate"]),
    (lambda s, x: x * torch.sigmoid(s.fc2(torch.sigmoid(s.fc1(F.adaptive_avg_pool2d(x, 1))))), ["differs from"]),
    (lambda s, x: x.mean((2, 3)), ["SE keeps the shape of its input"]),
    (lambda s, x: [x], ["should return a tensor"]),
])
def test_q4_planted_mistakes(body, fragments):
    assert_incorrect(ex.q4.evaluate(se_variant(body)), *fragments)


def test_q4_layers_must_stay():
    class Renamed(nn.Module):
        def __init__(self, c, s):
            super().__init__()
            self.down, self.up = nn.Conv2d(c, s, 1), nn.Conv2d(s, c, 1)

        def forward(self, x):
            return x * torch.sigmoid(self.up(F.silu(self.down(x.mean((2, 3), keepdim=True)))))
    assert_incorrect(ex.q4.evaluate(Renamed), "`self.fc1` and `self.fc2`")
    assert_incorrect(ex.q4.evaluate(lambda x: x), "nn.Module subclass")


# -- q5: timm-style keys ------------------------------------------------------------------
MB6 = {"conv_pw": "0.0", "bn1": "0.1", "conv_dw": "1.0", "bn2": "1.1", "se.conv_reduce": "2.fc1",
       "se.conv_expand": "2.fc2", "conv_pwl": "3.0", "bn3": "3.1"}
MB1 = {"conv_dw": "0.0", "bn1": "0.1", "se.conv_reduce": "1.fc1", "se.conv_expand": "1.fc2", "conv_pw": "2.0",
       "bn2": "2.1"}
TOP = {"conv_stem": "features.0.0", "bn1": "features.0.1", "conv_head": "features.8.0", "bn2": "features.8.1",
       "classifier": "classifier.1"}


def rename(sd, offset=1, one_table=False, top=TOP):
    inverted = {m.group(1) for k in sd if (m := re.match(r"(blocks\.\d+\.\d+)\.conv_pwl\.", k))}
    out = {}
    for k, v in sd.items():
        m = re.match(r"blocks\.(\d+)\.(\d+)\.(.+)\.(\w+)$", k)
        if m:
            s, j, layer, what = m.groups()
            table = MB6 if (one_table or f"blocks.{s}.{j}" in inverted) else MB1
            out[f"features.{int(s) + offset}.{j}.block.{table[layer]}.{what}"] = v
        else:
            layer, what = k.rsplit(".", 1)
            out[f"{top[layer]}.{what}"] = v
    return out


def test_q5_correct_and_the_timm_names_really_fail_strict_loading():
    assert ex.q5.evaluate(rename).outcome is Outcome.CORRECT
    model = efficientnet.EfficientNet(**ex.SMALL)
    theirs = ex.timm_checkpoint(model)
    assert "blocks.0.0.conv_pw.weight" in theirs and "blocks.1.0.conv_pwl.weight" in theirs
    assert theirs["blocks.0.0.conv_pw.weight"].shape[-1] == 1 and "blocks.0.0.conv_pwl.weight" not in theirs
    with pytest.raises(RuntimeError, match="Missing key"):
        efficientnet.EfficientNet(**ex.SMALL).load_state_dict(theirs, strict=True)


def swapped_head_bn(sd):
    out = rename(sd)
    out["features.0.1.weight"], out["features.8.1.weight"] = out["features.8.1.weight"], out["features.0.1.weight"]
    return out


def paired_wrongly(sd):  # keys right, but the stem's and head's batch norms share out the same tensors
    out = rename(sd)
    out["features.1.0.block.0.1.bias"] = out["features.1.0.block.0.1.weight"]
    return out


@pytest.mark.parametrize("fn, fragments", [
    (lambda sd: dict(sd), ["keep their timm names"]),
    (lambda sd: rename(sd, offset=0), ["start at `features.0`", "stage numbers + 1"]),
    (lambda sd: rename(sd, one_table=True), ["MBConv1, no expansion", "`conv_pw` is the projection"]),
    (lambda sd: rename(sd, top={**TOP, "classifier": "classifier"}), ["`classifier.1.weight`"]),
    (lambda sd: {k: v for k, v in rename(sd).items() if not k.endswith("num_batches_tracked")},
     ["you dropped", "num_batches_tracked"]),
    (swapped_head_bn, ["is not the checkpoint's", "`features.0.1.weight`"]),
    (paired_wrongly, ["is not the checkpoint's `blocks.0.0.bn1.bias`", "(it is the checkpoint's `blocks.0.0.bn1.weight`)"]),
    (lambda sd: {k: v.half() for k, v in rename(sd).items()}, ["is not the checkpoint's"]),
    (lambda sd: list(rename(sd).items()), ["should return a dict"]),
    (lambda sd: None, ["returned None"]),
    (lambda sd: {**rename(sd), "extra.weight": torch.zeros(1)}, ["unexpected `extra.weight`"]),
])
def test_q5_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q5.evaluate(fn), *fragments)


def test_q5_changing_the_checkpoint_in_place_cannot_fool_the_check():
    def scales_then_renames(sd):
        for v in sd.values():
            if v.is_floating_point():
                v.mul_(2)
        return rename(sd)
    assert_incorrect(ex.q5.evaluate(scales_then_renames), "is not the checkpoint's")
