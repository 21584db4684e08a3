"""Checks for the exercise notebook ``solutions/06_resnet.ipynb`` (ResNet).

=====  ===============================================  ==============================================
q      the learner writes                               checked against
=====  ===============================================  ==============================================
q1     ``BasicBlock(in_channels, out_channels, stride)``  relu(F(x) + shortcut(x)) rebuilt from the
                                                        learner's own layers; identity and projection
q2     ``bottleneck_params(in_channels, width, stride)``  ``icdl.models.resnet.Bottleneck`` counted
q3     ``course_resnet_from(tv_model, name)``           torchvision's state_dict and outputs; torchvision's
                                                        model must be left unchanged (the copy's direction)
q4     ``conv_grad_norms(model, x, y)``                 ``torch.autograd.grad`` on the 3x3 weights
q5     ``stage_output_shapes(image_size, ...)``         shapes traced through real ResNets
q6     ``degradation_answer`` (a letter)                the paper's Figures 1 and 4
=====  ===============================================  ==============================================

Each check compares the answer with the results of the common mistakes (no
addition, ReLU in the wrong place, a shortcut that ignores the stride, BN or
the projection left out of a count, gradients not reset, the max-pool
forgotten, ...) so that its message names the mistake.
"""

from __future__ import annotations

import functools

from .core import Incorrect, NotAttempted, Question, call, describe, expect_same_model, randomize_bn_stats, register
from .shared import call_copy, whole_number

NOTEBOOK = "06_resnet"


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------
def _close(a, b, atol=1e-4, rtol=1e-4) -> bool:
    import torch

    return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
            and torch.allclose(a.detach().double(), b.detach().double(), atol=atol, rtol=rtol))


def _shape(t):
    return tuple(t.shape) if hasattr(t, "shape") else describe(t)


