"""Tests of the checks of exercise 06 (ResNet): right answers pass, planted mistakes fail with the
message that names the mistake, untouched stubs say "not attempted"."""

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from checkhelpers import assert_incorrect, stub
from icdl.checks import ex06_resnet as ex
from icdl.checks.core import Outcome
from icdl.models import resnet
from torch import nn

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5, ex.q6, ex.q7]


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_untouched_answers_are_not_attempted(q):
    assert q.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    if q not in (ex.q5, ex.q7):  # choice questions: the stub is `answer = None`
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


def no_expansion(cin, width, stride=1):  # the last 1x1 convolution back to width channels
    total = cin * width + 9 * width * width + width * width + 2 * 3 * width
    return total + (cin * width + 2 * width if stride != 1 or cin != width else 0)


def with_bias(cin, width, stride=1):
    out = 4 * width
    extra = width + width + out + (out if stride != 1 or cin != out else 0)
    return bottleneck_params(cin, width, stride) + extra


@pytest.mark.parametrize("fn, fragments", [
    (no_bn, ["bottleneck_params(64, 64, stride=1)", "BatchNorm", "gamma and beta"]),
    (no_projection, ["projection shortcut", "shape changes"]),
    (projection_always, ["the identity", "bottleneck_params(256, 64, stride=1)"]),
    (bn_with_buffers, ["buffers"]),
    (with_bias, ["bias=False"]),
    (no_expansion, ["expands to 4 * width"]),
    (lambda cin, width, stride=1: float(bottleneck_params(cin, width, stride)) + 0.5, ["should be an int"]),
    (lambda cin, width, stride=1: float(bottleneck_params(cin, width, stride)), ["should be an int", "//"]),
    (lambda cin, width, stride=1: Liar(1), ["returned 1;"]),
    (lambda cin, width, stride=1: 1, ["returned 1;", "75,008"]),
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


# -- q3: an ImageNet backbone under a 10-class head ------------------------------
def load_backbone(tv_model, num_classes):
    model = resnet.resnet18(num_classes=num_classes)
    own = model.state_dict()
    keep = {k: v for k, v in tv_model.state_dict().items() if v.shape == own[k].shape}
    model.load_state_dict(keep, strict=False)
    return model, sorted(k for k in own if k not in keep)


def test_q3_right_answer_passes_and_strict_true_really_fails_on_fc():
    assert ex.q3.evaluate(load_backbone).outcome is Outcome.CORRECT
    assert ex.q3.evaluate(lambda tv, n: (lambda m, s: (m, tuple(reversed(s))))(*load_backbone(tv, n))).outcome \
        is Outcome.CORRECT  # any order, any sequence
    with pytest.raises(RuntimeError, match="size mismatch for fc.weight"):
        resnet.resnet18(num_classes=10).load_state_dict(ex._imagenet_resnet18().state_dict(), strict=True)


def strict_false_on_everything(tv_model, num_classes):
    model = resnet.resnet18(num_classes=num_classes)
    model.load_state_dict(tv_model.state_dict(), strict=False)  # torch raises: strict=False allows no shape mismatch
    return model, ["fc.bias", "fc.weight"]


def copies_nothing(tv_model, num_classes):
    model = resnet.resnet18(num_classes=num_classes)
    own = model.state_dict()
    keep = {k: v for k, v in tv_model.state_dict().items() if v.shape == own[k].shape}  # filtered, never loaded
    return model, sorted(k for k in own if k not in keep)


def parameters_only(tv_model, num_classes):
    model = resnet.resnet18(num_classes=num_classes)
    own = model.state_dict()
    keep = {k: v for k, v in tv_model.named_parameters() if v.shape == own[k].shape}  # no BN statistics
    model.load_state_dict(keep, strict=False)
    return model, sorted(k for k in own if k not in keep)


def parameters_only_but_skipped_right(tv_model, num_classes):
    model, _ = parameters_only(tv_model, num_classes)
    return model, ["fc.bias", "fc.weight"] if num_classes != 1000 else []


def wrong_direction(tv_model, num_classes):
    model = resnet.resnet18(num_classes=num_classes)
    theirs = tv_model.state_dict()
    keep = {k: v for k, v in model.state_dict().items() if v.shape == theirs[k].shape}
    tv_model.load_state_dict(keep, strict=False)  # torchvision's model overwritten by the fresh one
    return model, sorted(k for k in theirs if k not in keep)


def thousand_classes(tv_model, num_classes):
    model = resnet.resnet18()  # num_classes forgotten: 1000 outputs, so everything loads
    model.load_state_dict(tv_model.state_dict(), strict=True)
    return model, []


def sliced_head(tv_model, num_classes):
    model, skipped = load_backbone(tv_model, num_classes)
    with torch.no_grad():
        model.fc.weight.copy_(tv_model.fc.weight[:num_classes])
        model.fc.bias.copy_(tv_model.fc.bias[:num_classes])
    return model, skipped


def skips_every_fc_key(tv_model, num_classes):
    model = resnet.resnet18(num_classes=num_classes)
    keep = {k: v for k, v in tv_model.state_dict().items() if not k.startswith("fc.")}  # by name, not by shape
    model.load_state_dict(keep, strict=False)
    return model, ["fc.bias", "fc.weight"]


def lists_bn_buffers_as_skipped(tv_model, num_classes):
    model, skipped = load_backbone(tv_model, num_classes)
    return model, skipped + [k for k in tv_model.state_dict() if "running" in k]


@pytest.mark.parametrize("fn, fragments", [
    (strict_false_on_everything, ["size mismatch for fc.weight", "strict=False", "missing or unexpected",
                                  "different shapes"]),
    (copies_nothing, ["load_backbone(tv_model, 10)", "nothing was copied"]),
    (parameters_only, ["running statistics were not copied", "buffers", "state_dict()"]),
    (parameters_only_but_skipped_right, ["running statistics were not copied"]),
    (wrong_direction, ["you copied in the wrong direction: torchvision's weights were overwritten"]),
    (thousand_classes, ["`fc` has 1000 outputs", "it needs 10", "num_classes=num_classes"]),
    (sliced_head, ["first 10 rows of torchvision's 1000-class head", "as the model initialised it"]),
    (skips_every_fc_key, ["load_backbone(tv_model, 1000)", "2 tensors whose shapes match were not copied",
                          "fc.bias"]),
    (lists_bn_buffers_as_skipped, ["`skipped` names 40 keys whose shapes match", "running_mean"]),
    (lambda tv, n: (load_backbone(tv, n)[0], ["fc.weight"]), ["`skipped` leaves out `fc.bias`"]),
    (lambda tv, n: (load_backbone(tv, n)[0], None), ["`skipped` is None"]),
    (lambda tv, n: (load_backbone(tv, n)[0], "fc.bias, fc.weight"), ["list of key names"]),
    (lambda tv, n: load_backbone(tv, n)[0], ["should return two things, `(model, skipped)`"]),
    (lambda tv, n: (tv, ["fc.bias", "fc.weight"]), ["torchvision's model itself"]),
    (lambda tv, n: (torchvision.models.resnet18(num_classes=n), []), ["a torchvision model, not the course's"]),
    (lambda tv, n: (resnet.resnet34(num_classes=n), []), ["not ResNet-18's", "layer1.2."]),
])
def test_q3_planted_mistakes_are_named(fn, fragments):
    assert_incorrect(ex.q3.evaluate(fn), *fragments)


def test_q3_a_changed_reference_is_named_and_cannot_poison_a_later_check():
    def replaces_fc_then_raises(tv_model, num_classes):
        tv_model.fc = nn.Linear(512, num_classes)
        tv_model.half()
        raise RuntimeError("oops")

    assert_incorrect(ex.q3.evaluate(replaces_fc_then_raises), "RuntimeError: oops")
    assert_incorrect(ex.q3.evaluate(lambda tv, n: (setattr(tv, "fc", nn.Linear(512, n)), load_backbone(tv, n))[1]),
                     "changed torchvision's model", "`fc.weight` now has shape (10, 512)")
    assert ex.q3.evaluate(load_backbone).outcome is Outcome.CORRECT


# -- q4: the derivative of a residual stack --------------------------------------------
def residual_stack_grad(a):
    grad = 1.0
    for a_i in a:
        grad *= 1 + a_i
    return grad


def test_q4_right_answers_pass_and_agree_with_autograd():
    assert ex.q4.evaluate(residual_stack_grad).outcome is Outcome.CORRECT
    assert ex.q4.evaluate(lambda a: torch.tensor([1.0 + v for v in a], dtype=torch.float64).prod()).outcome \
        is Outcome.CORRECT  # a one-element tensor is a number
    a = [0.3, -0.7, 0.5, 0.1]
    x = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    h = x
    for a_i in a:
        block = nn.Linear(1, 1, bias=False).double()
        with torch.no_grad():
            block.weight.fill_(a_i)
        h = h + block(h.reshape(1, 1)).reshape(())
    (grad,) = torch.autograd.grad(h, x)
    assert abs(grad.item() - residual_stack_grad(a)) < 1e-12


@pytest.mark.parametrize("fn, fragments", [
    (lambda a: math.prod(a), ["residual_stack_grad([0.5, 0.2]) returned 0.1", "plain stack's derivative"]),
    (lambda a: sum(1 + v for v in a), ["returned 2.7", "the chain rule multiplies"]),
    (lambda a: 1 + sum(a), ["returned 1.7", "at most one block"]),
    (lambda a: 1 + math.prod(a), ["returned 1.1", "kept only two paths"]),
    (lambda a: math.prod(1 + v for v in a) - 1, ["returned 0.8", "left out the identity"]),
    (lambda a: math.prod(1 + v for v in a) if a else 0.0, ["residual_stack_grad([]) returned 0", "left out the identity"]),
    (lambda a: None, ["returned None", "return"]),
    (lambda a: "1.8", ["should be a number"]),
])
def test_q4_planted_mistakes_are_named(fn, fragments):
    assert_incorrect(ex.q4.evaluate(fn), *fragments)


# -- q5: fifty plain blocks ---------------------------------------------------------------
def test_q5_right_answer_passes_and_every_wrong_option_is_explained():
    assert ex.q5.evaluate("b").outcome is Outcome.CORRECT
    assert ex.q5.evaluate(" (B) ").outcome is Outcome.CORRECT
    assert set(ex.q5.why) == set(ex.q5.options) - {"b"}


@pytest.mark.parametrize("answer, fragments", [
    ("a", ["Not (a)", "1 + a_i, not a_i"]),
    ("c", ["Not (c)", "smaller than 1 in size"]),
    ("d", ["Not (d)", "0.5^50"]),
    ("e", ["not one of the options"]),
    (2, ["should be a letter", "int 2"]),
])
def test_q5_planted_mistakes_are_named(answer, fragments):
    assert_incorrect(ex.q5.evaluate(answer), *fragments)


# -- q6: stage shapes -------------------------------------------------------------------
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


def test_q6_right_answer_passes_and_matches_a_real_resnet50():
    assert ex.q6.evaluate(stage_output_shapes).outcome is Outcome.CORRECT
    lists = lambda s, cifar_stem=False, expansion=1: [list(t) for t in stage_output_shapes(s, cifar_stem, expansion)]  # noqa: E731
    assert ex.q6.evaluate(lists).outcome is Outcome.CORRECT  # lists of lists are shapes too
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
     ["forgot the stem's max-pool", "stage_output_shapes(224, cifar_stem=False, expansion=1)", "(64, 112, 112)"]),
    (lambda s, cifar_stem=False, expansion=1: stage_output_shapes(s, cifar_stem, 1),
     ["expansion", "expansion=4"]),
    (lambda s, cifar_stem=False, expansion=1: stage_output_shapes(s, cifar_stem, expansion, halve=lambda n: n // 2),
     ["rounds up for odd sides", "stage_output_shapes(97"]),
    (lambda s, cifar_stem=False, expansion=1: stage_output_shapes(s, cifar_stem, expansion, first=2),
     ["layer1 keeps the resolution"]),
    (lambda s, cifar_stem=False, expansion=1: stage_output_shapes(s, False, expansion),
     ["CIFAR stem", "cifar_stem=True"]),
    (lambda s, cifar_stem=False, expansion=1: stage_output_shapes(s, cifar_stem, expansion)[:3],
     ["4 shapes", "it has 3"]),
    (lambda s, cifar_stem=False, expansion=1: "shapes", ["list of four (C, H, W) tuples"]),
    (lambda s, cifar_stem=False, expansion=1: [(64.0, 56, 56)] * 4, ["should be an int"]),
])
def test_q6_planted_mistakes_are_named(fn, fragments):
    assert_incorrect(ex.q6.evaluate(fn), *fragments)


# -- q7: the degradation problem -------------------------------------------------------------
def test_q7_right_answer_passes():
    assert ex.q7.evaluate("b").outcome is Outcome.CORRECT
    assert ex.q7.evaluate(" B ").outcome is Outcome.CORRECT


@pytest.mark.parametrize("answer, fragments", [
    ("a", ["Not (a)", "overfitting", "higher"]),
    ("c", ["Not (c)", "do start to converge"]),
    ("d", ["Not (d)", "same number of parameters"]),
    ("e", ["not one of the options", '"a", "b", "c" or "d"']),
    (2, ["should be a letter", "int 2"]),
    ("x" * 10_000, ["not one of the options", "..."]),
])
def test_q7_planted_mistakes_are_named(answer, fragments):
    result = ex.q7.evaluate(answer)
    assert_incorrect(result, *fragments)
    assert len(result.message) < 300  # a long answer is not echoed whole
