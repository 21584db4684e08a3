"""Checks for the exercise notebook ``05_googlenet``: the Inception module and GoogLeNet.

    from icdl.checks import ex05_googlenet as ex
    ex.q1.check(inception_macs)      # multiply-adds of each branch, with the 1x1 reductions
    ex.q2.check(Inception)           # the Inception module (paper flavour) as an nn.Module class; its values
                                     # are compared with the learner's own convolutions wired as in the paper
    ex.q3.check(stem_output_size)    # height/width after torchvision's ImageNet stem
    ex.q4.check(googlenet_loss)      # main loss + 0.3 x each auxiliary loss
    ex.q5.check(load_torchvision)    # the course's GoogLeNet with torchvision's weights (copied, not overwritten)
"""

from __future__ import annotations

import itertools
import math

from .core import (Incorrect, NotAttempted, Question, call, describe, expect_same_model, randomize_bn_stats,
                   register, trace_forward)
from .shared import call_copy, whole_number

NOTEBOOK = "05_googlenet"

# (name, input channels, size, c1, c3_reduce, c3, c5_reduce, c5, pool_proj): rows of the paper's Table 1.
MODULES = [
    ("inception (3a)", 192, 28, 64, 96, 128, 16, 32, 32),
    ("inception (4a)", 480, 14, 192, 96, 208, 16, 48, 64),
    ("inception (5b)", 832, 7, 384, 192, 384, 48, 128, 128),
]
BRANCHES = ("1x1", "3x3", "5x5", "pool")


def reference_macs(c_in, size, c1, c3r, c3, c5r, c5, pool_proj) -> dict:
    """Multiply-adds of each branch of an Inception module (weights only, stride 1, same padding)."""
    hw = size * size
    return {
        "1x1": c_in * c1 * hw,
        "3x3": (c_in * c3r + c3r * c3 * 9) * hw,
        "5x5": (c_in * c5r + c5r * c5 * 25) * hw,
        "pool": c_in * pool_proj * hw,  # the max pool itself has no multiply-adds
    }


def _macs_diagnosis(branch, got, want, c_in, size, c1, c3r, c3, c5r, c5, pool_proj) -> str:
    """Name the likely slip behind a wrong branch count."""
    hw = size * size
    k, red, out = (3, c3r, c3) if branch == "3x3" else (5, c5r, c5)
    if branch in ("3x3", "5x5"):
        if got == c_in * out * k * k * hw:
            return "that is the cost WITHOUT the 1x1 reduction: the kxk conv should read the reduced channels."
        if got == red * out * k * k * hw:
            return f"you counted only the {branch} convolution: add the multiply-adds of its 1x1 reduction."
        if got == c_in * red * hw:
            return f"you counted only the 1x1 reduction: add the {branch} convolution on the reduced channels."
    if got * hw == want:
        return "you counted weights, not multiply-adds: each weight is used once per output pixel (x H x W)."
    if branch == "pool" and got == 0:
        return "the max pool has no multiply-adds, but the 1x1 'pool proj' convolution after it does."
    return f"off by {got - want:+,}."


