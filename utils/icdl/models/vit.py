"""The Vision Transformer (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words", arXiv:2010.11929).

An image becomes a sequence: it is cut into P x P patches, each patch is flattened and
projected to a vector of ``hidden_dim`` numbers (a P x P convolution with stride P does both
at once), a learned *class token* is put in front, and a learned *position embedding* is
added so that the model knows where each patch came from. A stack of transformer encoder
blocks then lets every token look at every other token (self-attention), and the class
token's final vector is classified. The paper's Eq. 1-4:

    z0 = [x_class; x_1 E; ...; x_N E] + E_pos
    z'_l = MSA(LN(z_{l-1})) + z_{l-1}
    z_l  = MLP(LN(z'_l)) + z'_l
    y    = LN(z_L^0)

The pieces, smallest first: :class:`SelfAttention` (multi-head self-attention, written
out; its parameters have the names of ``nn.MultiheadAttention``), :class:`MLPBlock`,
:class:`EncoderBlock`, :class:`Encoder`, :class:`VisionTransformer`, and the factories
:func:`vit_b_16` (same ``state_dict`` keys as torchvision's) and :func:`vit_tiny` (a small
ViT for CPU-sized experiments).

Unlike a CNN, nothing here knows that neighbouring pixels belong together, apart from the
patch cutting: the model must learn it from data. That is why a ViT trained from scratch on
a small dataset falls behind a CNN of the same size, and why DeiT (Touvron et al., 2021)
needed strong augmentation and regularisation to train one on ImageNet-1K alone.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Classifier
from .layers import trunc_normal_init_, xavier_init_
from .registry import register_model, reject_overrides
from .spec import Spec


class SelfAttention(nn.Module):
    """Multi-head self-attention: (N, T, D) -> (N, T, D).

    Each token's vector is projected to a query, a key and a value (one matrix
    ``in_proj_weight`` of shape (3D, D) holds all three). The D numbers are split into
    ``num_heads`` heads of D / num_heads; in each head, token i's output is the average of
    all tokens' values, weighted by softmax_j(q_i . k_j / sqrt(d)). The heads are joined and
    projected by ``out_proj``.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by {num_heads} heads")
        self.num_heads, self.dropout = num_heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        n, t, d = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        # (N, T, D) -> (N, heads, T, D / heads)
        q, k, v = (z.reshape(n, t, self.num_heads, d // self.num_heads).transpose(1, 2) for z in (q, k, v))
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.num_heads), dim=-1)  # (N, h, T, T)
        if self.training and self.dropout:
            weights = F.dropout(weights, self.dropout)
        out = self.out_proj((weights @ v).transpose(1, 2).reshape(n, t, d))
        return (out, weights) if return_weights else out


class MLPBlock(nn.Sequential):
    """Linear to ``mlp_dim``, GELU, dropout, Linear back, dropout (torchvision's layer indices)."""

    def __init__(self, dim: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim),
                         nn.Dropout(dropout))
        xavier_init_(self, bias_std=1e-6)


