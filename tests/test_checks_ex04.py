"""The checks of exercise 04 (VGG): right answers pass, stubs are "not attempted", planted mistakes fail
with a message that says what is wrong."""

import json

import pytest
import torch
import torch.nn.functional as F
from checkhelpers import assert_incorrect as assert_result
from checkhelpers import assert_not_attempted
from checkhelpers import assert_wrong as assert_incorrect
from icdl.checks import ex04_vgg as ex
from icdl.checks.core import Outcome
from icdl.env import repo_root
from icdl.summary import count_flops
from icdl.models import vgg
from torch import nn

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5]


def given(name):
    """The code the notebook gives the learner (its own cell, in solutions/ and exercises/ alike), defined here."""
    found = []
    for folder in ("solutions", "exercises"):
        cells = json.loads((repo_root() / folder / "04_vgg.ipynb").read_text())["cells"]
        found += ["".join(c["source"]) for c in cells if c["cell_type"] == "code"
                  and "".join(c["source"]).startswith(f"def {name}(")]
    assert len(found) == 2 and found[0] == found[1], f"the cell defining {name} is missing or differs"
    namespace = {"nn": nn, "torch": torch}
    exec(found[0], namespace)
    return namespace[name]


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "04_vgg"


# --- Q1: make_layers, with planted mistakes ------------------------------------
def layers_with(*, relu=True, padding=1, track_channels=True, pools=True, bn_where="after_conv",
                pool=lambda: nn.MaxPool2d(2, 2), padding_mode="zeros", bias=True):
    def make_layers(config, batch_norm=False, in_channels=3):
        layers = []
        for item in config:
            if item == "M":
                if pools:
                    layers.append(pool())
                continue
            if batch_norm and bn_where == "before_conv":
                layers.append(nn.BatchNorm2d(in_channels))
            layers.append(nn.Conv2d(in_channels, item, 3, padding=padding, padding_mode=padding_mode, bias=bias))
            if batch_norm and bn_where == "after_conv":
                layers.append(nn.BatchNorm2d(item))
            if relu:
                layers.append(nn.ReLU(inplace=True))
            if batch_norm and bn_where == "after_relu":
                layers.append(nn.BatchNorm2d(item))
            if track_channels:
                in_channels = item
        return nn.Sequential(*layers)
    return make_layers


def test_q1_the_given_function_fails_with_a_message_about_its_bug():
    buggy = given("buggy_make_layers")
    with torch.no_grad():  # the symptom the notebook shows: right without batch norm, wrong names with it
        assert [type(m) for m in buggy([8, "M"])] == [type(m) for m in vgg.make_layers([8, "M"])]
    assert_incorrect(ex.q1, buggy, "batch norm comes after its ReLU", "conv, batch norm, ReLU",
                     "Ioffe & Szegedy (2015, Section 3.2)", "`features.1` must be the batch norm")


def test_q1_plausible_fixes_that_are_still_wrong():
    assert_incorrect(ex.q1, layers_with(bn_where="before_conv"), "batch norm comes before its convolution")
    assert_incorrect(ex.q1, layers_with(bias=False), "parameter names differ", "keep the convolutions' bias")
    assert_incorrect(ex.q1, layers_with(bn_where="after_relu"), "batch norm comes after its ReLU")


def test_q1_correct_and_not_attempted():
    assert ex.q1.evaluate(vgg.make_layers).outcome is Outcome.CORRECT
    assert ex.q1.evaluate(layers_with()).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q1)


def test_q1_planted_mistakes():
    assert_incorrect(ex.q1, layers_with(relu=False), "4 convolutions but 0 ReLUs", "batch_norm=False")
    assert_incorrect(ex.q1, layers_with(padding=0), "padding 0", "padding=1")
    assert_incorrect(ex.q1, layers_with(track_channels=False), "convolution `3` reads 3 channels",
                     "writes 8", "batch_norm=False")
    assert_incorrect(ex.q1, layers_with(pools=False), "0 MaxPool2d layers", "expected 2")
    assert_incorrect(ex.q1, layers_with(bn_where="nowhere"), "0 BatchNorm2d layers for 4", "batch_norm=True")
    assert_incorrect(ex.q1, lambda config, batch_norm=False: list(vgg.make_layers(config, batch_norm)),
                     "should return an nn.Sequential", "list")

    def nested(config, batch_norm=False):  # right layers, wrong names (a Sequential per block)
        flat = list(vgg.make_layers(config, batch_norm))
        return nn.Sequential(nn.Sequential(*flat[:3]), *flat[3:])

    assert_incorrect(ex.q1, nested, "child `0` is itself a container", "one flat nn.Sequential")


