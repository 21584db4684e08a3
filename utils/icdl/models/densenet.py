"""DenseNet, from Huang et al. 2017, "Densely Connected Convolutional Networks".

Read it top to bottom:

1. ``DenseLayer``: BN-ReLU-Conv1x1 (the bottleneck, ``bn_size * k`` channels),
   then BN-ReLU-Conv3x3 producing ``k`` new channels (k is the growth rate).
2. ``DenseBlock``: every layer receives the concatenation of the block's input
   and of all earlier layers' outputs; the block returns all of them
   concatenated: ``in + num_layers * k`` channels.
3. ``Transition``: BN-ReLU-Conv1x1 that compresses the channels by ``theta``
   (0.5 in DenseNet-BC), then 2x2 average pooling halves H and W.
4. ``DENSENET_CFGS``: the paper's Table 1 as data.
5. ``DenseNet``: the configurable network; ``densenet121()`` etc. are thin factories.

Module names give the same ``state_dict`` keys as ``torchvision.models.densenet121``
(``features.denseblock1.denselayer1.norm1.weight``, ...), so its weights load
with ``strict=True``.

``cifar_stem=True`` replaces the ImageNet stem (7x7 stride-2 conv and 3x3
stride-2 max pool: 224 px -> 56 px) with one 3x3 stride-1 conv, as the paper
does for CIFAR, so a 32x32 image enters the first block at 32x32.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Classifier
from .layers import kaiming_init_, linear_init_
from .registry import register_model, reject_overrides
from .spec import Spec


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------
class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1 (bn_size*k) -> BN-ReLU-Conv3x3 (k).  (N, C_in, H, W) -> (N, k, H, W).

    It returns only its *new* feature maps; the block concatenates them with
    everything that came before.
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0):
        super().__init__()
        inner = bn_size * growth_rate  # the bottleneck width, 4k in the paper
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, inner, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(inner)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(inner, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu1(self.norm1(x)))
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.Module):
    """``num_layers`` dense layers, each fed with all earlier feature maps.

    (N, C, H, W) -> (N, C + num_layers * growth_rate, H, W). The input's
    channels come first, unchanged; then each layer's k new channels in order.
    """

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4,
                 drop_rate: float = 0.0):
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)  # torchvision's names, counting from 1
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.children():
            # Dense connectivity: the layer sees the concatenation of all earlier maps.
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1 (compression) -> 2x2 average pool.  (N, C, H, W) -> (N, C_out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(OrderedDict([
            ("norm", nn.BatchNorm2d(in_channels)),
            ("relu", nn.ReLU(inplace=True)),
            ("conv", nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)),
            ("pool", nn.AvgPool2d(kernel_size=2, stride=2)),
        ]))


# ---------------------------------------------------------------------------
# The paper's Table 1 (ImageNet models), as data.
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DenseNetConfig(Spec):
    """One column of Table 1. ``DenseNet(**config)`` builds it (a spec unpacks as keywords)."""

    growth_rate: int  # k: the channels each dense layer adds
    block_config: tuple[int, ...]  # dense layers in each block
    num_init_features: int  # channels of the first convolution


DENSENET_CFGS = {
    "densenet121": DenseNetConfig(growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64),
    "densenet169": DenseNetConfig(growth_rate=32, block_config=(6, 12, 32, 32), num_init_features=64),
    "densenet201": DenseNetConfig(growth_rate=32, block_config=(6, 12, 48, 32), num_init_features=64),
    "densenet264": DenseNetConfig(growth_rate=32, block_config=(6, 12, 64, 48), num_init_features=64),
    # Not in the paper's Table 1: the k=48 variant of the authors' code, also in torchvision.
    "densenet161": DenseNetConfig(growth_rate=48, block_config=(6, 12, 36, 24), num_init_features=96),
}


def channels_through(block_config, growth_rate: int, num_init_features: int,
                     compression: float = 0.5) -> list[tuple[str, int]]:
    """The channel count after each block and transition, without building anything.

    ``channels_through((6, 12, 24, 16), 32, 64)`` ->
    ``[("denseblock1", 256), ("transition1", 128), ..., ("denseblock4", 1024)]``.
    """
    rows, channels = [], num_init_features
    for i, num_layers in enumerate(block_config, start=1):
        channels += num_layers * growth_rate
        rows.append((f"denseblock{i}", channels))
        if i < len(block_config):
            channels = int(channels * compression)
            rows.append((f"transition{i}", channels))
    return rows


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------
class DenseNet(Classifier):
    """DenseNet-BC: stem, dense blocks joined by transitions, BN-ReLU, global pool, linear.

    (N, 3, H, W) -> (N, num_classes). ``compression`` is theta (0.5 for "-C"/"-BC");
    ``bn_size * growth_rate`` is the bottleneck width ("-B").
    """

    head_path = "classifier"

    def __init__(self, growth_rate: int = 32, block_config=(6, 12, 24, 16), num_init_features: int = 64,
                 bn_size: int = 4, compression: float = 0.5, drop_rate: float = 0.0,
                 num_classes: int = 1000, cifar_stem: bool = False):
        super().__init__()
        if cifar_stem:  # 32x32 inputs: keep the resolution, as the paper's CIFAR models do
            stem = [("conv0", nn.Conv2d(3, num_init_features, kernel_size=3, padding=1, bias=False))]
        else:
            stem = [
                ("conv0", nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]
        self.features = nn.Sequential(OrderedDict(stem))

        channels = num_init_features
        for i, num_layers in enumerate(block_config, start=1):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate)
            self.features.add_module(f"denseblock{i}", block)
            channels = block.out_channels
            if i < len(block_config):  # no transition after the last block
                out = int(channels * compression)
                self.features.add_module(f"transition{i}", Transition(channels, out))
                channels = out
        self.features.add_module("norm5", nn.BatchNorm2d(channels))  # BN before the final ReLU
        self.classifier = nn.Linear(channels, num_classes)
        self.out_channels = self.num_features = channels
        self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation (fan_in) for convolutions, BN as identity; the classifier keeps
        # PyTorch's weights and gets zero biases (torchvision's scheme).
        kaiming_init_(self, mode="fan_in")
        linear_init_(self, weights=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.features(x))  # the last BN is in features; its ReLU comes here

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1))


# ---------------------------------------------------------------------------
# Factories
# ---------------------------------------------------------------------------
def _named(name: str, kwargs: dict) -> DenseNet:
    """The configuration of Table 1 called ``name``; a keyword that contradicts it is refused, so that
    ``densenet121(growth_rate=12)`` cannot silently build another network under DenseNet-121's name."""
    config = dict(DENSENET_CFGS[name])
    reject_overrides(name, kwargs, config)
    return DenseNet(**{**config, **kwargs})


