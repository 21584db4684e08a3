"""Checks for the exercise notebook ``07_densenet``: dense connectivity, growth rate, transitions.

    from icdl.checks import ex07_densenet as ex
    ex.q1.check(DenseLayer)            # a dense layer that concatenates its k new maps to its input; the new
                                       # maps are compared with the learner's own layers in BN-ReLU-Conv order
    ex.q2.check(block_channels)        # channels after a dense block
    ex.q3.check(Transition)            # BN-ReLU-Conv1x1-AvgPool transition layer
    ex.q4.check(densenet121_channels)  # channels after every block and transition of DenseNet-121
    ex.q5.check(from_torchvision)      # the course's DenseNet-121 with torchvision's weights (copied into it,
                                       # torchvision's model left unchanged)
"""

from __future__ import annotations

from .core import (Incorrect, NotAttempted, Question, call, describe, expect_same_model, randomize_bn_stats,
                   register, trace_forward)
from .shared import call_copy, whole_number

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


class BlockChannels(Question):
    title = "the number of channels after a dense block"
    hints = [
        "Each layer adds growth_rate channels and keeps everything it received.",
        "A block of L layers turns C channels into C + L * k.",
    ]
    CASES = [(64, 6, 32), (128, 12, 32), (24, 16, 12), (7, 1, 5)]

    def verify(self, fn):
        for c_in, layers, k in self.CASES:
            what = f"block_channels({c_in}, {layers}, {k})"
            got = whole_number(call(fn, c_in, layers, k, doing=what), what)
            want = c_in + layers * k
            if got != want:
                why = {layers * k: "you left out the block's input channels, which are passed on too",
                       c_in + (layers - 1) * k: "off by one layer: each of the L layers adds k",
                       c_in * layers: "channels are added per layer (k each), not multiplied",
                       c_in + k: "every layer adds k, not only the last one"}.get(got, "")
                raise Incorrect(f"{what} is {got}, expected {want}" + (f": {why}." if why else
                                                                    ": count what each layer adds to what it gets."))
        return "Correct! DenseNet-121's first block: 64 + 6 x 32 = 256 channels."


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


# DenseNet-121 after each stage, in order.
STAGES = ["denseblock1", "transition1", "denseblock2", "transition2", "denseblock3", "transition3", "denseblock4"]
DENSENET121 = [256, 128, 512, 256, 1024, 512, 1024]


class DenseNet121Channels(Question):
    title = "DenseNet-121's channels after every dense block and transition"
    hints = [
        "Start from the stem's 64 channels. A block of L layers adds L x 32; a transition halves (theta = 0.5).",
        "The blocks have 6, 12, 24 and 16 layers; there is no transition after the last block.",
    ]

    def verify(self, channels):
        if channels is None:
            raise NotAttempted()
        if not isinstance(channels, (list, tuple)):
            raise Incorrect(f"`densenet121_channels` should be a list of {len(STAGES)} ints, one after each of "
                            f"{', '.join(STAGES)}; it is {describe(channels)}.")
        if len(channels) != len(STAGES):
            raise Incorrect(f"`densenet121_channels` should have {len(STAGES)} entries ({', '.join(STAGES)}); "
                            f"yours has {len(channels)}.")
        # The messages say what is wrong, never the expected count: the list is the answer.
        for i, (stage, value, want) in enumerate(zip(STAGES, channels, DENSENET121)):
            if value is None:
                raise NotAttempted(f"Not attempted yet: the entry for {stage} is still None.")
            got = whole_number(value, f"The entry for {stage}")
            if got != want:
                prev = 64 if i == 0 else DENSENET121[i - 1]
                if stage.startswith("transition") and got == prev:
                    why = "as many as before it, but a transition compresses the channels by theta = 0.5"
                elif stage.startswith("transition"):
                    why = (f"too {'many' if got > want else 'few'}: a transition keeps theta = 0.5 of the channels "
                           f"it gets")
                elif got == want - prev:
                    why = "the block also passes on its input channels: input + L x 32"
                else:
                    why = (f"too {'many' if got > want else 'few'}: check the number of layers of this block "
                           f"(6, 12, 24, 16) and k = 32")
                raise Incorrect(f"After {stage} you have {got} channels: {why}.")
        return "Correct! 64 -> 256 -> 128 -> 512 -> 256 -> 1024 -> 512 -> 1024."


class FromTorchvision(Question):
    title = "the course's DenseNet-121 carrying torchvision's weights"
    hints = [
        "Build densenet.densenet121(num_classes=tv_model.classifier.out_features), then "
        "model.load_state_dict(tv_model.state_dict(), strict=True).",
        "The keys match because the course's modules have torchvision's names "
        "(features.denseblock1.denselayer1.norm1.weight, ...).",
    ]

    def verify(self, fn):
        import torch
        import torchvision

        from ..models.densenet import DenseNet

        def build():
            torch.manual_seed(0)
            tv = torchvision.models.densenet121(weights=None, num_classes=7)
            return randomize_bn_stats(tv)  # so a model without the copied BN buffers cannot pass

        model, tv = call_copy(fn, build, doing="from_torchvision(tv_model)")
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
        expect_same_model(model, tv, DenseNet, x, label="The model from from_torchvision(tv_model)",
                          build="densenet.densenet121(num_classes=tv_model.classifier.out_features)",
                          require_eval=False)
        return "Correct! Same keys, same shapes, same outputs."


q1 = ConcatLayer()
q2 = BlockChannels()
q3 = BuildTransition()
q4 = DenseNet121Channels()
q5 = FromTorchvision()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5)

__all__ = ["q1", "q2", "q3", "q4", "q5", "STAGES", "DENSENET121"]
