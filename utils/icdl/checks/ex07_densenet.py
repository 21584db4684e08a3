"""Checks for the exercise notebook ``07_densenet``: dense connectivity, growth rate, transitions, old checkpoints.

    from icdl.checks import ex07_densenet as ex
    ex.q1.check(DenseLayer)            # a dense layer that concatenates its k new maps to its input; the new
                                       # maps are compared with the learner's own layers in BN-ReLU-Conv order
    ex.q2.check(block_channels)        # channels after a dense block (a FunctionQuestion)
    ex.q3.check(Transition)            # BN-ReLU-Conv1x1-AvgPool transition layer
    ex.q4.check(densenet_channels)     # channels after every block and transition of any DenseNet, with
                                       # compression theta (a FunctionQuestion)
    ex.q5.check(rename_old_keys)       # an old checkpoint's keys (denselayer1.norm.1.weight) renamed to the
                                       # current ones (denselayer1.norm1.weight), loaded with strict=True
"""

from __future__ import annotations

import math
import re

from .core import Incorrect, Question, call, describe, randomize_bn_stats, register, trace_forward
from .kinds import FunctionQuestion
from .shared import expect_loads_and_matches, some_keys, whole_number

NOTEBOOK = "07_densenet"


def _is_class(value, base) -> bool:
    return isinstance(value, type) and issubclass(value, base)


def _randomize_bn(module, seed: int = 0):
    """Random running statistics and affine parameters for every BatchNorm, so that each one visibly matters."""
    import torch
    from torch import nn

    randomize_bn_stats(module, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.5)


