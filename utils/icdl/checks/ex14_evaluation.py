"""Checks for the exercise notebook ``14_evaluation``: ECE, stratified splits, F1 averages, ensembles, TTA.

    from icdl.checks import ex14_evaluation as ex
    ex.q1.check(ece_from_bins)                # derive the ECE from the bins of a reliability diagram
    ex.q2.check(stratified_indices)           # debug a validation split that is not stratified
    ex.q3.check(macro_f1, weighted_f1)        # macro and weighted F1 from a confusion matrix (ValueQuestion)
    ex.q4.check(answer)                       # predict: do the two ways of averaging an ensemble agree here?
    ex.q5.check(answer)                       # predict: what a mirror-image view does to digits
"""

from __future__ import annotations

import math

import numpy as np

from .core import Incorrect, Question, call, describe, register
from .kinds import ChoiceQuestion, FunctionQuestion, ValueQuestion

NOTEBOOK = "14_evaluation"


# --------------------------------------------------------------------------
# q1: the ECE from the bins
# --------------------------------------------------------------------------
def _ece(count, accuracy, confidence):
    count = np.asarray(count, dtype=float)
    filled = count > 0
    gaps = np.abs(np.asarray(accuracy, dtype=float)[filled] - np.asarray(confidence, dtype=float)[filled])
    return float(np.sum(count[filled] / count.sum() * gaps))


def _filled(count, accuracy, confidence):
    count = np.asarray(count, dtype=float)
    filled = count > 0
    return count, filled, np.asarray(accuracy, dtype=float), np.asarray(confidence, dtype=float)


def _unweighted(count, accuracy, confidence):
    count, filled, a, c = _filled(count, accuracy, confidence)
    return float(np.mean(np.abs(a[filled] - c[filled])))


def _signed(count, accuracy, confidence):
    count, filled, a, c = _filled(count, accuracy, confidence)
    return float(np.sum(count[filled] / count.sum() * (a[filled] - c[filled])))


def _signed_other_way(count, accuracy, confidence):
    return -_signed(count, accuracy, confidence)


def _empty_bins_counted(count, accuracy, confidence):
    count, filled, a, c = _filled(count, accuracy, confidence)
    return float(np.sum(np.abs(a[filled] - c[filled])) / len(count))


def _largest_gap(count, accuracy, confidence):
    count, filled, a, c = _filled(count, accuracy, confidence)
    return float(np.max(np.abs(a[filled] - c[filled])))


def _bins_of_random_logits():
    """The bins that ``evaluation.calibration_bins`` makes of seeded, over-confident logits."""
    import torch

    from ..evaluation import calibration_bins

    gen = torch.Generator().manual_seed(14)
    logits = torch.randn(400, 5, generator=gen) * 4
    labels = torch.where(torch.rand(400, generator=gen) < 0.6, logits.argmax(dim=1),
                         torch.randint(0, 5, (400,), generator=gen))
    bins = calibration_bins(logits, labels, n_bins=10)
    return bins["count"].copy(), bins["accuracy"].copy(), bins["confidence"].copy()


