"""Looking closer at a trained classifier: scores per class, calibration, the
hardest examples, test-time augmentation and ensembles.

``train.evaluate`` gives one loss and one accuracy. This module answers the next
questions: which classes are confused with which, whether a confidence of 90%
means right nine times in ten, which images the model finds hardest, and how
much flipping and shifting the test images, or averaging several models, adds.

Everything works on **logits**: one pass of the model over a loader gives them
(:func:`predict_logits`), and every measure after that is cheap arithmetic on
two tensors, ``logits`` ``(N, K)`` and ``labels`` ``(N,)``::

    logits, labels = evaluation.predict_logits(model, test_loader)
    evaluation.accuracy(logits, labels), evaluation.top_k_accuracy(logits, labels, k=5)
    print(evaluation.per_class_table(logits, labels, test_ds.classes))
    evaluation.expected_calibration_error(logits, labels)

Probabilities, such as the third output of ``train.predict``, work wherever
logits do after ``probs.log()`` (the softmax of ``log p`` is ``p`` again).
The counting is done by scikit-learn (``sklearn.metrics``) where it has it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn import metrics
from sklearn.model_selection import train_test_split

from . import train

AVERAGES = ("logits", "probs")  # what test-time augmentation and ensembles average


# ==========================================================================
# A validation split that keeps the class proportions
# ==========================================================================
def stratified_split(ds, val_fraction: float = 0.1, seed: int = 0):
    """Carve a validation set out of an ``ImageSet``: ``(train_ds, val_ds)``, disjoint and seeded.

    Unlike ``data.split``, which draws the validation images at random, each
    class gets (up to rounding) the same share in both parts as in ``ds``: with
    few images per class a plain random split can leave a class almost out of
    the validation set. Every class needs at least two images.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    labels = ds.labels.numpy()
    counts = np.bincount(labels)
    if counts[counts > 0].min() < 2:
        rare = [int(c) for c in np.flatnonzero((counts > 0) & (counts < 2))]
        raise ValueError(f"A stratified split needs at least 2 images of every class; class(es) {rare} have 1.")
    n_val = max(1, round(len(ds) * val_fraction))
    train_idx, val_idx = train_test_split(np.arange(len(ds)), test_size=n_val, stratify=labels,
                                          random_state=seed)
    return ds.subset(np.sort(train_idx)), ds.subset(np.sort(val_idx))


# ==========================================================================
# Logits of a whole loader
# ==========================================================================
def predict_logits(model, loader, device=None, *, amp=None):
    """The model's logits for every example of ``loader``, in loader order: ``(logits, labels)`` on the CPU.

    ``logits`` is float32 ``(N, K)``, ``labels`` int64 ``(N,)`` (class indices,
    also for soft targets). The model runs in eval mode without gradients, as in
    ``train.evaluate``; ``device=None`` uses the device the model is on.
    """
    device = torch.device(device) if device is not None else train._model_device(model)
    model.to(device)
    logits, labels = [], []
    for batch_logits, y in train._batches_of_logits(model, loader, device, train._amp_dtype(device, amp)):
        logits.append(batch_logits.cpu())
        labels.append(train._hard_labels(y).cpu())
    if not logits:
        raise ValueError("The loader yielded no batches, so there is nothing to predict.")
    return torch.cat(logits).float(), torch.cat(labels).long()


def _predictions(scores) -> np.ndarray:
    """Predicted classes from logits or probabilities ``(N, K)``, or predicted classes ``(N,)`` as they are."""
    scores = torch.as_tensor(scores)
    return (scores.argmax(dim=1) if scores.dim() == 2 else scores).long().numpy()


def _labels(labels) -> np.ndarray:
    return torch.as_tensor(labels).long().numpy()


# ==========================================================================
# Accuracy, per-class scores, confusion matrix
# ==========================================================================
def accuracy(scores, labels) -> float:
    """The fraction of examples whose predicted class (arg-max of ``scores``) is the label.

    ``scores``: logits or probabilities ``(N, K)``, or predicted classes ``(N,)``.
    """
    return float(metrics.accuracy_score(_labels(labels), _predictions(scores)))


def top_k_accuracy(logits, labels, k: int = 5) -> float:
    """The fraction of examples whose label is among the ``k`` highest of their ``K`` scores.

    Ties are broken as ``argmax`` breaks them, towards the lower class index: a
    class ranks above the label when it scores higher, or the same with a
    lower index. So ``k=1`` is exactly :func:`accuracy`, and ``k=K`` is 1.
    """
    logits, labels = torch.as_tensor(logits), torch.as_tensor(labels).long()
    if not 1 <= k <= logits.shape[1]:
        raise ValueError(f"k must be between 1 and the number of classes ({logits.shape[1]}), got {k}.")
    own = logits.gather(1, labels[:, None])  # (N, 1): the label's score
    lower_index = torch.arange(logits.shape[1])[None, :] < labels[:, None]
    ahead = (logits > own) | ((logits == own) & lower_index)  # (N, K): classes ranked above the label
    return (ahead.sum(dim=1) < k).float().mean().item()