@register_model(torchvision="densenet121", weights="DenseNet121_Weights.IMAGENET1K_V1", params=7_978_856, macs=2_834_161_664)
def densenet121(**kwargs) -> DenseNet:
    """DenseNet-121 (k=32, blocks 6-12-24-16): matches ``torchvision.models.densenet121``."""
    return _named("densenet121", kwargs)


@register_model(torchvision="densenet169", weights="DenseNet169_Weights.IMAGENET1K_V1", params=14_149_480, macs=3_359_843_328)
def densenet169(**kwargs) -> DenseNet:
    return _named("densenet169", kwargs)


@register_model(torchvision="densenet201", weights="DenseNet201_Weights.IMAGENET1K_V1", params=20_013_928, macs=4_291_365_888)
def densenet201(**kwargs) -> DenseNet:
    return _named("densenet201", kwargs)


def densenet264(**kwargs) -> DenseNet:
    """The largest model of the paper's Table 1 (no torchvision counterpart)."""
    return _named("densenet264", kwargs)


@register_model(torchvision="densenet161", weights="DenseNet161_Weights.IMAGENET1K_V1", params=28_681_000, macs=7_727_907_072)
def densenet161(**kwargs) -> DenseNet:
    return _named("densenet161", kwargs)


def densenet_bc_cifar(depth: int = 100, growth_rate: int = 12, num_classes: int = 10, **kwargs) -> DenseNet:
    """The paper's CIFAR DenseNet-BC: three blocks of (depth - 4) / 6 bottleneck layers,
    a 3x3 first convolution with 2k channels, theta = 0.5. (N, 3, 32, 32) -> (N, num_classes).

    ``densenet_bc_cifar(100, 12)`` is the paper's DenseNet-BC (L=100, k=12).
    """
    n = (depth - 4) // 6  # each bottleneck layer has two convolutions
    return DenseNet(growth_rate=growth_rate, block_config=(n, n, n), num_init_features=2 * growth_rate,
                    num_classes=num_classes, cifar_stem=True, **kwargs)
