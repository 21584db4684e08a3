"""Checks for the exercise notebook ``05_googlenet``: the Inception module and GoogLeNet.

    from icdl.checks import ex05_googlenet as ex
    ex.q1.check(inception_macs)      # multiply-adds of each branch, with the 1x1 reductions
    ex.q2.check(Inception)           # debug a given Inception module (its pool branch lacks the 1x1 projection);
                                     # the values are compared with the learner's own convolutions wired as in
                                     # the paper
    ex.q3.check(stem_output_size)    # height/width after torchvision's ImageNet stem
    ex.q4.check(googlenet_loss)      # main loss + 0.3 x each auxiliary loss
    ex.q5.check(load_checkpoint)     # a checkpoint saved from nn.DataParallel ("module." keys, heads maybe
                                     # dropped) loaded strictly into the course's GoogLeNet
"""

from __future__ import annotations

import itertools
import math

from .core import (Incorrect, Question, call, describe, graded_mode, randomize_bn_stats, register,
                   trace_forward)
from .kinds import FunctionQuestion
from .shared import whole_number

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


def _branch(b, c3r, c3, c5r, c5):
    """(kernel, reduced channels, output channels) of the 3x3 or 5x5 branch."""
    return (3, c3r, c3) if b == "3x3" else (5, c5r, c5)


