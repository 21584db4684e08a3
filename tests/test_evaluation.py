"""Tests of icdl.evaluation on hand-made logits and tiny models whose answers are known."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from icdl import evaluation
from icdl.data import ImageSet
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


# --------------------------------------------------------------------------
# Stratified split
# --------------------------------------------------------------------------
def numbered_images(counts):
    """An ImageSet whose image i carries its own index in its pixels, with ``counts[c]`` images of class c."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    index = torch.arange(len(labels))
    images = torch.stack([index // 256, index % 256], dim=1).to(torch.uint8).view(-1, 1, 1, 2)
    return ImageSet(images, labels, [f"c{c}" for c in range(len(counts))], "numbered", False, (0.5,), (0.25,))


def ids(ds):
    return set((ds.images[:, 0, 0, 0].long() * 256 + ds.images[:, 0, 0, 1].long()).tolist())


def test_stratified_split_keeps_the_class_proportions():
    ds = numbered_images([60, 30, 10])
    train_ds, val_ds = evaluation.stratified_split(ds, val_fraction=0.2, seed=0)
    assert torch.bincount(val_ds.labels).tolist() == [12, 6, 2]
    assert torch.bincount(train_ds.labels).tolist() == [48, 24, 8]
    assert val_ds.classes == ds.classes and val_ds.mean == ds.mean


def test_stratified_split_is_disjoint_complete_and_seeded():
    ds = numbered_images([60, 30, 10])
    train_ds, val_ds = evaluation.stratified_split(ds, val_fraction=0.2, seed=0)
    assert not ids(train_ds) & ids(val_ds)
    assert ids(train_ds) | ids(val_ds) == set(range(100))
    for part in (train_ds, val_ds):  # every image keeps its own label
        number = part.images[:, 0, 0, 0].long() * 256 + part.images[:, 0, 0, 1].long()
        assert torch.equal(part.labels, ds.labels[number])
    again = evaluation.stratified_split(ds, val_fraction=0.2, seed=0)[1]
    other = evaluation.stratified_split(ds, val_fraction=0.2, seed=1)[1]
    assert ids(again) == ids(val_ds) and ids(other) != ids(val_ds)


def test_stratified_split_needs_two_images_per_class():
    with pytest.raises(ValueError, match=r"at least 2 images of every class.*\[2\]"):
        evaluation.stratified_split(numbered_images([5, 5, 1]))


# --------------------------------------------------------------------------
# Accuracy and top-k
# --------------------------------------------------------------------------
def test_top_k_breaks_ties_towards_the_lower_index_like_argmax():
    logits = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [3.0, 1.0, 1.0]])
    labels = torch.tensor([1, 2, 2])
    # each label ties with a lower class index, so argmax picks that class: none is right at k=1
    assert evaluation.accuracy(logits, labels) == 0.0
    assert evaluation.top_k_accuracy(logits, labels, k=1) == 0.0
    assert evaluation.top_k_accuracy(logits, labels, k=2) == pytest.approx(2 / 3)
    assert evaluation.top_k_accuracy(logits, labels, k=3) == 1.0


def test_top_1_equals_accuracy_also_with_many_ties():
    g = torch.Generator().manual_seed(0)
    logits = torch.randint(0, 3, (300, 5), generator=g).float()  # many tied scores
    labels = torch.randint(0, 5, (300,), generator=g)
    assert evaluation.top_k_accuracy(logits, labels, k=1) == pytest.approx(evaluation.accuracy(logits, labels))
    assert evaluation.accuracy(logits, labels) == pytest.approx((logits.argmax(1) == labels).float().mean().item())
    top3 = evaluation.top_k_accuracy(logits, labels, k=3)
    assert evaluation.top_k_accuracy(logits, labels, k=2) <= top3 <= evaluation.top_k_accuracy(logits, labels, k=4)
    assert evaluation.top_k_accuracy(logits, labels, k=5) == 1.0
    with pytest.raises(ValueError, match="k must be between 1 and the number of classes"):
        evaluation.top_k_accuracy(logits, labels, k=6)


