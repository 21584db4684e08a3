"""Explorers: move a slider and watch a quantity of the course change, with a static figure for the book.

Four ideas, each as a function that computes the numbers, a function that draws them and
an explorer that redraws the figure whenever a control changes:

* **convolution arithmetic** (:func:`conv_arithmetic`, :func:`conv_arithmetic_figure`,
  :func:`conv_arithmetic_explorer`): kernel size, stride, padding, dilation and input size
  give the output size, PyTorch's ``floor((n + 2p - d(k - 1) - 1) / s) + 1``
  (:func:`conv_output_size`), and the parameter count (:func:`conv_params`); the figure
  marks where the kernel's taps fall on the padded input for two neighbouring outputs;
* **augmentation** (:func:`augmentation_samples`, :func:`augmentation_figure`,
  :func:`augmentation_explorer`): the course's batched augmentation,
  :class:`icdl.augment.BatchAugment`, applied to copies of a real photograph from
  scikit-image, with a seeded ``torch.Generator``: the original beside several draws, each
  with its own random parameters;
* **learning-rate schedules** (:func:`lr_schedule_curves`, :func:`lr_schedule_figure`,
  :func:`lr_schedule_explorer`): linear warm-up then cosine (:func:`icdl.train.warmup_cosine`),
  ``torch.optim.lr_scheduler.StepLR`` and ``OneCycleLR``, each stepped on a dummy optimizer,
  the learning rate of every step recorded from the optimizer;
* **EfficientNet's compound scaling** (:func:`compound_scale`, :func:`compound_scaling_figure`,
  :func:`compound_scaling_explorer`): the coefficient phi gives depth ``1.2^phi``, width
  ``1.1^phi`` and resolution ``1.15^phi`` (:func:`icdl.models.efficientnet.compound_scaling`);
  the network built at that scale on PyTorch's ``meta`` device (shapes only, no memory) has its
  FLOPs counted by :func:`icdl.summary.count_flops`, against ``2^phi``.

Figures. ``*_figure(**settings)`` returns a matplotlib ``Figure``, the same drawing for the same
settings, closed in pyplot as :mod:`icdl.plots` does, so it shows once as a cell's value.
Settings that make no sense (a kernel wider than the padded input, a warm-up longer than
the run) give a figure that says what is wrong instead of an exception.

Explorers. ``*_explorer(**settings)`` returns an ``ipywidgets.VBox``: the controls, then an
``Output`` holding the figure, redrawn when a control changes. Besides the box's own
attributes it has ``controls`` (setting name -> control), ``output``, ``figure`` (the figure
last drawn), ``settings()`` and ``redraw()``. Setting a control's ``value`` from code redraws
too, without a front end. Only core widgets and keywords that ipywidgets 7.7 (Google Colab's)
and 8.1 share are used.

In a notebook, pass the explorer to :func:`show`::

    from icdl import explorers
    explorers.show(explorers.conv_arithmetic_explorer(kernel_size=3, padding=1))

A widget needs a running kernel: in the HTML book, built by executing the notebook with no one
at the controls, a widget is at best a frozen picture (and blank where its JavaScript cannot be
fetched). So :func:`show` displays the controls with an empty ``Output``, then the figure for
the initial settings as an ordinary image output, which the book keeps. In Jupyter or Colab the
first change of a control draws the figure inside the explorer, under its controls, and
empties that image output. An explorer left as a cell's last value, without :func:`show`, holds
its figure inside the widget only: fine with a kernel, empty in the book.
"""

from __future__ import annotations

import functools
import math
import textwrap
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

__all__ = [
    "SCHEDULES", "CompoundScale", "ConvArithmetic", "augmentation_explorer", "augmentation_figure",
    "augmentation_samples", "compound_scale", "compound_scaling_explorer", "compound_scaling_figure",
    "conv_arithmetic", "conv_arithmetic_explorer", "conv_arithmetic_figure", "conv_output_size", "conv_params",
    "lr_schedule_curves", "lr_schedule_explorer", "lr_schedule_figure", "show",
]

# Colours shared by the figures: the first and the second output position, and padding.
FIRST, SECOND, PAD = "#e69f00", "#0072b2", "#d9d9d9"


# ==========================================================================
# Small pieces
# ==========================================================================
def _finish(fig, title: str | None = None):
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plt.close(fig)  # shown once, by the caller (see icdl.plots)
    return fig


