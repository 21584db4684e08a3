"""The course's MobileNets: what is particular to the family (torchvision equality: test_models_registry.py).

Every cost below is measured with the course's own counter (``icdl.summary``), on the meta
device where only shapes matter, and compared with a formula derived in the test or with a
number printed in a paper (table cited).
"""

import pytest
import torch
from icdl.summary import count_flops, count_params, layer_table
from icdl.models import mobilenet, registry
from icdl.models.layers import make_divisible
from torch import nn

FACTORIES = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small")


def macs(model: nn.Module, size: int = 224) -> int:
    return count_flops(model, (1, 3, size, size)) // 2


def on_meta(factory, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return factory(**kwargs)


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so that eval-mode outputs are not just BN(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.5)
    return model


# --------------------------------------------------------------------------
# v1: the depthwise separable saving, 1/N + 1/k²
# --------------------------------------------------------------------------
@pytest.mark.parametrize("m_in, n_out, k, stride, h, w", [
    (32, 64, 3, 1, 16, 16),
    (64, 128, 3, 2, 17, 17),  # stride 2 on an odd size: both convolutions still give the same F x F
    (16, 256, 5, 1, 9, 12),  # a 5x5 kernel and a non-square map
    (8, 8, 3, 1, 7, 7),
    (512, 512, 3, 1, 4, 4),  # a v1 middle layer: saving 1/512 + 1/9, about 8.8x
])
def test_separable_cost_is_measured_by_the_flop_counter(m_in, n_out, k, stride, h, w):
    standard = nn.Conv2d(m_in, n_out, k, stride, padding=k // 2, bias=False)
    separable = mobilenet.depthwise_separable(m_in, n_out, stride, kernel_size=k)
    x = torch.randn(1, m_in, h, w)
    assert separable(x).shape == standard(x).shape  # the same F x F output, so F cancels
    measured = count_flops(separable, (1, m_in, h, w)) / count_flops(standard, (1, m_in, h, w))
    assert measured == pytest.approx(mobilenet.separable_cost(m_in, n_out, k), rel=1e-12)
    # The weights save by the same ratio: k²M + MN against k²MN.
    weights = sum(mm.weight.numel() for mm in separable.modules() if isinstance(mm, nn.Conv2d))
    assert weights / standard.weight.numel() == pytest.approx(mobilenet.separable_cost(m_in, n_out, k))


def test_separable_cost_control_a_full_3x3_in_place_of_the_depthwise_one_saves_nothing():
    # The counter sees groups: without them the "separable" block costs more than the standard conv.
    block = mobilenet.depthwise_separable(32, 64)
    block.depthwise[0] = nn.Conv2d(32, 32, 3, padding=1, bias=False)  # groups=1
    standard = nn.Conv2d(32, 64, 3, padding=1, bias=False)
    ratio = count_flops(block, (1, 32, 8, 8)) / count_flops(standard, (1, 32, 8, 8))
    assert ratio == pytest.approx(32 / 64 + 1 / 9)  # k²M·M + M·N over k²·M·N
    assert ratio > 4 * mobilenet.separable_cost(32, 64)


def test_depthwise_separable_layer_is_dw_bn_relu_then_pw_bn_relu():
    block = mobilenet.depthwise_separable(16, 24, stride=2)
    dw, pw = block.depthwise, block.pointwise
    assert dw[0].groups == 16 and dw[0].kernel_size == (3, 3) and dw[0].stride == (2, 2)
    assert pw[0].groups == 1 and pw[0].kernel_size == (1, 1) and pw[0].stride == (1, 1)
    assert [type(m) for m in dw] == [type(m) for m in pw] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]


def test_v1_resource_per_layer_type_is_the_papers_table_2():
    model = on_meta(mobilenet.mobilenet_v1)
    table = layer_table(model, (1, 3, 224, 224), depth=10)

    def kind(module):
        if isinstance(module, nn.Linear):
            return "fc"
        if isinstance(module, nn.Conv2d):
            return "dw" if module.groups > 1 else f"{module.kernel_size[0]}x{module.kernel_size[1]}"
        return None

    flops, weights = {}, {}
    for row in table.rows:
        module = model.get_submodule(row.name)
        if kind(module):
            flops[kind(module)] = flops.get(kind(module), 0) + row.flops
            weights[kind(module)] = weights.get(kind(module), 0) + module.weight.numel()
    assert sum(flops.values()) == table.total_flops  # convolutions and the FC are all the counter counts
    share = {k: 100 * v / table.total_flops for k, v in flops.items()}
    # Howard et al. (2017), Table 2 "Resource Per Layer Type", Mult-Adds column.
    assert share["1x1"] == pytest.approx(94.86, abs=0.005)
    assert share["dw"] == pytest.approx(3.06, abs=0.005)
    assert share["fc"] == pytest.approx(0.18, abs=0.005)
    # The stem (a full 3x3 conv, 3 -> 32 channels, 112x112 outputs): 9 * 3 * 32 * 112² multiply-adds
    # = 1.91%. The paper prints 1.19%, with which its column sums to 99.29%: the digits look swapped.
    assert share["3x3"] == pytest.approx(100 * 2 * 9 * 3 * 32 * 112 ** 2 / table.total_flops)
    assert share["3x3"] == pytest.approx(1.91, abs=0.005)
    # Parameters column: counted as the paper does, weights only (no biases, no BN).
    total = sum(weights.values())
    for k, paper in {"1x1": 74.59, "dw": 1.06, "3x3": 0.02, "fc": 24.33}.items():
        assert 100 * weights[k] / total == pytest.approx(paper, abs=0.005), k


# --------------------------------------------------------------------------
# The width multiplier alpha and the resolution multiplier rho
# --------------------------------------------------------------------------
@pytest.mark.parametrize("alpha, paper_macs, paper_params", [
    (1.0, 569, 4.2), (0.75, 325, 2.6), (0.5, 149, 1.3), (0.25, 41, 0.5)])
def test_v1_width_multiplier_reproduces_the_papers_table_6(alpha, paper_macs, paper_params):
    model = on_meta(mobilenet.mobilenet_v1, width_mult=alpha)
    assert round(macs(model) / 1e6) == paper_macs  # "Million Mult-Adds"
    assert round(count_params(model) / 1e6, 1) == paper_params


@pytest.mark.parametrize("alpha", [0.75, 0.5, 0.25])
def test_v1_width_multiplier_scales_cost_by_roughly_alpha_squared(alpha):
    """1x1 convolutions scale by alpha² (both widths shrink); the depthwise ones, the stem (3 input
    channels) and the FC (1000 outputs) only by alpha. At alpha = 0.5 the measured ratios are 0.263
    for multiply-adds (the 1x1 layers are 95% of them) and 0.315 for parameters (the FC is 24%)."""
    full, thin = on_meta(mobilenet.mobilenet_v1), on_meta(mobilenet.mobilenet_v1, width_mult=alpha)
    rows = layer_table(full, (1, 3, 224, 224), depth=10).rows
    pointwise = sum(r.flops for r in rows if isinstance(m := full.get_submodule(r.name), nn.Conv2d)
                    and m.kernel_size == (1, 1)) // 2
    rest = macs(full) - pointwise
    # The paper's widths are multiples of 8 at these alphas, so make_divisible rounds nothing.
    assert macs(thin) == round(alpha ** 2 * pointwise + alpha * rest)
    ratio = macs(thin) / macs(full)
    # "Roughly alpha²" (the paper's Section 3.3): the excess over alpha² is (1 - p)(1 / alpha - 1) with
    # p = 94.9% the 1x1 layers' share, 5% at alpha = 0.75 and 15% at alpha = 0.25.
    assert 1 < ratio / alpha ** 2 < 1.2
    params_ratio = count_params(thin) / count_params(full)
    assert alpha ** 2 < params_ratio < alpha
    if alpha == 0.5:
        assert round(ratio, 3) == 0.263 and round(params_ratio, 3) == 0.315


def test_v2_width_multiplier_measured():
    """v2 keeps its last 1x1 convolution at 1280 channels below alpha = 1, and so its 1280 x 1000
    classifier: at alpha = 0.5 the cost falls to 0.323 (multiply-adds) and 0.562 (parameters),
    well short of alpha² = 0.25. Above 1 the 1280 grows too: alpha = 1.4 costs 1.94x and 1.74x."""
    full = on_meta(mobilenet.mobilenet_v2)
    half = on_meta(mobilenet.mobilenet_v2, width_mult=0.5)
    wide = on_meta(mobilenet.mobilenet_v2, width_mult=1.4)
    assert half.num_features == full.num_features == 1280 and wide.num_features == make_divisible(1280 * 1.4, 8)
    assert round(macs(half) / macs(full), 3) == 0.323
    assert round(count_params(half) / count_params(full), 3) == 0.562
    assert 1.4 < macs(wide) / macs(full) < 1.4 ** 2 and round(macs(wide) / macs(full), 2) == 1.94
    assert round(count_params(wide) / count_params(full), 2) == 1.74
    # The control: the same width multiplier applied to the last layer too would shrink it.
    assert make_divisible(1280 * 0.5, 8) == 640


@pytest.mark.parametrize("factory", ["mobilenet_v1", "mobilenet_v2"])
@pytest.mark.parametrize("size", [192, 160, 128])
def test_resolution_multiplier_scales_the_convolutions_by_rho_squared(factory, size):
    """Every convolution's cost is proportional to its output area, which shrinks by rho² (each map
    stays a whole number of pixels at these sizes: 160 -> 80 -> ... -> 5); the classifier reads
    a pooled vector and costs the same. Parameters do not change."""
    model = on_meta(getattr(mobilenet, factory))
    rows = layer_table(model, (1, 3, 224, 224), depth=10).rows
    fc = sum(r.flops for r in rows if isinstance(model.get_submodule(r.name), nn.Linear)) // 2
    rho = size / 224
    assert macs(model, size) == pytest.approx(rho ** 2 * (macs(model) - fc) + fc, rel=1e-12)
    assert macs(model, size) / macs(model) == pytest.approx(rho ** 2, rel=0.01)


@pytest.mark.parametrize("size, paper", [(224, 569), (192, 418), (160, 290), (128, 186)])
def test_v1_resolution_reproduces_the_papers_table_7(size, paper):
    # 290.68 M at 160: the paper's 290 is the one entry that is truncated rather than rounded.
    assert abs(macs(on_meta(mobilenet.mobilenet_v1), size) / 1e6 - paper) < 0.7


# --------------------------------------------------------------------------
# v2: linear bottlenecks and where the shortcuts are
# --------------------------------------------------------------------------
def v2_blocks(model):
    return [m for m in model.features if isinstance(m, mobilenet.InvertedResidual)]


def test_v2_projection_has_no_activation_and_the_relu_control_differs():
    torch.manual_seed(0)
    linear = randomize_bn(mobilenet.mobilenet_v2(num_classes=10)).eval()
    blocks = v2_blocks(linear)
    assert len(blocks) == sum(n for _, _, n, _ in mobilenet.V2_CONFIG) == 17
    for block in blocks:
        last_conv = max(i for i, m in enumerate(block.conv) if isinstance(m, (nn.Conv2d, nn.Sequential)))
        tail = list(block.conv)[last_conv:]
        assert [type(m) for m in tail] == [nn.Conv2d, nn.BatchNorm2d], tail  # project, BN, nothing else
        assert tail[0].kernel_size == (1, 1) and tail[0].groups == 1
    # A linear projection goes negative; a ReLU6 there could not.
    x = torch.randn(2, 3, 64, 64)
    block_in = linear.features[:3](x)
    with torch.no_grad():
        assert linear.features[3].conv(block_in).min() < 0

    # The control: the same weights with a ReLU6 after every projection (the paper's Figure 6a ablation).
    relu = mobilenet.mobilenet_v2(num_classes=10, linear_bottleneck=False).eval()
    relu.load_state_dict(linear.state_dict(), strict=True)  # no parameter changed
    assert all(isinstance(b.conv[-1], nn.ReLU6) for b in v2_blocks(relu))
    with torch.no_grad():
        assert relu.features[3].conv(block_in).min() >= 0
        assert (relu(x) - linear(x)).abs().max() > 1e-3


def test_v2_residual_only_where_stride_1_and_widths_match():
    model = mobilenet.mobilenet_v2()
    expected, channels = [], mobilenet.V2_STEM
    for _, c, n, s in mobilenet.V2_CONFIG:  # derived from the paper's table, block by block
        for i in range(n):
            expected.append((s if i == 0 else 1) == 1 and channels == c)
            channels = c
    assert [b.use_residual for b in v2_blocks(model)] == expected
    assert sum(expected) == 10  # of 17 blocks: every repeat of a row, never a row's first block


def test_a_shortcut_adds_the_input_and_only_there():
    torch.manual_seed(0)
    same = randomize_bn(mobilenet.InvertedResidual(16, 16, 1, 6)).eval()
    wider = randomize_bn(mobilenet.InvertedResidual(16, 24, 1, 6)).eval()
    strided = randomize_bn(mobilenet.InvertedResidual(16, 16, 2, 6)).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(same(x), x + same.conv(x))
        assert torch.equal(wider(x), wider.conv(x)) and torch.equal(strided(x), strided.conv(x))
        same.use_residual = False  # the control: without the shortcut the output moves by x
        torch.testing.assert_close(same(x), same.conv(x))
    assert not wider.use_residual and not strided.use_residual


# --------------------------------------------------------------------------
# v3: the tables as built
# --------------------------------------------------------------------------
@pytest.mark.parametrize("factory, table", [("mobilenet_v3_large", mobilenet.V3_LARGE),
                                            ("mobilenet_v3_small", mobilenet.V3_SMALL)])
def test_v3_blocks_follow_the_table(factory, table):
    model = getattr(mobilenet, factory)()
    blocks = [m for m in model.features if isinstance(m, mobilenet.InvertedResidualV3)]
    assert len(blocks) == len(table)
    channels = mobilenet.V3_STEM
    for block, row in zip(blocks, table):
        depthwise = next(m for m in block.block if isinstance(m, nn.Sequential) and m[0].groups > 1)
        assert depthwise[0].kernel_size == (row.kernel, row.kernel) and depthwise[0].stride == (row.stride,) * 2
        assert depthwise[0].out_channels == row.expanded and block.out_channels == row.out
        assert isinstance(depthwise[2], nn.Hardswish if row.activation == "HS" else nn.ReLU)
        se = [m for m in block.block if isinstance(m, mobilenet.SqueezeExcitation)]
        assert len(se) == row.se
        if row.se:  # torchvision's squeeze width and the hard sigmoid gate
            assert se[0].fc1.out_channels == make_divisible(row.expanded // 4, 8)
            assert isinstance(se[0].scale_activation, nn.Hardsigmoid)
        assert block.block[-1][0].kernel_size == (1, 1) and len(block.block[-1]) == 2  # linear projection
        assert block.use_residual == (row.stride == 1 and channels == row.out)
        channels = row.out
    assert model.num_features == 6 * table[-1].out  # 960 or 576
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.eps == 0.001 and m.momentum == 0.01 for m in bns)
    kinds = [type(m) for m in model.classifier]
    assert kinds == [nn.Linear, nn.Hardswish, nn.Dropout, nn.Linear]
    assert model.head is model.classifier[3]


def test_v3_squeeze_excitation_changes_the_output():
    # The SE gate is not the identity: with it replaced, the block computes something else.
    torch.manual_seed(0)
    block = randomize_bn(mobilenet.InvertedResidualV3(24, 5, 72, 40, True, "RE", 1)).eval()
    x = torch.randn(2, 24, 8, 8)
    with torch.no_grad():
        with_se = block(x)
        block.block[2] = nn.Identity()
        assert (block(x) - with_se).abs().max() > 1e-3


# --------------------------------------------------------------------------
# The common interface, the facts, and the named configurations
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", FACTORIES)
def test_forward_features_and_reset_classifier(name):
    torch.manual_seed(0)
    model = registry.get_model(name, num_classes=7).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
        features = model.forward_features(x)
        assert features.shape == (2, model.num_features, 2, 2)  # 64 / 32
        torch.testing.assert_close(model.forward_head(features), logits)
    hidden = model.head.in_features
    body = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(model.head_path)}
    model.reset_classifier(3)
    assert isinstance(model.head, nn.Linear) and model.head.in_features == hidden
    assert all(torch.equal(model.state_dict()[k], v) for k, v in body.items())  # only the head is new
    with torch.no_grad():
        assert model(x).shape == (2, 3)
        model.reset_classifier(0)
        pooled = model(x)
    assert pooled.shape == (2, hidden)  # what the last Linear read: 1024, 1280, 1280, 1024
    assert model.head_path == {"mobilenet_v1": "fc", "mobilenet_v2": "classifier.1"}.get(name, "classifier.3")


