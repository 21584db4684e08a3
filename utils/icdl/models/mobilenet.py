"""MobileNet v1, v2 and v3, written for reading.

Three papers, one idea carried further each time:

* **v1** (Howard et al., 2017, arXiv:1704.04861): replace the 3x3 convolutions (all but
  the first) by *depthwise separable* ones, :func:`depthwise_separable`: a 3x3 depthwise convolution
  (one filter per channel, ``groups = C``) that filters space, then a 1x1 pointwise
  convolution that mixes channels. :func:`separable_cost` derives what that saves.
  Two knobs shrink the network: the width multiplier alpha (every layer's channels times
  alpha) and the resolution multiplier rho (the input is rho * 224 pixels wide).
* **v2** (Sandler et al., 2018, arXiv:1801.04381): the *inverted residual* with a *linear
  bottleneck*, :class:`InvertedResidual`: 1x1 expand (x t) with ReLU6, 3x3 depthwise with
  ReLU6, 1x1 projection back to a narrow width **without** an activation; a shortcut
  joins the narrow ends when the shapes allow.
* **v3** (Howard et al., 2019, arXiv:1905.02244): the same block, found by architecture
  search, with squeeze-and-excitation in some blocks, hard-swish in the second half,
  5x5 kernels in places, and a cheaper last stage (pool first, then the wide 1x1
  layer): :class:`InvertedResidualV3`.

Each paper's configuration table is data here (``V1_CONFIG``, ``V2_CONFIG``,
``V3_LARGE``, ``V3_SMALL``); one class per version builds from it; thin factories name
the configurations. ``mobilenet_v2``, ``mobilenet_v3_large`` and ``mobilenet_v3_small``
have torchvision's ``state_dict`` keys and give its outputs (checked in
``tests/test_models_registry.py``). ``mobilenet_v1`` has no torchvision counterpart.

Every network is a :class:`~icdl.models.base.Classifier`: ``forward_features`` returns
the last feature map ``(N, num_features, h, w)``, ``forward_head`` pools and classifies.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from .base import Classifier
from .layers import (
    ConvNormActivation,
    SqueezeExcitation,
    kaiming_init_,
    linear_init_,
    make_divisible,
)
from .registry import register_model, reject_overrides
from .spec import Spec


def _init_like_torchvision(model: nn.Module) -> nn.Module:
    # He initialisation (fan_out) for convolutions, norms as the identity, linear layers N(0, 0.01²):
    # what torchvision's MobileNets do.
    kaiming_init_(model, mode="fan_out")
    return linear_init_(model, std=0.01)


# ==========================================================================
# MobileNet v1: depthwise separable convolutions
# ==========================================================================
def depthwise_separable(in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3,
                        norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d) -> nn.Sequential:
    """MobileNet v1's layer (its Figure 3, right): 3x3 depthwise conv-BN-ReLU, then 1x1 pointwise conv-BN-ReLU.

    (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride). The depthwise
    convolution (``groups = in_channels``) filters each channel on its own and carries the
    stride; the pointwise one is an ordinary 1x1 convolution that combines the channels.
    ``kernel_size`` is 3 in the paper; other odd sizes are there to measure :func:`separable_cost`.
    """
    return nn.Sequential(OrderedDict([
        ("depthwise", ConvNormActivation(in_channels, in_channels, kernel_size, stride, groups=in_channels,
                                         norm_layer=norm_layer)),
        ("pointwise", ConvNormActivation(in_channels, out_channels, 1, norm_layer=norm_layer)),
    ]))


def separable_cost(in_channels: int, out_channels: int, kernel_size: int = 3) -> float:
    """Multiply-adds of a depthwise separable convolution over those of a standard one: ``1/N + 1/k²``.

    The derivation (the paper's Section 3.1, Equations 2 to 5). Take M input channels, N output
    channels, a k x k kernel and an output map of F x F positions (any stride: both versions
    produce the same F x F).

    * A standard convolution computes, at each of the F² positions and for each of the N
      filters, a dot product over k x k x M inputs: ``k² · M · N · F²`` multiply-adds.
    * The depthwise convolution has one k x k filter per input channel: ``k² · M · F²``.
    * The pointwise 1x1 convolution mixes M channels into N at each position: ``M · N · F²``.

    Dividing the sum of the last two by the first::

        (k² M F² + M N F²) / (k² M N F²) = 1/N + 1/k²

    With k = 3 and N in the hundreds the saving is between 8 and 9 times: the 1/k² term
    dominates, so the cost is about that of the 1x1 convolution alone. M and F cancel.
    """
    return 1.0 / out_channels + 1.0 / kernel_size ** 2


@dataclass(frozen=True)
class SeparableSpec(Spec):
    """One depthwise separable layer of the v1 paper's Table 1."""

    out_channels: int
    stride: int  # of the depthwise convolution


# Table 1 of the v1 paper, as data: (output channels, stride) of each depthwise separable layer,
# after the stem (a full 3x3 convolution, 32 channels, stride 2). At 224x224 the map goes
# 112 -> 56 -> 28 -> 14 -> 7.
V1_STEM = 32
V1_CONFIG = (
    SeparableSpec(64, 1),
    SeparableSpec(128, 2), SeparableSpec(128, 1),
    SeparableSpec(256, 2), SeparableSpec(256, 1),
    SeparableSpec(512, 2), *[SeparableSpec(512, 1)] * 5,  # the table's "5x" block follows the first
    # The table prints "s2" for this last layer, but it lists 7x7 as the input of both this layer
    # and the next, and a 7x7 average pool follows: the stride is 1.
    SeparableSpec(1024, 2), SeparableSpec(1024, 1),
)


class MobileNetV1(Classifier):
    """MobileNet v1: a 3x3 stem, 13 depthwise separable layers, global average pooling, one linear layer.

    (N, 3, H, W) -> (N, num_classes). ``width_mult`` is the paper's width multiplier alpha
    (Section 3.3): every layer's channels times alpha, rounded by :func:`make_divisible` (exact
    for the paper's 1, 0.75, 0.5 and 0.25). The resolution multiplier rho (Section 3.4) is the
    input size itself: the network takes any size, ``rho * 224`` in the paper.
    """

    head_path = "fc"

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, config=V1_CONFIG,
                 stem_channels: int = V1_STEM, norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d):
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        channels = make_divisible(stem_channels * width_mult, 8)
        layers: list[nn.Module] = [ConvNormActivation(3, channels, 3, stride=2, norm_layer=norm_layer)]
        for out, stride in config:
            out = make_divisible(out * width_mult, 8)
            layers.append(depthwise_separable(channels, out, stride, norm_layer=norm_layer))
            channels = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self.num_features = channels
        _init_like_torchvision(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 1024 * alpha, H / 32, W / 32)."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ==========================================================================
