"""ConvNeXt (Liu et al., 2022, "A ConvNet for the 2020s", arXiv:2201.03545), written for reading.

The paper starts from a ResNet-50 and changes one design choice at a time towards what
vision transformers do, keeping each change that helps (its Section 2 and Figure 2):

* **macro design**: stage depths 3:3:9:3 instead of ResNet-50's 3:4:6:3, and a *patchify*
  stem, a 4x4 convolution with stride 4 (non-overlapping patches, like ViT's patch
  embedding), instead of the 7x7 stride-2 convolution and max pool;
* **depthwise convolution** (ResNeXt's idea taken to one group per channel) with the width
  raised to 96 channels;
* **inverted bottleneck**: the block is wide in the middle (4x), as a transformer's MLP;
* **large kernels**: the depthwise convolution moved to the top of the block and grown to 7x7;
* **micro design**: GELU instead of ReLU, one activation and one normalisation per block
  instead of three, LayerNorm instead of BatchNorm, and separate downsampling layers
  (LayerNorm, then a 2x2 stride-2 convolution) between stages.

The pieces, smallest first: :class:`ConvNeXtBlock`, :class:`StageSpec` (the paper's stage
table as data), :class:`ConvNeXt`, and the factories :func:`convnext_tiny` ... :func:`convnext_large`
(same ``state_dict`` keys as torchvision's). Two training details of the paper are built in:
*layer scale* (each block's output multiplied by a learned per-channel factor that starts at
1e-6, Touvron et al., 2021) and *stochastic depth* (a block skipped for a random share of the
samples, that share growing linearly with depth).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from .base import Classifier
from .layers import ConvNormActivation, LayerNorm2d, StochasticDepth, trunc_normal_init_
from .registry import register_model, reject_overrides
from .spec import Spec


class ChannelsLast(nn.Module):
    """(N, C, H, W) <-> (N, H, W, C), so that LayerNorm and Linear act on the channels of each pixel."""

    def __init__(self, to_last: bool):
        super().__init__()
        self.dims = (0, 2, 3, 1) if to_last else (0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


class ConvNeXtBlock(nn.Module):
    """``x + drop(scale * F(x))``: (N, C, H, W) -> (N, C, H, W).

    F is a 7x7 depthwise convolution (mixes space, each channel alone), LayerNorm, a 1x1
    expansion to 4C (a Linear on each pixel), GELU, a 1x1 projection back to C. One norm and
    one activation per block, where a ResNet block has three of each.
    """

    def __init__(self, channels: int, layer_scale: float = 1e-6, drop_path: float = 0.0):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=7, padding=3, groups=channels),  # depthwise 7x7
            ChannelsLast(True),
            nn.LayerNorm(channels, eps=1e-6),
            nn.Linear(channels, 4 * channels),  # the inverted bottleneck: wide in the middle
            nn.GELU(),
            nn.Linear(4 * channels, channels),
            ChannelsLast(False),
        )
        self.layer_scale = nn.Parameter(torch.full((channels, 1, 1), layer_scale))
        self.stochastic_depth = StochasticDepth(drop_path, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.stochastic_depth(self.layer_scale * self.block(x))


@dataclass(frozen=True)
class StageSpec(Spec):
    """One row of the stage table: blocks of ``channels``, then a downsampling layer to ``out_channels``."""

    channels: int
    out_channels: int | None  # None: the last stage, no downsampling after it
    num_blocks: int


def _stages(widths: tuple[int, ...], depths: tuple[int, ...]) -> tuple[StageSpec, ...]:
    return tuple(StageSpec(w, widths[i + 1] if i + 1 < len(widths) else None, d)
                 for i, (w, d) in enumerate(zip(widths, depths)))


@dataclass(frozen=True)
class ConvNeXtConfig(Spec):
    """One model of the family: its stage table and the drop rate of stochastic depth it trains with."""

    stages: tuple[StageSpec, ...]
    stochastic_depth: float  # the paper's (and torchvision's) rate for this size


# The paper's Section 3 ("ConvNeXt-T/S/B/L"): channels per stage and blocks per stage.
CONFIGS = {
    "convnext_tiny": ConvNeXtConfig(_stages((96, 192, 384, 768), (3, 3, 9, 3)), 0.1),
    "convnext_small": ConvNeXtConfig(_stages((96, 192, 384, 768), (3, 3, 27, 3)), 0.4),
    "convnext_base": ConvNeXtConfig(_stages((128, 256, 512, 1024), (3, 3, 27, 3)), 0.5),
    "convnext_large": ConvNeXtConfig(_stages((192, 384, 768, 1536), (3, 3, 27, 3)), 0.5),
}


class ConvNeXt(Classifier):
    """Patchify stem, four stages of ConvNeXt blocks with downsampling layers between them, then
    global average pooling, LayerNorm and a linear classifier: (N, in_channels, H, W) -> (N, num_classes).

    ``features`` holds, in order: the stem, stage 1, downsampling 1, stage 2, ... stage 4
    (torchvision's indices). ``stochastic_depth`` is the drop probability of the last block;
    block i of n gets ``stochastic_depth * i / (n - 1)``.
    """

    head_path = "classifier.2"

    def __init__(self, stages=CONFIGS["convnext_tiny"].stages, num_classes: int = 1000, *, in_channels: int = 3,
                 stochastic_depth: float = 0.0, layer_scale: float = 1e-6, patch_size: int = 4):
        super().__init__()
        norm2d = partial(LayerNorm2d, eps=1e-6)
        # The patchify stem: non-overlapping patch_size x patch_size patches, then LayerNorm.
        layers: list[nn.Module] = [ConvNormActivation(in_channels, stages[0].channels, kernel_size=patch_size,
                                                      stride=patch_size, padding=0, norm_layer=norm2d,
                                                      activation_layer=None, bias=True)]
        total, index = sum(s.num_blocks for s in stages), 0
        for spec in stages:
            blocks = []
            for _ in range(spec.num_blocks):
                blocks.append(ConvNeXtBlock(spec.channels, layer_scale, stochastic_depth * index / max(1, total - 1)))
                index += 1
            layers.append(nn.Sequential(*blocks))
            if spec.out_channels is not None:  # a separate downsampling layer: LayerNorm, 2x2 conv, stride 2
                layers.append(nn.Sequential(norm2d(spec.channels),
                                            nn.Conv2d(spec.channels, spec.out_channels, kernel_size=2, stride=2)))
        self.features = nn.Sequential(*layers)
        self.num_features = stages[-1].out_channels or stages[-1].channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(norm2d(self.num_features), nn.Flatten(1),
                                        nn.Linear(self.num_features, num_classes))
        trunc_normal_init_(self, std=0.02)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, num_features, H / 32, W / 32)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(x))


def _from_config(name: str, kwargs: dict) -> ConvNeXt:
    config = CONFIGS[name]
    stages = config.stages
    reject_overrides(name, kwargs, {"stages": stages})
    kwargs.setdefault("stochastic_depth", config.stochastic_depth)  # the paper's rate for this size
    kwargs.pop("stages", None)
    return ConvNeXt(stages, **kwargs)


@register_model(torchvision="convnext_tiny", weights="ConvNeXt_Tiny_Weights.IMAGENET1K_V1", params=28_589_128,
                macs=4_455_531_264, paper_top1=82.1, paper_source="Liu et al. 2022, Table 1 (ImageNet-1K, 224 px)")
def convnext_tiny(**kwargs) -> ConvNeXt:
    return _from_config("convnext_tiny", kwargs)


@register_model(torchvision="convnext_small", weights="ConvNeXt_Small_Weights.IMAGENET1K_V1", params=50_223_688,
                macs=8_683_712_256)
def convnext_small(**kwargs) -> ConvNeXt:
    return _from_config("convnext_small", kwargs)


def convnext_base(**kwargs) -> ConvNeXt:
    return _from_config("convnext_base", kwargs)


def convnext_large(**kwargs) -> ConvNeXt:
    return _from_config("convnext_large", kwargs)
