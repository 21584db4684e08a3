"""Checks for the exercise notebook ``09_efficientnet``: MBConv's cost, compound scaling, SE, a renamed checkpoint.

    from icdl.checks import ex09_efficientnet as ex
    ex.q1.check(mbconv_macs)            # multiply-adds of an MBConv block for any config, against torch's counter
    ex.q2.check(depth4, width4, res4, flops4)   # the compound-scaling arithmetic for phi = 4 (ValueQuestion)
    ex.q3.check(answer)                 # predict: which of three ways to double B0's cost adds no parameters
    ex.q4.check(SqueezeExcite)          # debug a given SE block (its sigmoid is missing)
    ex.q5.check(rename_timm_keys)       # a checkpoint with timm-style names mapped onto the course's EfficientNet
    ex.q6.check(answer)                 # why the projection of MBConv has no activation (ChoiceQuestion)
"""

from __future__ import annotations

import math
import re

from .core import Incorrect, Question, call, describe, randomize_bn_stats, register
from .kinds import ChoiceQuestion, FunctionQuestion, ValueQuestion
from .shared import expect_loads_and_matches, some_keys

NOTEBOOK = "09_efficientnet"


# --------------------------------------------------------------------------
# q1: the multiply-adds of an MBConv block
# --------------------------------------------------------------------------
def _mbconv_formula(c_in, c_out, t, k, stride, size, se=True, *, out_size=None, dw_full=False, dw_at_input=False,
                    expand_always=False, se_per_pixel=False, squeeze_from_expanded=False, project_at_input=False,
                    flops=False):
    """MBConv's multiply-adds by formula, with switches for the common slips."""
    e = c_in * t
    o = math.ceil(size / stride) if out_size is None else out_size(size, stride)
    total = 0
    if t != 1 or expand_always:
        total += size * size * c_in * e
    dw_pixels = size * size if dw_at_input else o * o
    total += dw_pixels * e * k * k * (e if dw_full else 1)
    if se:
        squeeze = max(1, (e if squeeze_from_expanded else c_in) // 4)
        total += 2 * e * squeeze * (o * o if se_per_pixel else 1)
    total += (size * size if project_at_input else o * o) * e * c_out
    return 2 * total if flops else total


def _formula(**switches):
    return lambda c_in, c_out, t, k, stride, size, se=True: _mbconv_formula(c_in, c_out, t, k, stride, size, se,
                                                                           **switches)


class MBConvMacs(FunctionQuestion):
    title = "the multiply-adds of an MBConv block, for any configuration"
    hints = [
        "Work part by part, each on its own output size: the 1x1 expansion (only when expand_ratio > 1) at the "
        "input's size; the depthwise kxk at the output's size, one filter per channel; SE on the pooled 1x1 map; "
        "the 1x1 projection at the output's size.",
        "A kxk convolution from C_in to C_out channels on an H x W output does H*W*C_in*C_out*k*k multiply-adds; "
        "a depthwise one (groups = channels) does H*W*C*k*k. With padding k // 2 the output size is "
        "ceil(size / stride). SE's two 1x1 convolutions go from the expanded channels to max(1, in_channels // 4) "
        "and back, on one pixel.",
        "Skeleton: `e = in_channels * expand_ratio; out = math.ceil(size / stride)`; "
        "`total = (size*size*in_channels*e if expand_ratio != 1 else 0) + ____ + ____ + out*out*e*out_channels`.",
    ]
    function = "mbconv_macs"
    result = "int"
    # (in, out, expand_ratio, kernel, stride, size): multiples of 8, so the expanded width is in * t exactly
    cases = [(40, 40, 6, 5, 1, 14), (16, 24, 6, 3, 2, 32), (32, 16, 1, 3, 1, 20), (24, 40, 6, 5, 2, 15),
             ((80, 112, 6, 5, 1, 14), {"se": False}), (8, 8, 1, 3, 2, 9)]
    mistakes = [
        ("counted the depthwise convolution as a full one: with groups = channels each filter reads one channel, "
         "so there is no factor of the input channels", _formula(dw_full=True)),
        ("counted the depthwise convolution at the input's size: with stride 2 it computes ceil(size / 2) x "
         "ceil(size / 2) outputs", _formula(dw_at_input=True)),
        ("computed the projection at the input's size: it runs after the (strided) depthwise convolution",
         _formula(project_at_input=True)),
        ("counted an expansion convolution for expand_ratio = 1: MBConv1 has none (the block starts with the "
         "depthwise convolution)", _formula(expand_always=True)),
        ("counted SE's two 1x1 convolutions at every pixel: they run on the pooled map, one value per channel",
         _formula(se_per_pixel=True)),
        ("squeezed to a quarter of the *expanded* channels: EfficientNet squeezes to max(1, in_channels // 4), a "
         "quarter of the block's input", _formula(squeeze_from_expanded=True)),
        ("rounded the output size down (size // stride): with padding k // 2 the output is ceil(size / stride)",
         _formula(out_size=lambda n, s: n // s)),
        ("counted FLOPs: torch's counter gives 2 per multiply-add, the question asks for multiply-adds",
         _formula(flops=True)),
        ("left out squeeze-and-excitation", lambda c_in, c_out, t, k, s, n, se=True: _mbconv_formula(
            c_in, c_out, t, k, s, n, False)),
        ("counted squeeze-and-excitation although se=False", lambda c_in, c_out, t, k, s, n, se=True:
         _mbconv_formula(c_in, c_out, t, k, s, n, True)),
    ]
    success = ("Correct! The 1x1 convolutions dominate; the depthwise convolution, which does all the spatial "
               "work, is cheap, and SE is almost free in multiply-adds.")

    @staticmethod
    def reference(in_channels, out_channels, expand_ratio, kernel, stride, size, se=True):
        """Counted, not computed: the course's MBConv under torch's FLOP counter (2 FLOPs per multiply-add)."""
        from ..summary import count_flops
        from ..models.efficientnet import MBConv

        block = MBConv(in_channels, out_channels, kernel, stride, expand_ratio, se=se)
        return count_flops(block, (1, in_channels, size, size)) // 2


# --------------------------------------------------------------------------
# q2: compound scaling for phi = 4
# --------------------------------------------------------------------------
PHI = 4


class CompoundScaling(ValueQuestion):
    title = f"the compound-scaling rule at phi = {PHI}"
    hints = [
        "Eq. 3 of the paper: depth alpha^phi, width beta^phi, resolution gamma^phi, with alpha = 1.2, beta = 1.1, "
        "gamma = 1.15. The resolution in pixels is 224 times its multiplier, rounded to the nearest integer.",
        "The FLOPs grow with depth, with width squared and with resolution squared: (alpha * beta^2 * gamma^2)^phi.",
    ]
    names = ("depth4", "width4", "res4", "flops4")
    rel = 1e-4
    mistakes = {
        "depth4": [(lambda d, w, r, f: 1.2 * PHI, "the multiplier is alpha to the power phi, 1.2 ** 4, not 1.2 * 4")],
        "width4": [(lambda d, w, r, f: 1.1 * PHI, "the multiplier is beta to the power phi, 1.1 ** 4, not 1.1 * 4")],
        "res4": [(lambda d, w, r, f: round(224 * 1.15 * PHI), "the resolution is 224 * 1.15 ** 4, not 224 * 1.15 * 4"),
                 (lambda d, w, r, f: math.floor(224 * 1.15 ** PHI), "round to the nearest pixel, not down"),
                 (lambda d, w, r, f: round(224 * 1.15 ** (2 * PHI)), "the resolution multiplier is gamma ** phi; "
                  "the square belongs to the FLOPs")],
        "flops4": [(lambda d, w, r, f: 2 ** PHI, "2 ** phi is the design target; the rule's constants give "
                    "(1.2 * 1.1 ** 2 * 1.15 ** 2) ** phi, a little less"),
                   (lambda d, w, r, f: (1.2 * 1.1 * 1.15) ** PHI, "width and resolution enter the FLOPs squared: "
                    "(alpha * beta ** 2 * gamma ** 2) ** phi"),
                   (lambda d, w, r, f: 1.2 * 1.1 ** 2 * 1.15 ** 2 * PHI, "the factor is raised to the power phi, "
                    "not multiplied by it")],
    }
    wrong = "apply Eq. 3 step by step"
    success = "Correct! The rule at phi = 4 asks for about 15 times B0's multiply-adds, a little under 2 ** 4."

    def expected(self):
        from ..models.efficientnet import compound_scaling, flops_growth

        d, w, r = compound_scaling(PHI)
        return d, w, round(224 * r), flops_growth(PHI)


# --------------------------------------------------------------------------
# q3: predict which way of doubling the cost adds no parameters
# --------------------------------------------------------------------------
class FewestParameters(ChoiceQuestion):
    title = "three ways to double B0's multiply-adds: which keeps its parameters?"
    hints = [
        "Which of the three changes the shape of a weight tensor, or the number of weight tensors?",
        "A convolution's weights are C_out x C_in x k x k, whatever the size of the image it slides over.",
    ]
    options = {
        "a": "depth x 2 (every stage gets twice the layers)",
        "b": "width x sqrt(2) (every layer gets about 1.41 times the channels)",
        "c": "resolution x sqrt(2) (317 px instead of 224)",
        "d": "none: the three have about the same multiply-adds, so about the same parameters",
    }
    answer = "c"
    why = {
        "a": "doubling the layers doubles the blocks' weight tensors; it has the most parameters of the three.",
        "b": "every weight tensor of a convolution is C_out x C_in x k x k: widening by sqrt(2) multiplies most of "
             "them by about 2.",
        "d": "multiply-adds count weights times the pixels they are applied to; the same cost can come from more "
             "weights or from more pixels, so equal multiply-adds say nothing about the parameters.",
    }
    success = ("Correct! A larger image only adds pixels for the same weights to slide over: B0 at 317 px has "
               "exactly B0's parameters. The cell below measures all three.")


# --------------------------------------------------------------------------
# q4: debug a given squeeze-and-excitation block
# --------------------------------------------------------------------------
def _is_module_class(value) -> bool:
    from torch import nn

    return isinstance(value, type) and issubclass(value, nn.Module)


class DebugSE(Question):
    title = "debug a squeeze-and-excitation block"
    hints = [
        "Run the given block on a random input and look at `gate`: which values can it take? What range should a "
        "gate have, so that it turns a channel down (towards 0) or leaves it (towards 1)?",
        "The excitation ends with a sigmoid, one value in (0, 1) per channel: x * sigmoid(fc2(silu(fc1(pool(x))))).",
    ]
    C, SQUEEZE = 12, 3

    def verify(self, cls):
        import torch
        import torch.nn.functional as F
        from torch import nn

        if not _is_module_class(cls):
            raise Incorrect(f"Pass your class itself (`SqueezeExcite`, an nn.Module subclass); got {describe(cls)}.")
        se = call(cls, self.C, self.SQUEEZE, doing=f"Creating SqueezeExcite({self.C}, {self.SQUEEZE})")
        if not isinstance(se, nn.Module):
            raise Incorrect(f"SqueezeExcite({self.C}, {self.SQUEEZE}) should create an nn.Module; got {describe(se)}.")
        fc1, fc2 = getattr(se, "fc1", None), getattr(se, "fc2", None)
        if not (isinstance(fc1, nn.Conv2d) and isinstance(fc2, nn.Conv2d)):
            raise Incorrect("Keep the given layers: `self.fc1` and `self.fc2` should stay the two 1x1 nn.Conv2d "
                            "layers (the bug is not in them).")
        if (fc1.in_channels, fc1.out_channels, fc2.in_channels, fc2.out_channels) != (self.C, self.SQUEEZE,
                                                                                      self.SQUEEZE, self.C):
            raise Incorrect(f"fc1 should map {self.C} -> {self.SQUEEZE} channels and fc2 {self.SQUEEZE} -> {self.C}; "
                            f"yours map {fc1.in_channels} -> {fc1.out_channels} and {fc2.in_channels} -> "
                            f"{fc2.out_channels}.")
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():  # weights large enough that every slip changes the output
            for conv in (fc1, fc2):
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen))
        x = torch.randn(2, self.C, 5, 5, generator=gen) + 0.5
        se.eval()
        with torch.no_grad():
            out = call(se, x, doing="`SqueezeExcite(...)(x)`")
            pooled = x.mean((2, 3), keepdim=True)
            gate_in = fc2(F.silu(fc1(pooled)))
            want = x * torch.sigmoid(gate_in)
            slips = [
                ("still multiplies by fc2's raw output, which can be negative or above 1: the gate needs its "
                 "sigmoid (the given bug)", x * gate_in),
                ("uses ReLU between the two 1x1 convolutions; EfficientNet's SE uses SiLU there, as the given "
                 "code did", x * torch.sigmoid(fc2(F.relu(fc1(pooled))))),
                ("uses a hard sigmoid; EfficientNet's gate is the sigmoid (torch.sigmoid or nn.Sigmoid)",
                 x * F.hardsigmoid(gate_in)),
                ("takes a softmax over the channels: the gates then compete and sum to 1; each channel gets its own "
                 "independent sigmoid", x * torch.softmax(gate_in, dim=1)),
                ("squeezes with max pooling; SE squeezes each channel to its mean (global average pooling)",
                 x * torch.sigmoid(fc2(F.silu(fc1(x.amax((2, 3), keepdim=True)))))),
                ("adds the gate to x; SE multiplies each channel by its gate", x + torch.sigmoid(gate_in)),
                ("returns the pooled vector times the gate; SE scales the whole feature map: x * gate, shape "
                 "(N, C, H, W)", pooled * torch.sigmoid(gate_in)),
            ]
        if not isinstance(out, torch.Tensor):
            raise Incorrect(f"forward should return a tensor; it returned {describe(out)}.")
        if tuple(out.shape) == (2, self.C, 1, 1):
            gate = torch.sigmoid(gate_in)
            if torch.allclose(out, gate, atol=1e-5):
                raise Incorrect("forward returns the gate itself, shape (N, C, 1, 1); SE returns the input scaled by "
                                "it: x * gate, shape (N, C, H, W).")
        for message, slip in slips:
            if tuple(out.shape) == tuple(slip.shape) and torch.allclose(out, slip, atol=1e-5) \
                    and not torch.allclose(slip, want, atol=1e-5):
                raise Incorrect(f"Your block {message}.")
        if tuple(out.shape) != tuple(want.shape):
            raise Incorrect(f"The output has shape {tuple(out.shape)}; SE keeps the shape of its input, "
                            f"{tuple(want.shape)}.")
        if not torch.allclose(out, want, atol=1e-5):
            err = (out - want).abs().max().item()
            raise Incorrect(f"The output differs from x * sigmoid(fc2(silu(fc1(avgpool(x))))) computed with your own "
                            f"layers, by up to {err:.3g}.")
        return "Correct! Each gate is now in (0, 1): SE can turn a channel down, never flip or blow it up."


# --------------------------------------------------------------------------
# q5: a checkpoint with timm-style names
# --------------------------------------------------------------------------
# A small EfficientNet with every kind of key: an MBConv1 stage (no expansion), stages of MBConv6 with two or three
# blocks, SE everywhere, the head and a 5-class classifier.
SMALL = dict(width_mult=0.25, depth_mult=0.6, num_classes=5)


def _timm_names(model) -> dict:
    """Course name -> the name the same tensor has in a timm-style EfficientNet checkpoint."""
    head = len(model.features) - 1
    prefixes = {"features.0.0.": "conv_stem.", "features.0.1.": "bn1.", f"features.{head}.0.": "conv_head.",
                f"features.{head}.1.": "bn2.", "classifier.1.": "classifier."}
    for s in range(1, head):
        for j, block in enumerate(model.features[s]):
            ours, theirs = f"features.{s}.{j}.block.", f"blocks.{s - 1}.{j}."
            if len(block.block) == 3:  # MBConv1: depthwise, SE, projection (timm: conv_dw, bn1, se, conv_pw, bn2)
                parts = {"0.0": "conv_dw", "0.1": "bn1", "1.fc1": "se.conv_reduce", "1.fc2": "se.conv_expand",
                         "2.0": "conv_pw", "2.1": "bn2"}
            else:  # MBConv6: expansion, depthwise, SE, projection
                parts = {"0.0": "conv_pw", "0.1": "bn1", "1.0": "conv_dw", "1.1": "bn2", "2.fc1": "se.conv_reduce",
                         "2.fc2": "se.conv_expand", "3.0": "conv_pwl", "3.1": "bn3"}
            for a, b in parts.items():
                prefixes[f"{ours}{a}."] = f"{theirs}{b}."
    names = {}
    for key in model.state_dict():
        for ours, theirs in prefixes.items():
            if key.startswith(ours):
                names[key] = theirs + key[len(ours):]
    return names


def timm_checkpoint(model) -> dict:
    """``model``'s state_dict under timm-style names (``conv_stem``, ``blocks.0.0.conv_dw``, ``conv_head``, ...)."""
    names = _timm_names(model)
    return {names[k]: v.detach().clone() for k, v in model.state_dict().items()}


def _small_reference():
    import torch

    from ..models.efficientnet import EfficientNet

    torch.manual_seed(0)
    model = EfficientNet(**SMALL).eval()
    randomize_bn_stats(model)
    return model


class RenameTimmKeys(Question):
    title = "a checkpoint with other names: timm-style keys onto the course's EfficientNet"
    hints = [
        "Three kinds of keys: the stem (`conv_stem`, `bn1`), the blocks (`blocks.<stage>.<block>.<layer>`) and the "
        "head (`conv_head`, `bn2`, `classifier`). timm's `blocks.0` is the course's `features.1`: the stem is "
        "`features.0`.",
        "A block's layer names depend on its kind. A block with `conv_pwl` is an MBConv6: conv_pw (expansion) -> "
        "block.0.0, bn1 -> block.0.1, conv_dw -> block.1.0, bn2 -> block.1.1, se -> block.2, conv_pwl -> block.3.0, "
        "bn3 -> block.3.1. Without `conv_pwl` (MBConv1) there is no expansion, and its conv_pw is the projection.",
        "SE's `conv_reduce` and `conv_expand` are the course's `fc1` and `fc2`. Skeleton: first collect the block "
        "prefixes that have a `conv_pwl`; then, for each key, `re.match(r'blocks\\.(\\d+)\\.(\\d+)\\.(\\w+?)\\.(.*)', "
        "key)` and look the layer up in the table of its kind.",
    ]

    def verify(self, fn):
        import torch

        from ..models.efficientnet import EfficientNet

        reference = _small_reference()
        theirs = timm_checkpoint(reference)
        kept = {k: v.clone() for k, v in theirs.items()}
        new = call(fn, theirs, doing="`rename_timm_keys(checkpoint)`")
        if not isinstance(new, dict):
            raise Incorrect(f"`rename_timm_keys` should return a dict (key -> tensor); it returned {describe(new)}.")
        names = _timm_names(reference)
        want = set(names)
        got = set(new)
        if got != want:
            self._explain_keys(got, want)
        for ours, tensor in new.items():
            before = kept[names[ours]]
            if not isinstance(tensor, torch.Tensor) or tensor.shape != before.shape or tensor.dtype != before.dtype \
                    or not torch.equal(tensor, before):
                source = next((k for k, v in theirs.items() if v is tensor), None)  # the very tensor it was given
                came = f" (it is the checkpoint's `{source}`)" if source else ""
                raise Incorrect(f"The tensor under `{ours}` is not the checkpoint's `{names[ours]}`{came}: the keys "
                                f"are right, but some layers are paired with the wrong tensors. Check which layer "
                                f"`conv_pw`, `bn1` and `bn2` are in each kind of block.")
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        expect_loads_and_matches(EfficientNet(**SMALL), new, reference, x, "EfficientNet")
        return ("Correct! Every tensor under its course name; strict=True loads it and the outputs agree. The trap "
                "was that the same timm name (conv_pw, bn1, bn2) means different layers in different places.")

    @staticmethod
    def _explain_keys(got, want):
        missing, unexpected = sorted(want - got), sorted(got - want)
        if any(re.match(r"(conv_stem|bn1|bn2|conv_head|blocks)\.", k) for k in got):
            left = [k for k in got if re.match(r"(conv_stem|bn1|bn2|conv_head|blocks|classifier)\.", k)]
            raise Incorrect(f"{len(left)} keys keep their timm names, such as `{sorted(left)[0]}`: every key needs "
                            f"its course name.")
        if "classifier.weight" in got:
            raise Incorrect("The classifier is `classifier.1` in the course's model (`classifier.0` is its dropout): "
                            "`classifier.weight` should be `classifier.1.weight`.")
        if any(re.match(r"features\.0\.\d+\.block\.", k) for k in got):
            raise Incorrect("Your block keys start at `features.0`, which is the stem: timm's `blocks.0` is the "
                            "course's `features.1` (stage numbers + 1).")
        if unexpected and all(k.startswith("features.1.") for k in unexpected):
            raise Incorrect(f"The first stage (MBConv1, no expansion) is mapped like an MBConv6 (unexpected "
                            f"{some_keys(unexpected, 1)}): its blocks have three layers, depthwise (block.0), SE "
                            f"(block.1) and projection (block.2); there `conv_pw` is the projection, `bn1` the "
                            f"depthwise's batch norm and `bn2` the projection's.")
        if len(got) < len(want) and not unexpected:
            raise Incorrect(f"Your dict has {len(got)} keys, the checkpoint {len(want)}: you dropped "
                            f"{some_keys(missing)}. Every tensor must be in the result, such as the batch norms' "
                            f"`running_mean` and `num_batches_tracked`.")
        raise Incorrect(f"Your keys are not the model's: missing {some_keys(missing) or 'none'}; unexpected "
                        f"{some_keys(unexpected) or 'none'}.")


# --------------------------------------------------------------------------
# q6: why the projection has no activation
# --------------------------------------------------------------------------
class LinearBottleneck(ChoiceQuestion):
    title = "why MBConv's last 1x1 convolution has no activation"
    hints = [
        "Where does the projection's output go, and how many channels does it have compared with the inside of "
        "the block?",
        "Think of what a ReLU does to a narrow code: for each input, which of its values survive?",
    ]
    options = {
        "a": "To save computation: an activation on every output value would cost too many operations.",
        "b": "The projection writes a narrow code of the wide computation, which the residual stream carries on; a "
             "ReLU there would zero part of that code for every input, and no later layer could get it back.",
        "c": "The batch norm after the projection is already the non-linearity, so an activation would be redundant.",
        "d": "Without it the block is linear, which keeps training stable.",
        "e": "The SE block's sigmoid already serves as the block's last activation.",
    }
    answer = "b"
    why = {
        "a": "an elementwise activation on C_out x H x W values is tiny next to the convolution that produced them "
             "(C_in multiply-adds for each); the expansion and depthwise layers have one and nobody minds.",
        "c": "batch norm in evaluation is an affine map per channel, x * a + b: linear, not a non-linearity.",
        "d": "the block is still non-linear: its expansion and depthwise layers have SiLU (and SE a sigmoid). Only "
             "its output is linear in the projection's input.",
        "e": "SE gates the *expanded* channels before the projection; the projection's output is still a linear "
             "function of the gated channels, and that is the point: nothing clips the narrow code.",
    }
    success = ("Correct! MobileNetV2's linear bottleneck: the narrow outputs are a low-dimensional code, and a ReLU "
               "would throw away its negative half for every input.")


q1 = MBConvMacs()
q2 = CompoundScaling()
q3 = FewestParameters()
q4 = DebugSE()
q5 = RenameTimmKeys()
q6 = LinearBottleneck()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5, q6=q6)

__all__ = ["q1", "q2", "q3", "q4", "q5", "q6", "SMALL", "PHI", "timm_checkpoint"]
