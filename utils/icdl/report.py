"""Putting measured results into the book's prose, and summarising repeated runs.

The book's pages quote numbers through myst-nb's ``glue``: a cell computes a
value and names it, and the text writes ``{glue:text}`name:.1f``` where the
number belongs. The page then always agrees with the run that built it.

:func:`glue` is that call, made safe outside the book: in Colab or a plain
Jupyter session (where myst-nb is not installed) it does nothing, because the
cell's own printed output already shows the value.

:func:`seed_summary` turns one number per seed into mean, spread and a
one-line description, the form every comparison in the book is reported in.
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
