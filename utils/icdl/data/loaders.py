"""Loaders: batches for training and evaluation.

The fast path for small datasets is :class:`DeviceLoader`: the uint8 dataset
lives on the device and each batch is converted, augmented
(:class:`BatchAugment`, a whole batch at once) and normalised there. The
classic per-image PIL pipeline (:func:`pil_train_transforms` through
:func:`torch_loader`) is kept for comparison; ``benchmarks/augment.py`` times
both.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from .images import ImageSet, gather_crops


# ==========================================================================
# The fast path: augmentation in batches, data on the device
# ==========================================================================
class BatchAugment:
    """Random augmentation of a whole float batch ``(B, C, H, W)`` (0..1 scale) on its own device.

    Per sample, in one vectorised step each (no loop over images):

    * ``crop_padding``: pad by this many black pixels and cut a random H x W
      window back out (torchvision's ``RandomCrop(size, padding)``);
    * ``flip``: mirror left-right with probability 0.5;
    * ``brightness``/``contrast`` (off by default): multiply brightness by a
      factor in ``[1 - b, 1 + b]`` and stretch contrast around the image's
      mean grey by one in ``[1 - c, 1 + c]`` (like ``ColorJitter``);
    * ``erasing`` (off by default): with this probability blank one rectangle
      of 2%-33% of the image, aspect 0.3-3.3 (like ``RandomErasing``), filled
      with the batch's mean colour, which is what erasing to 0 after
      normalisation does.

    Random numbers come from ``generator`` (CPU) when given, so a run is
    repeatable on every device.
    """

    def __init__(self, crop_padding: int = 4, flip: bool = True, brightness: float = 0.0,
                 contrast: float = 0.0, erasing: float = 0.0):
        self.crop_padding, self.flip = crop_padding, flip
        self.brightness, self.contrast, self.erasing = brightness, contrast, erasing

    def __repr__(self) -> str:
        return (f"BatchAugment(crop_padding={self.crop_padding}, flip={self.flip}, brightness={self.brightness}, "
                f"contrast={self.contrast}, erasing={self.erasing})")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(B, C, H, W)`` float -> ``(B, C, H, W)`` float, same device."""
        b, _, h, w = x.shape
        rand = functools.partial(torch.rand, generator=generator)   # CPU random numbers, B of them at a time
        p = self.crop_padding
        if p or self.flip:
            flips = rand(b) < 0.5 if self.flip else None
            if p:
                x = F.pad(x, (p, p, p, p))                          # one padded tensor for the whole batch
            top = (rand(b) * (2 * p + 1)).long()
            left = (rand(b) * (2 * p + 1)).long()
            x = gather_crops(x, top, left, h, w, flips)
        if self.brightness:
            x = x * self._factors(self.brightness, b, rand).to(x.device)
        if self.contrast:
            grey = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - grey) * self._factors(self.contrast, b, rand).to(x.device) + grey
        if self.brightness or self.contrast:
            x = x.clamp(0, 1)
        if self.erasing:
            x = self._erase(x, rand)
        return x

    @staticmethod
    def _factors(strength: float, b: int, rand) -> torch.Tensor:
        return (1 - strength + 2 * strength * rand(b)).view(b, 1, 1, 1)

    def _erase(self, x: torch.Tensor, rand) -> torch.Tensor:
        b, _, h, w = x.shape
        area = h * w * (0.02 + 0.31 * rand(b))
        aspect = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * rand(b))
        eh = (area * aspect).sqrt().round().clamp(1, h)
        ew = (area / aspect).sqrt().round().clamp(1, w)
        eh = torch.where(rand(b) < self.erasing, eh, torch.zeros_like(eh))   # height 0 = not erased
        top = (rand(b) * (h - eh + 1)).floor()
        left = (rand(b) * (w - ew + 1)).floor()
        rows = torch.arange(h).view(1, h, 1)
        cols = torch.arange(w).view(1, 1, w)
        inside = ((rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
                  & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1)))   # (B, H, W)
        fill = x.mean(dim=(0, 2, 3), keepdim=True)
        return torch.where(inside.unsqueeze(1).to(x.device), fill, x)


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
# The classic per-image PIL pipeline, for comparison
# ==========================================================================
def pil_train_transforms(mean, std, size: int = 32):
    """The reference recipe's per-image training pipeline (PIL image -> normalised float ``(C, size, size)``).

    Random crop with 4 pixels of padding, horizontal flip, colour jitter,
    RandAugment (2 ops, magnitude 9, Cubuk et al. 2020), then to a tensor,
    normalised, and random erasing (Zhong et al. 2020) with probability 0.25.
    """
    from torchvision import transforms as T

    return T.Compose([
        T.RandomCrop(size, padding=4),
        T.RandomHorizontalFlip(),
        T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        T.RandAugment(num_ops=2, magnitude=9),
        T.ToTensor(),
        T.Normalize(mean, std),
        T.RandomErasing(p=0.25),
    ])


def pil_eval_transforms(mean, std):
    """PIL image -> normalised float ``(C, H, W)``, no randomness."""
    from torchvision import transforms as T

    return T.Compose([T.ToTensor(), T.Normalize(mean, std)])


class _PILView(torch.utils.data.Dataset):
    """An ImageSet seen as PIL images through ``transform``: what torchvision datasets return."""

    def __init__(self, ds: ImageSet, transform):
        self.ds, self.transform = ds, transform

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        from torchvision.transforms.functional import to_pil_image

        image, label = self.ds[i]
        return self.transform(to_pil_image(image)), label


def torch_loader(ds: ImageSet, transform, batch_size: int, shuffle: bool = False,
                 num_workers: int = 0) -> torch.utils.data.DataLoader:
    """A classic ``DataLoader`` applying a per-image PIL ``transform`` to each example of ``ds``."""
    return torch.utils.data.DataLoader(_PILView(ds, transform), batch_size=batch_size, shuffle=shuffle,
                                       num_workers=num_workers, persistent_workers=num_workers > 0)
