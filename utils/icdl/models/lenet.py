"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998), in two variants.

Both variants have the paper's seven layers and sizes (Section II.B of the paper)::

    input 1x32x32
    C1  conv 5x5, 6 maps            -> 6x28x28
    S2  subsample 2x2               -> 6x14x14
    C3  conv 5x5, 16 maps           -> 16x10x10
    S4  subsample 2x2               -> 16x5x5
    C5  conv 5x5, 120 maps          -> 120x1x1   (a fully connected layer on a 5x5 input)
    F6  fully connected, 84 units   -> 84
    output, one unit per class      -> 10

``variant="classic"`` follows the paper closely:

* squashing function ``1.7159 * tanh(2x/3)`` after every layer up to F6 (Section II.B, Appendix A);
* S2/S4 *trainable* subsampling: the sum of each 2x2 block times one trainable
  coefficient per map, plus one trainable bias per map, then the squashing;
* C3 reads only the S2 maps listed in the paper's Table I (1,516 parameters instead of 2,416).

It departs from the paper in three places, on purpose:

* the output layer is a linear layer trained with softmax cross-entropy, not the
  paper's Euclidean RBF units with fixed +1/-1 target codes and its discriminative loss (Section II.C);
* weights use PyTorch's default initialisation, not the paper's fan-in-scaled uniform one;
* (training, not the model) we use AdamW/SGD, not stochastic diagonal Levenberg-Marquardt.

``variant="modern"`` is how LeNet-5 is usually written today: ReLU, 2x2 max pooling,
a full C3 (every C3 map reads all six S2 maps), optional batch norm (off by default).

MNIST digits are 28x28 while LeNet-5 expects 32x32: the paper pads the image;
``c1_padding=2`` does the same inside C1 so a 28x28 input still gives 6x28x28 after C1.

Reference: Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning
applied to document recognition", Proc. IEEE 86(11), 1998.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from .base import Classifier
from .registry import register_model
from .spec import Spec
from torch.nn import functional as F

# Table I of the paper: the S2 maps (0-5) that each of the 16 C3 maps reads.
# Six maps read 3 neighbouring maps, six read 4 neighbouring maps, three read
# 4 non-neighbouring maps and the last reads all six.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


@dataclass(frozen=True)
class Variant(Spec):
    """What differs between the two LeNet-5 variants."""

    activation: str  # "scaled_tanh" or "relu"
    pooling: str  # "trainable" (the paper's subsampling) or "max"
    c3_table: bool  # True: C3 reads only the maps of Table I


VARIANTS = {
    "classic": Variant(activation="scaled_tanh", pooling="trainable", c3_table=True),
    "modern": Variant(activation="relu", pooling="max", c3_table=False),
}

@dataclass(frozen=True)
class Widths(Spec):
    """The layer widths of Section II.B (both variants); kernels are 5x5, pooling 2x2."""

    c1: int  # feature maps of C1
    c3: int  # feature maps of C3
    c5: int  # feature maps of C5
    f6: int  # units of F6


WIDTHS = Widths(c1=6, c3=16, c5=120, f6=84)


# ---------------------------------------------------------------------------
# Small blocks
# ---------------------------------------------------------------------------
class ScaledTanh(nn.Module):
    """The paper's squashing function f(a) = 1.7159 tanh(2a/3): f(1) = 1 and f(-1) = -1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class TrainableSubsampling(nn.Module):
    """S2/S4: the sum of each 2x2 block, times a trainable coefficient, plus a bias (per map).

    (N, C, H, W) -> (N, C, H/2, W/2). 2 parameters per map.
    """

    def __init__(self, channels: int, kernel_size: int = 2):
        super().__init__()
        self.kernel_size = kernel_size
        # 1/k^2 makes it start as a plain average, a gentle start for the squashing.
        self.weight = nn.Parameter(torch.full((channels,), 1.0 / kernel_size**2))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        k = self.kernel_size
        # Split H and W into (H/k, k) and (W/k, k) and sum over each k x k block (faster than avg_pool2d on CPU).
        block_sum = x[:, :, : h - h % k, : w - w % k].reshape(n, c, h // k, k, w // k, k).sum(dim=(3, 5))
        return block_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class PartialConv2d(nn.Module):
    """C3 with a connection table: output map j is a convolution of the input maps ``table[j]`` only.

    (N, C_in, H, W) -> (N, len(table), H - k + 1, W - k + 1), with exactly the paper's parameters:
    one k x k kernel per connection (per X in Table I) and one bias per output map.

    The forward pass scatters those kernels into a dense (C_out, C_in, k, k) weight whose other
    entries are zero, then runs one ordinary convolution: the same result as a convolution per
    map, and as fast as a full C3 on a CPU.
    """

    def __init__(self, table: tuple[tuple[int, ...], ...], kernel_size: int = 5):
        super().__init__()
        self.table = table
        self.in_channels = 1 + max(max(inputs) for inputs in table)
        pairs = [(out_map, in_map) for out_map, inputs in enumerate(table) for in_map in inputs]
        self.register_buffer("out_index", torch.tensor([o for o, _ in pairs]), persistent=False)
        self.register_buffer("in_index", torch.tensor([i for _, i in pairs]), persistent=False)
        self.weight = nn.Parameter(torch.empty(len(pairs), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(len(table)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyTorch's default for a convolution, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), with each map's own fan-in.
        k = self.weight.shape[-1]
        fan_in = torch.tensor([len(inputs) * k * k for inputs in self.table], dtype=torch.float32)
        bound = fan_in.rsqrt()  # one bound per output map
        with torch.no_grad():
            self.weight.uniform_(-1.0, 1.0).mul_(bound[self.out_index].view(-1, 1, 1))
            self.bias.uniform_(-1.0, 1.0).mul_(bound)

    def dense_weight(self) -> torch.Tensor:
        """(C_out, C_in, k, k): the kernels of Table I's connections, zeros elsewhere."""
        k = self.weight.shape[-1]
        dense = self.weight.new_zeros(len(self.table), self.in_channels, k, k)
        dense[self.out_index, self.in_index] = self.weight
        return dense

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)


