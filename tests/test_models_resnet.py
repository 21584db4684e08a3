"""The course's ResNet: what is particular to the family (its equality with torchvision's is tests/test_models_registry.py)."""

import pytest
import torch
import torchvision
from icdl.models import resnet
from torch import nn


def _pair(name, seed=0):
    """(ours, torchvision's) with torchvision's random weights copied into ours (strict)."""
    torch.manual_seed(seed)
    theirs = getattr(torchvision.models, name)(weights=None).eval()
    ours = getattr(resnet, name)()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours.eval(), theirs


def test_parameter_counts_match_torchvision_meta():
    counts = {n: sum(p.numel() for p in getattr(resnet, n)().parameters()) for n in ("resnet18", "resnet50")}
    assert counts["resnet18"] == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["num_params"]
    assert counts["resnet50"] == torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["num_params"]


def test_cifar_stem_keeps_resolution_and_shapes():
    model = resnet.resnet18(num_classes=10, cifar_stem=True).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (2, 10)
        assert model.forward_features(x).shape == (2, 512, 4, 4)  # ImageNet stem would give 1x1
    assert isinstance(model.maxpool, nn.Identity)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    # Same keys as torchvision: only the stem convolution's shape differs.
    theirs = torchvision.models.resnet18(weights=None, num_classes=10).state_dict()
    assert set(model.state_dict()) == set(theirs)


def test_cifar_resnet20_shape_and_depth():
    model = resnet.resnet20().eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == 20  # 6n + 2 weighted layers, shortcuts not counted
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError):
        resnet.cifar_resnet(21)


def test_plain_network_has_no_shortcuts_and_differs():
    torch.manual_seed(0)
    plain = resnet.resnet20(residual=False).eval()
    assert all(b.downsample is None and not b.residual for s in plain.stages() for b in s)
    res = resnet.resnet20(residual=True).eval()
    # Same residual branches, only the shortcuts differ (plain has no projection weights).
    missing = set(res.state_dict()) - set(plain.state_dict())
    assert missing and all(".downsample." in k for k in missing)
    res.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(plain(x), res(x))


def test_zero_init_residual_makes_blocks_identity():
    torch.manual_seed(0)
    model = resnet.resnet18(zero_init_residual=True).eval()
    block = model.layer1[1]  # identity shortcut
    assert torch.all(block.bn2.weight == 0)
    x = torch.relu(torch.randn(1, 64, 8, 8))
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)
    bottleneck = resnet.resnet50(zero_init_residual=True).layer1[0]
    assert torch.all(bottleneck.bn3.weight == 0)


def test_bottleneck_stride_placement_v1_vs_v15():
    v15 = resnet.Bottleneck(64, 32, stride=2, downsample=resnet.projection_shortcut(64, 128, 2))
    v1 = resnet.Bottleneck(64, 32, stride=2, downsample=resnet.projection_shortcut(64, 128, 2),
                           stride_in_3x3=False)
    assert (v15.conv1.stride, v15.conv2.stride) == ((1, 1), (2, 2))
    assert (v1.conv1.stride, v1.conv2.stride) == ((2, 2), (1, 1))
    x = torch.randn(1, 64, 16, 16)
    assert v15(x).shape == v1(x).shape == (1, 128, 8, 8)


def test_make_stage_projection_only_where_shape_changes():
    stage = resnet.make_stage(resnet.BasicBlock, 64, 128, 3, stride=2)
    assert isinstance(stage[0].downsample, nn.Sequential)
    assert stage[1].downsample is None and stage[2].downsample is None
    assert resnet.make_stage(resnet.BasicBlock, 64, 64, 2, stride=1)[0].downsample is None
    assert stage(torch.randn(1, 64, 16, 16)).shape == (1, 128, 8, 8)
