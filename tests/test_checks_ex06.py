"""Tests of the checks of exercise 06 (ResNet): right answers pass, planted mistakes fail with the
message that names the mistake, untouched stubs say "not attempted"."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from checkhelpers import assert_incorrect, stub
from icdl.checks import ex06_resnet as ex
from icdl.checks.core import Outcome
from icdl.models import resnet
from torch import nn

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5, ex.q6]


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_untouched_answers_are_not_attempted(q):
    assert q.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    if q is not ex.q6:
        assert q.evaluate(stub).outcome is Outcome.NOT_ATTEMPTED


def test_a_class_whose_init_is_a_stub_is_not_attempted():
    class Stub(nn.Module):
        def __init__(self, *args):
            super().__init__()
            raise NotImplementedError

    assert ex.q1.evaluate(Stub).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "06_resnet"


# -- q1: BasicBlock -----------------------------------------------------------
def projection(cin, cout, stride, bn=True):
    layers = [nn.Conv2d(cin, cout, 1, stride=stride, bias=False)] + ([nn.BatchNorm2d(cout)] if bn else [])
    return nn.Sequential(*layers)


class Block(nn.Module):
    """The right answer; subclasses plant one mistake each."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = self.make_shortcut(cin, cout, stride)

    def make_shortcut(self, cin, cout, stride):
        return projection(cin, cout, stride) if stride != 1 or cin != cout else nn.Identity()

    def branch(self, x):
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def forward(self, x):
        return F.relu(self.branch(x) + self.shortcut(x))


class NoAddition(Block):
    def forward(self, x):
        return F.relu(self.branch(x))


class NoFinalRelu(Block):
    def forward(self, x):
        return self.branch(x) + self.shortcut(x)


class ReluBeforeAdd(Block):
    def forward(self, x):
        return F.relu(self.branch(x)) + self.shortcut(x)


class StrideIgnored(Block):
    def make_shortcut(self, cin, cout, stride):
        return projection(cin, cout, 1) if stride != 1 or cin != cout else nn.Identity()


class AlwaysIdentity(Block):
    def make_shortcut(self, cin, cout, stride):
        return nn.Identity()


class AlwaysProjection(Block):
    def make_shortcut(self, cin, cout, stride):
        return projection(cin, cout, stride)


class ProjectionWithoutBN(Block):
    def make_shortcut(self, cin, cout, stride):
        return projection(cin, cout, stride, bn=False) if stride != 1 or cin != cout else nn.Identity()


class NoShortcutAttribute(Block):
    def __init__(self, cin, cout, stride=1):
        super().__init__(cin, cout, stride)
        self.skip = self.shortcut
        del self.shortcut

    def forward(self, x):
        return F.relu(self.branch(x) + self.skip(x))


class CrashingForward(Block):
    def forward(self, x):
        return F.relu(self.branch(x) + self.shortcut(x).view(-1))  # a shape bug


def test_q1_right_answers_pass():
    assert ex.q1.evaluate(Block).outcome is Outcome.CORRECT


def test_q1_right_answer_agrees_with_the_course_block():
    """The planted `Block` is the course's BasicBlock under other attribute names."""
    torch.manual_seed(0)
    ours = resnet.BasicBlock(16, 32, 2, resnet.projection_shortcut(16, 32, 2)).eval()
    theirs = Block(16, 32, 2).eval()
    theirs.load_state_dict({k.replace("downsample", "shortcut"): v for k, v in ours.state_dict().items()})
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(theirs(x), ours(x))


