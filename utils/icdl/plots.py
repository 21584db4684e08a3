"""Figures for the course: image grids, learning curves, confusion matrices,
reliability diagrams, misclassified examples, convolution filters and feature maps.

Every function returns a matplotlib ``Figure``. It shows once when the call is
the last line of a notebook cell (or with ``display(fig)``); save it with
``fig.savefig(...)``. The figure is closed in pyplot before it is returned:
an open one would show twice in Jupyter (once as the cell's value, once when
the cell ends) and would count towards pyplot's "too many open figures" limit.

Images are ``(N, C, H, W)`` tensors or arrays, with 1 channel (shown in gray)
or 3 (RGB). ``uint8`` images are shown as they are; float images are first
un-normalised with ``mean`` and ``std`` if given (the per-channel values the
loader normalised with), then clipped to 0..1.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

CELL_INCHES = 1.6  # size of one image in a grid
MAX_FILTERS = 64  # show_filters draws at most this many filters


# ==========================================================================
# Small pieces
# ==========================================================================
def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    return np.asarray(x)


def _displayable(images, mean=None, std=None) -> np.ndarray:
    """``(N, C, H, W)`` uint8 or float -> ``(N, H, W, C)`` floats in 0..1."""
    images = _numpy(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"Expected images of shape (N, C, H, W) with C = 1 or 3, got shape {images.shape}. "
                         f"For one image x of shape (C, H, W), pass x[None].")
    if images.dtype == np.uint8:
        out = images.astype(np.float32) / 255.0
    else:
        out = images.astype(np.float32)
        if mean is not None and std is not None:  # undo Normalize: x * std + mean, per channel
            std = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
            out = out * std + np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    return np.clip(out, 0.0, 1.0).transpose(0, 2, 3, 1)


def _imshow(ax, image: np.ndarray, **kwargs) -> None:
    """Show one ``(H, W, C)`` image: gray for one channel, colour for three."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap=kwargs.pop("cmap", "gray"), vmin=kwargs.pop("vmin", 0),
                  vmax=kwargs.pop("vmax", 1), **kwargs)
    else:
        ax.imshow(image, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])