# Slips per branch: (branches it applies to, what the learner did, that branch's value with the slip).
BRANCH_MISTAKES = [
    (("3x3", "5x5"), "that is the cost WITHOUT the 1x1 reduction: the kxk conv should read the reduced channels",
     lambda b, c_in, size, c1, c3r, c3, c5r, c5, pp: c_in * _branch(b, c3r, c3, c5r, c5)[2]
     * _branch(b, c3r, c3, c5r, c5)[0] ** 2 * size * size),
    (("3x3", "5x5"), "you counted only the {b} convolution: add the multiply-adds of its 1x1 reduction",
     lambda b, c_in, size, c1, c3r, c3, c5r, c5, pp: _branch(b, c3r, c3, c5r, c5)[1] * _branch(b, c3r, c3, c5r, c5)[2]
     * _branch(b, c3r, c3, c5r, c5)[0] ** 2 * size * size),
    (("3x3", "5x5"), "you counted only the 1x1 reduction: add the {b} convolution on the reduced channels",
     lambda b, c_in, size, c1, c3r, c3, c5r, c5, pp: c_in * _branch(b, c3r, c3, c5r, c5)[1] * size * size),
    (("pool",), "the max pool has no multiply-adds, but the 1x1 'pool proj' convolution after it does",
     lambda b, *spec: 0),
    (BRANCHES, "you counted weights, not multiply-adds: each weight is used once per output pixel (x H x W)",
     lambda b, c_in, size, *rest: reference_macs(c_in, size, *rest)[b] // (size * size)),
]


class InceptionMacs(FunctionQuestion):
    """A FunctionQuestion whose result is a dict: each branch is compared, with slips named per branch."""

    title = "multiply-adds of each branch of an Inception module, with the 1x1 reductions"
    function = "inception_macs"
    cases = [spec[1:] for spec in MODULES]
    reference = staticmethod(reference_macs)
    hints = [
        "A k x k convolution from C_in to C_out channels with an H x W output costs C_in * C_out * k * k * H * W "
        "multiply-adds (ignore biases).",
        "The 3x3 branch is a 1x1 conv (C_in -> c3_reduce) followed by a 3x3 conv (c3_reduce -> c3): add both. "
        "Same for the 5x5 branch.",
        "The pool branch: the max pool costs no multiply-adds; its 1x1 projection (C_in -> pool_proj) does.",
    ]

    def normalise(self, got, label):
        if not isinstance(got, dict):
            raise Incorrect(f"inception_macs should return a dict with the keys {list(BRANCHES)}, "
                            f"but it returned {describe(got)}.")
        missing = [b for b in BRANCHES if b not in got]
        if missing:
            raise Incorrect(f"The dict is missing the key(s) {missing}; expected the keys {list(BRANCHES)}.")
        return {b: whole_number(got[b], f"The '{b}' entry") for b in BRANCHES}

    def verify(self, fn):
        for name, *spec in MODULES:
            got = self.normalise(call(fn, *spec, doing=f"inception_macs({', '.join(map(str, spec))})"), name)
            want = self.reference(*spec)
            for b in BRANCHES:
                if got[b] == want[b]:
                    continue
                for branches, message, slip in BRANCH_MISTAKES:
                    value = slip(b, *spec) if b in branches else want[b]
                    if value != want[b] and got[b] == value:
                        raise Incorrect(f"{name}, branch '{b}': got {got[b]:,} multiply-adds: "
                                        f"{message.format(b=b)}.")
                shown = "" if graded_mode() else f"; expected {want[b]:,}"
                raise Incorrect(f"{name}, branch '{b}': got {got[b]:,} multiply-adds{shown} "
                                f"(off by {got[b] - want[b]:+,}).")
        w = reference_macs(192, 28, 64, 96, 128, 16, 32, 32)
        naive5 = 192 * 32 * 25 * 28 * 28
        return (f"Correct! In inception (3a) the 5x5 branch costs {w['5x5']:,} multiply-adds instead of "
                f"{naive5:,} without its reduction ({naive5 / w['5x5']:.1f}x fewer).")


class DebugInception(Question):
    title = "debug an Inception module (paper flavour) whose output has the wrong number of channels"
    hints = [
        "Print the output shape of each branch of BuggyInception(192, 64, 96, 128, 16, 32, 32) on a 28x28 input "
        "with 192 channels. Which branch does not have the width the module's arguments ask for?",
        "A max pool works on each channel separately, so it keeps the number of channels: the pool branch "
        "outputs all 192 input channels. What does the paper put after the pool (Figure 2b)?",
        "The pool branch needs its 1x1 'pool proj' convolution, from in_channels to pool_proj, followed by a "
        "ReLU like every other convolution of the module.",
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
                if len(got) == 4 and got[1] == c1 + c3 + c5 + c_in and got[2:] == want[2:]:
                    raise Incorrect(f"Inception{args} output has {got[1]} = {c1} + {c3} + {c5} + {c_in} channels; "
                                    f"expected {want[1]} = {c1} + {c3} + {c5} + {pp}. The pool branch passes all "
                                    f"{c_in} input channels through: a max pool keeps the number of channels. Put "
                                    f"the module's 1x1 'pool proj' convolution (to pool_proj channels, then a ReLU) "
                                    f"after the pool.")
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
            kernels = sorted(m.kernel_size[0] for m in module.modules() if isinstance(m, nn.Conv2d))
            if kernels != [1, 1, 1, 1, 3, 5]:
                if kernels == [1, 1, 1, 3, 5] and not any(
                        (m.in_channels, m.out_channels, m.kernel_size[0]) == (c_in, pp, 1)
                        for m in module.modules() if isinstance(m, nn.Conv2d)):
                    raise Incorrect(f"Inception{args} has no 1x1 convolution from the {c_in} input channels to "
                                    f"pool_proj = {pp}: the pool branch gets the right width without its "
                                    f"projection. Keeping some of the pooled channels is not the same: the 1x1 "
                                    f"projection mixes all {c_in} of them into {pp} new ones. Use "
                                    f"nn.Conv2d(in_channels, pool_proj, 1) after the pool.")
                if kernels == [1, 1, 1, 1, 3, 3]:
                    raise Incorrect("Your '5x5' branch uses a 3x3 kernel. That is torchvision's quirk; the paper "
                                    "(and this exercise) uses a 5x5 kernel with padding=2.")
                raise Incorrect(f"Expected six convolutions with kernel sizes [1, 1, 1, 1, 3, 5] "
                                f"(four 1x1, one 3x3, one 5x5); yours have {kernels}.")
            if (out < 0).any():
                raise Incorrect("Some outputs are negative: apply a ReLU after every convolution "
                                "(GoogLeNet uses ReLU throughout).")
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
        return ("Correct! The pool branch now ends in its 1x1 projection, so the module outputs c1 + c3 + c5 + "
                "pool_proj channels whatever its input width, and the next module's input width is what the table "
                "says it is.")

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
            proj_first = F.max_pool2d(F.relu(c("pool proj", x)), 3, stride=1, padding=1)
            start = 0
            for b in BRANCHES:
                part = out[:, start:start + right[b].shape[1]]
                start += right[b].shape[1]
                if close(part, right[b]):
                    continue
                if b == "pool" and close(part, proj_first):
                    raise Incorrect("The pool branch runs its 1x1 projection before the max pool. The module pools "
                                    "first, over the input's own channels, then projects the pooled map to "
                                    "pool_proj channels: nn.MaxPool2d(3, stride=1, padding=1), then the 1x1 "
                                    "convolution and its ReLU.")
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


def stem_size(n: int) -> int:
    """The height (= width) after torchvision GoogLeNet's ImageNet stem, measured on the real layers."""
    import torch

    from ..models.googlenet import googlenet

    m = googlenet(width=0.0625, aux_logits=False)
    stem = torch.nn.Sequential(m.conv1, m.maxpool1, m.conv2, m.conv3, m.maxpool2).eval()
    with torch.no_grad():
        return int(stem(torch.zeros(1, 3, n, n)).shape[-1])


def _conv1(n):
    return (n + 2 * 3 - 7) // 2 + 1


def _ceil_pool(n):
    return math.ceil((n - 3) / 2) + 1


def _floor_pool(n):
    return (n - 3) // 2 + 1


class StemOutputSize(FunctionQuestion):
    title = "the height and width after torchvision GoogLeNet's ImageNet stem"
    function = "stem_output_size"
    result = "int"
    cases = [(224,), (96,), (299,), (64,), (33,), (100,), (231,)]
    reference = staticmethod(stem_size)
    mistakes = [
        # n // 8 first: where it is wrong (n % 8 == 7), rounding down in the pools can give the same number.
        ("divided n by 8 rounding down; that is right for most sizes but one short for this one: follow the size "
         "through each layer, each with its own rounding", lambda n: n // 8),
        ("rounded down in the pools, but torchvision's max pools use ceil_mode=True (round up)",
         lambda n: _floor_pool(_floor_pool(_conv1(n)))),
        ("left out one of the two stride-2 max pools", lambda n: _ceil_pool(_conv1(n))),
        ("computed the size after conv1 only; the two max pools halve it twice more", _conv1),
        ("computed the size after conv1 only; the two max pools halve it twice more", lambda n: n // 2),
    ]
    success = ("Correct! 224 x 224 images reach inception (3a) at 28 x 28. The stem divides the side by 8: "
               "conv1 rounds up, the two ceil_mode pools each halve rounding down, so in all the size is "
               "(n + 1) // 8 (not n // 8, which is one short when n % 8 == 7).")
    hints = [
        "The stem is conv1 (7x7, stride 2, padding 3), maxpool1 (3x3, stride 2), conv2 (1x1), conv3 (3x3, "
        "padding 1), maxpool2 (3x3, stride 2). The 1x1 and padded 3x3 convolutions keep the size.",
        "A convolution or pool turns n into (n + 2p - k) // s + 1 ... but torchvision's max pools use "
        "ceil_mode=True: round the division up instead of down.",
        "With ceil_mode: math.ceil((n - 3) / 2) + 1 for a 3x3 stride-2 pool without padding.",
    ]


def _ce(z, t):
    import torch.nn.functional as F

    return F.cross_entropy(z, t)


class AuxLoss(FunctionQuestion):
    title = "GoogLeNet's training loss with the auxiliary classifiers"
    function = "googlenet_loss"
    result = "tensor"
    atol, rtol = 1e-6, 1e-5

    @property
    def cases(self):
        import torch

        gen = torch.Generator().manual_seed(0)
        logits, aux2, aux1 = (torch.randn(6, 5, generator=gen) * s for s in (1.0, 2.0, 3.0))
        return [((logits, aux2, aux1), torch.tensor([0, 1, 2, 3, 4, 0]))]

    @staticmethod
    def reference(outputs, targets):
        logits, aux2, aux1 = outputs
        return _ce(logits, targets) + 0.3 * (_ce(aux1, targets) + _ce(aux2, targets))

    mistakes = [
        ("added the auxiliary losses with weight 1 instead of 0.3",
         lambda o, t: _ce(o[0], t) + _ce(o[1], t) + _ce(o[2], t)),
        ("left the auxiliary losses out: add 0.3 x each of them", lambda o, t: _ce(o[0], t)),
        ("weighted the main loss by 0.3 instead of the auxiliary ones",
         lambda o, t: 0.3 * _ce(o[0], t) + _ce(o[1], t) + _ce(o[2], t)),
        ("averaged the three losses; the paper adds 0.3 x each auxiliary loss to the main loss",
         lambda o, t: (_ce(o[0], t) + _ce(o[1], t) + _ce(o[2], t)) / 3),
        ("counted only one auxiliary head: add 0.3 x the loss of each of the two",
         lambda o, t: _ce(o[0], t) + 0.3 * _ce(o[1], t)),
        ("counted only one auxiliary head: add 0.3 x the loss of each of the two",
         lambda o, t: _ce(o[0], t) + 0.3 * _ce(o[2], t)),
        ("averaged the two auxiliary losses before weighting them: the paper adds 0.3 x each of them",
         lambda o, t: _ce(o[0], t) + 0.3 * (_ce(o[1], t) + _ce(o[2], t)) / 2),
    ]
    success = "Correct! At inference the auxiliary heads are discarded."
    hints = [
        "outputs is (logits, aux_logits2, aux_logits1), torchvision's order; each is (N, K). "
        "Use F.cross_entropy(logits, targets) for each head.",
        "The paper adds each auxiliary loss with weight 0.3; the main loss has weight 1.",
    ]

    def normalise(self, got, label):
        import torch

        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            raise Incorrect(f"googlenet_loss should return a scalar tensor, but it returned {describe(got)}.")
        return got.detach().reshape(())


# --------------------------------------------------------------------------
# Question 5: a checkpoint saved from nn.DataParallel
# --------------------------------------------------------------------------
PREFIX = "module."
CHECKPOINTS = [(10, False), (5, True)]  # (classes, auxiliary heads): the notebook's case first


def _trained(num_classes: int, aux: bool):
    """A course GoogLeNet standing for a trained one: every tensor has its own values, BN statistics included."""
    import torch

    from ..models.googlenet import googlenet

    torch.manual_seed(num_classes)
    model = googlenet(num_classes=num_classes, aux_logits=aux)
    gen = torch.Generator().manual_seed(num_classes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.num_batches_tracked.fill_(1000)
    return randomize_bn_stats(model, seed=num_classes).eval()


def _checkpoint(model) -> dict:
    """What ``nn.DataParallel(model).state_dict()`` holds: every key with the prefix ``module.``."""
    from collections import OrderedDict

    return OrderedDict((PREFIX + k, v.detach().clone()) for k, v in model.state_dict().items())


def _names(keys, limit: int = 3) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


class LoadCheckpoint(Question):
    title = "a checkpoint saved from nn.DataParallel, loaded into the course's GoogLeNet"
    hints = [
        "Print a few keys of the checkpoint and of googlenet.googlenet().state_dict(): what do the checkpoint's "
        "keys have that the model's do not?",
        "Build a new dict whose keys have the leading 'module.' removed (key[len('module.'):]). The number of "
        "classes is the first dimension of the checkpoint's fc.weight; the heads are there if any key starts "
        "with 'aux1.'.",
        "Then model = googlenet.googlenet(num_classes=..., aux_logits=...); model.load_state_dict(new_dict, "
        "strict=True); return model. (PyTorch's torch.nn.modules.utils.consume_prefix_in_state_dict_if_present "
        "removes a prefix too, in place.)",
    ]

    def verify(self, fn):
        import torch
        from torch import nn

        from ..models.googlenet import GoogLeNet

        for classes, aux in CHECKPOINTS:
            trained = _trained(classes, aux)
            what = (f"load_checkpoint(checkpoint), for a checkpoint of {classes} classes "
                    f"{'with' if aux else 'without'} auxiliary heads,")
            try:
                model = call(fn, _checkpoint(trained), doing=what)
            except Incorrect as exc:
                if "loading state_dict" not in str(exc):
                    raise
                raise Incorrect(f"{exc} Read what to build from the checkpoint itself: its number of classes (the "
                                f"shape of fc.weight) and whether it has auxiliary heads (aux1.* keys); the "
                                f"check tries checkpoints with and without heads.") from None
            if isinstance(model, nn.DataParallel):
                raise Incorrect(f"{what} returned an nn.DataParallel wrapper. Loading into a wrapper does match "
                                f"the 'module.' keys, but the rest of your code (and this question) needs the "
                                f"course's GoogLeNet itself: remove the prefix from the keys and load them into "
                                f"googlenet.googlenet(...), or return the wrapper's .module.")
            if type(model).__module__.startswith("torchvision"):
                raise Incorrect(f"{what} returned a torchvision model ({type(model).__name__}); return the course's "
                                f"googlenet.googlenet(...) with the checkpoint's weights.")
            if not isinstance(model, GoogLeNet):
                raise Incorrect(f"{what} should return the course's GoogLeNet (googlenet.googlenet(...)), but it "
                                f"returned {describe(model)}.")
            want = {k[len(PREFIX):]: v for k, v in _checkpoint(trained).items()}
            ours = model.state_dict()
            shared = [k for k in want if k in ours]
            shape = [k for k in shared if tuple(ours[k].shape) != tuple(want[k].shape)]
            if shape:
                k = shape[0]
                raise Incorrect(f"{what}: `{k}` has shape {tuple(ours[k].shape)} in your model and "
                                f"{tuple(want[k].shape)} in the checkpoint. Read the number of classes from the "
                                f"checkpoint (the first dimension of its fc.weight).")
            loaded = [k for k in shared if ours[k].dtype == want[k].dtype and torch.equal(ours[k].cpu(), want[k])]
            if not loaded:
                raise Incorrect(f"{what}: none of the checkpoint's {len(want)} tensors is in your model, which "
                                f"kept the values it was built with. With the 'module.' prefix no key of the "
                                f"checkpoint names a layer of the model, and load_state_dict(..., strict=False) "
                                f"skips every one of them without a word. Remove the prefix from every key and "
                                f"load with strict=True, which fails loudly when anything does not match.")
            extra, missing = set(ours) - set(want), set(want) - set(ours)
            heads = ("aux1.", "aux2.")
            if extra and all(k.startswith(heads) for k in extra):
                raise Incorrect(f"{what}: your model has auxiliary heads ({len(extra)} tensors: {_names(extra)}) "
                                f"but the checkpoint has none, so they kept random values: "
                                f"load_state_dict(..., strict=False) skipped them silently. Build the model with "
                                f"aux_logits=False when no key of the checkpoint starts with 'aux1.', and load "
                                f"with strict=True.")
            if missing and all(k.startswith(heads) for k in missing):
                raise Incorrect(f"{what}: the checkpoint has auxiliary heads ({len(missing)} tensors: "
                                f"{_names(missing)}) and your model has none, so those weights were dropped "
                                f"without a word. Return the model the checkpoint describes, all of it: "
                                f"aux_logits=True when its keys include 'aux1.', and strict=True.")
            if extra or missing:
                parts = ([f"missing {_names(missing)}"] if missing else []) + \
                        ([f"not in the checkpoint {_names(extra)}"] if extra else [])
                raise Incorrect(f"{what}: your model's keys differ from the checkpoint's ({'; '.join(parts)}). "
                                f"Build googlenet.googlenet(num_classes=..., aux_logits=...) and load with "
                                f"strict=True.")
            skipped = [k for k in shared if k not in loaded]
            if skipped:
                raise Incorrect(f"{what}: {len(skipped)} of the checkpoint's {len(want)} tensors were not loaded "
                                f"(for example {_names(skipped)}): they still hold the values your model was built "
                                f"with. Remove the prefix from every key, not only some, and load with "
                                f"strict=True: it would have named them.")
            model.eval()
            device = next(model.parameters()).device
            x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                expected = trained(x)
                got, _ = trace_forward(model, x.to(device))
            if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape):
                raise Incorrect(f"{what}: the model outputs {describe(got)} in evaluation mode; the saved model "
                                f"outputs shape {tuple(expected.shape)}.")
            diff = (got.detach().cpu().double() - expected.double()).abs().max().item()
            if not diff <= 1e-5:
                raise Incorrect(f"{what}: every tensor is loaded, but the outputs differ from the saved model's by "
                                f"up to {diff:.3g}. Build it with googlenet.googlenet's defaults (only num_classes "
                                f"and aux_logits read from the checkpoint), e.g. transform_input=False.")
        return ("Correct! Every key renamed, nothing skipped: strict=True is what makes a silent mismatch "
                "impossible.")


q1 = InceptionMacs()
q2 = DebugInception()
q3 = StemOutputSize()
q4 = AuxLoss()
q5 = LoadCheckpoint()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5)

__all__ = ["q1", "q2", "q3", "q4", "q5", "reference_macs"]