@pytest.mark.parametrize("cls, fragments", [
    (NoAddition, ["does not add the shortcut"]),
    (NoFinalRelu, ["missing the final ReLU", "negative values"]),
    (ReluBeforeAdd, ["applies the ReLU before the addition"]),
    (StrideIgnored, ["ignores the stride", "stride=2", "(2, 32, 8, 8)", "(2, 32, 4, 4)"]),
    (AlwaysIdentity, ["needs a projection", "BasicBlock(16, 32, stride=2)"]),
    (AlwaysProjection, ["should be the identity", "has 288 parameters"]),
    (ProjectionWithoutBN, ["BatchNorm2d"]),
    (NoShortcutAttribute, ["missing or not an nn.Module: shortcut"]),
    (CrashingForward, ["raised RuntimeError"]),
])
def test_q1_planted_mistakes_are_named(cls, fragments):
    assert_incorrect(ex.q1.evaluate(cls), *fragments)


def test_q1_not_a_module():
    assert_incorrect(ex.q1.evaluate(lambda cin, cout, stride: 42), "should create an nn.Module", "int 42")


# -- q2: Bottleneck parameters -------------------------------------------------
def bottleneck_params(cin, width, stride=1):
    out = 4 * width
    total = cin * width + 9 * width * width + width * out + 2 * (width + width + out)
    if stride != 1 or cin != out:
        total += cin * out + 2 * out
    return total


def test_q2_right_answer_passes_and_matches_the_module():
    assert ex.q2.evaluate(bottleneck_params).outcome is Outcome.CORRECT
    block = resnet.resnet50().layer2[0]  # in 256, width 128, stride 2
    assert bottleneck_params(256, 128, 2) == sum(p.numel() for p in block.parameters())


def no_bn(cin, width, stride=1):
    out = 4 * width
    total = cin * width + 9 * width * width + width * out
    return total + (cin * out if stride != 1 or cin != out else 0)


def no_projection(cin, width, stride=1):
    out = 4 * width
    return cin * width + 9 * width * width + width * out + 2 * (width + width + out)


def projection_always(cin, width, stride=1):
    return no_projection(cin, width, stride) + cin * 4 * width + 8 * width


def bn_with_buffers(cin, width, stride=1):
    out = 4 * width
    total = cin * width + 9 * width * width + width * out + 4 * (width + width + out)
    return total + (cin * out + 4 * out if stride != 1 or cin != out else 0)


def with_bias(cin, width, stride=1):
    out = 4 * width
    extra = width + width + out + (out if stride != 1 or cin != out else 0)
    return bottleneck_params(cin, width, stride) + extra


@pytest.mark.parametrize("fn, fragments", [
    (no_bn, ["bottleneck_params(64, 64, stride=1)", "BatchNorm", "gamma and beta"]),
    (no_projection, ["projection shortcut", "shape changes"]),
    (projection_always, ["the identity", "bottleneck_params(256, 64, stride=1)"]),
    (bn_with_buffers, ["buffers"]),
    (with_bias, ["no bias"]),
    (lambda cin, width, stride=1: float(bottleneck_params(cin, width, stride)) + 0.5, ["should be an int"]),
    (lambda cin, width, stride=1: float(bottleneck_params(cin, width, stride)), ["should be an int", "//"]),
    (lambda cin, width, stride=1: Liar(1), ["is 1"]),
    (lambda cin, width, stride=1: 1, ["is 1", "75,008"]),
])
def test_q2_planted_mistakes_are_named(fn, fragments):
    assert_incorrect(ex.q2.evaluate(fn), *fragments)


