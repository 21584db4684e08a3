"""Checks for the exercise notebook ``solutions/06_resnet.ipynb`` (ResNet).

=====  ===============================================  ==============================================
q      the learner writes                               checked against
=====  ===============================================  ==============================================
q1     ``BasicBlock(in_channels, out_channels, stride)``  relu(F(x) + shortcut(x)) rebuilt from the
                                                        learner's own layers; identity and projection
q2     ``bottleneck_params(in_channels, width, stride)``  ``icdl.models.resnet.Bottleneck`` counted
                                                        (a FunctionQuestion)
q3     ``load_backbone(tv_model, num_classes)``         torchvision's ImageNet ResNet-18 (1000 classes)
                                                        into a course ResNet-18 with another head: every
                                                        tensor whose shape matches copied, the head left
                                                        as initialised, the skipped names returned
q4     ``residual_stack_grad(a)``                       prod(1 + a_i), the derivative of a stack of
                                                        scalar residual blocks (a FunctionQuestion)
q5     ``vanishing_answer`` (a letter)                  what that means for 50 plain blocks
q6     ``stage_output_shapes(image_size, ...)``         shapes traced through real ResNets
                                                        (a FunctionQuestion)
q7     ``degradation_answer`` (a letter)                the paper's Figures 1 and 4
=====  ===============================================  ==============================================

Each check compares the answer with the results of the common mistakes (no
addition, ReLU in the wrong place, a shortcut that ignores the stride, BN or
the projection left out of a count, ``strict=False`` expected to skip a shape
mismatch, batch-norm statistics not copied, a sum where the chain rule
multiplies, the max-pool forgotten, ...) so that its message names the mistake.
"""

from __future__ import annotations

import functools
import math

from .core import Incorrect, NotAttempted, Question, call, describe, randomize_bn_stats, register
from .kinds import ChoiceQuestion, FunctionQuestion
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


def _counted(key):
    return lambda cin, width, stride=1: _bottleneck_counts(cin, width, stride)[key]


class BottleneckParams(FunctionQuestion):
    title = "the number of parameters of a Bottleneck block"
    hints = [
        "Three convolutions without bias: 1x1 (in_channels -> width), 3x3 (width -> width), "
        "1x1 (width -> 4 * width). A k x k convolution from C_in to C_out has k * k * C_in * C_out weights.",
        "Each BatchNorm2d has 2 parameters per channel (gamma and beta); its running mean and variance are "
        "buffers, not parameters.",
        "A projection shortcut (1x1 conv in_channels -> 4 * width, then BN) exists only when stride != 1 or "
        "in_channels != 4 * width.",
    ]
    function = "bottleneck_params"
    result = "int"
    cases = [((64, 64), {"stride": 1}), ((256, 64), {"stride": 1}), ((256, 128), {"stride": 2}),
             ((1024, 512), {"stride": 2}), ((2048, 512), {"stride": 1})]
    mistakes = [
        ("left out the BatchNorm layers' parameters (2 per channel: gamma and beta)", _counted("no_bn")),
        ("counted 4 numbers per BatchNorm channel: running mean and variance are buffers, not parameters; only "
         "gamma and beta are", _counted("bn_with_buffers")),
        ("left out the projection shortcut (1x1 conv + BN), which this block needs because its shape changes",
         _counted("no_projection")),
        ("counted a projection shortcut, but this block keeps its shape (stride 1, in_channels = 4 * width), so "
         "its shortcut is the identity", _counted("projection_always")),
        ("made the last 1x1 convolution output width channels: it expands to 4 * width (expansion 4)",
         _counted("no_expansion")),
        ("gave the convolutions a bias: they have none (bias=False), since the BatchNorm after each one has its "
         "own shift", _counted("bias_in_convs")),
    ]
    success = "Correct! The 3x3 convolution runs at a quarter of the output width: that is the bottleneck."

    @staticmethod
    def reference(cin, width, stride=1):
        from ..models import resnet

        out = 4 * width
        down = resnet.projection_shortcut(cin, out, stride) if (stride != 1 or cin != out) else None
        return sum(p.numel() for p in resnet.Bottleneck(cin, width, stride, down).parameters())


