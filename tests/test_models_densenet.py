"""The course's DenseNet: what is particular to the family (its equality with torchvision's is tests/test_models_registry.py)."""

import pytest
import torch
import torchvision
from icdl.checks.core import randomize_bn_stats
from icdl.models import densenet as d


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    ref = torchvision.models.densenet121(weights=None, num_classes=10)
    randomize_bn_stats(ref)
    return ref.eval()


def test_block_concatenates_and_keeps_input_first():
    block = d.DenseBlock(num_layers=3, in_channels=8, growth_rate=4).eval()
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        out = block(x)
    assert out.shape == (2, 8 + 3 * 4, 5, 5)
    torch.testing.assert_close(out[:, :8], x)  # the input passes through unchanged


def test_channels_through_matches_the_built_model():
    rows = dict(d.channels_through((6, 12, 24, 16), 32, 64))
    assert rows["denseblock1"] == 256 and rows["transition1"] == 128 and rows["denseblock4"] == 1024
    model = d.densenet121()
    assert model.features.transition3.conv.out_channels == rows["transition3"]
    assert model.classifier.in_features == rows["denseblock4"]


def test_cifar_stem_output_shape_and_resolution():
    model = d.densenet121(num_classes=10, cifar_stem=True).eval()
    seen = {}
    model.features.denseblock1.register_forward_hook(lambda m, i, o: seen.update(b1=tuple(o.shape)))
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert seen["b1"] == (2, 256, 32, 32)


def test_densenet_bc_cifar_matches_papers_size():
    model = d.densenet_bc_cifar(100, 12)
    n_params = sum(p.numel() for p in model.parameters())
    assert 0.75e6 < n_params < 0.85e6  # the paper's Table 2 lists 0.8M for DenseNet-BC (L=100, k=12)
    assert len(list(model.features.denseblock1.children())) == 16


def test_configs_follow_the_papers_table_1():
    # Table 1 of Huang et al. (2017): k = 32, a 64-channel stem, and these layers per block.
    table_1 = {"densenet121": (6, 12, 24, 16), "densenet169": (6, 12, 32, 32),
               "densenet201": (6, 12, 48, 32), "densenet264": (6, 12, 64, 48)}
    for name, blocks in table_1.items():
        cfg = d.DENSENET_CFGS[name]
        assert (cfg["block_config"], cfg["growth_rate"], cfg["num_init_features"]) == (blocks, 32, 64), name
        # The name counts layers with weights: two convolutions per dense layer, the stem
        # convolution, three transitions and the classifier. The paper's "264" is one short:
        # its blocks give 265 such layers.
        expected_depth = 265 if name == "densenet264" else int(name.removeprefix("densenet"))
        assert 2 * sum(blocks) + 5 == expected_depth, name


def test_densenet264_ends_like_the_paper():
    rows = dict(d.channels_through(**d.DENSENET_CFGS["densenet264"]))
    model = d.densenet264(num_classes=10)
    assert model.classifier.in_features == rows["denseblock4"] == 2688


def test_named_configurations_refuse_contradicting_keywords():
    with pytest.raises(TypeError, match=r"densenet121\(\) is defined by growth_rate=32"):
        d.densenet121(growth_rate=12, block_config=(1, 1, 1, 1))
    assert d.densenet121(num_classes=10, growth_rate=32).classifier.out_features == 10  # the same value is fine
    small = d.DenseNet(growth_rate=12, block_config=(1, 1, 1, 1))  # other settings: the general constructor
    assert sum(p.numel() for p in small.parameters()) < 100_000
