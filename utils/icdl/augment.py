"""Data augmentation: the per-image pipeline and the batched, on-device one.

Two ways to distort training images, with the same families of operations:

* **per image** (:func:`train_transforms`, :func:`reference_transforms`):
  torchvision's ``transforms.v2`` applied to one uint8 tensor ``(C, H, W)`` at
  a time, inside a ``DataLoader``'s workers. Simple and complete, but the CPU
  does the work one image after another.
* **per batch** (:class:`BatchAugment` and the functions it chains): a whole
  float batch ``(B, C, H, W)`` (0..1 scale) at once, on whatever device holds
  it. Every image still gets its *own* random parameters (its own crop, flip,
  jitter factors, operations and erased rectangle): the parameters are drawn
  as vectors of ``B`` numbers and applied in vectorised steps, with no Python
  loop over images. ``transforms.v2`` applied to a batch would draw one set
  of parameters for the whole batch, which is why these are written out here.

:func:`mixup` and :func:`cutmix` blend pairs of images *and* their labels, so
they take the labels too and return soft labels ``(B, K)``.

Every batched function takes ``generator=`` (a CPU ``torch.Generator``): the
random numbers are drawn on the CPU from it, so a run with the same seed gives
the same images on every device, and a checkpoint that saves the generator's
state resumes the same random stream.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "RAND_AUGMENT_OPS", "BatchAugment", "color_jitter", "cutmix", "eval_transforms", "gather_crops", "mixup",
    "rand_augment", "random_crop", "random_erasing", "random_flip", "reference_transforms", "train_transforms",
    "trivial_augment",
]


# ==========================================================================
# Per image: torchvision transforms.v2 on uint8 tensors
# ==========================================================================
def train_transforms(mean, std, size: int = 32, padding: int = 4, jitter: float = 0.2,
                     policy: str | None = "randaugment", num_ops: int = 2, magnitude: int = 9,
                     erasing: float = 0.25):
    """A per-image training pipeline: uint8 tensor ``(C, H, W)`` -> normalised float ``(C, size, size)``.

    Random crop after ``padding`` pixels of zero padding, horizontal flip,
    colour jitter (brightness, contrast and saturation factors in
    ``[1 - jitter, 1 + jitter]``), an automatic augmentation ``policy``
    (``"randaugment"``: ``num_ops`` operations of strength ``magnitude`` out
    of 30, Cubuk et al. 2020; ``"trivialaugment"``: one operation of random
    strength, Muller & Hutter 2021; ``None``: neither), then conversion to
    float, normalisation, and random erasing with probability ``erasing``
    (Zhong et al. 2020). The image stays a tensor throughout: no PIL.
    """
    from torchvision.transforms import v2

    steps = [v2.RandomCrop(size, padding=padding), v2.RandomHorizontalFlip()]
    if jitter:
        steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
    if policy == "randaugment":
        steps.append(v2.RandAugment(num_ops=num_ops, magnitude=magnitude))
    elif policy == "trivialaugment":
        steps.append(v2.TrivialAugmentWide())
    elif policy is not None:
        raise ValueError(f"policy must be 'randaugment', 'trivialaugment' or None, got {policy!r}")
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    if erasing:
        steps.append(v2.RandomErasing(p=erasing))
    return v2.Compose(steps)


def reference_transforms(mean, std, size: int = 32):
    """The reference recipe's per-image pipeline, the one the batched path is measured against.

    RandomCrop(size, padding=4), horizontal flip, ColorJitter(0.2, 0.2, 0.2),
    RandAugment (2 operations, magnitude 9), normalisation and RandomErasing
    (p = 0.25): :func:`train_transforms` with its defaults.
    """
    return train_transforms(mean, std, size=size)


def eval_transforms(mean, std):
    """uint8 tensor ``(C, H, W)`` -> normalised float ``(C, H, W)``, no randomness."""
    from torchvision.transforms import v2

    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


# ==========================================================================
# Per batch: geometry
# ==========================================================================
def _rand(b: int, generator) -> torch.Tensor:
    """``b`` uniform numbers in [0, 1), drawn on the CPU."""
    return torch.rand(b, generator=generator)


def gather_crops(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int,
                 flip: torch.Tensor | None = None) -> torch.Tensor:
    """One ``height x width`` window per image, all at once: ``(B, C, H, W)`` -> ``(B, C, height, width)``.

    ``top``/``left`` (B,) are the windows' corners. ``flip`` (B,) bool mirrors a
    window left-right by reading its columns backwards. One ``gather`` copies
    every window at once: no Python loop over images.
    """
    b, c, full_h, full_w = images.shape
    dev = images.device
    rows = top.to(dev).view(b, 1) + torch.arange(height, device=dev)          # (B, height)
    cols = torch.arange(width, device=dev).expand(b, width)                   # (B, width)
    if flip is not None:
        cols = torch.where(flip.to(dev).view(b, 1), cols.flip(1), cols)
    cols = left.to(dev).view(b, 1) + cols
    # Each output pixel's position in the flattened image, the same for every channel.
    index = (rows.view(b, height, 1) * full_w + cols.view(b, 1, width)).view(b, 1, height * width)
    flat = images.reshape(b, c, full_h * full_w)
    return flat.gather(2, index.expand(b, c, height * width)).view(b, c, height, width)


def random_crop(x: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None,
                flip: torch.Tensor | None = None) -> torch.Tensor:
    """Pad by ``padding`` black pixels and cut a random H x W window back out, per image.

    ``(B, C, H, W)`` -> ``(B, C, H, W)``, like torchvision's ``RandomCrop(size,
    padding)``. Each of the ``(2 * padding + 1) ** 2`` offsets is equally
    likely. ``flip`` (B,) bool, optional, mirrors the chosen windows in the same
    gather (see :func:`gather_crops`).
    """
    b, _, h, w = x.shape
    if padding:
        x = F.pad(x, (padding, padding, padding, padding))           # one padded tensor for the whole batch
    top = (_rand(b, generator) * (2 * padding + 1)).long()
    left = (_rand(b, generator) * (2 * padding + 1)).long()
    return gather_crops(x, top, left, h, w, flip)


def random_flip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``: ``(B, C, H, W)`` -> same."""
    flips = (_rand(len(x), generator) < p).to(x.device).view(-1, 1, 1, 1)
    return torch.where(flips, x.flip(-1), x)


