"""The checks of exercise 04 (VGG): right answers pass, stubs are "not attempted", planted mistakes fail
with a message that says what is wrong."""

import torch
from checkhelpers import assert_not_attempted
from checkhelpers import assert_wrong as assert_incorrect
from icdl.checks import ex04_vgg as ex
from icdl.checks.core import Outcome
from icdl.models import vgg
from torch import nn


# --- Q1: make_layers, with planted mistakes ------------------------------------
def layers_with(*, relu=True, padding=1, track_channels=True, pools=True, bn_where="after_conv"):
    def make_layers(config, batch_norm=False, in_channels=3):
        layers = []
        for item in config:
            if item == "M":
                if pools:
                    layers.append(nn.MaxPool2d(2, 2))
                continue
            layers.append(nn.Conv2d(in_channels, item, 3, padding=padding))
            if batch_norm and bn_where == "after_conv":
                layers.append(nn.BatchNorm2d(item))
            if relu:
                layers.append(nn.ReLU(inplace=True))
            if track_channels:
                in_channels = item
        return nn.Sequential(*layers)
    return make_layers


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


def test_q1_reports_a_forward_that_crashes_with_the_last_layer_that_ran():
    class BrokenReLU(nn.ReLU):
        def forward(self, x):
            raise ValueError("boom")

    def answer(config, batch_norm=False):
        layers = list(vgg.make_layers(config, batch_norm))
        layers[-1] = BrokenReLU()
        return nn.Sequential(*layers)

    assert_incorrect(ex.q1, answer, "raised ValueError: boom", "last layer that ran was `8` (Conv2d)")


# --- Q2 ------------------------------------------------------------------------
def test_q2():
    assert ex.q2.evaluate(lambda n: 2 * n + 1).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q2)
    assert_incorrect(ex.q2, lambda n: 3 * n, "receptive_field(2) is 6, expected 5", "2 pixels, not 3")
    assert_incorrect(ex.q2, lambda n: 3 ** n, "receptive_field(2) is 9", "does not multiply")
    assert_incorrect(ex.q2, lambda n: 2 * n, "receptive_field(1) is 2", "expected value is 3")


# --- Q3 ------------------------------------------------------------------------
def test_q3():
    assert ex.q3.evaluate(lambda c, n: n * 9 * c * c).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q3)
    assert_incorrect(ex.q3, lambda c, n: n * (9 * c * c + c), "73,856", "73,728", "not the 128 biases")
    assert_incorrect(ex.q3, lambda c, n: n * 9 * c, "C * C * 9 per layer")
    assert_incorrect(ex.q3, lambda c, n: 9 * c * c, "that is one layer", "n = 2")
    assert_incorrect(ex.q3, lambda c: 9 * c * c, "TypeError")


# --- Q4 ------------------------------------------------------------------------
def test_q4():
    assert ex.q4.evaluate(18 / 25).outcome is Outcome.CORRECT
    assert ex.q4.evaluate(0.72).outcome is Outcome.CORRECT
    assert ex.q4.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    assert_incorrect(ex.q4, 25 / 18, "upside down")
    assert_incorrect(ex.q4, 9 / 25, "ONE 3x3 layer")
    assert_incorrect(ex.q4, 0.5, "`ratio` is 0.5", "0.72")
    assert_incorrect(ex.q4, "18/25", "should be a number")


# --- Q5 ------------------------------------------------------------------------
def conv_and_fc_params(model):
    conv = sum(p.numel() for m in model.modules() if isinstance(m, nn.Conv2d) for p in m.parameters())
    fc = sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters())
    return conv, fc


def test_q5_expected_counts_on_vgg16():
    with torch.device("meta"):
        conv, fc = conv_and_fc_params(vgg.vgg16())
    assert (conv, fc) == (14_714_688, 123_642_856)


def test_q5():
    assert ex.q5.evaluate(conv_and_fc_params).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q5)
    assert_incorrect(ex.q5, lambda m: tuple(reversed(conv_and_fc_params(m))), "wrong way round")
    weights_only = lambda m: (sum(x.weight.numel() for x in m.modules() if isinstance(x, nn.Conv2d)),
                              sum(x.weight.numel() for x in m.modules() if isinstance(x, nn.Linear)))
    assert_incorrect(ex.q5, weights_only, "weights only", "count the biases too")
    everything_conv = lambda m: (sum(p.numel() for p in m.features.parameters()), conv_and_fc_params(m)[1])
    assert_incorrect(ex.q5, everything_conv, "conv count for a small VGG-A with batch norm")
    assert_incorrect(ex.q5, lambda m: sum(conv_and_fc_params(m)), "a pair")
