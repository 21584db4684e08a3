"""LeNet-5 (icdl.models.lenet): shapes, parameter counts against the paper, the C3 table, and learning."""

import pytest
import torch
from icdl.models import lenet
from torch import nn

VARIANTS = ["modern", "classic"]

# Section II.B of LeCun et al. (1998) states these trainable-parameter counts.
PAPER_PARAMS = {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}


def layer_params(model: lenet.LeNet5) -> dict[str, int]:
    layers = dict(model.features.named_children()) | dict(model.classifier.named_children())
    return {name: sum(p.numel() for p in layers[name].parameters()) for name in lenet.expected_params()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_32x32(variant):
    model = lenet.LeNet5(variant)
    x = torch.randn(3, 1, 32, 32)
    assert model.features(x).shape == (3, 120, 1, 1)
    assert model(x).shape == (3, 10)


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_28x28_with_c1_padding(variant):
    model = lenet.LeNet5(variant, c1_padding=2)
    x = torch.randn(2, 1, 28, 28)
    assert model.features.c1(x).shape == (2, 6, 28, 28)  # padding keeps C1 at the paper's 28x28
    assert model(x).shape == (2, 10)
    with pytest.raises(RuntimeError):  # without padding a 28x28 input is too small for C5
        lenet.LeNet5(variant)(x)


def test_options_change_the_head_and_input():
    model = lenet.LeNet5("modern", num_classes=7, in_channels=3, batch_norm=True)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 3
    with pytest.raises(ValueError, match="variant"):
        lenet.LeNet5("lenet1")


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_counts_equal_formulas(variant):
    model = lenet.LeNet5(variant)
    want = lenet.expected_params(variant)
    assert layer_params(model) == want
    assert sum(p.numel() for p in model.parameters()) == sum(want.values())


def test_classic_counts_match_the_paper():
    got = layer_params(lenet.LeNet5("classic"))
    assert {k: got[k] for k in PAPER_PARAMS} == PAPER_PARAMS
    # The modern variant differs only where it should: full C3, parameter-free pooling.
    modern = layer_params(lenet.LeNet5("modern"))
    assert modern["c3"] == 16 * (6 * 25 + 1) and modern["s2"] == modern["s4"] == 0
    assert sum(modern.values()) == 61706


def test_c3_table_is_table_one():
    sizes = sorted(len(inputs) for inputs in lenet.C3_TABLE)
    assert sizes == [3] * 6 + [4] * 9 + [6]
    # Every S2 map feeds exactly 10 of the 16 C3 maps (Table I has ten X per row).
    for s2_map in range(6):
        assert sum(s2_map in inputs for inputs in lenet.C3_TABLE) == 10


def test_c3_maps_read_only_their_table_entries():
    torch.manual_seed(0)
    c3 = lenet.LeNet5("classic").features.c3
    x = torch.randn(1, 6, 14, 14, requires_grad=True)
    for j, inputs in enumerate(lenet.C3_TABLE):
        (grad,) = torch.autograd.grad(c3(x)[0, j].sum(), x)
        reads = {i for i in range(6) if grad[0, i].abs().sum() > 0}
        assert reads == set(inputs), f"C3 map {j}"


def test_scaled_tanh_and_trainable_subsampling():
    f = lenet.ScaledTanh()
    assert f(torch.tensor([1.0, -1.0])) == pytest.approx([1.0, -1.0], abs=1e-4)  # Appendix A's choice
    pool = lenet.TrainableSubsampling(2)
    with torch.no_grad():
        pool.weight.copy_(torch.tensor([1.0, 2.0]))
        pool.bias.copy_(torch.tensor([0.0, 0.5]))
    x = torch.arange(32.0).view(1, 2, 4, 4)
    out = pool(x)
    assert out.shape == (1, 2, 2, 2)
    assert out[0, 0, 0, 0].item() == pytest.approx(0 + 1 + 4 + 5)  # sum of the block times 1
    assert out[0, 1, 1, 1].item() == pytest.approx(2 * (26 + 27 + 30 + 31) + 0.5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_few_steps_reduce_the_loss(variant):
    torch.manual_seed(0)
    model = lenet.LeNet5(variant, c1_padding=2)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]  # memorising 32 examples is easy for 60k parameters
