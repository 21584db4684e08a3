"""The course's GoogLeNet: what is particular to the family (its equality with torchvision's is tests/test_models_registry.py)."""

import pytest
import torch
import torchvision
from icdl.checks.core import randomize_bn_stats
from icdl.models import googlenet as g


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    ref = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True, num_classes=10)
    randomize_bn_stats(ref)
    return ref


@pytest.mark.parametrize("transform_input", [False, True])
def test_eval_outputs_match_torchvision(reference, transform_input):
    ours = g.googlenet(num_classes=10, transform_input=transform_input)
    ours.load_state_dict(reference.state_dict(), strict=True)
    reference.transform_input = transform_input
    ours.eval(), reference.eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    reference.transform_input = False
    assert got.shape == (2, 10)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_train_mode_aux_heads_match_torchvision(reference):
    """With dropout off, the training-mode outputs (main and both aux heads) agree too."""
    ours = g.googlenet(num_classes=10)
    ours.load_state_dict(reference.state_dict(), strict=True)
    for model in (ours, reference):
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    reference.eval()
    assert isinstance(got, g.GoogLeNetOutputs)
    for name in ("logits", "aux_logits1", "aux_logits2"):
        torch.testing.assert_close(getattr(got, name), getattr(expected, name), atol=1e-5, rtol=1e-4)


def test_five_by_five_branch_is_3x3_in_torchvision_and_5x5_in_paper():
    tv = g.googlenet().inception3a.branch3[1].conv
    paper = g.googlenet_paper().inception3a.branch3[1].conv
    assert tv.kernel_size == (3, 3) and paper.kernel_size == (5, 5)
    assert paper.bias is not None and isinstance(g.googlenet_paper().conv1.bn, torch.nn.Identity)


def test_table1_output_channels():
    model = g.googlenet()
    expected = {"inception3a": 256, "inception3b": 480, "inception4a": 512, "inception4b": 512,
                "inception4c": 512, "inception4d": 528, "inception4e": 832, "inception5a": 832,
                "inception5b": 1024}
    for spec in g.INCEPTION_CFG:
        if isinstance(spec, g.InceptionSpec):
            assert spec.out_channels == expected[spec.name]
    x = torch.randn(1, 192, 8, 8)
    assert model.inception3a.eval()(x).shape == (1, 256, 8, 8)


def test_paper_variant_runs_and_aux_loss():
    model = g.googlenet_paper(num_classes=5, width=0.25).train()
    out = model(torch.randn(2, 3, 96, 96))
    assert out.logits.shape == out.aux_logits1.shape == out.aux_logits2.shape == (2, 5)
    y = torch.tensor([0, 1])
    loss = g.googlenet_loss(out, y)
    import torch.nn.functional as F
    expected = F.cross_entropy(out.logits, y) + 0.3 * (F.cross_entropy(out.aux_logits1, y)
                                                       + F.cross_entropy(out.aux_logits2, y))
    torch.testing.assert_close(loss, expected)


def test_cifar_stem_output_shape_and_resolution():
    model = g.googlenet(num_classes=10, cifar_stem=True, width=0.25).eval()
    sizes = {}
    model.inception3a.register_forward_hook(lambda m, i, o: sizes.update({"3a": o.shape[-1]}))
    model.inception5b.register_forward_hook(lambda m, i, o: sizes.update({"5b": o.shape[-1]}))
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert sizes == {"3a": 16, "5b": 4}


def test_aux_output_loss_adds_aux_terms_in_training_only():
    model = g.googlenet(num_classes=3, cifar_stem=True, width=0.125).train()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    logits, loss = g.aux_output_loss(model(x), y)
    assert logits.shape == (4, 3)
    assert loss > torch.nn.functional.cross_entropy(logits, y)  # aux terms are positive
    model.eval()
    with torch.no_grad():
        logits, loss = g.aux_output_loss(model(x), y)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, y))