# ==========================================================================
# Per batch: colour and erasing
# ==========================================================================
def _factors(strength: float, b: int, generator) -> torch.Tensor:
    """``b`` factors uniform in ``[1 - strength, 1 + strength]``, shaped ``(B, 1, 1, 1)``."""
    return (1 - strength + 2 * strength * _rand(b, generator)).view(b, 1, 1, 1)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Luminance ``(B, 1, H, W)`` of RGB images (ITU-R 601 weights, as torchvision uses)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def color_jitter(x: torch.Tensor, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness, contrast and saturation factors per image (like ``ColorJitter``).

    ``(B, C, H, W)`` (0..1) -> same. Each factor is uniform in
    ``[1 - strength, 1 + strength]``: brightness multiplies the pixels;
    contrast stretches them around the image's mean value; saturation
    stretches the colours around each pixel's grey (RGB only; a grey image has
    no saturation to change). The result is clipped to 0..1 once, at the end.
    """
    b, original = len(x), x
    if brightness:
        x = x * _factors(brightness, b, generator).to(x.device)
    if contrast:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean).mul_(_factors(contrast, b, generator).to(x.device)).add_(mean)
    if saturation:
        factor = _factors(saturation, b, generator).to(x.device)
        if x.shape[1] == 3:
            grey = _grey(x)
            x = (x - grey).mul_(factor).add_(grey)
    return x.clamp(0, 1) if x is original else x.clamp_(0, 1)   # in place on our own copy only


def random_erasing(x: torch.Tensor, p: float = 0.25, generator: torch.Generator | None = None) -> torch.Tensor:
    """With probability ``p`` per image, blank one random rectangle (like ``RandomErasing``).

    ``(B, C, H, W)`` -> same. The rectangle covers 2%-33% of the image, with
    an aspect ratio between 0.3 and 3.3 (uniform on a log scale), and is
    filled with the batch's mean colour, which is what erasing to 0 after
    normalisation amounts to.
    """
    b, _, h, w = x.shape
    area = h * w * (0.02 + 0.31 * _rand(b, generator))
    aspect = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * _rand(b, generator))
    eh = (area * aspect).sqrt().round().clamp(1, h)
    ew = (area / aspect).sqrt().round().clamp(1, w)
    eh = torch.where(_rand(b, generator) < p, eh, torch.zeros_like(eh))   # height 0 = not erased
    top = (_rand(b, generator) * (h - eh + 1)).floor()
    left = (_rand(b, generator) * (w - ew + 1)).floor()
    inside = _box_mask(top, top + eh, left, left + ew, h, w)             # (B, H, W)
    fill = x.mean(dim=(0, 2, 3), keepdim=True)
    return torch.where(inside.unsqueeze(1).to(x.device), fill, x)


def _box_mask(top, bottom, left, right, h: int, w: int) -> torch.Tensor:
    """``(B, H, W)`` bool, True inside each image's box ``[top, bottom) x [left, right)``."""
    b = len(top)
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    return ((rows >= top.view(b, 1, 1)) & (rows < bottom.view(b, 1, 1))
            & (cols >= left.view(b, 1, 1)) & (cols < right.view(b, 1, 1)))


