"""The shared blocks (icdl.models.layers), the common interface (base.Classifier) and the registry."""

import pytest
import torch
import torchvision.ops
from icdl.models import layers, registry
from icdl.models.base import Classifier
from torch import nn
from torchvision.models._utils import _make_divisible


def test_make_divisible_is_torchvisions_rule():
    for value in [1, 3.5, 7, 8, 11, 12, 15.9, 16, 24 * 0.35, 32 * 0.75, 100, 1280 * 1.4, 576 * 0.5]:
        for divisor in (4, 8):
            assert layers.make_divisible(value, divisor) == _make_divisible(value, divisor), (value, divisor)
    assert layers.make_divisible(20, 8) == 24  # 16 would lose more than 10%
    assert layers.make_divisible(3, 8) == 8  # never below the divisor


def test_conv_norm_activation_matches_torchvision_names_and_outputs():
    torch.manual_seed(0)
    ours = layers.ConvNormActivation(4, 8, 3, stride=2, groups=2, activation_layer=nn.Hardswish)
    theirs = torchvision.ops.Conv2dNormActivation(4, 8, 3, stride=2, groups=2, activation_layer=nn.Hardswish)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.eval(), theirs.eval()
    x = torch.randn(2, 4, 9, 9)
    assert torch.equal(ours(x), theirs(x)) and ours.out_channels == 8
    assert ours[0].bias is None and layers.ConvNormActivation(4, 8, norm_layer=None)[0].bias is not None
    assert len(layers.ConvNormActivation(4, 8, activation_layer=None)) == 2


def test_squeeze_excitation_matches_torchvision():
    torch.manual_seed(0)
    ours = layers.SqueezeExcitation(16, 4, scale_activation=nn.Hardsigmoid)
    theirs = torchvision.ops.SqueezeExcitation(16, 4, scale_activation=nn.Hardsigmoid)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 16, 5, 5)
    assert torch.allclose(ours(x), theirs(x))


def test_stochastic_depth_drops_whole_samples_and_keeps_the_mean():
    drop = layers.StochasticDepth(0.25)
    torch.manual_seed(0)
    x = torch.ones(20_000, 3, 2, 2)
    y = drop.train()(x)
    per_sample = y.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1)).all()  # all or nothing per sample
    assert abs((per_sample[:, 0] == 0).float().mean().item() - 0.25) < 0.015
    assert abs(y.mean().item() - 1.0) < 0.02
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        layers.StochasticDepth(1.5)


def test_layer_norm_2d_normalises_each_pixel_over_channels():
    norm = layers.LayerNorm2d(6)
    x = torch.randn(2, 6, 4, 4) * 3 + 1
    y = norm(x)
    assert torch.allclose(y.mean(1), torch.zeros(2, 4, 4), atol=1e-5)
    assert torch.allclose(y.var(1, unbiased=False), torch.ones(2, 4, 4), atol=1e-3)
    from torchvision.models.convnext import LayerNorm2d as TvLayerNorm2d
    theirs = TvLayerNorm2d(6)
    assert torch.allclose(y, theirs(x), atol=1e-6)


def test_init_helpers():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 500))
    with torch.no_grad():
        net[1].weight.fill_(3.0)
    layers.kaiming_init_(net)
    layers.linear_init_(net, std=0.01)
    assert torch.equal(net[1].weight, torch.ones(8)) and torch.equal(net[0].bias, torch.zeros(8))
    assert abs(net[3].weight.std().item() - 0.01) < 0.002
    layers.linear_init_(net, std=None)
    assert net[3].weight.abs().max().item() <= 1 / 500 ** 0.5
    layers.trunc_normal_init_(net)  # as torchvision's ConvNeXt: std 0.02 (truncated at +-2, far out)
    assert abs(net[3].weight.std().item() - 0.02) < 0.002 and torch.equal(net[3].bias, torch.zeros(500))


class Tiny(Classifier):
    head_path = "classifier.1"

    def __init__(self):
        super().__init__()
        self.body = nn.Conv2d(3, 5, 3)
        self.num_features = 5
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(5, 7))

    def forward_features(self, x):
        return self.body(x)

    def forward_head(self, features):
        return self.classifier(features.mean((2, 3)))


def test_classifier_interface():
    model = Tiny().eval()
    x = torch.randn(2, 3, 8, 8)
    assert model(x).shape == (2, 7) and model.forward_features(x).shape == (2, 5, 6, 6)
    old = model.classifier[1]
    model.reset_classifier(3)
    assert model(x).shape == (2, 3) and model.classifier[1] is not old and "classifier.1.weight" in model.state_dict()
    model.reset_classifier(0)
    assert model(x).shape == (2, 5)
    model.reset_classifier(4)  # after 0: a new head on the same features
    assert model(x).shape == (2, 4)
    with pytest.raises(ValueError, match="whole number"):
        model.reset_classifier(2.0)


def test_registry_lookup_and_messages():
    names = registry.list_models()
    assert names and len(names) == len(set(names))
    with pytest.raises(KeyError, match="did you mean"):
        registry.model_facts(names[0] + "x")
    with pytest.raises(ValueError, match="unknown family"):
        registry.list_models("transformerz")
    with pytest.raises(ValueError, match="needs its source"):
        registry.register_model(paper_top1=70.0)
    with pytest.raises(TypeError, match=r"densenet121\(\) is defined by growth_rate=32; growth_rate=12"):
        registry.reject_overrides("densenet121", {"growth_rate": 12, "num_classes": 10}, {"growth_rate": 32})
    registry.reject_overrides("densenet121", {"growth_rate": 32}, {"growth_rate": 32})  # the same value is fine
