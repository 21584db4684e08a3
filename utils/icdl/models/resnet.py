"""ResNet (He et al., 2016, arXiv:1512.03385), written for reading.

The pieces, smallest first:

* :func:`conv3x3`, :func:`conv1x1`: the two convolutions every block uses
  (no bias: a BatchNorm follows and has its own shift).
* :class:`ResidualBlock`: the forward pass every block shares,
  ``relu(F(x) + shortcut(x))``.
* :class:`BasicBlock` (ResNet-18/34): two 3x3 convolutions plus a shortcut.
* :class:`Bottleneck` (ResNet-50/101/152): 1x1 reduce, 3x3, 1x1 expand (x4),
  plus a shortcut.
* :func:`projection_shortcut` (the paper's option B, a 1x1 conv + BN, used
  only when the shape changes) and :func:`make_stage` (a stack of blocks).
* :class:`ResNet`: stem, four (or any number of) stages, global average
  pooling, one linear layer.
* Factories :func:`resnet18`, :func:`resnet34`, :func:`resnet50` (ImageNet
  shapes, same ``state_dict`` keys as torchvision's) and :func:`resnet20`
  (the paper's small CIFAR-10 network, Section 4.2).

Options the course uses:

* ``cifar_stem=True``: a 3x3 stride-1 stem convolution and no max-pool. The
  ImageNet stem (7x7 stride 2, then a stride-2 max-pool) shrinks a 32x32
  CIFAR image to 8x8 before the first block, throwing detail away.
* ``residual=False``: the same network with every shortcut removed, a
  "plain" network, for the degradation experiment.
* ``zero_init_residual=True``: the last BatchNorm of every block starts with
  gamma = 0, so every block starts as the identity (Goyal et al., 2017).
* ``stride_in_3x3`` (Bottleneck only): torchvision's "v1.5" puts a stage's
  stride in the 3x3 convolution (the default here, so weights load); the
  paper's original "v1" puts it in the first 1x1 convolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import Classifier
from .layers import kaiming_init_
from .registry import register_model
from .spec import Spec


# --------------------------------------------------------------------------
# The paper's Table 1, as data: block type and number of blocks per stage.
# Stage i has STAGE_WIDTHS[i] channels inside its blocks and
# STAGE_WIDTHS[i] * block.expansion channels at its output.
# --------------------------------------------------------------------------
STAGE_WIDTHS = (64, 128, 256, 512)  # conv2_x, conv3_x, conv4_x, conv5_x


@dataclass(frozen=True)
class ResNetConfig(Spec):
    """One column of Table 1: the block type and the number of blocks in each stage."""

    block: str  # "basic" (two 3x3 convolutions) or "bottleneck" (1x1, 3x3, 1x1)
    layers: tuple[int, ...]  # blocks in conv2_x, conv3_x, conv4_x, conv5_x


CONFIGS = {
    "resnet18": ResNetConfig("basic", (2, 2, 2, 2)),
    "resnet34": ResNetConfig("basic", (3, 4, 6, 3)),
    "resnet50": ResNetConfig("bottleneck", (3, 4, 6, 3)),
    "resnet101": ResNetConfig("bottleneck", (3, 4, 23, 3)),
    "resnet152": ResNetConfig("bottleneck", (3, 8, 36, 3)),
}


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1: (N, C_in, H, W) -> (N, C_out, H/stride, W/stride)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution: mixes channels only; with stride 2 it also subsamples."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def projection_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """Option B of the paper: a 1x1 convolution + BN that matches the block's output shape.

    (N, in_channels, H, W) -> (N, out_channels, H/stride, W/stride).
    """
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class ResidualBlock(nn.Module):
    """What every residual block does: ``relu(F(x) + shortcut(x))``.

    A subclass builds the layers and defines ``residual_branch`` (F) and
    ``last_bn``; ``self.downsample`` is the shortcut when the shape changes
    (None: identity) and ``self.residual = False`` drops the shortcut
    (a "plain" block: ``relu(F(x))``).
    """

    def residual_branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual_branch(x)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)  # the ReLU comes after the addition


class BasicBlock(ResidualBlock):
    """Two 3x3 conv-BN layers and a shortcut: ``relu(F(x) + shortcut(x))``.

    (N, in_channels, H, W) -> (N, channels, H/stride, W/stride).
    ``downsample`` is the shortcut when the shape changes (None: identity).
    ``residual=False`` drops the shortcut: ``relu(F(x))``, a plain block.
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, residual: bool = True):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample
        self.residual = residual

    def residual_branch(self, x: torch.Tensor) -> torch.Tensor:
        """F(x): the part of the block that learns the residual."""
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2


