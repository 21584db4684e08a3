"""How every family writes its configuration: a paper's table as rows of frozen dataclasses.

One row of a table (a stage of EfficientNet-B0, an Inception module of GoogLeNet, a bneck
block of MobileNetV3) or one named configuration (DenseNet-121: growth rate 32, blocks
6-12-24-16, a 64-channel stem) is an instance of a frozen dataclass that subclasses
:class:`Spec`; the table's columns are its fields::

    @dataclass(frozen=True)
    class StageConfig(Spec):
        expand_ratio: int
        kernel: int
        ...

    B0_STAGES = (StageConfig(1, 3, 1, 32, 16, 1), ...)

*Frozen*: a configuration is a fact about a paper, so it cannot be changed by accident;
``dataclasses.replace(row, stride=1)`` returns a changed copy instead. The fields have names,
so the code reads ``row.stride``, not ``row[2]``.

A spec also reads like the tuple of its values, so that a table prints and unpacks as the
paper writes it (``t, c, n, s = row``, ``row[1:]``, ``len(row)``), and like a mapping of its
fields (``spec["growth_rate"]``, ``DenseNet(**spec)``).

VGG is the one family whose table stays a plain list: its Table 1 is a column of layers
(``64, "M", 128, ...``), read one item at a time, with no columns to name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Spec:
    """Base class of the families' configuration rows: subclass it as a frozen dataclass."""

    def keys(self) -> tuple[str, ...]:
        """The field names, in order (the table's column headings)."""
        return tuple(f.name for f in fields(self))

    def __iter__(self) -> Iterator[Any]:
        return (getattr(self, name) for name in self.keys())

    def __len__(self) -> int:
        return len(fields(self))

    def __getitem__(self, key: int | slice | str) -> Any:
        """``spec[0]`` and ``spec[1:]`` as on the tuple of values; ``spec["name"]`` is ``spec.name``."""
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(f"{type(self).__name__} has no field {key!r}; its fields are {', '.join(self.keys())}")
            return getattr(self, key)
        return tuple(self)[key]