def _message_figure(title: str, message: str):
    """A figure that says why nothing can be drawn for these settings."""
    fig, ax = plt.subplots(figsize=(7, 2.2))
    ax.set_axis_off()
    ax.text(0.5, 0.5, textwrap.fill(message, 90), ha="center", va="center", fontsize=10, wrap=True,
            bbox=dict(boxstyle="round", fc="#fff2cc", ec="#bf9000"))
    return _finish(fig, title)


def _whole(name: str, value, low: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"{name} must be a whole number of at least {low}, got {value!r}.")
    return int(value)


# ==========================================================================
# 1. Convolution arithmetic
# ==========================================================================
def conv_output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output size along one side of a convolution or pooling layer (PyTorch's formula).

    A kernel of ``kernel_size`` taps, ``dilation`` pixels apart, spans ``d(k - 1) + 1``
    pixels; it fits ``n + 2p - d(k - 1)`` times in the padded input and keeps one position
    in ``stride``: ``floor((n + 2p - d(k - 1) - 1) / s) + 1``. Below 1 when the kernel is
    wider than the padded input (``nn.Conv2d`` then refuses to run).
    """
    covered = dilation * (kernel_size - 1) + 1
    return (n + 2 * padding - covered) // stride + 1


def conv_params(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    """Parameters of ``nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)``.

    One ``in_channels x k x k`` kernel per output channel, plus one bias per output channel.
    Stride, padding and dilation change where the kernel is applied, never how many weights it has.
    """
    return out_channels * in_channels * kernel_size * kernel_size + (out_channels if bias else 0)


@dataclass(frozen=True)
class ConvArithmetic:
    """The numbers of one square 2-D convolution (the same along height and width)."""

    input_size: int
    kernel_size: int
    stride: int
    padding: int
    dilation: int
    in_channels: int
    out_channels: int
    bias: bool

    @property
    def span(self) -> int:
        """Pixels one application of the kernel covers along a side, ``d(k - 1) + 1``."""
        return self.dilation * (self.kernel_size - 1) + 1

    @property
    def padded_size(self) -> int:
        return self.input_size + 2 * self.padding

    @property
    def output_size(self) -> int:
        return conv_output_size(self.input_size, self.kernel_size, self.stride, self.padding, self.dilation)

    @property
    def params(self) -> int:
        return conv_params(self.in_channels, self.out_channels, self.kernel_size, self.bias)

    def taps(self, position: int) -> list[int]:
        """Where output ``position`` reads along a side: indices into the *padded* input."""
        return [position * self.stride + i * self.dilation for i in range(self.kernel_size)]

    def formula(self) -> str:
        """The output-size formula with these numbers in it."""
        n, k, s, p, d = self.input_size, self.kernel_size, self.stride, self.padding, self.dilation
        return f"floor(({n} + 2*{p} - {d}*({k} - 1) - 1) / {s}) + 1 = {self.output_size}"


def conv_arithmetic(input_size: int = 7, kernel_size: int = 3, stride: int = 1, padding: int = 0,
                    dilation: int = 1, in_channels: int = 3, out_channels: int = 16,
                    bias: bool = True) -> ConvArithmetic:
    """The settings, checked: whole numbers, at least 1 (padding at least 0)."""
    return ConvArithmetic(_whole("input_size", input_size, 1), _whole("kernel_size", kernel_size, 1),
                          _whole("stride", stride, 1), _whole("padding", padding, 0),
                          _whole("dilation", dilation, 1), _whole("in_channels", in_channels, 1),
                          _whole("out_channels", out_channels, 1), bool(bias))


def _conv_text(c: ConvArithmetic) -> str:
    weights = f"{c.out_channels} x {c.in_channels} x {c.kernel_size} x {c.kernel_size} weights"
    biases = f" + {c.out_channels} biases" if c.bias else " (no bias)"
    return (f"output size = floor((n + 2p - d(k - 1) - 1) / s) + 1\n= {c.formula()}\n"
            f"output: {c.output_size} x {c.output_size} per channel; the kernel spans {c.span} x {c.span} pixels\n"
            f"parameters: {weights}{biases} = {c.params:,}")


def conv_arithmetic_figure(input_size: int = 7, kernel_size: int = 3, stride: int = 1, padding: int = 0,
                           dilation: int = 1, in_channels: int = 3, out_channels: int = 16, bias: bool = True):
    """The padded input, the taps of output positions (0, 0) and (0, 1), and the output grid.

    White cells are the input, grey cells the zeros of the padding. Orange squares mark the
    pixels that output (0, 0) reads, blue dots those that output (0, 1) reads, ``stride``
    pixels further right; each outline is the window the kernel spans. The title gives the
    output size (with the formula) and the parameter count.
    """
    from matplotlib.patches import Circle, Patch, Rectangle

    title = "Convolution arithmetic"
    try:
        c = conv_arithmetic(input_size, kernel_size, stride, padding, dilation, in_channels, out_channels, bias)
    except ValueError as exc:
        return _message_figure(title, str(exc))
    if c.output_size < 1:
        return _message_figure(title, (
            f"No output: the kernel spans d(k - 1) + 1 = {c.dilation}*({c.kernel_size} - 1) + 1 = {c.span} pixels, "
            f"but the padded input has only n + 2p = {c.input_size} + 2*{c.padding} = {c.padded_size}, so no "
            f"position fits ({c.formula()}) and nn.Conv2d raises an error. Pad more, or make the kernel or the "
            f"dilation smaller."))

    size, out = c.padded_size, c.output_size
    gap = 2
    cell = min(0.36, 9.0 / (size + gap + out))
    legend_h, title_h = 0.55, 1.05  # inches below and above the grids
    height = cell * (max(size, out) + 1.8) + legend_h + title_h
    fig, ax = plt.subplots(figsize=(max(6.5, cell * (size + gap + out) + 0.4), height))
    for r in range(size):
        for col in range(size):
            inside = c.padding <= r < c.padding + c.input_size and c.padding <= col < c.padding + c.input_size
            ax.add_patch(Rectangle((col, r), 1, 1, fc="white" if inside else PAD, ec="#999999", lw=0.6))
    positions = [(0, FIRST)] + ([(1, SECOND)] if out > 1 else [])
    for pos, color in positions:
        left = pos * c.stride
        ax.add_patch(Rectangle((left, 0), c.span, c.span, fill=False, ec=color, lw=2.2,
                               ls="-" if pos == 0 else "--"))
        for row in c.taps(0):
            for col in c.taps(pos):
                if pos == 0:
                    ax.add_patch(Rectangle((col + 0.1, row + 0.1), 0.42, 0.42, fc=color, ec="none"))
                else:
                    ax.add_patch(Circle((col + 0.7, row + 0.7), 0.2, fc=color, ec="none"))
    x0 = size + gap  # the output grid, to the right
    for r in range(out):
        for col in range(out):
            fc = FIRST if (r, col) == (0, 0) else SECOND if (r, col) == (0, 1) else "white"
            ax.add_patch(Rectangle((x0 + col, r), 1, 1, fc=fc, ec="#999999", lw=0.6))
    fs = 8 if cell > 0.25 else 7
    ax.text(size / 2, -0.4, f"padded input {size} x {size}", ha="center", va="bottom", fontsize=fs)
    ax.text(x0 + out / 2, -0.4, f"output {out} x {out}", ha="center", va="bottom", fontsize=fs)
    ax.set_xlim(-0.2, x0 + out + 0.2)
    ax.set_ylim(max(size, out) + 0.2, -1.6)  # row 0 at the top, as in an image
    ax.set_aspect("equal")
    ax.set_axis_off()
    handles = [Patch(fc="white", ec="#999999", label="input pixel"), Patch(fc=PAD, ec="#999999", label="zero padding"),
               Patch(fc=FIRST, label="read by output (0, 0)")]
    if out > 1:
        handles.append(Patch(fc=SECOND, label=f"read by output (0, 1), {c.stride} to the right"))
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(_conv_text(c), fontsize=10)
    fig.tight_layout(rect=(0, legend_h / height, 1, 1))
    plt.close(fig)
    return fig


def conv_arithmetic_explorer(input_size: int = 7, kernel_size: int = 3, stride: int = 1, padding: int = 0,
                             dilation: int = 1, in_channels: int = 3, out_channels: int = 16, bias: bool = True):
    """Sliders for :func:`conv_arithmetic_figure`'s settings, above the figure they give."""
    w = _widgets()
    controls = {
        "input_size": _int_slider("input n", input_size, 1, 16),
        "kernel_size": _int_slider("kernel k", kernel_size, 1, 7),
        "stride": _int_slider("stride s", stride, 1, 4),
        "padding": _int_slider("padding p", padding, 0, 4),
        "dilation": _int_slider("dilation d", dilation, 1, 4),
        "in_channels": _int_slider("in channels", in_channels, 1, 64),
        "out_channels": _int_slider("out channels", out_channels, 1, 64),
        "bias": w.Checkbox(value=bool(bias), description="bias"),
    }
    return _explorer(conv_arithmetic_figure, controls)