class ECEFromBins(FunctionQuestion):
    title = "the expected calibration error from the bins of a reliability diagram"
    hints = [
        "For every bin with at least one prediction: its gap |accuracy - confidence|, times its share of all the "
        "predictions (count / total). The ECE is the sum of those.",
        "Empty bins have count 0 and NaN accuracy and confidence: leave them out (a mask `count > 0`), or they turn "
        "the sum into NaN. Their weight would be 0 anyway.",
    ]
    function = "ece_from_bins"
    result = "number"
    rel, abs_ = 1e-6, 1e-12
    reference = staticmethod(_ece)
    mistakes = [
        ("took the unweighted mean of the gaps; weight each bin by its share of the predictions (count / total)",
         _unweighted),
        ("left out the absolute value: over-confident and under-confident bins then cancel", _signed),
        ("left out the absolute value: over-confident and under-confident bins then cancel", _signed_other_way),
        ("counted the empty bins: an unweighted mean over every bin, empty ones as a gap of 0; weight each bin by "
         "its share of the predictions, which is 0 for an empty bin", _empty_bins_counted),
        ("returned the largest gap (the maximum calibration error); the ECE is the weighted average gap",
         _largest_gap),
    ]
    success = ("Correct! Weighted by their share of the predictions, bins with few predictions count little, "
               "and an empty bin counts for nothing.")

    @property
    def cases(self):
        nan = float("nan")
        return [
            (np.array([0, 50, 0, 150, 800]), np.array([nan, 0.40, nan, 0.70, 0.90]),
             np.array([nan, 0.30, nan, 0.75, 0.95])),
            (np.array([100, 300, 600]), np.array([0.50, 0.80, 0.85]), np.array([0.55, 0.75, 0.95])),
            _bins_of_random_logits(),
        ]

    def normalise(self, got, label):
        value = got
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            raise Incorrect(f"{label} returned NaN: the empty bins have NaN accuracy and confidence (there is "
                            f"nothing to average in them). Leave them out: their weight is 0.")
        return super().normalise(got, label)


# --------------------------------------------------------------------------
# q2: debug a split that is not stratified
# --------------------------------------------------------------------------
def given_split(labels, val_fraction, seed):
    """The given function: a seeded random permutation, cut in two (the class shares only hold on average)."""
    import torch

    n = len(labels)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = round(n * val_fraction)
    return order[n_val:], order[:n_val]


def split_labels():
    """The labels the check splits: four classes of 300, 120, 60 and 20 images, shuffled."""
    import torch

    labels = torch.cat([torch.full((n,), c) for c, n in enumerate((300, 120, 60, 20))])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(3))]


def _index_list(value, what: str) -> list:
    import torch

    if isinstance(value, torch.Tensor):
        if value.dim() != 1 or value.is_floating_point():
            raise Incorrect(f"{what} should be a 1-D tensor of integer indices; it is {describe(value)}.")
        return value.tolist()
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or not np.issubdtype(value.dtype, np.integer):
            raise Incorrect(f"{what} should be a 1-D array of integer indices; it is {describe(value)}.")
        return value.tolist()
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                for v in value):
        return [int(v) for v in value]
    raise Incorrect(f"{what} should be a list, array or tensor of integer indices; it is {describe(value)}.")


