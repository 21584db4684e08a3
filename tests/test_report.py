"""Tests of icdl.report (glue, seed summaries) and icdl.baselines."""

import sys

import numpy as np
import pytest
import torch
from icdl import baselines, data, report


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def test_seed_summary_numbers_and_text():
    s = report.seed_summary([0.86, 0.87, 0.88])
    assert s.n == 3 and s.mean == pytest.approx(0.87) and s.std == pytest.approx(0.01)  # sample std (n - 1)
    assert (s.lo, s.hi) == (0.86, 0.88)
    assert s.text(".1f", 100, "%") == "87.0% ± 1.0 (3 seeds: 86.0 to 88.0%)"
    signed = report.seed_summary([-0.02, -0.03]).text("+.1f", 100, " points")
    assert signed.startswith("-2.5 points ± 0.7 (2 seeds: -3.0 to -2.0 points)")
    one = report.seed_summary([np.float32(0.5)])
    assert one.std == 0.0 and one.text(".2f") == "0.50 (1 seed)"
    with pytest.raises(ValueError, match="at least one"):
        report.seed_summary([])


def test_compare_counts_wins_per_seed():
    result = report.compare([0.9, 0.8, 0.85], [0.7, 0.82, 0.80])
    assert result["n"] == 3 and result["wins"] == 2
    assert result["diff"].mean == pytest.approx((0.2 - 0.02 + 0.05) / 3)
    with pytest.raises(ValueError, match="equal"):
        report.compare([1, 2], [1])


def test_glue_hands_plain_values_to_myst_nb(monkeypatch):
    import myst_nb

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: calls.append((name, value, display)))
    report.glue("acc", torch.tensor(0.25))
    report.glue("data", "Fashion-MNIST")
    assert calls == [("acc", 0.25, False), ("data", "Fashion-MNIST", False)]
    assert type(calls[0][1]) is float  # not a tensor: the book formats it with {glue:text}`acc:.1%`


def test_glue_without_myst_nb_does_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import fails, as in Colab
    assert report.glue("acc", 0.5) is None


# --------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------
def tiny_set(images, labels):
    images = torch.as_tensor(images, dtype=torch.uint8)
    return data.ImageSet(images, torch.as_tensor(labels), ["a", "b", "c"], "tiny", False, (0.5,), (0.5,))


def test_chance_is_the_majority_class_rate():
    train = tiny_set(torch.zeros(5, 1, 2, 2), [1, 1, 1, 0, 2])
    test = tiny_set(torch.zeros(4, 1, 2, 2), [1, 0, 1, 1])
    assert baselines.chance(train, test) == 0.75


def test_nearest_neighbour_matches_scikit_learn_and_can_fail():
    from sklearn.neighbors import KNeighborsClassifier

    train, test = data.load("digits"), data.load("digits", "test")
    ours = baselines.nearest_neighbour(train, test, chunk=100)
    knn = KNeighborsClassifier(n_neighbors=1).fit(train.images.flatten(1).numpy() / 255, train.labels.numpy())
    assert ours == pytest.approx(knn.score(test.images.flatten(1).numpy() / 255, test.labels.numpy()), abs=1e-3)
    # Control: the same test images with every label moved to the next class score (nearly) nothing.
    shifted = tiny_set(test.images, (test.labels + 1) % 10)
    assert baselines.nearest_neighbour(train, shifted) < 0.05


def test_logistic_regression_and_context(capsys):
    train, test = data.load("digits"), data.load("digits", "test")
    ctx = baselines.context(train, test, "logistic regression")
    assert 0.85 < ctx["baseline"] <= 1 and ctx["chance"] == pytest.approx(0.1, abs=0.01)
    assert "logistic regression on raw pixels" in capsys.readouterr().out
    with pytest.raises(ValueError, match="method"):
        baselines.context(train, test, "svm")
