"""Tests of icdl.explorers: every number a figure reports is the real one (a real nn.Conv2d, torch's own
schedulers, count_flops of the network built at that scale, BatchAugment on a real photo); settings that make no
sense give a message, not an exception; the widgets redraw without a front end, and show() leaves the HTML book a
static image of the figure."""

import itertools
import os

import pytest
import torch
from icdl import explorers
from icdl.augment import BatchAugment
from icdl.models import efficientnet
from icdl.models.registry import model_facts
from icdl.summary import count_flops, count_params
from icdl.train import warmup_cosine
from matplotlib.patches import Circle, Rectangle
from matplotlib.text import Text
from torch import nn

pytest.importorskip("ipywidgets")


def text_of(fig) -> str:
    """Every piece of text a figure shows (titles, labels, legend, annotations)."""
    return " ".join(" ".join(t.get_text().split()) for t in fig.findobj(Text))  # wrapped lines joined


def shown_images(fig):
    """The arrays of the images a figure shows, one per axes, in order."""
    return [ax.images[0].get_array() for ax in fig.axes if ax.images]


# ==========================================================================
# 1. Convolution arithmetic
# ==========================================================================
def test_output_size_and_parameters_are_those_of_a_real_conv2d():
    grid = list(itertools.product((1, 4, 7), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2), (True, False)))
    seen_too_small = seen_dilated_and_padded = 0
    for n, k, s, p, d, bias in grid:
        conv = nn.Conv2d(2, 3, k, stride=s, padding=p, dilation=d, bias=bias)
        c = explorers.conv_arithmetic(n, k, s, p, d, in_channels=2, out_channels=3, bias=bias)
        assert c.params == count_params(conv), (n, k, s, p, d, bias)
        x = torch.zeros(1, 2, n, n)
        if c.output_size < 1:  # the explorer says "no output" exactly where PyTorch refuses
            seen_too_small += 1
            with pytest.raises(RuntimeError):
                conv(x)
            continue
        assert conv(x).shape == (1, 3, c.output_size, c.output_size), (n, k, s, p, d)
        seen_dilated_and_padded += d > 1 and p > 0
    assert seen_too_small > 10 and seen_dilated_and_padded > 10  # the grid covers both kinds of case


def test_the_figure_reports_the_conv2d_numbers_and_marks_the_taps_pytorch_reads():
    n, k, s, p, d = 9, 3, 2, 1, 2
    conv = nn.Conv2d(3, 16, k, stride=s, padding=p, dilation=d)
    out = conv(torch.zeros(1, 3, n, n)).shape[-1]
    fig = explorers.conv_arithmetic_figure(n, k, s, p, d, in_channels=3, out_channels=16)
    text = text_of(fig)
    assert f"output: {out} x {out} per channel" in text and f"= {count_params(conv):,}" in text
    # The pixels of the input that output (0, 0) and (0, 1) depend on, found by autograd on a real convolution.
    x = torch.zeros(1, 1, n, n, requires_grad=True)
    y = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)(x)
    read = []
    for col in (0, 1):
        (grad,) = torch.autograd.grad(y[0, 0, 0, col], x, retain_graph=True)
        read.append({(r + p, c + p) for r, c in grad[0, 0].nonzero().tolist()})  # in padded coordinates
    ax = fig.axes[0]
    squares = {(round(r.get_y() - 0.1), round(r.get_x() - 0.1)) for r in ax.patches
               if isinstance(r, Rectangle) and r.get_width() == pytest.approx(0.42)}
    dots = {(round(c.center[1] - 0.7), round(c.center[0] - 0.7)) for c in ax.patches if isinstance(c, Circle)}
    inside = {(r, c) for r in range(p, p + n) for c in range(p, p + n)}
    assert len(squares) == len(dots) == k * k  # every tap drawn, also those that fall on the padding
    assert squares & inside == read[0] and dots & inside == read[1]


def test_impossible_settings_give_a_message_not_an_exception():
    fig = explorers.conv_arithmetic_figure(input_size=3, kernel_size=3, dilation=2)
    assert "No output" in text_of(fig) and "5 pixels" in text_of(fig)
    with pytest.raises(RuntimeError):
        nn.Conv2d(1, 1, 3, dilation=2)(torch.zeros(1, 1, 3, 3))
    message = text_of(explorers.conv_arithmetic_figure(kernel_size=0))
    assert "kernel_size must be a whole number of at least 1" in message


def test_moving_a_slider_redraws_with_the_new_numbers():
    explorer = explorers.conv_arithmetic_explorer(input_size=7, kernel_size=3)
    assert "output: 5 x 5" in text_of(explorer.figure)
    explorer.controls["stride"].value = 2
    out = nn.Conv2d(3, 16, 3, stride=2)(torch.zeros(1, 3, 7, 7)).shape[-1]
    assert f"output: {out} x {out}" in text_of(explorer.figure) and explorer.settings()["stride"] == 2
    explorer.controls["bias"].value = False
    assert f"= {count_params(nn.Conv2d(3, 16, 3, bias=False)):,}" in text_of(explorer.figure)
    explorer.controls["kernel_size"].value = 7
    explorer.controls["dilation"].value = 2  # spans 13 pixels of 7: a message, and the explorer keeps working
    assert "No output" in text_of(explorer.figure)
    explorer.controls["padding"].value = 4
    out = nn.Conv2d(3, 16, 7, stride=2, padding=4, dilation=2)(torch.zeros(1, 3, 7, 7)).shape[-1]
    assert f"output: {out} x {out}" in text_of(explorer.figure)