# ==========================================================================
# 2. Augmentation
# ==========================================================================
@functools.lru_cache(maxsize=None)
def _photo(name: str, size: int) -> torch.Tensor:
    """The centre square of a scikit-image photo, ``(1, 3, size, size)`` floats in 0..1."""
    import skimage.data

    from .data.standins import PHOTO_SOURCES

    image = torch.from_numpy(getattr(skimage.data, PHOTO_SOURCES[name])()).float() / 255
    image = image.unsqueeze(-1).expand(*image.shape, 3) if image.ndim == 2 else image[..., :3]  # grey -> RGB
    x = image.permute(2, 0, 1).unsqueeze(0)
    h, w = x.shape[-2:]
    side = min(h, w)
    x = x[..., (h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def augmentation_samples(photo: str = "cat", size: int = 64, draws: int = 5, seed: int = 0, crop_padding: int = 8,
                         flip: bool = True, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2,
                         rand_augment: int = 2, magnitude: int = 9, erasing: float = 0.25):
    """A photo and ``draws`` augmented copies: ``(original (1, 3, S, S), augmented (draws, 3, S, S), augment)``.

    ``photo`` names one of the photo stand-in's sources (:data:`icdl.data.standins.PHOTO_SOURCES`:
    ``"cat"`` is scikit-image's ``chelsea``), its centre square resized to ``size`` pixels, floats
    in 0..1. The copies go through :class:`icdl.augment.BatchAugment` with these settings as one
    batch, so each copy draws its own crop, flip, factors, operations and rectangle, from a
    ``torch.Generator`` seeded with ``seed``: the same settings give the same images. The
    defaults are the reference recipe's (:meth:`BatchAugment.reference`), with the crop's padding
    of 4 pixels on 32 scaled to the image. With no padding, no flip and every strength 0 the
    copies equal the original exactly.
    """
    from .augment import BatchAugment
    from .data.standins import PHOTO_SOURCES

    if photo not in PHOTO_SOURCES:
        raise ValueError(f"photo must be one of {', '.join(PHOTO_SOURCES)}; got {photo!r}.")
    size, draws = _whole("size", size, 8), _whole("draws", draws, 1)
    seed, crop_padding = _whole("seed", seed, 0), _whole("crop_padding", crop_padding, 0)
    rand_augment, magnitude = _whole("rand_augment", rand_augment, 0), _whole("magnitude", magnitude, 0)
    if magnitude > 30:
        raise ValueError(f"magnitude is RandAugment's strength out of 30, got {magnitude}.")
    for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} draws a factor in [1 - {name}, 1 + {name}], so it must be between 0 and 1 "
                             f"(a factor below 0 would invert the image); got {value}.")
    if not 0 <= erasing <= 1:
        raise ValueError(f"erasing is a probability, between 0 and 1; got {erasing}.")
    augment = BatchAugment(crop_padding=crop_padding, flip=bool(flip), brightness=brightness, contrast=contrast,
                           saturation=saturation, rand_augment=rand_augment, magnitude=magnitude, erasing=erasing)
    original = _photo(photo, size).clone()
    generator = torch.Generator().manual_seed(seed)
    augmented = augment(original.expand(draws, -1, -1, -1).clone(), generator=generator)
    return original, augmented, augment