class Bottleneck(ResidualBlock):
    """1x1 reduce, 3x3, 1x1 expand (x ``expansion``), each with BN, and a shortcut.

    (N, in_channels, H, W) -> (N, channels * 4, H/stride, W/stride).
    ``stride_in_3x3=True`` (torchvision, "v1.5") subsamples in the 3x3 conv;
    ``False`` (the paper, "v1") subsamples in the first 1x1 conv, which skips
    three quarters of the input positions outright.
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, residual: bool = True,
                 stride_in_3x3: bool = True):
        super().__init__()
        out_channels = channels * self.expansion
        stride_1x1, stride_3x3 = (1, stride) if stride_in_3x3 else (stride, 1)
        self.conv1 = conv1x1(in_channels, channels, stride_1x1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride_3x3)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.residual = residual

    def residual_branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


def make_stage(block: type[nn.Module], in_channels: int, channels: int, num_blocks: int,
               stride: int = 1, residual: bool = True, **block_kwargs) -> nn.Sequential:
    """A stage: ``num_blocks`` blocks; only the first one changes the shape.

    (N, in_channels, H, W) -> (N, channels * block.expansion, H/stride, W/stride).
    The first block gets a projection shortcut when its stride is not 1 or the
    channel count changes; every other block keeps the identity shortcut.
    """
    out_channels = channels * block.expansion
    downsample = None
    if residual and (stride != 1 or in_channels != out_channels):
        downsample = projection_shortcut(in_channels, out_channels, stride)
    blocks = [block(in_channels, channels, stride, downsample, residual=residual, **block_kwargs)]
    for _ in range(1, num_blocks):
        blocks.append(block(out_channels, channels, 1, None, residual=residual, **block_kwargs))
    return nn.Sequential(*blocks)


class ResNet(Classifier):
    """Stem, stages of residual blocks, global average pooling, a linear classifier.

    (N, in_channels, H, W) -> (N, num_classes).

    ``block``: ``BasicBlock`` or ``Bottleneck`` (or "basic" / "bottleneck").
    ``layers``: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
    ``widths``: channels inside the blocks of each stage; stage 1 keeps the
    resolution, every later stage halves it (stride 2 in its first block).
    The stem outputs ``widths[0]`` channels.
    ``cifar_stem``: 3x3 stride-1 stem conv and no max-pool (for 32x32 images).
    The stage modules are named ``layer1``, ``layer2``, ... as in torchvision.
    """

    def __init__(self, block, layers, num_classes: int = 1000, widths=STAGE_WIDTHS,
                 in_channels: int = 3, cifar_stem: bool = False, residual: bool = True,
                 zero_init_residual: bool = False, stride_in_3x3: bool = True):
        super().__init__()
        block = BLOCKS[block] if isinstance(block, str) else block
        if len(widths) != len(layers):
            raise ValueError(f"widths {tuple(widths)} and layers {tuple(layers)} need one entry per stage")
        stem_width = widths[0]
        # The stem, in the order it runs: conv1, bn1, relu, maxpool.
        if cifar_stem:
            self.conv1 = conv3x3(in_channels, stem_width)
        else:
            self.conv1 = nn.Conv2d(in_channels, stem_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        # nn.Identity has no parameters, so the state_dict keys stay torchvision's either way.
        self.maxpool = nn.Identity() if cifar_stem else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        extra = {"stride_in_3x3": stride_in_3x3} if block is Bottleneck else {}
        channels_in = stem_width
        self.stage_names = []
        for i, (width, num_blocks) in enumerate(zip(widths, layers)):
            stride = 1 if i == 0 else 2
            stage = make_stage(block, channels_in, width, num_blocks, stride, residual=residual, **extra)
            name = f"layer{i + 1}"
            setattr(self, name, stage)
            self.stage_names.append(name)
            channels_in = width * block.expansion

        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels_in, num_classes)
        self.num_features = channels_in
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # He initialisation (fan_out) for convolutions, as in the paper's reference [13];
        # BatchNorm starts as the identity map.
        kaiming_init_(self, mode="fan_out")
        if zero_init_residual:
            # gamma = 0 in the last BN makes F(x) = 0: each block starts as the identity.
            for m in self.modules():
                if isinstance(m, ResidualBlock):
                    nn.init.zeros_(m.last_bn.weight)

    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, name) for name in self.stage_names]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, num_features, H', W'): everything before pooling."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in self.stages():
            x = stage(x)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _from_config(name: str, **kwargs) -> ResNet:
    config = CONFIGS[name]
    return ResNet(config.block, config.layers, **kwargs)


@register_model(torchvision="resnet18", weights="ResNet18_Weights.IMAGENET1K_V1", params=11_689_512, macs=1_814_073_344)
def resnet18(**kwargs) -> ResNet:
    """ResNet-18: BasicBlocks (2, 2, 2, 2). 11.7 M parameters at 1000 classes."""
    return _from_config("resnet18", **kwargs)


@register_model(torchvision="resnet34", weights="ResNet34_Weights.IMAGENET1K_V1", params=21_797_672, macs=3_663_761_408)
def resnet34(**kwargs) -> ResNet:
    """ResNet-34: BasicBlocks (3, 4, 6, 3)."""
    return _from_config("resnet34", **kwargs)


@register_model(torchvision="resnet50", weights="ResNet50_Weights.IMAGENET1K_V1", params=25_557_032, macs=4_089_184_256)
def resnet50(**kwargs) -> ResNet:
    """ResNet-50: Bottlenecks (3, 4, 6, 3), torchvision's v1.5 by default."""
    return _from_config("resnet50", **kwargs)


