"""Loaders: batches for training and evaluation.

The fast path for small datasets is :class:`DeviceLoader`: the uint8 dataset
lives on the device and each batch is converted, augmented
(:class:`~icdl.augment.BatchAugment`, a whole batch at once) and normalised
there. The classic per-image pipeline (:func:`pil_train_transforms` through
:func:`torch_loader`, torchvision transforms applied to one image at a time in
the loader's workers) is kept for comparison; ``benchmarks/augment.py`` times
both. The augmentations themselves live in :mod:`icdl.augment`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..augment import BatchAugment, eval_transforms, reference_transforms
from .images import ImageSet


# ==========================================================================
# The fast path: data on the device, augmented in batches there
# ==========================================================================
class DeviceLoader:
    """Batches of a whole :class:`ImageSet` held on ``device``: ``for x, y in loader``.

    The uint8 images go to the device once (a quarter of the memory of
    floats). Each batch is then gathered, scaled to 0..1, optionally resized to
    ``resize=(H, W)``, augmented and normalised with ``ds.mean``/``ds.std``, all
    on the device: x float32 ``(B, C, H, W)``, y int64 ``(B,)``.

    ``shuffle`` draws a new order every epoch from a generator seeded with
    ``seed``, so two loaders with the same seed give the same batches.
    """

    def __init__(self, ds: ImageSet, batch_size: int, shuffle: bool = False, device="cpu", augment=None,
                 drop_last: bool = False, normalize: bool = True, seed: int = 0, resize=None):
        self.dataset = ds
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.device = torch.device(device)
        self.augment, self.normalize = augment, normalize
        self.resize = tuple(resize) if resize is not None else None
        self.images = ds.images.to(self.device)
        self.labels = ds.labels.to(self.device)
        self.mean = torch.tensor(ds.mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(ds.std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self._prepare(self.images[idx]), self.labels[idx]

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().div_(255)
        if self.resize is not None and tuple(x.shape[-2:]) != self.resize:
            x = F.interpolate(x, size=self.resize, mode="bilinear", antialias=True, align_corners=False)
        if self.augment is not None:
            if isinstance(self.augment, BatchAugment):
                x = self.augment(x, generator=self.generator)
            else:
                x = self.augment(x)
        if self.normalize:
            x = (x - self.mean) / self.std
        return x

    def __repr__(self) -> str:
        return (f"DeviceLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"device={self.device}, augment={self.augment!r})")


# ==========================================================================
# The classic per-image pipeline, for comparison
# ==========================================================================
# The per-image transforms live in icdl.augment; the names below are the ones
# the chapters use.
pil_train_transforms = reference_transforms
pil_eval_transforms = eval_transforms


class _ImageView(torch.utils.data.Dataset):
    """An ImageSet seen one ``(transform(uint8 image (C, H, W)), label)`` at a time, like a torchvision dataset."""

    def __init__(self, ds: ImageSet, transform):
        self.ds, self.transform = ds, transform

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        image, label = self.ds[i]
        return self.transform(image), label


def torch_loader(ds: ImageSet, transform, batch_size: int, shuffle: bool = False,
                 num_workers: int = 0) -> torch.utils.data.DataLoader:
    """A classic ``DataLoader`` applying a per-image ``transform`` (uint8 tensor in) to each example of ``ds``."""
    return torch.utils.data.DataLoader(_ImageView(ds, transform), batch_size=batch_size, shuffle=shuffle,
                                       num_workers=num_workers, persistent_workers=num_workers > 0)
