"""VGG (Simonyan & Zisserman, ICLR 2015), written for the course.

The idea: only 3x3 convolutions (stride 1, padding 1, so they keep the size),
stacked 2-4 deep between 2x2 max-pooling layers that halve the size. Two
stacked 3x3 layers see a 5x5 window, three see 7x7, with fewer parameters
and more non-linearities than one large kernel.

The paper's Table 1 is the data below: a number is a 3x3 convolution with
that many output channels (each followed by a ReLU), ``"M"`` a 2x2 max pool.
Configuration C (VGG16 with three 1x1 layers) and A-LRN are in the paper but
not in torchvision; they are left out here.

Batch normalisation (Ioffe & Szegedy, 2015) came after VGG and is *not* in
the paper; torchvision's ``vgg*_bn`` models insert it after every convolution
(``batch_norm=True``). The convolutions keep their bias there, as torchvision's
do, so the ``state_dict`` keys match.

Layout (names match torchvision's ``state_dict`` keys)::

    features   [conv3x3-(bn)-relu]... with "M" pools   (N, 3, H, W) -> (N, 512, H/32, W/32)
    avgpool    AdaptiveAvgPool2d(7)                   -> (N, 512, 7, 7)
    classifier fc-relu-dropout-fc-relu-dropout-fc     -> (N, num_classes)

Small images: a 32x32 CIFAR image is 1x1 after the five pools, and the
ImageNet head would copy that one pixel 49 times into a 25,088-input layer.
``cifar_stem=True`` pools to 1x1 instead (a 512-input classifier). VGG's
3x3 first layer already suits small images, so only this head changes.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Classifier
from .layers import kaiming_init_, linear_init_, make_divisible
from .registry import register_model

# Table 1 of the paper, by column. The comment is the number of weight layers.
# Unlike the other families' tables (rows of :class:`~icdl.models.spec.Spec`), this one stays
# a plain list, as in torchvision: the column is read one layer at a time and has no fields.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG11
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG13
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # VGG16
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],  # VGG19
}


def conv3x3_block(in_channels: int, out_channels: int, batch_norm: bool = False) -> list[nn.Module]:
    """3x3 conv (padding 1 keeps H, W) [-> batch norm] -> ReLU, as a list to splice into a Sequential.

    (N, in_channels, H, W) -> (N, out_channels, H, W).
    """
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return layers


def scaled(channels: int, width: float) -> int:
    """Channels after a width multiplier: a whole number by ``make_divisible`` (divisor 1), at least 1."""
    return make_divisible(channels * width, 1)


def make_layers(config, batch_norm: bool = False, in_channels: int = 3, width: float = 1.0) -> nn.Sequential:
    """The feature extractor from a configuration list such as ``CONFIGS["D"]``.

    ``width`` scales every layer's channels (for CPU-sized experiments).
    (N, in_channels, H, W) -> (N, last channels, H / 2**pools, W / 2**pools).
    """
    layers: list[nn.Module] = []
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            out_channels = scaled(item, width)
            layers += conv3x3_block(in_channels, out_channels, batch_norm)
            in_channels = out_channels  # the next layer reads what this one wrote
    return nn.Sequential(*layers)


def last_channels(config, width: float = 1.0) -> int:
    """Channels of the last convolution in ``config``."""
    return scaled([c for c in config if c != "M"][-1], width)


class VGG(Classifier):
    """VGG: (N, 3, H, W) -> (N, num_classes) logits.

    ``features`` comes from :func:`make_layers`; ``hidden`` is the width of the
    two fully connected layers (4096 in the paper).
    """

    head_path = "classifier.6"

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, *, feature_channels: int = 512,
                 hidden: int = 4096, dropout: float = 0.5, cifar_stem: bool = False, init_weights: bool = True):
        super().__init__()
        pool_size = 1 if cifar_stem else 7
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Linear(feature_channels * pool_size * pool_size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        self.num_features = feature_channels
        if init_weights:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (Kaiming) init for convolutions: the 19-layer net trains from scratch without BN.

        (The paper trained A first and used it to initialise the deeper nets;
        it notes afterwards that Glorot-style random init works too.)
        """
        kaiming_init_(self, mode="fan_out")  # convolutions; batch norms start as the identity
        linear_init_(self, std=0.01)  # small random weights, torchvision's std 0.01 (the paper: variance 1e-2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, 512, h, w)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(x)  # (N, 512, 7, 7), or (N, 512, 1, 1) with cifar_stem
        x = torch.flatten(x, 1)
        return self.classifier(x)  # (N, num_classes)


def vgg(config: str = "D", batch_norm: bool = False, num_classes: int = 1000, *, width: float = 1.0,
        **kwargs) -> VGG:
    """A VGG from a column of Table 1 (``"A"``, ``"B"``, ``"D"`` or ``"E"``)."""
    cfg = CONFIGS[config]
    features = make_layers(cfg, batch_norm=batch_norm, width=width)
    return VGG(features, num_classes, feature_channels=last_channels(cfg, width), **kwargs)


@register_model(torchvision="vgg11", weights="VGG11_Weights.IMAGENET1K_V1", params=132_863_336, macs=7_609_090_048)
def vgg11(num_classes: int = 1000, **kwargs) -> VGG:
    return vgg("A", False, num_classes, **kwargs)


@register_model(torchvision="vgg11_bn", weights="VGG11_BN_Weights.IMAGENET1K_V1", params=132_868_840, macs=7_609_090_048)
def vgg11_bn(num_classes: int = 1000, **kwargs) -> VGG:
    return vgg("A", True, num_classes, **kwargs)


@register_model(torchvision="vgg13", weights="VGG13_Weights.IMAGENET1K_V1", params=133_047_848, macs=11_308_466_176)
def vgg13(num_classes: int = 1000, **kwargs) -> VGG:
    return vgg("B", False, num_classes, **kwargs)


@register_model(torchvision="vgg13_bn", weights="VGG13_BN_Weights.IMAGENET1K_V1", params=133_053_736, macs=11_308_466_176)
def vgg13_bn(num_classes: int = 1000, **kwargs) -> VGG:
    return vgg("B", True, num_classes, **kwargs)


@register_model(torchvision="vgg16", weights="VGG16_Weights.IMAGENET1K_V1", params=138_357_544, macs=15_470_264_320)
def vgg16(num_classes: int = 1000, **kwargs) -> VGG:
    return vgg("D", False, num_classes, **kwargs)


@register_model(torchvision="vgg16_bn", weights="VGG16_BN_Weights.IMAGENET1K_V1", params=138_365_992, macs=15_470_264_320)
def vgg16_bn(num_classes: int = 1000, **kwargs) -> VGG:
    return vgg("D", True, num_classes, **kwargs)


@register_model(torchvision="vgg19", weights="VGG19_Weights.IMAGENET1K_V1", params=143_667_240, macs=19_632_062_464)
def vgg19(num_classes: int = 1000, **kwargs) -> VGG:
    return vgg("E", False, num_classes, **kwargs)


@register_model(torchvision="vgg19_bn", weights="VGG19_BN_Weights.IMAGENET1K_V1", params=143_678_248, macs=19_632_062_464)
def vgg19_bn(num_classes: int = 1000, **kwargs) -> VGG:
    return vgg("E", True, num_classes, **kwargs)