# MobileNet v2: inverted residuals and linear bottlenecks
# ==========================================================================
class InvertedResidual(nn.Module):
    """v2's bottleneck (the paper's Table 1): expand, filter, project; a shortcut if the shape allows.

    (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride):

    1. 1x1 convolution to ``t * in_channels`` channels, BN, ReLU6 (left out when t = 1);
    2. 3x3 depthwise convolution (with the stride), BN, ReLU6;
    3. 1x1 convolution back to ``out_channels``, BN, and **no activation**: the linear
       bottleneck. The paper's Section 3.2 argues that a ReLU in this narrow layer destroys
       information the next block cannot recover.

    The shortcut ``x + F(x)`` joins the two narrow ends, only when ``stride == 1`` and
    ``in_channels == out_channels`` (``use_residual``). ``linear_bottleneck=False`` puts a
    ReLU6 after the projection, the ablation of the paper's Figure 6 (a) (no parameters
    change, so the same weights load into both).
    Names as torchvision's: ``conv`` holds the layers, the projection is ``conv.{-2,-1}``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int,
                 norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d, linear_bottleneck: bool = True):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = round(in_channels * expand_ratio)
        self.stride = stride
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormActivation(in_channels, hidden, 1, norm_layer=norm_layer,
                                             activation_layer=nn.ReLU6))
        layers += [
            ConvNormActivation(hidden, hidden, 3, stride, groups=hidden, norm_layer=norm_layer,
                               activation_layer=nn.ReLU6),
            nn.Conv2d(hidden, out_channels, 1, bias=False),  # the projection: linear
            norm_layer(out_channels),
        ]
        if not linear_bottleneck:
            layers.append(nn.ReLU6(inplace=True))
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


@dataclass(frozen=True)
class BottleneckSpec(Spec):
    """One row of the v2 paper's Table 2: ``n`` inverted residual blocks; it unpacks as ``t, c, n, s``."""

    t: int  # expansion factor
    c: int  # output channels
    n: int  # number of blocks
    s: int  # stride of the first block (the others have stride 1)


