"""icdl.summary: parameter and FLOP counts against hand-computed values."""

import pytest
import torch
from icdl import summary
from torch import nn


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 3*8*9 + 8 = 224 params
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),  # 128*10 + 10 = 1290 params
    )


def test_count_params_by_hand():
    assert summary.count_params(nn.Linear(10, 5)) == 55
    assert summary.count_params(small_cnn()) == 224 + 1290
    frozen = small_cnn()
    frozen[0].requires_grad_(False)
    assert summary.count_params(frozen, trainable_only=True) == 1290


def test_count_flops_multiply_add_is_two():
    # A linear layer does in*out multiply-adds per example: 2*10*5 FLOPs.
    assert summary.count_flops(nn.Linear(10, 5), (1, 10)) == 100
    # A conv: 2 * (C_in*k*k) * C_out * H_out * W_out.
    assert summary.count_flops(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 8, 8)) == 2 * 27 * 8 * 64


def test_layer_table_rows_shapes_and_totals():
    model = small_cnn()
    table = summary.layer_table(model, (1, 3, 8, 8))
    assert [r.name for r in table.rows] == ["0", "1", "2", "3", "4"]
    assert [r.output_shape for r in table.rows] == [(1, 8, 8, 8), (1, 8, 8, 8), (1, 8, 4, 4), (1, 128), (1, 10)]
    assert table.rows[0].params == 224 and table.rows[4].params == 1290
    assert table.rows[0].flops == 2 * 27 * 8 * 64 and table.rows[4].flops == 2 * 128 * 10
    assert table.total_params == sum(r.params for r in table.rows)
    assert table.total_flops == sum(r.flops for r in table.rows)
    text = str(table)
    assert "1x8x4x4" in text and f"{table.total_params:,}" in text
    assert "<table>" in table._repr_html_()
    assert model.training, "layer_table must restore the training mode"


def test_layer_table_depth_descends():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), nn.Flatten())
    assert [r.name for r in summary.layer_table(model, (1, 1, 5, 5), depth=1).rows] == ["0", "1"]
    assert [r.name for r in summary.layer_table(model, (1, 1, 5, 5), depth=2).rows] == ["0.0", "0.1", "1"]


def test_max_abs_diff():
    a = torch.zeros(3)
    assert summary.max_abs_diff(a, torch.tensor([0.0, -2.0, 1.0])) == 2.0
    with pytest.raises(ValueError, match="shapes differ"):
        summary.max_abs_diff(a, torch.zeros(4))
