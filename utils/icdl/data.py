"""Datasets and fast loaders for the course.

``load(name, split)`` gives an :class:`ImageSet`: the whole dataset as one uint8
tensor ``(N, C, H, W)`` with int64 labels, class names and the per-channel
mean/std of its training set.

* ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``: the real datasets through
  torchvision, downloaded once into :func:`cache_dir`. When they cannot be had
  (offline, as in CI) an **offline stand-in made of real images** is used
  instead and ``load`` prints a line saying so.
* ``"digits"``: scikit-learn's 1,797 handwritten digits, upscaled to 28x28
  (the MNIST stand-in).
* ``"photos"``: 32x32 crops of ten photos and textures bundled with
  scikit-image (the CIFAR-10 stand-in).

``COURSE_DATA`` (or ``load(..., source=...)``) chooses: ``auto`` (default: real
if possible, else the stand-in), ``real`` (raise :class:`DatasetUnavailable`
rather than fall back) or ``standin``.

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
import os
import socket
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .env import in_ci

SOURCES = ("auto", "real", "standin")
DOWNLOAD_TIMEOUT_S = 60


class DatasetUnavailable(RuntimeError):
    """The real dataset is not on disk and could not be downloaded."""


def cache_dir() -> Path:
    """Where real datasets are downloaded: ``COURSE_DATA_DIR`` or ``~/.cache/icdl/data``."""
    return Path(os.environ.get("COURSE_DATA_DIR") or Path.home() / ".cache" / "icdl" / "data").expanduser()


# ==========================================================================
# ImageSet: a whole dataset as tensors
# ==========================================================================
@dataclass
class ImageSet:
    """A dataset held as tensors on the CPU.

    ``images``: uint8 ``(N, C, H, W)``; ``labels``: int64 ``(N,)``;
    ``mean``/``std``: per-channel, on the 0..1 scale, of the *training* split
    (so train, validation and test are normalised alike);
    ``standin``: True when these are offline stand-in images.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list
    name: str
    standin: bool
    mean: tuple
    std: tuple

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        """``ds[i]`` -> (uint8 image ``(C, H, W)``, int label)."""
        return self.images[i], int(self.labels[i])

    def subset(self, indices) -> "ImageSet":
        """The examples at ``indices``, with the same classes and normalisation."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        return ImageSet(self.images[indices], self.labels[indices], self.classes, self.name,
                        self.standin, self.mean, self.std)

    def __repr__(self) -> str:
        kind = "stand-in" if self.standin else "images"
        return (f"ImageSet({self.name!r}, {len(self):,} {kind}, shape {tuple(self.images.shape[1:])}, "
                f"{len(self.classes)} classes)")


def channel_stats(images: torch.Tensor, chunk: int = 10_000) -> tuple[tuple, tuple]:
    """Per-channel mean and std on the 0..1 scale of uint8 images ``(N, C, H, W)``.

    Summed in float64 chunks, so 50,000 CIFAR images never need 600 MB of floats.
    """
    c = images.shape[1]
    total, total_sq, count = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64), 0
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].to(torch.float64).div_(255).transpose(0, 1).reshape(c, -1)
        total += x.sum(1)
        total_sq += (x * x).sum(1)
        count += x.shape[1]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())


# ==========================================================================
# Offline stand-ins: real images that ship inside installed packages
# ==========================================================================
DIGIT_CLASSES = [str(d) for d in range(10)]


@functools.lru_cache(maxsize=None)
def _digits() -> dict:
    """scikit-learn's 1,797 8x8 digits as MNIST-like 1x28x28 uint8, split 80/20 (seeded, stratified).

    MNIST centres each 20x20 digit in a 28x28 frame; we do the same: upscale
    8x8 -> 20x20 (bilinear) and pad 4 pixels of background on every side.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.from_numpy(digits.images).float().mul_(255 / 16).unsqueeze(1)  # (1797, 1, 8, 8), values 0..16
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    x = F.pad(x, (4, 4, 4, 4)).round_().clamp_(0, 255).to(torch.uint8)
    y = torch.from_numpy(digits.target).long()
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=digits.target)
    return {"train": (x[train_idx], y[train_idx]), "test": (x[test_idx], y[test_idx])}


