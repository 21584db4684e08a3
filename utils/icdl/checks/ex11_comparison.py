"""Checks for the exercise notebook ``11_comparison``: reading and measuring the cost of architectures.

    from icdl.checks import ex11_comparison as ex
    ex.q1.check(pareto_front)          # the efficient frontier over several costs, with ties (FunctionQuestion)
    ex.q2.check(activation_bytes)      # what autograd keeps for backward in a small network, by formula;
                                       # checked against a saved_tensors_hooks measurement (ValueQuestion)
    ex.q3.check(choice)                # equal multiply-adds: which network trains faster on a CPU (ChoiceQuestion)
    ex.q4.check(flops_from_meta, counter_ratio)  # torchvision's "GFLOPS" (multiply-adds) as FLOPs, against
                                                 # the course's counter (ValueQuestion)
    ex.q5.check(pick_model)            # the most accurate model under a parameter and a latency budget
                                       # (FunctionQuestion)
"""

from __future__ import annotations

import functools

from .core import Incorrect, describe, register
from .kinds import ChoiceQuestion, FunctionQuestion, ValueQuestion

NOTEBOOK = "11_comparison"


# --------------------------------------------------------------------------
# q1: the efficient (Pareto) frontier over one or more costs
# --------------------------------------------------------------------------
def _dominates(a: dict, b: dict, costs) -> bool:
    """``a`` is at least as good as ``b`` on every axis (accuracy up, each cost down) and better on one."""
    no_worse = a["top1"] >= b["top1"] and all(a[c] <= b[c] for c in costs)
    better = a["top1"] > b["top1"] or any(a[c] < b[c] for c in costs)
    return no_worse and better


def _front(rows, costs, dominates) -> list:
    return sorted(r["name"] for r in rows if not any(dominates(s, r, costs) for s in rows if s is not r))


def _one_axis(a, b, costs):  # beaten on any single axis counts as beaten
    return a["top1"] > b["top1"] or any(a[c] < b[c] for c in costs)


def _strict_everywhere(a, b, costs):  # better on every axis at once: ties never dominate
    return a["top1"] > b["top1"] and all(a[c] < b[c] for c in costs)


def _no_worse(a, b, costs):  # no worse on every axis, without "better on one": equal rows remove each other
    return a["top1"] >= b["top1"] and all(a[c] <= b[c] for c in costs)


def _costs_up(a, b, costs):  # a higher cost taken as better
    return _dominates({**a, **{c: -a[c] for c in costs}}, {**b, **{c: -b[c] for c in costs}}, costs)


def _first_cost_only(a, b, costs):
    return _dominates(a, b, costs[:1])


def _row(name, top1, params, macs):
    return {"name": name, "top1": top1, "params": params, "macs": macs}


# Small tables, simplest first; each one has something that tells a slip apart.
_PLAIN = [_row("a", 70.0, 5, 300), _row("b", 75.0, 10, 600), _row("c", 72.0, 12, 900), _row("d", 78.0, 30, 2000)]
_TIED_COST = [_row("a", 70.0, 5, 300), _row("b", 73.0, 5, 300), _row("c", 76.0, 9, 700)]
_DUPLICATE = [_row("a", 70.0, 5, 300), _row("a2", 70.0, 5, 300), _row("b", 74.0, 8, 600)]
_TWO_COSTS = [_row("a", 70.0, 5, 600), _row("b", 70.0, 9, 300), _row("c", 69.0, 9, 700), _row("d", 75.0, 20, 900)]