class ConcatLayer(Question):
    title = "a dense layer that concatenates its new feature maps to its input"
    hints = [
        "In __init__: BatchNorm2d(in_channels), Conv2d(in_channels, 4 * growth_rate, 1, bias=False), "
        "BatchNorm2d(4 * growth_rate), Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=False).",
        "In forward: new = conv2(relu(bn2(conv1(relu(bn1(x)))))), then return torch.cat([x, new], dim=1): "
        "the input first, unchanged, then the k new maps.",
        "Concatenating, not adding: x + new would mix the new maps into the old ones (that is ResNet).",
    ]
    # (in_channels, growth_rate): equal sizes first, where x + new would "work"; in_channels is never 4k,
    # so the two batch norms can be told apart by their number of channels.
    CONFIGS = [(8, 8), (12, 4)]

    @staticmethod
    def _returns_only_new(cls) -> bool:
        """With in_channels != growth_rate, does the layer output just growth_rate channels?"""
        import torch

        try:
            out = cls(12, 4).eval()(torch.randn(1, 12, 6, 6))
        except Exception:  # x + new fails when the sizes differ: the layer adds
            return False
        return isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[1] == 4

    def verify(self, cls):
        import torch
        from torch import nn

        from ..models.densenet import DenseLayer as Reference

        if not _is_class(cls, nn.Module):
            raise Incorrect(f"Pass your class itself (`DenseLayer`, an nn.Module subclass); got {describe(cls)}.")
        for c_in, k in self.CONFIGS:
            layer = call(cls, c_in, k, doing=f"Creating DenseLayer({c_in}, {k})")
            if not isinstance(layer, nn.Module):
                raise Incorrect(f"DenseLayer({c_in}, {k}) should create an nn.Module, but it gave {describe(layer)}.")
            layer.eval()
            _randomize_bn(layer)
            torch.manual_seed(0)
            x = torch.randn(2, c_in, 6, 6)
            out, records = trace_forward(layer, x)
            if not isinstance(out, torch.Tensor):
                raise Incorrect(f"forward should return one tensor, but it returned {describe(out)}.")
            want = (2, c_in + k, 6, 6)
            got = tuple(out.shape)
            if got != want:
                if got == (2, c_in, 6, 6) and c_in == k and self._returns_only_new(cls):
                    got = (2, k, 6, 6)  # the layer drops its input rather than adding it
                elif got == (2, c_in, 6, 6):
                    raise Incorrect(f"DenseLayer({c_in}, {k}) outputs {c_in} channels, as many as its input: did you "
                                    f"add (x + new) instead of concatenating? Expected {want}: "
                                    f"torch.cat([x, new], dim=1).")
                if got == (2, k, 6, 6):
                    raise Incorrect(f"DenseLayer({c_in}, {k}) outputs only the {k} new maps; expected {want}: "
                                    f"return torch.cat([x, new], dim=1).")
                raise Incorrect(f"DenseLayer({c_in}, {k}) output has shape {got}; expected {want} "
                                f"(the {c_in} input channels followed by {k} new ones).")
            if not torch.equal(out[:, :c_in], x):
                if torch.equal(out[:, -c_in:], x):
                    raise Incorrect("The input channels are at the end: put the input first, "
                                    "torch.cat([x, new], dim=1), so channel i means the same thing in every layer.")
                raise Incorrect(f"The first {c_in} output channels should be the input, unchanged; yours differ. "
                                f"Do not modify x in place (e.g. with ReLU(inplace=True) on x itself).")
            if records and not isinstance(records[0][1], nn.BatchNorm2d):
                first = type(records[0][1]).__name__
                raise Incorrect(f"Your layer starts with {first} (`{records[0][0]}`). DenseNet uses the "
                                f"pre-activation order BN-ReLU-Conv: the input goes through BatchNorm2d first.")
            convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
            convs.sort(key=lambda m: m.kernel_size[0])  # the 1x1 first, whatever order they were made in
            shapes = [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in convs]
            expected_convs = [(c_in, 4 * k, 1), (4 * k, k, 3)]
            if shapes != expected_convs:
                if len(convs) == 1:
                    raise Incorrect(f"Your layer has a single convolution {shapes[0]}; DenseNet-B first reduces "
                                    f"with a 1x1 bottleneck to 4k = {4 * k} channels, then a 3x3 to k = {k}.")
                raise Incorrect(f"Expected the convolutions (in, out, kernel) {expected_convs}; yours are "
                                f"{describe(shapes, 200)}.")
            n = sum(p.numel() for p in layer.parameters())
            expected = sum(p.numel() for p in Reference(c_in, k).parameters())
            if n != expected:
                biases = any(m.bias is not None for m in convs)
                why = (" Your convolutions have biases: a conv followed by batch norm needs none (bias=False)."
                       if biases else "")
                raise Incorrect(f"DenseLayer({c_in}, {k}) has {n:,} parameters; expected {expected:,}.{why}")
            self._check_values(layer, x, out, c_in, k)
        return "Correct! The input passes through unchanged; the layer adds k new maps."

    @staticmethod
    def _check_values(layer, x, out, c_in, k):
        """Compare the new maps with the learner's own batch norms and convolutions in DenseNet's order."""
        import torch
        import torch.nn.functional as F
        from torch import nn

        norms = [m for m in layer.modules() if isinstance(m, nn.BatchNorm2d)]
        by_size = {n: [m for m in norms if m.num_features == n] for n in (c_in, 4 * k)}
        if len(norms) != 2 or any(len(found) != 1 for found in by_size.values()):
            raise Incorrect(f"DenseLayer({c_in}, {k}) should have two BatchNorm2d layers: one over its {c_in} input "
                            f"channels and one over the {4 * k} bottleneck channels; yours are over "
                            f"{[m.num_features for m in norms]}.")
        norm1, norm2 = by_size[c_in][0], by_size[4 * k][0]
        conv1, conv2 = sorted((m for m in layer.modules() if isinstance(m, nn.Conv2d)),  # shapes checked above
                              key=lambda m: m.kernel_size[0])

        def bn(m, t):
            batch_stats = m.running_mean is None  # track_running_stats=False: batch statistics, as the module does
            return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, batch_stats, 0.0, m.eps)

        def conv(m, t):
            return F.conv2d(t, m.weight, m.bias, padding=m.kernel_size[0] // 2)

        relu, same = F.relu, (lambda t: t)
        variants = {  # name: (activation after norm1, after conv1, after norm2, after conv2)
            "right": (relu, same, relu, same),
            "no ReLU": (same, same, same, same),
            "post": (same, relu, same, relu),
            "first": (same, same, relu, same),
            "second": (relu, same, same, same),
        }

        def new_maps(a1, a2, a3, a4):
            return a4(conv(conv2, a3(bn(norm2, a2(conv(conv1, a1(bn(norm1, x))))))))

        def close(a, b):
            return a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=1e-5, rtol=1e-4)

        got = out[:, c_in:]
        with torch.no_grad():
            if close(got, new_maps(*variants["right"])):
                return
            if close(got, new_maps(*variants["no ReLU"])):
                raise Incorrect("Your layer has no ReLU: its new maps are conv2(norm2(conv1(norm1(x)))), computed "
                                "with your own layers. DenseNet's order is BN-ReLU-Conv, twice: a ReLU between each "
                                "batch norm and the convolution after it.")
            if close(got, new_maps(*variants["post"])):
                raise Incorrect("Your layer applies the ReLU after each convolution (BN-Conv-ReLU, as in a plain "
                                "CNN). DenseNet uses the pre-activation order BN-ReLU-Conv: the ReLU comes between "
                                "each batch norm and its convolution, and the new maps are the 3x3 convolution's "
                                "output.")
            if close(got, new_maps(*variants["first"])):
                raise Incorrect("Your layer has no ReLU between the first batch norm and the 1x1 convolution: the "
                                "order is BN-ReLU-Conv, twice.")
            if close(got, new_maps(*variants["second"])):
                raise Incorrect("Your layer has no ReLU between the second batch norm and the 3x3 convolution: the "
                                "order is BN-ReLU-Conv, twice.")
            diff = (got.double() - new_maps(*variants["right"]).double()).abs().max().item()
        raise Incorrect(f"The {k} new maps of DenseLayer({c_in}, {k}) differ (by up to {diff:.3g}) from your own "
                        f"layers applied in DenseNet's order: BN-ReLU-Conv1x1, then BN-ReLU-Conv3x3 (stride 1, "
                        f"padding 1). Check the order of the layers in forward.")