class InceptionMacs(Question):
    title = "multiply-adds of each branch of an Inception module, with the 1x1 reductions"
    hints = [
        "A k x k convolution from C_in to C_out channels with an H x W output costs C_in * C_out * k * k * H * W "
        "multiply-adds (ignore biases).",
        "The 3x3 branch is a 1x1 conv (C_in -> c3_reduce) followed by a 3x3 conv (c3_reduce -> c3): add both. "
        "Same for the 5x5 branch.",
        "The pool branch: the max pool costs no multiply-adds; its 1x1 projection (C_in -> pool_proj) does.",
    ]

    def verify(self, fn):
        for name, c_in, size, *spec in MODULES:
            got = call(fn, c_in, size, *spec, doing=f"inception_macs({c_in}, {size}, {', '.join(map(str, spec))})")
            if got is None:
                raise NotAttempted("Not attempted yet: your function returns None.")
            if not isinstance(got, dict):
                raise Incorrect(f"inception_macs should return a dict with the keys {list(BRANCHES)}, "
                                f"but it returned {describe(got)}.")
            want = reference_macs(c_in, size, *spec)
            missing = [b for b in BRANCHES if b not in got]
            if missing:
                raise Incorrect(f"The dict is missing the key(s) {missing}; expected the keys {list(BRANCHES)}.")
            for branch in BRANCHES:
                value = whole_number(got[branch], f"The '{branch}' entry")
                if value != want[branch]:
                    why = _macs_diagnosis(branch, value, want[branch], c_in, size, *spec)
                    raise Incorrect(f"{name}, branch '{branch}': expected {want[branch]:,} multiply-adds, "
                                    f"got {value:,}: {why}")
        w = reference_macs(192, 28, 64, 96, 128, 16, 32, 32)
        naive5 = 192 * 32 * 25 * 28 * 28
        return (f"Correct! In inception (3a) the 5x5 branch costs {w['5x5']:,} multiply-adds instead of "
                f"{naive5:,} without its reduction ({naive5 / w['5x5']:.1f}x fewer).")