# --------------------------------------------------------------------------
# q1: a BasicBlock with identity and projection shortcuts
# --------------------------------------------------------------------------
class WriteBasicBlock(Question):
    title = "a BasicBlock whose shortcut handles stride and channel changes"
    hints = [
        "The residual branch is conv1 (3x3, stride `stride`) -> bn1 -> ReLU -> conv2 (3x3, stride 1) -> bn2. "
        "The shortcut is `nn.Identity()` when the shape does not change, else a 1x1 convolution with the same "
        "stride followed by a BatchNorm2d (`nn.Sequential(...)`).",
        "`forward` returns `relu(bn2(conv2(...)) + self.shortcut(x))`: add first, then apply the last ReLU.",
        "The shape changes when `stride != 1` or `in_channels != out_channels`: both need the projection.",
    ]
    needed = ("conv1", "bn1", "conv2", "bn2", "shortcut")
    cases = [(16, 16, 1), (16, 32, 2), (16, 32, 1)]

    def _build(self, cls, cin, cout, stride):
        import torch
        from torch import nn

        name = getattr(cls, "__name__", "your class")
        block = call(cls, cin, cout, stride, doing=f"Creating `{name}({cin}, {cout}, stride={stride})`")
        if block is None:
            raise NotAttempted()
        if not isinstance(block, nn.Module):
            raise Incorrect(f"`{name}({cin}, {cout}, {stride})` should create an nn.Module, "
                            f"but it gave {describe(block)}.")
        missing = [a for a in self.needed if not isinstance(getattr(block, a, None), nn.Module)]
        if missing:
            raise Incorrect(f"Your block needs the layers {', '.join(self.needed)} as attributes (as in the "
                            f"skeleton); missing or not an nn.Module: {', '.join(missing)}.")
        # Random BN statistics and affine parameters, so that every layer visibly matters.
        gen = torch.Generator().manual_seed(cin + cout + stride)
        with torch.no_grad():
            for m in block.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                    m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                    if m.affine:
                        m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                        m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
        return block.eval()

    def _check_shortcut(self, block, x, cin, cout, stride):
        from torch import nn

        n, _, h, w = x.shape
        want = (n, cout, (h - 1) // stride + 1, (w - 1) // stride + 1)
        sc = call(block.shortcut, x, doing="Your shortcut")
        params = sum(p.numel() for p in block.shortcut.parameters())
        if cin == cout and stride == 1:
            if params:
                raise Incorrect(f"For in_channels = out_channels = {cin} and stride 1 the shape does not change, "
                                f"so the shortcut should be the identity (nn.Identity(), no parameters); yours has "
                                f"{params} parameters.")
            return sc
        if not params:
            raise Incorrect(f"For `BasicBlock({cin}, {cout}, stride={stride})` the shape changes from "
                            f"{tuple(x.shape)} to {want}, so the identity cannot be added: the shortcut needs a "
                            f"projection (1x1 conv with stride {stride}, then BatchNorm2d).")
        if not hasattr(sc, "shape"):
            raise Incorrect(f"Your shortcut should return a tensor, but it returned {describe(sc)}.")
        if tuple(sc.shape[-2:]) == (h, w) and stride != 1:
            raise Incorrect(f"Your shortcut ignores the stride: for stride={stride} it turns {tuple(x.shape)} into "
                            f"{_shape(sc)}, but the residual branch outputs {want}. Give its 1x1 convolution "
                            f"stride={stride}.")
        if tuple(sc.shape) != want:
            raise Incorrect(f"Your shortcut turns {tuple(x.shape)} into {_shape(sc)}; expected {want}.")
        convs = [m for m in block.shortcut.modules() if isinstance(m, nn.Conv2d)]
        if any(c.kernel_size != (1, 1) for c in convs):
            raise Incorrect("The projection shortcut should use a 1x1 convolution (option B of the paper); yours "
                            f"has kernel size {convs[0].kernel_size}.")
        if not any(isinstance(m, nn.BatchNorm2d) for m in block.shortcut.modules()):
            raise Incorrect("Follow the projection's 1x1 convolution with a BatchNorm2d, as the residual branch "
                            "ends with one: both terms of the sum are then on the same scale.")
        return sc

    def verify(self, cls):
        import torch
        import torch.nn.functional as F

        for cin, cout, stride in self.cases:
            block = self._build(cls, cin, cout, stride)
            x = torch.randn(2, cin, 8, 8, generator=torch.Generator().manual_seed(cin * stride))
            label = f"`BasicBlock({cin}, {cout}, stride={stride})`"
            with torch.no_grad():
                sc = self._check_shortcut(block, x, cin, cout, stride)
                h = call(block.conv1, x, doing="Your conv1")
                if tuple(h.shape) != (2, cout, sc.shape[-2], sc.shape[-1]):
                    raise Incorrect(f"In {label}, conv1 turns {tuple(x.shape)} into {_shape(h)}; expected "
                                    f"{tuple(sc.shape)}: conv1 is 3x3 with padding 1 and stride={stride}.")
                branch = block.bn2(block.conv2(F.relu(block.bn1(h))))
                out = call(block, x, doing=f"Your {label} on an input of shape {tuple(x.shape)}")
                if not isinstance(out, torch.Tensor):
                    raise Incorrect(f"{label} should return a tensor, but it returned {describe(out)}.")
                if tuple(out.shape) != tuple(sc.shape):
                    raise Incorrect(f"{label} turns {tuple(x.shape)} into {_shape(out)}; expected {tuple(sc.shape)}.")
                expected = F.relu(branch + sc)
                if _close(out, expected):
                    pass
                elif _close(out, branch + sc):
                    raise Incorrect(f"{label} is missing the final ReLU: it returns F(x) + shortcut(x), which has "
                                    f"negative values (min {out.min().item():.3g}). Apply ReLU after the addition.")
                elif _close(out, F.relu(branch) + sc):
                    raise Incorrect(f"{label} applies the ReLU before the addition (relu(F(x)) + shortcut(x)). "
                                    "The block is relu(F(x) + shortcut(x)): add first, then ReLU.")
                elif _close(out, F.relu(branch)):
                    raise Incorrect(f"{label} does not add the shortcut: it returns relu(F(x)), a plain block. "
                                    "Return relu(F(x) + self.shortcut(x)).")
                else:
                    diff = (out - expected).abs().max().item()
                    raise Incorrect(f"{label} returns values that differ from relu(bn2(conv2(relu(bn1(conv1(x))))) + "
                                    f"shortcut(x)) by up to {diff:.3g}. Check the order of the layers in forward.")
                # Switch the residual branch off (gamma = beta = 0): the block must become relu(shortcut(x)).
                block.bn2.weight.zero_()
                block.bn2.bias.zero_()
                off = call(block, x, doing=f"Your {label} with bn2's gamma set to 0")
                if not _close(off, F.relu(sc)):
                    raise Incorrect(f"With the residual branch switched off (bn2's gamma and beta set to 0), {label} "
                                    "should return relu(shortcut(x)), but it does not: is the shortcut added "
                                    "in forward?")
        return "Correct! Identity shortcut when the shape stays, a 1x1 projection when it changes."


# --------------------------------------------------------------------------
# q2: the parameters of a Bottleneck block
# --------------------------------------------------------------------------
def _bottleneck_counts(cin: int, width: int, stride: int) -> dict[str, int]:
    """The right count and the counts of common mistakes, by formula."""
    out = 4 * width
    convs = cin * width + 9 * width * width + width * out
    bn = 2 * (width + width + out)  # gamma and beta; running statistics are buffers, not parameters
    needs_proj = stride != 1 or cin != out
    proj = (cin * out + 2 * out) if needs_proj else 0
    no_expansion = cin * width + 9 * width * width + width * width + 2 * 3 * width + (
        (cin * width + 2 * width) if (stride != 1 or cin != width) else 0)
    return {
        "right": convs + bn + proj,
        "no_bn": convs + (cin * out if needs_proj else 0),
        "bn_with_buffers": convs + 2 * bn + ((cin * out + 4 * out) if needs_proj else 0),
        "no_projection": convs + bn,
        "projection_always": convs + bn + cin * out + 2 * out,
        "no_expansion": no_expansion,
        "bias_in_convs": convs + bn + proj + width + width + out + (out if needs_proj else 0),
    }


class BottleneckParams(Question):
    title = "the number of parameters of a Bottleneck block"
    hints = [
        "Three convolutions without bias: 1x1 (in_channels -> width), 3x3 (width -> width), "
        "1x1 (width -> 4 * width). A k x k convolution from C_in to C_out has k * k * C_in * C_out weights.",
        "Each BatchNorm2d has 2 parameters per channel (gamma and beta); its running mean and variance are "
        "buffers, not parameters.",
        "A projection shortcut (1x1 conv in_channels -> 4 * width, then BN) exists only when stride != 1 or "
        "in_channels != 4 * width.",
    ]
    cases = [(64, 64, 1), (256, 64, 1), (256, 128, 2), (1024, 512, 2), (2048, 512, 1)]
    mistakes = {
        "no_bn": "you left out the BatchNorm layers' parameters (2 per channel: gamma and beta).",
        "bn_with_buffers": "you counted 4 numbers per BatchNorm channel: running mean and variance are buffers, "
                           "not parameters; only gamma and beta are.",
        "no_projection": "you left out the projection shortcut (1x1 conv + BN), which this block needs because "
                         "its shape changes.",
        "projection_always": "you counted a projection shortcut, but this block keeps its shape "
                             "(stride 1, in_channels = 4 * width), so its shortcut is the identity.",
        "no_expansion": "the last 1x1 convolution expands to 4 * width channels (expansion 4), not width.",
        "bias_in_convs": "the convolutions have no bias (bias=False): the BatchNorm after each one has its own shift.",
    }

    def verify(self, fn):
        from ..models import resnet

        for cin, width, stride in self.cases:
            label = f"bottleneck_params({cin}, {width}, stride={stride})"
            got = whole_number(call(fn, cin, width, stride, doing=f"`{label}`"), label)
            out = 4 * width
            down = resnet.projection_shortcut(cin, out, stride) if (stride != 1 or cin != out) else None
            expected = sum(p.numel() for p in resnet.Bottleneck(cin, width, stride, down).parameters())
            counts = _bottleneck_counts(cin, width, stride)
            assert counts["right"] == expected  # the formulas above describe the real module
            if got == expected:
                continue
            for key, why in self.mistakes.items():
                if got == counts[key] != expected:
                    raise Incorrect(f"{label} is {got:,}, but the block has {expected:,} parameters: {why}")
            raise Incorrect(f"{label} is {got:,}, but the block has {expected:,} parameters "
                            f"(in {cin}, width {width}, out {out}, stride {stride}).")
        return "Correct! The 3x3 convolution runs at a quarter of the output width: that is the bottleneck."


# --------------------------------------------------------------------------
# q3: torchvision's weights in the course's model
# --------------------------------------------------------------------------
def _torchvision_model(name: str, num_classes: int, seed: int = 0):
    import torch
    import torchvision

    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes).eval()
    return randomize_bn_stats(model)  # so a model without the copied BN buffers cannot pass


