"""Transfer learning: freezing a backbone, batch norm held in eval mode, cached features.

* :func:`keep_bn_eval`: from then on ``model.train()`` leaves every batch-norm layer in
  eval mode, so training neither changes its running statistics nor normalises with
  each batch's own statistics (``fit`` calls ``model.train()`` every epoch, which
  would otherwise switch them back);
* :func:`freeze`: ``requires_grad=False`` for every parameter outside ``trainable``,
  and the batch norms held in eval mode: the frozen part computes exactly what it
  computed before training;
* :func:`pooled_features`: the pooled features ``(N, num_features)`` of every image of
  a loader, computed once in eval mode (the cache a linear probe trains on).

Typical use::

    model = efficientnet.efficientnet_lite0(pretrained=True, num_classes=10)
    transfer.freeze(model, trainable=("classifier",))   # a linear probe
    count_params(model, trainable_only=True)             # the head's 12,810
"""

from __future__ import annotations

import types

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batch_norms(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every batch-norm layer of ``model`` (1d, 2d, 3d and SyncBatchNorm)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, _BatchNorm)]


def _train_keeping_bn_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    nn.Module.train(self, mode)  # every submodule to ``mode`` ...
    for _, m in batch_norms(self):
        m.eval()                 # ... except the batch norms
    return self


def keep_bn_eval(model: nn.Module) -> nn.Module:
    """Hold every batch-norm layer of ``model`` in eval mode from now on; returns ``model``.

    ``model.train()`` still switches dropout and stochastic depth on, but the batch
    norms keep normalising with their stored running statistics, and those are never
    updated. Their affine weights (``weight``, ``bias``) still train unless frozen.
    """
    model.train = types.MethodType(_train_keeping_bn_eval, model)  # this one model only, not its class
    return model.train(model.training)


def bn_held_in_eval(model: nn.Module) -> bool:
    """True when ``model.train()`` leaves its batch norms in eval mode (see :func:`keep_bn_eval`)."""
    return getattr(model.train, "__func__", None) is _train_keeping_bn_eval


def freeze(model: nn.Module, trainable=("classifier",)) -> nn.Module:
    """Freeze every parameter whose name does not start with one of ``trainable``; returns ``model``.

    ``trainable`` holds module names (``"classifier"``, ``"features.7"``): a parameter
    trains when its name is one of them or starts with one of them followed by a dot.
    The batch norms are held in eval mode (:func:`keep_bn_eval`), so the frozen layers'
    running statistics stay what they were.
    """
    prefixes = tuple(trainable)
    for name, p in model.named_parameters():
        p.requires_grad_(any(name == t or name.startswith(t + ".") for t in prefixes))
    return keep_bn_eval(model)


@torch.no_grad()
def pooled_features(model: nn.Module, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features (N, num_features), labels (N,))`` of every batch of ``loader``, on the CPU.

    ``model`` is a course network (``forward_features``, then global average pooling),
    run in eval mode and returned to its previous mode.
    """
    was_training = model.training
    model.eval()
    feats, labels = [], []
    try:
        for x, y in loader:
            feats.append(model.forward_features(x).mean(dim=(2, 3)).float().cpu())
            labels.append(y.cpu())
    finally:
        model.train(was_training)
    return torch.cat(feats), torch.cat(labels)
