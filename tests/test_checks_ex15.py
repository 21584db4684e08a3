"""Tests of the checks of exercise 15 (transfer learning): right answers pass, planted mistakes fail with the
message that names the mistake, untouched stubs say "not attempted"."""

import pytest
import torch
from checkhelpers import assert_incorrect, stub
from icdl import transfer
from icdl.checks import ex15_transfer_learning as ex
from icdl.checks.core import Outcome
from icdl.models import efficientnet
from icdl.summary import count_params
from torchvision.ops import FrozenBatchNorm2d

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5]


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "15_transfer_learning"


def test_untouched_answers_are_not_attempted():
    assert ex.q1.evaluate(None, None, None).outcome is Outcome.NOT_ATTEMPTED
    for q in (ex.q2, ex.q3, ex.q4, ex.q5):
        assert q.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    for q in (ex.q2, ex.q3):
        assert q.evaluate(stub).outcome is Outcome.NOT_ATTEMPTED


# -- q1: what a linear probe trains ------------------------------------------------------
NET = efficientnet.efficientnet_lite0(num_classes=10)
HEAD, TOTAL = 1280 * 10 + 10, count_params(NET)
RIGHT = (HEAD, TOTAL, HEAD / TOTAL)


def test_q1_correct_and_the_values_are_the_models():
    assert ex.q1.evaluate(*RIGHT).outcome is Outcome.CORRECT
    assert HEAD == count_params(transfer.freeze(efficientnet.efficientnet_lite0(num_classes=10)), trainable_only=True)
    assert ex.q1.evaluate(HEAD, TOTAL, round(HEAD / TOTAL, 6)).outcome is Outcome.CORRECT  # a rounded share


@pytest.mark.parametrize("index, value, fragment", [
    (0, 12_800, "has a bias too"),
    (0, 1_281_000, "1000-class classifier"),
    (1, sum(t.numel() for t in NET.state_dict().values() if t.is_floating_point())
     + sum(t.numel() for t in NET.state_dict().values() if not t.is_floating_point()), "running statistics"),
    (1, count_params(efficientnet.efficientnet_lite0()), "1000-class classifier; count it with the 10-class"),
    (1, TOTAL - HEAD, "frozen part only"),
    (2, 100 * HEAD / TOTAL, "not a percentage"),
    (2, HEAD / (TOTAL - HEAD), "not by the frozen part"),
    (0, 1280, "count the head's weight"),
    (1, 2.5, "should be an int"),
])
def test_q1_planted_mistakes(index, value, fragment):
    answers = list(RIGHT)
    answers[index] = value
    assert_incorrect(ex.q1.evaluate(*answers), fragment)


def test_q1_buffers_mistake_is_what_state_dict_counts():
    assert sum(t.numel() for t in NET.state_dict().values()) == ex._lite0_counts()["with_buffers"]


# -- q2: debug the freezing function ----------------------------------------------------------
def requires_grad_only(model):  # the given function
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("classifier.")
    return model


def solution(model):
    return transfer.keep_bn_eval(requires_grad_only(model))


def eval_once(model):  # puts the batch norms in eval mode, but model.train() undoes it
    requires_grad_only(model)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    return model


def momentum_zero(model):
    requires_grad_only(model)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.0
    return model


def bn_eval_only(model):  # forgot requires_grad
    return transfer.keep_bn_eval(model)


def everything_frozen(model):
    for p in model.parameters():
        p.requires_grad = False
    return transfer.keep_bn_eval(model)


def frozen_bn_modules(model):  # another correct way: torchvision's FrozenBatchNorm2d in place of every BN
    requires_grad_only(model)
    for name, m in list(model.named_modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, torch.nn.BatchNorm2d):
                frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(frozen, key).copy_(getattr(child, key).detach())
                setattr(m, child_name, frozen)
    return model


def test_q2_correct_in_two_ways_and_the_given_function_fails_with_its_own_message():
    assert ex.q2.evaluate(solution).outcome is Outcome.CORRECT
    assert ex.q2.evaluate(lambda m: (solution(m), None)[1]).outcome is Outcome.CORRECT  # no return is fine
    assert ex.q2.evaluate(frozen_bn_modules).outcome is Outcome.CORRECT
    assert_incorrect(ex.q2.evaluate(requires_grad_only), "the given bug", "running statistics change")


