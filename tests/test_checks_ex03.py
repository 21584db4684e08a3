"""The checks of exercise 03 (AlexNet): right answers pass, stubs are "not attempted", planted mistakes fail
with a message that says what is wrong."""

import torch
import torchvision
from checkhelpers import assert_not_attempted
from checkhelpers import assert_wrong as assert_incorrect
from icdl.checks import ex03_alexnet as ex
from icdl.checks.core import Outcome
from icdl.summary import count_flops
from icdl.models import alexnet

# --- Q1 ----------------------------------------------------------------------
SHAPES = [(64, 55, 55), (64, 27, 27), (192, 27, 27), (192, 13, 13), (384, 13, 13), (256, 13, 13),
          (256, 13, 13), (256, 6, 6)]
CHANNELS = (64, 64, 192, 192, 384, 256, 256, 256)


def shapes_of_torchvision(size):
    model = torchvision.models.alexnet(weights=None).eval()
    got, x = [], torch.randn(1, 3, size, size)
    with torch.no_grad():
        for layer in model.features:
            x = layer(x)
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.MaxPool2d)):
                got.append(tuple(x.shape[1:]))
    return got


def test_q1_expected_shapes_are_those_of_torchvision_alexnet():
    assert shapes_of_torchvision(224) == SHAPES == ex.alexnet_shapes(224)
    for size in ex.q1.cases:
        assert shapes_of_torchvision(size) == ex.alexnet_shapes(size), size


def from_sides(sides):
    return [(c, n, n) for c, n in zip(CHANNELS, sides)]


