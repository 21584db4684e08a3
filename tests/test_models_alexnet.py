"""The course's AlexNet: what is particular to the family (its equality with torchvision's is tests/test_models_registry.py)."""

import pytest
import torch
import torchvision
from icdl.models import alexnet


def seeded_pair():
    torch.manual_seed(0)
    theirs = torchvision.models.alexnet(weights=None).eval()
    ours = alexnet.alexnet().eval()
    return ours, theirs


def test_eval_mode_is_deterministic_and_train_mode_uses_dropout():
    ours, _ = seeded_pair()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ours(x))
        ours.train()
        assert not torch.allclose(ours(x), ours(x))


def test_paper_variant_does_not_load_torchvision_weights():
    paper = alexnet.alexnet_paper()
    with pytest.raises(RuntimeError, match="size mismatch"):
        paper.load_state_dict(torchvision.models.alexnet(weights=None).state_dict(), strict=True)
    # First layer: 96 filters of 11x11x3; conv2 split over two GPUs (groups=2): 48 input channels each.
    assert paper.features[0].weight.shape == (96, 3, 11, 11)
    conv2 = [m for m in paper.features if isinstance(m, torch.nn.Conv2d)][1]
    assert conv2.weight.shape == (256, 48, 5, 5)
    assert sum(isinstance(m, torch.nn.LocalResponseNorm) for m in paper.features) == 2


def test_paper_variant_shapes_at_224():
    paper = alexnet.alexnet_paper().eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert paper.features[0](x).shape == (1, 96, 55, 55)  # the paper's 55x55 maps
        assert paper(x).shape == (1, 1000)


def test_cifar_stem_output_shape():
    model = alexnet.alexnet(num_classes=10, cifar_stem=True, width=0.25, hidden=128).eval()
    assert model.features[0].kernel_size == (3, 3) and model.features[0].stride == (1, 1)
    with torch.no_grad():
        feats = model.features(torch.randn(3, 3, 32, 32))
        assert feats.shape == (3, 64, 3, 3)
        assert model(torch.randn(3, 3, 32, 32)).shape == (3, 10)


def test_he_init_keeps_the_signal_scale_through_the_relus():
    torch.manual_seed(0)
    x = torch.randn(64, 3, 32, 32)
    default = alexnet.alexnet(num_classes=10, cifar_stem=True, width=0.25, hidden=256).eval()
    he = alexnet.he_init_(alexnet.alexnet(num_classes=10, cifar_stem=True, width=0.25, hidden=256)).eval()
    with torch.no_grad():
        feat_default, feat_he = default.features(x).std().item(), he.features(x).std().item()
    # PyTorch's default init shrinks the signal layer by layer; He init keeps it near the input's scale.
    assert feat_default < 0.2 < feat_he
    assert all(float(m.bias.abs().max()) == 0 for m in he.modules() if isinstance(m, torch.nn.Conv2d))
    assert he.classifier[-1].weight.std().item() < 0.02