# --------------------------------------------------------------------------
# Per-class scores and the confusion matrix
# --------------------------------------------------------------------------
def test_per_class_scores_and_confusion_matrix_by_hand():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    preds = torch.tensor([0, 0, 1, 1, 0, 1])  # class 2 is never predicted
    scores = evaluation.per_class_scores(preds, labels, num_classes=3)
    assert scores["precision"] == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert scores["recall"] == pytest.approx([2 / 3, 1 / 2, 0.0])
    assert scores["f1"] == pytest.approx([2 / 3, 0.4, 0.0])
    assert scores["support"].tolist() == [3, 2, 1]
    matrix = evaluation.confusion_matrix(preds, labels, 3)
    assert matrix.tolist() == [[2, 1, 0], [1, 1, 0], [0, 1, 0]]
    assert evaluation.confusion_matrix(preds, labels, 3, normalize="true")[0] == pytest.approx([2 / 3, 1 / 3, 0])
    logits = F.one_hot(preds, 3).float() * 5  # logits whose arg-max is preds give the same scores
    assert evaluation.per_class_scores(logits, labels)["f1"] == pytest.approx(scores["f1"])
    table = evaluation.per_class_table(logits, labels, ["cat", "dog", "bird"])
    assert "bird" in table and "macro average" in table and "0.400" in table


# --------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------
def test_expected_calibration_error_by_hand():
    probs = torch.tensor([[0.90, 0.05, 0.05],   # confidence 0.90, right
                          [0.10, 0.85, 0.05],   # confidence 0.85, wrong
                          [0.50, 0.30, 0.20],   # confidence 0.50, right
                          [0.30, 0.45, 0.25]])  # confidence 0.45, wrong
    labels = torch.tensor([0, 0, 0, 2])
    bins = evaluation.calibration_bins(probs.log(), labels, n_bins=5)  # bins of width 0.2
    assert bins["count"].tolist() == [0, 0, 2, 0, 2]
    assert bins["confidence"][[2, 4]] == pytest.approx([0.475, 0.875], abs=1e-6)
    assert bins["accuracy"][[2, 4]] == pytest.approx([0.5, 0.5])
    assert np.isnan(bins["accuracy"][0]) and np.isnan(bins["confidence"][3])
    # (2/4) * |0.5 - 0.475| + (2/4) * |0.5 - 0.875| = 0.0125 + 0.1875
    assert evaluation.expected_calibration_error(probs.log(), labels, n_bins=5) == pytest.approx(0.2, abs=1e-6)


def test_a_confident_model_that_is_always_right_is_calibrated_only_at_full_confidence():
    labels = torch.arange(4) % 2
    certain = F.one_hot(labels, 2).float() * 50  # confidence ~1, always right
    assert evaluation.expected_calibration_error(certain, labels) == pytest.approx(0.0, abs=1e-6)
    assert evaluation.expected_calibration_error(-certain, labels) == pytest.approx(1.0, abs=1e-6)  # always wrong


# --------------------------------------------------------------------------
# The hardest examples
# --------------------------------------------------------------------------
def test_hardest_examples_by_loss_and_by_confident_mistakes():
    logits = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, 4.0], [0.2, 0.0], [2.0, 0.0]])
    labels = torch.tensor([0, 0, 0, 1, 0])
    # per-example losses: tiny, medium (wrong), large (wrong, very sure), medium-small (wrong, unsure), small
    losses = F.cross_entropy(logits, labels, reduction="none")
    assert evaluation.hardest_examples(logits, labels, n=5).tolist() == losses.argsort(descending=True).tolist()
    assert evaluation.hardest_examples(logits, labels, n=2).tolist() == [2, 1]
    assert evaluation.hardest_examples(logits, labels, n=10, by="confident_wrong").tolist() == [2, 1, 3]
    with pytest.raises(ValueError, match="by must be"):
        evaluation.hardest_examples(logits, labels, by="worst")


# --------------------------------------------------------------------------
# Test-time augmentation
# --------------------------------------------------------------------------
def image_loader(n=12, size=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(torch.randn(n, 2, size, size, generator=g), torch.arange(n) % 3), batch_size=5)


