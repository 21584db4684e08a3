"""Every registered model that names a torchvision builder equals it, and every recorded fact is recounted.

One test for all families, driven by the registry (``icdl.models.registry``):

* same ``state_dict`` keys and shapes as torchvision's builder;
* torchvision's (random) weights load with ``strict=True`` and give the same outputs in eval
  mode, with non-trivial batch-norm statistics so uncopied BN buffers would show;
* the recorded parameters and multiply-adds equal the course's own count (on the meta
  device: no memory, no arithmetic), and the parameters equal torchvision's weight metadata;
* the control: the comparison does fail for a model with one weight changed.
"""

import pytest
import torch
import torchvision
from icdl.checks.core import randomize_bn_stats
from icdl.summary import count_flops, count_params
from icdl.models import registry

NAMES = registry.list_models()
TORCHVISION = [n for n in NAMES if registry.model_facts(n).torchvision]
# The seven families the course had before the registry must all be covered.
COVERED = {"alexnet", "vgg16", "vgg16_bn", "googlenet", "resnet18", "resnet50", "densenet121"}


def test_the_registry_covers_the_course():
    assert COVERED <= set(TORCHVISION), COVERED - set(TORCHVISION)
    for name in NAMES:
        facts = registry.model_facts(name)
        assert facts.params and facts.macs, f"{name}: parameters and multiply-adds must be recorded"


def input_for(facts, size: int = 64) -> torch.Tensor:
    size = facts.input_size if facts.fixed_input else size
    return torch.randn(2, facts.in_channels, size, size, generator=torch.Generator().manual_seed(1))


def pair(name: str):
    facts = registry.model_facts(name)
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, facts.torchvision)(weights=None)
    randomize_bn_stats(theirs).eval()
    with torch.no_grad():  # a layer that starts at zero (ViT's head) would make the comparison vacuous
        for p in theirs.parameters():
            if p.numel() > 1 and not p.any():
                p.normal_(0, 0.02)
    ours = registry.get_model(name)
    return facts, ours, theirs


@pytest.mark.parametrize("name", TORCHVISION)
def test_equals_torchvision(name):
    facts, ours, theirs = pair(name)
    mine, tv = ours.state_dict(), theirs.state_dict()
    assert set(mine) == set(tv), (sorted(set(mine) - set(tv))[:5], sorted(set(tv) - set(mine))[:5])
    assert {k: tuple(v.shape) for k, v in mine.items()} == {k: tuple(v.shape) for k, v in tv.items()}
    ours.load_state_dict(tv, strict=True)
    ours.eval()
    x = input_for(facts)
    with torch.no_grad():
        got, want = ours(x), theirs(x)
    assert got.shape == want.shape and want.std() > 1e-3  # outputs that differ from image to image
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_the_comparison_can_fail():
    facts, ours, theirs = pair("resnet18")
    ours.load_state_dict(theirs.state_dict(), strict=True)
    with torch.no_grad():
        ours.layer3[0].bn2.running_var.mul_(1.5)  # one buffer of one layer
    ours.eval()
    x = input_for(facts)
    with torch.no_grad():
        assert (ours(x) - theirs(x)).abs().max() > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_recorded_facts_are_the_counted_ones(name):
    facts = registry.model_facts(name)
    with torch.device("meta"):
        model = facts.factory(**(facts.eval_kwargs or {}))
    size = (1, facts.in_channels, facts.input_size, facts.input_size)
    assert count_params(model) == facts.params
    assert count_flops(model, size) // 2 == facts.macs
    meta = facts.torchvision_meta()
    if meta:
        assert meta["num_params"] == facts.params
        # torchvision's "GFLOPS" field counts multiply-adds (resnet50: 4.089), rounded to 3 decimals.
        assert abs(meta["_ops"] - facts.macs / 1e9) <= 0.0006


SMALLEST_OF_EACH_FAMILY = list({f.family: f.name for f in sorted(
    (registry.model_facts(n) for n in NAMES), key=lambda f: -f.params)}.values())


@pytest.mark.parametrize("name", SMALLEST_OF_EACH_FAMILY)
def test_every_family_has_the_common_interface(name):
    facts = registry.model_facts(name)
    torch.manual_seed(0)
    model = registry.get_model(name, num_classes=10).eval()
    x = input_for(facts, 32 if facts.in_channels == 1 else 64)
    with torch.no_grad():
        logits = model(x)
        features = model.forward_features(x)
        if facts.family == "vit":  # tokens: (N, 1 + patches, num_features)
            assert features.ndim == 3 and features.shape[2] == model.num_features, tuple(features.shape)
        else:  # the last feature map: (N, num_features, h, w)
            assert features.ndim == 4 and features.shape[1] == model.num_features, tuple(features.shape)
        torch.testing.assert_close(model.forward_head(features), logits)
        assert logits.shape == (2, 10)
        hidden = model.head.in_features
        model.reset_classifier(3)
        assert model(x).shape == (2, 3)
        model.reset_classifier(0)
        assert model(x).shape == (2, hidden)
