"""Checks for the exercise notebook ``03_alexnet``: AlexNet by hand, and in code.

    from icdl.checks import ex03_alexnet as ex
    ex.q1.check(alexnet_shapes)         # output shape after each conv / pool layer, for any input size
    ex.q2.check(conv_params)            # parameters of a (grouped) convolution
    ex.q3.check(conv_flops)             # FLOPs of a (grouped, strided, padded) convolution
    ex.q4.check(transfer)               # torchvision's weights in the course's AlexNet
    ex.q5.check(activation_gradients)   # ReLU and tanh derivatives with autograd
    ex.q6.check(prediction)             # predict what a gradient step does to a ReLU unit that is off for every image
"""

from __future__ import annotations

from .core import Incorrect, NotAttempted, Question, call, describe, expect_close, register
from .kinds import ChoiceQuestion, FunctionQuestion, ShapeListQuestion, TorchvisionQuestion

NOTEBOOK = "03_alexnet"

# The layers of torchvision's AlexNet that change the shape, in order.
LAYERS = ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool3")


def conv_out(n: int, k: int, s: int = 1, p: int = 0) -> int:
    return (n + 2 * p - k) // s + 1


def _shapes(size: int, config=None, conv=conv_out, pool=lambda n: conv_out(n, 3, 2)) -> list[tuple[int, int, int]]:
    """(C, H, W) after each layer of ``LAYERS`` for a 3 x size x size input, from a configuration (no model)."""
    from ..models.alexnet import TORCHVISION

    shapes, n = [], size
    for spec in config or TORCHVISION:
        n = conv(n, spec.kernel_size, spec.stride, spec.padding)
        shapes.append((spec.out_channels, n, n))
        if spec.pool:
            n = pool(n)
            shapes.append((spec.out_channels, n, n))
    return shapes


def alexnet_shapes(size: int = 224) -> list[tuple[int, int, int]]:
    """The reference of question 1: torchvision AlexNet's shapes for a 3 x size x size input."""
    return _shapes(size)


def _paper_channels(size):
    """The shapes with the 2012 paper's channels: its layers have torchvision's kernels, strides, padding and pools."""
    from ..models.alexnet import PAPER

    return _shapes(size, config=PAPER)


RULES = {
    "conv1": "11x11, stride 4, padding 2: (n + 2*2 - 11) // 4 + 1",
    "pool1": "3x3 max pooling, stride 2, no padding (overlapping): (n - 3) // 2 + 1",
    "conv2": "5x5 with padding 2, which keeps the size",
    "pool2": "3x3 max pooling, stride 2: (n - 3) // 2 + 1",
    "conv3": "3x3 with padding 1, which keeps the size",
    "conv4": "3x3 with padding 1, which keeps the size",
    "conv5": "3x3 with padding 1, which keeps the size",
    "pool3": "3x3 max pooling, stride 2: (n - 3) // 2 + 1",
}


