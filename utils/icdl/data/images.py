"""The image set: a whole dataset held as tensors, and operations on such tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..augment import gather_crops  # noqa: F401  (re-exported: the crop primitive lives with the augmentations)


@dataclass
class ImageSet:
    """A dataset held as tensors on the CPU.

    ``images``: uint8 ``(N, C, H, W)``; ``labels``: int64 ``(N,)``;
    ``classes``: the class names of the images actually held;
    ``name``: the dataset that was asked for ("cifar10", ...);
    ``standin``: True when the images are not that dataset but a substitute;
    ``mean``/``std``: per-channel, on the 0..1 scale, of the *training* split
    (so train, validation and test are normalised alike);
    ``source``: what the images really are, in words, for printing and for the
    book's text ("CIFAR-10", "Fashion-MNIST (real images, padded to 32x32, ...)").
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list
    name: str
    standin: bool
    mean: tuple
    std: tuple
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        """``ds[i]`` -> (uint8 image ``(C, H, W)``, int label)."""
        return self.images[i], int(self.labels[i])

    def subset(self, indices) -> "ImageSet":
        """The examples at ``indices``, with the same classes and normalisation."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        return ImageSet(self.images[indices], self.labels[indices], self.classes, self.name,
                        self.standin, self.mean, self.std, self.source)

    def __repr__(self) -> str:
        return (f"ImageSet({self.name!r}: {len(self):,} images of {self.source or self.name}, "
                f"shape {tuple(self.images.shape[1:])}, {len(self.classes)} classes)")


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


def near_duplicate_share(test_images: torch.Tensor, train_images: torch.Tensor, threshold: float = 0.99,
                         chunk: int = 1024) -> float:
    """Share of test images that have a training image whose pixels correlate above ``threshold``.

    Pearson correlation of the flattened pixels, so a copy that is only
    brighter or has more contrast still counts as a copy. A test set where this
    share is high measures memory, not generalisation.
    """
    def unit_rows(x):
        x = x.reshape(len(x), -1).float()
        x = x - x.mean(1, keepdim=True)
        return x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)

    train = unit_rows(train_images)
    hits = 0
    for start in range(0, len(test_images), chunk):
        best = (unit_rows(test_images[start:start + chunk]) @ train.T).max(1).values
        hits += (best > threshold).sum().item()
    return hits / len(test_images)
