"""Tests of icdl.plots: each figure is built from small inputs and shows what it should."""

import matplotlib

matplotlib.use("Agg")  # no display in tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from icdl import plots, train  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

CLASSES = ["cat", "dog", "ship"]


def titles(fig):
    return [ax.get_title() for ax in fig.axes]


def pixels(ax):
    return ax.get_images()[0].get_array()


pytestmark = pytest.mark.usefixtures("no_open_figures")  # conftest.py: no figure left open


# --------------------------------------------------------------------------
# Image grids
# --------------------------------------------------------------------------
def test_show_images_uint8_gray_with_class_names():
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    fig = plots.show_images(images, labels=torch.tensor([0, 1, 2, 0, 1]), classes=CLASSES, ncols=3,
                            title="five images")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5  # no empty sixth panel
    assert titles(fig) == ["cat", "dog", "ship", "cat", "dog"]
    assert fig._suptitle.get_text() == "five images"
    image = fig.axes[0].get_images()[0]
    assert image.get_cmap().name == "gray"
    assert np.allclose(image.get_array(), images[0, 0].numpy() / 255)


def test_show_images_unnormalises_float_rgb_and_marks_wrong_predictions():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.2, 0.2)
    raw = torch.rand(4, 3, 6, 6)
    normalised = (raw - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    fig = plots.show_images(normalised, labels=[0, 1, 2, 2], preds=[0, 2, 2, 1], classes=CLASSES,
                            mean=mean, std=std)
    assert titles(fig)[1] == "true dog / pred ship"
    assert [ax.title.get_color() for ax in fig.axes] == ["black", "red", "black", "red"]
    assert np.allclose(pixels(fig.axes[2]), raw[2].permute(1, 2, 0).numpy(), atol=1e-5)


def test_show_images_rejects_a_single_image_with_advice():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*x\[None\]"):
        plots.show_images(torch.zeros(3, 8, 8))


# --------------------------------------------------------------------------
# Curves and confusion matrix
# --------------------------------------------------------------------------
def make_history():
    rows = [{"epoch": e, "train_loss": 1 / e, "train_acc": 0.5 + e / 10, "val_loss": 1.2 / e,
             "val_acc": [0.5, 0.8, 0.7][e - 1], "lr": 0.1, "seconds": 1.0} for e in (1, 2, 3)]
    return train.History(rows, best_epoch=2, best_val_acc=0.8)


def test_plot_history_draws_train_and_val_per_metric():
    fig = plots.plot_history(make_history())
    assert titles(fig) == ["loss", "accuracy"]
    loss_ax = fig.axes[0]
    labels = [line.get_label() for line in loss_ax.get_lines()]
    assert labels == ["train", "val", "best epoch (2)"]
    assert list(loss_ax.get_lines()[1].get_ydata()) == pytest.approx([1.2, 0.6, 0.4])
    assert list(loss_ax.get_lines()[2].get_xdata()) == [2, 2]


def test_plot_history_of_a_run_without_validation_and_lr():
    rows = [dict(r, val_loss=None, val_acc=None) for r in make_history().epochs]
    fig = plots.plot_history(train.History(rows), metrics=("acc", "lr"))
    assert titles(fig) == ["accuracy", "learning rate"]
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["train"]
    with pytest.raises(ValueError, match="no 'f1' values"):
        plots.plot_history(make_history(), metrics=("f1",))


def test_confusion_matrix_normalised_and_annotated():
    labels = [0, 0, 0, 0, 1, 1, 2, 2]
    preds = [0, 0, 0, 1, 1, 1, 0, 2]
    fig = plots.plot_confusion_matrix(labels, preds, CLASSES)
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # the matrix and its colour bar
    assert ax.get_title() == "Confusion matrix (row-normalised); accuracy 75.0%"
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    assert np.allclose(ax.get_images()[0].get_array(), [[0.75, 0.25, 0], [0, 1, 0], [0.5, 0, 0.5]])
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 9 and "0.75" in texts


def test_confusion_matrix_counts_and_no_annotations_for_many_classes():
    fig = plots.plot_confusion_matrix([0, 0, 1], [0, 1, 1], CLASSES, normalize=False)
    assert np.array_equal(fig.axes[0].get_images()[0].get_array(), [[1, 1, 0], [0, 1, 0], [0, 0, 0]])
    assert "counts" in fig.axes[0].get_title()
    many = [f"c{i}" for i in range(12)]
    fig = plots.plot_confusion_matrix(list(range(12)), list(range(12)), many)
    assert len(fig.axes[0].texts) == 0


# --------------------------------------------------------------------------
# Misclassified examples
# --------------------------------------------------------------------------
def test_show_misclassified_puts_the_most_confident_mistake_first():
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0, 1])
    probs = torch.tensor([[0.9, 0.05, 0.05],    # right
                          [0.6, 0.3, 0.1],      # wrong: cat, p=0.60
                          [0.02, 0.97, 0.01],   # wrong: dog, p=0.97
                          [0.2, 0.1, 0.7],      # wrong: ship, p=0.70
                          [0.1, 0.8, 0.1]])     # right
    preds = probs.argmax(1)
    fig = plots.show_misclassified(images, labels, preds, probs, CLASSES, n=2)
    assert titles(fig) == ["true ship / pred dog (p=0.97)", "true cat / pred ship (p=0.70)"]
    assert fig._suptitle.get_text() == "Most confident mistakes (3 of 5 wrong)"
    assert np.allclose(pixels(fig.axes[0]), images[2].permute(1, 2, 0).numpy() / 255)