def augmentation_figure(photo: str = "cat", size: int = 64, draws: int = 5, seed: int = 0, crop_padding: int = 8,
                        flip: bool = True, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2,
                        rand_augment: int = 2, magnitude: int = 9, erasing: float = 0.25):
    """The original photo and its augmented copies in one row (see :func:`augmentation_samples`)."""
    from .plots import show_images

    title = "Augmentation"
    try:
        original, augmented, augment = augmentation_samples(photo, size, draws, seed, crop_padding, flip, brightness,
                                                            contrast, saturation, rand_augment, magnitude, erasing)
    except ValueError as exc:
        return _message_figure(title, str(exc))
    names = ["original", *(f"draw {i + 1}" for i in range(len(augmented)))]
    fig = show_images(torch.cat([original, augmented]), labels=torch.arange(len(names)), classes=names,
                      ncols=len(names))
    heading = f"{photo}, {size} x {size} px, and {len(augmented)} draws (seed {seed}), each with its own parameters:"
    return _finish(fig, heading + "\n" + textwrap.fill(repr(augment), 16 * len(names)))


def augmentation_explorer(photo: str = "cat", size: int = 64, draws: int = 5, seed: int = 0, crop_padding: int = 8,
                          flip: bool = True, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2,
                          rand_augment: int = 2, magnitude: int = 9, erasing: float = 0.25):
    """Controls for :func:`augmentation_figure`'s settings, above the figure they give."""
    from .data.standins import PHOTO_SOURCES

    w = _widgets()
    controls = {
        "photo": w.Dropdown(options=list(PHOTO_SOURCES), value=photo, description="photo"),
        "size": w.Dropdown(options=sorted({32, 64, 128, int(size)}), value=int(size), description="size (px)"),
        "draws": _int_slider("draws", draws, 1, 8),
        "seed": _int_slider("seed", seed, 0, 99),
        "crop_padding": _int_slider("crop padding", crop_padding, 0, 32),
        "flip": w.Checkbox(value=bool(flip), description="flip"),
        "brightness": _float_slider("brightness", brightness, 0.0, 1.0, 0.05),
        "contrast": _float_slider("contrast", contrast, 0.0, 1.0, 0.05),
        "saturation": _float_slider("saturation", saturation, 0.0, 1.0, 0.05),
        "rand_augment": _int_slider("RandAugment ops", rand_augment, 0, 4),
        "magnitude": _int_slider("magnitude /30", magnitude, 0, 30),
        "erasing": _float_slider("erasing p", erasing, 0.0, 1.0, 0.05),
    }
    return _explorer(augmentation_figure, controls)


