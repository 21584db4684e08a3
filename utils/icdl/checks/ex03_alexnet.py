"""Checks for the exercise notebook ``03_alexnet``: AlexNet by hand, and in code.

    from icdl.checks import ex03_alexnet as ex
    ex.q1.check(shapes)                 # output shape after each conv / pool layer, 224x224 input
    ex.q2.check(conv_params)            # parameters of a (grouped) convolution
    ex.q3.check(paper_config)           # the 2012 paper's conv layers as ConvSpec rows
    ex.q4.check(transfer)               # torchvision's weights in the course's AlexNet
    ex.q5.check(activation_gradients)   # ReLU and tanh derivatives with autograd
"""

from __future__ import annotations

from .core import (Incorrect, NotAttempted, Question, call, describe, expect_close, expect_number,
                   expect_same_model, expect_type, register)

NOTEBOOK = "03_alexnet"

# The layers of torchvision's AlexNet that change the shape, in order.
LAYERS = ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool3")


def conv_out(n: int, k: int, s: int = 1, p: int = 0) -> int:
    return (n + 2 * p - k) // s + 1


def alexnet_shapes(size: int = 224) -> list[tuple[int, int, int]]:
    """(C, H, W) after each layer of ``LAYERS``, from the configuration (no model needed)."""
    from ..models.alexnet import TORCHVISION

    shapes, n = [], size
    for spec in TORCHVISION:
        n = conv_out(n, spec.kernel_size, spec.stride, spec.padding)
        shapes.append((spec.out_channels, n, n))
        if spec.pool:
            n = conv_out(n, 3, 2)
            shapes.append((spec.out_channels, n, n))
    return shapes


def _as_shape(value):
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------
# Q1: shapes
# ---------------------------------------------------------------------------
class LayerShapes(Question):
    title = "torchvision AlexNet's output shape after each conv and pool layer, from a 3x224x224 input"
    hints = [
        "A convolution turns size n into (n + 2p - k) // s + 1. conv1 is 11x11, stride 4, padding 2.",
        "The pools are 3x3 with stride 2 and no padding (overlapping pooling): (n - 3) // 2 + 1.",
        "Channels: 64, 192, 384, 256, 256 (torchvision's variant); a pool keeps the channels.",
    ]

    def verify(self, shapes):
        expect_type(shapes, (list, tuple), "`shapes`")
        want = alexnet_shapes()
        if len(shapes) != len(want):
            raise Incorrect(f"`shapes` should hold {len(want)} shapes, one for each of {', '.join(LAYERS)}; "
                            f"yours has {len(shapes)}.")
        for layer, got, expected in zip(LAYERS, shapes, want):
            got_t = _as_shape(got)
            if got_t is None or len(got_t) != 3:
                raise Incorrect(f"Each shape should be a (C, H, W) tuple of three integers; for {layer} you "
                                f"gave {describe(got)}.")
            if got_t != expected:
                what = "channels" if got_t[0] != expected[0] else "height/width"
                raise Incorrect(f"{layer}: you gave {got_t}, expected {expected} (the {what} differ). "
                                f"Work out {layer} from the shape before it, {self._before(layer, want)}.")
        return "Correct! Note how pool3 leaves 256 x 6 x 6 = 9,216 features for the first fully connected layer."

    @staticmethod
    def _before(layer, want):
        i = LAYERS.index(layer)
        return "the 3x224x224 input" if i == 0 else f"{LAYERS[i - 1]}'s {want[i - 1]}"


# ---------------------------------------------------------------------------
# Q2: parameters of a convolution, with groups
# ---------------------------------------------------------------------------
CONV_CASES = [  # (in, out, k, groups, bias): the paper's conv1, conv2 (split), conv3, conv4, and no-bias cases
    (3, 96, 11, 1, True),
    (96, 256, 5, 2, True),
    (256, 384, 3, 1, True),
    (384, 384, 3, 2, True),
    (64, 64, 3, 1, False),
    (64, 128, 3, 4, False),
]