class ParetoFront(FunctionQuestion):
    title = "the efficient frontier of a table of models, over one or more costs"
    hints = [
        "A model is off the frontier when some *other* model is at least as accurate and at most as costly on "
        "every cost you were given, and strictly better on at least one of them.",
        "Being beaten on one axis only is not enough: a cheaper but less accurate model is a different trade-off, "
        "not a better model.",
        "Skeleton: `def dominates(a, b): no_worse = ____ and all(____ for c in costs); better = ____ or any(____ "
        "for c in costs); return no_worse and better`, then keep the rows that no other row dominates.",
    ]
    function = "pareto_front"
    result = "value"
    cases = [
        ((_PLAIN, ("macs",)), {}),
        ((_TIED_COST, ("macs",)), {}),
        ((_DUPLICATE, ("macs",)), {}),
        ((_TWO_COSTS, ("params", "macs")), {}),
        ((_TWO_COSTS, ("macs",)), {}),
    ]
    mistakes = [
        ("removed every model that another beats on a single axis: a model is dominated only when another is no "
         "worse on *every* axis (accuracy and each cost) and better on one",
         lambda rows, costs: _front(rows, costs, _one_axis)),
        ("kept a model that another equals on one axis and beats on the other: with equal cost and higher "
         "accuracy the other model dominates it (no worse everywhere, better somewhere)",
         lambda rows, costs: _front(rows, costs, _strict_everywhere)),
        ("let two identical rows remove each other: 'dominates' needs strict improvement on at least one axis, "
         "so equal models both stay on the frontier",
         lambda rows, costs: _front(rows, costs, _no_worse)),
        ("treated a higher cost as better: parameters and multiply-adds are costs, lower is better",
         lambda rows, costs: _front(rows, costs, _costs_up)),
        ("compared only the first cost in `costs`: a model must be no worse on every cost to dominate",
         lambda rows, costs: _front(rows, costs, _first_cost_only)),
    ]
    success = ("Correct! On a single cost the frontier is a staircase; with two costs a model survives if no other "
               "model is better on the whole trade-off, so more models survive.")

    @staticmethod
    def reference(rows, costs):
        return _front(rows, costs, _dominates)

    def normalise(self, got, label: str):
        if isinstance(got, (str, bytes)) or not isinstance(got, (list, tuple, set, frozenset)):
            raise Incorrect(f"{label} should return a list of model names; it returned {describe(got)}.")
        if not all(isinstance(name, str) for name in got):
            raise Incorrect(f"{label} should return the models' names (strings, the rows' 'name'), not "
                            f"{describe(list(got), 80)}.")
        return sorted(got)


# --------------------------------------------------------------------------
# q2: the activation memory of a small network, by formula
# --------------------------------------------------------------------------
BATCH = 8