@register_model(torchvision="resnet101", weights="ResNet101_Weights.IMAGENET1K_V1", params=44_549_160, macs=7_801_405_440)
def resnet101(**kwargs) -> ResNet:
    """ResNet-101: Bottlenecks (3, 4, 23, 3)."""
    return _from_config("resnet101", **kwargs)


@register_model(torchvision="resnet152", weights="ResNet152_Weights.IMAGENET1K_V1", params=60_192_808, macs=11_513_626_624)
def resnet152(**kwargs) -> ResNet:
    """ResNet-152: Bottlenecks (3, 8, 36, 3)."""
    return _from_config("resnet152", **kwargs)


def cifar_resnet(depth: int = 20, num_classes: int = 10, **kwargs) -> ResNet:
    """The paper's CIFAR-10 networks (Section 4.2): depth 6n + 2, three stages of n BasicBlocks.

    Widths 16, 32, 64 at 32x32, 16x16, 8x8. The paper used parameter-free
    zero-padding shortcuts (option A); this one uses projections (option B)
    where the shape changes, like the rest of this module.
    (N, 3, 32, 32) -> (N, num_classes).
    """
    if (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}")
    n = (depth - 2) // 6
    return ResNet(BasicBlock, (n, n, n), num_classes=num_classes, widths=(16, 32, 64),
                  cifar_stem=True, **kwargs)


def resnet20(**kwargs) -> ResNet:
    """The 20-layer CIFAR ResNet of the paper's Table 6 (0.27 M parameters in the paper)."""
    return cifar_resnet(20, **kwargs)
