"""Look inside a model: parameters, FLOPs and a per-layer table.

FLOPs come from torch's own counter (:class:`torch.utils.flop_counter.FlopCounterMode`),
which counts a multiply-add as **2** FLOPs. Papers often quote multiply-adds
("mult-adds", "MACs"): divide our figure by 2 to compare.

    >>> table = layer_table(model, (1, 3, 224, 224), depth=1)
    >>> table            # shows as an HTML table in a notebook, text with print()
    >>> table.total_params, table.total_flops
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each weight counted once, even if shared)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _example_input(model: nn.Module, input_size) -> torch.Tensor:
    try:
        ref = next(model.parameters())
        device, dtype = ref.device, ref.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    return torch.randn(*input_size, device=device, dtype=dtype)


def _count(model: nn.Module, input_size) -> FlopCounterMode:
    """One forward pass in eval mode under torch's FLOP counter (the training mode is restored)."""
    x = _example_input(model, input_size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter


def count_flops(model: nn.Module, input_size) -> int:
    """FLOPs of one forward pass on an input of ``input_size`` (e.g. ``(1, 3, 224, 224)``)."""
    return int(_count(model, input_size).get_total_flops())


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference between two tensors of the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return (a.detach().float() - b.detach().float()).abs().max().item()


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple | None
    params: int
    flops: int


@dataclass
class LayerTable:
    """Per-layer output shape, parameters and FLOPs of one forward pass."""

    rows: list[LayerRow]
    input_size: tuple
    total_params: int
    total_flops: int
    columns: tuple = field(default=("layer", "type", "output shape", "params", "FLOPs"))

    def _cells(self):
        for r in self.rows:
            shape = "x".join(str(s) for s in r.output_shape) if r.output_shape else "-"
            yield (r.name, r.kind, shape, f"{r.params:,}", f"{r.flops:,}")
        yield ("total", "", "", f"{self.total_params:,}", f"{self.total_flops:,}")

    def __str__(self) -> str:
        cells = [self.columns, *self._cells()]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = []
        for k, row in enumerate(cells):
            lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
            if k == 0 or k == len(cells) - 2:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:{'right' if i >= 3 else 'left'}'>{c}</td>"
                             for i, c in enumerate(row)) + "</tr>"
            for row in self._cells()
        )
        size = "x".join(str(s) for s in self.input_size)
        return (f"<table><caption>input {size}; FLOPs count a multiply-add as 2</caption>"
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def layer_table(model: nn.Module, input_size, depth: int = 1) -> LayerTable:
    """Per-layer table for the modules ``depth`` levels below the model.

    ``depth=1`` lists the model's direct children (e.g. ``features``,
    ``classifier``); ``depth=2`` their children, and so on. A module with no
    children stops the descent early. Parameters and FLOPs of a row include
    everything inside it; the totals cover the whole model.
    """
    names = []

    def walk(module, prefix, level):
        for child_name, child in module.named_children():
            full = f"{prefix}.{child_name}" if prefix else child_name
            if level == depth or not list(child.children()):
                names.append((full, child))
            else:
                walk(child, full, level + 1)

    walk(model, "", 1)
    shapes = {}
    handles = []
    for full, module in names:
        def hook(mod, inputs, output, full=full):
            if isinstance(output, torch.Tensor):
                shapes[full] = tuple(output.shape)
            elif isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
                shapes[full] = tuple(output[0].shape)
        handles.append(module.register_forward_hook(hook))

    try:
        counter = _count(model, input_size)
    finally:
        for h in handles:
            h.remove()
    # The counter keys modules as "<RootClass>.<path>"; sum the per-op counts.
    per_module = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    root = type(model).__name__
    rows = [
        LayerRow(name=full, kind=type(module).__name__, output_shape=shapes.get(full),
                 params=count_params(module), flops=int(per_module.get(f"{root}.{full}", 0)))
        for full, module in names
    ]
    return LayerTable(rows=rows, input_size=tuple(input_size), total_params=count_params(model),
                      total_flops=int(counter.get_total_flops()))
