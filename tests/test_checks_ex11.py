"""Tests of the checks of exercise 11 (the controlled comparison): right answers pass, planted mistakes fail with
the message that names the mistake, untouched stubs say "not attempted"."""

import pytest
import torch
from checkhelpers import assert_incorrect, stub
from icdl import summary
from icdl.checks import ex11_comparison as ex
from icdl.checks.core import Outcome

ALL = [ex.q1, ex.q2, ex.q3, ex.q4, ex.q5]


@pytest.mark.parametrize("q", [ex.q1, ex.q5], ids=lambda q: q.name)
def test_untouched_functions_are_not_attempted(q):
    assert q.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    assert q.evaluate(stub).outcome is Outcome.NOT_ATTEMPTED


def test_untouched_values_are_not_attempted():
    assert ex.q2.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    assert ex.q3.evaluate(None).outcome is Outcome.NOT_ATTEMPTED
    assert ex.q4.evaluate(None, None).outcome is Outcome.NOT_ATTEMPTED


@pytest.mark.parametrize("q", ALL, ids=lambda q: q.name)
def test_every_question_has_a_title_two_hints_and_a_name(q):
    assert q.title and len(q.hints) >= 2 and q.notebook == "11_comparison"


# -- q1: the frontier over several costs ----------------------------------------------
def dominates(a, b, costs):
    no_worse = a["top1"] >= b["top1"] and all(a[c] <= b[c] for c in costs)
    return no_worse and (a["top1"] > b["top1"] or any(a[c] < b[c] for c in costs))


def front_with(rule):
    return lambda rows, costs: [r["name"] for r in rows if not any(rule(s, r, costs) for s in rows if s is not r)]


def test_q1_correct_in_any_order_and_as_a_set():
    assert ex.q1.evaluate(front_with(dominates)).outcome is Outcome.CORRECT
    assert ex.q1.evaluate(lambda rows, costs: set(front_with(dominates)(rows, costs))).outcome is Outcome.CORRECT
    reverse = lambda rows, costs: front_with(dominates)(rows, costs)[::-1]  # noqa: E731
    assert ex.q1.evaluate(reverse).outcome is Outcome.CORRECT


def test_q1_reference_agrees_with_the_chapters_sweep_on_one_cost():
    rows = [dict(name=f"m{i}", top1=t, macs=c) for i, (t, c) in enumerate([(70, 3), (72, 5), (71, 6), (75, 9),
                                                                         (74, 9), (60, 1)])]
    best, sweep = float("-inf"), []
    for r in sorted(rows, key=lambda r: (r["macs"], -r["top1"])):
        if r["top1"] > best:
            sweep.append(r["name"])
            best = r["top1"]
    assert ex.q1.reference(rows, ("macs",)) == sorted(sweep)


@pytest.mark.parametrize("rule, fragments", [
    (lambda a, b, costs: a["top1"] > b["top1"] or any(a[c] < b[c] for c in costs),
     ["beats on a single axis", "no worse on *every* axis"]),
    (lambda a, b, costs: a["top1"] > b["top1"] and all(a[c] < b[c] for c in costs),
     ["equals on one axis and beats on the other"]),
    (lambda a, b, costs: a["top1"] >= b["top1"] and all(a[c] <= b[c] for c in costs),
     ["two identical rows remove each other"]),
    (lambda a, b, costs: dominates({**a, **{c: -a[c] for c in costs}}, {**b, **{c: -b[c] for c in costs}}, costs),
     ["higher cost as better"]),
    (lambda a, b, costs: dominates(a, b, costs[:1]), ["only the first cost"]),
])
def test_q1_planted_mistakes(rule, fragments):
    assert_incorrect(ex.q1.evaluate(front_with(rule)), *fragments)


def test_q1_wrong_types():
    assert_incorrect(ex.q1.evaluate(lambda rows, costs: "a, b"), "list of model names")
    assert_incorrect(ex.q1.evaluate(lambda rows, costs: [r for r in rows]), "names (strings")


# -- q2: activation memory by formula ---------------------------------------------------
N, FLOAT = ex.BATCH, 4
IMAGES, CONV1, RELU1, RELU2 = N * 3 * 32 * 32, N * 8 * 32 * 32, N * 8 * 32 * 32, N * 16 * 16 * 16
RIGHT = FLOAT * (IMAGES + CONV1 + RELU1 + RELU2)


def test_q2_correct_and_the_formula_matches_the_measurement():
    assert ex.q2.evaluate(RIGHT).outcome is Outcome.CORRECT
    measured = ex.q2.expected()[0]
    assert abs(measured - RIGHT) / RIGHT < 0.001  # only batch norm's per-channel statistics differ


def test_q2_measurement_sees_what_autograd_keeps():
    # Doubling the batch doubles what is kept; an in-place ReLU would change it: the measurement is real.
    torch.manual_seed(0)
    a = ex.saved_bytes(ex.small_net(), torch.randn(N, 3, 32, 32))
    b = ex.saved_bytes(ex.small_net(), torch.randn(2 * N, 3, 32, 32))
    assert abs(b / a - 2) < 0.01


