"""The one interface every network of the course offers (after timm's).

* ``forward_features(x)``: the features the classifier reads, ``(N, num_features)``:
  everything the network computes before its last linear layer.
* ``num_features``: their number (the last linear layer's ``in_features``).
* ``reset_classifier(num_classes)``: a new, freshly initialised last linear layer with
  ``num_classes`` outputs, for transfer learning; ``0`` removes it (``forward`` then
  returns the features).

A family's network subclasses :class:`Classifier`, names its last linear layer with
``head_path`` (``"fc"``, or ``"classifier.1"`` for a layer inside a Sequential, as in
torchvision, so weights load by name) and implements ``forward_features``.
"""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    head_path = "fc"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - each family has its own
        raise NotImplementedError(f"{type(self).__name__} does not define forward_features")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    @property
    def head(self) -> nn.Module:
        """The last linear layer (``nn.Identity`` after ``reset_classifier(0)``)."""
        return self.get_submodule(self.head_path)

    @property
    def num_features(self) -> int:
        head = self.head
        return head.in_features if isinstance(head, nn.Linear) else self._num_features

    def reset_classifier(self, num_classes: int) -> Classifier:
        """Replace the last linear layer by a new one with ``num_classes`` outputs (0: no classifier)."""
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
            raise ValueError(f"num_classes must be a whole number >= 0, got {num_classes!r}")
        old, features = self.head, self.num_features
        self._num_features = features
        if num_classes == 0:
            new = nn.Identity()
        else:
            new = nn.Linear(features, num_classes)
            ref = next(old.parameters(), None)
            ref = next(self.parameters(), None) if ref is None else ref
            if ref is not None:
                new = new.to(device=ref.device, dtype=ref.dtype)
        parent, _, leaf = self.head_path.rpartition(".")
        setattr(self.get_submodule(parent) if parent else self, leaf, new)
        return self
