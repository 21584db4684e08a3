"""GoogLeNet (Inception v1), from Szegedy et al. 2015, "Going deeper with convolutions".

Read it top to bottom:

1. ``ConvBNReLU``: every convolution of the network (conv, optional batch norm, ReLU).
2. ``Inception``: four parallel branches (1x1; 1x1 -> 3x3; 1x1 -> "5x5"; 3x3 max pool
   -> 1x1) whose outputs are concatenated along the channels.
3. ``AuxClassifier``: the small classifier heads on inception (4a) and (4d), used
   only in training (their loss is added with weight 0.3).
4. ``INCEPTION_CFG``: the paper's Table 1 as data, one row per Inception module.
5. ``GoogLeNet``: the configurable network; ``googlenet()`` and
   ``googlenet_paper()`` are thin factories.

Two flavours, chosen by arguments (see the chapter 05 notebook):

* ``googlenet()`` matches ``torchvision.models.googlenet`` and loads its
  ``state_dict`` with ``strict=True``: batch norm after every convolution
  (eps 0.001, as in the ported weights), and the "5x5" branch uses a **3x3**
  kernel, a known quirk of the weights torchvision ported.
  Its max pool before inception (5a) is 2x2 where the paper's is 3x3.
* ``googlenet_paper()`` follows the paper: no batch norm (convolutions have
  biases), a real 5x5 kernel, a 3x3 max pool before (5a), dropout 0.4 before
  the last layer. The paper's
  local response normalisation layers are left out in both flavours.

``cifar_stem=True`` replaces the ImageNet stem (7x7 stride-2 conv and a max
pool, which shrink 224 px to 56 px) by a 3x3 stride-1 conv without that pool,
so a 32x32 image reaches inception (3a) at 16x16 rather than 4x4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .base import Classifier
from .layers import make_divisible
from .registry import register_model
from .spec import Spec


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------
class ConvBNReLU(nn.Module):
    """Conv2d -> BatchNorm2d (optional) -> ReLU.  (N, C_in, H, W) -> (N, C_out, H', W').

    The names ``conv`` and ``bn`` match torchvision's ``BasicConv2d``. Without
    batch norm the convolution gets its own bias, as in the paper.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int = 0, batch_norm: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=not batch_norm)
        # eps=0.001 is what the ported TensorFlow weights were trained with.
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


@dataclass(frozen=True)
class InceptionSpec(Spec):
    """One row of the paper's Table 1: the output channels of each branch.

    ``Inception(in_channels, *spec[1:])`` builds the module of a row (``spec[1:]``: every field but the name).
    """

    name: str
    c1: int          # "#1x1": the 1x1 branch
    c3_reduce: int   # "#3x3 reduce": 1x1 conv before the 3x3
    c3: int          # "#3x3"
    c5_reduce: int   # "#5x5 reduce": 1x1 conv before the 5x5
    c5: int          # "#5x5"
    pool_proj: int   # "pool proj": 1x1 conv after the 3x3 max pool

    @property
    def out_channels(self) -> int:
        return self.c1 + self.c3 + self.c5 + self.pool_proj


class Inception(nn.Module):
    """The Inception module: four branches run side by side, then concatenated.

    (N, in_channels, H, W) -> (N, c1 + c3 + c5 + pool_proj, H, W).
    ``five_kernel`` is 5 in the paper and 3 in torchvision's ported weights.
    """

    def __init__(self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int,
                 pool_proj: int, five_kernel: int = 3, batch_norm: bool = True):
        super().__init__()
        bn = batch_norm
        self.branch1 = ConvBNReLU(in_channels, c1, 1, batch_norm=bn)
        # The 1x1 "reduce" convolutions shrink the channels before the costly 3x3/5x5.
        self.branch2 = nn.Sequential(
            ConvBNReLU(in_channels, c3_reduce, 1, batch_norm=bn),
            ConvBNReLU(c3_reduce, c3, 3, padding=1, batch_norm=bn),
        )
        self.branch3 = nn.Sequential(
            ConvBNReLU(in_channels, c5_reduce, 1, batch_norm=bn),
            ConvBNReLU(c5_reduce, c5, five_kernel, padding=five_kernel // 2, batch_norm=bn),
        )
        # Stride-1 pooling keeps H and W; the 1x1 projection keeps its channels small.
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            ConvBNReLU(in_channels, pool_proj, 1, batch_norm=bn),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # stack the branches' channels


class AuxClassifier(nn.Module):
    """Auxiliary head: avg pool to 4x4 -> 1x1 conv (128) -> FC 1024 -> dropout 0.7 -> FC.

    (N, C, H, W) -> (N, num_classes). The paper pools 14x14 maps with a 5x5
    window, stride 3, which gives 4x4; adaptive pooling gives 4x4 from any size.
    """

    def __init__(self, in_channels: int, num_classes: int, batch_norm: bool = True,
                 conv_channels: int = 128, hidden: int = 1024, dropout: float = 0.7):
        super().__init__()
        self.conv = ConvBNReLU(in_channels, conv_channels, 1, batch_norm=batch_norm)
        self.fc1 = nn.Linear(conv_channels * 4 * 4, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4)))
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(self.dropout(x))