def test_q1_planted_mistakes_with_the_right_shapes():
    # Same layer kinds, same shapes, same parameter names: only the values tell these apart.
    assert_incorrect(ex.q1, layers_with(pool=lambda: nn.MaxPool2d(3, 2, padding=1)),
                     "MaxPool2d(kernel_size=3", "2x2 windows with stride 2")
    assert_incorrect(ex.q1, layers_with(padding_mode="reflect"), "padding_mode='reflect'", "zeros")

    class SkipsReLU(nn.Sequential):  # right layers, but forward does not run them all in order
        def forward(self, x):
            for layer in self:
                if not isinstance(layer, nn.ReLU):
                    x = layer(x)
            return x

    assert_incorrect(ex.q1, lambda config, batch_norm=False: SkipsReLU(*vgg.make_layers(config, batch_norm)),
                     "forward ran the layers ['Conv2d', 'MaxPool2d'", "once, in the list's order")

    class LeakyReLU(nn.ReLU):  # a ReLU by its class, a leaky one by what it computes
        def forward(self, x):
            return F.leaky_relu(x, 0.1)

    def leaky(config, batch_norm=False):
        layers = vgg.make_layers(config, batch_norm)
        return nn.Sequential(*[LeakyReLU() if isinstance(m, nn.ReLU) else m for m in layers])

    assert_incorrect(ex.q1, leaky, "output differs from", "your own layers", "in the list's order")


def test_q1_a_shared_relu_module_is_counted_once_per_use():
    def shared_relu(config, batch_norm=False):
        relu = nn.ReLU(inplace=True)
        return nn.Sequential(*[relu if isinstance(m, nn.ReLU) else m for m in vgg.make_layers(config, batch_norm)])

    assert ex.q1.evaluate(shared_relu).outcome is Outcome.CORRECT


def test_q1_reports_a_forward_that_crashes_with_the_last_layer_that_ran():
    class BrokenReLU(nn.ReLU):
        def forward(self, x):
            raise ValueError("boom")

    def answer(config, batch_norm=False):
        layers = list(vgg.make_layers(config, batch_norm))
        layers[-1] = BrokenReLU()
        return nn.Sequential(*layers)

    assert_incorrect(ex.q1, answer, "raised ValueError: boom", "last layer that ran was `8` (Conv2d)")


# --- Q2: the receptive field of a configuration, pools included ---------------
def receptive_field(config):
    field, step = 1, 1
    for item in config:
        if item == "M":
            field += step
            step *= 2
        else:
            field += 2 * step
    return field