def pixel_model(size=6, seed=0):
    """Looks at every pixel where it is: not flip-invariant."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(2 * size * size, 3))


def mirror_symmetric_model(size=6):
    """A pixel model whose weights are mirror images of themselves: flipping the input changes nothing."""
    model = pixel_model(size)
    with torch.no_grad():
        w = model[1].weight.view(3, 2, size, size)
        model[1].weight.copy_(((w + w.flip(3)) / 2).view(3, -1))
    return model


def test_tta_of_a_flip_invariant_model_is_the_plain_prediction():
    model, loader = mirror_symmetric_model(), image_loader()
    plain, labels = evaluation.predict_logits(model, loader)
    for average in evaluation.AVERAGES:
        tta, tta_labels = evaluation.tta_logits(model, loader, flip=True, average=average)
        assert torch.equal(tta_labels, labels)
        assert torch.allclose(tta.softmax(1), plain.softmax(1), atol=1e-6)


def test_tta_really_flips_left_right():
    model, loader = pixel_model(), image_loader()
    x = torch.cat([xb for xb, _ in loader])
    with torch.no_grad():
        plain, mirrored = model(x), model(x.flip(3))
    tta, _ = evaluation.tta_logits(model, loader, flip=True)
    assert not torch.allclose(tta, plain, atol=1e-3)  # this model notices the flip
    assert torch.allclose(tta, (plain + mirrored) / 2, atol=1e-6)  # the mean over the image and its mirror
    tta_probs, _ = evaluation.tta_logits(model, loader, flip=True, average="probs")
    assert torch.allclose(tta_probs.softmax(1), (plain.softmax(1) + mirrored.softmax(1)) / 2, atol=1e-6)
    none, _ = evaluation.tta_logits(model, loader, flip=False)
    assert torch.allclose(none, plain, atol=1e-6)


def test_shift_moves_the_image_and_fills_with_zeros():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    assert evaluation.shift(x, 1, 0)[0, 0].tolist() == [[0, 0, 0], [0, 1, 2], [3, 4, 5]]
    assert evaluation.shift(x, 0, -1)[0, 0].tolist() == [[1, 2, 0], [4, 5, 0], [7, 8, 0]]
    assert torch.equal(evaluation.shift(x, 0, 0), x)


def test_tta_with_shifted_crops_averages_every_view():
    model, loader = pixel_model(), image_loader()
    x = torch.cat([xb for xb, _ in loader])
    shifts = ((0, 0), (1, -1))
    with torch.no_grad():
        views = [model(evaluation.shift(x, dy, dx)) for dy, dx in shifts]
        views += [model(evaluation.shift(x, dy, dx).flip(3)) for dy, dx in shifts]
    tta, _ = evaluation.tta_logits(model, loader, flip=True, shifts=shifts)
    assert torch.allclose(tta, torch.stack(views).mean(0), atol=1e-6)
    with pytest.raises(ValueError, match="average must be"):
        evaluation.tta_logits(model, loader, average="votes")


# --------------------------------------------------------------------------
# Ensembles
# --------------------------------------------------------------------------
def test_an_ensemble_of_identical_models_is_that_model():
    loader = image_loader()
    plain, labels = evaluation.predict_logits(pixel_model(seed=1), loader)
    for average in evaluation.AVERAGES:
        together, ens_labels = evaluation.ensemble_logits([pixel_model(seed=1)] * 3, loader, average=average)
        assert torch.equal(ens_labels, labels)
        assert torch.allclose(together.softmax(1), plain.softmax(1), atol=1e-6)


def test_an_ensemble_averages_the_logits_of_different_models():
    loader = image_loader()
    a, b = evaluation.predict_logits(pixel_model(seed=1), loader)[0], evaluation.predict_logits(
        pixel_model(seed=2), loader)[0]
    together, _ = evaluation.ensemble_logits([pixel_model(seed=1), pixel_model(seed=2)], loader)
    assert torch.allclose(together, (a + b) / 2, atol=1e-6)
    by_probs, _ = evaluation.ensemble_logits([pixel_model(seed=1), pixel_model(seed=2)], loader, average="probs")
    assert torch.allclose(by_probs.exp(), (a.softmax(1) + b.softmax(1)) / 2, atol=1e-6)
    assert math.isclose(by_probs.exp().sum(1).mean().item(), 1.0, rel_tol=1e-6)


def test_predict_logits_matches_the_model_and_keeps_its_mode():
    model, loader = pixel_model(), image_loader()
    model.train()
    logits, labels = evaluation.predict_logits(model, loader)
    x = torch.cat([xb for xb, _ in loader])
    with torch.no_grad():
        assert torch.allclose(logits, model(x), atol=1e-6)
    assert labels.tolist() == (torch.arange(12) % 3).tolist() and model.training


def test_reliability_diagram_draws_one_bar_per_bin():
    from icdl import plots

    probs = torch.tensor([[0.9, 0.1], [0.85, 0.15], [0.3, 0.7], [0.45, 0.55]])
    labels = torch.tensor([0, 1, 1, 1])
    bins = evaluation.calibration_bins(probs.log(), labels, n_bins=5)
    fig = plots.plot_reliability_diagram(bins, ece=evaluation.expected_calibration_error(probs.log(), labels, 5))
    ax = fig.axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == pytest.approx([0, 0, 1.0, 1.0, 0.5])  # bins (0.4, 0.6], (0.6, 0.8], (0.8, 1]
    assert "ECE" in ax.get_title()