# class name -> skimage.data function; all ten ship inside scikit-image (no pooch download).
PHOTO_SOURCES = {
    "astronaut": "astronaut", "cat": "chelsea", "coffee": "coffee", "rocket": "rocket",
    "galaxies": "hubble_deep_field", "tissue": "immunohistochemistry", "cameraman": "camera",
    "brick": "brick", "grass": "grass", "gravel": "gravel",
}
PHOTO_CLASSES = list(PHOTO_SOURCES)
PHOTOS_PER_CLASS = {"train": 500, "test": 100}
# Each crop is cut from the photo shrunk so its shorter side is one of these:
# 40 px shows nearly the whole scene, 112 px a detail, which keeps the task from being trivial.
PHOTO_SCALES = (40, 56, 80, 112)


def gather_crops(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int,
                 flip: torch.Tensor | None = None) -> torch.Tensor:
    """One ``height x width`` window per image, all at once: ``(B, C, H, W)`` -> ``(B, C, height, width)``.

    ``top``/``left`` (B,) are the windows' corners. ``flip`` (B,) bool mirrors a
    window left-right by reading its columns backwards. Advanced indexing
    gathers every window in one operation: no Python loop over images.
    """
    b, c = images.shape[:2]
    dev = images.device
    rows = top.to(dev).view(b, 1) + torch.arange(height, device=dev)          # (B, height)
    cols = torch.arange(width, device=dev).expand(b, width)                   # (B, width)
    if flip is not None:
        cols = torch.where(flip.to(dev).view(b, 1), cols.flip(1), cols)
    cols = left.to(dev).view(b, 1) + cols
    batch = torch.arange(b, device=dev).view(b, 1, 1, 1)
    chans = torch.arange(c, device=dev).view(1, c, 1, 1)
    return images[batch, chans, rows.view(b, 1, height, 1), cols.view(b, 1, 1, width)]