class DebugSplit(Question):
    title = "debug a validation split that is not stratified"
    hints = [
        "Split every class on its own: take the indices of class c, shuffle them with a generator seeded by "
        "`seed`, and put round(n_c * val_fraction) of them into the validation set, the rest into training.",
        "`torch.nonzero(labels == c).flatten()` gives the indices of class c; "
        "`idx[torch.randperm(len(idx), generator=g)]` shuffles them. Concatenate the pieces of every class.",
        "scikit-learn does the same: `train_test_split(np.arange(n), test_size=val_fraction, stratify=labels, "
        "random_state=seed)`.",
    ]
    fraction = 0.25

    def _run(self, fn, labels, seed):
        label = f"`stratified_indices(labels, {self.fraction}, seed={seed})`"
        out = call(fn, labels.clone(), self.fraction, seed, doing=label)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Incorrect(f"{label} should return two index collections, `(train_idx, val_idx)`; it returned "
                            f"{describe(out)}.")
        return label, _index_list(out[0], f"The `train_idx` of {label}"), _index_list(out[1], f"The `val_idx` of {label}")

    def verify(self, fn):
        if not callable(fn):
            raise Incorrect(f"Pass your function itself (`stratified_indices`); got {describe(fn)}.")
        labels = split_labels()
        n = len(labels)
        counts = np.bincount(labels.numpy())
        results = {}
        for seed in (0, 1):
            label, train_idx, val_idx = self._run(fn, labels, seed)
            bad = [i for i in train_idx + val_idx if not 0 <= i < n]
            if bad:
                raise Incorrect(f"{label} returned index {bad[0]}, outside 0..{n - 1}: the split may only use the "
                                f"pool's own images.")
            both = set(train_idx) & set(val_idx)
            if both:
                raise Incorrect(f"{label}: {len(both)} images are in both the training and the validation set "
                                f"(such as image {min(both)}). A validation image the network trained on leaks: its "
                                f"validation accuracy is then too optimistic.")
            if len(set(val_idx)) != len(val_idx) or len(set(train_idx)) != len(train_idx):
                raise Incorrect(f"{label}: an image appears twice in one set; draw without replacement.")
            missing = n - len(set(train_idx) | set(val_idx))
            if missing:
                raise Incorrect(f"{label}: {missing} of the {n} images are in neither set; every image goes to "
                                f"exactly one of them.")
            val_counts = np.bincount(labels[val_idx].numpy(), minlength=len(counts))
            for c, (v, total) in enumerate(zip(val_counts, counts)):
                want = total * self.fraction
                if abs(v - want) >= 1:
                    given = given_split(labels, self.fraction, seed)[1].tolist()
                    note = (" This is what the given function returns: a random permutation keeps the class shares "
                            "only on average." if sorted(given) == sorted(val_idx) else
                            " Split each class on its own.")
                    raise Incorrect(f"{label}: class {c} has {v} of its {total} images in the validation set; a "
                                    f"stratified split puts {want:g} there (give or take rounding).{note}")
            results[seed] = sorted(val_idx)
        _, _, again = self._run(fn, labels, 0)
        if sorted(again) != results[0]:
            raise Incorrect("Two calls with seed=0 gave different validation sets: seed the shuffling with `seed` "
                            "(a `torch.Generator().manual_seed(seed)`), so a split can be made again.")
        if results[0] == results[1]:
            raise Incorrect("seed=0 and seed=1 gave the same validation set: the shuffling ignores `seed`.")
        return ("Correct! Every class keeps its share in both sets, the sets are disjoint and cover the pool, and "
                "the seed makes the split repeatable.")


# --------------------------------------------------------------------------
# q3: macro and weighted F1 from a confusion matrix
# --------------------------------------------------------------------------
CONFUSION = np.array([[90, 8, 2],
                      [20, 18, 2],
                      [10, 5, 5]])  # rows: true class, columns: predicted class


def _scores(cm=CONFUSION):
    tp = np.diag(cm).astype(float)
    precision, recall = tp / cm.sum(axis=0), tp / cm.sum(axis=1)
    f1 = 2 * precision * recall / (precision + recall)
    return precision, recall, f1


def _macro():
    return float(_scores()[2].mean())


def _weighted(weights=None):
    return float(np.average(_scores()[2], weights=CONFUSION.sum(axis=1) if weights is None else weights))


def _accuracy():
    return float(np.trace(CONFUSION) / CONFUSION.sum())


def _arithmetic_macro():
    precision, recall, _ = _scores()
    return float(((precision + recall) / 2).mean())


class F1FromConfusion(ValueQuestion):
    title = "macro and weighted F1 from a confusion matrix"
    hints = [
        "Per class c: precision = TP / (column sum), recall = TP / (row sum), F1 = 2PR / (P + R). Rows are the true "
        "classes, columns the predictions.",
        "Macro: the plain mean of the three F1 scores. Weighted: their mean weighted by each class's support, the "
        "number of its images (the row sums).",
    ]
    names = ("macro_f1", "weighted_f1")
    integer = False
    rel = 2e-3  # an answer rounded to three decimals passes
    mistakes = {
        "macro_f1": [
            (lambda m, w: _accuracy(), "that is the accuracy (the micro-averaged F1); macro averages the F1 of the "
                                       "classes"),
            (lambda m, w: w, "that is the weighted F1; the macro average gives every class the same weight"),
            (lambda m, w: _arithmetic_macro(), "F1 is the harmonic mean of precision and recall, 2PR / (P + R), not "
                                               "(P + R) / 2"),
            (lambda m, w: float(_scores()[0].mean()), "that is the mean precision; F1 combines precision and recall"),
            (lambda m, w: float(_scores()[1].mean()), "that is the mean recall; F1 combines precision and recall"),
        ],
        "weighted_f1": [
            (lambda m, w: m, "that is the macro F1; weight each class's F1 by its number of images"),
            (lambda m, w: _accuracy(), "that is the accuracy; weight each class's F1 by its number of images"),
            (lambda m, w: _weighted(CONFUSION.sum(axis=0)),
             "you weighted by the number of predictions of each class (column sums); the support is the number of "
             "images of each class (row sums)"),
        ],
    }
    wrong = "compute precision, recall and F1 for each class, then average them"
    success = ("Correct! The large first class, the easiest, pulls the weighted F1 up; the macro F1 gives each "
               "of the two small, harder classes as much say as the large one.")

    def expected(self):
        return _macro(), _weighted()


