"""One readable training loop: ``fit``, ``evaluate``, ``predict``.

This is the same loop a chapter writes by hand in about thirty lines, packaged
with what a real run needs:

* tqdm progress bars (``TQDM_DISABLE=1`` hides them) and one printed line per
  epoch, so a static log reads well without bars;
* mixed precision on CUDA (bf16 on GPUs of compute capability 8.0 or newer,
  else fp16 with a ``GradScaler``, as on a Colab T4), off on CPU and MPS;
* a learning-rate scheduler stepped per batch or per epoch, gradient-norm
  clipping, an optional exponential moving average (EMA) of the weights;
* checkpoints of ``state_dict`` s written atomically every epoch, so a Colab
  session that disconnects resumes where it stopped (only the same run resumes:
  a checkpoint records the model, loss, optimizer, scheduler and data it was made with);
* model selection on the validation set: the weights of the best epoch are
  restored at the end (never choose with the test set);
* two hooks instead of one flag per trick: ``batch_transform`` changes each
  training batch before the forward pass (mixup, CutMix), ``output_loss`` turns
  a model's training output into logits and a loss (GoogLeNet's auxiliary heads).

Typical use::

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    sched = train.warmup_cosine(opt, warmup_steps=len(train_dl), total_steps=epochs * len(train_dl))
    history = train.fit(model, train_dl, val_dl, epochs=epochs, optimizer=opt, scheduler=sched,
                        checkpoint="checkpoints/resnet18.pt")
    train.evaluate(model, test_dl)      # {"loss": ..., "acc": ...}, once, at the very end

A loader is any iterable of ``(x, y)`` batches: the course's ``DeviceLoader``
or a ``torch.utils.data.DataLoader``. ``x`` is ``(N, C, H, W)``, ``y`` is
``(N,)`` class indices (or ``(N, K)`` soft targets, e.g. for mixup).

Measuring a trained model beyond loss and accuracy (per-class scores,
calibration, test-time augmentation, ensembles) is the job of
:mod:`icdl.evaluation`, which works on the logits of a whole loader.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import math
import os
import re
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

CHECKPOINT_FORMAT = 3  # bump when the checkpoint layout changes


# ==========================================================================
# History: what happened in each epoch
# ==========================================================================
@dataclass
class History:
    """One dict per epoch, with ``epoch`` (from 1), ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc`` (``None`` without a validation loader), ``lr``
    (of the epoch's last step) and ``seconds``. Accuracies are fractions (0..1).

    ``history["val_acc"]`` is the list of one column; ``best_epoch`` and
    ``best_val_acc`` name the epoch with the highest validation accuracy.
    """

    epochs: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_acc: float | None = None

    def __getitem__(self, key: str) -> list:
        return [row[key] for row in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    def to_dict(self) -> dict:
        """Plain Python containers only, so ``torch.load(weights_only=True)`` reads it."""
        return {"epochs": [dict(row) for row in self.epochs],
                "best_epoch": self.best_epoch, "best_val_acc": self.best_val_acc}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls([dict(row) for row in d["epochs"]], d["best_epoch"], d["best_val_acc"])


# ==========================================================================
# Learning-rate schedule
# ==========================================================================
def warmup_cosine(optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0):
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``min_lr_ratio`` x the base lr.

    Step it once per batch (``fit(..., scheduler=s, scheduler_step="batch")``).
    Step ``s`` (counting from 0) trains with ``base_lr * factor(s)``, where
    ``factor`` rises as ``(s + 1) / warmup_steps`` to 1 at step ``warmup_steps - 1``
    (so the first step already learns), then follows half a cosine from 1 at step
    ``warmup_steps`` to ``min_lr_ratio`` at step ``total_steps``, and stays there.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1, got {total_steps}.")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be between 0 and total_steps={total_steps}, got {warmup_steps}.")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio is a fraction of the base lr (0..1), got {min_lr_ratio}.")
    decay_steps = max(1, total_steps - warmup_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / decay_steps)
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ==========================================================================
# Small pieces shared by the loops
# ==========================================================================
def _model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (cpu for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _amp_dtype(device: torch.device, amp: bool | None):
    """The autocast dtype, or None for full float32.

    Mixed precision is used on CUDA only. bf16 needs no loss scaling, but only
    GPUs of compute capability 8.0 or newer (A100, L4, H100) compute in it.
    Older ones (a T4 is 7.5) get fp16, which needs a GradScaler: there
    ``torch.cuda.is_bf16_supported()`` is True only through slow emulation.
    """
    if amp is None:
        amp = device.type == "cuda"
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.get_device_capability(device) >= (8, 0) else torch.float16


def _autocast(device: torch.device, dtype):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _unpack(batch, name: str):
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        kind = f"a {type(batch).__name__} of length {len(batch)}" if isinstance(batch, (tuple, list)) \
            else f"a {type(batch).__name__}"
        raise TypeError(f"{name} should yield (inputs, labels) pairs, but it yielded {kind}.")
    return batch


def _to_device(x, y, device: torch.device, channels_last: bool = False):
    # non_blocking overlaps the copy with compute when the batch is in pinned memory
    x = x.to(device, non_blocking=True)
    y = y.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def _hard_labels(y: torch.Tensor) -> torch.Tensor:
    """Class indices from labels that may be soft targets ``(N, K)`` (e.g. mixup)."""
    return y.argmax(dim=1) if y.is_floating_point() and y.dim() == 2 else y


def _length(loader) -> int | None:
    """Number of batches, or None for a loader that cannot tell (a generator, an IterableDataset)."""
    try:
        return len(loader)
    except TypeError:
        return None


def _num_classes(loader) -> int | None:
    classes = getattr(getattr(loader, "dataset", None), "classes", None)
    return len(classes) if classes else None


def _check_logits(logits, x: torch.Tensor, y: torch.Tensor, num_classes: int | None) -> None:
    """Fail early, with what was expected and what was got, on a model whose output cannot be scored."""
    if not isinstance(logits, torch.Tensor):
        hint = (" A model with several outputs (such as GoogLeNet's auxiliary heads in training mode) needs "
                "fit(..., output_loss=...) to say which output is the logits and how the loss is made."
                if isinstance(logits, (tuple, list)) else "")
        raise TypeError(f"The model returned a {type(logits).__name__}; expected a tensor of class scores "
                        f"(logits) of shape (batch, classes).{hint}")
    n = x.shape[0]
    k = num_classes if num_classes is not None else "K"
    if logits.dim() != 2 or logits.shape[0] != n:
        hint = " Did you forget to flatten before the last Linear layer?" if logits.dim() > 2 else ""
        raise ValueError(f"For inputs of shape {tuple(x.shape)} the model output has shape {tuple(logits.shape)}, "
                         f"but class scores of shape (batch, classes) = ({n}, {k}) were expected.{hint}")
    if num_classes is not None and logits.shape[1] != num_classes:
        raise ValueError(f"The model outputs {logits.shape[1]} scores per image, but the dataset has "
                         f"{num_classes} classes: the last layer needs {num_classes} outputs.")
    if y.is_floating_point() and y.dim() == 2 and tuple(y.shape) != tuple(logits.shape):
        raise ValueError(f"The soft targets have shape {tuple(y.shape)}, but the model output has shape "
                         f"{tuple(logits.shape)}: one probability per class is needed.")
    labels = _hard_labels(y)
    if labels.numel() and int(labels.max()) >= logits.shape[1]:
        raise ValueError(f"A label is {int(labels.max())}, but the model outputs only {logits.shape[1]} scores "
                         f"(classes 0..{logits.shape[1] - 1}).")


def _cpu_copy(state_dict: dict) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in state_dict.items()}


# ==========================================================================
# Evaluation: one pass without gradients
# ==========================================================================
def _batches_of_logits(model, loader, device, amp_dtype, name="loader"):
    """Yield ``(logits, y)`` for every batch, in eval mode and without gradients."""
    num_classes = _num_classes(loader)
    was_training = model.training
    model.eval()  # dropout off, batch norm uses its running statistics
    try:
        with torch.no_grad():
            for step, batch in enumerate(loader):
                x, y = _to_device(*_unpack(batch, name), device)
                with _autocast(device, amp_dtype):
                    logits = model(x)
                if step == 0:
                    _check_logits(logits, x, y, num_classes)
                yield logits.float(), y
    finally:
        model.train(was_training)


def evaluate(model, loader, loss_fn=None, device=None, *, amp=None) -> dict:
    """Mean loss and accuracy (a fraction) of ``model`` over every batch of ``loader``.

    ``device=None`` uses the device the model is on; ``amp=None`` autocasts on CUDA.
    The model is put in eval mode and returned to its previous mode afterwards.
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    total_loss, correct, seen = 0.0, 0, 0
    for logits, y in _batches_of_logits(model, loader, device, _amp_dtype(device, amp)):
        n = y.shape[0]
        total_loss += loss_fn(logits, y).item() * n  # loss_fn averages over the batch
        correct += (logits.argmax(dim=1) == _hard_labels(y)).sum().item()
        seen += n
    if seen == 0:
        raise ValueError("The loader yielded no batches, so there is nothing to evaluate.")
    return {"loss": total_loss / seen, "acc": correct / seen}


def predict(model, loader, device=None, *, amp=None):
    """Predictions for every example of ``loader``, in loader order, on the CPU.

    Returns ``(preds, labels, probs)``: int64 ``(N,)``, int64 ``(N,)`` and
    float32 softmax probabilities ``(N, K)``.
    """
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    probs, labels = [], []
    for logits, y in _batches_of_logits(model, loader, device, _amp_dtype(device, amp)):
        probs.append(logits.softmax(dim=1).cpu())
        labels.append(_hard_labels(y).cpu())
    if not probs:
        raise ValueError("The loader yielded no batches, so there is nothing to predict.")
    probs = torch.cat(probs).float()
    return probs.argmax(dim=1), torch.cat(labels).long(), probs


# ==========================================================================
# Training: one epoch
# ==========================================================================
def _plain_loss(output, y, loss_fn):
    """What ``fit`` does without an ``output_loss`` hook: the output is the logits."""
    return output, loss_fn(output, y)


def train_one_epoch(model, loader, optimizer, loss_fn, device, *, scaler=None, amp_dtype=None,
                    scheduler=None, clip_grad_norm=None, ema=None, channels_last=False,
                    max_steps=None, progress=True, desc="train", batch_transform=None,
                    output_loss=None) -> dict:
    """One pass over ``loader`` (at most ``max_steps`` batches); returns mean ``loss``, ``acc`` and last ``lr``.

    ``scheduler`` here is stepped after every batch; ``ema`` (an AveragedModel)
    is updated after every optimizer step. ``batch_transform`` and ``output_loss``
    are the hooks described in :func:`fit`. The accuracy compares the arg-max of
    the logits with the labels (the largest share, for soft targets).
    """
    output_loss = output_loss or _plain_loss
    scaler = scaler or torch.amp.GradScaler("cuda", enabled=False)  # disabled: a plain backward/step
    num_classes = _num_classes(loader)
    batches = itertools.islice(loader, max_steps) if max_steps else loader
    total = _length(loader)
    total = min(total, max_steps) if total is not None and max_steps else (total or max_steps)
    # Sum on the device and read once at the end: no GPU sync per step.
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen, lr = 0, optimizer.param_groups[0]["lr"]

    model.train()
    # An explicit disable=False would override tqdm's own TQDM_DISABLE variable.
    hidden = not progress or os.environ.get("TQDM_DISABLE", "").lower() not in ("", "0", "false")
    bar = tqdm(batches, total=total, desc=desc, disable=hidden, leave=False)
    for step, batch in enumerate(bar):
        x, y = _to_device(*_unpack(batch, "train_loader"), device)
        if batch_transform is not None:
            x, y = batch_transform(x, y)  # e.g. mixup: mixed images, soft targets (N, K)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp_dtype):
            output = model(x)
            if step == 0 and output_loss is _plain_loss:  # a clear message before the loss fails
                _check_logits(output, x, y, num_classes)
            logits, loss = output_loss(output, y, loss_fn)
            if step == 0 and output_loss is not _plain_loss:
                _check_logits(logits, x, y, num_classes)

        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()  # fp16: scale the loss so small gradients do not underflow
        if clip_grad_norm is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        scaler.step(optimizer)  # skips the step if fp16 gradients overflowed
        scaler.update()
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update_parameters(model)

        n = y.shape[0]
        loss_sum += loss.detach().float() * n
        correct += (logits.detach().argmax(dim=1) == _hard_labels(y)).sum()
        seen += n
        if progress and step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    if seen == 0:
        raise ValueError("train_loader yielded no batches: it is empty (is the dataset smaller than "
                         "batch_size with drop_last=True?).")
    return {"loss": loss_sum.item() / seen, "acc": correct.item() / seen, "lr": lr}


# ==========================================================================
# Checkpoints: state_dicts only, written atomically
# ==========================================================================
def _loader_generator(loader):
    """The loader's own random generator (shuffling, augmentation), if it has one."""
    generator = getattr(loader, "generator", None)
    return generator if isinstance(generator, torch.Generator) else None


def _without_addresses(text: str) -> str:
    """A repr without memory addresses (``<function f at 0x7f...>``): they change every session."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def _plain(value):
    """``value`` as numbers, strings, lists and dicts: comparable, and readable with ``weights_only=True``."""
    if isinstance(value, torch.Tensor):  # e.g. class weights; a big tensor is named by its shape
        return value.tolist() if value.numel() <= 1000 else f"tensor of shape {list(value.shape)}"
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return _without_addresses(repr(value))


def _describe_callable(fn) -> str:
    """A loss or a hook and its settings, the same in every session, e.g.
    ``CrossEntropyLoss(ignore_index=-100, label_smoothing=0.1, reduction='mean')`` or
    ``icdl.models.googlenet.aux_output_loss(aux_weight=0.3)``.

    A loss module's repr leaves its settings out, so they are read from its
    attributes and buffers (class weights). A function is named by its module
    and qualified name; its settings are its keyword defaults and the plain
    values it closes over (e.g. the ``alpha`` of a ``mixup(alpha)`` factory).
    A method is named after the object it belongs to. Any other callable is
    described by its repr (``functools.partial`` shows its arguments), or, if
    its class has no repr of its own, by its class and plain attributes.
    """
    if isinstance(fn, nn.Module):
        name = type(fn).__name__
        settings = {k: v for k, v in vars(fn).items() if not k.startswith("_") and k != "training"}
        settings.update(fn.named_buffers())
    elif isinstance(fn, types.FunctionType):
        name = f"{fn.__module__}.{fn.__qualname__}"
        code = fn.__code__
        positional = code.co_varnames[:code.co_argcount]
        settings = dict(zip(positional[len(positional) - len(fn.__defaults__ or ()):], fn.__defaults__ or ()))
        settings.update(fn.__kwdefaults__ or {})
        for var, cell in zip(code.co_freevars, fn.__closure__ or ()):
            with contextlib.suppress(ValueError):  # a cell not yet filled has no contents
                settings[var] = cell.cell_contents
    elif isinstance(fn, types.MethodType):
        return f"{_describe_callable(fn.__self__)}.{fn.__func__.__name__}"
    elif type(fn).__repr__ is object.__repr__:  # a plain object with __call__: its class and settings
        name = f"{type(fn).__module__}.{type(fn).__qualname__}"
        settings = {k: v for k, v in vars(fn).items() if not k.startswith("_")} if hasattr(fn, "__dict__") else {}
    else:  # e.g. functools.partial(F.cross_entropy, label_smoothing=0.1), whose repr shows its settings
        return _without_addresses(repr(fn))
    plain_types = (bool, int, float, str, type(None), torch.Tensor)  # not the model a closure may also hold
    shown = ", ".join(f"{k}={_plain(v)!r}" for k, v in sorted(settings.items()) if isinstance(v, plain_types))
    return f"{name}({shown})"


def _describe_loss(loss_fn) -> str:
    """The loss and its settings: see :func:`_describe_callable`."""
    return _describe_callable(loss_fn)


def _hyperparameters(optimizer) -> list[dict]:
    """Each parameter group's settings (lr, momentum, weight decay, ...) without its parameters.

    A scheduler moves ``lr`` during training; where it has recorded the starting
    value (``initial_lr``), that is the ``lr`` recorded, so a run continued with
    the same optimizer still matches its checkpoint.
    """
    groups = []
    for group in optimizer.param_groups:
        settings = {k: v for k, v in group.items() if k != "params"}
        if "initial_lr" in settings:
            settings["lr"] = settings.pop("initial_lr")
        groups.append(_plain(settings))
    return groups


def _describe_scheduler(scheduler, scheduler_step) -> str | None:
    """The schedule and its settings, without its progress: ``LambdaLR(<its functions>) per batch``,
    ``StepLR(gamma=0.1, step_size=30) per epoch``."""
    if scheduler is None:
        return None
    lambdas = getattr(scheduler, "lr_lambdas", None)
    if lambdas is not None:  # LambdaLR, MultiplicativeLR: the functions and what they close over
        settings = ", ".join(_describe_callable(fn) for fn in lambdas)
    else:
        progress = {"optimizer", "last_epoch", "base_lrs", "verbose"}
        plain = (bool, int, float, str, type(None), list, tuple)
        settings = ", ".join(f"{k}={_plain(v)!r}" for k, v in sorted(vars(scheduler).items())
                             if not k.startswith("_") and k not in progress and isinstance(v, plain))
    return f"{type(scheduler).__name__}({settings}) per {scheduler_step}"


def _run_fingerprint(model, loss_fn, optimizer, scheduler, scheduler_step, ema_decay, clip_grad_norm, loader,
                     max_steps_per_epoch, batch_transform=None, output_loss=None) -> dict:
    """What makes two runs the same run, part by part: a checkpoint resumes only a run whose parts all match.

    Parameter shapes alone miss what has no parameters (the dropout rate, the
    activation, the loss's label smoothing), so the model's repr and the loss's
    settings are parts too. The hooks of :func:`fit` are parts only when given
    (described by :func:`_describe_callable`), so a run without hooks matches the
    checkpoints it wrote before they existed. Not the number of epochs: asking
    for more epochs continues a finished run. But the schedule is a part, with its
    settings: a warm-up and cosine over more steps (more epochs asked of
    ``warmup_cosine``) is another run, since its learning rate differs from the first step.
    """
    dataset = getattr(loader, "dataset", None)
    tensors = itertools.chain(model.named_parameters(), model.named_buffers())
    fingerprint = {
        "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "architecture": _without_addresses(repr(model)),  # e.g. "(2): Dropout(p=0.5, inplace=False)"
        "shapes": {name: list(tensor.shape) for name, tensor in tensors},
        "loss": _describe_loss(loss_fn),
        "optimizer": type(optimizer).__name__,
        "hyperparameters": _hyperparameters(optimizer),
        "scheduler": _describe_scheduler(scheduler, scheduler_step),
        "ema_decay": ema_decay,
        "clip_grad_norm": clip_grad_norm,
        "examples": len(dataset) if hasattr(dataset, "__len__") else None,
        "batches_per_epoch": _length(loader),
        "max_steps_per_epoch": max_steps_per_epoch,
    }
    for name, hook in (("batch_transform", batch_transform), ("output_loss", output_loss)):
        if hook is not None:
            fingerprint[name] = _describe_callable(hook)
    return fingerprint


def _flatten(value, name: str = "") -> dict:
    """Nested dicts and lists of dicts as one level: ``{"hyperparameters[0].lr": 0.1, "shapes.0.weight": [16, 4]}``."""
    if isinstance(value, dict):
        items = [(f"{name}.{key}" if name else str(key), v) for key, v in value.items()]
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        items = [(f"{name}[{i}]", v) for i, v in enumerate(value)]
    else:
        return {name: value}
    flat = {}
    for item_name, item in items:
        flat.update(_flatten(item, item_name))
    return flat


def _first_changed_lines(before: str, after: str) -> tuple[str, str]:
    """The first lines that differ between two multi-line texts (model reprs), each side joined with " / "."""
    a, b = before.splitlines(), after.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag != "equal":
            return " / ".join(line.strip() for line in a[i1:i2]), " / ".join(line.strip() for line in b[j1:j2])
    return before, after


def _fingerprint_changes(old: dict, new: dict, limit: int = 6) -> list[str]:
    """One line ``part: old -> new`` for each part of two run fingerprints that differs (at most ``limit``)."""
    old, new = _flatten(old), _flatten(new)
    changes = []
    for key in [*new, *(k for k in old if k not in new)]:
        if key in old and key in new and old[key] == new[key]:
            continue
        before, after = old.get(key, ""), new.get(key, "")
        if isinstance(before, str) and isinstance(after, str) and "\n" in before + after:
            before, after = _first_changed_lines(before, after)
        changes.append(f"{key}: {_short(before)} -> {_short(after)}")
    if len(changes) > limit:
        changes = changes[:limit] + [f"... and {len(changes) - limit} more"]
    return changes


def _short(value, width: int = 120) -> str:
    text = str(value) if value != "" else "(none)"
    return text if len(text) <= width else text[:width - 3] + "..."


def _save_checkpoint(path: Path, *, model, optimizer, scheduler, scaler, ema, loader, history, best_state, epoch,
                     fingerprint):
    state = {
        "format": CHECKPOINT_FORMAT,
        "run": fingerprint,
        "epoch": epoch,  # epochs completed
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "best": best_state,
        "history": history.to_dict(),
        # the random state, so dropout and shuffling continue as if never interrupted
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "rng_loader": _loader_generator(loader).get_state() if _loader_generator(loader) is not None else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a disconnect leaves the old file or the new one, never half of one


def _load_checkpoint(path: Path, *, model, optimizer, scheduler, scaler, ema, loader, fingerprint):
    """Load everything saved by :func:`_save_checkpoint`; return ``(epoch, history, best_state)``.

    A checkpoint of another run (another ``fingerprint``) is not loaded: this
    says what differs and returns ``(0, History(), None)``, to train from scratch.
    """
    advice = f"Delete {path} (or pass another checkpoint path) to train from scratch."
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(f"Could not read the checkpoint {path} ({type(exc).__name__}: {exc}). {advice}") from None
    if not isinstance(state, dict) or not isinstance(state.get("format"), int) or state["format"] > CHECKPOINT_FORMAT:
        raise RuntimeError(f"{path} is not a checkpoint written by this version of icdl.train.fit. {advice}")
    if state["format"] < CHECKPOINT_FORMAT:
        print(f"{path} was written by an older version of icdl.train.fit, which recorded too little to tell "
              f"whether it is this run: training from scratch; the file is replaced after the first epoch.")
        return 0, History(), None
    if state["run"] != fingerprint:
        changes = "".join(f"\n  {line}" for line in _fingerprint_changes(state["run"], fingerprint))
        print(f"{path} was saved by a different run, so it is not resumed. What differs (saved -> now):{changes}\n"
              f"Training from scratch; the file is replaced after the first epoch (give each run its own "
              f"checkpoint file to keep both).")
        return 0, History(), None
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        if state["scaler"] and scaler.is_enabled():  # fp16 runs only; empty for bf16 and float32
            scaler.load_state_dict(state["scaler"])
    except (RuntimeError, ValueError, KeyError) as exc:
        reason = _short(" ".join(str(exc).split()), 300)  # e.g. "... Missing key(s) in state_dict: ..."
        raise RuntimeError(f"The checkpoint {path} does not match this model and training set-up "
                           f"({reason}). {advice}") from None
    torch.set_rng_state(state["rng_cpu"])
    if state["rng_cuda"] and torch.cuda.is_available() and len(state["rng_cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    if state.get("rng_loader") is not None and _loader_generator(loader) is not None:
        _loader_generator(loader).set_state(state["rng_loader"])
    return state["epoch"], History.from_dict(state["history"]), state["best"]


# ==========================================================================
# fit: the whole training run
# ==========================================================================
def _check_fit_args(model, train_loader, epochs, optimizer, scheduler_step, max_steps_per_epoch):
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs!r}.")
    if scheduler_step not in ("batch", "epoch"):
        raise ValueError(f"scheduler_step must be 'batch' or 'epoch', got {scheduler_step!r}.")
    if max_steps_per_epoch is not None and max_steps_per_epoch < 1:
        raise ValueError(f"max_steps_per_epoch must be None or >= 1, got {max_steps_per_epoch!r}.")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer should be a torch.optim.Optimizer, got {type(optimizer).__name__}.")
    model_params = {id(p) for p in model.parameters()}
    opt_params = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if model_params and not model_params & opt_params:
        raise ValueError("The optimizer holds none of this model's parameters: it was made for another model "
                         "(e.g. one built in an earlier cell). Create it after the model, e.g. "
                         "torch.optim.SGD(model.parameters(), lr=0.1).")
    if _length(train_loader) == 0:
        raise ValueError("train_loader is empty: it yields no batches (is the dataset smaller than batch_size "
                         "with drop_last=True?).")


def _is_better(val: dict, history: History) -> bool:
    """Higher validation accuracy wins; on a tie, the lower validation loss."""
    if history.best_epoch is None:
        return True
    best_loss = history.epochs[history.best_epoch - 1]["val_loss"]
    return val["acc"] > history.best_val_acc or (val["acc"] == history.best_val_acc and val["loss"] < best_loss)


def _epoch_line(row: dict, epochs: int) -> str:
    width = len(str(epochs))
    text = f"epoch {row['epoch']:>{width}}/{epochs} | train loss {row['train_loss']:.4f} acc {row['train_acc']:6.2%}"
    if row["val_loss"] is not None:
        text += f" | val loss {row['val_loss']:.4f} acc {row['val_acc']:6.2%}"
    return text + f" | lr {row['lr']:.2e} | {row['seconds']:.1f}s"


def fit(model, train_loader, val_loader=None, *, epochs, optimizer, loss_fn=None, scheduler=None,
        scheduler_step="batch", device=None, amp=None, channels_last=False, clip_grad_norm=None,
        ema_decay=None, checkpoint=None, keep_best=True, max_steps_per_epoch=None, progress=True,
        batch_transform=None, output_loss=None) -> History:
    """Train ``model`` for ``epochs`` epochs; return its :class:`History`.

    Each epoch trains on ``train_loader`` (at most ``max_steps_per_epoch`` batches),
    evaluates on ``val_loader`` if given, prints one line and, with ``checkpoint``
    (a path), saves everything needed to resume. If that file exists at the start
    and was saved by the same run (the same model class, repr and shapes, loss,
    optimizer and its hyperparameters, scheduler, EMA, clipping and data size),
    training resumes after its last epoch (or, if it is complete, returns its
    history without training). A file of another run is not loaded: ``fit`` prints
    what differs and trains from scratch, replacing the file.

    * ``device=None``: the device the model is on (``model.to(cfg.device)`` first).
    * ``amp=None``: mixed precision on CUDA (bf16 on compute capability 8.0 or newer,
      else fp16 with loss scaling), off elsewhere.
    * ``scheduler`` is stepped after every batch (``scheduler_step="batch"``) or every
      epoch (``"epoch"``; ``ReduceLROnPlateau`` gets the validation loss).
    * ``ema_decay`` (e.g. 0.999) keeps an exponential moving average of the weights;
      validation uses it and the model ends with the averaged weights.
    * ``keep_best`` restores, at the end, the weights of the epoch with the best
      validation accuracy (the test set plays no part in this choice).

    Two hooks change a training step without a new argument for every trick.
    Both act on training batches only; validation calls ``model(x)`` in eval
    mode and scores its logits with ``loss_fn``.

    * ``batch_transform(x, y) -> (x, y)`` gets each training batch on the device,
      before the forward pass. Mixup and CutMix plug in here: they return mixed
      images and soft targets ``y`` of shape ``(N, K)`` (each row sums to 1).
      ``nn.CrossEntropyLoss`` accepts soft targets, and the training accuracy
      counts a prediction as right when it is the class with the largest share.
    * ``output_loss(output, y, loss_fn) -> (logits, loss)`` turns what the model
      returns in training mode into the logits ``(N, K)``, used for the training
      accuracy, and the loss to minimise. Without it, ``output`` is the logits
      and the loss is ``loss_fn(output, y)``. GoogLeNet in training mode returns
      ``(logits, aux2, aux1)``; ``output_loss=googlenet.aux_output_loss`` returns
      its main logits and ``loss_fn`` of the main head plus 0.3 times that of
      each auxiliary head.

    A hook is recorded in the checkpoint by its qualified name and its plain
    settings (keyword defaults, closed-over numbers): a checkpoint made with
    another hook, or none, is not resumed. A hook that keeps changing state of
    its own (a random generator) should be seeded by the caller; only torch's
    global generators and the loader's are saved.
    """
    _check_fit_args(model, train_loader, epochs, optimizer, scheduler_step, max_steps_per_epoch)
    for name, hook in (("batch_transform", batch_transform), ("output_loss", output_loss)):
        if hook is not None and not callable(hook):
            raise TypeError(f"{name} should be a function (or None), got a {type(hook).__name__}.")
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)  # faster convolutions on tensor-core GPUs
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    amp_dtype = _amp_dtype(device, amp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)  # bf16 needs no scaling
    ema = None
    if ema_decay is not None:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(ema_decay), use_buffers=True)
    eval_model = ema.module if ema is not None else model
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if plateau and scheduler_step == "batch":
        raise ValueError("ReduceLROnPlateau needs a validation loss: use scheduler_step='epoch'.")
    fingerprint = _run_fingerprint(model, loss_fn, optimizer, scheduler, scheduler_step, ema_decay, clip_grad_norm,
                                   train_loader, max_steps_per_epoch, batch_transform, output_loss)
    parts = dict(model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, ema=ema, loader=train_loader,
                 fingerprint=fingerprint)

    # ---- resume from a checkpoint if there is one -------------------------
    history, best_state, done = History(), None, 0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        done, history, best_state = _load_checkpoint(path, **parts)
        if done >= epochs:
            print(f"{path} holds a finished run of {done} epochs: loaded it, no training needed.")
        elif done > 0:
            print(f"resumed from {path} at epoch {done + 1}")
    if done < epochs:
        precision = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]
        print(f"training on {device} | mixed precision: {precision} | epochs {done + 1}-{epochs}")

    # ---- the loop ---------------------------------------------------------
    for epoch in range(done + 1, epochs + 1):
        start = time.perf_counter()
        train = train_one_epoch(
            model, train_loader, optimizer, loss_fn, device, scaler=scaler, amp_dtype=amp_dtype,
            scheduler=scheduler if scheduler_step == "batch" else None, clip_grad_norm=clip_grad_norm,
            ema=ema, channels_last=channels_last, max_steps=max_steps_per_epoch, progress=progress,
            desc=f"epoch {epoch}/{epochs}", batch_transform=batch_transform, output_loss=output_loss)
        if not math.isfinite(train["loss"]):
            print(f"warning: the training loss is {train['loss']} in epoch {epoch}: lower the learning rate "
                  f"or clip gradients (clip_grad_norm=1.0).")
        row = {"epoch": epoch, "train_loss": train["loss"], "train_acc": train["acc"],
               "val_loss": None, "val_acc": None, "lr": train["lr"], "seconds": None}
        if val_loader is not None:
            val = evaluate(eval_model, val_loader, loss_fn, device, amp=amp)
            row["val_loss"], row["val_acc"] = val["loss"], val["acc"]
            if _is_better(val, history):
                history.best_epoch, history.best_val_acc = epoch, val["acc"]
                best_state = _cpu_copy(eval_model.state_dict())
        if scheduler is not None and scheduler_step == "epoch":
            if plateau:
                scheduler.step(row["val_loss"])
            else:
                scheduler.step()
        row["seconds"] = time.perf_counter() - start
        history.epochs.append(row)
        print(_epoch_line(row, epochs))
        if path is not None:
            _save_checkpoint(path, history=history, best_state=best_state, epoch=epoch, **parts)

    # ---- the weights the run ends with -------------------------------------
    if keep_best and best_state is not None:
        model.load_state_dict(best_state)
        if history.best_epoch != len(history):
            print(f"restored the weights of epoch {history.best_epoch} "
                  f"(best validation accuracy {history.best_val_acc:.2%})")
    elif ema is not None:
        model.load_state_dict(ema.module.state_dict())
    return history
