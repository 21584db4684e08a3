"""The checks of exercise 04 (VGG): right answers pass, stubs are "not attempted", planted mistakes fail
with a message that says what is wrong."""

import pytest
import torch
import torch.nn.functional as F
from checkhelpers import assert_not_attempted
from checkhelpers import assert_wrong as assert_incorrect
from icdl.checks import ex04_vgg as ex
from icdl.checks.core import Outcome
from icdl.models import vgg
from torch import nn


# --- Q1: make_layers, with planted mistakes ------------------------------------
def layers_with(*, relu=True, padding=1, track_channels=True, pools=True, bn_where="after_conv",
                pool=lambda: nn.MaxPool2d(2, 2), padding_mode="zeros"):
    def make_layers(config, batch_norm=False, in_channels=3):
        layers = []
        for item in config:
            if item == "M":
                if pools:
                    layers.append(pool())
                continue
            layers.append(nn.Conv2d(in_channels, item, 3, padding=padding, padding_mode=padding_mode))
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


# --- Q2 ------------------------------------------------------------------------
def test_q2():
    assert ex.q2.evaluate(lambda n: 2 * n + 1).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q2)
    assert_incorrect(ex.q2, lambda n: 3 * n, "receptive_field(2) is 6, expected 5", "2 pixels, not 3")
    assert_incorrect(ex.q2, lambda n: 3 ** n, "receptive_field(2) is 9", "does not multiply")
    assert_incorrect(ex.q2, lambda n: 2 * n, "receptive_field(1) is 2", "expected value is 3")
    assert_incorrect(ex.q2, lambda n: 2 * n + 1.0, "should be an int", "//")

    class Liar(int):
        def __eq__(self, other):
            return True

        def __ne__(self, other):
            return False

        __hash__ = int.__hash__

    assert_incorrect(ex.q2, lambda n: Liar(0), "receptive_field(1) is 0")


# --- Q3 ------------------------------------------------------------------------
def test_q3():
    assert ex.q3.evaluate(lambda c, n: n * 9 * c * c).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q3)
    assert_incorrect(ex.q3, lambda c, n: n * (9 * c * c + c), "73,856", "73,728", "not the 128 biases")
    assert_incorrect(ex.q3, lambda c, n: n * 9 * c, "C * C * 9 per layer")
    assert_incorrect(ex.q3, lambda c, n: 9 * c * c, "that is one layer", "n = 2")
    assert_incorrect(ex.q3, lambda c: 9 * c * c, "TypeError")
    assert_incorrect(ex.q3, lambda c, n: n * 9 * c * c / 1, "should be an int")


# --- Q4 ------------------------------------------------------------------------
def test_q4():
    assert ex.q4.evaluate(18 / 25).outcome is Outcome.CORRECT
    assert ex.q4.evaluate(0.72).outcome is Outcome.CORRECT
    assert ex.q4.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    assert_incorrect(ex.q4, 25 / 18, "upside down")
    assert_incorrect(ex.q4, 9 / 25, "ONE 3x3 layer")
    assert_incorrect(ex.q4, "18/25", "should be a number")


def test_q4_messages_do_not_print_the_answer():
    for wrong in (0.5, 25 / 18, 9 / 25, 0.7202):
        message = ex.q4.evaluate(wrong).message
        assert "0.72 " not in message + " " and "18/25" not in message and "0.720 " not in message, message
    assert_incorrect(ex.q4, 0.5, "`ratio` is 0.5", "too small")


@pytest.mark.parametrize("channels", [64, 256, 512])
def test_q4_a_ratio_that_counts_the_biases_is_wrong(channels):
    with_biases = 2 * (9 * channels ** 2 + channels) / (25 * channels ** 2 + channels)
    assert_incorrect(ex.q4, with_biases, "biases", "weights only")


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