def per_class_scores(scores, labels, num_classes: int | None = None) -> dict:
    """Precision, recall, F1 and support of every class, as arrays of length ``num_classes``.

    Precision of class c: of the images predicted c, the fraction that are c.
    Recall: of the images of class c, the fraction predicted c. F1 is their
    harmonic mean; support counts the images of each class. A class never
    predicted gets precision 0 (scikit-learn's ``zero_division=0``).
    """
    preds, labels = _predictions(scores), _labels(labels)
    if num_classes is None:
        num_classes = torch.as_tensor(scores).shape[1] if torch.as_tensor(scores).dim() == 2 \
            else int(max(preds.max(), labels.max())) + 1
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        labels, preds, labels=list(range(num_classes)), zero_division=0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def per_class_table(scores, labels, classes) -> str:
    """:func:`per_class_scores` as a text table, one row per class name in ``classes``, and the macro average."""
    table = per_class_scores(scores, labels, len(classes))
    width = max(12, *(len(str(c)) for c in classes))
    lines = [f"{'class':<{width}} {'precision':>9} {'recall':>7} {'f1':>6} {'images':>7}"]
    for i, name in enumerate(classes):
        lines.append(f"{str(name):<{width}} {table['precision'][i]:>9.3f} {table['recall'][i]:>7.3f} "
                     f"{table['f1'][i]:>6.3f} {int(table['support'][i]):>7}")
    macro = {key: float(np.mean(table[key])) for key in ("precision", "recall", "f1")}
    lines.append(f"{'macro average':<{width}} {macro['precision']:>9.3f} {macro['recall']:>7.3f} "
                 f"{macro['f1']:>6.3f} {int(table['support'].sum()):>7}")
    return "\n".join(lines)


def confusion_matrix(scores, labels, num_classes: int, normalize: str | None = None) -> np.ndarray:
    """``(K, K)`` counts: row = true class, column = predicted class.

    ``normalize="true"`` divides each row by its count (the diagonal is then each
    class's recall), ``"pred"`` each column, ``None`` keeps counts.
    ``plots.plot_confusion_matrix`` draws it.
    """
    return metrics.confusion_matrix(_labels(labels), _predictions(scores), labels=list(range(num_classes)),
                                    normalize=normalize)


# ==========================================================================
# Calibration: does 90% confidence mean right 9 times in 10?
# ==========================================================================
def calibration_bins(logits, labels, n_bins: int = 15) -> dict:
    """The reliability diagram's numbers: predictions grouped by confidence.

    The confidence of a prediction is its largest softmax probability. The
    range 0..1 is cut into ``n_bins`` equal bins, each holding the confidences
    in ``(lower, upper]``. Returns ``edges`` ``(n_bins + 1,)`` and, per bin,
    ``count``, ``confidence`` (mean confidence) and ``accuracy`` (fraction
    right); empty bins have NaN for both. A calibrated model has accuracy close
    to confidence in every bin.
    """
    probs = torch.as_tensor(logits).float().softmax(dim=1)
    confidence, preds = probs.max(dim=1)
    correct = (preds == torch.as_tensor(labels).long()).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    # bin b holds edges[b] < confidence <= edges[b + 1]; a confidence of exactly 0 cannot occur
    index = (torch.bucketize(confidence.double(), edges, right=False) - 1).clamp(0, n_bins - 1)
    count = torch.bincount(index, minlength=n_bins).double()
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, confidence.double())
    correct_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, correct)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = (conf_sum / count).numpy()
        mean_acc = (correct_sum / count).numpy()
    return {"edges": edges.numpy(), "count": count.long().numpy(), "confidence": mean_conf, "accuracy": mean_acc}


def expected_calibration_error(logits, labels, n_bins: int = 15) -> float:
    """ECE: the gap between accuracy and confidence, averaged over the bins of :func:`calibration_bins`.

    ``sum over bins of (images in bin / all images) * |accuracy - confidence|``
    (Guo et al., 2017, "On calibration of modern neural networks"). 0 is
    perfectly calibrated; an over-confident network has a large ECE.
    """
    bins = calibration_bins(logits, labels, n_bins)
    filled = bins["count"] > 0
    weights = bins["count"][filled] / bins["count"].sum()
    return float(np.sum(weights * np.abs(bins["accuracy"][filled] - bins["confidence"][filled])))