def test_an_initial_value_outside_a_slider_range_is_kept_not_clamped():
    explorer = explorers.conv_arithmetic_explorer(input_size=32, kernel_size=0)
    assert explorer.settings()["input_size"] == 32 and explorer.settings()["kernel_size"] == 0
    assert "kernel_size must be" in text_of(explorer.figure)


# ==========================================================================
# 2. Augmentation
# ==========================================================================
OFF = dict(crop_padding=0, flip=False, brightness=0, contrast=0, saturation=0, rand_augment=0, erasing=0)


def test_zero_strength_returns_the_original_exactly():
    original, augmented, augment = explorers.augmentation_samples(draws=3, **OFF)
    assert isinstance(augment, BatchAugment) and original.shape == (1, 3, 64, 64)
    assert all(torch.equal(a, original[0]) for a in augmented)
    images = shown_images(explorers.augmentation_figure(draws=3, **OFF))
    assert len(images) == 4 and all((im == images[0]).all() for im in images[1:])


@pytest.mark.parametrize("change", [dict(brightness=0.5), dict(erasing=1.0), dict(crop_padding=8),
                                    dict(rand_augment=2, magnitude=15)])
def test_each_family_changes_the_photo(change):
    original, augmented, _ = explorers.augmentation_samples(draws=4, **{**OFF, **change})
    changed = [not torch.equal(a, original[0]) for a in augmented]
    assert any(changed)
    if "brightness" in change or "erasing" in change:  # a random factor, a rectangle: every draw changes
        assert all(changed)
        assert not torch.equal(augmented[0], augmented[1])  # each copy draws its own parameters


def test_the_draws_are_repeatable_and_follow_the_seed():
    first = explorers.augmentation_samples(photo="coffee", size=32, seed=3)[1]
    assert torch.equal(first, explorers.augmentation_samples(photo="coffee", size=32, seed=3)[1])
    assert not torch.equal(first, explorers.augmentation_samples(photo="coffee", size=32, seed=4)[1])


def test_bad_augmentation_settings_give_a_message():
    assert "between 0 and 1" in text_of(explorers.augmentation_figure(brightness=1.5))
    assert "photo must be one of" in text_of(explorers.augmentation_figure(photo="dog"))


def test_the_augmentation_explorer_redraws():
    explorer = explorers.augmentation_explorer(draws=2, **OFF)
    images = shown_images(explorer.figure)
    assert (images[1] == images[0]).all()
    explorer.controls["brightness"].value = 0.6
    images = shown_images(explorer.figure)
    assert not (images[1] == images[0]).all() and "brightness=0.6" in text_of(explorer.figure)
    explorer.controls["photo"].value = "rocket"
    assert "rocket, 64 x 64 px" in text_of(explorer.figure)


# ==========================================================================
# 3. Learning-rate schedules
# ==========================================================================
SETTINGS = dict(total_steps=200, warmup_steps=20, peak_lr=0.05, min_lr_ratio=0.1, step_size=50, gamma=0.5)


def stepped_by_torch(make, steps):
    """The lr of each step, as a training loop sees it: read, train, step the scheduler."""
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=SETTINGS["peak_lr"], momentum=0.9)
    scheduler = make(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        if len(lrs) < steps:
            scheduler.step()
    return lrs


def test_the_curves_are_the_schedulers_own_values():
    t = SETTINGS["total_steps"]
    expected = {
        "warmup_cosine": stepped_by_torch(lambda o: warmup_cosine(o, 20, t, 0.1), t),
        "step": stepped_by_torch(lambda o: torch.optim.lr_scheduler.StepLR(o, 50, 0.5), t),
        "onecycle": stepped_by_torch(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.05, total_steps=t,
                                                                                   pct_start=0.1), t),
    }
    curves = explorers.lr_schedule_curves(**SETTINGS)
    assert list(curves) == list(expected)
    for name, lrs in expected.items():
        assert curves[name] == pytest.approx(lrs, rel=1e-12), name
    lines = {line.get_label().split("(")[0]: list(line.get_ydata())
             for line in explorers.lr_schedule_figure(**SETTINGS).axes[0].lines if len(line.get_ydata()) == t}
    assert lines["warmup_cosine"] == pytest.approx(expected["warmup_cosine"])
    assert lines["StepLR"] == pytest.approx(expected["step"])
    assert lines["OneCycleLR"] == pytest.approx(expected["onecycle"])