class LoadTorchvision(Question):
    title = "torchvision's weights in the course's ResNet"
    hints = [
        "Build the matching course model with `getattr(resnet, name)(num_classes=...)`; the number of classes "
        "is `tv_model.fc.out_features`.",
        "`model.load_state_dict(tv_model.state_dict(), strict=True)` copies every weight and buffer and fails "
        "loudly if a key is missing or unexpected. Return `model.eval()`.",
    ]
    cases = [("resnet18", 10), ("resnet34", 100)]

    def verify(self, fn):
        import torch

        from ..models import resnet

        for name, classes in self.cases:
            label = f"`course_resnet_from(<torchvision {name} with {classes} classes>, {name!r})`"
            model, tv = call_copy(fn, functools.partial(_torchvision_model, name, classes), name, doing=label)
            x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
            expect_same_model(model, tv, resnet.ResNet, x, label=label,
                              build=f"resnet.{name}(num_classes=tv_model.fc.out_features)")
        return "Correct! Same keys, same shapes, same outputs: the two implementations compute the same function."


# --------------------------------------------------------------------------
# q4: gradient norms per layer
# --------------------------------------------------------------------------
def _reference_norms(model, x, y) -> list[float]:
    import torch
    import torch.nn.functional as F
    from torch import nn

    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), weights)
    return [g.norm().item() for g in grads]