# --------------------------------------------------------------------------
# q3: an ImageNet backbone under a new head (a shape mismatch to handle)
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _imagenet_weights(seed: int = 0) -> dict:
    """Random weights (no download) for torchvision's ResNet-18 with its 1000-class head; every BN non-trivial."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None).eval()
    randomize_bn_stats(model)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # gamma and beta too, so that no tensor of a fresh model equals torchvision's
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _imagenet_resnet18():
    """A fresh torchvision ResNet-18 holding those weights, in evaluation mode (built afresh for every check)."""
    import torch
    import torchvision

    with torch.device("meta"):  # no initialisation to compute: the weights are loaded just after
        model = torchvision.models.resnet18(weights=None)
    model.to_empty(device="cpu").load_state_dict(_imagenet_weights())
    return model.eval()


STRICT_FALSE = ("`load_state_dict(..., strict=False)` forgives keys that are missing or unexpected, not a key "
                "that both models have with different shapes: torch still raises RuntimeError (size mismatch). "
                "Keep only the tensors whose shape equals the model's own, and load that dict.")


class LoadBackbone(Question):
    title = "an ImageNet backbone under a new head: the shape mismatch of fc"
    hints = [
        "Build `resnet.resnet18(num_classes=num_classes)`. Compare `tv_model.state_dict()` with "
        "`model.state_dict()` key by key: keep a tensor when its `.shape` equals the model's own.",
        "`strict=False` accepts a dict with keys left out, but not a tensor of the wrong shape. Load the filtered "
        "dict with `strict=False` (the keys you left out are exactly the ones you skip).",
        "Skeleton: `own = model.state_dict()`; `keep = {k: v for k, v in tv_model.state_dict().items() if ...}`; "
        "`skipped = sorted(k for k in own if ...)`; `model.load_state_dict(keep, strict=False)`; "
        "`return model, skipped`.",
    ]
    # 10 classes (the fine-tuning case: fc cannot be copied), then 1000 (nothing to skip: fc is copied too).
    cases = (10, 1000)

    def verify(self, fn):
        import torch
        import torchvision
        from torch import nn

        from ..models import resnet

        for classes in self.cases:
            label = f"`load_backbone(tv_model, {classes})`"
            try:
                result, tv = call_copy(fn, _imagenet_resnet18, classes, doing=label)
            except Incorrect as exc:
                if "size mismatch" in str(exc):
                    raise Incorrect(f"{exc}\n{STRICT_FALSE}") from None
                raise
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise Incorrect(f"{label} should return two things, `(model, skipped)`; it returned "
                                f"{describe(result)}.")
            model, skipped = result
            if model is tv:
                raise Incorrect(f"{label} returned torchvision's model itself; build the course's "
                                f"`resnet.resnet18(num_classes=num_classes)` and copy into it.")
            if isinstance(model, torchvision.models.ResNet):
                raise Incorrect(f"{label} returned a torchvision model, not the course's ResNet: build "
                                f"`resnet.resnet18(num_classes=num_classes)`.")
            if not isinstance(model, resnet.ResNet):
                raise Incorrect(f"{label}: the model should be the course's ResNet-18 "
                                f"(`resnet.resnet18(num_classes=num_classes)`); it is {describe(model)}.")
            fc = getattr(model, "fc", None)
            if not isinstance(fc, nn.Linear) or fc.out_features != classes:
                got = fc.out_features if isinstance(fc, nn.Linear) else describe(fc)
                raise Incorrect(f"{label}: the model's head `fc` has {got} outputs; it needs {classes}, one per "
                                f"class of the new task: `resnet.resnet18(num_classes=num_classes)`.")
            ours, theirs = model.state_dict(), tv.state_dict()
            if ours.keys() != theirs.keys():
                raise Incorrect(f"{label}: the model's keys are not ResNet-18's (e.g. "
                                f"{sorted(set(ours) ^ set(theirs))[:2]}): build `resnet.resnet18`.")
            self._check_copied(label, ours, theirs, classes)
            self._check_skipped(label, skipped, ours, theirs)
            x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
            with torch.no_grad():
                mine = model.eval().forward_features(x)
                backbone = nn.Sequential(*list(tv.children())[:-2])  # everything before avgpool and fc
                want = backbone(x)
            if not torch.allclose(mine, want, atol=1e-5, rtol=1e-4):
                diff = (mine - want).abs().max().item()
                raise Incorrect(f"{label}: the backbone's features (the output before the pooling and `fc`) differ "
                                f"from torchvision's by up to {diff:.3g}, though the tensors were copied.")
        return ("Correct! The backbone is torchvision's, tensor for tensor; the new head starts from scratch, and "
                "with as many classes as ImageNet nothing has to be skipped.")

    @staticmethod
    def _check_copied(label, ours, theirs, classes):
        import torch

        matching = [k for k in theirs if ours[k].shape == theirs[k].shape and not k.endswith("num_batches_tracked")]
        missed = [k for k in matching if not torch.equal(ours[k], theirs[k])]
        if missed and len(missed) == len(matching):
            raise Incorrect(f"{label}: none of torchvision's tensors is in your model (e.g. `{missed[0]}` differs): "
                            f"nothing was copied. Load the dict of tensors you kept into the model you return.")
        buffers = [k for k in missed if k.endswith(("running_mean", "running_var"))]
        if buffers and len(buffers) == len(missed):
            raise Incorrect(f"{label}: the batch-norm running statistics were not copied ({len(buffers)} buffers "
                            f"such as `{buffers[0]}`). They are buffers, not parameters: `named_parameters()` "
                            f"leaves them out, `state_dict()` holds both. Without them the backbone's outputs "
                            f"change in evaluation mode.")
        if missed:
            names = ", ".join(f"`{k}`" for k in sorted(missed)[:3]) + (", ..." if len(missed) > 3 else "")
            raise Incorrect(f"{label}: {len(missed)} tensors whose shapes match were not copied ({names}). Decide "
                            f"by shape, not by name: every tensor whose shape matches the model's is copied.")
        if classes < theirs["fc.weight"].shape[0] and torch.equal(ours["fc.weight"], theirs["fc.weight"][:classes]):
            raise Incorrect(f"{label}: your `fc.weight` is the first {classes} rows of torchvision's 1000-class "
                            f"head. Those rows score ImageNet's first {classes} classes, which have nothing to do "
                            f"with the new task's: leave the new head as the model initialised it.")

    @staticmethod
    def _check_skipped(label, skipped, ours, theirs):
        if skipped is None:
            raise Incorrect(f"{label}: `skipped` is None; return the names of the keys you did not copy, as a list "
                            f"(an empty list if none).")
        if isinstance(skipped, (str, bytes)) or not isinstance(skipped, (list, tuple, set)) or \
                not all(isinstance(k, str) for k in skipped):
            raise Incorrect(f"{label}: `skipped` should be a list of key names (str), like "
                            f"`[\"fc.bias\", ...]`; it is {describe(skipped)}.")
        want = sorted(k for k in theirs if ours[k].shape != theirs[k].shape)
        got = sorted(skipped)
        if got == want:
            return
        extra = [k for k in got if k not in want]
        missing = [k for k in want if k not in got]
        if extra:
            raise Incorrect(f"{label}: `skipped` names {len(extra)} key{'s' if len(extra) != 1 else ''} whose shapes "
                            f"match and that were copied, such as `{extra[0]}`: list only the keys whose shapes "
                            f"differ.")
        if missing:
            raise Incorrect(f"{label}: `skipped` leaves out `{missing[0]}`, whose shape differs between the two "
                            f"models: it was not copied, so it belongs in the list.")
        raise Incorrect(f"{label}: `skipped` names a key twice; list each skipped key once.")


# --------------------------------------------------------------------------
# q4: the derivative of a stack of residual blocks (a derivation)
# --------------------------------------------------------------------------
def _no_such_slip():
    raise ValueError("this mistake cannot be made on this case")  # the kind then skips it


class ResidualStackGrad(FunctionQuestion):
    title = "the gradient through a stack of residual blocks"
    hints = [
        "One block: y = x + a * x, so dy/dx = 1 + a. A plain block y = a * x has dy/dx = a.",
        "The chain rule multiplies the derivatives of blocks that follow each other: the derivative of the stack "
        "is the product of the blocks' derivatives. An empty stack is the identity.",
        "Skeleton: `grad = 1.0`, then `for a_i in a: grad = grad * (...)`, then `return grad`.",
    ]
    function = "residual_stack_grad"
    result = "number"
    rel, abs_ = 1e-6, 1e-12
    cases = [[0.5, 0.2], [0.1, -0.3, 0.2, 0.4], [], [-0.5] * 10, [2.0, -1.0, 3.0]]
    mistakes = [
        ("multiplied the a_i alone: that is the plain stack's derivative; each residual block contributes 1 + a_i",
         lambda a: math.prod(a)),
        ("added the blocks' factors: the chain rule multiplies the derivatives of blocks in a row",
         lambda a: sum(1 + v for v in a) if a else _no_such_slip()),
        ("added the a_i to 1: 1 + sum(a_i) keeps only the paths through at most one block, while the product "
         "(1 + a_1)(1 + a_2)... has one term for every subset of blocks", lambda a: 1 + sum(a)),
        ("kept only two paths, the one that skips every block and the one through all of them (1 + prod a_i); "
         "the product has a term for every subset of blocks", lambda a: 1 + math.prod(a)),
        ("left out the identity: prod(1 + a_i) - 1 drops the term 1, the path that skips every block",
         lambda a: math.prod(1 + v for v in a) - 1),
    ]
    success = ("Correct! prod(1 + a_i) expands into a sum over all 2^n subsets of blocks, and its first term, 1, "
               "is the path through the shortcuts alone.")

    @staticmethod
    def reference(a):
        return math.prod(1 + v for v in a)


# --------------------------------------------------------------------------
# q5: what that means for 50 plain blocks
# --------------------------------------------------------------------------
class FiftyBlocks(ChoiceQuestion):
    title = "what the product means for 50 plain blocks with |a_i| < 1"
    hints = [
        "Bound the size of a product of 50 numbers that are all smaller than m < 1 in size.",
        "The residual factors are 1 + a_i, not a_i: where do they lie when a_i is small?",
    ]
    options = {
        "a": "Both derivatives vanish alike: 50 factors make any product vanish.",
        "b": "The plain derivative is at most (max |a_i|)^50 in size, so it vanishes exponentially with depth; the "
             "residual one multiplies factors 1 + a_i, all close to 1 when the a_i are small, so it keeps its size.",
        "c": "The plain derivative explodes, because 50 factors multiply.",
        "d": "The residual derivative is exactly 1 whatever the a_i, because the shortcut passes the gradient on "
             "unchanged.",
    }
    answer = "b"
    why = {
        "a": "the residual factors are 1 + a_i, not a_i. With |a_i| < 1 they lie between 0 and 2, and when the "
             "blocks compute small residuals they are all close to 1, so their product need not vanish.",
        "c": "every plain factor is smaller than 1 in size, so each block shrinks the derivative: |prod a_i| <= "
             "(max |a_i|)^50. A product explodes only when its factors are larger than 1 in size.",
        "d": "the shortcut adds the term 1 (the path that skips every block) to the others; it does not remove "
             "them. With every a_i = -0.5 your formula gives 0.5^50. 'Exactly 1' would need every a_i = 0.",
    }
    success = ("Correct! 0.9^50 is about 0.005 and 0.5^50 about 1e-15; the residual stack keeps the path "
               "through the shortcuts alone.")


# --------------------------------------------------------------------------
# q6: output shapes through the stages
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _traced_shapes(image_size: int, cifar_stem: bool, expansion: int) -> tuple[tuple, ...]:
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
    return tuple(shapes)


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


class StageShapes(FunctionQuestion):
    title = "the output shape of every stage"
    hints = [
        "The ImageNet stem halves the side twice (7x7 conv with stride 2, then a 3x3 max-pool with stride 2); "
        "the CIFAR stem keeps it. layer1 keeps it too; layer2, layer3 and layer4 each halve it.",
        "A 3x3 (or 7x7) window with stride 2 and 'same' padding gives (n - 1) // 2 + 1, which rounds *up* for "
        "odd n. The channels are 64, 128, 256, 512 times the block's expansion (1 or 4).",
    ]
    function = "stage_output_shapes"
    cases = [((224,), {"cifar_stem": False, "expansion": 1}), ((224,), {"cifar_stem": False, "expansion": 4}),
             ((97,), {"cifar_stem": False, "expansion": 1}), ((32,), {"cifar_stem": True, "expansion": 1}),
             ((64,), {"cifar_stem": True, "expansion": 4})]
    mistakes = [
        ("forgot the stem's max-pool (stride 2), which halves the side once more",
         lambda s, cifar_stem=False, expansion=1: _shapes_by(s, cifar_stem, expansion, pool=False)),
        ("left out the block's expansion: the channels are multiplied by it (a Bottleneck outputs 4 * width)",
         lambda s, cifar_stem=False, expansion=1: _shapes_by(s, cifar_stem, expansion, expand=False)),
        ("rounded down: a stride-2 window with padding rounds up for odd sides, (n - 1) // 2 + 1, not n // 2",
         lambda s, cifar_stem=False, expansion=1: _shapes_by(s, cifar_stem, expansion, halve=lambda n: n // 2)),
        ("halved the side in layer1 too: layer1 keeps the resolution (stride 1); only layer2 to layer4 halve it",
         lambda s, cifar_stem=False, expansion=1: _shapes_by(s, cifar_stem, expansion, first_stage_stride=2)),
        ("used the ImageNet stem: the CIFAR stem (3x3, stride 1, no max-pool) keeps the full resolution",
         lambda s, cifar_stem=False, expansion=1: _shapes_by(s, False, expansion)),
    ]
    success = "Correct! Four stages, three halvings: 224 px ends at 7x7, 32 px with the CIFAR stem at 4x4."

    @staticmethod
    def reference(image_size, cifar_stem=False, expansion=1):
        return list(_traced_shapes(image_size, cifar_stem, expansion))

    def normalise(self, got, label: str):
        try:
            if isinstance(got, (str, bytes)) or any(isinstance(s, (str, bytes)) for s in got):
                raise TypeError
            shapes = [tuple(whole_number(v, f"A size in the list from {label}") for v in s) for s in got]
        except (TypeError, ValueError):
            raise Incorrect(f"{label} should return a list of four (C, H, W) tuples, but it returned "
                            f"{describe(got)}.") from None
        if len(shapes) != 4:
            raise Incorrect(f"{label} should list 4 shapes (layer1 to layer4), but it has {len(shapes)}.")
        return shapes


# --------------------------------------------------------------------------
# q7: what the degradation problem is
# --------------------------------------------------------------------------
class Degradation(ChoiceQuestion):
    title = "what the degradation problem is"
    hints = [
        "Look at the *training* curves of the paper's Figure 1 (20 vs 56 plain layers on CIFAR-10).",
        "Overfitting means low training error and high test error. What does the deeper plain network's "
        "training error do?",
    ]
    options = {
        "a": "Deeper plain networks overfit: lower training error, higher test error.",
        "b": "Deeper plain networks reach a higher training error than shallower ones: an optimisation difficulty.",
        "c": "Deeper plain networks cannot start training at all, because their gradients vanish at "
             "initialisation even with batch normalisation.",
        "d": "Deeper plain networks have too many parameters to train in memory.",
    }
    answer = "b"
    why = {
        "a": "overfitting would give the deeper network a *lower* training error; in the paper's Figures 1 and 4 "
             "its training error is *higher*. That rules overfitting out.",
        "c": "with normalised initialisation and batch normalisation the deep plain networks do start to "
             "converge (the paper checks that their gradients do not vanish); they converge to a worse "
             "training error.",
        "d": "memory is not the issue: the 34-layer plain network has the same number of parameters as the "
             "34-layer ResNet with zero-padding shortcuts (option A), which trains better.",
    }
    success = "Correct! A deeper plain network fits its own training data worse: an optimisation problem."


q1 = WriteBasicBlock()
q2 = BottleneckParams()
q3 = LoadBackbone()
q4 = ResidualStackGrad()
q5 = FiftyBlocks()
q6 = StageShapes()
q7 = Degradation()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5, q6=q6, q7=q7)
