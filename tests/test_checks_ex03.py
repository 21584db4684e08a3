"""The checks of exercise 03 (AlexNet): right answers pass, stubs are "not attempted", planted mistakes fail
with a message that says what is wrong."""

import torch
import torchvision
from checkhelpers import assert_not_attempted
from checkhelpers import assert_wrong as assert_incorrect
from icdl.checks import ex03_alexnet as ex
from icdl.checks.core import Outcome
from icdl.models import alexnet
from icdl.models.alexnet import ConvSpec

# --- Q1 ----------------------------------------------------------------------
SHAPES = [(64, 55, 55), (64, 27, 27), (192, 27, 27), (192, 13, 13), (384, 13, 13), (256, 13, 13),
          (256, 13, 13), (256, 6, 6)]


def test_q1_expected_shapes_are_those_of_torchvision_alexnet():
    model = torchvision.models.alexnet(weights=None).eval()
    got, x = [], torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        for layer in model.features:
            x = layer(x)
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.MaxPool2d)):
                got.append(tuple(x.shape[1:]))
    assert got == SHAPES == ex.alexnet_shapes()


def test_q1():
    assert ex.q1.evaluate(SHAPES).outcome is Outcome.CORRECT
    assert ex.q1.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    no_padding = [(64, 54, 54)] + SHAPES[1:]  # (224 - 11) // 4 + 1 = 54
    assert_incorrect(ex.q1, no_padding, "conv1", "(64, 54, 54)", "(64, 55, 55)", "height/width")
    paper_channels = SHAPES[:5] + [(384, 13, 13)] + SHAPES[6:]  # the paper's conv4 has 384, torchvision's 256
    assert_incorrect(ex.q1, paper_channels, "conv4", "channels", "conv3's (384, 13, 13)")
    assert_incorrect(ex.q1, SHAPES[:-1], "8 shapes", "yours has 7")
    assert_incorrect(ex.q1, [(64, 55)] + SHAPES[1:], "(C, H, W)", "conv1")


# --- Q2 ----------------------------------------------------------------------
def conv_params(c_in, c_out, k, groups=1, bias=True):
    return c_out * (c_in // groups) * k * k + (c_out if bias else 0)


def test_q2():
    assert ex.q2.evaluate(conv_params).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q2)
    ignores_groups = lambda c_in, c_out, k, groups=1, bias=True: c_out * c_in * k * k + (c_out if bias else 0)
    assert_incorrect(ex.q2, ignores_groups, "groups=2", "96 // 2 = 48", "614,656", "307,456")
    no_bias = lambda c_in, c_out, k, groups=1, bias=True: c_out * (c_in // groups) * k * k
    assert_incorrect(ex.q2, no_bias, "forgot the 96 biases", "34,848")
    always_bias = lambda c_in, c_out, k, groups=1, bias=True: c_out * (c_in // groups) * k * k + c_out
    assert_incorrect(ex.q2, always_bias, "bias=False", "no biases")
    assert_incorrect(ex.q2, lambda *a, **k: "many", "should be a number")
    assert_incorrect(ex.q2, lambda c_in, c_out, k: 0, "TypeError")  # no groups/bias arguments


# --- Q3 ----------------------------------------------------------------------
def test_q3():
    assert ex.q3.evaluate(alexnet.PAPER).outcome is Outcome.CORRECT
    assert ex.q3.evaluate(list(alexnet.PAPER)).outcome is Outcome.CORRECT
    assert ex.q3.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    assert_incorrect(ex.q3, alexnet.TORCHVISION, "conv1: out_channels is 64", "paper's is 96")
    no_groups = (alexnet.PAPER[0], ConvSpec(256, 5, padding=2, lrn=True, pool=True), *alexnet.PAPER[2:])
    assert_incorrect(ex.q3, no_groups, "conv2: groups is 1", "paper's is 2", "own GPU")
    conv3_split = (*alexnet.PAPER[:2], ConvSpec(384, 3, padding=1, groups=2), *alexnet.PAPER[3:])
    assert_incorrect(ex.q3, conv3_split, "conv3: groups is 2", "conv3 reads both")
    assert_incorrect(ex.q3, alexnet.PAPER[:4], "5 rows", "yours has 4")
    assert_incorrect(ex.q3, [(96, 11, 4, 2)] * 5, "conv1 should be a ConvSpec")


# --- Q4 ----------------------------------------------------------------------
def transfer(reference):
    model = alexnet.alexnet()
    model.load_state_dict(reference.state_dict(), strict=True)
    return model.eval()


def test_q4():
    assert ex.q4.evaluate(transfer).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q4)
    assert_incorrect(ex.q4, lambda ref: alexnet.alexnet().eval(), "outputs differ", "load_state_dict")
    assert_incorrect(ex.q4, lambda ref: ref, "torchvision's model")

    def forgot_eval(ref):
        model = alexnet.alexnet()
        model.load_state_dict(ref.state_dict())
        return model

    assert_incorrect(ex.q4, forgot_eval, "training mode", "model.eval()")
    assert_incorrect(ex.q4, lambda ref: alexnet.alexnet_paper().eval(), "missing keys", "features.3.weight",
                     "not the paper's")

    def strict_fails(ref):
        model = alexnet.alexnet_paper()
        model.load_state_dict(ref.state_dict(), strict=True)
        return model

    assert_incorrect(ex.q4, strict_fails, "RuntimeError", "size mismatch")


# --- Q5 ----------------------------------------------------------------------
def activation_gradients(x):
    grads = []
    for fn in (torch.relu, torch.tanh):
        xg = x.detach().clone().requires_grad_(True)
        fn(xg).sum().backward()
        grads.append(xg.grad)
    return tuple(grads)


def test_q5():
    result = ex.q5.evaluate(activation_gradients)
    assert result.outcome is Outcome.CORRECT and "tanh'(x) = 0.0013" in result.message
    assert_not_attempted(ex.q5)
    assert_incorrect(ex.q5, lambda x: (torch.relu(x), torch.tanh(x)), "equals relu(x)", "not its derivative")
    assert_incorrect(ex.q5, lambda x: tuple(reversed(activation_gradients(x))), "wrong order")
    assert_incorrect(ex.q5, lambda x: ((x > 0).float(), 1 - torch.tanh(x)), "tanh_grad", "largest difference")
    assert_incorrect(ex.q5, lambda x: (x > 0).float(), "a pair")


def test_q4_reports_a_transfer_that_changes_the_reference_and_restores_it():
    def vandal(ref):
        with torch.no_grad():
            ref.features[0].weight.zero_()
        return transfer(ref)

    assert_incorrect(ex.q4, vandal, "changed the weights of torchvision's model")
    assert ex.q4.evaluate(transfer).outcome is Outcome.CORRECT  # the cached reference was restored
