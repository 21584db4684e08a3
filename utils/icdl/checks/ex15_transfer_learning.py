"""Checks for the exercise notebook ``15_transfer_learning``: freezing, parameter groups, caching features.

    from icdl.checks import ex15_transfer_learning as ex
    ex.q1.check(head_params, total_params, head_share)   # what a linear probe on Lite0 trains (ValueQuestion)
    ex.q2.check(freeze_for_probe)       # debug a freezing function whose batch norms still drift in train mode
    ex.q3.check(layerwise_groups)       # parameter groups with layer-wise learning-rate decay, for any model
    ex.q4.check(answer)                 # predict: with 10 images per class, which set-up comes last
    ex.q5.check(answer)                 # why features may be cached for a linear probe, not with augmentation
"""

from __future__ import annotations

import copy
import functools
import math

from .core import Incorrect, Question, call, describe, randomize_bn_stats, register
from .kinds import ChoiceQuestion, ValueQuestion

NOTEBOOK = "15_transfer_learning"
NUM_CLASSES = 10


# --------------------------------------------------------------------------
# q1: what a linear probe trains
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _lite0_counts() -> dict:
    """Parameter counts of EfficientNet-Lite0 (built on the meta device: shapes only)."""
    import torch

    from ..models.efficientnet import efficientnet_lite0

    with torch.device("meta"):
        net = efficientnet_lite0(num_classes=NUM_CLASSES)
        imagenet = efficientnet_lite0()
    total = sum(p.numel() for p in net.parameters())
    head = sum(p.numel() for p in net.classifier.parameters())
    buffers = sum(b.numel() for b in net.buffers())
    return {"head": head, "total": total, "with_buffers": total + buffers,
            "imagenet_total": sum(p.numel() for p in imagenet.parameters()), "features": net.num_features}


class TrainableParameters(ValueQuestion):
    title = "what a linear probe on EfficientNet-Lite0 trains"
    hints = [
        "The new head is one nn.Linear from the pooled features (`num_features` of them) to the 10 classes: "
        "a weight matrix and a bias.",
        "The total counts every parameter of the network with its 10-class head: `count_params(net)` on "
        "`efficientnet.efficientnet_lite0(num_classes=10)`. Batch norm's running mean and variance are buffers, "
        "not parameters. The share is a fraction between 0 and 1.",
    ]
    names = ("head_params", "total_params", "head_share")
    rel = 1e-3
    mistakes = {
        "head_params": [
            (lambda h, t, s: h - NUM_CLASSES, "the head has a bias too, one per class"),
            (lambda h, t, s: _lite0_counts()["features"] * 1000 + 1000,
             "that is ImageNet's 1000-class classifier; the new head has 10 outputs"),
        ],
        "total_params": [
            (lambda h, t, s: _lite0_counts()["with_buffers"],
             "that counts the batch norms' running statistics too (`state_dict` holds buffers); they are not "
             "parameters and never train"),
            (lambda h, t, s: _lite0_counts()["imagenet_total"],
             "that is the network with ImageNet's 1000-class classifier; count it with the 10-class head"),
            (lambda h, t, s: t - h, "that is the frozen part only; the total includes the head"),
        ],
        "head_share": [
            (lambda h, t, s: 100 * s, "give a fraction between 0 and 1, not a percentage"),
            (lambda h, t, s: h / (t - h), "divide by the whole network's parameters, not by the frozen part's"),
        ],
    }
    wrong = "count the head's weight and bias, and every parameter of the 10-class network"
    success = ("Correct! A linear probe trains well under 1% of the network: that is why it needs few images, "
               "and why its features can be computed once.")

    def expected(self):
        c = _lite0_counts()
        return c["head"], c["total"], c["head"] / c["total"]


# --------------------------------------------------------------------------
# q2: debug a freezing function
# --------------------------------------------------------------------------
# No stochastic depth: in training mode a frozen backbone must then compute exactly its eval-mode features.
SMALL = dict(width_mult=0.25, depth_mult=0.4, num_classes=4, stochastic_depth_prob=0.0)


def _small_model():
    import torch

    from ..models.efficientnet import EfficientNet

    torch.manual_seed(0)
    model = EfficientNet(**SMALL)
    randomize_bn_stats(model)
    return model.eval()


def _bn_modules(model):
    from torch.nn.modules.batchnorm import _BatchNorm

    return [(n, m) for n, m in model.named_modules() if isinstance(m, _BatchNorm)]