class GradientNorms(Question):
    title = "the gradient norm of every 3x3 convolution"
    hints = [
        "Reset old gradients (`model.zero_grad()`), compute `F.cross_entropy(model(x), y)` and call "
        "`.backward()` on it.",
        "Loop over `model.modules()` (forward order), keep the `nn.Conv2d` with `kernel_size == (3, 3)`, and "
        "collect `m.weight.grad.norm().item()`.",
    ]

    def verify(self, fn):
        import math

        import torch
        from torch import nn

        from ..models import resnet

        torch.manual_seed(0)
        model = resnet.cifar_resnet(14, residual=True).train()
        gen = torch.Generator().manual_seed(0)
        x, y = torch.randn(8, 3, 16, 16, generator=gen), torch.randint(0, 10, (8,), generator=gen)
        expected = _reference_norms(model, x, y)
        got = [None, None]
        for i in range(2):  # twice: gradients left over from the first call must not add up
            value = call(fn, model, x, y, doing="`conv_grad_norms(model, x, y)`")
            if value is None:
                raise NotAttempted()
            if not isinstance(value, (list, tuple)):
                raise Incorrect("`conv_grad_norms` should return a list of numbers, but it returned "
                                f"{describe(value)}.")
            try:
                got[i] = [float(v) for v in value]
            except (TypeError, ValueError, RuntimeError, OverflowError):
                raise Incorrect("`conv_grad_norms` should return a list of numbers (use `.item()`), but it "
                                f"returned {describe(value[0]) if value else 'an empty list'} items.") from None
        first, second = got
        all_convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]

        def same(a, b):
            return len(a) == len(b) and all(math.isclose(p, q, rel_tol=1e-3, abs_tol=1e-7) for p, q in zip(a, b))

        if len(first) == len(all_convs) != len(expected):
            raise Incorrect(f"Your list has {len(first)} values, one per convolution; keep only the "
                            f"{len(expected)} 3x3 convolutions (the 1x1 projection shortcuts are left out).")
        if len(first) != len(expected):
            raise Incorrect(f"This 14-layer network has {len(expected)} 3x3 convolutions, but your list has "
                            f"{len(first)} values.")
        if same(first, expected[::-1]) and not same(first, expected):
            raise Incorrect("Your norms are in reverse order: list them in forward order, from the layer next to "
                            "the input to the last one (the order of model.modules()).")
        weights = [m.weight.norm().item() for m in model.modules()
                   if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        if same(first, weights):
            raise Incorrect("Those are the norms of the weights, not of their gradients: use `m.weight.grad`.")
        if not same(first, expected):
            worst = max(range(len(expected)), key=lambda i: abs(first[i] - expected[i]) / max(expected[i], 1e-12))
            raise Incorrect(f"Your norm for 3x3 convolution {worst + 1} is {first[worst]:.4g}; expected "
                            f"{expected[worst]:.4g}. Use the cross-entropy loss of model(x) against y.")
        if same(second, [2 * v for v in expected]):
            raise Incorrect("Called a second time, your function returned twice the right norms: the gradients "
                            "of the first call were added to the new ones. Call `model.zero_grad()` before "
                            "`backward()`.")
        if not same(second, expected):
            raise Incorrect("Called a second time on the same model and batch, your function returned different "
                            "norms; it should give the same result every time (reset the gradients first).")
        return "Correct! Now compare the curves of the plain and the residual network."


# --------------------------------------------------------------------------
# q5: output shapes through the stages
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _traced_shapes(image_size: int, cifar_stem: bool, expansion: int) -> list[tuple]:
    """(C, H, W) after layer1..layer4 of a real ResNet, by running it (the oracle)."""
    import torch

    from ..models import resnet

    block = "basic" if expansion == 1 else "bottleneck"
    # One block per stage is enough: only the first block of a stage changes the shape.
    model = resnet.ResNet(block, (1, 1, 1, 1), num_classes=10, cifar_stem=cifar_stem).eval()
    with torch.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(torch.zeros(1, 3, image_size, image_size)))))
        shapes = []
        for stage in model.stages():
            x = stage(x)
            shapes.append(tuple(x.shape[1:]))
    return shapes