class BlockChannels(FunctionQuestion):
    title = "the number of channels after a dense block"
    hints = [
        "Each layer adds growth_rate channels and keeps everything it received.",
        "Count what the block's output holds: its input's channels, then what each of its layers added.",
    ]
    function = "block_channels"
    result = "int"
    cases = [(64, 6, 32), (128, 12, 32), (24, 16, 12), (7, 1, 5)]
    mistakes = [
        ("left out the block's input channels, which are passed on too", lambda c, n, k: n * k),
        ("are off by one layer: each of the L layers adds k", lambda c, n, k: c + (n - 1) * k),
        ("multiplied: channels are added per layer (k each), not multiplied", lambda c, n, k: c * n),
        ("added k once: every layer adds k, not only the last one", lambda c, n, k: c + k),
    ]
    success = "Correct! DenseNet-121's first block: 64 + 6 x 32 = 256 channels."

    @staticmethod
    def reference(in_channels, num_layers, growth_rate):
        return in_channels + num_layers * growth_rate  # the tests check it against a real DenseBlock's output


class BuildTransition(Question):
    title = "a transition layer: BN-ReLU-Conv1x1, then 2x2 average pooling"
    hints = [
        "In __init__: BatchNorm2d(in_channels), Conv2d(in_channels, out_channels, 1, bias=False), "
        "AvgPool2d(kernel_size=2, stride=2).",
        "forward: pool(conv(relu(norm(x)))). The 1x1 conv compresses the channels; the pool halves H and W.",
    ]

    def verify(self, cls):
        import torch
        import torch.nn.functional as F
        from torch import nn

        if not _is_class(cls, nn.Module):
            raise Incorrect(f"Pass your class itself (`Transition`, an nn.Module subclass); got {describe(cls)}.")
        c_in, c_out = 12, 6
        layer = call(cls, c_in, c_out, doing=f"Creating Transition({c_in}, {c_out})")
        layer.eval()
        norms = [m for m in layer.modules() if isinstance(m, nn.BatchNorm2d)]
        convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
        if len(norms) != 1 or len(convs) != 1:
            raise Incorrect(f"A transition has one BatchNorm2d and one Conv2d; yours has {len(norms)} and {len(convs)}.")
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():  # non-trivial BN statistics, so a skipped BN shows
            norms[0].running_mean.copy_(torch.randn(c_in, generator=gen))
            norms[0].running_var.copy_(torch.rand(c_in, generator=gen) + 0.5)
        x = torch.randn(2, c_in, 8, 8, generator=gen)
        out, records = trace_forward(layer, x)
        want_shape = (2, c_out, 4, 4)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != want_shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else describe(out)
            why = " H and W should halve: add a 2x2 average pool with stride 2." if isinstance(out, torch.Tensor) \
                and out.shape[-1] == 8 else ""
            raise Incorrect(f"Transition({c_in}, {c_out}) output is {got}; expected {want_shape}.{why}")
        conv = convs[0]
        if (conv.in_channels, conv.out_channels, conv.kernel_size[0]) != (c_in, c_out, 1):
            raise Incorrect(f"The convolution should be 1x1 from {c_in} to {c_out} channels; yours is "
                            f"{conv.kernel_size[0]}x{conv.kernel_size[0]} from {conv.in_channels} to {conv.out_channels}.")
        with torch.no_grad():
            pre = conv(F.relu(norms[0](x)))
            avg, mx = F.avg_pool2d(pre, 2), F.max_pool2d(pre, 2)
        if torch.allclose(out, avg, atol=1e-5):
            return "Correct! A transition compresses the channels and halves the resolution."
        if torch.allclose(out, mx, atol=1e-5):
            raise Incorrect("Your transition uses max pooling; DenseNet's transitions use 2x2 average pooling "
                            "(nn.AvgPool2d(2, stride=2)).")
        if records and not isinstance(records[0][1], nn.BatchNorm2d):
            raise Incorrect(f"Your transition starts with {type(records[0][1]).__name__}; the order is "
                            f"BN -> ReLU -> Conv1x1 -> AvgPool.")
        raise Incorrect("The output differs from avg_pool2d(conv(relu(norm(x))), 2) computed with your own layers: "
                        "check the order BN -> ReLU -> Conv1x1 -> 2x2 average pool, with the ReLU in between.")




