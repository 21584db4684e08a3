"""AlexNet (Krizhevsky, Sutskever & Hinton, NeurIPS 2012), written for the course.

Two configurations, both written as data so they can be checked row by row:

* ``PAPER``: the network of the 2012 paper (its Figure 2 and Section 3.5):
  96-256-384-384-256 filters, local response normalisation (LRN) after conv1
  and conv2, and ``groups=2`` where the paper split a layer across two GPUs
  (each GPU saw only its own half of the previous layer's channels).
* ``TORCHVISION``: the single-GPU variant that torchvision's ``alexnet``
  implements: 64-192-384-256-256 filters, no LRN, no groups. torchvision's
  docstring points to Krizhevsky's 2014 note "One weird trick"
  (arXiv:1404.5997), whose network has 64-192-384-384-256 filters; the 256
  in conv4 comes from cuda-convnet2's one-GPU configuration, so the course
  names the variant after torchvision. **Only this one loads torchvision's
  weights** (``strict=True``); the paper variant has other shapes.

Layout of the network (names match torchvision's ``state_dict`` keys)::

    features   conv-relu[-lrn][-pool] x 5      (N, 3, H, W) -> (N, 256, h, w)
    avgpool    AdaptiveAvgPool2d(6)            -> (N, 256, 6, 6)
    classifier dropout-fc-relu-dropout-fc-relu-fc   -> (N, num_classes)

Small images: the 11x11 stride-4 first layer was made for 224x224 photos; on
a 32x32 CIFAR image it leaves almost nothing (32 -> 7 -> 3). ``cifar_stem=True``
replaces it with a 3x3 stride-1 convolution and pools the last map to 3x3.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from .base import Classifier
from .layers import kaiming_init_, linear_init_, make_divisible
from .registry import register_model
from .spec import Spec


@dataclass(frozen=True)
class ConvSpec(Spec):
    """One convolutional layer of AlexNet and what follows its ReLU."""

    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    groups: int = 1  # 2 = the paper's two-GPU split: each half sees half the input channels
    lrn: bool = False  # local response normalisation after the ReLU
    pool: bool = False  # overlapping max pooling (3x3, stride 2) at the end


# The paper, Section 3.5 and Figure 2. With padding 2, a 224x224 input gives the
# paper's 55x55 first maps ((224 + 4 - 11) // 4 + 1 = 55).
PAPER = (
    ConvSpec(96, 11, stride=4, padding=2, lrn=True, pool=True),
    ConvSpec(256, 5, padding=2, groups=2, lrn=True, pool=True),
    ConvSpec(384, 3, padding=1),  # conv3 reads both GPUs' conv2 maps: no groups
    ConvSpec(384, 3, padding=1, groups=2),
    ConvSpec(256, 3, padding=1, groups=2, pool=True),
)

# torchvision.models.alexnet (one GPU). The "one weird trick" note has 384 filters in conv4;
# torchvision's 256 follows cuda-convnet2's one-GPU configuration.
TORCHVISION = (
    ConvSpec(64, 11, stride=4, padding=2, pool=True),
    ConvSpec(192, 5, padding=2, pool=True),
    ConvSpec(384, 3, padding=1),
    ConvSpec(256, 3, padding=1),
    ConvSpec(256, 3, padding=1, pool=True),
)

CONFIGS = {"paper": PAPER, "torchvision": TORCHVISION}


def local_response_norm() -> nn.LocalResponseNorm:
    """The paper's LRN: k=2, n=5, alpha=1e-4, beta=0.75 (Section 3.3).

    PyTorch divides ``alpha`` by the window size ``n``; the paper does not,
    so the paper's alpha=1e-4 becomes ``alpha=5 * 1e-4`` here.
    """
    return nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)


def scaled(channels: int, width: float) -> int:
    """Channels after a width multiplier, rounded by ``make_divisible`` to a multiple of 2.

    Even counts keep the paper's ``groups=2`` layers valid (each half needs whole channels).
    """
    return channels if width == 1.0 else make_divisible(channels * width, 2)


def make_features(config, in_channels: int = 3, width: float = 1.0, cifar_stem: bool = False) -> nn.Sequential:
    """The convolutional part as one flat ``nn.Sequential`` (torchvision's indices).

    (N, in_channels, H, W) -> (N, last out_channels, h, w).
    """
    if cifar_stem:  # 32x32 images: a small first kernel that keeps the resolution
        config = (replace(config[0], kernel_size=3, stride=1, padding=1), *config[1:])
    layers: list[nn.Module] = []
    for spec in config:
        out_channels = scaled(spec.out_channels, width)
        layers.append(nn.Conv2d(in_channels, out_channels, spec.kernel_size, spec.stride, spec.padding,
                                groups=spec.groups))
        layers.append(nn.ReLU(inplace=True))
        if spec.lrn:
            layers.append(local_response_norm())
        if spec.pool:
            # Overlapping pooling: the 3x3 windows step by 2, so neighbours share a row/column.
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        in_channels = out_channels
    return nn.Sequential(*layers)


class AlexNet(Classifier):
    """AlexNet: (N, in_channels, H, W) -> (N, num_classes) logits.

    ``config`` is ``PAPER`` or ``TORCHVISION`` (or your own tuple of
    :class:`ConvSpec`); ``width`` scales every conv layer's channels and
    ``hidden`` the two 4096-unit fully connected layers, for CPU-sized runs.
    """

    head_path = "classifier.6"

    def __init__(self, config=TORCHVISION, num_classes: int = 1000, *, in_channels: int = 3,
                 width: float = 1.0, hidden: int = 4096, dropout: float = 0.5,
                 cifar_stem: bool = False, pool_size: int | None = None):
        super().__init__()
        pool_size = pool_size or (3 if cifar_stem else 6)
        self.features = make_features(config, in_channels, width, cifar_stem)
        last = scaled(config[-1].out_channels, width)
        # Any input size >= 63 px ends in a map that is pooled to a fixed size.
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),  # dropout on the inputs of FC1 and FC2, as torchvision (the paper drops their outputs)
            nn.Linear(last * pool_size * pool_size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        self.num_features = last

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, C, h, w)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(x)  # (N, C, pool, pool)
        x = torch.flatten(x, 1)  # (N, C * pool * pool)
        return self.classifier(x)  # (N, num_classes)


def he_init_(model: nn.Module) -> nn.Module:
    """Re-initialise ``model`` in place for training from scratch with ReLUs; returns it.

    PyTorch's default initialisation (which torchvision's AlexNet keeps) scales
    weights so that each ReLU layer shrinks the signal; through eight layers and
    dropout the logits start near zero and the loss stays flat for epochs.
    He et al. (2015) pick the weight variance 2 / fan_in so that the signal
    keeps its scale through ReLUs. The last layer starts small so that the
    first predictions are close to uniform. Biases start at zero. (The 2012
    paper used N(0, 0.01) weights and biases of 1 in some layers instead.)
    """
    kaiming_init_(model, mode="fan_in", linear=True)
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    linear_init_(last, std=0.01)
    return model


@register_model(torchvision="alexnet", weights="AlexNet_Weights.IMAGENET1K_V1", params=61_100_840, macs=714_188_480)
def alexnet(num_classes: int = 1000, **kwargs) -> AlexNet:
    """torchvision's AlexNet (the torchvision variant): loads its ``state_dict`` with strict=True."""
    return AlexNet(TORCHVISION, num_classes, **kwargs)


def alexnet_paper(num_classes: int = 1000, **kwargs) -> AlexNet:
    """The 2012 paper's AlexNet (96 first-layer filters, LRN, two-GPU groups). No torchvision weights."""
    return AlexNet(PAPER, num_classes, **kwargs)