# ==========================================================================
# The hardest examples
# ==========================================================================
def hardest_examples(logits, labels, n: int = 16, by: str = "loss") -> torch.Tensor:
    """Indices of the ``n`` examples the model handles worst, worst first.

    ``by="loss"``: the highest cross-entropy (right or wrong). ``by="confident_wrong"``:
    wrong predictions only, the most confident first (often a mislabelled image
    or two classes that look alike). Use the indices with ``ds.subset(...)`` or
    to pick images for ``plots.show_images``.
    """
    logits, labels = torch.as_tensor(logits).float(), torch.as_tensor(labels).long()
    if by == "loss":
        badness = F.cross_entropy(logits, labels, reduction="none")
        order = badness.argsort(descending=True, stable=True)
    elif by == "confident_wrong":
        confidence, preds = logits.softmax(dim=1).max(dim=1)
        wrong = torch.nonzero(preds != labels).flatten()
        order = wrong[confidence[wrong].argsort(descending=True, stable=True)]
    else:
        raise ValueError(f"by must be 'loss' or 'confident_wrong', got {by!r}.")
    return order[:n]


# ==========================================================================
# Test-time augmentation and ensembles
# ==========================================================================
def combine(logits_list, average: str = "logits") -> torch.Tensor:
    """Several sets of logits ``(N, K)`` for the same examples, combined into one ``(N, K)``.

    ``average="logits"`` takes the mean of the logits. ``average="probs"`` takes
    the mean of the softmax probabilities and returns its log, so that the
    result is used like logits (its softmax is the mean probability).
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}.")
    stacked = torch.stack([torch.as_tensor(t).float() for t in logits_list])  # (M, N, K)
    if average == "logits":
        return stacked.mean(dim=0)
    return stacked.softmax(dim=2).mean(dim=0).log()


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Images ``(N, C, H, W)`` moved ``dy`` pixels down and ``dx`` right, the uncovered border filled with 0.

    The same as padding and cropping a window off-centre, so the image keeps
    its size. For normalised inputs 0 is the dataset's mean colour.
    """
    n, c, h, w = x.shape
    if abs(dy) >= h or abs(dx) >= w:
        raise ValueError(f"A shift of ({dy}, {dx}) pixels moves a {h}x{w} image out of view.")
    out = torch.zeros_like(x)
    out[:, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[:, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def tta_logits(model, loader, *, flip: bool = True, shifts=((0, 0),), average: str = "logits", device=None,
               amp=None):
    """Test-time augmentation: ``(logits, labels)`` combined over several views of every test image.

    The views are every shift ``(dy, dx)`` in ``shifts`` (pixels, see :func:`shift`),
    each also mirrored left-right when ``flip=True``: the defaults give two views,
    the image and its mirror image. ``average`` says how the views' logits are
    combined (see :func:`combine`): ``"logits"`` (the default) averages logits,
    ``"probs"`` averages softmax probabilities. Without any flip or shift this
    is :func:`predict_logits`.
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}.")
    views = [(dy, dx, mirrored) for dy, dx in shifts for mirrored in ((False, True) if flip else (False,))]
    if not views:
        raise ValueError("shifts is empty: give at least one, e.g. shifts=((0, 0),).")
    device = torch.device(device) if device is not None else train._model_device(model)
    model.to(device)
    amp_dtype = train._amp_dtype(device, amp)
    was_training = model.training
    model.eval()
    logits, labels = [], []
    try:
        with torch.no_grad():
            for batch in loader:
                x, y = train._to_device(*train._unpack(batch, "loader"), device)
                per_view = []
                for dy, dx, mirrored in views:
                    view = shift(x, dy, dx) if (dy, dx) != (0, 0) else x
                    view = view.flip(dims=[3]) if mirrored else view  # dims=[3]: the width axis
                    with train._autocast(device, amp_dtype):
                        per_view.append(model(view).float())
                logits.append(combine(per_view, average).cpu())
                labels.append(train._hard_labels(y).cpu())
    finally:
        model.train(was_training)
    if not logits:
        raise ValueError("The loader yielded no batches, so there is nothing to predict.")
    return torch.cat(logits), torch.cat(labels).long()


def ensemble_logits(models, loader, *, average: str = "logits", device=None, amp=None):
    """An ensemble's ``(logits, labels)``: every model predicts the whole loader, the logits are combined.

    ``average="logits"`` (the default) averages the models' logits,
    ``"probs"`` their softmax probabilities (see :func:`combine`). The loader
    must give the examples in the same order every pass (no shuffling).
    """
    models = list(models)
    if not models:
        raise ValueError("An ensemble needs at least one model.")
    results = [predict_logits(m, loader, device, amp=amp) for m in models]
    labels = results[0][1]
    if any(not torch.equal(other, labels) for _, other in results[1:]):
        raise ValueError("The loader gave the examples in another order for another model: turn shuffling off.")
    return combine([lg for lg, _ in results], average), labels
