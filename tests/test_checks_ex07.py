"""Tests of the checks of exercise 07 (DenseNet): right answers pass, planted mistakes fail with the
message that names the mistake, untouched stubs say "not attempted"."""

import re

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
def test_q2_correct_and_the_formula_is_a_real_blocks():
    assert ex.q2.evaluate(lambda c, n, k: c + n * k).outcome is Outcome.CORRECT
    block = densenet.DenseBlock(num_layers=3, in_channels=7, growth_rate=5).eval()
    with torch.no_grad():
        assert block(torch.randn(1, 7, 4, 4)).shape[1] == ex.q2.reference(7, 3, 5)


@pytest.mark.parametrize("fn, fragments", [
    (lambda c, n, k: n * k, ["block_channels(64, 6, 32) returned 192", "left out the block's input"]),
    (lambda c, n, k: c + (n - 1) * k, ["off by one layer"]),
    (lambda c, n, k: c * n, ["not multiplied"]),
    (lambda c, n, k: c + k, ["every layer adds k"]),
    (lambda c, n, k: float(c + n * k), ["should be an int", "//"]),
])
def test_q2_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q2.evaluate(fn), *fragments)


def test_q2_messages_give_no_formula():
    message = ex.q2.evaluate(lambda c, n, k: c + n * k + 1).message
    assert "expected 256" in message and "64 + 6 x 32" not in message and "+" not in message, message


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


# -- q4: channels through any DenseNet ----------------------------------------------------
def densenet_channels(block_config, growth_rate, num_init_features, compression=0.5):
    channels, out = num_init_features, []
    for i, layers in enumerate(block_config):
        channels += layers * growth_rate
        out.append(channels)
        if i < len(block_config) - 1:
            channels = int(channels * compression)
            out.append(channels)
    return out


def test_q4_correct_and_agrees_with_built_models():
    assert ex.q4.evaluate(densenet_channels).outcome is Outcome.CORRECT
    for config, compression in [(dict(growth_rate=5, block_config=(3, 3, 3), num_init_features=8), 0.5),
                                (dict(growth_rate=4, block_config=(2, 3), num_init_features=6), 1.0)]:
        model = densenet.DenseNet(**config, compression=compression)
        built = [m.out_channels for m in model.features if isinstance(m, densenet.DenseBlock)]
        built = [c for pair in zip(built, [t.conv.out_channels for t in model.features
                                           if isinstance(t, densenet.Transition)] + [None]) for c in pair][:-1]
        assert built == densenet_channels(config["block_config"], config["growth_rate"],
                                          config["num_init_features"], compression)
    assert densenet_channels((6, 12, 24, 16), 32, 64) == [256, 128, 512, 256, 1024, 512, 1024]


def no_compression(b, k, s, compression=0.5):
    return densenet_channels(b, k, s, 1.0)


def transition_after_the_last(b, k, s, compression=0.5):
    out = densenet_channels(b, k, s, compression)
    return out + [int(out[-1] * compression)]


def without_the_input(b, k, s, compression=0.5):
    out, c = [], 0
    for i, layers in enumerate(b):
        c = layers * k  # the block's input forgotten
        out.append(c)
        if i < len(b) - 1:
            out.append(int(c * compression))
    return out


def rounded(b, k, s, compression=0.5):
    channels, out = s, []
    for i, layers in enumerate(b):
        channels += layers * k
        out.append(channels)
        if i < len(b) - 1:
            channels = round(channels * compression)
            out.append(channels)
    return out


def always_halved(b, k, s, compression=0.5):
    return densenet_channels(b, k, s, 0.5)


def blocks_only(b, k, s, compression=0.5):
    return densenet_channels(b, k, s, compression)[::2]