def make_activation(name: str) -> nn.Module:
    return {"scaled_tanh": ScaledTanh, "relu": nn.ReLU}[name]()


def make_pooling(kind: str, channels: int) -> nn.Module:
    return TrainableSubsampling(channels) if kind == "trainable" else nn.MaxPool2d(2)


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------
class LeNet5(Classifier):
    """LeNet-5: (N, in_channels, 32, 32) -> (N, num_classes) logits.

    With ``c1_padding=2`` it takes 28x28 inputs (MNIST) instead: (N, in_channels, 28, 28) -> (N, num_classes).
    ``forward_features`` ends after C5: (N, 120, 1, 1).
    """

    head_path = "classifier.output"

    def __init__(self, variant: str = "modern", num_classes: int = 10, in_channels: int = 1,
                 c1_padding: int = 0, batch_norm: bool = False):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, not {variant!r}")
        self.variant = variant
        cfg = VARIANTS[variant]
        c1, c3, c5, f6 = WIDTHS
        # The paper squashes after subsampling too; modern max pooling needs no activation.
        squash_after_pool = cfg.pooling == "trainable"

        def conv_block(name, conv, out_channels):
            layers = [(name, conv)]
            if batch_norm:
                layers.append((f"bn_{name}", nn.BatchNorm2d(out_channels)))
            layers.append((f"act_{name}", make_activation(cfg.activation)))
            return layers

        def pool_block(name, channels):
            layers = [(name, make_pooling(cfg.pooling, channels))]
            if squash_after_pool:
                layers.append((f"act_{name}", make_activation(cfg.activation)))
            return layers

        c3_conv = PartialConv2d(C3_TABLE) if cfg.c3_table else nn.Conv2d(c1, c3, 5)
        self.features = nn.Sequential(OrderedDict(
            conv_block("c1", nn.Conv2d(in_channels, c1, 5, padding=c1_padding), c1)
            + pool_block("s2", c1)
            + conv_block("c3", c3_conv, c3)
            + pool_block("s4", c3)
            + conv_block("c5", nn.Conv2d(c3, c5, 5), c5)
        ))
        self.classifier = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()),
            ("f6", nn.Linear(c5, f6)),
            ("act_f6", make_activation(cfg.activation)),
            ("output", nn.Linear(f6, num_classes)),
        ]))
        self.num_features = c5

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)


@register_model(input_size=32, in_channels=1, params=61_706, macs=416_520)
def lenet5(variant: str = "modern", **kwargs) -> LeNet5:
    """``lenet5("classic")`` or ``lenet5("modern", c1_padding=2)`` for 28x28 MNIST."""
    return LeNet5(variant, **kwargs)


def expected_params(variant: str = "modern", num_classes: int = 10, in_channels: int = 1) -> dict[str, int]:
    """Parameters per layer from the formulas (weights + biases), to check the code against.

    Convolution: out * (in * k * k + 1); linear: out * (in + 1); trainable subsampling: 2 per map.
    """
    cfg = VARIANTS[variant]
    c1, c3, c5, f6 = WIDTHS
    if cfg.c3_table:
        c3_params = sum(len(inputs) * 5 * 5 + 1 for inputs in C3_TABLE)
    else:
        c3_params = c3 * (c1 * 5 * 5 + 1)
    pool = (lambda maps: 2 * maps) if cfg.pooling == "trainable" else (lambda maps: 0)
    return {
        "c1": c1 * (in_channels * 5 * 5 + 1),
        "s2": pool(c1),
        "c3": c3_params,
        "s4": pool(c3),
        "c5": c5 * (c3 * 5 * 5 + 1),
        "f6": f6 * (c5 + 1),
        "output": num_classes * (f6 + 1),
    }