# ---------------------------------------------------------------------------
# The paper's Table 1, as data. "maxpool" rows are the 3x3 stride-2 pools
# between stages. Each module's input channels are the previous row's output.
# ---------------------------------------------------------------------------
INCEPTION_CFG: list[InceptionSpec | str] = [
    InceptionSpec("inception3a", 64, 96, 128, 16, 32, 32),     # -> 256
    InceptionSpec("inception3b", 128, 128, 192, 32, 96, 64),   # -> 480
    "maxpool3",
    InceptionSpec("inception4a", 192, 96, 208, 16, 48, 64),    # -> 512, aux1 taps here
    InceptionSpec("inception4b", 160, 112, 224, 24, 64, 64),   # -> 512
    InceptionSpec("inception4c", 128, 128, 256, 24, 64, 64),   # -> 512
    InceptionSpec("inception4d", 112, 144, 288, 32, 64, 64),   # -> 528, aux2 taps here
    InceptionSpec("inception4e", 256, 160, 320, 32, 128, 128), # -> 832
    "maxpool4",
    InceptionSpec("inception5a", 256, 160, 320, 32, 128, 128), # -> 832
    InceptionSpec("inception5b", 384, 192, 384, 48, 128, 128), # -> 1024
]
STEM_CHANNELS = (64, 64, 192)   # conv1 7x7/2, conv2 1x1 ("reduce"), conv3 3x3
AUX_TAPS = {"inception4a": "aux1", "inception4d": "aux2"}


def scaled(channels: int, width: float) -> int:
    """Channels after a width multiplier: a whole number by ``make_divisible`` (divisor 1), at least 1."""
    return make_divisible(channels * width, 1)


def scale_spec(spec: InceptionSpec, width: float) -> InceptionSpec:
    """The same row with every channel count multiplied by ``width`` (see :func:`scaled`)."""
    return InceptionSpec(spec.name, *(scaled(c, width) for c in spec[1:]))


class GoogLeNetOutputs(NamedTuple):
    """What a training-mode GoogLeNet with auxiliary heads returns (torchvision's order)."""

    logits: torch.Tensor
    aux_logits2: torch.Tensor
    aux_logits1: torch.Tensor


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------
class GoogLeNet(Classifier):
    """GoogLeNet: stem, nine Inception modules, global average pool, one linear layer.

    (N, 3, H, W) -> (N, num_classes) in eval mode (or without aux heads);
    in training mode with ``aux_logits=True`` it returns
    ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``.

    Arguments: ``five_kernel`` (3 = torchvision, 5 = paper), ``batch_norm``,
    ``dropout`` before the last layer (0.2 torchvision, 0.4 paper),
    ``pool4_kernel`` (the max pool before inception (5a): 3x3 in the paper, 2x2 in torchvision),
    ``width`` (multiplies every channel count: a smaller model for CPUs),
    ``cifar_stem`` (3x3 stride-1 first conv and no first max pool, for 32x32),
    ``transform_input`` (torchvision's re-normalisation for its ported weights).
    ``forward_features`` runs the stem and the Inception modules (no auxiliary heads).
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, five_kernel: int = 3,
                 batch_norm: bool = True, dropout: float = 0.2, width: float = 1.0,
                 cifar_stem: bool = False, transform_input: bool = False, pool4_kernel: int = 2,
                 cfg=INCEPTION_CFG):
        super().__init__()
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.order: list[str] = []  # the forward pass, as a list of attribute names
        c1, c2, c3 = (scaled(c, width) for c in STEM_CHANNELS)
        bn = batch_norm

        # Stem: 224 -> 56 on ImageNet; 32 -> 32 with the CIFAR stem.
        if cifar_stem:
            self._add("conv1", ConvBNReLU(3, c1, 3, stride=1, padding=1, batch_norm=bn))
            self._add("maxpool1", nn.Identity())
        else:
            self._add("conv1", ConvBNReLU(3, c1, 7, stride=2, padding=3, batch_norm=bn))
            self._add("maxpool1", nn.MaxPool2d(3, stride=2, ceil_mode=True))
        self._add("conv2", ConvBNReLU(c1, c2, 1, batch_norm=bn))
        self._add("conv3", ConvBNReLU(c2, c3, 3, padding=1, batch_norm=bn))
        self._add("maxpool2", nn.MaxPool2d(3, stride=2, ceil_mode=True))

        channels = c3
        for row in cfg:
            if isinstance(row, str):  # a stride-2 max pool between stages
                kernel = pool4_kernel if row == "maxpool4" else 3
                self._add(row, nn.MaxPool2d(kernel, stride=2, ceil_mode=True))
                continue
            spec = scale_spec(row, width)
            self._add(spec.name, Inception(channels, *spec[1:], five_kernel=five_kernel, batch_norm=bn))
            channels = spec.out_channels
            if spec.name in AUX_TAPS:
                aux = AuxClassifier(channels, num_classes, bn, scaled(128, width),
                                    scaled(1024, width)) if aux_logits else None
                setattr(self, AUX_TAPS[spec.name], aux)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        self.out_channels = self.num_features = channels

    def _add(self, name: str, module: nn.Module) -> None:
        setattr(self, name, module)
        self.order.append(name)

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        """Map an ImageNet-normalised input to the (x - 0.5) / 0.5 scaling the ported weights expect."""
        mean = torch.tensor([0.485, 0.456, 0.406], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return x * (std / 0.5) + (mean - 0.5) / 0.5

    def _run(self, x: torch.Tensor, aux_outputs: dict | None) -> torch.Tensor:
        """Stem and Inception modules; with a dict, the auxiliary heads' logits are put in it."""
        if self.transform_input:
            x = self._transform(x)
        for name in self.order:
            x = getattr(self, name)(x)
            head = AUX_TAPS.get(name)
            if head and aux_outputs is not None:
                aux_outputs[head] = getattr(self, head)(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, None)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))

    def forward(self, x: torch.Tensor):
        aux_outputs = {} if self.training and self.aux_logits else None
        logits = self.forward_head(self._run(x, aux_outputs))
        if aux_outputs is not None:
            return GoogLeNetOutputs(logits, aux_outputs["aux2"], aux_outputs["aux1"])
        return logits