class EncoderBlock(nn.Module):
    """``x + MSA(LN(x))``, then ``+ MLP(LN(.))``: pre-norm, as in the paper (Eq. 2-3). (N, T, D) -> (N, T, D)."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, dropout: float = 0.0,
                 attention_dropout: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = SelfAttention(dim, num_heads, attention_dropout)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, mlp_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.self_attention(self.ln_1(x)))
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """Position embedding, ``num_layers`` encoder blocks, a final LayerNorm: (N, T, D) -> (N, T, D)."""

    def __init__(self, seq_length: int, num_layers: int, num_heads: int, dim: int, mlp_dim: int,
                 dropout: float = 0.0, attention_dropout: float = 0.0):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, dim).normal_(std=0.02))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(OrderedDict(
            (f"encoder_layer_{i}", EncoderBlock(dim, num_heads, mlp_dim, dropout, attention_dropout))
            for i in range(num_layers)))
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(Classifier):
    """ViT: (N, in_channels, image_size, image_size) -> (N, num_classes).

    ``forward_features`` returns all tokens, (N, 1 + (image_size / patch_size)², hidden_dim);
    ``forward_head`` classifies the class token (token 0).
    """

    head_path = "heads.head"

    def __init__(self, image_size: int = 224, patch_size: int = 16, num_layers: int = 12, num_heads: int = 12,
                 hidden_dim: int = 768, mlp_dim: int = 3072, num_classes: int = 1000, *, in_channels: int = 3,
                 dropout: float = 0.0, attention_dropout: float = 0.0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size, self.hidden_dim = image_size, patch_size, hidden_dim
        # Patch embedding: cut into patches and project each to hidden_dim numbers, in one convolution.
        self.conv_proj = nn.Conv2d(in_channels, hidden_dim, kernel_size=patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        seq_length = (image_size // patch_size) ** 2 + 1
        self.encoder = Encoder(seq_length, num_layers, num_heads, hidden_dim, mlp_dim, dropout, attention_dropout)
        self.heads = nn.Sequential(OrderedDict([("head", nn.Linear(hidden_dim, num_classes))]))
        self.num_features = hidden_dim
        fan_in = in_channels * patch_size * patch_size
        trunc_normal_init_(self.conv_proj, std=math.sqrt(1 / fan_in))
        # The classifier starts at zero, as torchvision's (the paper zero-initialises the head when fine-tuning).
        nn.init.zeros_(self.heads.head.weight)
        nn.init.zeros_(self.heads.head.bias)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, number of patches, hidden_dim): one token per patch, row by row."""
        n, _, h, w = x.shape
        if (h, w) != (self.image_size, self.image_size):
            raise ValueError(f"this ViT takes {self.image_size}x{self.image_size} images (its position embedding "
                             f"has one entry per patch), not {h}x{w}")
        return self.conv_proj(x).flatten(2).transpose(1, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patchify(x)
        cls = self.class_token.expand(tokens.shape[0], -1, -1)
        return self.encoder(torch.cat([cls, tokens], dim=1))

    def forward_head(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.heads(tokens[:, 0])


@dataclass(frozen=True)
class ViTConfig(Spec):
    """One row of the paper's Table 1 (plus the patch size, which the paper puts in the name)."""

    patch_size: int
    num_layers: int
    num_heads: int
    hidden_dim: int  # D, the width of every token
    mlp_dim: int  # the hidden width of each MLP block


# The paper's Table 1 (ViT-Base; the patch size is in the name), and a small one for CPU runs.
CONFIGS = {
    "vit_b_16": ViTConfig(patch_size=16, num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072),
    "vit_b_32": ViTConfig(patch_size=32, num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072),
    "vit_tiny": ViTConfig(patch_size=4, num_layers=6, num_heads=4, hidden_dim=128, mlp_dim=256),
}


def _from_config(name: str, kwargs: dict) -> VisionTransformer:
    config = dict(CONFIGS[name])
    reject_overrides(name, kwargs, config)
    return VisionTransformer(**{**config, **kwargs})


@register_model(torchvision="vit_b_16", weights="ViT_B_16_Weights.IMAGENET1K_V1", fixed_input=True,
                params=86_567_656, macs=17_563_828_224)
def vit_b_16(**kwargs) -> VisionTransformer:
    return _from_config("vit_b_16", kwargs)


def vit_b_32(**kwargs) -> VisionTransformer:
    return _from_config("vit_b_32", kwargs)


@register_model(input_size=32, fixed_input=True, params=938_856, macs=58_128_896)
def vit_tiny(image_size: int = 32, **kwargs) -> VisionTransformer:
    """A 6-layer ViT with 4x4 patches for 32x32 images (64 tokens and a class token), for CPU experiments."""
    return _from_config("vit_tiny", {"image_size": image_size, **kwargs})