def measured_field(config, size=320):
    """The receptive field found with autograd on one-channel layers (average pools: the whole window)."""
    layers = []
    for item in config:
        conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        nn.init.ones_(conv.weight)
        layers.append(nn.AvgPool2d(2, 2) if item == "M" else conv)
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    out = nn.Sequential(*layers)(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = (x.grad[0, 0].abs().sum(dim=1) > 0).nonzero()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("config", [[64], [64, "M", 128], ["M", "M", 64], vgg.CONFIGS["D"][:10],
                                    vgg.CONFIGS["D"][:-1]], ids=str)
def test_q2_the_reference_is_what_autograd_measures(config):
    assert ex.reference_receptive_field(config) == receptive_field(config) == measured_field(config)


def test_q2():
    result = ex.q2.evaluate(receptive_field)
    assert result.outcome is Outcome.CORRECT and "196 x 196" in result.message, result
    assert_not_attempted(ex.q2)


@pytest.mark.parametrize("wrong, fragments", [
    (lambda c: 1 + 2 * sum(i != "M" for i in c), ["receptive_field([64, 'M', 128]) returned 5", "convolutions only"]),
    (lambda c: 1 + sum(1 if i == "M" else 2 for i in c), ["returned 6", "2 x 2 = 4 pixels"]),
    (ex._rf_pool_doubles, ["doubled the window at each pool"]),
    (ex._rf_pool_window_forgotten, ["left out the pool's own 2x2 window"]),
    (ex._rf_step_first, ["doubled the step before adding the pool's own window"]),
    (lambda c: 0, ["receptive_field([64]) returned 0; expected 3."]),
    (lambda c: 3 if len(c) == 1 else 5, ["receptive_field([64, 'M', 128]) returned 5"]),
    (lambda c: float(receptive_field(c)), ["should be an int"]),
    (lambda n: 1 + 2 * n, ["TypeError"]),
])
def test_q2_planted_mistakes(wrong, fragments):
    assert_incorrect(ex.q2, wrong, *fragments)


# --- Q3: multiply-adds of a convolution, stride and groups ---------------------
def conv_macs(c_in, c_out, k, size, stride=1, groups=1):
    side = (size + 2 * (k // 2) - k) // stride + 1
    return (c_in // groups) * k * k * c_out * side * side


def test_q3_the_reference_is_what_the_flop_counter_counts():
    for case in ex.q3.cases:
        args, kwargs = case if isinstance(case[-1], dict) else (case, {})
        c_in, c_out, k, size = args
        conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False, **kwargs)
        assert ex.reference_conv_macs(*args, **kwargs) == count_flops(conv, (1, c_in, size, size)) // 2, case


def test_q3():
    assert ex.q3.evaluate(conv_macs).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q3)


@pytest.mark.parametrize("wrong, fragments", [
    (lambda c_in, c_out, k, size, stride=1, groups=1: conv_macs(c_in, c_out, k, size, stride),
     ["conv_macs(128, 128, 3, 28, groups=32) returned", "ignored the groups"]),
    (lambda c_in, c_out, k, size, stride=1, groups=1: conv_macs(c_in, c_out, k, size, stride, groups) // groups,
     ["divided by the groups twice"]),
    (lambda c_in, c_out, k, size, stride=1, groups=1: conv_macs(c_in, c_out, k, size, 1, groups),
     ["conv_macs(64, 128, 3, 56, stride=2)", "used the input's size"]),
    (lambda c_in, c_out, k, size, stride=1, groups=1: c_in // groups * c_out * k * k * (size // stride) ** 2,
     ["conv_macs(64, 64, 3, 7, stride=2)", "rounding down"]),
    (lambda c_in, c_out, k, size, stride=1, groups=1: 2 * conv_macs(c_in, c_out, k, size, stride, groups),
     ["counted FLOPs"]),
    (lambda c_in, c_out, k, size, stride=1, groups=1: c_in * c_out * k * k, ["conv_macs(3, 64, 3, 32)",
                                                                                 "once per output position"]),
    (lambda c_in, c_out, k, size, stride=1, groups=1: conv_macs(c_in, c_out, k, size, stride, groups) // k,
     ["k x k"]),
    (lambda c_in, c_out, k, size, stride=1, groups=1: conv_macs(c_in, c_out, k, size, stride, groups)
     + c_out * ((size - 1) // stride + 1) ** 2, ["added the biases"]),
    (lambda c_in, c_out, k, size, stride=1, groups=1: conv_macs(c_in, c_out, k, size, stride, groups) / 1,
     ["should be an int"]),
    (lambda c_in, c_out, k, size: conv_macs(c_in, c_out, k, size), ["unexpected keyword argument 'stride'"]),
])
def test_q3_planted_mistakes(wrong, fragments):
    assert_incorrect(ex.q3, wrong, *fragments)


# --- Q4: two 3x3 layers against one 5x5 where the width doubles ---------------
def test_q4_expected_value_comes_from_real_layers():
    stack = nn.Conv2d(64, 128, 3, bias=False).weight.numel() + nn.Conv2d(128, 128, 3, bias=False).weight.numel()
    assert ex.q4.expected() == (stack / nn.Conv2d(64, 128, 5, bias=False).weight.numel(),)


def test_q4():
    assert ex.q4.evaluate(221_184 / 204_800).outcome is Outcome.CORRECT
    assert ex.q4.evaluate(torch.tensor(221_184 / 204_800, dtype=torch.float64)).outcome is Outcome.CORRECT
    assert ex.q4.evaluate(None).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize("wrong, fragments", [
    (18 / 25, ["the chapter's ratio", "same number of channels"]),
    (25 / 27, ["upside down"]),
    (27 / 50, ["count each layer with its own channels", "the second reads 128"]),
    (9 / 25, ["ONE 3x3 layer"]),
    ((73_728 + 128 + 147_456 + 128) / (204_800 + 128), ["counts the biases", "weights only"]),
    (1.0801, ["`ratio` = 1.0801 is not right", "with the channels each one really reads"]),
    (1, ["is not right"]),
    ("27/25", ["should be a number"]),
])
def test_q4_planted_mistakes(wrong, fragments):
    assert_incorrect(ex.q4, wrong, *fragments)


def test_q4_messages_do_not_print_the_answer():
    for wrong in (18 / 25, 25 / 27, 27 / 50, 9 / 25, 1.0801, 0.5):
        message = ex.q4.evaluate(wrong).message
        assert "1.08 " not in message + " " and "27/25" not in message and "1.080 " not in message, message


# --- Q5: VGG16-BN's parameters ---------------------------------------------------
def counts():
    with torch.device("meta"):
        model = vgg.vgg16_bn()
    conv = sum(p.numel() for m in model.modules() if isinstance(m, nn.Conv2d) for p in m.parameters())
    fc = sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters())
    conv_w = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
    fc_w = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    features = sum(p.numel() for p in model.features.parameters())
    return conv, fc, conv_w, fc_w, features


def test_q5_expected_counts_on_vgg16_bn():
    conv, fc, *_ = counts()
    assert (conv, fc) == ex.q5.expected() == (14_714_688, 123_642_856)


def test_q5():
    conv, fc, conv_w, fc_w, features = counts()
    result = ex.q5.evaluate(conv, fc)
    assert result.outcome is Outcome.CORRECT and "89%" in result.message, result
    assert ex.q5.evaluate(None, None).outcome is Outcome.NOT_ATTEMPTED
    assert ex.q5.evaluate(conv, None).outcome is Outcome.NOT_ATTEMPTED
    assert_result(ex.q5.evaluate(fc, conv), "swapped")
    assert_result(ex.q5.evaluate(conv_w, fc_w), "`conv_params`", "weights only", "biases too")
    assert_result(ex.q5.evaluate(conv, fc_w), "`fc_params`", "weights only")
    assert_result(ex.q5.evaluate(features, fc), "batch norms' weights and biases")
    assert_result(ex.q5.evaluate(conv, fc + 1), "`fc_params`", "is not right")
    assert_result(ex.q5.evaluate(float(conv), fc), "should be an int")
    assert_result(ex.q5.evaluate(conv + fc), "takes 2 answers")