def googlenet_loss(outputs, targets: torch.Tensor, aux_weight: float = 0.3) -> torch.Tensor:
    """Cross-entropy of the main head plus ``aux_weight`` times that of each auxiliary head.

    ``outputs`` is a ``GoogLeNetOutputs`` (training) or plain logits (evaluation).
    """
    if isinstance(outputs, GoogLeNetOutputs):
        main = F.cross_entropy(outputs.logits, targets)
        aux = F.cross_entropy(outputs.aux_logits1, targets) + F.cross_entropy(outputs.aux_logits2, targets)
        return main + aux_weight * aux
    return F.cross_entropy(outputs, targets)


def aux_output_loss(outputs, targets: torch.Tensor, loss_fn=F.cross_entropy, aux_weight: float = 0.3):
    """The ``output_loss`` hook of ``train.fit`` for GoogLeNet: ``(logits, loss)``.

    In training mode the network returns ``(logits, aux_logits2, aux_logits1)``
    (a ``GoogLeNetOutputs``, or torchvision's tuple in the same order); the loss
    is ``loss_fn`` of the main head plus ``aux_weight`` times that of each
    auxiliary head, and the main logits ``(N, K)`` come back for the accuracy.
    Plain logits (a network built with ``aux_logits=False``) give
    ``(outputs, loss_fn(outputs, targets))``. Use it as
    ``train.fit(model, ..., output_loss=googlenet.aux_output_loss)``.
    """
    if isinstance(outputs, tuple):
        logits, aux2, aux1 = outputs
        aux = loss_fn(aux1, targets) + loss_fn(aux2, targets)
        return logits, loss_fn(logits, targets) + aux_weight * aux
    return outputs, loss_fn(outputs, targets)


# ---------------------------------------------------------------------------
# Factories
# ---------------------------------------------------------------------------
@register_model(torchvision="googlenet", weights="GoogLeNet_Weights.IMAGENET1K_V1", params=6_624_904, macs=1_498_376_192, eval_kwargs={"aux_logits": False})
def googlenet(num_classes: int = 1000, aux_logits: bool = True, **kwargs) -> GoogLeNet:
    """torchvision's GoogLeNet: batch norm, 3x3 kernels in the "5x5" branch, dropout 0.2."""
    return GoogLeNet(num_classes, aux_logits, five_kernel=3, batch_norm=True, dropout=0.2,
                     pool4_kernel=2, **kwargs)


def googlenet_paper(num_classes: int = 1000, aux_logits: bool = True, **kwargs) -> GoogLeNet:
    """The paper's GoogLeNet (without LRN): no batch norm, real 5x5 kernels, dropout 0.4."""
    return GoogLeNet(num_classes, aux_logits, five_kernel=5, batch_norm=False, dropout=0.4,
                     pool4_kernel=3, **kwargs)