def _photo_crops(photo: np.ndarray, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random 32x32 uint8 crops ``(n, 3, 32, 32)`` of one photo at random scales."""
    x = torch.from_numpy(np.ascontiguousarray(photo)).float()
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
def _photos() -> dict:
    """The CIFAR-10 stand-in: 10 classes x (500 train + 100 test) 32x32 crops, seeded."""
    import skimage.data

    images = {"train": [], "test": []}
    gen = torch.Generator().manual_seed(0)
    for name in PHOTO_CLASSES:
        photo = getattr(skimage.data, PHOTO_SOURCES[name])()
        for split, n in PHOTOS_PER_CLASS.items():
            images[split].append(_photo_crops(photo, n, gen))
    return {split: (torch.cat(imgs), torch.arange(10).repeat_interleave(PHOTOS_PER_CLASS[split]))
            for split, imgs in images.items()}


def _local_set(kind: str, split: str, name: str, standin: bool) -> ImageSet:
    """``kind`` "digits" or "photos" as an ImageSet called ``name``."""
    data = _digits() if kind == "digits" else _photos()
    images, labels = data[split]
    mean, std = _local_stats(kind)
    classes = DIGIT_CLASSES if kind == "digits" else PHOTO_CLASSES
    return ImageSet(images, labels, list(classes), name, standin, mean, std)


@functools.lru_cache(maxsize=None)
def _local_stats(kind: str):
    data = _digits() if kind == "digits" else _photos()
    return channel_stats(data["train"][0])


LOCAL_DESCRIPTIONS = {
    "digits": "scikit-learn digits upscaled to 28x28",
    "photos": "32x32 crops of 10 scikit-image photos and textures",
}


# ==========================================================================
# Real datasets through torchvision
# ==========================================================================
@dataclass(frozen=True)
class RealSpec:
    """How to get one real dataset: torchvision class, folder, URL, and its stand-in."""

    title: str          # torchvision class name, also its folder for MNIST-style sets
    folder: str         # where the data lands inside cache_dir()
    url: str            # what the learner would download by hand
    by_hand: str        # where to put hand-downloaded files ({root} is filled in)
    standin: str        # "digits" or "photos"


REAL = {
    "mnist": RealSpec(
        "MNIST", "MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "the four *-idx?-ubyte.gz files (or them unzipped) into {root}/MNIST/raw/", "digits"),
    "fashion_mnist": RealSpec(
        "FashionMNIST", "FashionMNIST", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "the four *-idx?-ubyte.gz files (or them unzipped) into {root}/FashionMNIST/raw/", "digits"),
    "cifar10": RealSpec(
        "CIFAR10", "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-python.tar.gz into {root}/ (or its unpacked folder cifar-10-batches-py/ there)", "photos"),
}

_UNAVAILABLE: dict = {}  # (name, root) -> reason, so a failed download is not retried for every split


def _torchvision_class(spec: RealSpec):
    import torchvision.datasets

    return getattr(torchvision.datasets, spec.title)


def _as_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor, list]:
    """A torchvision MNIST/FashionMNIST/CIFAR10 object -> uint8 (N, C, H, W), int64 (N,), classes."""
    data = dataset.data
    if isinstance(data, np.ndarray):          # CIFAR: numpy (N, H, W, C)
        images = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()
    else:                                      # MNIST-style: tensor (N, H, W)
        images = data.unsqueeze(1).contiguous()
    labels = torch.as_tensor(dataset.targets, dtype=torch.long)
    return images, labels, list(dataset.classes)


def _archives(spec: RealSpec) -> list[str]:
    """The archives torchvision downloads for ``spec``, relative to the data root."""
    cls = _torchvision_class(spec)
    if hasattr(cls, "resources"):  # MNIST-style: several .gz files in <Class>/raw/
        return [f"{spec.folder}/raw/{filename}" for filename, _ in cls.resources]
    return [cls.filename]          # CIFAR: one .tar.gz next to its folder


def _download(spec: RealSpec, root: Path) -> None:
    """Download ``spec`` into ``root`` via a staging folder, so nothing half-written is ever left in ``root``.

    torchvision's MNIST takes any file with the right name as good data, so a
    download cut short must not leave one there: files appear in ``root`` only
    after the whole download and extraction succeeded, one atomic rename each.
    """
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".partial-{spec.folder}-*"):  # left by a run that was killed a day or more ago
        if time.time() - stale.stat().st_mtime > 86_400:
            shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{spec.folder}-", dir=root))
    try:
        for archive in _archives(spec):  # archives downloaded by hand: torchvision checks their md5 and uses them
            if (root / archive).is_file():
                (staging / archive).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / archive, staging / archive)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a dead network fails in a minute instead of hanging
        try:
            _torchvision_class(spec)(root=str(staging), train=True, download=True)
        finally:
            socket.setdefaulttimeout(previous)
        for src in sorted((staging / spec.folder).rglob("*")):
            dst = root / spec.folder / src.relative_to(staging / spec.folder)
            if src.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
    except Exception as exc:  # network, checksum, extraction: all mean "not available"
        where = spec.by_hand.format(root=root)
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        raise DatasetUnavailable(
            f"Could not download {spec.title} from {spec.url} ({reason}). What to do: check your internet "
            f"connection and run again; or download it by hand from {spec.url} and put {where}; or set "
            f"COURSE_DATA=standin to use the offline stand-in. No partial files were left in {root}."
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@functools.lru_cache(maxsize=6)
def _load_real(name: str, train: bool, root: str):
    """The real dataset as tensors, downloading it first if it is not on disk yet."""
    spec, path = REAL[name], Path(root)
    cls = _torchvision_class(spec)
    try:
        dataset = cls(root=root, train=train, download=False)
    except RuntimeError:  # "Dataset not found": fetch it, then read it from its final place
        _download(spec, path)
        dataset = cls(root=root, train=train, download=False)
    return _as_tensors(dataset)


def _real_set(name: str, split: str, root: Path) -> ImageSet:
    images, labels, classes = _load_real(name, split == "train", str(root))
    mean, std = _real_stats(name, str(root))  # always from the training split
    if name == "mnist":
        classes = DIGIT_CLASSES  # torchvision says "0 - zero"; the stand-in and the plots use "0"
    return ImageSet(images, labels, classes, name, False, mean, std)


@functools.lru_cache(maxsize=None)
def _real_stats(name: str, root: str):
    return channel_stats(_load_real(name, True, root)[0])


# ==========================================================================
# load, split, take
# ==========================================================================
def load(name: str, split: str = "train", source: str | None = None) -> ImageSet:
    """Load a dataset as an :class:`ImageSet` and print one line saying what was loaded.

    ``name``: "mnist", "fashion_mnist", "cifar10", "digits" or "photos";
    ``split``: "train" or "test" (carve validation from train with :func:`split`).
    ``source``: "auto", "real" or "standin"; None reads ``COURSE_DATA`` (default "auto",
    or "standin" on CI machines, which have no internet).
    """
    name = name.lower().replace("-", "_")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if name in LOCAL_DESCRIPTIONS:
        ds = _local_set(name, split, name, standin=False)
        print(f"{name} ({split}): {len(ds):,} images, {LOCAL_DESCRIPTIONS[name]}.")
        return ds
    if name not in REAL:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join([*REAL, *LOCAL_DESCRIPTIONS])}")
    chosen = source or os.environ.get("COURSE_DATA")
    # CI machines have no internet: do not spend each notebook's seconds on a doomed download.
    source = (chosen or ("standin" if in_ci() else "auto")).strip().lower()
    if source not in SOURCES:
        raise ValueError(f"source (or COURSE_DATA) must be one of {', '.join(SOURCES)}, not {source!r}")

    why = "COURSE_DATA=standin" if chosen else "this is a CI run (set COURSE_DATA=auto to try the download)"
    if source != "standin":
        root = cache_dir()
        key = (name, str(root))
        try:
            if key in _UNAVAILABLE and source == "auto":
                raise _UNAVAILABLE[key]
            ds = _real_set(name, split, root)
            print(f"{name} ({split}): {len(ds):,} real images from {root / REAL[name].folder}")
            return ds
        except DatasetUnavailable as exc:
            if source == "real":
                raise
            _UNAVAILABLE[key] = exc
            cause = exc.__cause__ or exc
            why = f"the real data could not be downloaded ({_short(cause)})"
    kind = REAL[name].standin
    ds = _local_set(kind, split, name, standin=True)
    print(f"{name} ({split}): offline stand-in: {LOCAL_DESCRIPTIONS[kind]} ({len(ds):,} images), because "
          f"{why}. Set COURSE_DATA=real to require the real data.")
    return ds


def _short(exc: BaseException, limit: int = 90) -> str:
    """The gist of an error in one line: its last line (torchvision lists each mirror it tried)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def split(ds: ImageSet, val_fraction: float = 0.1, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Carve a validation set out of a training set: ``(train_ds, val_ds)``, disjoint, seeded.

    Choose models on this validation set, never on the test set.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(len(ds) * val_fraction))
    return ds.subset(order[n_val:].sort().values), ds.subset(order[:n_val].sort().values)


def take(ds: ImageSet, n: int, seed: int = 0) -> ImageSet:
    """A random subset of ``n`` examples (seeded), or ``ds`` itself when it has no more than ``n``."""
    if n >= len(ds):
        return ds
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    return ds.subset(order[:n].sort().values)


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
    """The seed lesson's per-image training pipeline (PIL image -> normalised float ``(C, size, size)``).

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
