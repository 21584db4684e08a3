"""The catalogue of datasets and :func:`load`, which decides what a notebook gets.

``load(name, split)`` gives an :class:`~icdl.data.images.ImageSet` and prints
one line saying what it holds and why. What it holds, in order of preference:

================  ======================================================================
asked for         what ``load`` gives, first that can be had
================  ======================================================================
``cifar10``       CIFAR-10; else real Fashion-MNIST padded to 32x32, grey repeated to
                  three channels; else the photo stand-in
``mnist``         MNIST; else real Fashion-MNIST; else scikit-learn's digits
``fashion_mnist`` Fashion-MNIST; else scikit-learn's digits
``digits``        scikit-learn's 1,797 handwritten digits, upscaled to 28x28
``photos``        the photo stand-in (crops of ten scikit-image photos)
================  ======================================================================

Real datasets are read from local files first (see :mod:`icdl.data.downloads`)
and downloaded only when missing; CI machines, which have no internet, never
try. ``COURSE_DATA`` (or ``load(..., source=...)``) chooses: ``auto`` (the
order above), ``real`` (the dataset asked for or an error) or ``standin``
(skip it and take the first substitute).

Every call returns its own tensors: changing them never changes what the next
``load`` returns.
"""

from __future__ import annotations

import functools
import os

import torch
import torch.nn.functional as F

from ..env import in_ci
from . import downloads, standins
from .downloads import DatasetUnavailable, RealSpec, cache_dir
from .images import ImageSet, channel_stats

SOURCES = ("auto", "real", "standin")

REAL = {
    "mnist": RealSpec(
        "MNIST", "MNIST", "MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "the four *-idx?-ubyte.gz files (or them unzipped) into {root}/MNIST/raw/"),
    "fashion_mnist": RealSpec(
        "Fashion-MNIST", "FashionMNIST", "FashionMNIST",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "the four *-idx?-ubyte.gz files (or them unzipped) into {root}/FashionMNIST/raw/",
        system_dirs=("/usr/share/datasets/fashion-mnist",)),   # Debian: apt-get install dataset-fashion-mnist
    "cifar10": RealSpec(
        "CIFAR-10", "CIFAR10", "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-python.tar.gz into {root}/ (or its unpacked folder cifar-10-batches-py/ there)"),
}

# What stands in for each real dataset, best first. "fashion_mnist" is only ever read
# from local files when it stands in: a download is tried for the dataset asked for alone.
SUBSTITUTES = {
    "cifar10": ("fashion_mnist", "photos"),
    "mnist": ("fashion_mnist", "digits"),
    "fashion_mnist": ("digits",),
}

LOCAL = {
    "digits": "scikit-learn's handwritten digits (1,797 real 8x8 digits, upscaled to 28x28)",
    "photos": "crops of 10 scikit-image photos (training and test crops from disjoint regions)",
}

_UNAVAILABLE: dict = {}  # (name, root, download) -> DatasetUnavailable, so a failure is not retried per split


# --------------------------------------------------------------------------
# Reading each kind of data (cached; load() hands out copies)
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=6)
def _read_real(name: str, split: str, root: str, allow_download: bool):
    """The real dataset ``name`` as (uint8 images, labels, classes, where it was read from)."""
    spec = REAL[name]
    if name == "cifar10":
        try:
            images, labels, classes = downloads.read_torchvision(spec, split, cache_dir())
            return images, labels, classes, str(cache_dir() / spec.folder)
        except RuntimeError:  # torchvision: "Dataset not found or corrupted"
            pass
    else:
        folder = downloads.find_idx(spec)
        if folder is not None:
            try:
                images, labels = downloads.read_idx_split(folder, split)
            except (OSError, EOFError, ValueError) as exc:  # truncated .gz, wrong format, unreadable
                raise DatasetUnavailable(
                    f"the {spec.title} files in {folder} are damaged ({type(exc).__name__}: {exc}); "
                    f"delete them and run again to download fresh copies") from exc
            return images, labels, downloads.class_names(spec), str(folder)
    if not allow_download:
        raise DatasetUnavailable(f"{spec.title} is not on this machine (looked in {cache_dir()}"
                                 + "".join(f" and {d}" for d in spec.system_dirs) + ")")
    downloads.download(spec, cache_dir())
    return _read_real(name, split, root, allow_download)