@pytest.mark.parametrize("fn, fragments", [
    (eval_once, ["switches them back"]),
    (momentum_zero, ["momentum 0", "batch's own mean"]),
    (bn_eval_only, ["still have requires_grad=True"]),
    (everything_frozen, ["froze the head too"]),
    (lambda m: copy_of(m), ["another object"]),
    (lambda m: 1 / 0, ["ZeroDivisionError"]),
    (3, ["Pass your function itself"]),
])
def test_q2_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q2.evaluate(fn), *fragments)


def copy_of(model):
    import copy
    return solution(copy.deepcopy(model))


# -- q3: layer-wise learning-rate groups ------------------------------------------------------
def groups(model, base_lr, decay, *, count_all=False, count_frozen=False, reverse=False, shift=0, prefix=False,
           include_frozen=False):
    kept = []
    for name, child in model.named_children():
        if prefix:  # matches "10.weight" for "1"
            params = [p for n, p in model.named_parameters() if n.startswith(name)]
        else:
            params = list(child.parameters())
        if not (count_frozen or include_frozen):
            params = [p for p in params if p.requires_grad]
        if params or count_all:
            kept.append(params)
    n = len(kept)
    out = []
    for i, params in enumerate(kept):
        if not include_frozen and count_frozen:
            params = [p for p in params if p.requires_grad]
        if params:
            out.append({"params": params, "lr": base_lr * decay ** ((i if reverse else n - 1 - i) + shift)})
    return out


def per_tensor(model, base_lr, decay):
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p], "lr": base_lr * decay ** (len(params) - 1 - i)} for i, p in enumerate(params)]


def test_q3_correct_and_the_result_is_what_an_optimizer_takes():
    assert ex.q3.evaluate(groups).outcome is Outcome.CORRECT
    for _, model, base_lr, decay in ex._case_models():
        torch.optim.AdamW(groups(model, base_lr, decay))


@pytest.mark.parametrize("fn, fragments", [
    (lambda m, b, d: groups(m, b, d, count_all=True), ["without parameters (ReLU, pooling, flatten)"]),
    (lambda m, b, d: groups(m, b, d, count_frozen=True), ["counted the frozen layers"]),
    (lambda m, b, d: groups(m, b, d, reverse=True), ["largest learning rate to the first layer"]),
    (lambda m, b, d: groups(m, b, d, shift=1), ["base_lr * decay"]),
    (per_tensor, ["per parameter tensor"]),
    (lambda m, b, d: groups(m, b, d, prefix=True), ["is in two groups", "'10.weight'"]),
    (lambda m, b, d: groups(m, b, d, include_frozen=True), ["is frozen (requires_grad=False) but in a group"]),
    (lambda m, b, d: groups(m, b, d)[:-1], ["is in no group"]),
    (lambda m, b, d: [{"params": list(m.parameters())}], ["needs 'params' and 'lr'"]),
    (lambda m, b, d: list(m.parameters()), ["list of dicts"]),
    (lambda m, b, d: [{"params": [torch.zeros(1)], "lr": b}], ["not a parameter of the model"]),
    (lambda m, b, d: [{**g, "lr": g["lr"] * 1.5} for g in groups(m, b, d)], ["work it out from its layer's"]),
    (lambda m, b, d: [{**g, "lr": "0.1"} for g in groups(m, b, d)], ["should be a number"]),
])
def test_q3_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q3.evaluate(fn), *fragments)


# -- q4 and q5: choices ----------------------------------------------------------------
def test_q4_every_wrong_option_is_explained():
    assert ex.q4.evaluate("C").outcome is Outcome.CORRECT
    for letter, fragment in [("a", "safest of the three"), ("b", "far from a random start"),
                             ("d", "learn every feature")]:
        assert_incorrect(ex.q4.evaluate(letter), fragment)
    assert_incorrect(ex.q4.evaluate("e"), "not one of the options")


def test_q5_every_wrong_option_is_explained():
    assert ex.q5.evaluate("(b)").outcome is Outcome.CORRECT
    for letter, fragment in [("a", "the saving is time"), ("c", "never augmented"), ("d", "the label stays"),
                             ("e", "each epoch needs new ones")]:
        assert_incorrect(ex.q5.evaluate(letter), fragment)
    assert_incorrect(ex.q5.evaluate(5), "a letter")