# ==========================================================================
# Per batch: RandAugment-style operations, one random choice per image
# ==========================================================================
# Each operation maps images and a signed strength s in [-1, 1] (n,) to images.
# The strongest setting (|s| = 1) is RandAugment's maximum: factors 1 +- 0.9,
# 30 degrees of rotation, shear 0.3, a shift of 150/331 of the image side.
def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``b + factor * (a - b)``, clipped: factor 0 gives ``b``, 1 gives ``a``, above 1 goes beyond ``a``."""
    return (b + factor.view(-1, 1, 1, 1) * (a - b)).clamp(0, 1)


def _brightness(x, s):
    return _blend(x, torch.zeros_like(x), 1 + 0.9 * s)


def _color(x, s):
    return _blend(x, _grey(x), 1 + 0.9 * s) if x.shape[1] == 3 else x


def _contrast(x, s):
    grey = _grey(x) if x.shape[1] == 3 else x
    return _blend(x, grey.mean(dim=(1, 2, 3), keepdim=True).expand_as(x), 1 + 0.9 * s)


def _sharpness(x, s):
    # PIL's smoothing filter, [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13, as a 3x3 box sum plus 4 times the centre.
    rows = x[..., :-2] + x[..., 1:-1] + x[..., 2:]
    box = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]
    smooth = x.clone()                                                 # the border stays as it is
    smooth[..., 1:-1, 1:-1] = (box + 4 * x[..., 1:-1, 1:-1]) / 13
    return _blend(x, smooth, 1 + 0.9 * s)


def _posterize(x, s):
    keep = 8 - (4 * s.abs()).round()                                   # bits kept: 8 (none lost) to 4
    step = (2 ** (8 - keep)).view(-1, 1, 1, 1)
    return torch.floor((x * 255).round() / step) * step / 255


def _solarize(x, s):
    threshold = (1 - s.abs()).view(-1, 1, 1, 1)                        # strength 0: nothing is inverted
    return torch.where(x >= threshold, 1 - x, x)


def _autocontrast(x, s):
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    flat = high <= low
    return torch.where(flat, x, (x - low) / torch.where(flat, torch.ones_like(high), high - low))


def _affine(x, theta):
    """Resample each image through its own 2 x 3 matrix (output -> input, normalised coordinates).

    Nearest pixel, zeros outside the image: what torchvision's RandAugment does.
    """
    n, _, h, w = x.shape
    ys = ((torch.arange(h, device=x.device) + 0.5) * 2 / h - 1).view(1, h, 1)   # pixel centres in [-1, 1]
    xs = ((torch.arange(w, device=x.device) + 0.5) * 2 / w - 1).view(1, 1, w)
    t = theta.view(n, 6, 1, 1).unbind(1)
    grid = torch.empty(n, h, w, 2, device=x.device)                   # each image's own sampling points
    grid[..., 0] = t[0] * xs + t[1] * ys + t[2]
    grid[..., 1] = t[3] * xs + t[4] * ys + t[5]
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _geometry(x, kind, s):
    """Rotate, shear or shift each image (``kind`` (n,) indexes ``_GEOMETRIC_OPS``) in one resampling."""
    _, _, h, w = x.shape
    rotate, shear_x, shear_y, shift_x, shift_y = (kind == k for k in range(len(_GEOMETRIC_OPS)))
    angle = math.radians(30) * s
    one, zero = torch.ones_like(s), torch.zeros_like(s)
    cos, sin = torch.where(rotate, angle.cos(), one), torch.where(rotate, angle.sin(), zero)
    shift = 2 * 150 / 331 * s                                          # normalised coordinates span 2
    theta = torch.stack([
        torch.stack([cos, torch.where(shear_x, 0.3 * s, -sin) * h / w, torch.where(shift_x, shift, zero)], 1),
        torch.stack([torch.where(shear_y, 0.3 * s, sin) * w / h, cos, torch.where(shift_y, shift, zero)], 1),
    ], 1)                                                              # (n, 2, 3)
    return _affine(x, theta)


_COLOUR_OPS = {"brightness": _brightness, "color": _color, "contrast": _contrast, "sharpness": _sharpness,
               "posterize": _posterize, "solarize": _solarize, "autocontrast": _autocontrast}
_GEOMETRIC_OPS = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
# The operations the batched RandAugment chooses from (torchvision's list, less histogram equalisation).
RAND_AUGMENT_OPS = ("identity", *_COLOUR_OPS, *_GEOMETRIC_OPS)


def _apply_ops(x: torch.Tensor, op: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Image ``i`` gets operation ``RAND_AUGMENT_OPS[op[i]]`` with signed strength ``strength[i]``.

    The batch is sorted by operation, so that each operation's images are one
    slice: each operation runs once, on its slice; all geometric operations
    share one resampling; and one gather puts the images back in order.
    """
    order = torch.argsort(op, stable=True)
    counts = torch.bincount(op, minlength=len(RAND_AUGMENT_OPS)).tolist()
    order = order.to(x.device)
    xs, ss, ops = x.index_select(0, order), strength.to(x.device)[order], op.to(x.device)[order]
    out = torch.empty_like(xs)
    start = counts[0]
    out[:start] = xs[:start]                                           # the identity slice
    for name, count in zip(_COLOUR_OPS, counts[1:]):
        if count:
            out[start:start + count] = _COLOUR_OPS[name](xs[start:start + count], ss[start:start + count])
            start += count
    if start < len(x):                                                 # every geometric operation, together
        out[start:] = _geometry(xs[start:], ops[start:] - (1 + len(_COLOUR_OPS)), ss[start:])
    return out.index_select(0, torch.argsort(order))


