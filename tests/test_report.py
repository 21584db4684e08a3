"""Tests of icdl.report (glue, seed summaries) and icdl.baselines."""

import sys
from pathlib import Path

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


# ----------------------------------------------------------------------------
# The result card that ends a training notebook
# ----------------------------------------------------------------------------
def _card_inputs(standin=False):
    import torch
    from torch import nn

    from icdl.data import ImageSet
    from icdl.env import Setup

    cfg = Setup(budget="quick", device=torch.device("cpu"), seed=0, root=Path("."), colab=False, ci=False,
                started=0.0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 10))
    data = ImageSet(torch.zeros(12, 3, 32, 32, dtype=torch.uint8), torch.zeros(12, dtype=torch.int64),
                    list("abcdefghij"), "cifar10", standin, (0.5,) * 3, (0.25,) * 3,
                    "Fashion-MNIST (real images, padded to 32x32)" if standin else "CIFAR-10")
    return cfg, model, data


def test_result_card_reports_the_run_as_measured():
    from icdl.report import result_card
    from icdl.summary import count_flops

    cfg, model, data = _card_inputs(standin=True)
    card = result_card(cfg, model, data, val_acc=0.8734, test_acc=0.861, input_size=(1, 3, 32, 32), seconds=125,
                       title="A test run")
    rows, printed, html = card.rows, str(card), card._repr_html_()
    assert rows["budget"] == "quick" and rows["device"] == "cpu"
    assert rows["data"] == "Fashion-MNIST (real images, padded to 32x32), standing in for cifar10; 12 training images"
    assert rows["wall time"] == "2 min 05 s"
    assert (rows["validation accuracy"], rows["test accuracy"]) == ("87.3%", "86.1%")
    assert rows["parameters"] == f"{sum(p.numel() for p in model.parameters()):,}"
    assert rows["FLOPs"] == f"{count_flops(model, (1, 3, 32, 32)) / 1e6:,.1f} M per 32x32 image"
    assert printed.startswith("A test run\n") and "<caption>A test run</caption>" in html
    for name, value in rows.items():
        assert value in printed and f"<th style='text-align:left'>{name}</th><td style='text-align:left'>{value}</td>" in html
    assert model.training  # counting FLOPs in eval mode leaves the model as it was


def test_result_card_wall_time_runs_from_setup_and_missing_results_are_said():
    import time

    from icdl.report import result_card

    cfg, model, data = _card_inputs()
    cfg = type(cfg)(**{**cfg.__dict__, "started": time.perf_counter() - 3725})
    rows = result_card(cfg, model, data, test_acc=0.5).rows
    assert rows["wall time"] == "1 h 02 min"
    assert rows["data"] == "CIFAR-10; 12 training images"
    assert rows["validation accuracy"] == "not measured" and "FLOPs" not in rows


def test_result_card_summarises_one_accuracy_per_seed():
    from icdl.report import result_card, seed_summary

    cfg, model, data = _card_inputs()
    rows = result_card(cfg, model, data, test_acc={0: 0.80, 1: 0.84, 2: 0.82}, val_acc=[0.81, 0.83]).rows
    assert rows["test accuracy"] == "82.0% ± 2.0 (3 seeds: 80.0 to 84.0%)"
    assert rows["validation accuracy"] == seed_summary([0.81, 0.83]).text(".1f", 100, "%")


@pytest.mark.parametrize("bad", [87.3, -0.1, "0.9", [0.8, 80.0], True])
def test_result_card_rejects_an_accuracy_that_is_not_a_fraction(bad):
    from icdl.report import result_card

    cfg, model, data = _card_inputs()
    with pytest.raises(ValueError, match="fraction between 0 and 1"):
        result_card(cfg, model, data, test_acc=bad)


TRAINING_CHAPTERS = ["02_lenet", "03_alexnet", "04_vgg", "05_googlenet", "06_resnet", "07_densenet", "08_mobilenet",
                     "09_efficientnet", "10_convnext_vit", "11_comparison", "15_transfer_learning",
                     "14_evaluation", "16_capstone"]


@pytest.mark.parametrize("chapter", TRAINING_CHAPTERS)
def test_training_chapter_ends_with_its_result_card(chapter):
    """A '## Result card' section whose code cell calls report.result_card, after the chapter's last training run."""
    import nbformat
    from icdl.env import repo_root

    cells = nbformat.read(repo_root() / "chapters" / f"{chapter}.ipynb", as_version=4).cells
    heading = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Result card")]
    assert len(heading) == 1, f"{chapter}: expected one '## Result card' section, found {len(heading)}"
    card = cells[heading[0] + 1]
    assert card.cell_type == "code" and "report.result_card(" in card.source, f"{chapter}: the card's cell is missing"
    later_training = [i for i, c in enumerate(cells) if i > heading[0] and c.cell_type == "code"
                      and any(call in c.source for call in ("train.fit(", "train_run(", "recipes.train_cifar10("))]
    assert not later_training, f"{chapter}: cells {later_training} train after the result card"