class BuildInception(Question):
    title = "the Inception module (paper flavour) as an nn.Module"
    hints = [
        "Make four branches in __init__: a 1x1 conv; a 1x1 conv then a 3x3 conv (padding=1); a 1x1 conv then "
        "a 5x5 conv (padding=2); a 3x3 max pool (stride=1, padding=1) then a 1x1 conv. ReLU after every conv.",
        "In forward, run all four branches on the same x and join them with torch.cat([...], dim=1): "
        "dim 1 is the channel axis of an (N, C, H, W) tensor.",
        "The output has c1 + c3 + c5 + pool_proj channels and the input's height and width.",
    ]
    # The four 1x1 convolutions have different widths in each config, so each of the learner's convolutions
    # can be told apart by (in, out, kernel).
    CONFIGS = [(192, 64, 96, 128, 16, 32, 32), (48, 8, 12, 16, 4, 6, 10)]

    def verify(self, cls):
        import torch
        from torch import nn

        from ..models.googlenet import Inception as Reference

        if not isinstance(cls, type) or not issubclass(cls, nn.Module):
            raise Incorrect(f"Pass your class itself (`Inception`, an nn.Module subclass); got {describe(cls)}.")
        for c_in, c1, c3r, c3, c5r, c5, pp in self.CONFIGS:
            args = (c_in, c1, c3r, c3, c5r, c5, pp)
            module = call(cls, *args, doing=f"Creating Inception{args}")
            module.eval()
            torch.manual_seed(0)
            x = torch.randn(2, c_in, 12, 12)
            out, _ = trace_forward(module, x)
            want = (2, c1 + c3 + c5 + pp, 12, 12)
            if not isinstance(out, torch.Tensor):
                raise Incorrect(f"forward should return one tensor, but it returned {describe(out)}: "
                                f"concatenate the four branches with torch.cat.")
            got = tuple(out.shape)
            if got != want:
                if len(got) == 4 and got[0] != 2 and got[1] in (c1, c3, c5, pp):
                    raise Incorrect(f"Inception{args} output has shape {got}, expected {want}: the batch size "
                                    f"changed, so you concatenated along dim 0. The channels are dim=1.")
                if len(got) == 4 and got[1] in (c1, c3, c5, pp) and got[2:] == want[2:]:
                    raise Incorrect(f"Inception{args} output has {got[1]} channels, the size of a single branch; "
                                    f"expected {want[1]} = {c1} + {c3} + {c5} + {pp}. Concatenate all four branches "
                                    f"with torch.cat([...], dim=1).")
                if len(got) == 4 and got[1] == want[1]:
                    raise Incorrect(f"Inception{args} output has shape {got}, expected {want}: the height and "
                                    f"width changed. Every branch must keep them: padding=1 for 3x3, padding=2 "
                                    f"for 5x5, and stride=1, padding=1 for the max pool.")
                raise Incorrect(f"Inception{args} output has shape {got}, expected {want} "
                                f"({want[1]} = {c1} + {c3} + {c5} + {pp} channels).")
            if (out < 0).any():
                raise Incorrect("Some outputs are negative: apply a ReLU after every convolution "
                                "(GoogLeNet uses ReLU throughout).")
            kernels = sorted(m.kernel_size[0] for m in module.modules() if isinstance(m, nn.Conv2d))
            if kernels != [1, 1, 1, 1, 3, 5]:
                if kernels == [1, 1, 1, 1, 3, 3]:
                    raise Incorrect("Your '5x5' branch uses a 3x3 kernel. That is torchvision's quirk; the paper "
                                    "(and this exercise) uses a 5x5 kernel with padding=2.")
                raise Incorrect(f"Expected six convolutions with kernel sizes [1, 1, 1, 1, 3, 5] "
                                f"(four 1x1, one 3x3, one 5x5); yours have {kernels}.")
            expected = sum(p.numel() for p in Reference(*args, five_kernel=5, batch_norm=False).parameters())
            n = sum(p.numel() for p in module.parameters())
            if n != expected:
                no_bias = expected - (c1 + c3r + c3 + c5r + c5 + pp)
                why = (" The difference is the biases: the paper's convolutions have biases (bias=True, the default)."
                       if n == no_bias else "")
                raise Incorrect(f"Inception{args} has {n:,} parameters; expected {expected:,}.{why} Check each "
                                f"conv's in/out channels: the 3x3 and 5x5 read the reduced channels, the pool "
                                f"projection reads the input's {c_in}.")
            self._check_values(module, x, out, args)
        return "Correct! Four branches, concatenated along the channels."

    @staticmethod
    def _check_values(module, x, out, args):
        """Compare with the four branches computed from the learner's own convolutions, wired as in the paper."""
        import torch
        import torch.nn.functional as F
        from torch import nn

        c_in, c1, c3r, c3, c5r, c5, pp = args
        convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
        roles = {"1x1": (c_in, c1, 1), "3x3 reduce": (c_in, c3r, 1), "3x3": (c3r, c3, 3), "5x5 reduce": (c_in, c5r, 1),
                 "5x5": (c5r, c5, 5), "pool proj": (c_in, pp, 1)}
        conv = {}
        for role, spec in roles.items():
            found = [m for m in convs if (m.in_channels, m.out_channels, m.kernel_size[0]) == spec]
            if len(found) != 1:
                yours = [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in convs]
                raise Incorrect(f"Expected one convolution (in, out, kernel) = {spec} for the {role} of "
                                f"Inception{args}; yours are {describe(yours, 200)}.")
            conv[role] = found[0]

        def c(role, t):
            m = conv[role]
            return F.conv2d(t, m.weight, m.bias, padding=m.kernel_size[0] // 2)

        def branches(pool=F.max_pool2d, inner=F.relu):
            return {"1x1": F.relu(c("1x1", x)),
                    "3x3": F.relu(c("3x3", inner(c("3x3 reduce", x)))),
                    "5x5": F.relu(c("5x5", inner(c("5x5 reduce", x)))),
                    "pool": F.relu(c("pool proj", pool(x, 3, stride=1, padding=1)))}

        def close(a, b):
            return a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=1e-5, rtol=1e-4)

        with torch.no_grad():
            right = branches()
            if close(out, torch.cat([right[b] for b in BRANCHES], dim=1)):
                return
            for order in itertools.permutations(BRANCHES):
                if close(out, torch.cat([right[b] for b in order], dim=1)):
                    raise Incorrect(f"Your branches are concatenated in the order {', '.join(order)}; the module's "
                                    f"order is 1x1, 3x3, 5x5, pool: torch.cat([b1, b2, b3, b4], dim=1). The layers "
                                    f"after the module (and torchvision's weights) expect the channels in this order.")
            avg, no_inner = branches(pool=F.avg_pool2d), branches(inner=lambda t: t)
            start = 0
            for b in BRANCHES:
                part = out[:, start:start + right[b].shape[1]]
                start += right[b].shape[1]
                if close(part, right[b]):
                    continue
                if b == "pool" and close(part, avg[b]):
                    raise Incorrect("The pool branch uses average pooling; the Inception module's pool branch is a "
                                    "3x3 max pool (stride 1, padding 1) followed by its 1x1 projection.")
                if b in ("3x3", "5x5") and close(part, no_inner[b]):
                    raise Incorrect(f"The '{b}' branch has no ReLU between its 1x1 reduction and the {b} "
                                    f"convolution: GoogLeNet applies a ReLU after every convolution, the reductions "
                                    f"included.")
                diff = (part.double() - right[b].double()).abs().max().item()
                raise Incorrect(f"The channels of the '{b}' branch differ (by up to {diff:.3g}) from that branch "
                                f"computed with your own convolutions as the paper wires it (stride 1, 'same' "
                                f"padding, a ReLU after every convolution, a 3x3 max pool before the pool "
                                f"projection). Check the order of the layers in that branch.")