# Table 2 of the v2 paper, as data: each row is a sequence of n identical blocks with expansion
# factor t and c output channels; the first block of the row has stride s, the others stride 1.
V2_STEM = 32  # conv2d 3x3, stride 2
V2_LAST = 1280  # conv2d 1x1 after the last block
V2_CONFIG = (
    #              t,   c, n, s      input at 224x224
    BottleneckSpec(1,  16, 1, 1),  # 112² x 32
    BottleneckSpec(6,  24, 2, 2),  # 112² x 16
    BottleneckSpec(6,  32, 3, 2),  # 56² x 24
    BottleneckSpec(6,  64, 4, 2),  # 28² x 32
    BottleneckSpec(6,  96, 3, 1),  # 14² x 64
    BottleneckSpec(6, 160, 3, 2),  # 14² x 96
    BottleneckSpec(6, 320, 1, 1),  # 7² x 160
)


class MobileNetV2(Classifier):
    """MobileNet v2: 3x3 stem, 17 inverted residual blocks, 1x1 conv to 1280, pooling, dropout, linear.

    (N, 3, H, W) -> (N, num_classes). ``width_mult`` multiplies every layer's channels,
    rounded to a multiple of ``round_nearest`` by :func:`make_divisible`; the last 1x1
    convolution keeps its 1280 channels when ``width_mult < 1`` (the paper, end of Section 4:
    "we apply width multiplier to all layers except the very last convolutional layer").
    The paper ends with a 1x1 convolution to the classes; torchvision (and this) uses the
    equivalent ``nn.Linear``, ``classifier.1``.
    """

    head_path = "classifier.1"

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, config=V2_CONFIG,
                 round_nearest: int = 8, dropout: float = 0.2,
                 norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d, linear_bottleneck: bool = True):
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        if not config or any(len(row) != 4 for row in config):
            raise ValueError("config must be rows of (t, c, n, s), as in the paper's Table 2")
        channels = make_divisible(V2_STEM * width_mult, round_nearest)
        last = make_divisible(V2_LAST * max(1.0, width_mult), round_nearest)
        layers: list[nn.Module] = [ConvNormActivation(3, channels, 3, stride=2, norm_layer=norm_layer,
                                                      activation_layer=nn.ReLU6)]
        for t, c, n, s in config:
            out = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t, norm_layer,
                                               linear_bottleneck=linear_bottleneck))
                channels = out
        layers.append(ConvNormActivation(channels, last, 1, norm_layer=norm_layer, activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # no parameters: torchvision's keys either way
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        self.num_features = last
        _init_like_torchvision(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 1280, H / 32, W / 32)."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(x), 1))


# ==========================================================================
# MobileNet v3: the searched network, with squeeze-and-excitation and hard-swish
# ==========================================================================
@dataclass(frozen=True)
class Bneck(Spec):
    """One row of the v3 paper's Tables 1 and 2: a "bneck" block."""

    kernel: int  # depthwise kernel, 3 or 5
    expanded: int  # "exp size": channels after the 1x1 expansion
    out: int  # "#out"
    se: bool  # squeeze-and-excitation after the depthwise convolution
    activation: str  # "RE" (ReLU) or "HS" (hard-swish)
    stride: int


# Table 1 of the v3 paper (MobileNetV3-Large): the stem is conv2d 3x3, 16 channels, hard-swish,
# stride 2; after the blocks, conv2d 1x1 to 6 x 160 = 960, pool, 1x1 (no BN) to 1280, 1x1 to k.
V3_LARGE = (
    #     k, exp, out,  SE,   NL, s      input at 224x224
    Bneck(3, 16, 16, False, "RE", 1),    # 112² x 16
    Bneck(3, 64, 24, False, "RE", 2),    # 112² x 16
    Bneck(3, 72, 24, False, "RE", 1),    # 56² x 24
    Bneck(5, 72, 40, True, "RE", 2),     # 56² x 24
    Bneck(5, 120, 40, True, "RE", 1),    # 28² x 40
    Bneck(5, 120, 40, True, "RE", 1),    # 28² x 40
    Bneck(3, 240, 80, False, "HS", 2),   # 28² x 40
    Bneck(3, 200, 80, False, "HS", 1),   # 14² x 80
    Bneck(3, 184, 80, False, "HS", 1),   # 14² x 80
    Bneck(3, 184, 80, False, "HS", 1),   # 14² x 80
    Bneck(3, 480, 112, True, "HS", 1),   # 14² x 80
    Bneck(3, 672, 112, True, "HS", 1),   # 14² x 112
    Bneck(5, 672, 160, True, "HS", 2),   # 14² x 112
    Bneck(5, 960, 160, True, "HS", 1),   # 7² x 160
    Bneck(5, 960, 160, True, "HS", 1),   # 7² x 160
)
V3_LARGE_LAST = 1280

# Table 2 (MobileNetV3-Small): the same stem; after the blocks conv2d 1x1 to 6 x 96 = 576, pool,
# 1x1 (no BN) to 1024, 1x1 to k. Renderings of the paper's Table 2 disagree on this tail (one
# marks SE on the 576-channel convolution and gives 1280 after the pool); we follow torchvision
# (no SE there, 1024), whose weights load.
V3_SMALL = (
    #     k, exp, out,  SE,   NL, s      input at 224x224
    Bneck(3, 16, 16, True, "RE", 2),     # 112² x 16
    Bneck(3, 72, 24, False, "RE", 2),    # 56² x 16
    Bneck(3, 88, 24, False, "RE", 1),    # 28² x 24
    Bneck(5, 96, 40, True, "HS", 2),     # 28² x 24
    Bneck(5, 240, 40, True, "HS", 1),    # 14² x 40
    Bneck(5, 240, 40, True, "HS", 1),    # 14² x 40
    Bneck(5, 120, 48, True, "HS", 1),    # 14² x 40
    Bneck(5, 144, 48, True, "HS", 1),    # 14² x 48
    Bneck(5, 288, 96, True, "HS", 2),    # 14² x 48
    Bneck(5, 576, 96, True, "HS", 1),    # 7² x 96
    Bneck(5, 576, 96, True, "HS", 1),    # 7² x 96
)
V3_SMALL_LAST = 1024
V3_STEM = 16

_ACTIVATIONS = {"RE": nn.ReLU, "HS": nn.Hardswish}

# The paper: "batch-normalization layers with average decay of 0.99" (Section 6.1.1), which is
# PyTorch's momentum 0.01 (PyTorch's momentum weighs the new batch, TensorFlow's decay the old mean).
V3_NORM = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)


class InvertedResidualV3(nn.Module):
    """v3's "bneck" (the paper's Figure 4): v2's block with an optional SE and a choice of activation.

    (N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride):

    1. 1x1 expansion to ``expanded`` channels, BN, activation (left out when ``expanded ==
       in_channels``, as in the first block of Large);
    2. k x k depthwise convolution (with the stride), BN, activation;
    3. squeeze-and-excitation (if ``se``): squeeze to ``make_divisible(expanded // 4, 8)``
       channels (the paper's Section 5.3: "1/4 of the number of channels in expansion
       layer"), ReLU, back up, hard sigmoid as the gate;
    4. 1x1 linear projection to ``out_channels``, BN, no activation.

    Shortcut ``x + F(x)`` when ``stride == 1`` and ``in_channels == out_channels``.
    Names as torchvision's: ``block.0``, ``block.1``, ...
    """

    def __init__(self, in_channels: int, kernel: int, expanded: int, out_channels: int, se: bool,
                 activation: str, stride: int, norm_layer: Callable[..., nn.Module] = V3_NORM):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be 'RE' (ReLU) or 'HS' (hard-swish), got {activation!r}")
        act = _ACTIVATIONS[activation]
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(ConvNormActivation(in_channels, expanded, 1, norm_layer=norm_layer, activation_layer=act))
        layers.append(ConvNormActivation(expanded, expanded, kernel, stride, groups=expanded,
                                         norm_layer=norm_layer, activation_layer=act))
        if se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4, 8),
                                            scale_activation=nn.Hardsigmoid))
        layers.append(ConvNormActivation(expanded, out_channels, 1, norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetV3(Classifier):
    """MobileNet v3: hard-swish stem, bneck blocks, 1x1 conv to 6 x the last width, pool, a 2-layer classifier.

    (N, 3, H, W) -> (N, num_classes). ``blocks``: rows of :class:`Bneck` (``V3_LARGE`` or
    ``V3_SMALL``); ``last_channel``: the width of the hidden layer after the pool (1280 or 1024).
    The paper's efficient last stage (Section 5.1) pools *before* that wide layer, so it runs
    at 1x1 instead of 7x7; the paper writes it as a 1x1 convolution without BN, torchvision
    (and this) as ``nn.Linear``: ``classifier = Linear -> Hardswish -> Dropout -> Linear``.

    ``width_mult`` multiplies every width (stem, blocks, ``last_channel``), rounded to a
    multiple of 8; BatchNorm has eps 0.001 and momentum 0.01, torchvision's values.
    """

    head_path = "classifier.3"

    def __init__(self, blocks=V3_LARGE, last_channel: int = V3_LARGE_LAST, num_classes: int = 1000,
                 width_mult: float = 1.0, stem_channels: int = V3_STEM, dropout: float = 0.2,
                 norm_layer: Callable[..., nn.Module] = V3_NORM):
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        if not blocks:
            raise ValueError("blocks must list at least one Bneck row")

        def width(c: int) -> int:
            return make_divisible(c * width_mult, 8)

        channels = width(stem_channels)
        layers: list[nn.Module] = [ConvNormActivation(3, channels, 3, stride=2, norm_layer=norm_layer,
                                                      activation_layer=nn.Hardswish)]
        for row in blocks:
            row = Bneck(*row)
            layers.append(InvertedResidualV3(channels, row.kernel, width(row.expanded), width(row.out), row.se,
                                             row.activation, row.stride, norm_layer))
            channels = width(row.out)
        # The last stage's 1x1 convolution: 6 x the last block's width (960 = 6 x 160, 576 = 6 x 96).
        features_out = 6 * channels
        layers.append(ConvNormActivation(channels, features_out, 1, norm_layer=norm_layer,
                                         activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        hidden = width(last_channel)
        self.classifier = nn.Sequential(
            nn.Linear(features_out, hidden),
            nn.Hardswish(inplace=True),
            nn.Dropout(dropout, inplace=True),
            nn.Linear(hidden, num_classes),
        )
        self.num_features = features_out
        _init_like_torchvision(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 960 or 576, H / 32, W / 32)."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(x), 1))


# ==========================================================================
# Factories
# ==========================================================================
@register_model(params=4_231_976, macs=568_740_352, paper_top1=70.6,
                paper_source="Howard et al., 2017, Table 8 (1.0 MobileNet-224: 569 M mult-adds, 4.2 M parameters)")
def mobilenet_v1(**kwargs) -> MobileNetV1:
    """MobileNet v1 (the paper's Table 1); ``width_mult`` is alpha. No torchvision counterpart.

    Counted here: 4,231,976 parameters and 568.7 M multiply-adds at 224x224, the paper's
    4.2 M and 569 M; its Tables 6 and 7 (alpha and rho) are reproduced in the tests.
    """
    reject_overrides("mobilenet_v1", kwargs, {"config": V1_CONFIG, "stem_channels": V1_STEM})
    return MobileNetV1(**kwargs)


@register_model(torchvision="mobilenet_v2", weights="MobileNet_V2_Weights.IMAGENET1K_V1",
                params=3_504_872, macs=300_774_272, paper_top1=72.0,
                paper_source="Sandler et al., 2018, Table 4 (MobileNetV2: 3.4 M parameters, 300 M MAdds)")
def mobilenet_v2(**kwargs) -> MobileNetV2:
    """MobileNet v2 (the paper's Table 2): equals ``torchvision.models.mobilenet_v2``."""
    reject_overrides("mobilenet_v2", kwargs, {"config": V2_CONFIG})
    return MobileNetV2(**kwargs)


@register_model(torchvision="mobilenet_v3_large", weights="MobileNet_V3_Large_Weights.IMAGENET1K_V1",
                params=5_483_032, macs=216_589_760, paper_top1=75.2,
                paper_source="Howard et al., 2019, Table 3 (V3-Large 1.0: 219 M MAdds, 5.4 M parameters)")
def mobilenet_v3_large(**kwargs) -> MobileNetV3:
    """MobileNetV3-Large (the paper's Table 1): equals ``torchvision.models.mobilenet_v3_large``.

    torchvision's network counts 216.6 M multiply-adds here against the paper's 219 M.
    """
    fixed = {"blocks": V3_LARGE, "last_channel": V3_LARGE_LAST, "stem_channels": V3_STEM}
    reject_overrides("mobilenet_v3_large", kwargs, fixed)
    return MobileNetV3(**{**fixed, **kwargs})


@register_model(torchvision="mobilenet_v3_small", weights="MobileNet_V3_Small_Weights.IMAGENET1K_V1",
                params=2_542_856, macs=56_510_400, paper_top1=67.4,
                paper_source="Howard et al., 2019, Table 3 (V3-Small 1.0: 66 M MAdds, 2.9 M parameters)")
def mobilenet_v3_small(**kwargs) -> MobileNetV3:
    """MobileNetV3-Small (the paper's Table 2): equals ``torchvision.models.mobilenet_v3_small``.

    torchvision's network counts 2.54 M parameters and 56.5 M multiply-adds against the paper's
    2.9 M and 66 M (Table 3); see the note on the tail above ``V3_SMALL``.
    """
    fixed = {"blocks": V3_SMALL, "last_channel": V3_SMALL_LAST, "stem_channels": V3_STEM}
    reject_overrides("mobilenet_v3_small", kwargs, fixed)
    return MobileNetV3(**{**fixed, **kwargs})
