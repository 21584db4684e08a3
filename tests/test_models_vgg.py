"""The course's VGG: what is particular to the family (its equality with torchvision's is tests/test_models_registry.py)."""

import pytest
import torch
import torchvision
from icdl.models import vgg


@pytest.mark.parametrize("config, params", [("A", 132_863_336), ("B", 133_047_848), ("D", 138_357_544),
                                            ("E", 143_667_240)])
def test_parameter_counts_match_torchvision_and_the_paper(config, params):
    # The paper's Table 2 rounds these to 133, 133, 138 and 144 million.
    tv = {"A": "vgg11", "B": "vgg13", "D": "vgg16", "E": "vgg19"}[config]
    with torch.device("meta"):
        n = sum(p.numel() for p in vgg.vgg(config).parameters())
        assert n == sum(p.numel() for p in getattr(torchvision.models, tv)(weights=None).parameters()) == params


def test_make_layers_counts_and_keeps_size_between_pools():
    feats = vgg.make_layers([8, 8, "M", 16], batch_norm=True, in_channels=3)
    kinds = [type(m).__name__ for m in feats]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
                     "Conv2d", "BatchNorm2d", "ReLU"]
    assert feats(torch.randn(1, 3, 12, 12)).shape == (1, 16, 6, 6)


def test_cifar_stem_output_shape():
    model = vgg.vgg("A", batch_norm=True, num_classes=10, width=0.25, hidden=64, cifar_stem=True).eval()
    assert model.classifier[0].in_features == 128
    with torch.no_grad():
        assert model.features(torch.randn(4, 3, 32, 32)).shape == (4, 128, 1, 1)
        assert model(torch.randn(4, 3, 32, 32)).shape == (4, 10)