class StemOutputSize(Question):
    title = "the height and width after torchvision GoogLeNet's ImageNet stem"
    hints = [
        "The stem is conv1 (7x7, stride 2, padding 3), maxpool1 (3x3, stride 2), conv2 (1x1), conv3 (3x3, "
        "padding 1), maxpool2 (3x3, stride 2). The 1x1 and padded 3x3 convolutions keep the size.",
        "A convolution or pool turns n into (n + 2p - k) // s + 1 ... but torchvision's max pools use "
        "ceil_mode=True: round the division up instead of down.",
        "With ceil_mode: math.ceil((n - 3) / 2) + 1 for a 3x3 stride-2 pool without padding.",
    ]
    SIZES = (224, 96, 299, 64, 33, 100)

    @staticmethod
    def expected(n: int) -> int:
        import torch

        from ..models.googlenet import googlenet

        m = googlenet(width=0.0625, aux_logits=False)
        stem = torch.nn.Sequential(m.conv1, m.maxpool1, m.conv2, m.conv3, m.maxpool2).eval()
        with torch.no_grad():
            return int(stem(torch.zeros(1, 3, n, n)).shape[-1])

    def verify(self, fn):
        floor = lambda n: (((n + 6 - 7) // 2 + 1 - 3) // 2 + 1 - 3) // 2 + 1  # noqa: E731
        for n in self.SIZES:
            got = whole_number(call(fn, n, doing=f"stem_output_size({n})"), f"stem_output_size({n})")
            want = self.expected(n)
            if got != want:
                if got == floor(n):
                    raise Incorrect(f"stem_output_size({n}) is {got}, expected {want}: you rounded down in the "
                                    f"pools, but torchvision's max pools use ceil_mode=True (round up).")
                if got in (2 * want, 2 * want - 1, 2 * want + 1):
                    raise Incorrect(f"stem_output_size({n}) is {got}, expected {want}: that is about twice the "
                                    f"answer; did you leave out one of the two stride-2 max pools?")
                if got == n // 2 or got == (n + 1) // 2:
                    raise Incorrect(f"stem_output_size({n}) is {got}, expected {want}: that is the size after "
                                    f"conv1 only; the two max pools halve it twice more.")
                raise Incorrect(f"stem_output_size({n}) is {got}, expected {want}.")
        return ("Correct! 224 x 224 images reach inception (3a) at 28 x 28. The stem divides the side by 8: "
                "conv1 rounds up, the two ceil_mode pools each halve rounding down, so in all the size is "
                "(n + 1) // 8 (not n // 8, which is one short when n % 8 == 7).")


class AuxLoss(Question):
    title = "GoogLeNet's training loss with the auxiliary classifiers"
    hints = [
        "outputs is (logits, aux_logits2, aux_logits1), torchvision's order; each is (N, K). "
        "Use F.cross_entropy(logits, targets) for each head.",
        "The paper adds each auxiliary loss with weight 0.3; the main loss has weight 1.",
    ]

    def verify(self, fn):
        import torch
        import torch.nn.functional as F

        gen = torch.Generator().manual_seed(0)
        logits, aux2, aux1 = (torch.randn(6, 5, generator=gen) * s for s in (1.0, 2.0, 3.0))
        y = torch.tensor([0, 1, 2, 3, 4, 0])
        got = call(fn, (logits, aux2, aux1), y, doing="googlenet_loss((logits, aux2, aux1), targets)")
        if got is None:
            raise NotAttempted("Not attempted yet: your function returns None.")
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            raise Incorrect(f"googlenet_loss should return a scalar tensor, but it returned {describe(got)}.")
        main, l1, l2 = F.cross_entropy(logits, y), F.cross_entropy(aux1, y), F.cross_entropy(aux2, y)
        want = main + 0.3 * (l1 + l2)
        value = got.item()
        if math.isclose(value, want.item(), rel_tol=1e-5):
            return "Correct! At inference the auxiliary heads are discarded."
        one_head = "only one auxiliary head is counted: add 0.3 x the loss of each of the two"
        slips = [
            ("you added the auxiliary losses with weight 1 instead of 0.3", main + l1 + l2),
            ("the auxiliary losses are missing: add 0.3 x each of them", main),
            ("you weighted the main loss by 0.3 instead of the auxiliary ones", 0.3 * main + l1 + l2),
            ("you averaged the three losses; the paper adds 0.3 x each auxiliary loss to the main loss",
             (main + l1 + l2) / 3),
            (one_head, main + 0.3 * l1),
            (one_head, main + 0.3 * l2),
        ]
        for why, slip in slips:
            if math.isclose(value, slip.item(), rel_tol=1e-5):
                raise Incorrect(f"Your loss is {value:.4f}, expected {want.item():.4f}: {why}.")
        raise Incorrect(f"Your loss is {value:.4g}, expected {want.item():.4f}. The cross-entropies of the three "
                        f"heads are: main {main.item():.4f}, aux1 {l1.item():.4f}, aux2 {l2.item():.4f}; check how "
                        f"you combine them.")


class LoadTorchvision(Question):
    title = "the course's GoogLeNet carrying torchvision's weights"
    hints = [
        "Build the course's model with googlenet.googlenet(num_classes=..., aux_logits=True), then call "
        "model.load_state_dict(tv_model.state_dict(), strict=True).",
        "strict=True fails loudly if any key is missing or has the wrong shape, which is what you want.",
    ]

    def verify(self, fn):
        import torch
        import torchvision

        from ..models.googlenet import GoogLeNet

        def build():
            torch.manual_seed(0)
            tv = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True, num_classes=7)
            return randomize_bn_stats(tv)  # so a model without the copied BN buffers cannot pass

        model, tv = call_copy(fn, build, doing="load_torchvision(tv_model)")
        x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
        expect_same_model(model, tv, GoogLeNet, x, label="The model from load_torchvision(tv_model)",
                          build="googlenet.googlenet(num_classes=tv_model.fc.out_features, aux_logits=True)",
                          require_eval=False)
        return "Correct! Same keys, same shapes, same outputs."


q1 = InceptionMacs()
q2 = BuildInception()
q3 = StemOutputSize()
q4 = AuxLoss()
q5 = LoadTorchvision()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5)

__all__ = ["q1", "q2", "q3", "q4", "q5", "reference_macs"]