def sides_with(size, pool=lambda n: (n - 3) // 2 + 1, conv1_pad=2, keep=True):
    """Sides after each layer, with a pooling rule, conv1's padding, and whether conv2-conv5 keep the size."""
    n = (size + 2 * conv1_pad - 11) // 4 + 1
    sides = [n, pool(n)]
    n = sides[-1] - (0 if keep else 4)
    sides += [n, pool(n)]
    n = sides[-1]
    for _ in range(3):
        n -= 0 if keep else 2
        sides.append(n)
    return sides + [pool(n)]


def alexnet_shapes(size):
    return from_sides(sides_with(size))


def test_q1():
    assert "at least 63 pixels" in ex.q1.evaluate(alexnet_shapes).message
    assert ex.q1.evaluate(alexnet_shapes).outcome is Outcome.CORRECT
    assert ex.q1.evaluate(lambda n: [list(s) for s in alexnet_shapes(n)]).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q1)
    assert_incorrect(ex.q1, lambda n: SHAPES, "alexnet_shapes(227)", "224x224 input whatever `size` is")
    assert_incorrect(ex.q1, lambda n: from_sides(sides_with(n, conv1_pad=0)), "alexnet_shapes(224)",
                     "left out conv1's padding of 2")
    assert_incorrect(ex.q1, lambda n: from_sides(sides_with(n, keep=False)), "padding of conv2 to conv5")
    assert_incorrect(ex.q1, lambda n: from_sides(sides_with(n, pool=lambda m: m // 2)), "alexnet_shapes(227)",
                     "halved the size at each pool", "overlap")
    ceil = lambda m: -(-(m - 3) // 2) + 1  # 3x3 pooling rounded up: the same sizes as halving
    assert_incorrect(ex.q1, lambda n: from_sides(sides_with(n, pool=ceil)), "alexnet_shapes(227)", "rounded up")
    paper = (96, 96, 256, 256, 384, 384, 256, 256)
    assert_incorrect(ex.q1, lambda n: [(c, *s[1:]) for c, s in zip(paper, alexnet_shapes(n))],
                     "the 2012 paper's channels")
    # No listed mistake: the first layer that is off is named, with its rule, without the expected shape.
    off = lambda n: alexnet_shapes(n)[:5] + [(384, 13, 13)] + alexnet_shapes(n)[6:]
    assert_incorrect(ex.q1, off, "alexnet_shapes(224): the shape after conv4 is (384, 13, 13)", "channels",
                     "conv3's (384, 13, 13)")
    assert "(256, 13, 13)" not in ex.q1.evaluate(off).message
    assert_incorrect(ex.q1, lambda n: alexnet_shapes(n)[:-1], "list of 8 (C, H, W) tuples")
    assert_incorrect(ex.q1, lambda n: [(64, 55)] + alexnet_shapes(n)[1:], "shape for conv1 should be a (C, H, W)")
    assert_incorrect(ex.q1, lambda n: None, "forget the `return`")


# --- Q2 ----------------------------------------------------------------------
def conv_params(c_in, c_out, k, groups=1, bias=True):
    return c_out * (c_in // groups) * k * k + (c_out if bias else 0)


def test_q2_reference_counts_real_layers():
    for args, kwargs in ex.q2.cases:
        layer = torch.nn.Conv2d(*args, **kwargs)
        assert sum(p.numel() for p in layer.parameters()) == ex.conv_param_count(*args, **kwargs)


def test_q2():
    assert ex.q2.evaluate(conv_params).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q2)
    ignores_groups = lambda c_in, c_out, k, groups=1, bias=True: c_out * c_in * k * k + (c_out if bias else 0)
    assert_incorrect(ex.q2, ignores_groups, "conv_params(96, 256, 5, groups=2, bias=True)", "returned 614,656",
                     "ignored `groups`")
    no_bias = lambda c_in, c_out, k, groups=1, bias=True: c_out * (c_in // groups) * k * k
    assert_incorrect(ex.q2, no_bias, "forgot the biases", "returned 34,848")
    always_bias = lambda c_in, c_out, k, groups=1, bias=True: c_out * (c_in // groups) * k * k + c_out
    assert_incorrect(ex.q2, always_bias, "bias=False", "counted biases")
    both_split = lambda c_in, c_out, k, groups=1, bias=True: (c_out // groups) * (c_in // groups) * k * k + c_out
    assert_incorrect(ex.q2, both_split, "divided the output channels by `groups` too")
    not_squared = lambda c_in, c_out, k, groups=1, bias=True: c_out * (c_in // groups) * k + (c_out if bias else 0)
    assert_incorrect(ex.q2, not_squared, "not k x k")
    assert_incorrect(ex.q2, lambda *a, **k: "many", "should be a number")
    assert_incorrect(ex.q2, lambda c_in, c_out, k: 0, "TypeError")  # no groups/bias arguments
    assert_incorrect(ex.q2, lambda *a, **k: float(conv_params(*a, **k)), "should be an int")


# --- Q3 ----------------------------------------------------------------------
def conv_flops(c_in, c_out, k, size, stride=1, padding=0, groups=1):
    out = (size + 2 * padding - k) // stride + 1
    return 2 * c_out * (c_in // groups) * k * k * out * out


def test_q3_reference_is_what_count_flops_measures():
    for args, kwargs in ex.q3.cases:
        c_in, c_out, k, size = args
        layer = torch.nn.Conv2d(c_in, c_out, k, stride=kwargs.get("stride", 1), padding=kwargs.get("padding", 0),
                                groups=kwargs.get("groups", 1))
        assert count_flops(layer, (1, c_in, size, size)) == ex.conv_flop_count(*args, **kwargs)


def test_q3():
    assert "count_flops" in ex.q3.evaluate(conv_flops).message
    assert ex.q3.evaluate(conv_flops).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q3)

    def slip(per_mac=2, side=None, use_groups=True):
        def f(c_in, c_out, k, size, stride=1, padding=0, groups=1):
            out = side(size, k, stride, padding) if side else (size + 2 * padding - k) // stride + 1
            return per_mac * c_out * (c_in // (groups if use_groups else 1)) * k * k * out * out
        return f

    assert_incorrect(ex.q3, slip(per_mac=1), "conv_flops(1, 1, 3, 5) returned 81", "counted multiply-adds")
    assert_incorrect(ex.q3, slip(side=lambda n, k, s, p: n), "input's size instead of the output's")
    assert_incorrect(ex.q3, slip(use_groups=False), "conv_flops(96, 256, 5, 27, padding=2, groups=2)",
                     "ignored `groups`")
    assert_incorrect(ex.q3, slip(side=lambda n, k, s, p: (n - k) // s + 1), "left out the padding")
    assert_incorrect(ex.q3, slip(side=lambda n, k, s, p: n + 2 * p - k + 1), "left out the stride")
    assert_incorrect(ex.q3, lambda *a, **k: conv_flops(*a, **k) + 1, "returned 163; expected 162")
    assert_incorrect(ex.q3, lambda *a, **k: conv_flops(*a, **k) / 1e9, "should be an int")


# --- Q4 ----------------------------------------------------------------------
def transfer(reference):
    model = alexnet.alexnet()
    model.load_state_dict(reference.state_dict(), strict=True)
    return model.eval()


def test_q4():
    assert ex.q4.evaluate(transfer).outcome is Outcome.CORRECT
    assert_not_attempted(ex.q4)
    assert_incorrect(ex.q4, lambda ref: alexnet.alexnet().eval(), "outputs differ", "load_state_dict")
    assert_incorrect(ex.q4, lambda ref: ref, "torchvision's model")

    def forgot_eval(ref):
        model = alexnet.alexnet()
        model.load_state_dict(ref.state_dict())
        return model

    assert_incorrect(ex.q4, forgot_eval, "training mode", "model.eval()")
    assert_incorrect(ex.q4, lambda ref: alexnet.alexnet_paper().eval(), "missing keys", "features.3.weight",
                     "not the paper's")

    def strict_fails(ref):
        model = alexnet.alexnet_paper()
        model.load_state_dict(ref.state_dict(), strict=True)
        return model

    assert_incorrect(ex.q4, strict_fails, "RuntimeError", "size mismatch")

    def wrong_direction(ref):
        model = alexnet.alexnet()
        ref.load_state_dict(model.state_dict())
        return model.eval()

    assert_incorrect(ex.q4, wrong_direction, "wrong direction", "torchvision's weights were overwritten")


# --- Q5 ----------------------------------------------------------------------
def activation_gradients(x):
    grads = []
    for fn in (torch.relu, torch.tanh):
        xg = x.detach().clone().requires_grad_(True)
        fn(xg).sum().backward()
        grads.append(xg.grad)
    return tuple(grads)


def test_q5():
    result = ex.q5.evaluate(activation_gradients)
    assert result.outcome is Outcome.CORRECT and "tanh'(x) = 0.0013" in result.message
    assert_not_attempted(ex.q5)
    assert_incorrect(ex.q5, lambda x: (torch.relu(x), torch.tanh(x)), "equals relu(x)", "not its derivative")
    assert_incorrect(ex.q5, lambda x: tuple(reversed(activation_gradients(x))), "wrong order")
    assert_incorrect(ex.q5, lambda x: ((x > 0).float(), 1 - torch.tanh(x)), "tanh_grad", "largest difference")
    assert_incorrect(ex.q5, lambda x: (x > 0).float(), "a pair")


def test_q4_a_transfer_that_poisons_the_reference_then_raises_cannot_break_later_checks():
    def poison(ref):
        with torch.no_grad():
            for p in ref.parameters():
                p.fill_(float("nan"))
        ref.features[0] = torch.nn.Identity()
        raise ValueError("oops")

    assert_incorrect(ex.q4, poison, "ValueError", "oops")
    assert ex.q4.evaluate(transfer).outcome is Outcome.CORRECT  # the next check gets a fresh, pristine reference

    def vandal(ref):
        with torch.no_grad():
            ref.features[0].weight.zero_()
        return transfer(ref)

    assert_incorrect(ex.q4, vandal, "torchvision's weights were overwritten")
    assert ex.q4.evaluate(transfer).outcome is Outcome.CORRECT


def test_q4_each_check_gets_its_own_reference_never_the_cached_tensors():
    seen = []

    def spy(ref):
        seen.append(ref)
        return transfer(ref)

    assert ex.q4.evaluate(spy).outcome is Outcome.CORRECT
    assert ex.q4.evaluate(spy).outcome is Outcome.CORRECT
    assert seen[0] is not seen[1]
    cached = {v.data_ptr() for v in ex.Transfer._weights.values()}
    for ref in seen:
        assert not cached & {v.data_ptr() for v in ref.state_dict().values()}
    torch.manual_seed(0)  # the reference holds a seeded torchvision AlexNet's weights
    fresh = torchvision.models.alexnet(weights=None).state_dict()
    assert all(torch.equal(fresh[k], v) for k, v in seen[0].state_dict().items())


# --- Q6 ----------------------------------------------------------------------
def test_q6_dead_relu_prediction():
    assert "dead" in ex.q6.evaluate("a").message
    assert ex.q6.evaluate(" (A) ").outcome is Outcome.CORRECT
    assert ex.q6.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    assert_incorrect(ex.q6, "b", "saturated tanh unit", "exactly 0")
    assert_incorrect(ex.q6, "c", "only the slope")
    assert_incorrect(ex.q6, "d", "weight decay")
    assert_incorrect(ex.q6, "e", "not one of the options")
    assert_incorrect(ex.q6, 1, "as a string")
    assert set(ex.q6.why) == set(ex.q6.options) - {ex.q6.answer}


def test_q6_the_measurement_shows_what_the_answer_says():
    """The notebook's measuring cell: a ReLU unit with bias DEAD_BIAS and |w.x| <= DEAD_SPREAD gets zero gradients;
    the same unit with tanh gets small ones that are not zero."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, generator=g)
    w = torch.randn(16, generator=g)
    w = w * ex.DEAD_SPREAD / (x @ w).abs().max()
    grads = {}
    for act in (torch.relu, torch.tanh):
        wg, bg = w.clone().requires_grad_(True), torch.tensor(ex.DEAD_BIAS, requires_grad=True)
        ((act(x @ wg + bg) - 1.0) ** 2).mean().backward()
        grads[act] = (wg.grad.abs().max().item(), bg.grad.abs().item())
    assert grads[torch.relu] == (0.0, 0.0)
    assert all(0 < v < 0.1 for v in grads[torch.tanh])
