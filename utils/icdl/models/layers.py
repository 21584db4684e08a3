"""Building blocks shared by the model families (after torchvision's ``ops/misc.py``).

* :func:`make_divisible`: the one rounding rule for channel counts after a width
  multiplier (MobileNet's, which every family that scales widths uses, each with its
  own divisor: 8 for the mobile families, 2 for AlexNet's two-GPU groups, 1 elsewhere).
* :class:`ConvNormActivation`: convolution, normalisation, activation, as an
  ``nn.Sequential`` whose indices (``0`` conv, ``1`` norm, ``2`` activation)
  match torchvision's ``Conv2dNormActivation``, so weights load by name.
* :class:`SqueezeExcitation`: channel attention (Hu et al., 2018): global
  average pool, a 1x1 bottleneck, a gate in [0, 1] per channel.
* :class:`StochasticDepth`: drops a residual branch for a whole sample during
  training (Huang et al., 2016), "DropPath".
* :class:`LayerNorm2d`: LayerNorm over the channels of an ``(N, C, H, W)`` tensor.
* :func:`kaiming_init_`, :func:`linear_init_`, :func:`trunc_normal_init_`,
  :func:`xavier_init_`: the initialisation schemes, one helper each; a family that
  re-initialises its layers calls these (LeNet-5, AlexNet and GoogLeNet keep PyTorch's
  default initialisation).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, never below ``min_value`` or 90% of ``value``.

    Hardware runs channel counts that are multiples of 8 fastest; the 90% floor keeps a
    width multiplier from removing more than a tenth of a layer (MobileNetV2's rule).
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvNormActivation(nn.Sequential):
    """``Conv2d -> norm -> activation``: (N, C_in, H, W) -> (N, C_out, H / stride, W / stride).

    ``padding`` defaults to "same" for odd kernels; the convolution has a bias only when
    there is no norm layer (a norm's own shift makes a bias redundant). ``norm_layer`` or
    ``activation_layer`` ``None`` leaves that layer out.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, groups: int = 1, dilation: int = 1,
                 norm_layer: Callable[..., nn.Module] | None = nn.BatchNorm2d,
                 activation_layer: Callable[..., nn.Module] | None = nn.ReLU, inplace: bool | None = True,
                 bias: bool | None = None):
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                             dilation=dilation, groups=groups, bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer() if inplace is None else activation_layer(inplace=inplace))
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """``x * gate(x)``, one gate per channel: (N, C, H, W) -> (N, C, H, W).

    The gate: global average pool to (N, C, 1, 1), a 1x1 convolution down to
    ``squeeze_channels``, ``activation``, a 1x1 convolution back to C, ``scale_activation``
    (sigmoid; MobileNetV3 uses the cheaper hard sigmoid). Names as torchvision's.
    """

    def __init__(self, channels: int, squeeze_channels: int, activation: Callable[..., nn.Module] = nn.ReLU,
                 scale_activation: Callable[..., nn.Module] = nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * gate


class StochasticDepth(nn.Module):
    """Zero the input for a random share ``p`` of the samples in training, scaling the rest by ``1 / (1 - p)``.

    Put on a residual branch, it skips that block for those samples (Huang et al., 2016);
    in eval mode it does nothing. ``mode="batch"`` drops the branch for the whole batch at once.
    """

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability must be in [0, 1], got {p}")
        if mode not in ("row", "batch"):
            raise ValueError(f"mode must be 'row' or 'batch', got {mode!r}")
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        if keep > 0.0:
            noise.div_(keep)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of (N, C, H, W): each pixel's C values get mean 0 and variance 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


_NORMS = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)


def kaiming_init_(model: nn.Module, mode: str = "fan_out", nonlinearity: str = "relu",
                  linear: bool = False) -> nn.Module:
    """He initialisation for every convolution (biases 0); norm layers start as the identity (1, 0).

    Weights are drawn from N(0, 2 / fan), ``fan`` being the inputs (``mode="fan_in"``) or
    the outputs (``"fan_out"``) of one unit, so that a signal keeps its scale through ReLUs
    (He et al., 2015). ``linear=True`` treats the linear layers the same way.
    """
    layer_types = (nn.Conv2d, nn.Linear) if linear else (nn.Conv2d,)
    for m in model.modules():
        if isinstance(m, layer_types):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity=nonlinearity)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def linear_init_(model: nn.Module, std: float | None = 0.01, weights: bool = True) -> nn.Module:
    """Every linear layer: weights N(0, std²) (``std=None``: uniform in ±1/sqrt(out_features)), biases 0.

    ``weights=False`` only zeroes the biases and leaves the weights as PyTorch drew them (DenseNet).
    """
    for m in model.modules():
        if isinstance(m, nn.Linear):
            if weights and std is None:
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
            elif weights:
                nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def trunc_normal_init_(model: nn.Module, std: float = 0.02) -> nn.Module:
    """Convolutions and linear layers: truncated N(0, std²) weights, biases 0 (ConvNeXt, ViT)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def xavier_init_(model: nn.Module, bias_std: float = 0.0) -> nn.Module:
    """Every linear layer: Glorot (Xavier) uniform weights, biases N(0, bias_std²) (``0``: zeros).

    Glorot and Bengio (2010) keep the variance of the signal forward and of the gradient
    backward alike: weights uniform in ±sqrt(6 / (fan_in + fan_out)). The ViT's MLP blocks.
    """
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                if bias_std:
                    nn.init.normal_(m.bias, std=bias_std)
                else:
                    nn.init.zeros_(m.bias)
    return model