class DebugFreeze(Question):
    title = "debug a freezing function: the frozen backbone must not change in training mode"
    hints = [
        "Run the given function, then a few forward passes in training mode, and compare the backbone's "
        "`state_dict` before and after: which tensors changed, and are they parameters?",
        "Batch norm's running mean and variance are buffers: `requires_grad` does not protect them, and in "
        "training mode batch norm also normalises with each batch's own statistics. Its layers must stay in eval "
        "mode, even after `model.train()`, which `train.fit` calls every epoch.",
        "The chapter's `transfer.keep_bn_eval(model)` makes `model.train()` leave the batch norms in eval mode.",
    ]

    def verify(self, fn):
        import torch
        import torch.nn.functional as F

        if not callable(fn):
            raise Incorrect(f"Pass your function itself (`freeze_for_probe`); got {describe(fn)}.")
        model = _small_model()
        reference = copy.deepcopy(model)
        gen = torch.Generator().manual_seed(0)
        x_test = torch.randn(4, 3, 32, 32, generator=gen)
        with torch.no_grad():
            want = reference.forward_features(x_test)
        model.train()  # as a freshly built network is
        out = call(fn, model, doing="`freeze_for_probe(model)`", may_return_none=True)
        if out is not None and out is not model:
            raise Incorrect(f"`freeze_for_probe(model)` should freeze `model` itself (and may return it); it "
                            f"returned {describe(out)}, another object.")
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        if not trainable:
            raise Incorrect("No parameter has requires_grad=True: you froze the head too, so nothing would train. "
                            "Only the `classifier` should train.")
        backbone = [n for n in trainable if not n.startswith("classifier.")]
        if backbone:
            raise Incorrect(f"{len(backbone)} backbone parameters still have requires_grad=True, such as "
                            f"`{backbone[0]}`: the optimizer would change them. Only the `classifier` trains.")
        bns = _bn_modules(model)
        eval_after_freeze = bool(bns) and all(not m.training for _, m in bns)
        model.train()  # what train.fit does at the start of every epoch
        bns = _bn_modules(model)
        training_bns = [n for n, m in bns if m.training]
        if training_bns:
            if eval_after_freeze:
                raise Incorrect(f"Your function puts the batch norms in eval mode, but `model.train()`, which "
                                f"`train.fit` calls at the start of every epoch, switches them back "
                                f"(`{training_bns[0]}` is training again). They must stay in eval mode after "
                                f"`model.train()`.")
            if all(m.momentum == 0 for n, m in bns if n in training_bns):
                raise Incorrect("With momentum 0 the running statistics stay, but in training mode batch norm still "
                                "normalises every batch with the batch's own mean and variance: the features of an "
                                "image would depend on its batch. The batch norms must be in eval mode.")
            raise Incorrect(f"After `model.train()` the batch norms are in training mode (`{training_bns[0]}`): their "
                            f"running statistics change in every forward pass, whatever requires_grad says, and "
                            f"each batch is normalised with its own statistics (the given bug).")
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=0.5)
        head_before = [p.detach().clone() for p in params]
        for _ in range(3):
            x = torch.randn(8, 3, 32, 32, generator=gen) * 2 + 0.5
            y = torch.randint(0, SMALL["num_classes"], (8,), generator=gen)
            loss = F.cross_entropy(call(model, x, doing="a forward pass of the frozen model"), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        before, after = reference.state_dict(), model.state_dict()
        changed = [k for k in before if k in after and not k.startswith("classifier.")
                   and not torch.equal(before[k], after[k])]
        if changed:
            raise Incorrect(f"After three training steps the backbone changed: `{changed[0]}` (and "
                            f"{len(changed) - 1} more). A frozen backbone must stay exactly as it was.")
        with torch.no_grad():
            got = model.forward_features(x_test)  # still in training mode
        if not torch.allclose(got, want, atol=1e-5):
            raise Incorrect("In training mode your frozen backbone computes other features than the original "
                            "network in eval mode: every batch-norm layer must normalise with its stored "
                            "statistics.")
        if all(torch.equal(a, p) for a, p in zip(head_before, params)):
            raise Incorrect("The head did not change in three training steps: keep `classifier` trainable.")
        return ("Correct! requires_grad=False protects the weights, eval mode protects batch norm's buffers; a "
                "frozen backbone needs both, and then its features can be cached.")


# --------------------------------------------------------------------------
# q3: parameter groups with layer-wise learning-rate decay
# --------------------------------------------------------------------------
def _case_models():
    """Small models with every trap: parameterless children, frozen children, more than ten children."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    convnet = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    deep = nn.Sequential(*[nn.Linear(3, 3) for _ in range(12)])
    frozen = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3), nn.Linear(3, 2))
    for p in frozen[1].parameters():
        p.requires_grad_(False)
    return [("a small CNN (conv, BN, ReLU, conv, ReLU, pool, flatten, linear)", convnet, 0.01, 0.5),
            ("12 Linear layers in a Sequential", deep, 1e-3, 0.8),
            ("5 layers whose second Linear is frozen", frozen, 0.1, 0.25)]


def _reference_lrs(model, base_lr, decay, *, count_all=False, count_frozen=False, reverse=False, shift=0,
                   per_tensor=False):
    """{parameter name: lr} of the right answer, or of a listed slip."""
    children = []
    for name, child in model.named_children():
        params = [(f"{name}.{n}", p) for n, p in child.named_parameters()]
        if not count_frozen:
            params = [(n, p) for n, p in params if p.requires_grad]
        if params or count_all:
            children.append(params)
    n = len(children)
    lrs, t = {}, sum(len(c) for c in children)
    k = 0
    for i, params in enumerate(children):
        for name, p in params:
            depth = (t - 1 - k) if per_tensor else (i if reverse else n - 1 - i) + shift
            k += 1
            if p.requires_grad:
                lrs[name] = base_lr * decay ** depth
    return lrs


class LayerwiseGroups(Question):
    title = "parameter groups with layer-wise learning-rate decay, for any model"
    hints = [
        "Walk `model.named_children()` in order; keep only the children that have trainable parameters "
        "(`p.requires_grad`). If there are n of them, the i-th (from 0) gets `base_lr * decay ** (n - 1 - i)`.",
        "Build each group from `child.parameters()`, not by matching names with `startswith`: in a Sequential of "
        "12 layers, `'10.weight'.startswith('1')` is True.",
        "Skeleton: `kept = [[p for p in c.parameters() if p.requires_grad] for _, c in model.named_children()]`; "
        "`kept = [ps for ps in kept if ps]`; then one `{'params': ps, 'lr': ...}` per entry.",
    ]
    slips = [
        ("counted the children without parameters (ReLU, pooling, flatten) as steps of the decay",
         dict(count_all=True)),
        ("counted the frozen layers as steps of the decay; only trainable layers count", dict(count_frozen=True)),
        ("gave the largest learning rate to the first layer; the last layer (the new head) gets base_lr and the "
         "earlier ones less", dict(reverse=True)),
        ("gave the last layer base_lr * decay: the last group should get base_lr itself", dict(shift=1)),
        ("decayed the learning rate per parameter tensor; a layer's weight and bias share one learning rate",
         dict(per_tensor=True)),
    ]

    def verify(self, fn):
        for text, model, base_lr, decay in _case_models():
            label = f"`layerwise_groups(model, {base_lr}, {decay})` for {text}"
            groups = call(fn, model, base_lr, decay, doing=label)
            got = self._lrs(groups, model, label)
            want = _reference_lrs(model, base_lr, decay)
            if set(got) != set(want):
                missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
                if extra:
                    raise Incorrect(f"{label}: `{extra[0]}` is frozen (requires_grad=False) but in a group; leave "
                                    f"frozen parameters out.")
                raise Incorrect(f"{label}: `{missing[0]}` is in no group, so the optimizer would never update it.")
            if all(math.isclose(got[k], want[k], rel_tol=1e-6) for k in want):
                continue
            for message, switches in self.slips:
                slip = _reference_lrs(model, base_lr, decay, **switches)
                if set(slip) == set(want) and any(not math.isclose(slip[k], want[k], rel_tol=1e-6) for k in want) \
                        and all(math.isclose(got[k], slip[k], rel_tol=1e-6) for k in want):
                    raise Incorrect(f"{label}: it looks like you {message}.")
            name = next(k for k in want if not math.isclose(got[k], want[k], rel_tol=1e-6))
            raise Incorrect(f"{label}: `{name}` gets lr {got[name]:.6g}; work it out from its layer's position "
                            f"among the layers that have trainable parameters.")
        return ("Correct! One group per trainable layer, the head at base_lr and every earlier layer a factor "
                "decay slower: discriminative fine-tuning for any model.")

    @staticmethod
    def _lrs(groups, model, label) -> dict:
        import torch

        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) for g in groups):
            raise Incorrect(f"{label} should return a list of dicts, one per group, like {{'params': [...], "
                            f"'lr': 0.01}}; it returned {describe(groups)}.")
        names = {id(p): n for n, p in model.named_parameters()}
        lrs = {}
        for j, g in enumerate(groups):
            if "params" not in g or "lr" not in g:
                raise Incorrect(f"{label}: group {j} has the keys {sorted(map(str, g))}; every group needs "
                                f"'params' and 'lr'.")
            params = list(g["params"]) if not isinstance(g["params"], torch.Tensor) else [g["params"]]
            if not params:
                raise Incorrect(f"{label}: group {j} has no parameters; leave out layers that have none.")
            lr = g["lr"]
            if isinstance(lr, bool) or not isinstance(lr, (int, float)):
                raise Incorrect(f"{label}: the lr of group {j} should be a number; it is {describe(lr)}.")
            for p in params:
                if id(p) not in names:
                    raise Incorrect(f"{label}: group {j} holds {describe(p)}, which is not a parameter of the "
                                    f"model it was given.")
                if names[id(p)] in lrs:
                    raise Incorrect(f"{label}: `{names[id(p)]}` is in two groups (torch.optim raises for that). "
                                    f"Did a name prefix such as '1' also match '10.weight'?")
                lrs[names[id(p)]] = float(lr)
        return lrs


# --------------------------------------------------------------------------
# q4 and q5: predictions and reasons
# --------------------------------------------------------------------------
class TenPerClass(ChoiceQuestion):
    title = "predict: with 10 images per class, which set-up comes last?"
    hints = [
        "Count what each set-up must learn from 100 images: a linear head on fixed features, adjustments to "
        "pretrained features, or every feature from random weights.",
        "How many steps does a network of millions of random weights get from 100 images in a short run?",
    ]
    options = {
        "a": "feature extraction: a linear head on frozen pretrained features",
        "b": "fine-tuning every layer of the pretrained network, with parameter groups",
        "c": "training the same architecture from scratch",
        "d": "none: with so few images, all three end up about equal",
    }
    answer = "c"
    why = {
        "a": "the probe trains about 13,000 parameters on features learnt from 1.28 million images; with 100 "
             "images it is the safest of the three, not the worst.",
        "b": "fine-tuning can overfit 100 images, but it starts from the pretrained features and moves them "
             "with small learning rates: it stays close to the probe, far from a random start.",
        "d": "the set-ups differ in what they must learn from the 100 images; from random weights the network has "
             "to learn every feature from them, which the pretrained ones already have.",
    }
    success = ("Correct! From scratch, every feature must come from 100 images; both pretrained set-ups bring "
               "features learnt from ImageNet. The chapter measured the same at more images per class.")


class CachingFeatures(ChoiceQuestion):
    title = "why a linear probe may train on cached features, but not with augmentation"
    hints = [
        "Caching is exact when the features of an image are the same in every epoch. What could make them differ?",
        "Think of a random crop, and of batch norm in training mode.",
    ]
    options = {
        "a": "Caching saves memory: stored features are smaller than images, and with augmentation memory is "
             "needed for the augmented copies.",
        "b": "With the backbone frozen and batch norm in eval mode, an image's features are a fixed function of "
             "the image: computing them once gives what every epoch would. Augmentation shows a different crop "
             "or flip each epoch, with different features.",
        "c": "The cache is only valid for the training images; augmented images are test images.",
        "d": "Augmentation changes the labels, so cached features would have the wrong labels.",
        "e": "A linear head cannot learn from augmented features because they are not linearly separable.",
    }
    answer = "b"
    why = {
        "a": "the saving is time, not memory: the backbone's forward pass is the cost; and the question is whether "
             "the cached features are *right*, which is about what they depend on.",
        "c": "augmentation is applied to training images; the test images are never augmented.",
        "d": "a crop or a flip of a shirt is still a shirt: the label stays, the features change.",
        "e": "nothing stops a linear head from training on features of augmented images; the cache just would not "
             "contain them, since each epoch needs new ones.",
    }
    success = ("Correct! A frozen backbone in eval mode is a fixed function, so its outputs can be stored; a random "
               "augmentation (or batch statistics) makes every pass different.")


q1 = TrainableParameters()
q2 = DebugFreeze()
q3 = LayerwiseGroups()
q4 = TenPerClass()
q5 = CachingFeatures()
QUESTIONS = register(NOTEBOOK, q1=q1, q2=q2, q3=q3, q4=q4, q5=q5)

__all__ = ["SMALL", "q1", "q2", "q3", "q4", "q5"]