def rand_augment(x: torch.Tensor, num_ops: int = 2, magnitude: int | None = 9, num_bins: int = 31,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """RandAugment in batches: ``num_ops`` rounds, each image drawing its own operation every round.

    ``(B, C, H, W)`` (0..1) -> same. The operations are :data:`RAND_AUGMENT_OPS`,
    equally likely; the strength is ``magnitude`` out of ``num_bins - 1`` (9
    of 30 by default, as in torchvision), with a random sign per image for the
    operations that have a direction. ``magnitude=None`` draws the strength
    per image too, uniformly over the bins (TrivialAugment's rule).
    """
    b = len(x)
    for _ in range(num_ops):
        op = torch.randint(len(RAND_AUGMENT_OPS), (b,), generator=generator)
        if magnitude is None:
            level = torch.randint(num_bins, (b,), generator=generator) / (num_bins - 1)
        else:
            level = torch.full((b,), magnitude / (num_bins - 1))
        sign = torch.where(_rand(b, generator) < 0.5, -1.0, 1.0)
        x = _apply_ops(x, op, level * sign)
    return x


def trivial_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """TrivialAugment in batches: one operation of random strength per image (Muller & Hutter 2021)."""
    return rand_augment(x, num_ops=1, magnitude=None, generator=generator)


# ==========================================================================
# Per batch: the whole chain, for DeviceLoader
# ==========================================================================
class BatchAugment:
    """Random augmentation of a whole float batch ``(B, C, H, W)`` (0..1 scale) on its own device.

    In this order, each image with its own random parameters:

    * ``crop_padding``: pad by this many black pixels and cut a random H x W
      window back out (torchvision's ``RandomCrop(size, padding)``);
    * ``flip``: mirror left-right with probability 0.5;
    * ``brightness``/``contrast``/``saturation`` (off by default): factors
      in ``[1 - strength, 1 + strength]`` (like ``ColorJitter``, see
      :func:`color_jitter`);
    * ``rand_augment`` (off by default): this many RandAugment operations of
      strength ``magnitude`` (see :func:`rand_augment`);
    * ``erasing`` (off by default): with this probability blank one rectangle
      of 2%-33% of the image (like ``RandomErasing``, see :func:`random_erasing`).

    Random numbers come from ``generator`` (CPU) when given, so a run is
    repeatable on every device. :meth:`reference` gives the batched
    counterpart of :func:`reference_transforms`.
    """

    def __init__(self, crop_padding: int = 4, flip: bool = True, brightness: float = 0.0,
                 contrast: float = 0.0, erasing: float = 0.0, saturation: float = 0.0,
                 rand_augment: int = 0, magnitude: int | None = 9):
        self.crop_padding, self.flip = crop_padding, flip
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self.rand_augment, self.magnitude, self.erasing = rand_augment, magnitude, erasing

    @classmethod
    def reference(cls) -> BatchAugment:
        """Every family of the reference per-image pipeline, in batches."""
        return cls(crop_padding=4, flip=True, brightness=0.2, contrast=0.2, saturation=0.2,
                   rand_augment=2, magnitude=9, erasing=0.25)

    def __repr__(self) -> str:
        extra = "".join(f", {name}={getattr(self, name)}" for name in ("saturation", "rand_augment")
                        if getattr(self, name))
        if self.rand_augment:
            extra += f", magnitude={self.magnitude}"
        return (f"BatchAugment(crop_padding={self.crop_padding}, flip={self.flip}, brightness={self.brightness}, "
                f"contrast={self.contrast}, erasing={self.erasing}{extra})")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(B, C, H, W)`` float -> ``(B, C, H, W)`` float, same device."""
        if self.crop_padding or self.flip:
            # The flip is decided first so that the crop and the flip are one gather.
            flips = _rand(len(x), generator) < 0.5 if self.flip else None
            x = random_crop(x, self.crop_padding, generator=generator, flip=flips)
        if self.brightness or self.contrast or self.saturation:
            x = color_jitter(x, self.brightness, self.contrast, self.saturation, generator=generator)
        if self.rand_augment:
            x = rand_augment(x, self.rand_augment, self.magnitude, generator=generator)
        if self.erasing:
            x = random_erasing(x, self.erasing, generator=generator)
        return x


# ==========================================================================
# Per batch: mixing images and labels
# ==========================================================================
def _soft_labels(y: torch.Tensor, num_classes: int | None) -> torch.Tensor:
    """Class indices ``(B,)`` -> one-hot ``(B, K)`` floats; soft labels ``(B, K)`` pass through."""
    if y.ndim == 2:
        return y.float()
    if num_classes is None:
        raise ValueError("labels given as class indices need num_classes=")
    return F.one_hot(y, num_classes).float()


def _beta(alpha: float, b: int, generator) -> torch.Tensor:
    """``b`` draws from Beta(alpha, alpha).

    torch's Beta distribution cannot take a generator, so a seed drawn from
    ``generator`` seeds numpy's Beta sampler: the stream stays ``generator``'s.
    """
    import numpy as np

    seed = int(torch.randint(2**62, (1,), generator=generator))
    return torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, size=b)).float()


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float = 0.2, num_classes: int | None = None,
          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al. 2018): blend each image with a random partner from the batch.

    ``x`` ``(B, C, H, W)``, ``y`` class indices ``(B,)`` (give ``num_classes``)
    or soft labels ``(B, K)`` -> mixed images ``(B, C, H, W)`` and soft labels
    ``(B, K)``. Image ``i`` becomes ``lam_i * x_i + (1 - lam_i) * x_j`` and its
    label ``lam_i * y_i + (1 - lam_i) * y_j``, with ``lam_i ~ Beta(alpha, alpha)``
    drawn per image and ``j`` a random permutation of the batch.
    ``nn.CrossEntropyLoss`` accepts such soft labels as targets.
    """
    b = len(x)
    soft = _soft_labels(y, num_classes).to(x.device)
    lam = _beta(alpha, b, generator).to(x.device)
    partner = torch.randperm(b, generator=generator).to(x.device)
    mixed = lam.view(b, 1, 1, 1) * x + (1 - lam.view(b, 1, 1, 1)) * x[partner]
    return mixed, lam.view(b, 1) * soft + (1 - lam.view(b, 1)) * soft[partner]


def cutmix(x: torch.Tensor, y: torch.Tensor, alpha: float = 1.0, num_classes: int | None = None,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix (Yun et al. 2019): paste a rectangle of a random partner image into each image.

    Shapes as in :func:`mixup`. Per image, ``lam ~ Beta(alpha, alpha)`` sets a
    box of about ``(1 - lam)`` of the image's area around a uniformly drawn
    centre; boxes that stick out are cut at the border, so the label weights
    are computed from the area actually pasted: the partner's weight is the
    pasted share of the pixels, exactly.
    """
    b, _, h, w = x.shape
    soft = _soft_labels(y, num_classes).to(x.device)
    side = (1 - _beta(alpha, b, generator)).sqrt()                     # box side as a share of the image side
    box_h, box_w = (side * h).round(), (side * w).round()
    centre_y = (_rand(b, generator) * h).floor()
    centre_x = (_rand(b, generator) * w).floor()
    top, left = (centre_y - box_h // 2).clamp(0, h), (centre_x - box_w // 2).clamp(0, w)
    bottom, right = (centre_y - box_h // 2 + box_h).clamp(0, h), (centre_x - box_w // 2 + box_w).clamp(0, w)
    partner = torch.randperm(b, generator=generator).to(x.device)
    inside = _box_mask(top, bottom, left, right, h, w).to(x.device)    # (B, H, W)
    mixed = torch.where(inside.unsqueeze(1), x[partner], x)
    pasted = inside.flatten(1).float().mean(1).view(b, 1)              # the partner's share of the pixels
    return mixed, (1 - pasted) * soft + pasted * soft[partner]