@pytest.mark.parametrize("fn, fragments", [
    (no_compression, ["densenet_channels((6, 12, 24, 16), 32, 64) returned", "left out the compression"]),
    (transition_after_the_last, ["after the last block too"]),
    (without_the_input, ["left out each block's input"]),
    (rounded, ["densenet_channels((3, 3, 3), 5, 8)", "floor(compression x m)", "int(m * compression)"]),
    (always_halved, ["compression=1.0", "whatever `compression` is"]),
    (blocks_only, ["listed the blocks only"]),
    (lambda b, k, s, compression=0.5: [c * 1.0 for c in densenet_channels(b, k, s, compression)],
     ["should be an int"]),
    (lambda b, k, s, compression=0.5: 1024, ["should return a list of ints", "int 1024"]),
    (lambda b, k, s, compression=0.5: densenet_channels(b, k, s, compression)[:-1] + [1],
     ["returned", "expected"]),
])
def test_q4_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q4.evaluate(fn), *fragments)


# -- q5: an old checkpoint's key names -----------------------------------------------------
PATTERN = re.compile(r"(denselayer\d+\.(?:norm|conv))\.([12])\.")


def rename_old_keys(state_dict):
    return {PATTERN.sub(r"\1\2.", k): v for k, v in state_dict.items()}


def like_torchvision(state_dict):  # torchvision's own loop: in place, and here the dict is returned
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
    for key in list(state_dict.keys()):
        found = pattern.match(key)
        if found:
            state_dict[found.group(1) + found.group(2)] = state_dict.pop(key)
    return state_dict


def test_q5_correct_answers_and_the_old_names_really_fail_strict_loading():
    assert ex.q5.evaluate(rename_old_keys).outcome is Outcome.CORRECT
    assert ex.q5.evaluate(like_torchvision).outcome is Outcome.CORRECT
    old = ex.old_checkpoint(torchvision.models.DenseNet(**ex.SMALL))
    assert "features.denseblock2.denselayer11.norm.2.running_var" in old and "features.norm0.weight" in old
    with pytest.raises(RuntimeError, match="Missing key"):
        densenet.DenseNet(**ex.SMALL).load_state_dict(old, strict=True)


def sorted_pairs(state_dict):  # keys renamed, but paired with the tensors in another order
    return dict(zip(sorted(PATTERN.sub(r"\1\2.", k) for k in state_dict), state_dict.values()))


@pytest.mark.parametrize("fn, fragments", [
    (lambda sd: {k.replace("norm.1", "norm1"): v for k, v in sd.items()},
     ["still have their old names", "conv.1, conv.2, norm.2", "denselayer1.conv.1.weight"]),
    (lambda sd: {k.replace("norm.", "norm").replace("conv.", "conv"): v for k, v in sd.items()},
     ["renamed keys that must not change", "features.transition1.conv.weight", "transition1.convweight"]),
    (lambda sd: {re.sub(r"(norm|conv)(\d)\.", r"\1.\2.", k): v for k, v in sd.items()},  # the other way round
     ["renamed keys that must not change", "features.conv0.weight", "features.norm0.bias", "features.conv.0.weight"]),
    (lambda sd: {PATTERN.sub(r"\1\2.", k): v for k, v in sd.items() if PATTERN.search(k)},
     ["you dropped", "classifier.bias", "renamed or as it was"]),
    (lambda sd: {re.sub(r"(denselayer\d\.(?:norm|conv))\.([12])\.", r"\1\2.", k): v for k, v in sd.items()},
     ["denselayer10 and later keep their old names", "two digits"]),
    (sorted_pairs, ["is not the one the old dict had under", "keep each tensor with its own key"]),
    (lambda sd: {k: v.half() for k, v in rename_old_keys(sd).items()}, ["torch.float16", "rename the keys only"]),
    (lambda sd: {k: v.numpy() for k, v in rename_old_keys(sd).items()}, ["ndarray", "rename the keys only"]),
    (lambda sd: [rename_old_keys(sd)], ["should return a dict", "list"]),
    (lambda sd: like_torchvision(sd) and None, ["returned None", "return"]),
])
def test_q5_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q5.evaluate(fn), *fragments)


def test_q5_changing_the_old_dict_in_place_cannot_fool_the_check():
    def scales_then_renames(state_dict):
        for v in state_dict.values():
            v.mul_(2)  # changes the tensors it was given
        return rename_old_keys(state_dict)

    assert_incorrect(ex.q5.evaluate(scales_then_renames), "is not the one the old dict had")