def _shapes_by(image_size, cifar_stem, expansion, *, pool=True, halve=lambda n: (n - 1) // 2 + 1,
               expand=True, first_stage_stride=1):
    """Shapes by formula, with switches for the common mistakes."""
    n = image_size if cifar_stem else halve(image_size)  # stem convolution
    if pool and not cifar_stem:
        n = halve(n)
    shapes = []
    for i, width in enumerate((64, 128, 256, 512)):
        if i > 0 or first_stage_stride == 2:
            n = halve(n)
        shapes.append((width * (expansion if expand else 1), n, n))
    return shapes


class StageShapes(Question):
    title = "the output shape of every stage"
    hints = [
        "The ImageNet stem halves the side twice (7x7 conv with stride 2, then a 3x3 max-pool with stride 2); "
        "the CIFAR stem keeps it. layer1 keeps it too; layer2, layer3 and layer4 each halve it.",
        "A 3x3 (or 7x7) window with stride 2 and 'same' padding gives (n - 1) // 2 + 1, which rounds *up* for "
        "odd n. The channels are 64, 128, 256, 512 times the block's expansion (1 or 4).",
    ]
    cases = [(224, False, 1), (224, False, 4), (97, False, 1), (32, True, 1), (64, True, 4)]

    def verify(self, fn):
        for size, cifar, expansion in self.cases:
            label = f"stage_output_shapes({size}, cifar_stem={cifar}, expansion={expansion})"
            value = call(fn, size, cifar_stem=cifar, expansion=expansion, doing=f"`{label}`")
            if value is None:
                raise NotAttempted()
            try:
                if isinstance(value, (str, bytes)) or any(isinstance(s, (str, bytes)) for s in value):
                    raise TypeError
                got = [tuple(whole_number(v, f"A size in the list from {label}") for v in s) for s in value]
            except (TypeError, ValueError):
                raise Incorrect(f"{label} should return a list of four (C, H, W) tuples, but it returned "
                                f"{describe(value)}.") from None
            expected = _traced_shapes(size, cifar, expansion)
            if len(got) != 4:
                raise Incorrect(f"{label} should list 4 shapes (layer1 to layer4), but it has {len(got)}.")
            if got == expected:
                continue
            stage = next(i for i in range(4) if got[i] != expected[i])
            where = f"{label}: layer{stage + 1} outputs {expected[stage]}, you have {got[stage]}"
            variants = {
                "you forgot the stem's max-pool (stride 2), which halves the side once more":
                    _shapes_by(size, cifar, expansion, pool=False),
                "the channels are multiplied by the block's expansion (a Bottleneck outputs 4 * width)":
                    _shapes_by(size, cifar, expansion, expand=False),
                "a stride-2 window with padding rounds up for odd sides: (n - 1) // 2 + 1, not n // 2":
                    _shapes_by(size, cifar, expansion, halve=lambda n: n // 2),
                "layer1 keeps the resolution (stride 1); only layer2 to layer4 halve it":
                    _shapes_by(size, cifar, expansion, first_stage_stride=2),
                "the CIFAR stem (3x3, stride 1, no max-pool) keeps the full resolution":
                    _shapes_by(size, False, expansion) if cifar else None,
            }
            for why, shapes in variants.items():
                if shapes is not None and got == shapes and shapes != expected:
                    raise Incorrect(f"{where}: {why}.")
            raise Incorrect(f"{where}.")
        return "Correct! Four stages, three halvings: 224 px ends at 7x7, 32 px with the CIFAR stem at 4x4."


# --------------------------------------------------------------------------
# q6: what the degradation problem is
# --------------------------------------------------------------------------
class Degradation(Question):
    title = "what the degradation problem is"
    hints = [
        "Look at the *training* curves of the paper's Figure 1 (20 vs 56 plain layers on CIFAR-10).",
        "Overfitting means low training error and high test error. What does the deeper plain network's "
        "training error do?",
    ]
    right = "b"
    wrong = {
        "a": "Overfitting would give the deeper network a *lower* training error; in the paper's Figures 1 and 4 "
             "its training error is *higher*. That rules overfitting out.",
        "c": "With normalised initialisation and batch normalisation the deep plain networks do start to "
             "converge (the paper checks that their gradients do not vanish); they converge to a worse "
             "training error.",
        "d": "Memory is not the issue: the 34-layer plain network has the same number of parameters as the "
             "34-layer ResNet with zero-padding shortcuts (option A), which trains better.",
    }

    def verify(self, answer):
        if not isinstance(answer, str):
            raise Incorrect(f"Answer with one letter as a string, e.g. \"a\"; you gave {describe(answer)}.")
        letter = answer.strip().lower().strip("()")
        if letter == self.right:
            return "Correct! A deeper plain network fits its own training data worse: an optimisation problem."
        if letter in self.wrong:
            raise Incorrect(f"({letter}) is not it. {self.wrong[letter]}")
        raise Incorrect(f"Choose one of a, b, c, d; you gave {describe(answer)}.")


q1 = WriteBasicBlock()
q2 = BottleneckParams()
q3 = LoadTorchvision()
q4 = GradientNorms()
q5 = StageShapes()
q6 = Degradation()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5, q6=q6)