def test_warm_up_peaks_at_its_last_step():
    curves = explorers.lr_schedule_curves(**SETTINGS)
    for name in ("warmup_cosine", "onecycle"):
        lrs = curves[name]
        assert lrs.index(max(lrs)) == SETTINGS["warmup_steps"] - 1, name
        assert max(lrs) == pytest.approx(SETTINGS["peak_lr"])
        assert all(a < b for a, b in zip(lrs[:19], lrs[1:20]))  # rising all through the warm-up
    assert curves["warmup_cosine"][-1] == pytest.approx(0.05 * 0.1, rel=0.01)  # down to min_lr_ratio
    assert curves["step"][0] == 0.05 and curves["step"][50] == pytest.approx(0.025)
    assert text_of(explorers.lr_schedule_figure(**SETTINGS)).count("peak 0.05 at step 19") == 2


def test_the_schedule_explorer_redraws_and_reports_refusals():
    explorer = explorers.lr_schedule_explorer(**SETTINGS)
    explorer.controls["warmup_steps"].value = 50
    assert text_of(explorer.figure).count("at step 49") == 2
    explorer.controls["warmup_steps"].value = 300  # longer than the run: warmup_cosine's own message
    assert "warmup_steps must be between 0 and total_steps=200" in text_of(explorer.figure)
    explorer.controls["warmup_steps"].value = 1  # OneCycleLR cannot interpolate over a one-step warm-up
    assert "OneCycleLR" in text_of(explorer.figure) and "ZeroDivisionError" in text_of(explorer.figure)
    explorer.controls["onecycle"].value = False
    assert "peak 0.05 at step 0" in text_of(explorer.figure)
    for name in ("warmup_cosine", "step"):
        explorer.controls[name].value = False
    assert "at least one schedule" in text_of(explorer.figure)


# ==========================================================================
# 4. Compound scaling
# ==========================================================================
def test_flops_grow_about_two_to_the_phi():
    base = explorers.compound_scale(0)
    assert base.flops == 2 * model_facts("efficientnet_b0").macs  # B0 as the registry counted it
    assert (base.blocks, base.num_features, base.resolution) == (16, 1280, 224)
    for phi in (1, 2, 3):
        ratio = explorers.compound_scale(phi).flops / base.flops
        # ceil gives every one-layer stage a second layer at phi = 1: 2.6, not the rule's 1.92
        assert 1.6 ** phi < ratio < 2.6 ** phi, (phi, ratio)
    assert 1.8 < (explorers.compound_scale(3).flops / base.flops) ** (1 / 3) < 2.2  # per step of phi, about 2


def test_the_counted_flops_are_those_of_the_network_built_at_that_scale():
    scale = explorers.compound_scale(1)
    d, w, r = efficientnet.compound_scaling(1)
    assert (scale.depth, scale.width, scale.resolution) == (d, w, round(224 * r)) == (1.2, 1.1, 258)
    torch.manual_seed(0)
    model = efficientnet.EfficientNet(width_mult=w, depth_mult=d)  # a real one, on the CPU
    assert scale.flops == count_flops(model, (1, 3, 258, 258))
    assert scale.params == count_params(model) and scale.blocks == len(model.blocks())


def test_the_compound_scaling_figure_and_explorer_report_the_counts():
    explorer = explorers.compound_scaling_explorer(phi=1)
    ratio = explorers.compound_scale(1).flops / explorers.compound_scale(0).flops
    assert f"{ratio:.2f}x B0" in text_of(explorer.figure)
    explorer.controls["phi"].value = 2
    ratio = explorers.compound_scale(2).flops / explorers.compound_scale(0).flops
    assert f"{ratio:.2f}x B0; 2^phi = 4.00" in text_of(explorer.figure)
    assert "phi must be between 0" in text_of(explorers.compound_scaling_figure(phi=-1))


# ==========================================================================
# Headless, as the book builds a page: show() in a kernel with no front end
# ==========================================================================
def test_show_leaves_a_static_figure_and_a_change_moves_it_into_the_widget(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "from icdl import explorers\nconv = explorers.conv_arithmetic_explorer(stride=2)\nexplorers.show(conv)",
        "moved = explorers.conv_arithmetic_explorer()\nexplorers.show(moved)",
        "moved.controls['stride'].value = 2\nprint(conv.output.model_id, moved.output.model_id)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # as icdl.book builds: figures drawn
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    widget, static = nb.cells[0].outputs
    assert "application/vnd.jupyter.widget-view+json" in widget.data and "image/png" in static.data
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    conv_output, moved_output = nb.cells[2].outputs[0].text.split()
    assert state[conv_output]["state"]["outputs"] == []  # the book shows the figure once: the static one
    # After a change the live figure is inside the widget and the static output is emptied.
    assert any("image/png" in o.get("data", {}) for o in state[moved_output]["state"]["outputs"])
    assert nb.cells[1].outputs[1].data.get("text/html") == "" and "image/png" not in nb.cells[1].outputs[1].data


def test_the_figures_close_in_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    explorers.conv_arithmetic_figure()
    explorers.lr_schedule_figure(total_steps=20, warmup_steps=2)
    explorers.conv_arithmetic_figure(kernel_size=99)
    assert plt.get_fignums() == before
