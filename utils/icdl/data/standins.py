"""Offline stand-ins made of real images that ship inside installed packages.

Used only where no real dataset can be had (a laptop without internet and
without the Debian Fashion-MNIST package):

* **digits**: scikit-learn's 1,797 handwritten 8x8 digits, upscaled to 28x28
  like MNIST;
* **photos**: 32x32 crops of ten photographs and textures from scikit-image,
  one class per photo. Training crops and test crops come from **disjoint
  regions** of each photo (the left part for training, a strip on the right
  for testing), so a test crop is never a near-copy of a training crop: the
  test then measures whether a network recognises an unseen part of the scene.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from .images import gather_crops

DIGIT_CLASSES = [str(d) for d in range(10)]


@functools.lru_cache(maxsize=None)
def digits() -> dict:
    """scikit-learn's 1,797 8x8 digits as MNIST-like 1x28x28 uint8, split 80/20 (seeded, stratified).

    MNIST centres each 20x20 digit in a 28x28 frame; we do the same: upscale
    8x8 -> 20x20 (bilinear) and pad 4 pixels of background on every side.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.from_numpy(data.images).float().mul_(255 / 16).unsqueeze(1)  # (1797, 1, 8, 8), values 0..16
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    x = F.pad(x, (4, 4, 4, 4)).round_().clamp_(0, 255).to(torch.uint8)
    y = torch.from_numpy(data.target).long()
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=data.target)
    return {"train": (x[train_idx], y[train_idx]), "test": (x[test_idx], y[test_idx])}


# class name -> skimage.data function; all ten ship inside scikit-image (no download).
PHOTO_SOURCES = {
    "astronaut": "astronaut", "cat": "chelsea", "coffee": "coffee", "rocket": "rocket",
    "galaxies": "hubble_deep_field", "tissue": "immunohistochemistry", "cameraman": "camera",
    "brick": "brick", "grass": "grass", "gravel": "gravel",
}
PHOTO_CLASSES = list(PHOTO_SOURCES)
PHOTOS_PER_CLASS = {"train": 500, "test": 100}
# Which columns of each photo feed which split, as fractions of its width. The gap
# between them keeps a test crop from being a shifted copy of a training crop.
PHOTO_REGIONS = {"train": (0.0, 0.62), "test": (0.70, 1.0)}
# Each crop is cut from its region shrunk so the region's shorter side is one of these:
# 40 px shows nearly the whole region, 112 px a detail.
PHOTO_SCALES = (40, 56, 80, 112)


def _photo_crops(region: np.ndarray, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random 32x32 uint8 crops ``(n, 3, 32, 32)`` of one photo region at random scales."""
    x = torch.from_numpy(np.ascontiguousarray(region)).float()
    x = x.unsqueeze(-1).expand(*x.shape, 3) if x.ndim == 2 else x[..., :3]  # grey textures -> 3 channels
    x = x.permute(2, 0, 1).unsqueeze(0)                                     # (1, 3, H, W)
    scale_of = torch.randint(len(PHOTO_SCALES), (n,), generator=gen)
    out = torch.empty(n, 3, 32, 32)
    for k, short in enumerate(PHOTO_SCALES):
        h, w = x.shape[-2:]
        size = (short, round(w * short / h)) if h <= w else (round(h * short / w), short)
        small = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        pick = (scale_of == k).nonzero().flatten()
        top = torch.randint(size[0] - 32 + 1, (len(pick),), generator=gen)
        left = torch.randint(size[1] - 32 + 1, (len(pick),), generator=gen)
        out[pick] = gather_crops(small.expand(len(pick), -1, -1, -1), top, left, 32, 32)
    # A little brightness/contrast variation per crop, so average colour alone does not give the class away.
    gain = torch.empty(n, 1, 1, 1).uniform_(0.75, 1.25, generator=gen)
    shift = torch.empty(n, 1, 1, 1).uniform_(-20, 20, generator=gen)
    return (out * gain + shift).round_().clamp_(0, 255).to(torch.uint8)


@functools.lru_cache(maxsize=None)
def photos() -> dict:
    """The photo stand-in: 10 classes x (500 train + 100 test) 32x32 crops, seeded, from disjoint regions."""
    import skimage.data

    images = {"train": [], "test": []}
    gen = torch.Generator().manual_seed(0)
    for name in PHOTO_CLASSES:
        photo = getattr(skimage.data, PHOTO_SOURCES[name])()
        width = photo.shape[1]
        for split, n in PHOTOS_PER_CLASS.items():
            start, stop = PHOTO_REGIONS[split]
            images[split].append(_photo_crops(photo[:, round(start * width):round(stop * width)], n, gen))
    return {split: (torch.cat(imgs), torch.arange(10).repeat_interleave(PHOTOS_PER_CLASS[split]))
            for split, imgs in images.items()}