def small_net():
    """The network of question 2: (N, 3, 32, 32) -> (N, 10)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 16 * 16, 10),
    )


def saved_bytes(model, x) -> int:
    """Bytes of the tensors autograd saves for backward in one forward pass of ``model`` on ``x``.

    Each storage is counted once (a view of a saved tensor is not new memory); parameters and buffers are left
    out, because they exist whether or not the model trains.
    """
    import torch

    model.train()
    own = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    seen = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in own:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(x)
    return sum(seen.values())


_FLOAT = 4
_IMAGE = BATCH * 3 * 32 * 32 * _FLOAT      # conv1 keeps its input, the images
_CONV1 = BATCH * 8 * 32 * 32 * _FLOAT      # batch norm keeps its input (conv1's output)
_RELU1 = BATCH * 8 * 32 * 32 * _FLOAT      # ReLU keeps its output, which conv2 keeps as its input: one tensor
_RELU2 = BATCH * 16 * 16 * 16 * _FLOAT     # the same for the second ReLU and the linear layer (after a view)
_LOGITS = BATCH * 10 * _FLOAT


class ActivationBytes(ValueQuestion):
    title = "the memory a small network keeps for the backward pass"
    hints = [
        "Go layer by layer and ask what each one needs for its backward pass: a convolution or a linear layer its "
        "input (for the weight's gradient), batch norm its input, a ReLU its output (the gradient passes where it "
        "is positive).",
        "A tensor kept by two operations is stored once: the ReLU's output *is* the next convolution's input. "
        "Flatten is a view and keeps nothing new. The weights are not activations.",
        "Multiply each tensor's elements (batch x channels x height x width) by 4 bytes (float32) and add up. "
        "Per-channel statistics of batch norm are a few dozen bytes: leave them out.",
    ]
    names = ("activation_bytes",)
    integer = False
    rel = 0.01
    wrong = ("list the tensors kept (the input image, the first convolution's output, each ReLU's output), each "
             "once, as batch x channels x height x width x 4 bytes")
    mistakes = {"activation_bytes": [
        (lambda e: e - _IMAGE, "the first convolution keeps its input, the images themselves, to compute its "
                               "weight's gradient"),
        (lambda e: e + _RELU1 + _RELU2, "a ReLU's output and the next layer's input are one tensor, stored once: "
                                        "you counted them twice"),
        (lambda e: e / _FLOAT, "that is the number of elements; each float32 takes 4 bytes"),
        (lambda e: e / BATCH, "that is for one image; the batch has 8"),
        (lambda e: _CONV1 + _CONV1 + _RELU1 + _RELU2 + _RELU2 + _LOGITS,
         "you added up every layer's output; what counts is what the backward pass needs: the convolutions' inputs "
         "(the images too), batch norm's input and the ReLUs' outputs, and the logits are not kept"),
        (lambda e: e - _CONV1, "batch norm keeps its input (the first convolution's output) to compute its "
                               "gradients: the ReLU keeps a different tensor, its own output"),
    ]}
    success = ("Correct! Four tensors: the images, the first convolution's output, and the two ReLU outputs. The "
               "parameters are far smaller than the activations here, and the activations grow with the batch.")

    def expected(self):
        import torch

        torch.manual_seed(0)
        return (float(saved_bytes(small_net(), torch.randn(BATCH, 3, 32, 32))),)


# --------------------------------------------------------------------------
# q3: equal multiply-adds, different speed
# --------------------------------------------------------------------------
PLAIN_WIDTH, SEPARABLE_WIDTH, BLOCKS = 32, 92, 4


def plain_net():
    """3x3 convolutions, 32 channels at 32x32, four blocks: (N, 3, 32, 32) -> (N, 10)."""
    from torch import nn

    c = PLAIN_WIDTH
    layers = [nn.Conv2d(3, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    for _ in range(BLOCKS):
        layers += [nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))


def separable_net():
    """Depthwise separable blocks (3x3 depthwise, then 1x1), 92 channels at 32x32: about the same multiply-adds."""
    from torch import nn

    c = SEPARABLE_WIDTH
    layers = [nn.Conv2d(3, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    for _ in range(BLOCKS):
        layers += [nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                   nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))


class EqualMacsSpeed(ChoiceQuestion):
    title = "two networks with the same multiply-adds: which one trains faster on a CPU?"
    hints = [
        "Count what each layer must read and write, not only what it multiplies: a 3x3 convolution with C inputs "
        "does 9C multiply-adds per output value; a depthwise 3x3 convolution does 9.",
        "Compare the widths: to spend the same multiply-adds, the separable network is almost three times as "
        "wide, and each of its blocks is two convolutions, each with its batch norm and ReLU.",
    ]
    options = {
        "a": "They train at about the same speed: the time is set by the multiply-adds, and those are equal.",
        "b": "The plain network: each value it loads feeds many multiply-adds, while the separable network's "
             "depthwise convolutions do only 9 per value and it moves wider tensors through twice as many layers.",
        "c": "The separable network: it has far fewer parameters, so there is less to compute.",
        "d": "The separable network: depthwise convolutions are what mobile networks are built from, because they "
             "are the fastest kind of convolution.",
    }
    answer = "b"
    why = {
        "a": "multiply-adds count arithmetic, not the reading and writing of memory. The separable network's "
             "tensors are about three times wider and pass through twice as many layers (and batch norms and "
             "ReLUs), so it moves far more bytes for the same arithmetic; on a CPU that traffic, not the "
             "arithmetic, sets the time of a depthwise layer.",
        "c": "the two networks have about the same number of parameters (print them: the widths were chosen so), "
             "and the parameters are not what takes the time: the same weights are applied at every position.",
        "d": "depthwise convolutions are cheap in multiply-adds per output, which is why mobile networks use them; "
             "per multiply-add they are among the slowest operations, because each value read takes part in only "
             "9 of them. Mobile networks accept that to cut the total (Howard et al., 2017).",
    }
    success = ("Correct! Multiply-adds are a proxy for time, and a poor one across kinds of layer: the measurement "
               "below shows how many multiply-adds per second each network reaches.")


# --------------------------------------------------------------------------
# q4: torchvision's "GFLOPS" metadata counts multiply-adds
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _resnet50_counts() -> tuple[float, int]:
    import torchvision

    from ..summary import count_flops
    from ..models.resnet import resnet50

    meta = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta
    return float(meta["_ops"]), count_flops(resnet50(), (1, 3, 224, 224))


class TorchvisionFlops(ValueQuestion):
    title = "torchvision's GFLOPS metadata, as FLOPs, against the course's counter"
    hints = [
        "torchvision's `meta['_ops']` is in billions (G), and it counts each multiply-add once.",
        "`icdl.summary.count_flops` counts a multiply-add as two FLOPs (one multiply, one add).",
        "`counter_ratio` is what the course's counter finds for the course's ResNet-50 at 224x224, divided by your "
        "`flops_from_meta`.",
    ]
    names = ("flops_from_meta", "counter_ratio")
    integer = False
    rel = 0.003  # the metadata keeps three decimals
    wrong = "work from `meta['_ops']` (billions of multiply-adds) and from `count_flops(model, (1, 3, 224, 224))`"
    mistakes = {
        "flops_from_meta": [
            (lambda f, r: f / 2, "that is the number of multiply-adds: torchvision's figure counts each "
                                 "multiply-add once, and a multiply-add is two FLOPs"),
            (lambda f, r: f / 4, "you halved the multiply-adds: a multiply-add is two FLOPs, so double them"),
            (lambda f, r: f / 2e9, "that is the metadata's number itself, in billions of multiply-adds; give "
                                   "the FLOPs as a plain number"),
            (lambda f, r: f / 1e9, "that is in GFLOPs; give the FLOPs as a plain number"),
        ],
        "counter_ratio": [
            (lambda f, r: 2 * r, "you compared the counter's FLOPs with the multiply-adds: compare FLOPs "
                                 "with FLOPs (your `flops_from_meta`)"),
            (lambda f, r: r / 2, "you compared the multiply-adds (FLOPs / 2) with FLOPs"),
        ],
    }
    success = ("Correct! torchvision's 'GFLOPS' are billions of multiply-adds; the course's counter agrees with "
               "them once both count the same thing.")

    def expected(self):
        ops, flops = _resnet50_counts()
        return ops * 2e9, flops / (ops * 2e9)


# --------------------------------------------------------------------------
# q5: picking a model under two budgets
# --------------------------------------------------------------------------
def _fits(r, max_params, max_ms):
    return r["params"] <= max_params and r["ms"] <= max_ms


def _best(rows):
    return max(rows, key=lambda r: r["top1"])["name"] if rows else None


def _pick(rows, max_params, max_ms):
    return _best([r for r in rows if _fits(r, max_params, max_ms)])


def _m(name, params, ms, top1):
    return {"name": name, "params": params, "ms": ms, "top1": top1}


# A made-up table: parameters, milliseconds per image on some device, accuracy (%).
TABLE = [
    _m("tiny", 1_500_000, 6.0, 61.0),
    _m("mobile", 3_500_000, 4.0, 72.0),
    _m("small", 5_300_000, 15.0, 77.0),
    _m("wide", 9_000_000, 8.0, 74.0),
    _m("medium", 25_600_000, 30.0, 80.0),
    _m("large", 88_000_000, 95.0, 84.0),
]


_NOTHING = object()


class PickModel(FunctionQuestion):
    title = "the most accurate model within a parameter budget and a latency budget"
    hints = [
        "A model fits when *both* its parameters and its latency are within the budgets; a model exactly at a "
        "budget fits.",
        "Among the models that fit, return the name of the most accurate; if none fits, return None.",
    ]
    function = "pick_model"
    result = "value"
    cases = [
        (TABLE, 6_000_000, 20.0),
        (TABLE, 10_000_000, 10.0),
        (TABLE, 30_000_000, 30.0),
        (TABLE, 5_300_000, 15.0),
        (TABLE, 1_000_000, 100.0),
    ]
    mistakes = [
        ("ignored the latency budget: a model must fit both budgets",
         lambda rows, p, t: _best([r for r in rows if r["params"] <= p])),
        ("ignored the parameter budget: a model must fit both budgets",
         lambda rows, p, t: _best([r for r in rows if r["ms"] <= t])),
        ("left out the models exactly at a budget: a budget is a limit that may be reached (<=, not <)",
         lambda rows, p, t: _best([r for r in rows if r["params"] < p and r["ms"] < t])),
        ("picked the fastest model that fits: among those that fit, the task asks for the most accurate",
         lambda rows, p, t: min((r for r in rows if _fits(r, p, t)), key=lambda r: r["ms"])["name"]),
        ("picked the smallest model that fits: among those that fit, the task asks for the most accurate",
         lambda rows, p, t: min((r for r in rows if _fits(r, p, t)), key=lambda r: r["params"])["name"]),
        ("returned the most accurate model of the whole table: it must fit the budgets",
         lambda rows, p, t: _best(rows)),
    ]
    success = "Correct! Filter by every constraint first, then optimise what is left."

    @staticmethod
    def reference(rows, max_params, max_ms):
        return _pick(rows, max_params, max_ms)

    def verify(self, fn):
        # None is a real answer here ("nothing fits"), so the learner's None travels as a marker past the rule
        # that takes a None result for a forgotten `return`; `normalise` turns it back into None.
        def answer(*args, **kwargs):
            result = fn(*args, **kwargs)
            return _NOTHING if result is None else result

        answer.__name__ = getattr(fn, "__name__", "pick_model")
        return super().verify(answer)

    def normalise(self, got, label: str):
        if got is _NOTHING:
            return None
        if isinstance(got, dict) and "name" in got:
            raise Incorrect(f"{label} returned a whole row ({describe(got, 80)}); return its name, `row['name']`.")
        if got is not None and not isinstance(got, str):
            raise Incorrect(f"{label} should return a model's name (a string) or None; it returned {describe(got)}.")
        return got

    def explain(self, got, expected, args, kwargs):
        if expected is None:
            return "no model fits both budgets here: return None."
        if got is None:
            return "None means that no model fits, but some do here. (Did you forget the `return`?)"
        return None


q1 = ParetoFront()
q2 = ActivationBytes()
q3 = EqualMacsSpeed()
q4 = TorchvisionFlops()
q5 = PickModel()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5)

__all__ = ["q1", "q2", "q3", "q4", "q5", "BATCH", "TABLE", "small_net", "plain_net", "separable_net",
           "saved_bytes"]
