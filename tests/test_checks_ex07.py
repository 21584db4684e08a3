"""Tests of the checks of exercise 07 (DenseNet): right answers pass, planted mistakes fail with the
message that names the mistake, untouched stubs say "not attempted"."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from checkhelpers import StubModule, assert_incorrect, stub
from icdl.checks import ex07_densenet as ex
from icdl.checks.core import Outcome
from icdl.models import densenet
from torch import nn

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5]


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_untouched_answers_are_not_attempted(q):
    assert q.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    if q is ex.q4:
        assert q.evaluate([256, None, None, None, None, None, None]).outcome is Outcome.NOT_ATTEMPTED
    else:
        assert q.evaluate(StubModule if q in (ex.q1, ex.q3) else stub).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "07_densenet"


# -- q1: the dense layer ----------------------------------------------------------
class DenseLayer(nn.Module):
    def __init__(self, in_channels, growth_rate, mode="cat", bias=False, order="bn-relu-conv"):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, 4 * growth_rate, 1, bias=bias)
        self.norm2 = nn.BatchNorm2d(4 * growth_rate)
        self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=bias)
        self.mode, self.order = mode, order

    def new_maps(self, x):
        if self.order == "bn-conv":  # no ReLU at all
            return self.conv2(self.norm2(self.conv1(self.norm1(x))))
        if self.order == "bn-conv-relu":  # post-activation, as in a plain CNN
            return F.relu(self.conv2(self.norm2(F.relu(self.conv1(self.norm1(x))))))
        if self.order == "one-relu":  # the second ReLU forgotten
            return self.conv2(self.norm2(self.conv1(F.relu(self.norm1(x)))))
        return self.conv2(F.relu(self.norm2(self.conv1(F.relu(self.norm1(x))))))

    def forward(self, x):
        new = self.new_maps(x)
        if self.mode == "add":
            return x + new
        if self.mode == "new_first":
            return torch.cat([new, x], 1)
        return torch.cat([x, new], 1)


def variant(**kw):
    return type("Variant", (DenseLayer,), {"__init__": lambda self, c, k: DenseLayer.__init__(self, c, k, **kw)})


def test_q1_correct():
    assert ex.q1.evaluate(DenseLayer).outcome is Outcome.CORRECT


def test_q1_adding_instead_of_concatenating():
    assert_incorrect(ex.q1.evaluate(variant(mode="add")), "did you add (x + new) instead of concatenating")


def test_q1_input_last_and_biases():
    assert_incorrect(ex.q1.evaluate(variant(mode="new_first")), "input channels are at the end")
    assert_incorrect(ex.q1.evaluate(variant(bias=True)), "parameters; expected", "bias=False")


@pytest.mark.parametrize("order, fragments", [
    ("bn-conv", ["no ReLU", "BN-ReLU-Conv"]),
    ("bn-conv-relu", ["BN-Conv-ReLU", "pre-activation order BN-ReLU-Conv"]),
    ("one-relu", ["no ReLU between the second batch norm and the 3x3 convolution"]),
])
def test_q1_right_shapes_wrong_values_are_named(order, fragments):
    # Same layers, shapes and parameter counts as the right answer: only the values, computed with the
    # learner's own batch norms and convolutions in DenseNet's order, tell these apart.
    assert_incorrect(ex.q1.evaluate(variant(order=order)), *fragments)


def test_q1_post_activation_order_is_diagnosed():
    class ConvFirst(DenseLayer):
        def forward(self, x):
            new = self.conv2(F.relu(self.norm2(self.conv1(x))))
            return torch.cat([x, new], 1)
    assert_incorrect(ex.q1.evaluate(ConvFirst), "starts with Conv2d", "BN-ReLU-Conv")


def test_q1_no_bottleneck_and_only_new_maps():
    class NoBottleneck(nn.Module):
        def __init__(self, c, k):
            super().__init__()
            self.norm = nn.BatchNorm2d(c)
            self.conv = nn.Conv2d(c, k, 3, padding=1, bias=False)

        def forward(self, x):
            return torch.cat([x, self.conv(F.relu(self.norm(x)))], 1)
    assert_incorrect(ex.q1.evaluate(NoBottleneck), "single convolution", "1x1 bottleneck")
    assert_incorrect(ex.q1.evaluate(densenet.DenseLayer), "outputs only the 8 new maps")


# -- q2: channels after a block ----------------------------------------------------
def test_q2_correct_and_planted():
    assert ex.q2.evaluate(lambda c, n, k: c + n * k).outcome is Outcome.CORRECT
    assert_incorrect(ex.q2.evaluate(lambda c, n, k: n * k), "expected 256", "left out the block's input")
    assert_incorrect(ex.q2.evaluate(lambda c, n, k: c + (n - 1) * k), "off by one layer")
    assert_incorrect(ex.q2.evaluate(lambda c, n, k: float(c + n * k)), "should be an int", "//")
    message = ex.q2.evaluate(lambda c, n, k: c + n * k + 1).message
    assert "64 + 6 x 32" not in message and "+" not in message.split("expected")[-1], message  # no formula


# -- q3: transition ----------------------------------------------------------------
class Transition(nn.Module):
    def __init__(self, c_in, c_out, pool=nn.AvgPool2d):
        super().__init__()
        self.norm = nn.BatchNorm2d(c_in)
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.pool = pool(2, stride=2)

    def forward(self, x):
        return self.pool(self.conv(F.relu(self.norm(x))))


def test_q3_correct_including_the_package():
    assert ex.q3.evaluate(Transition).outcome is Outcome.CORRECT
    assert ex.q3.evaluate(densenet.Transition).outcome is Outcome.CORRECT


def test_q3_planted_mistakes():
    maxpool = type("MaxT", (Transition,), {"__init__": lambda s, a, b: Transition.__init__(s, a, b, nn.MaxPool2d)})
    assert_incorrect(ex.q3.evaluate(maxpool), "max pooling", "average pooling")

    class NoPool(Transition):
        def forward(self, x):
            return self.conv(F.relu(self.norm(x)))
    assert_incorrect(ex.q3.evaluate(NoPool), "expected (2, 6, 4, 4)", "2x2 average pool")

    class NoReluBeforeConv(Transition):
        def forward(self, x):
            return self.pool(F.relu(self.conv(self.norm(x))))
    assert_incorrect(ex.q3.evaluate(NoReluBeforeConv), "differs from avg_pool2d(conv(relu(norm(x))), 2)")

    class NoNorm(nn.Module):
        def __init__(self, a, b):
            super().__init__()
            self.conv = nn.Conv2d(a, b, 1)

        def forward(self, x):
            return F.avg_pool2d(self.conv(x), 2)
    assert_incorrect(ex.q3.evaluate(NoNorm), "one BatchNorm2d and one Conv2d", "0 and 1")


# -- q4: channels of DenseNet-121 ----------------------------------------------------
def test_q4_correct_matches_the_package():
    answer = [c for _, c in densenet.channels_through((6, 12, 24, 16), 32, 64)]
    assert ex.q4.evaluate(answer).outcome is Outcome.CORRECT


def test_q4_planted_mistakes():
    assert_incorrect(ex.q4.evaluate([256, 256, 640, 640, 1408, 1408, 1920]),
                     "After transition1 you have 256 channels", "compresses")
    assert_incorrect(ex.q4.evaluate([192, 96, 480, 240, 1008, 504, 1016]),
                     "After denseblock1 you have 192 channels", "passes on its input")
    assert_incorrect(ex.q4.evaluate([256, 128.0, 512, 256, 1024, 512, 1024]), "transition1", "should be an int")
    assert_incorrect(ex.q4.evaluate([256, 128, 512, 256, 1000, 500, 1012]), "denseblock3", "too few")


@pytest.mark.parametrize("answer", [[256, 256, 640, 640, 1408, 1408, 1920], [192, 96, 480, 240, 1008, 504, 1016],
                                    [256, 128, 500, 250, 1018, 509, 1021], [256, 128, 512, 256, 1024, 512, 1000]])
def test_q4_messages_do_not_print_the_expected_channels(answer):
    message = ex.q4.evaluate(answer).message
    wrong = next(i for i, (a, b) in enumerate(zip(answer, ex.DENSENET121)) if a != b)
    assert str(ex.DENSENET121[wrong]) not in message, message
    assert_incorrect(ex.q4.evaluate([256, 128, 512]), "should have 7 entries", "yours has 3")
    assert_incorrect(ex.q4.evaluate(1024), "should be a list of 7 ints")


# -- q5: torchvision's weights ---------------------------------------------------------
def from_torchvision(tv_model):
    model = densenet.densenet121(num_classes=tv_model.classifier.out_features)
    model.load_state_dict(tv_model.state_dict(), strict=True)
    return model


def test_q5_correct():
    assert ex.q5.evaluate(from_torchvision).outcome is Outcome.CORRECT


def test_q5_planted_mistakes():
    assert_incorrect(ex.q5.evaluate(lambda tv: tv), "torchvision's model itself", "densenet.densenet121(")
    assert_incorrect(ex.q5.evaluate(lambda tv: densenet.densenet121(num_classes=7)), "outputs differ")
    assert_incorrect(ex.q5.evaluate(lambda tv: densenet.densenet121()), "classifier.weight (1000, 1024) vs (7, 1024)")
    assert_incorrect(ex.q5.evaluate(lambda tv: torchvision.models.densenet121(weights=None)),
                     "is a torchvision model", "not the course's DenseNet")
    assert_incorrect(ex.q5.evaluate(lambda tv: densenet.densenet169(num_classes=7)), "unexpected keys")


def wrong_direction(tv_model):
    model = densenet.densenet121(num_classes=tv_model.classifier.out_features)
    tv_model.load_state_dict(model.state_dict())  # torchvision's model overwritten by the course's
    return model


def test_q5_copy_in_the_wrong_direction():
    assert_incorrect(ex.q5.evaluate(wrong_direction),
                     "you copied in the wrong direction: torchvision's weights were overwritten")


def test_q5_a_changed_reference_is_named_and_cannot_poison_a_later_check():
    assert_incorrect(ex.q5.evaluate(lambda tv: from_torchvision(tv.double())), "changed torchvision's model",
                     "torch.float64")

    def breaks_then_raises(tv_model):
        tv_model.half()
        with torch.no_grad():
            tv_model.classifier.weight.zero_()
        raise RuntimeError("oops")

    assert_incorrect(ex.q5.evaluate(breaks_then_raises), "RuntimeError: oops")
    assert ex.q5.evaluate(from_torchvision).outcome is Outcome.CORRECT