# ==========================================================================
# 3. Learning-rate schedules
# ==========================================================================
SCHEDULES = ("warmup_cosine", "step", "onecycle")


def _stepped(make, peak_lr: float, total_steps: int) -> list[float]:
    """The lr of each of ``total_steps`` steps, read from a dummy optimizer whose scheduler is ``make(opt)``."""
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=peak_lr, momentum=0.9)  # OneCycleLR cycles the momentum too
    scheduler = make(optimizer)
    lrs = []
    for step in range(total_steps):
        lrs.append(optimizer.param_groups[0]["lr"])  # what this step trains with
        optimizer.step()  # no gradient: changes nothing, but keeps the usual order of the two calls
        if step < total_steps - 1:
            scheduler.step()
    return lrs


def _labels(total_steps, warmup_steps, peak_lr, min_lr_ratio, step_size, gamma) -> dict[str, str]:
    return {
        "warmup_cosine": f"warmup_cosine(warmup_steps={warmup_steps}, total_steps={total_steps}, "
                         f"min_lr_ratio={min_lr_ratio:g})",
        "step": f"StepLR(step_size={step_size}, gamma={gamma:g})",
        "onecycle": f"OneCycleLR(max_lr={peak_lr:g}, total_steps={total_steps}, "
                    f"pct_start={warmup_steps / total_steps:.3g})",
    }


def lr_schedule_curves(total_steps: int = 1000, warmup_steps: int = 100, peak_lr: float = 0.1,
                       min_lr_ratio: float = 0.0, step_size: int = 300, gamma: float = 0.1,
                       schedules=SCHEDULES) -> dict[str, list[float]]:
    """The learning rate of every step, ``{name: [lr of step 0, ..., lr of step total_steps - 1]}``.

    Each schedule runs on its own dummy optimizer (SGD with base lr ``peak_lr``), stepped
    once per step, and the lr is read from the optimizer before each step:

    * ``"warmup_cosine"``: :func:`icdl.train.warmup_cosine` (linear warm-up over
      ``warmup_steps``, then half a cosine down to ``min_lr_ratio * peak_lr``);
    * ``"step"``: ``StepLR(step_size, gamma)``: ``peak_lr``, multiplied by ``gamma`` every
      ``step_size`` steps (usually stepped once per epoch; here once per step);
    * ``"onecycle"``: ``OneCycleLR(max_lr=peak_lr, total_steps, pct_start=warmup_steps / total_steps)``
      with torch's other defaults: it starts at ``peak_lr / 25``, rises along a cosine and
      anneals to ``peak_lr / 25e4``.

    Settings the schedulers refuse raise ``ValueError`` with their message.
    """
    from .train import warmup_cosine

    total_steps = _whole("total_steps", total_steps, 1)
    warmup_steps = _whole("warmup_steps", warmup_steps, 0)
    step_size = _whole("step_size", step_size, 1)
    if not peak_lr > 0:
        raise ValueError(f"peak_lr must be positive, got {peak_lr}.")
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma multiplies the lr at every drop: between 0 (excluded) and 1, got {gamma}.")
    unknown = set(schedules) - set(SCHEDULES)
    if unknown:
        raise ValueError(f"unknown schedules {sorted(unknown)}; the schedules are {', '.join(SCHEDULES)}.")
    lr_scheduler = torch.optim.lr_scheduler
    makers = {
        "warmup_cosine": lambda opt: warmup_cosine(opt, warmup_steps, total_steps, min_lr_ratio),
        "step": lambda opt: lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma),
        "onecycle": lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=peak_lr, total_steps=total_steps,
                                                        pct_start=warmup_steps / total_steps),
    }
    curves = {}
    for name in (s for s in SCHEDULES if s in schedules):
        try:
            curves[name] = _stepped(makers[name], peak_lr, total_steps)
        except ZeroDivisionError as exc:  # OneCycleLR: a phase of zero length, e.g. a warm-up of one step
            label = _labels(total_steps, warmup_steps, peak_lr, min_lr_ratio, step_size, gamma)[name]
            raise ValueError(f"{label} fails in torch ({type(exc).__name__}: {exc}): its warm-up phase of "
                             f"{warmup_steps} step(s) has no length to interpolate over. Choose 0 or at least "
                             f"2 warm-up steps, or leave OneCycleLR out.") from exc
    return curves


