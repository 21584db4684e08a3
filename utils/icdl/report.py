"""Putting measured results into the book's prose, and summarising repeated runs.

The book's pages quote numbers through myst-nb's ``glue``: a cell computes a
value and names it, and the text writes ``{glue:text}`name:.1f``` where the
number belongs. The page then always agrees with the run that built it.

:func:`glue` is that call, made safe outside the book: in Colab or a plain
Jupyter session (where myst-nb is not installed) it does nothing, because the
cell's own printed output already shows the value.

:func:`seed_summary` turns one number per seed into mean, spread and a
one-line description, the form every comparison in the book is reported in.

:func:`result_card` ends a training notebook: what was trained, on what, for
how long, and how well, in one short table the notebook prints itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable


def glue(name: str, value) -> None:
    """Name ``value`` for the book's text (``{glue:text}`name```); no visible output.

    Numbers are glued as plain Python numbers, so the text chooses the format:
    ``{glue:text}`acc:.1%``` shows 0.873 as 87.3%.
    """
    try:
        from myst_nb import glue as _myst_glue
    except ImportError:  # Colab, or Jupyter without the book tools: nothing to do
        return
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        value = value.item()
    _myst_glue(name, value, display=False)


@dataclass(frozen=True)
class SeedSummary:
    """Mean and sample standard deviation of one measurement repeated over seeds."""

    values: tuple
    mean: float
    std: float          # sample standard deviation (n - 1); 0.0 for a single run
    lo: float
    hi: float

    @property
    def n(self) -> int:
        return len(self.values)

    def text(self, fmt: str = ".3f", scale: float = 1.0, unit: str = "") -> str:
        """``"0.871 ± 0.004 (3 seeds: 0.867 to 0.875)"``; ``scale=100, unit="%"`` for percentages."""
        f = lambda v: format(v * scale, fmt)  # noqa: E731
        if self.n == 1:
            return f"{f(self.mean)}{unit} (1 seed)"
        spread = format(self.std * abs(scale), fmt.replace("+", ""))  # a spread has no sign
        return f"{f(self.mean)}{unit} ± {spread} ({self.n} seeds: {f(self.lo)} to {f(self.hi)}{unit})"


def seed_summary(values: Iterable[float]) -> SeedSummary:
    """Summarise one number per seed: ``seed_summary([0.86, 0.87, 0.88]).text(".1f", 100, "%")``."""
    vals = tuple(float(v) for v in values)
    if not vals:
        raise ValueError("seed_summary needs at least one value")
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return SeedSummary(vals, mean, std, min(vals), max(vals))


def compare(a: Iterable[float], b: Iterable[float]) -> dict:
    """Paired comparison of two settings run on the same seeds: the differences ``a - b``.

    Returns ``{"diff": SeedSummary, "wins": k, "n": n}`` where ``wins`` counts
    the seeds on which ``a`` came out higher. A conclusion "a beats b" holds up
    when the mean difference is large against its spread and ``wins == n``.
    """
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) != len(b) or not a:
        raise ValueError(f"compare needs two equal, non-empty lists of per-seed values, got {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b)]
    return {"diff": seed_summary(diffs), "wins": sum(d > 0 for d in diffs), "n": len(diffs)}


def _seconds_text(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _fraction(name: str, value) -> float:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a fraction between 0 and 1 (0.873 for 87.3%), got {value!r}")
    return float(value)


def _accuracy_text(name: str, value) -> str:
    """One fraction as ``87.3%``; one per seed (a list, tuple or dict of them) as mean ± spread."""
    if value is None:
        return "not measured"
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return seed_summary([_fraction(name, v) for v in value]).text(".1f", 100, "%")
    return f"{_fraction(name, value):.1%}"


class ResultCard:
    """What :func:`result_card` returns: ``rows`` (name -> text); shown as a table in a notebook and in the book."""

    def __init__(self, title: str, rows: dict):
        self.title, self.rows = title, dict(rows)

    def __str__(self) -> str:
        width = max(len(k) for k in self.rows)
        return "\n".join([self.title, "-" * max(len(self.title), 40)]
                         + [f"{k:<{width}}  {v}" for k, v in self.rows.items()])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from html import escape

        body = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>{escape(v)}</td>"
                       f"</tr>" for k, v in self.rows.items())
        return f"<table class='result-card'><caption>{escape(self.title)}</caption>{body}</table>"


def result_card(cfg, model, data, *, val_acc=None, test_acc=None, input_size=None, title: str | None = None,
                seconds: float | None = None) -> ResultCard:
    """The card that ends a training notebook: a :class:`ResultCard`, a table as the cell's value.

    ``cfg``: what ``env.setup`` returned (budget, device, and the start of the run, for the wall
    time unless ``seconds`` is given); ``model``: the trained network (its parameters, and its
    FLOPs for one image of ``input_size`` such as ``(1, 3, 32, 32)``, counted by
    :func:`icdl.summary.count_flops`); ``data``: the training :class:`~icdl.data.ImageSet`
    (which images the run really used, and whether they stand in for another dataset);
    ``val_acc`` / ``test_acc``: fractions, from the notebook's own evaluation; a list (or a
    dict by seed) of them gives the mean and spread over seeds.
    """
    import time

    from .summary import count_flops, count_params

    val, test = _accuracy_text("val_acc", val_acc), _accuracy_text("test_acc", test_acc)
    source = getattr(data, "source", "") or getattr(data, "name", "") or type(data).__name__
    if getattr(data, "standin", False):
        data_text = f"{source}, standing in for {getattr(data, 'name', 'the dataset')}"
    else:
        data_text = source
    n = len(data) if hasattr(data, "__len__") else None
    if n is not None:
        data_text += f"; {n:,} training images"
    wall = seconds if seconds is not None else time.perf_counter() - cfg.started
    rows = {"budget": cfg.budget, "device": str(cfg.device), "data": data_text, "wall time": _seconds_text(wall),
            "validation accuracy": val, "test accuracy": test,
            "parameters": f"{count_params(model):,}"}
    if input_size is not None:
        was_training = model.training
        model.eval()
        try:
            flops = count_flops(model, input_size)
        finally:
            model.train(was_training)
        side = "x".join(str(d) for d in tuple(input_size)[-2:])
        rows["FLOPs"] = f"{flops / 1e6:,.1f} M per {side} image"
    return ResultCard(title or "Result card", rows)