def test_recorded_paper_facts_are_the_papers():
    v1, v2 = registry.model_facts("mobilenet_v1"), registry.model_facts("mobilenet_v2")
    assert v1.torchvision is None and v1.paper_top1 == 70.6
    assert round(v1.params / 1e6, 1) == 4.2 and round(v1.macs / 1e6) == 569  # Table 8
    assert round(v2.params / 1e6, 1) == 3.5 and round(v2.macs / 1e6) == 301  # the paper: 3.4 M, 300 M
    assert registry.model_facts("mobilenet_v3_large").paper_top1 == 75.2
    assert registry.model_facts("mobilenet_v3_small").paper_top1 == 67.4


def test_named_configurations_refuse_contradicting_keywords():
    with pytest.raises(TypeError, match="mobilenet_v2"):
        mobilenet.mobilenet_v2(config=mobilenet.V2_CONFIG[:3])
    with pytest.raises(TypeError, match="last_channel"):
        mobilenet.mobilenet_v3_small(last_channel=1280)
    with pytest.raises(TypeError, match="blocks"):
        mobilenet.mobilenet_v3_large(blocks=mobilenet.V3_SMALL)
    with pytest.raises(TypeError, match="config"):
        mobilenet.mobilenet_v1(config=((64, 1),))
    # What the family itself varies is allowed, and so is restating the fixed value.
    assert on_meta(mobilenet.mobilenet_v3_large, width_mult=0.75, blocks=mobilenet.V3_LARGE).num_features == 720
    assert on_meta(mobilenet.mobilenet_v2, width_mult=0.5, num_classes=10).head.out_features == 10