def _peak(lrs: list[float]) -> int:
    """The first step with the highest lr."""
    return max(range(len(lrs)), key=lambda i: (lrs[i], -i))


def lr_schedule_figure(total_steps: int = 1000, warmup_steps: int = 100, peak_lr: float = 0.1,
                       min_lr_ratio: float = 0.0, step_size: int = 300, gamma: float = 0.1,
                       warmup_cosine: bool = True, step: bool = True, onecycle: bool = True, log_scale: bool = False):
    """The lr against the step for the chosen schedules (see :func:`lr_schedule_curves`), peaks marked."""
    title = "Learning-rate schedules"
    chosen = [name for name, on in zip(SCHEDULES, (warmup_cosine, step, onecycle)) if on]
    if not chosen:
        return _message_figure(title, "Choose at least one schedule to draw.")
    try:
        curves = lr_schedule_curves(total_steps, warmup_steps, peak_lr, min_lr_ratio, step_size, gamma, chosen)
    except ValueError as exc:
        return _message_figure(title, str(exc))
    labels = _labels(total_steps, warmup_steps, peak_lr, min_lr_ratio, step_size, gamma)
    colors = {"warmup_cosine": FIRST, "step": "#555555", "onecycle": SECOND}
    styles = {"warmup_cosine": (3.2, "-"), "step": (1.6, "-"), "onecycle": (1.6, "--")}  # curves can coincide
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for name, lrs in curves.items():
        top = _peak(lrs)
        ax.plot(range(len(lrs)), lrs, color=colors[name], lw=styles[name][0], ls=styles[name][1],
                label=f"{labels[name]}: peak {lrs[top]:.3g} at step {top}, last {lrs[-1]:.3g}")
        ax.plot([top], [lrs[top]], "o", color=colors[name], ms=5)
    if warmup_steps:
        ax.axvline(warmup_steps - 0.5, color="#999999", lw=0.8, ls=":")
    ax.set_xlabel("step (counting from 0)")
    ax.set_ylabel("learning rate")
    if log_scale:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlim(0, max(total_steps - 1, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    return _finish(fig, f"{title}: the lr of each of {total_steps} steps, warm-up {warmup_steps} steps "
                        f"(dotted line), peak lr {peak_lr:g}")


def lr_schedule_explorer(total_steps: int = 1000, warmup_steps: int = 100, peak_lr: float = 0.1,
                         min_lr_ratio: float = 0.0, step_size: int = 300, gamma: float = 0.1,
                         warmup_cosine: bool = True, step: bool = True, onecycle: bool = True,
                         log_scale: bool = False):
    """Controls for :func:`lr_schedule_figure`'s settings, above the figure they give."""
    w = _widgets()
    controls = {
        "total_steps": _int_slider("total steps", total_steps, 10, 5000, 10),
        "warmup_steps": _int_slider("warm-up steps", warmup_steps, 0, 1000),
        "peak_lr": w.FloatLogSlider(value=peak_lr, base=10, min=min(-4, math.log10(peak_lr)),
                                    max=max(0, math.log10(peak_lr)), step=0.1, description="peak lr",
                                    continuous_update=False, style=_STYLE),
        "min_lr_ratio": _float_slider("min lr ratio", min_lr_ratio, 0.0, 1.0, 0.01),
        "step_size": _int_slider("StepLR step", step_size, 1, 2000, 10),
        "gamma": _float_slider("StepLR gamma", gamma, 0.05, 1.0, 0.05),
        "warmup_cosine": w.Checkbox(value=bool(warmup_cosine), description="warmup_cosine"),
        "step": w.Checkbox(value=bool(step), description="StepLR"),
        "onecycle": w.Checkbox(value=bool(onecycle), description="OneCycleLR"),
        "log_scale": w.Checkbox(value=bool(log_scale), description="log scale"),
    }
    return _explorer(lr_schedule_figure, controls)


# ==========================================================================
# 4. EfficientNet's compound scaling
# ==========================================================================
MAX_PHI = 4.0  # the largest phi compound_scale builds (about 16 times the FLOPs of B0)


@dataclass(frozen=True)
class CompoundScale:
    """EfficientNet-B0 scaled by the paper's rule at coefficient ``phi``, as built and counted."""

    phi: float
    depth: float       # alpha ** phi, multiplies each stage's layers (rounded up)
    width: float       # beta ** phi, multiplies the channels (rounded to multiples of 8)
    resolution: int    # round(224 * gamma ** phi) pixels
    blocks: int        # MBConv blocks in the built network (B0: 16)
    num_features: int  # channels of the head convolution (B0: 1280)
    params: int
    flops: int         # one 3 x resolution x resolution image, a multiply-add counted as 2


@functools.lru_cache(maxsize=64)
def _compound_scale(phi: float) -> CompoundScale:
    from .models import efficientnet
    from .summary import count_flops, count_params

    depth, width, gamma = efficientnet.compound_scaling(phi)
    resolution = round(224 * gamma)
    with torch.device("meta"):  # shapes only: no memory for the weights, no arithmetic
        model = efficientnet.EfficientNet(width_mult=width, depth_mult=depth)
    return CompoundScale(phi, depth, width, resolution, len(model.blocks()), model.num_features,
                         count_params(model), count_flops(model, (1, 3, resolution, resolution)))


def compound_scale(phi: float) -> CompoundScale:
    """EfficientNet with depth ``1.2^phi``, width ``1.1^phi`` and ``round(224 * 1.15^phi)`` px, counted.

    Built as ``EfficientNet(width_mult=1.1**phi, depth_mult=1.2**phi)`` on the ``meta``
    device, its FLOPs counted by :func:`icdl.summary.count_flops` at its own resolution. The
    results are cached. ``phi`` between 0 (B0) and :data:`MAX_PHI`; a ``ValueError`` otherwise.
    """
    if not 0 <= phi <= MAX_PHI:
        raise ValueError(f"phi must be between 0 (EfficientNet-B0) and {MAX_PHI:g}, got {phi}.")
    return _compound_scale(round(float(phi), 6))


def compound_scaling_figure(phi: float = 1.0):
    """FLOPs against phi (the rule's networks at phi = 0..3 and at ``phi``), beside the numbers at ``phi``.

    Left: the FLOPs of each network divided by B0's, on a log scale, against ``2^phi`` and the
    rule's own ``(alpha beta^2 gamma^2)^phi = 1.92^phi``; grey diamonds are torchvision's B1-B3,
    whose coefficients were rounded by hand (:data:`icdl.models.efficientnet.SCALINGS`, their
    multiply-adds from :func:`icdl.models.registry.model_facts`). Right: depth, width and
    resolution at ``phi``, and what the built network has.
    """
    from .models import efficientnet
    from .models.registry import model_facts

    title = "EfficientNet's compound scaling"
    try:
        now = compound_scale(phi)
    except ValueError as exc:
        return _message_figure(title, str(exc))
    base = compound_scale(0.0)
    grid = sorted({0.0, 1.0, 2.0, 3.0, float(phi)})
    ratios = [compound_scale(p).flops / base.flops for p in grid]
    ratio = now.flops / base.flops

    fig, (ax, text_ax) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1.3, 1]})
    smooth = [i / 20 for i in range(0, int(max(grid) * 20) + 1)]
    ax.plot(smooth, [2 ** p for p in smooth], color="#999999", ls="--", lw=1.2, label="2^phi")
    ax.plot(smooth, [efficientnet.flops_growth(p) for p in smooth], color="#999999", ls=":", lw=1.2,
            label=f"(alpha beta^2 gamma^2)^phi = {efficientnet.flops_growth(1):.2f}^phi")
    ax.plot(grid, ratios, "o-", color=SECOND, ms=5, label="the rule's network, counted")
    released = [model_facts(f"efficientnet_b{i}").macs for i in range(4)]
    ax.plot(range(1, 4), [m / released[0] for m in released[1:]], "D", color="#777777", ms=5,
            label="torchvision's B1-B3 (rounded coefficients)")
    ax.plot([phi], [ratio], "o", color=FIRST, ms=10, zorder=3)
    ax.annotate(f"{ratio:.2f}x", (phi, ratio), xytext=(-44, 6), textcoords="offset points", fontsize=9, color=FIRST)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("phi")
    ax.set_ylabel("FLOPs / FLOPs of B0")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")

    text_ax.set_axis_off()
    a, b, g = efficientnet.ALPHA, efficientnet.BETA, efficientnet.GAMMA
    lines = [
        f"phi = {phi:g}",
        f"depth       alpha^phi = {a:g}^{phi:g} = {now.depth:.3f}: {base.blocks} -> {now.blocks} blocks",
        f"width       beta^phi  = {b:g}^{phi:g} = {now.width:.3f}: {base.num_features} -> {now.num_features} "
        f"head channels",
        f"resolution  gamma^phi = {g:g}^{phi:g} = {g ** phi:.3f}: {base.resolution} -> {now.resolution} px",
        "",
        f"parameters  {base.params / 1e6:.2f} M -> {now.params / 1e6:.2f} M",
        f"FLOPs       {base.flops / 1e9:.2f} G -> {now.flops / 1e9:.2f} G",
        f"            {ratio:.2f}x B0; 2^phi = {2 ** phi:.2f}; {efficientnet.flops_growth(1):.2f}^phi = "
        f"{efficientnet.flops_growth(phi):.2f}",
        "",
        "FLOPs by torch's counter, a multiply-add counted as 2;",
        "layers are rounded up to whole blocks, channels to multiples of 8.",
    ]
    text_ax.text(0.0, 0.5, "\n".join(lines), family="monospace", fontsize=8.5, va="center", ha="left",
                 transform=text_ax.transAxes)
    return _finish(fig, f"{title}: depth 1.2^phi, width 1.1^phi, resolution 1.15^phi; FLOPs grow about 2^phi")