# --------------------------------------------------------------------------
# q4: the channels through any DenseNet
# --------------------------------------------------------------------------
def _channels(blocks, k, stem, theta=0.5, *, shrink=lambda m, theta: int(m * theta), keep_input=True,
              last_transition=False, transitions=True):
    """Channels after every block and transition, by formula, with switches for the common mistakes."""
    out, c = [], stem
    for i, layers in enumerate(blocks):
        c = (c if keep_input else 0) + layers * k
        out.append(c)
        if i < len(blocks) - 1 or last_transition:
            c = shrink(c, theta)
            if transitions:
                out.append(c)
    return out


class DenseNetChannels(FunctionQuestion):
    title = "the channels after every dense block and transition of a DenseNet"
    hints = [
        "Start from the stem's num_init_features. A block of L layers adds L x growth_rate; a transition keeps "
        "floor(compression x m) of its m channels.",
        "There is a transition between two blocks, none after the last block: B blocks give 2B - 1 numbers.",
        "Skeleton: `channels, out = num_init_features, []`; for each block: add its new maps, append; if it is "
        "not the last block: `channels = int(channels * compression)`, append. Return `out`.",
    ]
    function = "densenet_channels"
    cases = [((6, 12, 24, 16), 32, 64), ((6, 12, 36, 24), 48, 96), ((16, 16, 16), 12, 24), ((3, 3, 3), 5, 8),
             (((6, 12, 24, 16), 32, 64), {"compression": 1.0})]
    mistakes = [
        ("left out the compression: a transition keeps compression x m of its m channels, not all m",
         lambda b, k, s, compression=0.5: _channels(b, k, s, compression, shrink=lambda m, t: m)),
        ("put a transition after the last block too: the last block is followed by the final batch norm",
         lambda b, k, s, compression=0.5: _channels(b, k, s, compression, last_transition=True)),
        ("left out each block's input: a block passes on what it receives, plus L x growth_rate new maps",
         lambda b, k, s, compression=0.5: _channels(b, k, s, compression, keep_input=False)),
        ("rounded compression x m up or to the nearest integer: a transition keeps floor(compression x m), as "
         "int(m * compression) gives",
         lambda b, k, s, compression=0.5: _channels(b, k, s, compression, shrink=lambda m, t: math.ceil(m * t))),
        ("rounded compression x m to the nearest integer: a transition keeps floor(compression x m), as "
         "int(m * compression) gives",
         lambda b, k, s, compression=0.5: _channels(b, k, s, compression, shrink=lambda m, t: round(m * t))),
        ("halved at every transition whatever `compression` is: a transition keeps compression x m channels",
         lambda b, k, s, compression=0.5: _channels(b, k, s, compression, shrink=lambda m, t: m // 2)),
        ("listed the blocks only: the list has the channels after every block *and* after every transition",
         lambda b, k, s, compression=0.5: _channels(b, k, s, compression, transitions=False)),
    ]
    success = "Correct! DenseNet-121: 64 -> 256 -> 128 -> 512 -> 256 -> 1024 -> 512 -> 1024."

    @staticmethod
    def reference(block_config, growth_rate, num_init_features, compression=0.5):
        from ..models.densenet import channels_through

        return [c for _, c in channels_through(block_config, growth_rate, num_init_features, compression)]

    def normalise(self, got, label: str):
        if isinstance(got, (str, bytes)) or not isinstance(got, (list, tuple)):
            raise Incorrect(f"{label} should return a list of ints, one after every block and transition; it "
                            f"returned {describe(got)}.")
        return [whole_number(v, f"An entry of {label}") for v in got]


# --------------------------------------------------------------------------
# q5: the old checkpoint keys that torchvision renames while loading
# --------------------------------------------------------------------------
# A small DenseNet with every kind of key: a stem (conv0, norm0), dense layers 1 to 11 (two-digit numbers), a
# transition (norm, conv without a digit), the final norm5 and the classifier.
SMALL = dict(growth_rate=4, block_config=(2, 11), num_init_features=8, bn_size=2, num_classes=5)
_NEW = re.compile(r"(denselayer\d+\.(?:norm|conv))([12])\.")
OLD = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(weight|bias|running_mean|running_var)$")


def old_checkpoint(model) -> dict:
    """``model``'s state_dict as the old DenseNet checkpoints store it: ``denselayer1.norm.1.weight``, ... .

    Those files predate batch norm's ``num_batches_tracked`` buffer, so it is left out, as in them (PyTorch then
    starts its count at 0 when the dict is loaded).
    """
    return {_NEW.sub(r"\1.\2.", k): v.detach().clone() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def _new_name(old_key: str) -> str:
    found = OLD.match(old_key)
    return f"{found.group(1)}{found.group(2)}.{found.group(3)}" if found else old_key


def _small_torchvision_densenet():
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.DenseNet(**SMALL).eval()
    _randomize_bn(model)
    return model


class RenameOldKeys(Question):
    title = "an old DenseNet checkpoint: renaming its keys"
    hints = [
        "Only keys inside a dense layer have old names: `...denselayer<n>.norm.1.<what>`, `conv.1`, `norm.2`, "
        "`conv.2` (ReLU has no weights, so no keys). Every other key, such as `features.norm0.weight` or "
        "`features.transition1.norm.weight`, stays as it is.",
        "A regular expression anchored on `denselayer\\d+\\.` (one or more digits) finds exactly those keys; "
        "`re.sub` with groups drops the dot between `norm`/`conv` and its digit.",
        "Skeleton: `pattern = re.compile(r\"(denselayer\\d+\\.____)\\.([12])\\.\")` (fill in the names "
        "that can come before the dot), then `return {pattern.sub(..., k): v for k, v in state_dict.items()}`.",
    ]

    def verify(self, fn):
        import torch

        from ..models.densenet import DenseNet

        tv = _small_torchvision_densenet()
        old = old_checkpoint(tv)
        kept = {k: v.clone() for k, v in old.items()}  # the learner's changes to `old` cannot reach this copy
        new = call(fn, old, doing="`rename_old_keys(old_state_dict)`")
        if not isinstance(new, dict):
            raise Incorrect(f"`rename_old_keys` should return a dict (key -> tensor), but it returned "
                            f"{describe(new)}.")
        self._check_keys(new, kept)
        names = {_new_name(k): k for k in kept}
        for key, tensor in new.items():
            before = kept[names[key]]
            if not isinstance(tensor, torch.Tensor) or tensor.shape != before.shape or tensor.dtype != before.dtype \
                    or not torch.equal(tensor, before):
                raise Incorrect(f"The tensor under `{key}` is not the one the old dict had under `{names[key]}` "
                                f"({describe(tensor)}, expected the same {describe(before)} with the same values): "
                                f"rename the keys only, and keep each tensor with its own key.")
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        expect_loads_and_matches(DenseNet(**SMALL), new, tv, x, "DenseNet")
        return ("Correct! Same tensors under the current names: the course's DenseNet loads them with strict=True "
                "and computes torchvision's outputs.")

    @staticmethod
    def _check_keys(new, old):
        want = {_new_name(k) for k in old}
        got = set(new)
        if got == want:
            return
        fixed = {k for k in old if not OLD.match(k)}  # keys that already have their current name
        changed = sorted(fixed - got)
        unexpected = sorted(got - want)
        still_old = sorted(k for k in got if OLD.match(k))
        if changed and unexpected:
            raise Incorrect(f"You renamed keys that must not change: {some_keys(changed)} are gone, and the dict "
                            f"has keys the model does not know, such as {some_keys(unexpected, 1)}. Only the keys "
                            f"inside a dense layer (`denselayer<n>.norm.1`, `conv.1`, `norm.2`, `conv.2`) have old "
                            f"names; `features.norm0`, `features.transition1.norm`, ... are already right.")
        if still_old:
            kinds = sorted({f"{OLD.match(k).group(1).rsplit('.', 1)[1]}.{OLD.match(k).group(2)}" for k in still_old})
            layers = {int(re.search(r"denselayer(\d+)\.", k).group(1)) for k in still_old}
            if min(layers) >= 10:
                raise Incorrect(f"The keys of denselayer10 and later keep their old names (such as "
                                f"`{still_old[0]}`): the layer number can have two digits (`\\d+`, not `\\d`).")
            raise Incorrect(f"{len(still_old)} keys still have their old names, with {', '.join(kinds)} (such as "
                            f"`{still_old[0]}`): all four old names, norm.1, conv.1, norm.2 and conv.2, become "
                            f"norm1, conv1, norm2 and conv2.")
        missing = sorted(want - got)
        if missing and not unexpected:
            raise Incorrect(f"Your dict has {len(got)} keys, the old one {len(old)}: you dropped "
                            f"{some_keys(missing)}. Every key must be in the result, renamed or as it was.")
        raise Incorrect(f"Your keys are not the model's: missing {some_keys(missing) or 'none'}; unexpected "
                        f"{some_keys(unexpected) or 'none'}.")


q1 = ConcatLayer()
q2 = BlockChannels()
q3 = BuildTransition()
q4 = DenseNetChannels()
q5 = RenameOldKeys()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5)

__all__ = ["q1", "q2", "q3", "q4", "q5", "SMALL", "old_checkpoint"]