def test_show_misclassified_without_mistakes():
    probs = torch.eye(3)
    fig = plots.show_misclassified(torch.zeros(3, 1, 4, 4), torch.arange(3), torch.arange(3), probs, CLASSES)
    assert titles(fig) == ["No misclassified examples among 3."]


# --------------------------------------------------------------------------
# Filters and feature maps
# --------------------------------------------------------------------------
def test_show_filters_rgb_in_colour_each_scaled_to_its_range():
    conv = nn.Conv2d(3, 6, 5)
    fig = plots.show_filters(conv, ncols=4)
    assert len(fig.axes) == 6
    first = pixels(fig.axes[0])
    assert first.shape == (5, 5, 3)
    assert first.min() == pytest.approx(0) and first.max() == pytest.approx(1)
    w = conv.weight[0].detach()
    assert np.allclose(first, ((w - w.min()) / (w.max() - w.min())).permute(1, 2, 0).numpy(), atol=1e-6)
    assert "RGB" in fig._suptitle.get_text()


def test_show_filters_of_a_deep_layer_in_gray_and_capped(monkeypatch):
    monkeypatch.setattr(plots, "MAX_FILTERS", 6)  # fewer panels: a faster test
    weight = torch.randn(10, 16, 3, 3)
    fig = plots.show_filters(weight)
    assert len(fig.axes) == 6
    assert fig.axes[0].get_images()[0].get_cmap().name == "gray"
    assert "first 6 of 10 filters" in fig._suptitle.get_text()
    assert "input channel 0 of 16" in fig._suptitle.get_text()
    w = weight[5, 0]
    assert np.allclose(pixels(fig.axes[5]), ((w - w.min()) / (w.max() - w.min())).numpy(), atol=1e-6)


def test_show_feature_maps_shows_the_hooked_layer_output():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 5, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 8 * 8, 2)).train()
    x = torch.randn(1, 1, 8, 8)
    fig = plots.show_feature_maps(model, model[1], x, n=4)
    assert titles(fig) == ["channel 0", "channel 1", "channel 2", "channel 3"]
    expected = torch.relu(model[0](x))[0, 3].detach().numpy()
    assert np.allclose(pixels(fig.axes[3]), expected, atol=1e-6)
    assert fig._suptitle.get_text() == "1 (ReLU) output (1, 5, 8, 8): first 4 channels"
    assert model.training  # mode restored
    assert not model[1]._forward_hooks  # hook removed
    by_name = plots.show_feature_maps(model, "0", x)
    assert len(by_name.axes) == 5


def test_show_feature_maps_with_a_layer_outside_the_model():
    model = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(ValueError, match="did not run"):
        plots.show_feature_maps(model, nn.ReLU(), torch.zeros(1, 1, 5, 5))
