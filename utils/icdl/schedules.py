"""Two pieces of a training recipe that torch does not ship: a learning-rate range test and
parameter groups that leave norms and biases out of weight decay.

* :func:`lr_range_test`: train for a few steps while the learning rate grows
  exponentially from ``start_lr`` to ``end_lr``, and record the loss at every step
  (Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
  arXiv:1506.01186). The model is restored afterwards: the test only looks.
* :func:`suggest_lr`: one common reading of that curve, a learning rate ten times
  below the one where the smoothed loss was lowest.
* :func:`decay_groups`: two parameter groups for an optimizer, weight decay on the
  weights of convolutions and linear layers, none on biases and on the weights of
  normalisation layers (batch, group and layer norm).

The schedules themselves come from torch (``torch.optim.lr_scheduler``: ``StepLR``,
``OneCycleLR``, ``ExponentialLR``) and from :func:`icdl.train.warmup_cosine`.

Typical use::

    found = schedules.lr_range_test(model, train_loader, steps=100)
    lr = schedules.suggest_lr(found["lrs"], found["smoothed"])
    optimizer = torch.optim.AdamW(schedules.decay_groups(model, weight_decay=0.05), lr=lr)
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

NORM_LAYERS = (_NormBase, nn.GroupNorm, nn.LayerNorm)  # batch and instance norms share _NormBase


def lr_range_test(model: nn.Module, loader, *, start_lr: float = 1e-6, end_lr: float = 1.0, steps: int = 100,
                  optimizer=None, loss_fn=None, beta: float = 0.9, diverge: float = 4.0, device=None) -> dict:
    """Loss against learning rate, for ``steps`` steps of exponentially growing lr; the model is left unchanged.

    ``optimizer`` is a function ``params -> torch.optim.Optimizer`` (default AdamW
    without weight decay); its lr is overwritten. Step ``i`` (from 0) trains with
    ``start_lr * (end_lr / start_lr) ** (i / (steps - 1))`` (torch's ``ExponentialLR``).
    The loss is smoothed with an exponential moving average (``beta``, bias-corrected);
    the test stops early once the smoothed loss exceeds ``diverge`` times its lowest
    value. ``loader`` yields ``(x, y)`` batches and is restarted when it runs out.

    Returns ``{"lrs", "losses", "smoothed"}`` (lists of floats, one per step taken).
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    param = next(model.parameters())
    device = torch.device(device) if device is not None else param.device
    saved = copy.deepcopy(model.state_dict())
    was_training = model.training
    make = optimizer or (lambda params: torch.optim.AdamW(params, lr=start_lr, weight_decay=0.0))
    opt = make(model.parameters())
    for group in opt.param_groups:
        group["lr"] = start_lr
    grow = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=(end_lr / start_lr) ** (1 / (steps - 1)))
    lrs, losses, smoothed = [], [], []
    average, best = 0.0, math.inf
    model.train()
    batches = iter(loader)
    try:
        for step in range(steps):
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(loader)
                x, y = next(batches)
            x, y = x.to(device), y.to(device)
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            grow.step()
            value = loss.item()
            losses.append(value)
            average = beta * average + (1 - beta) * value
            smooth = average / (1 - beta ** (step + 1))  # bias correction: the average starts at 0
            smoothed.append(smooth)
            best = min(best, smooth)
            if not math.isfinite(smooth) or smooth > diverge * best:
                break
    finally:
        model.load_state_dict(saved)
        model.train(was_training)
    return {"lrs": lrs, "losses": losses, "smoothed": smoothed}


def suggest_lr(lrs, smoothed, factor: float = 10.0) -> float:
    """The learning rate at the lowest smoothed loss, divided by ``factor``.

    At the minimum the loss is still falling fastest just before it turns; a
    rate a few times smaller trains stably for a whole run. This is a rule of
    thumb for reading the curve, not a law: always look at the plot too.
    """
    lrs, smoothed = list(lrs), list(smoothed)
    if not lrs or len(lrs) != len(smoothed):
        raise ValueError(f"need one smoothed loss per learning rate, got {len(lrs)} and {len(smoothed)}")
    finite = [(s, lr) for s, lr in zip(smoothed, lrs) if math.isfinite(s)]
    if not finite:
        raise ValueError("every smoothed loss is NaN or infinite")
    return min(finite)[1] / factor


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """``[{"params": decayed, "weight_decay": weight_decay}, {"params": not_decayed, "weight_decay": 0.0}]``.

    Not decayed: every bias, and every parameter of a normalisation layer
    (``BatchNorm*``, ``GroupNorm``, ``LayerNorm`` and their subclasses, such as
    ``LayerNorm2d``). Their scale and shift set the size of a normalised signal;
    pulling them towards 0 fights the normalisation instead of regularising.
    Parameters with ``requires_grad=False`` are in neither group.
    """
    decayed, not_decayed, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:  # a shared parameter goes into one group only
                continue
            seen.add(id(p))
            if isinstance(module, NORM_LAYERS) or name == "bias":
                not_decayed.append(p)
            else:
                decayed.append(p)
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": not_decayed, "weight_decay": 0.0}]
