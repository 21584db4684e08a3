"""Tests of the checks of exercise 14 (honest evaluation): right answers pass, planted mistakes fail with the
message that names the mistake, untouched stubs say "not attempted"."""

import numpy as np
import pytest
import torch
from checkhelpers import assert_incorrect, assert_not_attempted, stub
from icdl import evaluation
from icdl.checks import ex14_evaluation as ex
from icdl.checks.core import Outcome
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5]


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "14_evaluation"


def test_untouched_answers_are_not_attempted():
    assert_not_attempted(ex.q1)
    assert_not_attempted(ex.q2)
    assert ex.q3.evaluate(None, None).outcome is Outcome.NOT_ATTEMPTED
    assert ex.q3.evaluate(0.5, None).outcome is Outcome.NOT_ATTEMPTED
    for q in (ex.q4, ex.q5):
        assert q.evaluate(None).outcome is Outcome.NOT_ATTEMPTED


# -- q1: the ECE from the bins -------------------------------------------------------------
def ece_from_bins(count, accuracy, confidence):
    filled = count > 0
    weights = count[filled] / count.sum()
    return float(np.sum(weights * np.abs(accuracy[filled] - confidence[filled])))


def ece_nansum(count, accuracy, confidence):  # another right way
    return float(np.nansum(count / count.sum() * np.abs(accuracy - confidence)))


def test_q1_correct_and_the_reference_is_the_librarys():
    assert ex.q1.evaluate(ece_from_bins).outcome is Outcome.CORRECT
    assert ex.q1.evaluate(ece_nansum).outcome is Outcome.CORRECT
    assert ex.q1.evaluate(lambda *a: np.float64(ece_from_bins(*a))).outcome is Outcome.CORRECT
    gen = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(300, 4, generator=gen) * 3, torch.randint(0, 4, (300,), generator=gen)
    bins = evaluation.calibration_bins(logits, labels, n_bins=10)
    assert ece_from_bins(bins["count"], bins["accuracy"], bins["confidence"]) == pytest.approx(
        evaluation.expected_calibration_error(logits, labels, n_bins=10))


def unweighted(count, accuracy, confidence):
    filled = count > 0
    return float(np.mean(np.abs(accuracy[filled] - confidence[filled])))


def no_abs(count, accuracy, confidence):
    filled = count > 0
    return float(np.sum(count[filled] / count.sum() * (accuracy[filled] - confidence[filled])))


def no_abs_other_way(count, accuracy, confidence):
    return -no_abs(count, accuracy, confidence)


def empty_bins_counted(count, accuracy, confidence):
    return float(np.sum(np.nan_to_num(np.abs(accuracy - confidence))) / len(count))


def nan_from_empty_bins(count, accuracy, confidence):
    return float(np.sum(count / count.sum() * np.abs(accuracy - confidence)))


def max_gap(count, accuracy, confidence):
    return float(np.nanmax(np.abs(accuracy - confidence)))


def percent(count, accuracy, confidence):
    return 100 * ece_from_bins(count, accuracy, confidence)


@pytest.mark.parametrize("fn, fragments", [
    (unweighted, ["unweighted mean of the gaps"]),
    (no_abs, ["left out the absolute value"]),
    (no_abs_other_way, ["left out the absolute value"]),
    (empty_bins_counted, ["counted the empty bins"]),
    (nan_from_empty_bins, ["returned NaN", "empty bins"]),
    (max_gap, ["largest gap"]),
    (percent, ["returned 5.25"]),
    (lambda c, a, f: "0.06", ["should be a number"]),
    (lambda c, a, f: 1 / 0, ["ZeroDivisionError"]),
])
def test_q1_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q1.evaluate(fn), *fragments)


# -- q2: a stratified split ----------------------------------------------------------------
def stratified_indices(labels, val_fraction, seed):
    g = torch.Generator().manual_seed(seed)
    train_idx, val_idx = [], []
    for c in labels.unique():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_val = round(len(idx) * val_fraction)
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return torch.cat(train_idx), torch.cat(val_idx)


def with_sklearn(labels, val_fraction, seed):
    return tuple(train_test_split(np.arange(len(labels)), test_size=val_fraction, stratify=labels.numpy(),
                                  random_state=seed))


def test_q2_correct_in_two_ways_and_the_given_function_fails_with_its_own_message():
    assert ex.q2.evaluate(stratified_indices).outcome is Outcome.CORRECT
    assert ex.q2.evaluate(with_sklearn).outcome is Outcome.CORRECT
    as_lists = lambda *a: tuple(t.tolist() for t in stratified_indices(*a))  # noqa: E731
    assert ex.q2.evaluate(as_lists).outcome is Outcome.CORRECT
    assert_incorrect(ex.q2.evaluate(ex.given_split), "a stratified split puts", "the given function")


def leaky(labels, val_fraction, seed):  # validation drawn from the whole pool, training keeps everything
    train_idx, val_idx = stratified_indices(labels, val_fraction, seed)
    return torch.arange(len(labels)), val_idx