def _grid(n: int, ncols: int, cell: float = CELL_INCHES, extra_height: float = 0.6):
    """A figure with exactly ``n`` axes laid out in rows of ``ncols``."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + extra_height), squeeze=False)
    axes = axes.ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)  # so len(fig.axes) == n
    return fig, list(axes[:n])


def _finish(fig, title: str | None = None):
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)  # see the module docstring: shown once, by the caller
    return fig


def _name(classes, index: int) -> str:
    return str(classes[index]) if classes is not None else str(index)


def _image_grid(images, titles, colors=None, ncols=8, mean=None, std=None, title=None):
    images = _displayable(images, mean, std)
    if len(images) == 0:
        raise ValueError("There are no images to show.")
    # Widen the cells for long titles (about 0.06 inch per character at font size 8).
    cell = max(CELL_INCHES, 0.065 * max((len(t) for t in titles or []), default=0))
    fig, axes = _grid(len(images), ncols, cell=cell)
    for i, ax in enumerate(axes):
        _imshow(ax, images[i])
        if titles is not None:
            short = max(len(t) for t in titles) <= 12  # class names: larger text stays readable when scaled down
            ax.set_title(titles[i], fontsize=12 if short else 8, color=colors[i] if colors else "black")
    return _finish(fig, title)


# ==========================================================================
# Images
# ==========================================================================
def show_images(images, labels=None, classes=None, preds=None, ncols=8, mean=None, std=None, title=None):
    """A grid of images ``(N, C, H, W)``, each titled with its class name.

    With ``preds`` too, each title reads ``true X / pred Y``, red when they differ.
    """
    titles, colors = None, None
    if labels is not None:
        labels = _numpy(labels).astype(int)
        if preds is None:
            titles = [_name(classes, y) for y in labels]
        else:
            preds = _numpy(preds).astype(int)
            titles = [f"true {_name(classes, y)} / pred {_name(classes, p)}" for y, p in zip(labels, preds)]
            colors = ["black" if y == p else "red" for y, p in zip(labels, preds)]
    elif preds is not None:
        titles = [f"pred {_name(classes, p)}" for p in _numpy(preds).astype(int)]
    return _image_grid(images, titles, colors, ncols, mean, std, title)


def show_misclassified(images, labels, preds, probs, classes, n=16, mean=None, std=None):
    """The ``n`` most confident mistakes, most confident first.

    ``probs`` is ``(N, K)`` (e.g. from ``train.predict``); the confidence of a
    mistake is the probability the model gave its wrong prediction. Each image is
    titled ``true X / pred Y (p=0.97)``.
    """
    labels, preds, probs = (_numpy(a) for a in (labels, preds, probs))
    wrong = np.flatnonzero(preds != labels)
    if len(wrong) == 0:
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.axis("off")
        ax.set_title(f"No misclassified examples among {len(labels)}.")
        return _finish(fig)
    confidence = probs[wrong, preds[wrong]]
    chosen = wrong[np.argsort(-confidence, kind="stable")][:n]
    titles = [f"true {_name(classes, labels[i])} / pred {_name(classes, preds[i])} (p={probs[i, preds[i]]:.2f})"
              for i in chosen]
    return _image_grid(_numpy(images)[chosen], titles, ncols=4, mean=mean, std=std,
                       title=f"Most confident mistakes ({len(wrong)} of {len(labels)} wrong)")


# ==========================================================================
# Training curves and confusion matrix
# ==========================================================================
METRIC_NAMES = {"loss": "loss", "acc": "accuracy", "lr": "learning rate"}


def plot_history(history, metrics=("loss", "acc")):
    """Learning curves: one panel per metric, training and validation, per epoch.

    ``history`` is a ``train.History`` (or a list of its per-epoch dicts). A
    dashed line marks the best validation epoch, whose weights ``fit`` kept.
    """
    rows = history.epochs if hasattr(history, "epochs") else list(history)
    if not rows:
        raise ValueError("The history is empty: train for at least one epoch first.")
    epochs = [row["epoch"] for row in rows]
    best = getattr(history, "best_epoch", None)
    curves = {}  # metric -> the history keys that hold it
    for metric in metrics:
        curves[metric] = [k for k in (f"train_{metric}", f"val_{metric}", metric)
                          if any(row.get(k) is not None for row in rows)]
        if not curves[metric]:
            raise ValueError(f"The history has no {metric!r} values; it has {sorted(rows[0])}.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for key in curves[metric]:
            values = [row.get(key) for row in rows]
            ax.plot(epochs, [np.nan if v is None else v for v in values], marker="o", markersize=3,
                    label=key.split("_")[0] if key != metric else metric)
        if best is not None:
            ax.axvline(best, color="gray", linestyle="--", linewidth=1, label=f"best epoch ({best})")
        ax.set_title(METRIC_NAMES.get(metric, metric))
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _finish(fig)


def plot_confusion_matrix(labels, preds, classes, normalize=True):
    """Rows are the true classes, columns the predicted ones.

    ``normalize=True`` divides each row by its count (so the diagonal is each
    class's recall); ``False`` shows counts. Cells are annotated for <= 10 classes.
    """
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    labels, preds = _numpy(labels).astype(int), _numpy(preds).astype(int)
    k = len(classes)
    matrix = confusion_matrix(labels, preds, labels=list(range(k)), normalize="true" if normalize else None)
    size = max(4.0, 0.45 * k + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    display = ConfusionMatrixDisplay(matrix, display_labels=[str(c) for c in classes])
    display.plot(ax=ax, cmap="Blues", include_values=k <= 10, values_format=".2f" if normalize else "d",
                 xticks_rotation="vertical", colorbar=True)
    if normalize:
        display.im_.set_clim(0, 1)  # fractions: the same colour scale for every matrix
    accuracy = float(np.mean(labels == preds)) if len(labels) else float("nan")
    kind = "row-normalised" if normalize else "counts"
    ax.set_title(f"Confusion matrix ({kind}); accuracy {accuracy:.1%}")
    return _finish(fig)


def plot_reliability_diagram(bins, ece=None, title=None):
    """Accuracy against confidence, one bar per confidence bin, from ``evaluation.calibration_bins``.

    A calibrated model's bars reach the diagonal: of the predictions made with
    about 80% confidence, about 80% are right. Bars below the diagonal mean
    over-confidence. The grey bars underneath show how many predictions fall
    in each bin; ``ece`` (``evaluation.expected_calibration_error``) goes in the title.
    """
    edges = np.asarray(bins["edges"], dtype=float)
    accuracy = np.nan_to_num(np.asarray(bins["accuracy"], dtype=float))
    count = np.asarray(bins["count"], dtype=float)
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig, (ax, ax_count) = plt.subplots(2, 1, figsize=(4.5, 5.2), sharex=True,
                                       gridspec_kw={"height_ratios": [3, 1]})
    ax.bar(centres, accuracy, width=width, edgecolor="black", linewidth=0.5, label="accuracy")
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="calibrated")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy in the bin")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title or ("Reliability diagram" + (f"; ECE {ece:.3f}" if ece is not None else "")))
    ax_count.bar(centres, count / max(count.sum(), 1), width=width, color="gray", edgecolor="black", linewidth=0.5)
    ax_count.set_xlim(0, 1)
    ax_count.set_xlabel("confidence (largest softmax probability)")
    ax_count.set_ylabel("share")
    return _finish(fig)


# ==========================================================================
# Inside the network: filters and feature maps
# ==========================================================================
def show_filters(weight, ncols=8):
    """Convolution filters ``(O, I, kH, kW)`` (or a ``nn.Conv2d``), each scaled to its own range.

    Filters with 3 input channels (a first layer on RGB images) are shown in
    colour; others show their first input channel in gray. At most
    :data:`MAX_FILTERS` filters are drawn.
    """
    if isinstance(weight, torch.nn.Module):
        weight = weight.weight
    w = _numpy(weight).astype(np.float32)
    if w.ndim != 4:
        raise ValueError(f"Expected a convolution weight of shape (O, I, kH, kW), got shape {w.shape}.")
    out_ch, in_ch = w.shape[:2]
    shown = w[:MAX_FILTERS] if in_ch == 3 else w[:MAX_FILTERS, :1]
    # Per-filter min-max scaling: the pattern matters, not the absolute size.
    low = shown.min(axis=(1, 2, 3), keepdims=True)
    high = shown.max(axis=(1, 2, 3), keepdims=True)
    shown = (shown - low) / np.maximum(high - low, 1e-12)
    what = "RGB" if in_ch == 3 else ("gray" if in_ch == 1 else f"input channel 0 of {in_ch}")
    count = f"{len(shown)} filters" if len(shown) == out_ch else f"first {len(shown)} of {out_ch} filters"
    return _image_grid(shown, None, ncols=ncols,
                       title=f"{count}, {w.shape[2]}x{w.shape[3]} ({what})")


def show_feature_maps(model, layer, x, n=16):
    """The first ``n`` channels output by module ``layer`` when ``model`` sees one image ``x``.

    ``x`` is ``(1, C, H, W)`` (already normalised like the training data);
    ``layer`` is a module of ``model`` or its name (e.g. ``"features.0"``).
    """
    if isinstance(layer, str):
        layer = model.get_submodule(layer)
    x = torch.as_tensor(x)
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"Expected one image of shape (1, C, H, W), got shape {tuple(x.shape)}.")
    captured = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output.detach()))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        with torch.no_grad():
            model(x.to(param.device if param is not None else "cpu").float())
    finally:
        handle.remove()
        model.train(was_training)
    if not captured:
        raise ValueError(f"The layer {type(layer).__name__} did not run in the model's forward pass: "
                         f"pass a module that is part of the model.")
    maps = captured[0]
    if maps.dim() != 4:
        raise ValueError(f"The layer's output has shape {tuple(maps.shape)}; feature maps need (1, C, H, W).")
    maps = maps[0, :n].float().cpu().numpy()
    name = next((f"{path} " for path, module in model.named_modules() if module is layer and path), "")
    fig, axes = _grid(len(maps), ncols=8)
    for i, ax in enumerate(axes):
        ax.imshow(maps[i], cmap="viridis")  # each map on its own colour scale
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"channel {i}", fontsize=8)
    shape = tuple(captured[0].shape)
    return _finish(fig, f"{name}({type(layer).__name__}) output {shape}: first {len(maps)} channels")
