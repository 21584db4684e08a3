"""The course's VGG equals torchvision's: same state_dict keys, strict loading, same outputs."""

import pytest
import torch
import torchvision
from icdl.models import vgg


@pytest.mark.parametrize("name", ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg16_bn", "vgg19_bn"])
def test_state_dict_keys_and_shapes_match_torchvision(name):
    with torch.device("meta"):  # shapes only, no memory or initialisation: fast
        ours = getattr(vgg, name)().state_dict()
        theirs = getattr(torchvision.models, name)(weights=None).state_dict()
    assert ours.keys() == theirs.keys()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize("name", ["vgg16", "vgg16_bn"])
def test_loads_torchvision_weights_and_gives_same_outputs(name):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)(weights=None)
    if name.endswith("_bn"):  # non-trivial running statistics, so eval-mode BN really is tested
        for m in theirs.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    theirs.eval()
    ours = getattr(vgg, name)().eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert got.shape == (2, 1000)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    with torch.no_grad():  # the comparison can fail: freshly initialised weights differ
        assert not torch.allclose(getattr(vgg, name)().eval()(x), expected, atol=1e-5)


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