# --------------------------------------------------------------------------
# q4 and q5: predictions, measured in the notebook afterwards
# --------------------------------------------------------------------------
MEMBER_LOGITS = ((8.0, 0.0, 1.0), (0.0, 2.0, 1.5), (0.0, 2.0, 1.0))  # three networks, one image, three classes


class LogitsOrProbs(ChoiceQuestion):
    title = "predict: do averaging the logits and averaging the probabilities agree on this image?"
    hints = [
        "Average the logits first: which class has the largest mean?",
        "Now the probabilities: the first network's probability of class 0 cannot exceed 1, while the other two "
        "give class 1 a probability of about 0.6 each.",
    ]
    options = {
        "a": "both predict class 0",
        "b": "both predict class 1",
        "c": "averaging the logits predicts class 0, averaging the probabilities class 1",
        "d": "averaging the logits predicts class 1, averaging the probabilities class 0",
    }
    answer = "c"
    why = {
        "a": "the mean logits do favour class 0 (about 2.67 against 1.33), but the first network's probability of "
             "class 0 is capped at 1: averaged with the two others (about 0.08 each) it is about 0.39, below class "
             "1's 0.41.",
        "b": "the mean logits favour class 0: the first network's margin of 8 outweighs the two small margins of "
             "the others.",
        "d": "it is the other way round: the logits carry the first network's large margin, the probabilities cap "
             "it at 1.",
    }
    success = ("Correct! A very confident member dominates the average of the logits; in the average of the "
               "probabilities its vote counts at most 1. Such lopsided images are rare, so the two rules agree on "
               "almost every image.")


class FlipOnDigits(ChoiceQuestion):
    title = "predict: what does a mirror-image view do to TTA on handwritten digits?"
    hints = [
        "Flip a 2, a 3 or a 7 left to right in your head: which digit is it now?",
        "The network was trained without flips. What does it answer for an image unlike any it was trained on, "
        "and how does that answer enter the average?",
    ]
    options = {
        "a": "the accuracy rises, as it does for clothing: more views always remove noise",
        "b": "nothing changes: a flip keeps every pixel, only their order changes",
        "c": "the accuracy falls: a mirrored digit is another digit or none, the network never saw mirrored digits, "
             "and the mirrored view's wrong guesses enter the average with the same weight as the real view",
        "d": "the accuracy falls, but only because the flip changes the brightness of the image",
    }
    answer = "c"
    why = {
        "a": "a view helps only when it keeps the label; a mirrored 3 is not a 3, so its logits pull the average "
             "towards other classes.",
        "b": "a convolutional network is not invariant to mirroring: the order of the pixels is what it reads.",
        "d": "a flip moves pixels without changing any value: the brightness, the mean and the variance stay.",
    }
    success = ("Correct! TTA works with the symmetries of the data: flips for clothing and photographs, never for "
               "digits or text. The next cell measures it.")


q1 = ECEFromBins()
q2 = DebugSplit()
q3 = F1FromConfusion()
q4 = LogitsOrProbs()
q5 = FlipOnDigits()

QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5)

__all__ = ["CONFUSION", "MEMBER_LOGITS", "given_split", "split_labels", "q1", "q2", "q3", "q4", "q5"]