# ---------------------------------------------------------------------------
# Q1: shapes, for any input size
# ---------------------------------------------------------------------------
class LayerShapes(ShapeListQuestion):
    title = "torchvision AlexNet's output shape after each conv and pool layer, for any input size"
    function = "alexnet_shapes"
    layers, rules = LAYERS, RULES
    input_text = "the 3x{0}x{0} input"
    cases = [224, 227, 256, 100, 67]  # 224 hides a halving pool; 227 does not
    reference = staticmethod(alexnet_shapes)
    mistakes = [
        ("answered with the shapes of a 224x224 input whatever `size` is: use `size`", lambda size: alexnet_shapes()),
        ("left out conv1's padding of 2", lambda size: _shapes(size, conv=lambda n, k, s, p: conv_out(n, k, s, 0)
                                                                if k == 11 else conv_out(n, k, s, p))),
        ("left out the padding of conv2 to conv5: with it, they keep the size",
         lambda size: _shapes(size, conv=lambda n, k, s, p: conv_out(n, k, s, p if k == 11 else 0))),
        # Halving (2x2 pooling, stride 2) and 3x3 pooling rounded up give the same sizes: one message for both.
        ("halved the size at each pool (2x2 pooling with stride 2, or 3x3 pooling rounded up); AlexNet's pools "
         "are 3x3 with stride 2, so they overlap, and they round down: (n - 3) // 2 + 1",
         lambda size: _shapes(size, pool=lambda n: n // 2)),
        ("used the 2012 paper's channels (96, 256, 384, 384, 256); torchvision's variant has 64, 192, 384, 256, 256",
         _paper_channels),
    ]
    success = ("Correct! The shapes follow from the sizes alone: the same layers take any input of at least 63 "
               "pixels; only the size of the last maps changes, and an adaptive average pool brings them to 6x6 "
               "before the fully connected layers.")
    hints = [
        "A convolution or pooling turns size n into (n + 2p - k) // s + 1. conv1 is 11x11, stride 4, padding 2.",
        "The pools are 3x3 with stride 2 and no padding (overlapping pooling): (n - 3) // 2 + 1.",
        "Channels: 64, 192, 384, 256, 256 (torchvision's variant); a pool keeps the channels. Loop over the "
        "layers, updating n; out_size above does the arithmetic.",
    ]


# ---------------------------------------------------------------------------
# Q2: parameters of a convolution, with groups
# ---------------------------------------------------------------------------
def conv_param_count(c_in, c_out, k, groups=1, bias=True) -> int:
    return c_out * (c_in // groups) * k * k + (c_out if bias else 0)


class ConvParams(FunctionQuestion):
    title = "the number of parameters of a convolution, with groups and bias"
    function = "conv_params"
    result = "int"
    # The paper's conv1, conv2 (split), conv3, conv4 (split), then no-bias cases.
    cases = [((3, 96, 11), {"groups": 1, "bias": True}), ((96, 256, 5), {"groups": 2, "bias": True}),
             ((256, 384, 3), {"groups": 1, "bias": True}), ((384, 384, 3), {"groups": 2, "bias": True}),
             ((64, 64, 3), {"groups": 1, "bias": False}), ((64, 128, 3), {"groups": 4, "bias": False})]
    reference = staticmethod(conv_param_count)
    mistakes = [
        ("ignored `groups`: with groups=g each filter reads only in_channels // g input channels",
         lambda ci, co, k, groups=1, bias=True: conv_param_count(ci, co, k, 1, bias)),
        ("forgot the biases, one per output channel", lambda ci, co, k, groups=1, bias=True: co * (ci // groups) * k * k),
        ("counted biases with bias=False", lambda ci, co, k, groups=1, bias=True: co * (ci // groups) * k * k + co),
        ("divided the output channels by `groups` too: the groups split the filters, but every one of the "
         "out_channels filters is still there",
         lambda ci, co, k, groups=1, bias=True: (co // groups) * (ci // groups) * k * k + (co if bias else 0)),
        ("counted k weights per input channel, not k x k",
         lambda ci, co, k, groups=1, bias=True: co * (ci // groups) * k + (co if bias else 0)),
    ]
    hints = [
        "Each of the out_channels filters has in_channels x k x k weights, plus one bias.",
        "With groups=g, each filter sees only in_channels / g input channels (the paper's GPU split).",
        "A skeleton: weights = out_channels * (___ // ___) * ___; return weights + (___ if bias else 0).",
    ]


# ---------------------------------------------------------------------------
# Q3: FLOPs of a convolution, with groups
# ---------------------------------------------------------------------------
def conv_flop_count(c_in, c_out, k, size, stride=1, padding=0, groups=1) -> int:
    """FLOPs of a square convolution on a size x size input, as ``icdl.summary.count_flops`` counts them."""
    out = conv_out(size, k, stride, padding)
    return 2 * c_out * (c_in // groups) * k * k * out * out


def _flops_slip(out=None, groups=True, per_mac=2):
    def flops(c_in, c_out, k, size, stride=1, padding=0, groups_=None, **kw):
        g = kw.get("groups", 1) if groups_ is None else groups_
        side = out(size, k, stride, padding) if out else conv_out(size, k, stride, padding)
        return per_mac * c_out * (c_in // (g if groups else 1)) * k * k * side * side
    return flops


class ConvFlops(FunctionQuestion):
    title = "the FLOPs of a convolution, with stride, padding and groups"
    function = "conv_flops"
    result = "int"
    cases = [((1, 1, 3, 5), {}), ((3, 96, 11, 224), {"stride": 4, "padding": 2}),
             ((96, 256, 5, 27), {"padding": 2, "groups": 2}), ((256, 384, 3, 13), {"padding": 1}),
             ((384, 384, 3, 13), {"padding": 1, "groups": 2}), ((64, 128, 3, 32), {"stride": 2, "groups": 4})]
    reference = staticmethod(conv_flop_count)
    mistakes = [
        ("counted multiply-adds; the course counts each multiply-add as 2 FLOPs (a multiplication and an addition)",
         _flops_slip(per_mac=1)),
        ("used the input's size instead of the output's: the filter runs once per output position",
         _flops_slip(out=lambda n, k, s, p: n)),
        ("ignored `groups`: each filter reads only in_channels // groups channels, so the split divides the "
         "arithmetic by `groups`", _flops_slip(groups=False)),
        ("left out the padding in the output size", _flops_slip(out=lambda n, k, s, p: conv_out(n, k, s, 0))),
        ("left out the stride in the output size", _flops_slip(out=lambda n, k, s, p: conv_out(n, k, 1, p))),
    ]
    hints = [
        "Each output value is one filter applied at one position: (in_channels // groups) x k x k multiply-adds.",
        "There are out_channels x H_out x W_out output values, with H_out = (size + 2p - k) // stride + 1.",
        "A skeleton: side = (size + 2 * ___ - ___) // ___ + 1; return 2 * (outputs: ___) * (multiply-adds per "
        "output: ___). Biases are not counted.",
    ]
    success = "Correct! This is what icdl.summary.count_flops measures on a real nn.Conv2d."


# ---------------------------------------------------------------------------
# Q4: load torchvision's weights
# ---------------------------------------------------------------------------
class Transfer(TorchvisionQuestion):
    title = "torchvision's AlexNet weights in the course's AlexNet"
    function = "transfer"
    build_text = "alexnet.alexnet() (the torchvision variant, not the paper's)"
    success = "Correct! Same names, same shapes, same outputs: the course's AlexNet is torchvision's."
    hints = [
        "Build the course model with alexnet.alexnet() and copy the weights with model.load_state_dict(...).",
        "Pass strict=True, so a missing or unexpected name raises instead of being skipped silently.",
        "Return the course model in eval mode: model.eval() turns dropout off.",
    ]
    _weights = None  # a pristine copy of a seeded torchvision AlexNet's weights, made once; never handed out

    @staticmethod
    def course_class():
        from ..models.alexnet import AlexNet

        return AlexNet

    def build_reference(self):
        """A fresh torchvision AlexNet with fresh tensors holding the seeded weights (61M parameters: the random
        initialisation runs once; each check allocates the model without initialising it and copies them in)."""
        import torch
        import torchvision

        if Transfer._weights is None:
            torch.manual_seed(0)
            Transfer._weights = {k: v.detach().clone()
                                 for k, v in torchvision.models.alexnet(weights=None).state_dict().items()}
        with torch.device("meta"):
            model = torchvision.models.alexnet(weights=None)
        model = model.to_empty(device="cpu")
        model.load_state_dict(Transfer._weights, strict=True)  # copies into the new tensors
        return model.eval()


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


# ---------------------------------------------------------------------------
# Q6: predict, then measure: a ReLU unit that is off for every image
# ---------------------------------------------------------------------------
DEAD_BIAS = -5.0  # the unit's bias in question 6; its weighted input w.x stays within +-2 for every image
DEAD_SPREAD = 2.0


class DeadUnit(ChoiceQuestion):
    title = "predict what a gradient step does to a ReLU unit that is off for every image"
    options = {
        "a": "nothing: the gradient of its weights and of its bias is exactly zero, so the step leaves them as they are",
        "b": "a small step: the gradient is tiny but not zero, so the unit recovers slowly",
        "c": "its bias grows back towards zero, because the loss would fall if the unit took part again",
        "d": "its weights shrink towards zero while its bias stays",
    }
    answer = "a"
    why = {
        "b": "that is a saturated tanh unit: tanh' is small but never zero. ReLU's slope is exactly 0 for every "
             "negative input, and this unit's input is negative for every image, so every image's contribution "
             "to the gradient is multiplied by 0.",
        "c": "gradient descent sees only the slope at the unit's present input. The chain rule multiplies whatever "
             "the loss 'would like' by relu'(w.x + b), which is 0 for every image: no signal reaches b.",
        "d": "the loss's gradient for w is (upstream gradient) x relu'(w.x + b) x x, which is 0 for every image. "
             "Only weight decay would shrink w, and plain SGD here has none.",
    }
    success = ("Correct! A ReLU whose input is negative for every image passes no gradient: it is dead, and SGD "
               "cannot revive it for as long as its input stays negative for every image. The next cell measures it.")
    hints = [
        "Write the unit's output as relu(z) with z = w.x + b. What is z's range over the images?",
        "The gradient of the loss with respect to w and b goes through relu'(z). What is relu'(z) for z < 0?",
    ]


q1, q2, q3, q4, q5, q6 = LayerShapes(), ConvParams(), ConvFlops(), Transfer(), ActivationGradients(), DeadUnit()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5, q6=q6)