def drops_images(labels, val_fraction, seed):
    train_idx, val_idx = stratified_indices(labels, val_fraction, seed)
    return train_idx[: len(train_idx) // 2], val_idx


def unseeded(labels, val_fraction, seed):
    return stratified_indices(labels, val_fraction, int(torch.randint(0, 10**6, (1,))))


def seed_ignored(labels, val_fraction, seed):
    return stratified_indices(labels, val_fraction, 0)


def floor_of_the_whole(labels, val_fraction, seed):  # stratified in spirit, but the first class gets them all
    order = torch.argsort(labels)
    n_val = round(len(labels) * val_fraction)
    return order[n_val:], order[:n_val]


def other_random(labels, val_fraction, seed):  # a random split that is not the given one
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed + 100))
    n_val = round(len(labels) * val_fraction)
    return order[n_val:], order[:n_val]


@pytest.mark.parametrize("fn, fragments", [
    (leaky, ["in both the training and the validation set", "leaks"]),
    (drops_images, ["in neither set"]),
    (unseeded, ["different validation sets", "seed the shuffling"]),
    (seed_ignored, ["ignores `seed`"]),
    (floor_of_the_whole, ["class 0 has", "Split each class on its own"]),
    (other_random, ["a stratified split puts"]),
    (lambda labels, f, s: stratified_indices(labels, f, s)[1], ["should return two index collections"]),
    (lambda labels, f, s: (torch.arange(len(labels)) + 1, torch.tensor([], dtype=torch.long)), ["outside 0.."]),
    (lambda labels, f, s: (labels.float(), labels.float()), ["integer indices"]),
    ("split", ["Pass your function itself"]),
])
def test_q2_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q2.evaluate(fn), *fragments)


# -- q3: macro and weighted F1 ---------------------------------------------------------------
def labels_and_predictions(cm):
    y = [i for i in range(len(cm)) for j in range(len(cm)) for _ in range(cm[i][j])]
    p = [j for i in range(len(cm)) for j in range(len(cm)) for _ in range(cm[i][j])]
    return y, p


Y, P = labels_and_predictions(ex.CONFUSION)
MACRO, WEIGHTED = f1_score(Y, P, average="macro"), f1_score(Y, P, average="weighted")


def test_q3_correct_and_the_values_are_scikit_learns():
    assert ex.q3.evaluate(MACRO, WEIGHTED).outcome is Outcome.CORRECT
    assert ex.q3.evaluate(round(MACRO, 3), round(WEIGHTED, 3)).outcome is Outcome.CORRECT
    assert ex.q3.evaluate(np.float64(MACRO), torch.tensor(WEIGHTED)).outcome is Outcome.CORRECT


def arithmetic_macro():
    cm = ex.CONFUSION
    tp = np.diag(cm)
    return float((((tp / cm.sum(0)) + (tp / cm.sum(1))) / 2).mean())


def by_predictions():
    from sklearn.metrics import precision_recall_fscore_support

    f1 = precision_recall_fscore_support(Y, P)[2]
    return float(np.average(f1, weights=ex.CONFUSION.sum(axis=0)))


@pytest.mark.parametrize("answers, fragments", [
    ((f1_score(Y, P, average="micro"), WEIGHTED), ["`macro_f1`", "accuracy"]),
    ((WEIGHTED, WEIGHTED), ["`macro_f1`", "that is the weighted F1"]),
    ((arithmetic_macro(), WEIGHTED), ["harmonic mean"]),
    ((float(np.mean(np.diag(ex.CONFUSION) / ex.CONFUSION.sum(0))), WEIGHTED), ["mean precision"]),
    ((float(np.mean(np.diag(ex.CONFUSION) / ex.CONFUSION.sum(1))), WEIGHTED), ["mean recall"]),
    ((MACRO, MACRO), ["`weighted_f1`", "that is the macro F1"]),
    ((MACRO, f1_score(Y, P, average="micro")), ["`weighted_f1`", "accuracy"]),
    ((MACRO, by_predictions()), ["column sums"]),
    ((100 * MACRO, WEIGHTED), ["compute precision, recall and F1"]),
    (("0.56", WEIGHTED), ["`macro_f1`"]),
])
def test_q3_planted_mistakes(answers, fragments):
    assert_incorrect(ex.q3.evaluate(*answers), *fragments)


# -- q4 and q5: predictions ----------------------------------------------------------------
def test_q4_the_right_option_is_what_the_library_computes():
    members = [torch.tensor([row]) for row in ex.MEMBER_LOGITS]
    assert int(evaluation.combine(members, "logits").argmax()) == 0
    assert int(evaluation.combine(members, "probs").argmax()) == 1
    assert ex.q4.evaluate("c").outcome is Outcome.CORRECT
    assert ex.q4.evaluate(" (C) ").outcome is Outcome.CORRECT


@pytest.mark.parametrize("q, right", [(ex.q4, "c"), (ex.q5, "c")], ids=["q4", "q5"])
def test_choices_every_wrong_option_explains_itself(q, right):
    assert q.evaluate(right).outcome is Outcome.CORRECT
    for letter in q.options:
        if letter != right:
            assert_incorrect(q.evaluate(letter), f"Not ({letter})", q.why[letter][:20])
    assert_incorrect(q.evaluate("z"), "not one of the options")
    assert_incorrect(q.evaluate(3), "should be a letter")


def test_stub_helper_is_used():  # the generated stub of a function answer is "not attempted"
    assert ex.q1.evaluate(stub).outcome is Outcome.NOT_ATTEMPTED