def compound_scaling_explorer(phi: float = 1.0):
    """A slider for phi above :func:`compound_scaling_figure` (each new phi builds and counts a network)."""
    controls = {"phi": _float_slider("phi", phi, 0.0, 3.0, 0.25)}
    return _explorer(compound_scaling_figure, controls)


# ==========================================================================
# The widget layer: ipywidgets 7.7 and 8.1 alike
# ==========================================================================
_STYLE = {"description_width": "initial"}


def _widgets():
    import ipywidgets

    return ipywidgets


def _int_slider(description: str, value: int, low: int, high: int, step: int = 1):
    """An ``IntSlider`` whose range also holds ``value`` (an initial value is never clamped silently)."""
    return _widgets().IntSlider(value=int(value), min=min(low, int(value)), max=max(high, int(value)), step=step,
                                description=description, continuous_update=False, style=_STYLE)


def _float_slider(description: str, value: float, low: float, high: float, step: float):
    return _widgets().FloatSlider(value=float(value), min=min(low, float(value)), max=max(high, float(value)),
                                  step=step, description=description, continuous_update=False, style=_STYLE)


@functools.lru_cache(maxsize=None)
def _explorer_class():
    """The :class:`Explorer` widget class, made on first use so that the figures need no ipywidgets."""
    import ipywidgets as widgets
    from IPython.display import HTML, display

    class Explorer(widgets.VBox):
        """Controls above an ``Output`` with the figure of their values; a change of any control redraws it."""

        def __init__(self, figure_fn, controls: dict):
            self.output = widgets.Output()
            box = widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
            super().__init__(children=[box, self.output])
            self.controls = dict(controls)
            self.figure_fn = figure_fn
            self.figure = None
            self._static = None  # the image output show() displayed, emptied at the first change
            for control in self.controls.values():
                control.observe(self._changed, names="value")
            self.redraw()

        def settings(self) -> dict:
            """The controls' current values, by setting name."""
            return {name: control.value for name, control in self.controls.items()}

        def redraw(self):
            """Draw the figure of the current settings into the ``Output``; returns it."""
            with self.output:  # in a kernel, an unexpected error shows here rather than in a log
                self.output.clear_output(wait=True)
                self.figure = self.figure_fn(**self.settings())
                display(self.figure)
            return self.figure

        def _changed(self, change):
            self.redraw()
            if self._static is not None:  # the live figure now sits under the controls
                self._static.update(HTML(""))
                self._static = None

        def _show(self):
            self.output.clear_output()
            display(self)
            self._static = display(self.figure, display_id=True)  # None outside IPython

    return Explorer


def _explorer(figure_fn, controls: dict):
    return _explorer_class()(figure_fn, controls)


def show(explorer) -> None:
    """Display ``explorer``'s controls, then its figure as an ordinary image output.

    The image is what the HTML book keeps (a widget there has no kernel to redraw it). With a
    kernel, the first change of a control draws the figure inside the explorer and empties
    the image output, so the page never shows the figure twice.
    """
    explorer._show()
