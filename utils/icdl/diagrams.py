"""Block diagrams of the course's architectures, drawn from the models' own code.

Every number in a diagram (kernel sizes, channels, strides, output shapes) is read from a
configuration table of :mod:`icdl.models` or from a module built from it, so a diagram
cannot disagree with the model the chapter trains. Large networks are built on PyTorch's
``meta`` device: shapes without memory or time.

* :func:`lenet_pipeline`: LeNet-5's stages with each one's output shape (a traced input);
* :func:`alexnet_two_gpu`: the 2012 paper's split of AlexNet over two GPUs (``groups``);
* :func:`vgg_stage`: one stage of a VGG column (n 3x3 convolutions, then a max pool);
* :func:`inception_module`: GoogLeNet's four branches and their concatenation;
* :func:`residual_block`: ResNet's basic or bottleneck block, with its shortcut;
* :func:`dense_block`: DenseNet's growing concatenation ``k0 + i k``, then a transition;
* :func:`depthwise_separable`, :func:`mbconv`: MobileNet's separable layer, the inverted
  residual of MobileNetV2 and EfficientNet's MBConv;
* :func:`convnext_block`, :func:`transformer_block`: a ConvNeXt block and a ViT encoder block.

Each returns a matplotlib ``Figure``, closed in pyplot as :mod:`icdl.plots` does, so it shows
once as a cell's value; it fits a book page (at most about 7.5 inches wide). Stages and layers
are counted from 1, as the papers count them. An argument the models do not have (an unknown
configuration, a stage out of range) raises a ``ValueError`` that names the valid ones.

The drawing conventions: data flows along arrows; an addition is a circle with ``+``; a
concatenation is a green box marked "concat"; shortcuts leave the main line at a dot and
rejoin it along a rounded path.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path
from matplotlib.textpath import TextToPath
from torch import nn

from .models.layers import SqueezeExcitation
from .models import alexnet, convnext, densenet, efficientnet, googlenet, lenet, mobilenet, resnet, vgg, vit

__all__ = ["lenet_pipeline", "alexnet_two_gpu", "vgg_stage", "inception_module", "residual_block", "dense_block",
           "depthwise_separable", "mbconv", "convnext_block", "transformer_block"]

# ==========================================================================
# The drawing layer: boxes, merge nodes and arrows, in inches
# ==========================================================================
FONT = 9  # points, the text in boxes
GAP = 0.32  # inches between stacked boxes (room for an arrow)
COLORS = {
    "io": "#eeeeee", "conv": "#cfe2f3", "dw": "#c9e4de", "pool": "#f4cccc", "norm": "#fff2cc",
    "act": "#fce5cd", "fc": "#d9d2e9", "attn": "#d0e0e3", "se": "#ead1dc", "concat": "#b6d7a8",
}
EDGE, CROSS = "#333333", "#c55a11"  # lines; arrows that cross between AlexNet's GPUs
MAX_WIDTH = 7.5  # inches: what a book page shows at full size; layouts that can wrap stay within it
MIN_TITLE_WIDTH = 6.0  # inches: a title narrower than this never wraps
_TEXT_PATH = TextToPath()
_LINE_SPACING = 1.25


@functools.lru_cache(maxsize=4096)  # a diagram measures each text two or three times
def _text_size(text: str, size: float = FONT, weight: str = "normal",
               style: str = "normal") -> tuple[float, float]:
    """Width and height in inches of (multi-line) ``text`` at ``size`` points, without a renderer."""
    prop = FontProperties(size=size, weight=weight, style=style)
    lines = text.split("\n")
    width = max(_TEXT_PATH.get_text_width_height_descent(line or " ", prop, ismath=False)[0] for line in lines)
    return width / 72, len(lines) * size * _LINE_SPACING / 72


@dataclass
class _Node:
    x: float
    y: float
    w: float
    h: float

    @property
    def top(self):
        return (self.x, self.y + self.h / 2)

    @property
    def bottom(self):
        return (self.x, self.y - self.h / 2)

    @property
    def left(self):
        return (self.x - self.w / 2, self.y)

    @property
    def right(self):
        return (self.x + self.w / 2, self.y)


class _Diagram:
    """A figure whose data units are inches: what is drawn sets the figure's size in :meth:`finish`."""

    def __init__(self, title: str):
        self.fig = plt.figure()
        plt.close(self.fig)  # shown once, by the caller (as icdl.plots does); no leak if drawing fails
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_axis_off()
        self.title = title
        self.lo, self.hi = [math.inf, math.inf], [-math.inf, -math.inf]

    def _extend(self, x0, y0, x1, y1):
        self.lo = [min(self.lo[0], x0), min(self.lo[1], y0)]
        self.hi = [max(self.hi[0], x1), max(self.hi[1], y1)]

    def text(self, x, y, s, size=FONT, ha="center", va="center", **kwargs):
        w, h = _text_size(s, size, kwargs.get("weight", "normal"), kwargs.get("style", "normal"))
        x0 = {"center": x - w / 2, "left": x, "right": x - w}[ha]
        y0 = {"center": y - h / 2, "bottom": y, "top": y - h}[va]
        self._extend(x0, y0, x0 + w, y0 + h)
        self.ax.text(x, y, s, fontsize=size, ha=ha, va=va, linespacing=_LINE_SPACING, **kwargs)

    @staticmethod
    def size(text, w=None):
        tw, th = _text_size(text)
        return max(w or 0.0, tw + 0.24), th + 0.16

    def box(self, x, y, text, kind="conv", w=None, top=None, h=None) -> _Node:
        """A rounded box around ``text``, centred on (x, y), or hanging from ``top``; at least ``w`` x ``h``."""
        w, text_h = self.size(text, w)
        h = max(h or 0.0, text_h)
        if top is not None:
            y = top - h / 2
        pad = 0.05
        self.ax.add_patch(FancyBboxPatch((x - w / 2 + pad, y - h / 2 + pad), w - 2 * pad, h - 2 * pad,
                                         boxstyle=f"round,pad={pad}", fc=COLORS[kind], ec=EDGE, lw=1))
        self.text(x, y, text)
        self._extend(x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        return _Node(x, y, w, h)

    def merge(self, x, y=None, op="add", top=None, w=None) -> _Node:
        """An addition (a circle with +) or a concatenation (a green box "concat", ``w`` wide)."""
        if op == "concat":
            return self.box(x, y, "concat", "concat", w=w, top=top)
        r = 0.15
        y = top - r if top is not None else y
        self.ax.add_patch(Circle((x, y), r, fc="white", ec=EDGE, lw=1.2))
        self.ax.text(x, y, "+", fontsize=13, ha="center", va="center")
        self._extend(x - r, y - r, x + r, y + r)
        return _Node(x, y, 2 * r, 2 * r)

    def arrow(self, *points, color=EDGE, corner=0.18, head=True):
        """An arrow along a polyline, its corners rounded (radius ``corner``)."""
        pts = [points[0]] + [p for a, p in zip(points, points[1:]) if p != a]
        verts, codes = [pts[0]], [Path.MOVETO]
        for prev, p, nxt in zip(pts, pts[1:], pts[2:]):
            d_in, d_out = math.dist(prev, p), math.dist(p, nxt)
            r = min(corner, d_in / 2, d_out / 2)
            a = (p[0] - r * (p[0] - prev[0]) / d_in, p[1] - r * (p[1] - prev[1]) / d_in)
            b = (p[0] + r * (nxt[0] - p[0]) / d_out, p[1] + r * (nxt[1] - p[1]) / d_out)
            verts += [a, p, b]
            codes += [Path.LINETO, Path.CURVE3, Path.CURVE3]
        verts.append(pts[-1])
        codes.append(Path.LINETO)
        self.ax.add_patch(FancyArrowPatch(path=Path(verts, codes), arrowstyle="-|>" if head else "-",
                                          mutation_scale=11, lw=1.2, color=color))
        xs, ys = zip(*pts)
        self._extend(min(xs), min(ys), max(xs), max(ys))

    def connect(self, a: _Node, b: _Node, color=EDGE):
        """From the bottom of ``a`` to the top of ``b`` (an elbow when they are not aligned)."""
        if abs(a.x - b.x) < 1e-9:
            self.arrow(a.bottom, b.top, color=color)
        else:
            mid = (a.bottom[1] + b.top[1]) / 2
            self.arrow(a.bottom, (a.x, mid), (b.x, mid), b.top, color=color)

    def tap(self, node: _Node, gap=GAP):
        """A dot on the arrow that leaves ``node`` downwards: where a shortcut branches off."""
        point = (node.x, node.bottom[1] - gap / 2)
        self.ax.add_patch(Circle(point, 0.035, fc=EDGE, ec=EDGE))
        return point

    def skip(self, src: _Node, dst: _Node, x: float, label: str = "", color=EDGE):
        """A shortcut from just below ``src`` round the right-hand side (at ``x``) into ``dst``."""
        start = self.tap(src)
        self.arrow(start, (x, start[1]), (x, dst.y), dst.right, color=color, corner=0.3)
        if label:
            self.text(x + 0.08, (start[1] + dst.y) / 2, label, size=FONT - 0.5, ha="left", style="italic")

    def stack(self, x, top, items, w=None) -> list[_Node]:
        """Boxes (``(text, kind)``) and merges (``"add"``, ``"concat"``) downwards from ``top``, joined by arrows."""
        nodes: list[_Node] = []
        for item in items:
            if isinstance(item, str):
                node = self.merge(x, op=item, top=top)
            else:
                node = self.box(x, None, *item, w=w, top=top)
            if nodes:
                self.connect(nodes[-1], node)
            nodes.append(node)
            top = node.bottom[1] - GAP
        return nodes

    def note(self, text):
        """A line of explanation under everything drawn so far."""
        self.text((self.lo[0] + self.hi[0]) / 2, self.lo[1] - 0.12, text, size=FONT - 0.5, va="top",
                  color="#444444", style="italic")

    def finish(self):
        if self.title:
            title = _wrap(self.title, max(self.hi[0] - self.lo[0], MIN_TITLE_WIDTH), FONT + 2, "bold")
            self.text((self.lo[0] + self.hi[0]) / 2, self.hi[1] + 0.15, title, size=FONT + 2, va="bottom",
                      weight="bold")
        m = 0.15
        (x0, y0), (x1, y1) = self.lo, self.hi
        self.fig.set_size_inches(x1 - x0 + 2 * m, y1 - y0 + 2 * m)
        self.ax.set_xlim(x0 - m, x1 + m)
        self.ax.set_ylim(y0 - m, y1 + m)
        return self.fig


def _wrap(text: str, width: float, size: float = FONT, weight: str = "normal") -> str:
    """``text`` broken at spaces into lines at most ``width`` inches wide (a longer word keeps its line);
    its own line breaks stay."""
    if "\n" in text:
        return "\n".join(_wrap(line, width, size, weight) for line in text.split("\n"))
    words: list[str] = []
    glue = False
    for word in text.split(" "):  # an arrow or an operator stays with the words on both sides
        operator = word in ("→", "=", "+", "×")
        if words and (glue or operator):
            words[-1] += f" {word}"
        else:
            words.append(word)
        glue = operator
    lines: list[str] = []
    for word in words:
        if lines and _text_size(f"{lines[-1]} {word}", size, weight)[0] <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


def _width(texts) -> float:
    """One box width that fits every text (tidy columns)."""
    return max(_Diagram.size(t)[0] for t in texts)


def _shape(shape) -> str:
    return "×".join(str(s) for s in shape)


def _k(conv) -> str:
    k = conv.kernel_size
    return f"{k[0]}×{k[1]}" if isinstance(k, tuple) else f"{k}×{k}"


def _stride(conv) -> int:
    s = conv.stride
    return s[0] if isinstance(s, tuple) else s


def _on_meta(build):
    """Build a module on the meta device: shapes and attributes, no memory, no initialisation cost."""
    with torch.device("meta"):
        return build()


def _option(value, options, what: str):
    """``value`` if it is one of ``options``; otherwise a ValueError that names them all."""
    options = list(options)
    if value not in options:
        raise ValueError(f"unknown {what} {value!r}; the {what}s are {', '.join(map(repr, options))}")
    return value


def _activation(layer) -> str:
    """The activation of a ``ConvNormActivation`` (conv, norm, activation), by its class name."""
    return type(layer[-1]).__name__ if len(layer) > 2 else "no activation"


# ==========================================================================
# LeNet-5 and AlexNet: pipelines
# ==========================================================================
def _lenet_op(module) -> str:
    """What a LeNet-5 layer does, in two short lines (narrow boxes: four fit across a page)."""
    if isinstance(module, lenet.PartialConv2d):
        k, maps = module.weight.shape[-1], len(module.table)
        links = sum(len(t) for t in module.table)
        return f"conv {k}×{k}\n{maps} maps\n({links} of {maps * module.in_channels} links)"
    if isinstance(module, nn.Conv2d):
        pad = f", padding {module.padding[0]}" if module.padding[0] else ""
        return f"conv {_k(module)}\n{module.out_channels} maps{pad}"
    if isinstance(module, nn.MaxPool2d):
        return f"max pool {module.kernel_size}×{module.kernel_size}"
    if isinstance(module, lenet.TrainableSubsampling):
        return f"subsample {module.kernel_size}×{module.kernel_size}\n(trainable)"
    return f"fully connected\n{module.out_features} units"


_LENET_EXTRAS = {nn.ReLU: "ReLU", lenet.ScaledTanh: "scaled tanh", nn.BatchNorm2d: "BN"}


def lenet_pipeline(variant: str = "modern", c1_padding: int = 0, batch_norm: bool = False):
    """LeNet-5's stages, each with its output shape, traced by running one image through the model.

    ``variant`` ("modern" or "classic"), ``c1_padding`` (2: 28x28 inputs, MNIST's size) and
    ``batch_norm`` as :func:`icdl.models.lenet.lenet5`.
    """
    _option(variant, lenet.VARIANTS, "variant")
    if not 0 <= c1_padding <= 13:
        raise ValueError(f"c1_padding must be between 0 and 13 (an input of 32 - 2 * c1_padding pixels), "
                         f"not {c1_padding}")
    model = lenet.lenet5(variant, c1_padding=c1_padding, batch_norm=batch_norm).eval()
    size = 32 - 2 * c1_padding
    x = torch.zeros(1, model.features.c1.in_channels, size, size)
    stages = []  # [name, op text, extras, output shape]
    with torch.no_grad():
        for container in (model.features, model.classifier):
            for name, module in container.named_children():
                x = module(x)
                if isinstance(module, nn.Flatten):
                    continue
                if type(module) in _LENET_EXTRAS:
                    stages[-1][2].append(_LENET_EXTRAS[type(module)])
                else:
                    stages.append([name, _lenet_op(module), [], None])
                stages[-1][3] = tuple(x.shape[1:])
    texts = [f"input\n{_shape((model.features.c1.in_channels, size, size))}"]
    for name, op, extras, shape in stages:
        title = f"{name}\n" if name == "output" else f"{name.upper()}: "
        texts.append(f"{title}{op}" + (f"\n{', '.join(extras)}" if extras else "") + f"\n→ {_shape(shape)}")
    bn = ", with batch norm" if batch_norm else ""
    d = _Diagram(f"LeNet-5 ({variant}{bn}): the output shape of every stage, for a {size}×{size} image")
    w = _width(texts)
    dx = w + 0.4
    # As many boxes per row as fit the page, the rows as even as they can be.
    fit = max(1, int((MAX_WIDTH - 0.3 + 0.4) // dx))
    rows = math.ceil(len(texts) / fit)
    per_row = math.ceil(len(texts) / rows)
    h = max(_Diagram.size(t)[1] for t in texts)
    nodes = []
    for i, text in enumerate(texts):
        row, col = divmod(i, per_row)
        node = d.box(col * dx, -row * (h + 0.55), text, "io" if i == 0 else _lenet_kind(text), w=w, h=h)
        if nodes and col == 0:  # wrap to the next row
            prev = nodes[-1]
            mid = (prev.bottom[1] + node.top[1]) / 2
            d.arrow(prev.bottom, (prev.x, mid), (node.x, mid), node.top)
        elif nodes:
            d.arrow(nodes[-1].right, node.left)
        nodes.append(node)
    if variant == "classic":
        d.note("the paper's output layer is 10 Euclidean RBF units; the course's model uses a linear layer\n"
               "trained with softmax cross-entropy")
    return d.finish()


def _lenet_kind(text: str) -> str:
    return "conv" if "conv" in text else "pool" if ("pool" in text or "subsample" in text) else "fc"


def alexnet_two_gpu(config: str = "paper", image_size: int = 224):
    """AlexNet's layers as the 2012 paper ran them, one half of every layer on each of two GPUs.

    A layer with ``groups=2`` in :data:`icdl.models.alexnet.CONFIGS` reads only its own GPU's
    half of the previous layer; a layer with ``groups=1`` reads both halves (orange arrows).
    Output sizes are traced with an ``image_size`` input. Only a configuration with a grouped
    layer was split over two GPUs ("paper"; torchvision's variant runs on one).
    """
    specs = alexnet.CONFIGS[_option(config, alexnet.CONFIGS, "configuration")]
    if not any(spec.groups == 2 for spec in specs):
        split = [name for name, rows in alexnet.CONFIGS.items() if any(r.groups == 2 for r in rows)]
        raise ValueError(f"configuration {config!r} has no groups=2 layer: it runs on one GPU. The "
                         f"configurations split over two GPUs are {', '.join(map(repr, split))}")
    model = _on_meta(lambda: alexnet.AlexNet(specs))
    x = torch.empty(1, 3, image_size, image_size, device="meta")
    layers = []  # [conv, output shape, extras]
    for layer in model.features:
        x = layer(x)
        if isinstance(layer, nn.Conv2d):
            layers.append([layer, tuple(x.shape[2:]), []])
        elif isinstance(layer, nn.LocalResponseNorm):
            layers[-1][2].append("LRN")
        elif isinstance(layer, nn.MaxPool2d):
            k = layer.kernel_size
            layers[-1][2].append(f"max pool {k}×{k}/{layer.stride} → {_shape(x.shape[2:])}")
    texts = []
    for i, (conv, hw, extras) in enumerate(layers, start=1):
        stride = f", stride {_stride(conv)}" if _stride(conv) > 1 else ""
        text = (f"conv{i}: {_k(conv)}{stride}, groups={conv.groups}\n"
                f"{conv.out_channels // 2} of {conv.out_channels} maps, {_shape(hw)}")
        texts.append(text + (f"\n{', '.join(extras)}" if extras else ""))
    fcs = [m for m in model.classifier if isinstance(m, nn.Linear)]
    pool = model.avgpool.output_size
    d = _Diagram(f"AlexNet ({config}) on two GPUs: half of every layer's maps on each")
    w = _width(texts)
    dx = w / 2 + 0.45
    image = d.box(0, 0, f"input image\n3×{image_size}×{image_size}", "io")
    top = image.bottom[1] - 0.5
    rows, h = [], max(_Diagram.size(t)[1] for t in texts)
    for i, text in enumerate(texts):
        pair = [d.box(side * dx, top - h / 2, text, "conv", w=w, h=h) for side in (-1, 1)]
        if not rows:
            for node in pair:
                d.connect(image, node)
            for node, name, ha in ((pair[0], "GPU 1", "right"), (pair[1], "GPU 2", "left")):
                # beside the arrow that comes down into the column, outside it
                side = -1 if ha == "right" else 1
                d.text(node.x + side * 0.12, node.top[1] + 0.12, name, weight="bold", ha=ha)
        else:
            for prev, node in zip(rows[-1], pair):
                d.arrow(prev.bottom, node.top)
            if layers[i][0].groups == 1:  # reads both halves: the GPUs exchange their maps
                d.arrow(rows[-1][0].bottom, pair[1].top, color=CROSS)
                d.arrow(rows[-1][1].bottom, pair[0].top, color=CROSS)
        rows.append(pair)
        top = pair[0].bottom[1] - 0.4
    fc_text = (f"avg pool to {pool}×{pool}, then fully connected\n"
               + " → ".join(str(n) for n in [fcs[0].in_features] + [m.out_features for m in fcs])
               + " (reads both GPUs' maps)")
    fc = d.box(0, None, fc_text, "fc", top=top)
    for prev in rows[-1]:
        d.connect(prev, fc, color=CROSS)
    grouped = [f"conv{i}" for i, (conv, _, _) in enumerate(layers, start=1) if conv.groups == 2]
    d.note(f"orange: the layer reads both GPUs' maps (groups=1). Grouped (groups=2), each half reads only its\n"
           f"own GPU's maps: {', '.join(grouped)}.")
    return d.finish()


# ==========================================================================
# VGG and GoogLeNet
# ==========================================================================
def vgg_stage(config: str = "D", stage: int = 3, image_size: int = 224):
    """Stage ``stage`` (1-based) of a column of VGG's Table 1: its 3x3 convolutions and the max pool.

    Built with :func:`icdl.models.vgg.make_layers` from ``vgg.CONFIGS[config]``; the sizes are
    traced with an ``image_size`` input. The depth in the title (VGG-16 for "D") counts the
    column's convolutions and the three fully connected layers, as the paper does.
    """
    column = vgg.CONFIGS[_option(config, vgg.CONFIGS, "configuration")]
    features = _on_meta(lambda: vgg.make_layers(column))
    x = torch.empty(1, 3, image_size, image_size, device="meta")
    stages, current = [], [tuple(x.shape[1:])]
    for layer in features:
        x = layer(x)
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
            current.append((layer, tuple(x.shape[1:])))
        if isinstance(layer, nn.MaxPool2d):
            stages.append(current)
            current = [tuple(x.shape[1:])]
    if not (isinstance(stage, int) and 1 <= stage <= len(stages)):
        raise ValueError(f"configuration {config} has stages 1 to {len(stages)}, not {stage!r}")
    in_shape, *layers = stages[stage - 1]
    convs = [m for m, _ in layers if isinstance(m, nn.Conv2d)]
    items = [(f"input\n{_shape(in_shape)}", "io")]
    j = 0
    for module, shape in layers:
        if isinstance(module, nn.Conv2d):
            j += 1
            items.append((f"conv{stage}_{j}: {_k(module)} conv, {module.in_channels}→{module.out_channels}, "
                          f"stride {_stride(module)}, padding {module.padding[0]}\nReLU → {_shape(shape)}", "conv"))
        else:
            items.append((f"max pool {module.kernel_size}×{module.kernel_size}, stride {module.stride}\n"
                          f"→ {_shape(shape)}", "pool"))
    depth = sum(1 for item in column if item != "M") + 3  # weight layers: convolutions + 3 fully connected
    field = 1 + sum(c.kernel_size[0] - 1 for c in convs)
    d = _Diagram(f"VGG-{depth} (column {config} of Table 1), stage {stage} of {len(stages)}")
    d.stack(0, 0, items, w=_width(t for t, _ in items))
    kernels = " and ".join(sorted({_k(c) for c in convs}))
    if len(convs) == 1:
        d.note(f"one {kernels} convolution sees a {field}×{field} window of the stage's input")
    else:
        d.note(f"{len(convs)} stacked {kernels} convolutions see a {field}×{field} window of the stage's input")
    return d.finish()


def _inception_spec(name: str):
    key = name if name.startswith("inception") else f"inception{name}"
    for row in googlenet.INCEPTION_CFG:
        if not isinstance(row, str) and row.name == key:
            return row
    names = [r.name.removeprefix("inception") for r in googlenet.INCEPTION_CFG if not isinstance(r, str)]
    raise ValueError(f"no Inception module {name!r}; the modules are {', '.join(names)}")


def inception_module(name: str = "3a", flavour: str = "paper", image_size: int = 224):
    """Inception module ``name`` ("3a" ... "5b") of GoogLeNet: four branches, then a concatenation.

    The channels come from the built module of ``googlenet_paper()`` (``flavour="paper"``,
    a real 5x5 kernel) or ``googlenet()`` (``"torchvision"``, 3x3 in the "5x5" branch), both
    built from the rows of ``googlenet.INCEPTION_CFG`` (the paper's Table 1).
    """
    factories = {"paper": googlenet.googlenet_paper, "torchvision": googlenet.googlenet}
    factory = factories[_option(flavour, factories, "flavour")]
    spec = _inception_spec(name)
    model = _on_meta(lambda: factory(aux_logits=False, cfg=googlenet.INCEPTION_CFG))
    module = getattr(model, spec.name)
    shapes = {}
    module.register_forward_hook(lambda m, i, o: shapes.update(i=tuple(i[0].shape[1:]), o=tuple(o.shape[1:])))
    model.forward_features(torch.empty(1, 3, image_size, image_size, device="meta"))
    b1, (r3, c3), (r5, c5), (pool, proj) = (module.branch1.conv, [m.conv for m in module.branch2],
                                            [m.conv for m in module.branch3], module.branch4)
    proj = proj.conv
    branches = [
        [None, (f"1×1 conv\n{b1.in_channels}→{b1.out_channels}", "conv")],
        [(f"1×1 conv (reduce)\n{r3.in_channels}→{r3.out_channels}", "conv"),
         (f"{_k(c3)} conv\n{c3.in_channels}→{c3.out_channels}", "conv")],
        [(f"1×1 conv (reduce)\n{r5.in_channels}→{r5.out_channels}", "conv"),
         (f"{_k(c5)} conv\n{c5.in_channels}→{c5.out_channels}", "conv")],
        [(f"{pool.kernel_size}×{pool.kernel_size} max pool\nstride {pool.stride}", "pool"),
         (f"1×1 conv (pool proj)\n{proj.in_channels}→{proj.out_channels}", "conv")],
    ]
    w = _width(t for b in branches for item in b if item for t in [item[0]])
    dx = w + 0.3
    label = spec.name.removeprefix("inception")
    d = _Diagram(f"GoogLeNet inception ({label}) of Table 1, {flavour}: {shapes['i'][0]} → {shapes['o'][0]} "
                 f"channels at {_shape(shapes['i'][1:])}")
    inp = d.box(0, 0, f"input {_shape(shapes['i'])}", "io")
    bus = inp.bottom[1] - GAP / 2
    h = max(_Diagram.size(item[0])[1] for b in branches for item in b if item)
    ends = []
    for i, branch in enumerate(branches):
        x = (i - 1.5) * dx
        top = bus - GAP / 2
        nodes = []
        for item in branch:
            if item is not None:
                nodes.append(d.box(x, top - h / 2, *item, w=w))
            top -= h + GAP
        d.arrow(inp.bottom, (inp.x, bus), (x, bus), nodes[0].top)
        for a, b in zip(nodes, nodes[1:]):
            d.arrow(a.bottom, b.top)
        ends.append(nodes[-1])
    outs = [b1.out_channels, c3.out_channels, c5.out_channels, proj.out_channels]
    cat = d.box(0, None, f"concat along channels: {' + '.join(map(str, outs))} = {sum(outs)}", "concat",
                w=4 * dx - 0.3, top=ends[0].bottom[1] - GAP)
    for end in ends:
        d.arrow(end.bottom, (end.x, cat.top[1]))
    out = d.box(0, None, f"output {_shape(shapes['o'])}", "io", top=cat.bottom[1] - GAP)
    d.connect(cat, out)
    if _k(c5) != "5×5":
        d.note(f"torchvision's ported weights use a {_k(c5)} kernel in the branch the paper calls 5×5")
    return d.finish()


# ==========================================================================
# ResNet and DenseNet: shortcuts and concatenations
# ==========================================================================
def residual_block(kind: str = "basic", in_channels: int | None = None, channels: int | None = None,
                   stride: int = 1):
    """A ResNet block (``"basic"`` or ``"bottleneck"``) as :func:`icdl.models.resnet.make_stage` builds it.

    ``channels`` (the width inside the block) defaults to the first stage's, ``resnet.STAGE_WIDTHS[0]``;
    ``in_channels`` to the block's output channels (an identity shortcut at stride 1: the paper's
    Fig. 5, 64-d basic and 256-d bottleneck). A stride or a channel change gives the projection
    shortcut (1x1 conv + BN), drawn in the shortcut: ``residual_block("bottleneck", 64)`` is the
    first block of ResNet-50.
    """
    block_type = resnet.BLOCKS[_option(kind, resnet.BLOCKS, "block kind")]
    if channels is None:
        channels = resnet.STAGE_WIDTHS[0]
    if in_channels is None:
        in_channels = channels * block_type.expansion
    if stride not in (1, 2):
        raise ValueError(f"a ResNet block has stride 1 or 2, not {stride!r}")
    block = _on_meta(lambda: resnet.make_stage(block_type, in_channels, channels, 1, stride)[0])
    convs = [block.conv1, block.conv2] + ([block.conv3] if kind == "bottleneck" else [])
    items = [(f"x: {in_channels} channels", "io")]
    for i, conv in enumerate(convs):
        after = "BN" if i == len(convs) - 1 else "BN, ReLU"
        items.append((f"{_k(conv)} conv, {conv.in_channels}→{conv.out_channels}, stride {_stride(conv)}\n{after}",
                      "conv"))
    items += ["add", ("ReLU", "act")]
    out_channels = convs[-1].out_channels
    half = " (H/2 × W/2)" if stride > 1 else ""
    items.append((f"output: {out_channels} channels{half}", "io"))
    d = _Diagram(f"ResNet {kind} block, {in_channels} → {out_channels} channels\nrelu(F(x) + shortcut(x))")
    w = _width(t for t, *_ in [i for i in items if not isinstance(i, str)])
    nodes = d.stack(0, 0, items, w=w)
    add = nodes[len(convs) + 1]
    x_skip = w / 2 + 0.45
    if block.downsample is None:
        d.skip(nodes[0], add, x_skip, "identity")
    else:
        conv = block.downsample[0]
        text = f"projection: {_k(conv)} conv\n{conv.in_channels}→{conv.out_channels}, stride {_stride(conv)}, BN"
        pw = _Diagram.size(text)[0]
        x_proj = w / 2 + 0.35 + pw / 2
        proj = d.box(x_proj, (nodes[0].y + add.y) / 2, text, "conv")
        start = d.tap(nodes[0])
        d.arrow(start, (x_proj, start[1]), proj.top, corner=0.3)
        d.arrow(proj.bottom, (x_proj, add.y), add.right, corner=0.3)
    if kind == "bottleneck" and _stride(block.conv2) > 1:
        d.note("the stride is in the 3×3 conv (torchvision's \"v1.5\"); the paper's v1 strides the first 1×1")
    return d.finish()


def dense_block(growth_rate: int | None = None, n_layers: int | None = None, *, config: str = "densenet121",
                in_channels: int | None = None, transition: bool = True):
    """A dense block of ``n_layers`` layers: layer i reads ``k0 + (i - 1) k`` channels and adds ``k``.

    ``growth_rate`` (k), ``in_channels`` (k0) and ``n_layers`` default to the first block of
    ``densenet.DENSENET_CFGS[config]``; the layers are those of a built
    :class:`~icdl.models.densenet.DenseBlock`, followed (``transition=True``) by the
    :class:`~icdl.models.densenet.Transition` that compresses the channels by DenseNet's default theta.
    """
    cfg = densenet.DENSENET_CFGS[_option(config, densenet.DENSENET_CFGS, "configuration")]
    k = cfg.growth_rate if growth_rate is None else growth_rate
    k0 = cfg.num_init_features if in_channels is None else in_channels
    n = cfg.block_config[0] if n_layers is None else n_layers
    for value, what in ((k, "growth_rate"), (k0, "in_channels"), (n, "n_layers")):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{what} must be a whole number of at least 1, not {value!r}")
    block = _on_meta(lambda: densenet.DenseBlock(n, k0, k))
    layers = list(block.children())
    texts = [f"H{i}: BN-ReLU-1×1 conv {layer.conv1.in_channels}→{layer.conv1.out_channels}\n"
             f"BN-ReLU-{_k(layer.conv2)} conv {layer.conv2.in_channels}→{layer.conv2.out_channels}"
             for i, layer in enumerate(layers, start=1)]
    w = _width(texts)
    source = (f"{config}'s first block" if (growth_rate, in_channels, n_layers) == (None, None, None)
              else f"from {config}'s first block" if (growth_rate, in_channels) == (None, None) else "")
    d = _Diagram("Dense block: every layer adds k channels\n"
                 f"k = {k}, k0 = {k0}, {n} layers" + (f" ({source})" if source else ""))
    x_cat = w / 2 + 1.0
    prev = d.box(x_cat, 0, f"input: k0 = {k0} channels", "io")
    top = prev.bottom[1] - GAP
    for i, (text, layer) in enumerate(zip(texts, layers), start=1):
        h = _Diagram.size(text)[1]
        node = d.box(0, top - h / 2, text, "conv", w=w)
        cat = d.merge(x_cat, node.y, "concat")
        d.arrow(prev.bottom, (x_cat, prev.bottom[1] - GAP / 2), (0, prev.bottom[1] - GAP / 2), node.top)
        d.arrow(node.right, cat.left)
        d.text((node.right[0] + cat.left[0]) / 2, node.y + 0.05, f"+{layer.conv2.out_channels}", va="bottom",
               size=FONT - 0.5)
        d.arrow(prev.bottom, cat.top)
        d.text(cat.right[0] + 0.1, cat.y, f"{k0} + {i}·{k} = {k0 + i * k}", ha="left")
        prev, top = cat, node.bottom[1] - GAP
    if transition:
        # theta, the default of DenseNet(compression=...): the network's own rule, not a copy of 0.5
        compression = inspect.signature(densenet.DenseNet).parameters["compression"].default
        trans = _on_meta(lambda: densenet.Transition(block.out_channels, int(block.out_channels * compression)))
        text = (f"transition: BN-ReLU-1×1 conv {trans.conv.in_channels}→{trans.conv.out_channels} "
                f"(θ = {compression})\n{trans.pool.kernel_size}×{trans.pool.kernel_size} average pool, "
                f"stride {trans.pool.stride}: H/2 × W/2")
        node = d.box(x_cat, None, text, "pool", top=top)
        d.arrow(prev.bottom, node.top)
    return d.finish()


# ==========================================================================
# MobileNet, EfficientNet, ConvNeXt, ViT
# ==========================================================================
def depthwise_separable(layer: int = 1, image_size: int = 224):
    """Depthwise separable layer ``layer`` (1-based, 1 to 13) of MobileNet v1's Table 1
    (``mobilenet.V1_CONFIG``) next to the standard convolution it replaces, with the
    multiply-adds per output position of each (their weights: one multiply-add per weight)."""
    config = mobilenet.V1_CONFIG
    if not (isinstance(layer, int) and 1 <= layer <= len(config)):
        raise ValueError(f"MobileNet v1 has depthwise separable layers 1 to {len(config)}, not {layer!r}")
    model = _on_meta(lambda: mobilenet.MobileNetV1(config=config))
    block = model.features[layer]  # features[0] is the stem
    x = model.features[: layer + 1](torch.empty(1, 3, image_size, image_size, device="meta"))
    dw, pw = block.depthwise[0], block.pointwise[0]
    m, n, s = dw.in_channels, pw.out_channels, _stride(dw)
    standard = nn.Conv2d(m, n, dw.kernel_size, s, dw.padding, bias=False, device="meta")
    cost = {"standard": standard.weight.numel(), "dw": dw.weight.numel(), "pw": pw.weight.numel()}
    d = _Diagram(f"A depthwise separable convolution, {m} → {n} channels\n"
                 f"MobileNet v1, layer {layer} of {len(config)} (Table 1)")
    left = [(f"input: {m} channels", "io"),
            (f"standard {_k(standard)} conv, {m}→{n}, stride {s}\nBN, ReLU\n{cost['standard']:,} multiply-adds "
             f"per position", "conv")]
    right = [(f"input: {m} channels", "io"),
             (f"{_k(dw)} depthwise conv, {dw.in_channels}→{dw.out_channels}, groups={dw.groups}, stride {s}\n"
              f"BN, {_activation(block.depthwise)}\n{cost['dw']:,} multiply-adds per position", "dw"),
             (f"1×1 pointwise conv, {pw.in_channels}→{pw.out_channels}\nBN, {_activation(block.pointwise)}\n"
              f"{cost['pw']:,} multiply-adds per position", "conv"), (f"output: {_shape(x.shape[1:])}", "io")]
    output = f"output: {_shape(x.shape[1:])}"
    wl, wr = _width([t for t, _ in left] + [output]), _width(t for t, _ in right)
    xr = wl / 2 + 0.5 + wr / 2
    d.text(0, 0.25, "standard", weight="bold")
    d.text(xr, 0.25, "depthwise separable", weight="bold")
    lnodes = d.stack(0, 0, left, w=wl)
    rnodes = d.stack(xr, 0, right, w=wr)
    out = d.box(0, rnodes[-1].y, output, "io", w=wl)  # level with the other output: the same map
    d.arrow(lnodes[-1].bottom, out.top)
    ratio = (cost["dw"] + cost["pw"]) / cost["standard"]
    k = dw.kernel_size[0]
    d.note(f"separable / standard = ({cost['dw']:,} + {cost['pw']:,}) / {cost['standard']:,} = {ratio:.4f}"
           f"  =  1/{n} + 1/{k}² = {mobilenet.separable_cost(m, n, k):.4f}")
    return d.finish()


def _mbconv_block(expand: int, kernel: int, se: bool, first: bool):
    """The block to draw, its Table row (a Spec), that row's number in the paper's table, and the
    block's index and count in its row. ``None`` when no row has this ``expand`` and ``kernel``."""
    if se:
        rows = efficientnet.B0_STAGES
        model = _on_meta(lambda: efficientnet.EfficientNet(stages=rows))
        stages = [list(model.features[i + 1]) for i in range(len(rows))]  # features[0] is the stem
        match = [i for i, r in enumerate(rows) if (r.expand_ratio, r.kernel) == (expand, kernel)]
        number = 2  # Table 1's stage 1 is the stem
    else:
        rows = mobilenet.V2_CONFIG
        model = _on_meta(lambda: mobilenet.MobileNetV2(config=rows))
        blocks, stages = list(model.features)[1:], []  # features[0] is the stem
        for row in rows:
            stages.append(blocks[:row.n])
            blocks = blocks[row.n:]
        match = [i for i, r in enumerate(rows) if r.t == expand and kernel == 3]  # v2's kernels are all 3x3
        number = 2  # Table 2's first row is the stem
    if not match:
        return None
    i = match[0]
    index = 0 if first or len(stages[i]) == 1 else 1
    return stages[i][index], rows[i], i + number, index, len(stages[i])


def mbconv(expand: int = 6, kernel: int = 3, se: bool = True, *, first: bool = False):
    """An inverted residual: 1x1 expand, kxk depthwise, [squeeze-excite], linear 1x1 projection.

    ``se=True``: EfficientNet-B0's MBConv, from the first row of ``efficientnet.B0_STAGES``
    with this ``expand`` ratio and ``kernel``; ``se=False``: MobileNetV2's block, from the first
    row of ``mobilenet.V2_CONFIG`` with expansion ``expand`` (its kernels are all 3x3).
    ``first=True`` draws that row's first block (the stride and channel change, no shortcut);
    otherwise a later block of the row, which has the shortcut (a row of one block: that block).
    """
    found = _mbconv_block(expand, kernel, se, first)
    if found is None:
        if se:
            options = sorted({(r.expand_ratio, r.kernel) for r in efficientnet.B0_STAGES})
        else:
            options = sorted({(r.t, 3) for r in mobilenet.V2_CONFIG})
        net = "EfficientNet-B0 (se=True)" if se else "MobileNetV2 (se=False)"
        raise ValueError(f"{net} has no block with expand={expand}, kernel={kernel}; "
                         f"its (expand, kernel) are {', '.join(map(str, options))}")
    block, row, number, index, count = found
    layers = list(block.block if se else block.conv)
    convs = [m for m in layers if isinstance(m, (nn.Sequential, nn.Conv2d))]
    se_module = next((m for m in layers if isinstance(m, SqueezeExcitation)), None)
    first_conv = convs[0][0] if isinstance(convs[0], nn.Sequential) else convs[0]
    items = [(f"input: {first_conv.in_channels} channels", "io")]
    ratio = row.expand_ratio if se else row.t
    for layer in convs[:-1]:  # the expansion (none when the ratio is 1) and the depthwise convolution
        conv = layer[0]
        if conv.groups > 1:
            items.append((f"{_k(conv)} depthwise conv, {conv.out_channels} channels, stride {_stride(conv)}\n"
                          f"BN, {_activation(layer)}", "dw"))
        else:
            items.append((f"1×1 conv (expand ×{ratio}), {conv.in_channels}→{conv.out_channels}\n"
                          f"BN, {_activation(layer)}", "conv"))
        if conv.groups > 1 and se_module is not None:  # SE follows the depthwise convolution
            c, sq = se_module.fc1.in_channels, se_module.fc1.out_channels
            items.append((f"squeeze-excitation: pool, 1×1 {c}→{sq}, {type(se_module.activation).__name__},\n"
                          f"1×1 {sq}→{c}, {type(se_module.scale_activation).__name__}, × channels", "se"))
    # EfficientNet: a ConvNormActivation; MobileNetV2: a bare Conv2d (its BN is the next layer)
    proj = convs[-1][0] if isinstance(convs[-1], nn.Sequential) else convs[-1]
    dw_stride = next(_stride(m[0]) for m in convs[:-1] if m[0].groups > 1)
    items.append((f"1×1 conv (project), {proj.in_channels}→{proj.out_channels}\nBN, no activation (linear)", "conv"))
    use_residual = block.use_residual
    if use_residual:
        items.append("add")
    items.append((f"output: {proj.out_channels} channels" + (" (H/2 × W/2)" if dw_stride > 1 else ""), "io"))
    if se:
        title = (f"EfficientNet-B0 MBConv{ratio}, k{row.kernel}×{row.kernel}, block {index + 1} of {count}\n"
                 f"stage {number} of Table 1: {row.in_channels}→{row.out_channels} channels, stride {row.stride}")
    else:
        title = (f"MobileNetV2 inverted residual, block {index + 1} of {count}\n"
                 f"row {number} of Table 2: t={row.t}, c={row.c}, n={row.n}, s={row.s}")
    d = _Diagram(title)
    w = _width(t for t, _ in [i for i in items if not isinstance(i, str)])
    nodes = d.stack(0, 0, items, w=w)
    if use_residual:
        d.skip(nodes[0], nodes[-2], w / 2 + 0.45, "identity")
    else:
        why = [f"stride {dw_stride}"] if dw_stride > 1 else []
        if first_conv.in_channels != proj.out_channels:
            why.append(f"{first_conv.in_channels} → {proj.out_channels} channels")
        d.note(f"no shortcut: this block changes the shape ({', '.join(why)})")
    return d.finish()


def convnext_block(config: str = "convnext_tiny", stage: int = 1):
    """A ConvNeXt block of stage ``stage`` (1-based, as the paper counts) of ``convnext.CONFIGS[config]``:
    x + scale · F(x)."""
    stages = convnext.CONFIGS[_option(config, convnext.CONFIGS, "configuration")].stages
    if not (isinstance(stage, int) and 1 <= stage <= len(stages)):
        raise ValueError(f"{config} has stages 1 to {len(stages)}, not {stage!r}")
    channels = stages[stage - 1].channels
    block = _on_meta(lambda: convnext.ConvNeXtBlock(channels))
    dw, ln, fc1, act, fc2 = block.block[0], block.block[2], block.block[3], block.block[4], block.block[5]
    items = [(f"input: {channels} channels", "io"),
             (f"{_k(dw)} depthwise conv, {dw.out_channels} channels, groups={dw.groups}", "dw"),
             (f"LayerNorm ({ln.normalized_shape[0]})", "norm"),
             (f"1×1 conv (Linear), {fc1.in_features}→{fc1.out_features}", "conv"),
             (type(act).__name__, "act"),
             (f"1×1 conv (Linear), {fc2.in_features}→{fc2.out_features}", "conv"),
             (f"layer scale: × γ ({block.layer_scale.shape[0]} values)", "norm"),
             "add", (f"output: {channels} channels", "io")]
    name = config.replace("convnext_", "ConvNeXt-").replace("tiny", "T").replace("small", "S").replace(
        "base", "B").replace("large", "L")
    d = _Diagram(f"{name} block, stage {stage} of {len(stages)}\none norm, one activation, wide in the middle")
    w = _width(t for t, _ in [i for i in items if not isinstance(i, str)])
    nodes = d.stack(0, 0, items, w=w)
    d.skip(nodes[0], nodes[-2], w / 2 + 0.45, "identity")
    return d.finish()


def transformer_block(config: str = "vit_b_16"):
    """A ViT encoder block of ``vit.CONFIGS[config]`` (pre-norm): x + MSA(LN(x)), then + MLP(LN(.))."""
    factory = getattr(vit, _option(config, vit.CONFIGS, "configuration"))
    model = _on_meta(factory)
    block = model.encoder.layers[0]
    tokens, dim = model.encoder.pos_embedding.shape[1:]
    heads = block.self_attention.num_heads
    fc1, act, fc2 = block.mlp[0], block.mlp[1], block.mlp[3]
    items = [(f"tokens: {tokens} × {dim}", "io"),
             (f"LayerNorm ({block.ln_1.normalized_shape[0]})", "norm"),
             (f"multi-head self-attention\n{heads} heads × {dim // heads} dims", "attn"),
             "add",
             (f"LayerNorm ({block.ln_2.normalized_shape[0]})", "norm"),
             (f"MLP: Linear {fc1.in_features}→{fc1.out_features}, {type(act).__name__},\n"
              f"Linear {fc2.in_features}→{fc2.out_features}", "fc"),
             "add", (f"output: {tokens} × {dim}", "io")]
    patch = model.patch_size
    d = _Diagram(f"ViT encoder block ({config})\n{model.image_size}×{model.image_size} image, {patch}×{patch} "
                 f"patches, {len(model.encoder.layers)} such blocks")
    w = _width(t for t, _ in [i for i in items if not isinstance(i, str)])
    nodes = d.stack(0, 0, items, w=w)
    d.skip(nodes[0], nodes[3], w / 2 + 0.45, "identity")
    d.skip(nodes[3], nodes[6], w / 2 + 0.45, "identity")
    return d.finish()
