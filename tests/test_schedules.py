"""Tests of icdl.schedules: the range test grows the lr exponentially, stops on divergence and leaves the model
as it was; the suggestion reads the curve; decay_groups keeps norms and biases out of weight decay."""

import math

import pytest
import torch
from icdl import schedules
from icdl.models.layers import LayerNorm2d
from torch import nn


def tiny_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return [(x[i:i + 16], y[i:i + 16]) for i in range(0, n, 16)]


def test_range_test_grows_exponentially_and_restores_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    found = schedules.lr_range_test(model, tiny_data(), start_lr=1e-4, end_lr=1e-1, steps=10, diverge=1e9)
    assert len(found["lrs"]) == len(found["losses"]) == len(found["smoothed"]) == 10  # the loader restarts
    ratios = [b / a for a, b in zip(found["lrs"], found["lrs"][1:])]
    assert found["lrs"][0] == pytest.approx(1e-4) and found["lrs"][-1] == pytest.approx(1e-1)
    assert all(r == pytest.approx(1000 ** (1 / 9)) for r in ratios)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training  # its mode is restored too
    assert found["smoothed"][0] == pytest.approx(found["losses"][0])  # bias-corrected from the first step


def test_range_test_stops_when_the_loss_diverges():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    found = schedules.lr_range_test(model, tiny_data(), start_lr=1e-3, end_lr=1e4, steps=200,
                                    optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    assert len(found["lrs"]) < 200
    assert found["smoothed"][-1] > 4 * min(found["smoothed"]) or not math.isfinite(found["smoothed"][-1])


@pytest.mark.parametrize("kwargs", [dict(steps=1), dict(start_lr=1.0, end_lr=0.1), dict(beta=1.0)])
def test_range_test_refuses_bad_settings(kwargs):
    with pytest.raises(ValueError):
        schedules.lr_range_test(nn.Linear(4, 2), tiny_data(), **kwargs)


def test_suggest_lr_is_a_tenth_of_the_lowest_smoothed_loss():
    lrs = [1e-4, 1e-3, 1e-2, 1e-1]
    assert schedules.suggest_lr(lrs, [2.0, 1.0, 0.5, float("nan")]) == pytest.approx(1e-3)
    assert schedules.suggest_lr(lrs, [2.0, 1.0, 0.5, 3.0], factor=1) == pytest.approx(1e-2)
    with pytest.raises(ValueError):
        schedules.suggest_lr(lrs, [1.0])
    with pytest.raises(ValueError):
        schedules.suggest_lr([1e-3], [float("inf")])


def test_decay_groups_keep_norms_and_biases_out():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1, bias=False), LayerNorm2d(4),
                          nn.GroupNorm(2, 4), nn.Flatten(), nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)
    decay, no_decay = schedules.decay_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in decay["params"]) == ["2.weight", "6.weight"]
    assert sorted(names[id(p)] for p in no_decay["params"]) == [
        "0.bias", "1.bias", "1.weight", "3.bias", "3.weight", "4.bias", "4.weight", "6.bias"]
    torch.optim.AdamW(schedules.decay_groups(model, 0.05), lr=1e-3)  # what an optimizer takes


def test_decay_groups_put_a_shared_parameter_in_one_group():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    groups = schedules.decay_groups(model, 0.1)
    assert sum(len(g["params"]) for g in groups) == 2