@functools.lru_cache(maxsize=None)
def _train_stats(kind: str, shape_like: str, root: str) -> tuple:
    """Mean/std of the training split of ``kind`` shaped like ``shape_like`` (``root``: the cache it came from)."""
    return channel_stats(_tensors(kind, shape_like, "train")[0])


def _tensors(kind: str, shape_like: str, split: str, allow_download: bool = False):
    """(images, labels, classes, where) of ``kind`` shaped like ``shape_like``; not copied."""
    if kind == "digits":
        images, labels = standins.digits()[split]
        return images, labels, list(standins.DIGIT_CLASSES), "scikit-learn"
    if kind == "photos":
        images, labels = standins.photos()[split]
        return images, labels, list(standins.PHOTO_CLASSES), "scikit-image"
    images, labels, classes, where = _read_real(kind, split, str(cache_dir()), allow_download)
    if shape_like == "cifar10" and kind != "cifar10":
        images = F.pad(images, (2, 2, 2, 2))  # 28x28 grey -> 32x32 grey; channels are repeated on load
    if kind == "mnist":
        classes = list(standins.DIGIT_CLASSES)  # torchvision says "0 - zero"; plots want "0"
    return images, labels, classes, where


def _describe(kind: str, shape_like: str) -> str:
    if kind in LOCAL:
        return LOCAL[kind]
    if shape_like == "cifar10" and kind != "cifar10":
        return f"{REAL[kind].title} (real images, padded to 32x32, grey repeated to 3 channels)"
    return REAL[kind].title


def _build(name: str, kind: str, split: str, allow_download: bool) -> tuple[ImageSet, str]:
    images, labels, classes, where = _tensors(kind, name, split, allow_download)
    mean, std = _train_stats(kind, name, str(cache_dir()))
    images = images.clone()  # the learner's own copy
    if name == "cifar10" and images.shape[1] == 1:
        images, mean, std = images.repeat(1, 3, 1, 1), mean * 3, std * 3
    ds = ImageSet(images, labels.clone(), classes, name, kind != name, mean, std, _describe(kind, name))
    return ds, where


# --------------------------------------------------------------------------
# load, split, take
# --------------------------------------------------------------------------
def load(name: str, split: str = "train", source: str | None = None) -> ImageSet:
    """Load a dataset as an :class:`ImageSet` and print one line saying what was loaded and why.

    ``name``: "mnist", "fashion_mnist", "cifar10", "digits" or "photos";
    ``split``: "train" or "test" (carve validation from train with :func:`split`).
    ``source``: "auto", "real" or "standin"; None reads ``COURSE_DATA`` (default "auto").
    """
    name = name.lower().replace("-", "_")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if name in LOCAL:
        ds, _ = _build(name, name, split, False)
        print(f"{name} ({split}): {len(ds):,} images, {ds.source}.")
        return ds
    if name not in REAL:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join([*REAL, *LOCAL])}")
    source = (source or os.environ.get("COURSE_DATA") or "auto").strip().lower()
    if source not in SOURCES:
        raise ValueError(f"source (or COURSE_DATA) must be one of {', '.join(SOURCES)}, not {source!r}")

    title = REAL[name].title
    if source == "standin":
        why = "COURSE_DATA=standin"
    else:
        allow_download = not in_ci()  # CI machines have no internet: no doomed download in every notebook
        key = (name, str(cache_dir()), allow_download)
        try:
            if key in _UNAVAILABLE and source == "auto":
                raise _UNAVAILABLE[key]
            ds, where = _build(name, name, split, allow_download)
            print(f"{name} ({split}): {len(ds):,} real images from {where}")
            return ds
        except DatasetUnavailable as exc:
            if source == "real":
                raise
            _UNAVAILABLE[key] = exc
            if "damaged" in str(exc):
                why = str(exc)
            elif allow_download:
                why = f"{title} could not be downloaded: {downloads.friendly_reason(exc)}"
            else:
                why = f"{title} is not on this machine and CI runs do not download"
    for kind in SUBSTITUTES[name]:
        try:
            ds, where = _build(name, kind, split, False)
        except DatasetUnavailable:
            continue
        print(f"{name} ({split}): using {ds.source}, {len(ds):,} images from {where}, because {why}. "
              f"Set COURSE_DATA=real to require {title}.")
        return ds
    raise AssertionError("the last substitute is always available")  # digits and photos ship with packages


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
