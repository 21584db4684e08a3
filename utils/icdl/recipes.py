"""The course's reference recipe for ResNet-18 on CIFAR-10, in one readable place.

The reference recipe (``REFERENCE``; chapter 06 runs it, scaled to its budget,
and the training-craft page ``craft/reference_recipe.md`` walks through it):

* data: RandomCrop(32, padding=4) and horizontal flip, plus ColorJitter,
  RandAugment and RandomErasing in the per-image pipeline;
* optimiser: AdamW (Loshchilov & Hutter, arXiv:1711.05101), lr 1e-3,
  weight decay 0.05;
* schedule: 5 epochs of linear warm-up, then cosine decay (arXiv:1608.03983)
  to zero, stepped every batch, 100 epochs in all;
* loss: cross-entropy with label smoothing 0.1 (Szegedy et al., arXiv:1512.00567);
* gradient clipping at a global norm of 1.0;
* model selection on a validation split carved from the training set; the
  test set is touched once, by the selected model.

Two input pipelines, chosen with ``pipeline=``:

* ``"fast"`` (default): the whole dataset lives on the device as one uint8
  tensor (:class:`icdl.data.DeviceLoader`) and :class:`icdl.augment.BatchAugment`
  crops (padding 4) and flips a whole batch at once on the device. The recipe
  uses only the crop and the flip there: ``BatchAugment`` also has batched
  colour jitter, RandAugment-style operations and random erasing
  (``BatchAugment.reference()`` switches them all on), but they stay off so
  that the chapters' results keep the augmentation they were measured with.
* ``"pil"``: the reference recipe's per-image pipeline, every augmentation
  above applied to one image at a time (:func:`icdl.augment.reference_transforms`,
  torchvision's ``transforms.v2`` on uint8 tensors, through
  :func:`icdl.data.torch_loader`), limited by the CPU (Colab has two cores).
  The name is historical: the images are no longer converted to PIL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from . import augment, data, train


@dataclass(frozen=True)
class Recipe:
    """Every hyperparameter of the recipe in one visible place."""

    epochs: int = 100
    warmup_epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    clip_grad_norm: float = 1.0
    max_steps_per_epoch: int | None = None  # cap for the smoke/quick budgets; None: whole epochs
    eval_batch_size: int = 512

    def scaled(self, **changes) -> "Recipe":
        """A copy with some fields changed: ``REFERENCE.scaled(epochs=3)``."""
        return replace(self, **changes)


# The reference recipe: 100 epochs of the hyperparameters above.
REFERENCE = Recipe()


@dataclass
class RecipeResult:
    history: train.History
    test: dict  # {"loss": float, "acc": float} of the model selected on validation
    seconds: float  # wall time of training plus the test evaluation


def make_train_loader(train_ds: data.ImageSet, recipe: Recipe, device, pipeline: str = "fast",
                      resize=None, seed: int = 0, num_workers: int = 2):
    """The training loader of the chosen pipeline ("fast" on the device, or "pil" per image)."""
    if pipeline == "fast":
        return data.DeviceLoader(train_ds, recipe.batch_size, shuffle=True, device=device,
                                 augment=augment.BatchAugment(crop_padding=4, flip=True),
                                 drop_last=True, seed=seed, resize=resize)
    if pipeline == "pil":
        if resize:
            raise ValueError("the per-image pipeline works at the images' own size; use resize=None")
        transform = augment.reference_transforms(train_ds.mean, train_ds.std, size=train_ds.images.shape[-1])
        return data.torch_loader(train_ds, transform, recipe.batch_size, shuffle=True, num_workers=num_workers)
    raise ValueError(f"pipeline must be 'fast' or 'pil', got {pipeline!r}")


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """AdamW with the recipe's learning rate and (decoupled) weight decay."""
    return torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)


def train_cifar10(model: nn.Module, train_ds: data.ImageSet, val_ds: data.ImageSet, test_ds: data.ImageSet,
                  recipe: Recipe = REFERENCE, *, device=None, pipeline: str = "fast", resize=None,
                  checkpoint: str | Path | None = None, progress: bool = True, seed: int = 0) -> RecipeResult:
    """Train ``model`` with the recipe, select the best epoch on ``val_ds``, report ``test_ds`` once.

    Images (N, 3, H, W) -> logits (N, 10). ``resize=(H, W)`` shrinks images
    (the smoke budget uses it); ``checkpoint`` makes a disconnected Colab
    session resume where it stopped.
    """
    device = device or next(model.parameters()).device
    start = time.perf_counter()
    train_loader = make_train_loader(train_ds, recipe, device, pipeline, resize=resize, seed=seed)
    val_loader = data.DeviceLoader(val_ds, recipe.eval_batch_size, device=device, resize=resize)
    test_loader = data.DeviceLoader(test_ds, recipe.eval_batch_size, device=device, resize=resize)

    steps_per_epoch = len(train_loader)
    if recipe.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, recipe.max_steps_per_epoch)
    optimizer = make_optimizer(model, recipe)
    scheduler = train.warmup_cosine(optimizer, warmup_steps=recipe.warmup_epochs * steps_per_epoch,
                                    total_steps=recipe.epochs * steps_per_epoch)
    history = train.fit(
        model, train_loader, val_loader, epochs=recipe.epochs, optimizer=optimizer,
        loss_fn=nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing),
        scheduler=scheduler, scheduler_step="batch", device=device,
        channels_last=torch.device(device).type == "cuda",  # faster convolutions on tensor cores
        clip_grad_norm=recipe.clip_grad_norm, checkpoint=checkpoint, keep_best=True,
        max_steps_per_epoch=recipe.max_steps_per_epoch, progress=progress,
    )
    # Plain cross-entropy on the test set: label smoothing is a training device, not a metric.
    test = train.evaluate(model, test_loader, device=device)
    return RecipeResult(history=history, test=test, seconds=time.perf_counter() - start)