def conv_param_count(c_in, c_out, k, groups=1, bias=True) -> int:
    return c_out * (c_in // groups) * k * k + (c_out if bias else 0)


class ConvParams(Question):
    title = "the number of parameters of a convolution, with groups and bias"
    hints = [
        "Each of the out_channels filters has in_channels x k x k weights, plus one bias.",
        "With groups=g, each filter sees only in_channels / g input channels (the paper's GPU split).",
        "out_channels * (in_channels // groups) * k * k + (out_channels if bias else 0)",
    ]

    def verify(self, fn):
        for c_in, c_out, k, g, bias in CONV_CASES:
            want = conv_param_count(c_in, c_out, k, g, bias)
            got = call(fn, c_in, c_out, k, groups=g, bias=bias,
                       doing=f"conv_params({c_in}, {c_out}, {k}, groups={g}, bias={bias})")
            call_text = f"conv_params({c_in}, {c_out}, {k}, groups={g}, bias={bias})"
            if got is None:
                raise NotAttempted()
            if isinstance(got, (int, float)) and not isinstance(got, bool) and got != want:
                if got == conv_param_count(c_in, c_out, k, 1, bias) and g > 1:
                    raise Incorrect(f"{call_text} is {got:,}, expected {want:,}: with groups={g} each filter "
                                    f"sees only {c_in} // {g} = {c_in // g} input channels.")
                if bias and got == want - c_out:
                    raise Incorrect(f"{call_text} is {got:,}, expected {want:,}: you forgot the {c_out} biases.")
                if not bias and got == want + c_out:
                    raise Incorrect(f"{call_text} is {got:,}, expected {want:,}: with bias=False there are no "
                                    f"biases to count.")
            expect_number(got, want, call_text)


# ---------------------------------------------------------------------------
# Q3: the paper's configuration as data
# ---------------------------------------------------------------------------
FIELDS = ("out_channels", "kernel_size", "stride", "padding", "groups", "lrn", "pool")
WHY = {
    "out_channels": "the paper's conv layers have 96, 256, 384, 384 and 256 kernels (Section 3.5)",
    "kernel_size": "the kernels are 11x11, 5x5, then 3x3 for conv3 to conv5",
    "stride": "only conv1 has stride 4; the others stride 1",
    "padding": "padding 2 for conv1 (224 -> 55) and for the 5x5 conv2, 1 for the 3x3 layers, so they keep the size",
    "groups": "conv2, conv4 and conv5 read only their own GPU's half (groups=2); conv3 reads both (groups=1)",
    "lrn": "response normalisation follows conv1 and conv2 only",
    "pool": "max pooling follows conv1, conv2 and conv5",
}


class PaperConfig(Question):
    title = "the 2012 paper's five convolutional layers as ConvSpec rows"
    hints = [
        "Five rows, ConvSpec(out_channels, kernel_size, stride=..., padding=..., groups=..., lrn=..., pool=...).",
        "The two-GPU split: a layer whose kernels connect only to the maps on the same GPU is groups=2.",
        "conv1: ConvSpec(96, 11, stride=4, padding=2, lrn=True, pool=True).",
    ]

    def verify(self, config):
        from ..models.alexnet import PAPER

        expect_type(config, (list, tuple), "`paper_config`")
        if len(config) != len(PAPER):
            raise Incorrect(f"`paper_config` should have {len(PAPER)} rows (conv1 to conv5); yours has {len(config)}.")
        for i, (got, want) in enumerate(zip(config, PAPER), start=1):
            if not all(hasattr(got, f) for f in FIELDS):
                raise Incorrect(f"Row conv{i} should be a ConvSpec, but it is {describe(got)}.")
            for field in FIELDS:
                g, w = getattr(got, field), getattr(want, field)
                if g != w:
                    raise Incorrect(f"conv{i}: {field} is {g!r}, the paper's is {w!r} ({WHY[field]}).")
        return "Correct! alexnet.AlexNet(paper_config) now builds the 2012 network."


# ---------------------------------------------------------------------------
# Q4: load torchvision's weights
# ---------------------------------------------------------------------------
class Transfer(Question):
    title = "torchvision's AlexNet weights in the course's AlexNet"
    hints = [
        "Build the course model with alexnet.alexnet() and copy the weights with model.load_state_dict(...).",
        "Pass strict=True, so a missing or unexpected name raises instead of being skipped silently.",
        "Return the course model in eval mode: model.eval() turns dropout off.",
    ]

    _cache = None

    def _reference(self):
        """A seeded torchvision AlexNet and a copy of its weights, built once (61M parameters take a while)."""
        import torch
        import torchvision

        if Transfer._cache is None:
            torch.manual_seed(0)
            reference = torchvision.models.alexnet(weights=None).eval()
            Transfer._cache = reference, {k: v.clone() for k, v in reference.state_dict().items()}
        return Transfer._cache

    def verify(self, fn):
        import torch

        from ..models.alexnet import AlexNet

        reference, before = self._reference()
        model = call(fn, reference, doing="transfer(reference)")
        if model is None:
            raise NotAttempted()
        changed = any(not torch.equal(v, before[k]) for k, v in reference.state_dict().items())
        reference.load_state_dict(before)  # the cached reference stays pristine for the next check
        reference.eval()
        if changed and model is not reference:
            raise Incorrect("`transfer` changed the weights of torchvision's model; it should only copy them.")
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
        expect_same_model(model, reference, AlexNet, x, label="The model from `transfer`",
                          build="alexnet.alexnet() (the torchvision variant, not the paper's)")
        return "Correct! Same names, same shapes, same outputs: the course's AlexNet is torchvision's."


# ---------------------------------------------------------------------------
# Q5: derivatives of ReLU and tanh
# ---------------------------------------------------------------------------
class ActivationGradients(Question):
    title = "the derivatives of ReLU and tanh, with autograd"
    hints = [
        "Make a copy of x that requires gradients: x = x.detach().clone().requires_grad_(True).",
        "torch.relu(x).sum().backward() leaves d relu(x_i) / d x_i in x.grad, because each output depends "
        "only on its own input.",
        "Do the same for torch.tanh with a fresh copy of x; return (relu_grad, tanh_grad).",
    ]

    def verify(self, fn):
        import torch

        x = torch.linspace(-4.0, 4.0, 16)  # 16 points, none exactly 0 (ReLU has no derivative there)
        result = call(fn, x.clone(), doing="activation_gradients(x)")
        if result is None:
            raise NotAttempted()
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise Incorrect(f"`activation_gradients` should return a pair (relu_grad, tanh_grad); "
                            f"it returned {describe(result)}.")
        relu_grad, tanh_grad = result
        want_relu, want_tanh = (x > 0).float(), 1 - torch.tanh(x) ** 2
        if isinstance(relu_grad, torch.Tensor) and relu_grad.shape == x.shape:
            if torch.allclose(relu_grad.detach().float(), want_tanh, atol=1e-5):
                raise Incorrect("Your pair is in the wrong order: return (relu_grad, tanh_grad).")
            if torch.allclose(relu_grad.detach().float(), torch.relu(x), atol=1e-5):
                raise Incorrect("Your relu_grad equals relu(x): that is the activation, not its derivative "
                                "(use .backward() and read x.grad).")
        if isinstance(tanh_grad, torch.Tensor) and tanh_grad.shape == x.shape:
            if torch.allclose(tanh_grad.detach().float(), torch.tanh(x), atol=1e-5):
                raise Incorrect("Your tanh_grad equals tanh(x): that is the activation, not its derivative.")
        expect_close(relu_grad, want_relu, "relu_grad on torch.linspace(-4, 4, 16)")
        expect_close(tanh_grad, want_tanh, "tanh_grad on torch.linspace(-4, 4, 16)")
        return (f"Correct! At x = 4, tanh'(x) = {want_tanh[-1].item():.4f} while relu'(x) = 1: "
                f"a saturated tanh unit passes almost no gradient.")


q1, q2, q3, q4, q5 = LayerShapes(), ConvParams(), PaperConfig(), Transfer(), ActivationGradients()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5)
