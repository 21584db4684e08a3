"""The one interface every network of the course offers (after timm's).

* ``forward_features(x)``: the last feature map, ``(N, num_features, h, w)``: everything the
  network computes before it pools and classifies (a transformer returns its tokens).
* ``forward_head(features)``: pooling, the classifier layers, and the logits ``(N, num_classes)``.
  ``forward(x)`` is ``forward_head(forward_features(x))``.
* ``num_features``: the channels of that feature map.
* ``reset_classifier(num_classes)``: a new, freshly initialised last linear layer with
  ``num_classes`` outputs, for transfer learning; ``0`` removes it, so that ``forward``
  returns what that layer read (the pooled features, or VGG's 4096 hidden units).

A family's network subclasses :class:`Classifier`, sets ``num_features``, names its last
linear layer with ``head_path`` (``"fc"``, or ``"classifier.6"`` for a layer inside a
Sequential, as torchvision names it, so that weights load by name) and implements
``forward_features`` and ``forward_head``.
"""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    head_path = "fc"
    num_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - each family has its own
        raise NotImplementedError(f"{type(self).__name__} does not define forward_features")

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:  # pragma: no cover - each family has its own
        raise NotImplementedError(f"{type(self).__name__} does not define forward_head")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @property
    def head(self) -> nn.Module:
        """The last linear layer (``nn.Identity`` after ``reset_classifier(0)``)."""
        return self.get_submodule(self.head_path)

    def reset_classifier(self, num_classes: int) -> Classifier:
        """Replace the last linear layer by a new one with ``num_classes`` outputs (0: none); returns the model."""
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
            raise ValueError(f"num_classes must be a whole number >= 0, got {num_classes!r}")
        old = self.head
        if isinstance(old, nn.Linear):
            self._head_in_features = old.in_features
        new = nn.Identity() if num_classes == 0 else nn.Linear(self._head_in_features, num_classes)
        ref = next(self.parameters(), None)
        if ref is not None:
            new = new.to(device=ref.device, dtype=ref.dtype)
        parent, _, leaf = self.head_path.rpartition(".")
        setattr(self.get_submodule(parent) if parent else self, leaf, new)
        return self