@pytest.mark.parametrize("value, fragments", [
    (RIGHT - FLOAT * IMAGES, ["keeps its input, the images"]),
    (RIGHT + FLOAT * (RELU1 + RELU2), ["counted them twice"]),
    (RIGHT / FLOAT, ["number of elements", "4 bytes"]),
    (RIGHT / N, ["for one image"]),
    (FLOAT * (2 * CONV1 + RELU1 + 2 * RELU2 + N * 10), ["every layer's output"]),
    (RIGHT - FLOAT * CONV1, ["batch norm keeps its input"]),
    (RIGHT * 1.5, ["list the tensors kept"]),
])
def test_q2_planted_mistakes(value, fragments):
    assert_incorrect(ex.q2.evaluate(value), *fragments)


def test_q2_message_does_not_give_the_number():
    message = ex.q2.evaluate(RIGHT * 1.5).message
    assert f"{RIGHT:,}" not in message and str(RIGHT) not in message, message


# -- q3: equal multiply-adds, different speed ----------------------------------------------
def test_q3_the_two_networks_have_about_equal_macs_and_params():
    plain, separable = ex.plain_net(), ex.separable_net()
    macs = [summary.count_flops(n, (1, 3, 32, 32)) for n in (plain, separable)]
    params = [summary.count_params(n) for n in (plain, separable)]
    assert abs(macs[1] / macs[0] - 1) < 0.05 and abs(params[1] / params[0] - 1) < 0.1


def test_q3_correct_and_every_wrong_option_explained():
    assert ex.q3.evaluate("b").outcome is Outcome.CORRECT
    assert ex.q3.evaluate(" (B) ").outcome is Outcome.CORRECT
    assert_incorrect(ex.q3.evaluate("a"), "not the reading and writing of memory")
    assert_incorrect(ex.q3.evaluate("c"), "about the same number of parameters")
    assert_incorrect(ex.q3.evaluate("d"), "per multiply-add they are among the slowest")
    assert_incorrect(ex.q3.evaluate("e"), "not one of the options")
    assert_incorrect(ex.q3.evaluate(2), "letter")


# -- q4: torchvision's GFLOPS --------------------------------------------------------------
OPS = 4.089  # ResNet50_Weights.IMAGENET1K_V1.meta["_ops"]


def counted():
    from icdl.models import resnet
    return summary.count_flops(resnet.resnet50(), (1, 3, 224, 224))


def test_q4_correct():
    flops = OPS * 2e9
    assert ex.q4.evaluate(flops, counted() / flops).outcome is Outcome.CORRECT
    assert abs(counted() / flops - 1) < 0.001


@pytest.mark.parametrize("flops, ratio_of, fragments", [
    (OPS * 1e9, 2 * OPS * 1e9, ["number of multiply-adds", "two FLOPs"]),
    (OPS * 1e9 / 2, 2 * OPS * 1e9, ["halved the multiply-adds"]),
    (OPS, 2 * OPS * 1e9, ["the metadata's number itself"]),
    (OPS * 2, 2 * OPS * 1e9, ["in GFLOPs"]),
])
def test_q4_planted_mistakes_in_the_conversion(flops, ratio_of, fragments):
    assert_incorrect(ex.q4.evaluate(flops, counted() / ratio_of), *fragments)


def test_q4_planted_mistakes_in_the_ratio():
    flops = OPS * 2e9
    assert_incorrect(ex.q4.evaluate(flops, counted() / (OPS * 1e9)), "compare FLOPs with FLOPs")
    assert_incorrect(ex.q4.evaluate(flops, counted() / 2 / flops), "multiply-adds (FLOPs / 2) with FLOPs")
    assert_incorrect(ex.q4.evaluate(flops, 1.2), "count_flops")


# -- q5: picking under two budgets ------------------------------------------------------------
def pick(rows, max_params, max_ms):
    fits = [r for r in rows if r["params"] <= max_params and r["ms"] <= max_ms]
    return max(fits, key=lambda r: r["top1"])["name"] if fits else None


def test_q5_correct():
    assert ex.q5.evaluate(pick).outcome is Outcome.CORRECT


@pytest.mark.parametrize("fn, fragments", [
    (lambda rows, p, t: pick(rows, p, float("inf")), ["ignored the latency budget"]),
    (lambda rows, p, t: pick(rows, float("inf"), t), ["ignored the parameter budget"]),
    (lambda rows, p, t: pick(rows, p - 1, t - 1e-9), ["exactly at a budget", "<="]),
    (lambda rows, p, t: min((r for r in rows if r["params"] <= p and r["ms"] <= t), key=lambda r: r["ms"],
                            default={"name": None})["name"], ["fastest model that fits"]),
    (lambda rows, p, t: min((r for r in rows if r["params"] <= p and r["ms"] <= t), key=lambda r: r["params"],
                            default={"name": None})["name"], ["smallest model that fits"]),
    (lambda rows, p, t: max(rows, key=lambda r: r["top1"])["name"], ["most accurate model of the whole table"]),
])
def test_q5_planted_mistakes(fn, fragments):
    assert_incorrect(ex.q5.evaluate(fn), *fragments)


def test_q5_none_when_nothing_fits_and_other_slips():
    never_none = lambda rows, p, t: pick(rows, p, t) or rows[0]["name"]  # noqa: E731
    assert_incorrect(ex.q5.evaluate(never_none), "no model fits both budgets here: return None")
    forgot_return = lambda rows, p, t: None  # noqa: E731
    assert_incorrect(ex.q5.evaluate(forgot_return), "forget the `return`")
    row = lambda rows, p, t: next(r for r in rows if r["name"] == pick(rows, p, t))  # noqa: E731
    assert_incorrect(ex.q5.evaluate(row), "return its name")
