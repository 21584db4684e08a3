"""Datasets and fast loaders for the course.

``load(name, split)`` gives an :class:`ImageSet`: the whole dataset as one uint8
tensor ``(N, C, H, W)`` with int64 labels, class names, the per-channel
mean/std of its training set, and ``source``, what the images really are.

The package has one module per job; the arrows are the only imports among them:

* :mod:`~icdl.data.images`: the ImageSet and operations on image tensors
  (``gather_crops`` comes from :mod:`icdl.augment`);
* :mod:`~icdl.data.standins` -> images: offline stand-ins made of real images
  shipped in packages (scikit-learn digits, scikit-image photo crops);
* :mod:`~icdl.data.downloads`: local copies of the real datasets, and safe
  downloads;
* :mod:`~icdl.data.catalogue` -> images, standins, downloads: the datasets,
  what substitutes for what, and ``load``/``split``/``take``;
* :mod:`~icdl.data.loaders` -> images: ``DeviceLoader`` and the classic
  per-image pipeline.

The augmentations are a module of their own, :mod:`icdl.augment`, which uses
nothing from this package; ``BatchAugment``, ``pil_train_transforms`` and
``pil_eval_transforms`` are also reachable from here, under the names the
chapters use.
"""

from .catalogue import LOCAL, REAL, SOURCES, SUBSTITUTES, load, split, take
from .downloads import DatasetUnavailable, cache_dir
from .images import ImageSet, channel_stats, gather_crops, near_duplicate_share
from .loaders import BatchAugment, DeviceLoader, pil_eval_transforms, pil_train_transforms, torch_loader

__all__ = [
    "LOCAL", "REAL", "SOURCES", "SUBSTITUTES", "BatchAugment", "DatasetUnavailable", "DeviceLoader", "ImageSet",
    "cache_dir", "channel_stats", "gather_crops", "load", "near_duplicate_share", "pil_eval_transforms",
    "pil_train_transforms", "split", "take", "torch_loader",
]