class Liar(int):
    """An int whose comparisons always say "equal"."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = int.__hash__


# -- q3: torchvision weights -----------------------------------------------------
def course_resnet_from(tv_model, name):
    model = getattr(resnet, name)(num_classes=tv_model.fc.out_features)
    model.load_state_dict(tv_model.state_dict(), strict=True)
    return model.eval()


def test_q3_right_answer_passes():
    assert ex.q3.evaluate(course_resnet_from).outcome is Outcome.CORRECT


@pytest.mark.parametrize("fn, fragments", [
    (lambda tv, name: tv, ["torchvision's model itself", "resnet.resnet18(num_classes="]),
    (lambda tv, name: torchvision.models.resnet18(num_classes=tv.fc.out_features).eval(),
     ["is a torchvision model", "not the course's ResNet"]),
    (lambda tv, name: course_resnet_from(tv, name) if name == "resnet18" else
     resnet.resnet18(num_classes=tv.fc.out_features).eval(),
     ["missing keys", "layer1.2.", "resnet34"]),
    (lambda tv, name: course_resnet_from_wrong_classes(tv, name),
     ["fc.weight (1000, 512) vs (10, 512)", "num_classes"]),
    (lambda tv, name: course_resnet_from(tv, name).train(), ["training mode", "model.eval()"]),
    (lambda tv, name: getattr(resnet, name)(num_classes=tv.fc.out_features).eval(),
     ["outputs differ", "load_state_dict"]),
])
def test_q3_planted_mistakes_are_named(fn, fragments):
    assert_incorrect(ex.q3.evaluate(fn), *fragments)


def wrong_direction(tv_model, name):
    model = getattr(resnet, name)(num_classes=tv_model.fc.out_features).eval()
    tv_model.load_state_dict(model.state_dict())  # torchvision's model overwritten by the course's
    return model


def forgot_the_buffers(tv_model, name):
    model = getattr(resnet, name)(num_classes=tv_model.fc.out_features)
    model.load_state_dict({k: v for k, v in tv_model.named_parameters()}, strict=False)  # no BN statistics
    return model.eval()


def test_q3_copy_in_the_wrong_direction_and_forgotten_buffers():
    assert_incorrect(ex.q3.evaluate(wrong_direction),
                     "you copied in the wrong direction: torchvision's weights were overwritten")
    assert_incorrect(ex.q3.evaluate(forgot_the_buffers), "outputs differ")


def test_q3_a_changed_reference_is_named_and_cannot_poison_a_later_check():
    def to_double(tv_model, name):
        return course_resnet_from(tv_model.double(), name)

    assert_incorrect(ex.q3.evaluate(to_double), "changed torchvision's model", "torch.float64")

    def replaces_fc_then_raises(tv_model, name):
        tv_model.fc = nn.Linear(512, 3)
        tv_model.half()
        raise RuntimeError("oops")

    assert_incorrect(ex.q3.evaluate(replaces_fc_then_raises), "RuntimeError: oops")
    assert_incorrect(ex.q3.evaluate(lambda tv, name: (setattr(tv, "fc", nn.Linear(512, 3)), tv)[1]),
                     "changed torchvision's model", "`fc.weight` now has shape (3, 512)")
    assert ex.q3.evaluate(course_resnet_from).outcome is Outcome.CORRECT


def course_resnet_from_wrong_classes(tv_model, name):
    model = getattr(resnet, name)()  # forgot num_classes: 1000, so fc cannot take torchvision's weights
    model.load_state_dict({k: v for k, v in tv_model.state_dict().items() if not k.startswith("fc.")}, strict=False)
    return model.eval()


# -- q4: gradient norms -----------------------------------------------------------
def conv_grad_norms(model, x, y):
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules()
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


def test_q4_right_answer_passes():
    assert ex.q4.evaluate(conv_grad_norms).outcome is Outcome.CORRECT


def no_zero_grad(model, x, y):
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules()
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


def every_conv(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, nn.Conv2d)]


def weight_norms(model, x, y):
    return [m.weight.norm().item() for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


def mse_loss(model, x, y):
    model.zero_grad()
    F.mse_loss(model(x), F.one_hot(y, 10).float()).backward()
    return [m.weight.grad.norm().item() for m in model.modules()
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


@pytest.mark.parametrize("fn, fragments", [
    (no_zero_grad, ["twice the right norms", "zero_grad"]),
    (lambda m, x, y: conv_grad_norms(m, x, y)[::-1], ["reverse order"]),
    (every_conv, ["one per convolution", "1x1 projection"]),
    (weight_norms, ["norms of the weights"]),
    (mse_loss, ["expected", "cross-entropy"]),
    (lambda m, x, y: torch.tensor(conv_grad_norms(m, x, y)), ["list of numbers", "Tensor"]),
])
def test_q4_planted_mistakes_are_named(fn, fragments):
    assert_incorrect(ex.q4.evaluate(fn), *fragments)


def test_q4_list_of_scalar_tensors_is_accepted():
    fn = lambda m, x, y: [torch.tensor(v) for v in conv_grad_norms(m, x, y)]  # noqa: E731
    assert ex.q4.evaluate(fn).outcome is Outcome.CORRECT


# -- q5: stage shapes -------------------------------------------------------------------
def stage_output_shapes(image_size, cifar_stem=False, expansion=1, *, pool=True, halve=None, first=1):
    halve = halve or (lambda n: (n - 1) // 2 + 1)
    n = image_size
    if not cifar_stem:
        n = halve(n)
        if pool:
            n = halve(n)
    shapes = []
    for i, width in enumerate([64, 128, 256, 512]):
        if i > 0 or first == 2:
            n = halve(n)
        shapes.append((width * expansion, n, n))
    return shapes


def test_q5_right_answer_passes_and_matches_a_real_resnet50():
    assert ex.q5.evaluate(stage_output_shapes).outcome is Outcome.CORRECT
    model = resnet.resnet50().eval()
    shapes, x = [], torch.zeros(1, 3, 97, 97)
    with torch.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        for stage in model.stages():
            x = stage(x)
            shapes.append(tuple(x.shape[1:]))
    assert shapes == stage_output_shapes(97, expansion=4)


@pytest.mark.parametrize("fn, fragments", [
    (lambda s, cifar_stem=False, expansion=1: stage_output_shapes(s, cifar_stem, expansion, pool=False),
     ["forgot the stem's max-pool", "layer1 outputs (64, 56, 56), you have (64, 112, 112)"]),
    (lambda s, cifar_stem=False, expansion=1: stage_output_shapes(s, cifar_stem, 1),
     ["expansion", "expansion=4", "(256, 56, 56)"]),
    (lambda s, cifar_stem=False, expansion=1: stage_output_shapes(s, cifar_stem, expansion, halve=lambda n: n // 2),
     ["rounds up for odd sides", "stage_output_shapes(97"]),
    (lambda s, cifar_stem=False, expansion=1: stage_output_shapes(s, cifar_stem, expansion, first=2),
     ["layer1 keeps the resolution"]),
    (lambda s, cifar_stem=False, expansion=1: stage_output_shapes(s, False, expansion),
     ["CIFAR stem", "cifar_stem=True"]),
    (lambda s, cifar_stem=False, expansion=1: stage_output_shapes(s, cifar_stem, expansion)[:3],
     ["4 shapes", "it has 3"]),
    (lambda s, cifar_stem=False, expansion=1: "shapes", ["list of four (C, H, W) tuples"]),
])
def test_q5_planted_mistakes_are_named(fn, fragments):
    assert_incorrect(ex.q5.evaluate(fn), *fragments)


# -- q6: the degradation problem -------------------------------------------------------------
def test_q6_right_answer_passes():
    assert ex.q6.evaluate("b").outcome is Outcome.CORRECT
    assert ex.q6.evaluate(" B ").outcome is Outcome.CORRECT


@pytest.mark.parametrize("answer, fragments", [
    ("a", ["(a) is not it", "Overfitting", "higher"]),
    ("c", ["(c) is not it", "do start to converge"]),
    ("d", ["(d) is not it", "same number of parameters"]),
    ("e", ["Choose one of a, b, c, d"]),
    (2, ["one letter as a string", "int 2"]),
    ("x" * 10_000, ["Choose one of a, b, c, d", "..."]),
])
def test_q6_planted_mistakes_are_named(answer, fragments):
    result = ex.q6.evaluate(answer)
    assert_incorrect(result, *fragments)
    assert len(result.message) < 300  # a long answer is not echoed whole
