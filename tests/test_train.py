"""Tests of icdl.train: the loop learns, evaluates and predicts correctly,
resumes from checkpoints exactly, keeps the best epoch, clips, runs its two
hooks (batch_transform, output_loss), and fails clearly."""

import functools
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from icdl import train
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


# --------------------------------------------------------------------------
# Tiny problems
# --------------------------------------------------------------------------
def blobs(n=256, seed=0):
    """Two well-separated Gaussian blobs in 4 dimensions: inputs (n, 4), labels (n,)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 4, generator=g) * 0.7 + (y[:, None] * 2 - 1) * 1.5
    return x, y


def loaders(batch_size=32, shuffle=True):
    x, y = blobs(256, seed=0)
    xv, yv = blobs(128, seed=1)
    train_dl = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)
    val_dl = DataLoader(TensorDataset(xv, yv), batch_size=64)
    return train_dl, val_dl


def mlp(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2))


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------
# Learning
# --------------------------------------------------------------------------
def test_fit_learns_a_separable_problem(capsys):
    train_dl, val_dl = loaders()
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    history = train.fit(model, train_dl, val_dl, epochs=4, optimizer=opt, keep_best=False, progress=False)

    assert len(history) == 4 and history["epoch"] == [1, 2, 3, 4]
    assert set(history.epochs[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert history["val_acc"][-1] >= 0.95
    assert history.best_val_acc == max(history["val_acc"])
    assert history["val_acc"][history.best_epoch - 1] == history.best_val_acc
    assert all(lr == 0.05 for lr in history["lr"])
    # one readable line per epoch
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch ")]
    assert len(lines) == 4 and "4/4" in lines[-1] and "val loss" in lines[-1] and "lr 5.00e-02" in lines[-1]


def test_fit_on_images_with_channels_last_and_max_steps():
    torch.manual_seed(0)
    x = torch.rand(40, 3, 8, 8)
    y = (x[:, 0].mean(dim=(1, 2)) > 0.5).long()
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = []
    opt.register_step_post_hook(lambda *args: steps.append(1))
    dl = DataLoader(TensorDataset(x, y), batch_size=4)  # 10 batches
    history = train.fit(model, dl, epochs=2, optimizer=opt, channels_last=True, max_steps_per_epoch=3,
                        progress=False)
    assert len(steps) == 6  # 2 epochs x 3 steps, not 2 x 10
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert history.best_epoch is None and history["val_acc"] == [None, None]


# --------------------------------------------------------------------------
# evaluate / predict on a hand-made model with known answers
# --------------------------------------------------------------------------
def identity_model():
    """Logits = inputs: the predicted class is the index of the largest input."""
    model = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3))
    return model


def known_batches():
    x = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.5], [0.0, 2.0, 0.0]])
    y = torch.tensor([0, 1, 2, 2, 0])  # the last two are wrong: 3 of 5 correct
    return x, y


def test_evaluate_gives_known_loss_and_accuracy():
    x, y = known_batches()
    model = identity_model().train()
    dl = DataLoader(TensorDataset(x, y), batch_size=2)  # uneven batches: 2, 2, 1
    scores = train.evaluate(model, dl)
    assert scores["acc"] == pytest.approx(3 / 5)
    assert scores["loss"] == pytest.approx(F.cross_entropy(x, y).item(), rel=1e-6)
    assert model.training  # the model's mode is given back


def test_predict_returns_preds_labels_probs_in_order():
    x, y = known_batches()
    preds, labels, probs = train.predict(identity_model(), DataLoader(TensorDataset(x, y), batch_size=2))
    assert preds.tolist() == [0, 1, 2, 0, 1]
    assert labels.tolist() == y.tolist()
    assert preds.dtype == labels.dtype == torch.int64 and probs.dtype == torch.float32
    assert torch.allclose(probs, x.softmax(dim=1))
    assert probs.device.type == "cpu"


# --------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------
def run(epochs, checkpoint=None, model_seed=0, loader_generator=False):
    """A run whose outcome depends on everything a resume must restore:
    momentum (optimizer state), the schedule, dropout and shuffling (random state)."""
    torch.manual_seed(123)
    train_dl, val_dl = loaders(shuffle=True)
    if loader_generator:  # shuffling by the loader's own generator, as DeviceLoader does
        train_dl = DataLoader(train_dl.dataset, batch_size=32, shuffle=True,
                              generator=torch.Generator().manual_seed(3))
    model = mlp(seed=model_seed, dropout=0.3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = train.warmup_cosine(opt, warmup_steps=8, total_steps=3 * len(train_dl))
    torch.manual_seed(7)
    history = train.fit(model, train_dl, val_dl, epochs=epochs, optimizer=opt, scheduler=sched,
                        checkpoint=checkpoint, keep_best=False, progress=False)
    return model, history


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path, capsys):
    path = tmp_path / "ckpt" / "mlp.pt"
    straight, straight_history = run(3)

    run(2, checkpoint=path)  # "the session disconnects" after 2 epochs
    assert sorted(p.name for p in path.parent.iterdir()) == ["mlp.pt"]  # no tmp file left behind
    saved = torch.load(path, weights_only=True)  # state_dicts and plain containers only
    assert saved["epoch"] == 2 and len(saved["history"]["epochs"]) == 2
    capsys.readouterr()

    resumed, history = run(3, checkpoint=path, model_seed=99)  # a different init: the checkpoint must win
    out = capsys.readouterr().out
    assert f"resumed from {path} at epoch 3" in out
    assert history["epoch"] == [1, 2, 3]
    assert out.count("\nepoch ") + out.startswith("epoch ") == 1  # only epoch 3 was trained
    assert same_weights(weights(resumed), weights(straight))
    assert history["val_acc"] == straight_history["val_acc"]

    # Everything done already: load, do not train.
    again, again_history = run(3, checkpoint=path, model_seed=5)
    assert "no training needed" in capsys.readouterr().out
    assert same_weights(weights(again), weights(straight))
    assert again_history["train_loss"] == history["train_loss"]


def test_resume_restores_the_loaders_own_generator(tmp_path):
    path = tmp_path / "mlp.pt"
    straight, _ = run(3, loader_generator=True)
    run(2, checkpoint=path, loader_generator=True)
    resumed, _ = run(3, checkpoint=path, loader_generator=True)
    assert same_weights(weights(resumed), weights(straight))


def test_resuming_without_a_checkpoint_changes_the_result(tmp_path):
    # The control for the test above: a fresh run of epoch 3 alone differs.
    straight, _ = run(3)
    fresh, _ = run(1)
    assert not same_weights(weights(straight), weights(fresh))


def test_a_run_continued_with_the_same_objects_resumes(tmp_path, capsys):
    # The notebook pattern "fit 2 epochs, then ask for 3": the optimizer's lr has moved since the
    # first call, but its scheduler recorded the starting lr, so the run is still recognised.
    path = tmp_path / "mlp.pt"
    straight, _ = run(3)
    torch.manual_seed(123)
    train_dl, val_dl = loaders(shuffle=True)
    model = mlp(seed=0, dropout=0.3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = train.warmup_cosine(opt, warmup_steps=8, total_steps=3 * len(train_dl))
    torch.manual_seed(7)
    for epochs in (2, 3):
        train.fit(model, train_dl, val_dl, epochs=epochs, optimizer=opt, scheduler=sched, checkpoint=path,
                  keep_best=False, progress=False)
    assert f"resumed from {path} at epoch 3" in capsys.readouterr().out
    assert same_weights(weights(model), weights(straight))


def fit_small(checkpoint=None, *, make_model=None, dropout=0.0, loss_fn=None, lr=0.1, scheduler=False, copies=1,
              **hooks):
    """Two epochs of a small run; each keyword changes one part of it."""
    torch.manual_seed(0)
    train_dl, val_dl = loaders(shuffle=False)
    if copies > 1:  # more data, e.g. the budget changed from smoke to quick
        train_dl = DataLoader(TensorDataset(*[torch.cat([t] * copies) for t in train_dl.dataset.tensors]),
                              batch_size=32)
    model = make_model() if make_model else mlp(dropout=dropout)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    sched = train.warmup_cosine(opt, warmup_steps=4, total_steps=2 * len(train_dl)) if scheduler else None
    history = train.fit(model, train_dl, val_dl, epochs=2, optimizer=opt, loss_fn=loss_fn, scheduler=sched,
                        checkpoint=checkpoint, keep_best=False, progress=False, **hooks)
    return model, history


def mlp_with_tanh():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.0), nn.Linear(16, 2))


ANOTHER_RUN = {  # a change to the run saved by fit_small() -> what the message must say
    "dropout": (dict(dropout=0.5),  # no parameter shape shows it
                "architecture: (2): Dropout(p=0.0, inplace=False) -> (2): Dropout(p=0.5, inplace=False)"),
    "activation": (dict(make_model=mlp_with_tanh), "architecture: (1): ReLU() -> (1): Tanh()"),
    "label_smoothing": (dict(loss_fn=nn.CrossEntropyLoss(label_smoothing=0.1)),  # its repr is CrossEntropyLoss()
                        "loss: CrossEntropyLoss(ignore_index=-100, label_smoothing=0.0, reduction='mean') -> "
                        "CrossEntropyLoss(ignore_index=-100, label_smoothing=0.1, reduction='mean')"),
    "learning_rate": (dict(lr=0.05), "hyperparameters[0].lr: 0.1 -> 0.05"),
    "scheduler": (dict(scheduler=True), "scheduler: None -> LambdaLR(icdl.train.warmup_cosine.<locals>.factor("
                  "decay_steps=12, min_lr_ratio=0.0, warmup_steps=4)) per batch"),
    "model": (dict(make_model=lambda: nn.Linear(4, 2)),
              "model: torch.nn.modules.container.Sequential -> torch.nn.modules.linear.Linear"),
    "data_size": (dict(copies=2), "examples: 256 -> 512"),
    "batch_transform": (dict(batch_transform=lambda x, y: (2 * x, y)),
                        "batch_transform: (none) -> test_train.<lambda>()"),
}


@pytest.mark.parametrize("change, expected", ANOTHER_RUN.values(), ids=ANOTHER_RUN.keys())
def test_checkpoint_of_another_run_is_not_resumed(tmp_path, capsys, change, expected):
    path = tmp_path / "mlp.pt"
    fit_small(path)  # e.g. the dropout-0.0 run finishes and leaves its checkpoint
    capsys.readouterr()

    model, history = fit_small(path, **change)
    out = capsys.readouterr().out
    assert f"{path} was saved by a different run, so it is not resumed" in out
    assert expected in out  # names what differs
    assert "Training from scratch" in out
    assert "resumed from" not in out and "no training needed" not in out
    assert history["epoch"] == [1, 2]
    scratch, scratch_history = fit_small(None, **change)  # the same run without any checkpoint
    assert same_weights(weights(model), weights(scratch))
    assert history["val_loss"] == scratch_history["val_loss"]

    fit_small(path, **change)  # the file now holds the new run
    assert "no training needed" in capsys.readouterr().out


def test_a_longer_schedule_is_another_run(tmp_path, capsys):
    # A notebook's epochs raised from 2 to 3: warmup_cosine now spans more steps, so its learning rate
    # differs from the first step on, and the 2-epoch checkpoint must not be continued.
    def fit_with_schedule(epochs):
        torch.manual_seed(0)
        train_dl, val_dl = loaders(shuffle=False)
        model = mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sched = train.warmup_cosine(opt, warmup_steps=4, total_steps=epochs * len(train_dl))
        return train.fit(model, train_dl, val_dl, epochs=epochs, optimizer=opt, scheduler=sched,
                         checkpoint=path, keep_best=False, progress=False)

    path = tmp_path / "mlp.pt"
    fit_with_schedule(2)
    capsys.readouterr()
    history = fit_with_schedule(3)
    out = capsys.readouterr().out
    assert f"{path} was saved by a different run, so it is not resumed" in out
    assert "decay_steps=12" in out and "decay_steps=20" in out
    assert history["epoch"] == [1, 2, 3]


def test_scheduler_settings_are_described_without_their_progress():
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    step = torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.5)
    before = train._describe_scheduler(step, "epoch")
    for _ in range(3):
        opt.step()
        step.step()
    assert train._describe_scheduler(step, "epoch") == before
    assert "gamma=0.5" in before and "step_size=30" in before and before.startswith("StepLR(")
    assert train._describe_scheduler(None, "batch") is None


def test_checkpoint_of_an_older_format_is_not_resumed(tmp_path, capsys):
    path = tmp_path / "mlp.pt"
    torch.save({"format": train.CHECKPOINT_FORMAT - 1, "settings": {}, "epoch": 2}, path)
    _, history = fit_small(path)
    out = capsys.readouterr().out
    assert "older version" in out and "training from scratch" in out
    assert history["epoch"] == [1, 2]


def test_checkpoint_that_does_not_load_says_to_delete_it(tmp_path):
    path = tmp_path / "mlp.pt"
    run(1, checkpoint=path)
    state = torch.load(path, weights_only=True)
    del state["model"]["0.weight"]  # the same run on record, but weights that no longer fit
    torch.save(state, path)
    with pytest.raises(RuntimeError, match=r"does not match this model.*0\.weight.*Delete .*mlp\.pt"):
        run(2, checkpoint=path)


def test_loss_description_shows_the_settings_its_repr_hides():
    assert repr(nn.CrossEntropyLoss(label_smoothing=0.1)) == "CrossEntropyLoss()"  # why repr is not enough
    assert "label_smoothing=0.1" in train._describe_loss(nn.CrossEntropyLoss(label_smoothing=0.1))
    assert "weight=[1.0, 2.0]" in train._describe_loss(nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0])))

    def scaled_loss(scale):  # a loss made by a factory, like googlenet.aux_loss_fn
        def loss_fn(logits, y):
            return scale * F.cross_entropy(logits, y)
        return loss_fn

    assert train._describe_loss(scaled_loss(0.3)).endswith("scaled_loss.<locals>.loss_fn(scale=0.3)")
    smoothed = train._describe_loss(functools.partial(F.cross_entropy, label_smoothing=0.1))
    assert "label_smoothing=0.1" in smoothed and "0x" not in smoothed  # no memory address: same every session


def test_corrupt_checkpoint_says_to_delete_it(tmp_path):
    path = tmp_path / "mlp.pt"
    path.write_bytes(b"half a file")
    train_dl, _ = loaders()
    model = mlp()
    with pytest.raises(RuntimeError, match=r"Could not read the checkpoint .*Delete"):
        train.fit(model, train_dl, epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                  checkpoint=path, progress=False)


# --------------------------------------------------------------------------
# Model selection
# --------------------------------------------------------------------------
def run_with_a_bad_last_epoch(epochs, keep_best):
    """Epochs 1-2 learn; epoch 3 runs gradient *ascent* (a negative lr), so it is worse."""
    torch.manual_seed(0)
    train_dl, val_dl = loaders(shuffle=False)
    model = mlp(seed=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 if epoch < 2 else -20.0)
    history = train.fit(model, train_dl, val_dl, epochs=epochs, optimizer=opt, scheduler=sched,
                        scheduler_step="epoch", keep_best=keep_best, progress=False)
    return model, history, val_dl


def test_keep_best_restores_the_best_epoch():
    model, history, val_dl = run_with_a_bad_last_epoch(3, keep_best=True)
    assert history["lr"][2] < 0  # the sabotage happened
    assert history["val_acc"][2] < history.best_val_acc
    assert history.best_epoch in (1, 2)
    assert train.evaluate(model, val_dl)["acc"] == history.best_val_acc
    best_run, _, _ = run_with_a_bad_last_epoch(history.best_epoch, keep_best=False)
    assert same_weights(weights(model), weights(best_run))

    last, _, _ = run_with_a_bad_last_epoch(3, keep_best=False)
    assert not same_weights(weights(last), weights(model))
    assert train.evaluate(last, val_dl)["acc"] < history.best_val_acc


# --------------------------------------------------------------------------
# Schedules, clipping, EMA
# --------------------------------------------------------------------------
def lrs_of(scheduler_factory, steps):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = scheduler_factory(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_warmup_cosine_values_at_key_steps():
    lrs = lrs_of(lambda opt: train.warmup_cosine(opt, warmup_steps=10, total_steps=110, min_lr_ratio=0.1), 130)
    assert lrs[0] == pytest.approx(0.1)  # 1/10: the first step already learns
    assert lrs[4] == pytest.approx(0.5)
    assert lrs[9] == pytest.approx(1.0) and lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the cosine
    assert lrs[110] == pytest.approx(0.1) and lrs[129] == pytest.approx(0.1)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10]))
    assert all(a > b for a, b in zip(lrs[10:110], lrs[11:111]))
    no_warmup = lrs_of(lambda opt: train.warmup_cosine(opt, 0, 4), 5)
    c = math.cos(math.pi / 4) / 2
    assert no_warmup == pytest.approx([1.0, 0.5 + c, 0.5, 0.5 - c, 0.0])


@pytest.mark.parametrize("args, message", [((0, 0), "total_steps"), ((11, 10), "warmup_steps"),
                                           ((1, 10, 1.5), "min_lr_ratio")])
def test_warmup_cosine_rejects_bad_arguments(args, message):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match=message):
        train.warmup_cosine(opt, *args)


def grad_norms_seen_by_the_optimizer(clip):
    torch.manual_seed(0)
    x = torch.randn(16, 4) * 1e4  # a huge-loss batch: huge gradients
    y = torch.randint(0, 2, (16,))
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    norms = []
    opt.register_step_pre_hook(lambda *args: norms.append(
        torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])).item()))
    train.fit(model, [(x, y)] * 3, epochs=1, optimizer=opt, clip_grad_norm=clip, progress=False)
    return norms


def test_gradient_clipping_is_applied():
    assert min(grad_norms_seen_by_the_optimizer(clip=None)) > 100  # the control: huge without clipping
    clipped = grad_norms_seen_by_the_optimizer(clip=1.0)
    assert len(clipped) == 3 and max(clipped) <= 1.0 + 1e-4


def test_ema_weights_are_the_exponential_average_of_the_steps():
    decay = 0.5
    train_dl, _ = loaders(shuffle=False)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    after_each_step = []
    opt.register_step_post_hook(lambda *args: after_each_step.append(weights(model)))
    train.fit(model, train_dl, epochs=1, optimizer=opt, ema_decay=decay, progress=False)

    expected = after_each_step[0]  # the average starts as a copy of the first step's weights
    for step in after_each_step[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * step[k] for k in expected}
    final = weights(model)
    assert all(torch.allclose(final[k], expected[k], atol=1e-6) for k in final)
    assert not same_weights(final, after_each_step[-1])  # not simply the last weights


@pytest.mark.parametrize("capability, expected", [((7, 5), torch.float16), ((7, 0), torch.float16),
                                                    ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)],
                         ids=["T4", "V100", "A100", "H100"])
def test_amp_uses_bf16_only_from_compute_capability_8(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    # True on a T4 too, where bf16 is only emulated: it must not decide
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    cuda = torch.device("cuda")
    assert train._amp_dtype(cuda, None) is expected
    assert train._amp_dtype(cuda, True) is expected
    assert train._amp_dtype(cuda, False) is None


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_amp_is_off_on_cpu_and_mps(monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))  # even beside a GPU
    assert train._amp_dtype(torch.device(device), None) is None
    assert train._amp_dtype(torch.device(device), True) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fit_on_a_gpu_uses_the_precision_its_capability_allows(capsys):
    expected = "bf16" if torch.cuda.get_device_capability() >= (8, 0) else "fp16"
    model = mlp().cuda()
    train.fit(model, loaders()[0], epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    assert f"mixed precision: {expected}" in capsys.readouterr().out


# --------------------------------------------------------------------------
# Clear errors for bad input
# --------------------------------------------------------------------------
def fit_quickly(model, loader, **kwargs):
    kwargs.setdefault("epochs", 1)
    return train.fit(model, loader, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False,
                     **kwargs)


def test_empty_loader_is_reported():
    with pytest.raises(ValueError, match="train_loader is empty"):
        fit_quickly(mlp(), DataLoader(TensorDataset(torch.zeros(3, 4), torch.zeros(3).long()),
                                      batch_size=8, drop_last=True))
    with pytest.raises(ValueError, match="yielded no batches"):
        fit_quickly(mlp(), iter([]))
    with pytest.raises(ValueError, match="no batches"):
        train.evaluate(mlp(), [])


@pytest.mark.parametrize("epochs", [0, -1, 2.5])
def test_bad_epochs_are_reported(epochs):
    with pytest.raises(ValueError, match=f"epochs must be a whole number >= 1, got {epochs}"):
        fit_quickly(mlp(), loaders()[0], epochs=epochs)


def test_wrong_number_of_classes_names_both_numbers():
    batches = [(torch.randn(4, 4), torch.zeros(4).long())]

    class WithClasses(list):
        dataset = SimpleNamespace(classes=list("abcdefghij"))  # 10 classes

    with pytest.raises(ValueError, match="outputs 2 scores per image, but the dataset has 10 classes"):
        fit_quickly(mlp(), WithClasses(batches))


def test_unflattened_output_is_explained():
    model = nn.Sequential(nn.Conv2d(1, 2, 3))  # forgot Flatten + Linear
    batches = [(torch.randn(4, 1, 5, 5), torch.zeros(4).long())]
    with pytest.raises(ValueError, match=r"output has shape \(4, 2, 3, 3\).*\(4, K\).*flatten"):
        fit_quickly(model, batches)


def test_label_out_of_range_is_explained():
    batches = [(torch.randn(4, 4), torch.tensor([0, 1, 5, 1]))]
    with pytest.raises(ValueError, match="A label is 5, but the model outputs only 2 scores"):
        fit_quickly(mlp(), batches)


def test_optimizer_of_another_model_is_explained():
    model, other = mlp(), mlp()
    with pytest.raises(ValueError, match="none of this model's parameters"):
        train.fit(model, loaders()[0], epochs=1, optimizer=torch.optim.SGD(other.parameters(), lr=0.1))


def test_loader_yielding_something_else_than_pairs():
    with pytest.raises(TypeError, match=r"\(inputs, labels\) pairs.*tuple of length 3"):
        fit_quickly(mlp(), [(torch.randn(2, 4), torch.zeros(2).long(), "extra")])


def test_bad_scheduler_step():
    with pytest.raises(ValueError, match="'batch' or 'epoch'"):
        fit_quickly(mlp(), loaders()[0], scheduler_step="step")


# --------------------------------------------------------------------------
# The hooks: batch_transform and output_loss
# --------------------------------------------------------------------------
def frozen_fit(model, batches, **hooks):
    """One epoch with learning rate 0: the weights never change, so the reported loss can be recomputed."""
    return train.fit(model, batches, epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                     keep_best=False, progress=False, **hooks)


def fixed_mixup(lam):
    """A mixup-like transform with a fixed weight: each image mixed with the next one, soft targets (N, K)."""
    def mixup(x, y):
        y_soft = F.one_hot(y, 2).float()
        return lam * x + (1 - lam) * x.roll(1, dims=0), lam * y_soft + (1 - lam) * y_soft.roll(1, dims=0)
    return mixup


def test_batch_transform_is_called_on_every_training_batch():
    calls = []

    def record(x, y):
        calls.append(x.shape[0])
        return x, y

    train_dl, val_dl = loaders(batch_size=32)  # 8 batches per epoch
    model = mlp()
    train.fit(model, train_dl, val_dl, epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
              batch_transform=record, progress=False)
    assert calls == [32] * 16  # training batches only: the validation batches are not transformed


def test_batch_transform_with_soft_targets_trains_on_the_mixed_batch():
    x, y = blobs(64, seed=2)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    model = mlp()
    history = frozen_fit(model, batches, batch_transform=fixed_mixup(0.7))

    with torch.no_grad():
        losses, correct = [], 0
        for xb, yb in batches:
            mixed, soft = fixed_mixup(0.7)(xb, yb)
            logits = model(mixed)
            # cross-entropy is linear in the targets: the mixed loss is the mix of the two losses
            mixed_loss = 0.7 * F.cross_entropy(logits, yb) + 0.3 * F.cross_entropy(logits, yb.roll(1))
            assert F.cross_entropy(logits, soft).item() == pytest.approx(mixed_loss.item(), rel=1e-5)
            losses.append(mixed_loss.item())
            correct += (logits.argmax(1) == soft.argmax(1)).sum().item()  # the larger share counts
    assert history["train_loss"][0] == pytest.approx(sum(losses) / len(losses), rel=1e-5)
    assert history["train_acc"][0] == correct / 64
    assert history["train_loss"][0] != pytest.approx(frozen_fit(mlp(), batches)["train_loss"][0], rel=1e-3)


def test_one_hot_soft_targets_give_the_hard_label_loss():
    x, y = blobs(64, seed=3)
    logits = mlp()(x)
    one_hot = F.one_hot(y, 2).float()
    assert F.cross_entropy(logits, one_hot).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert torch.equal(train._hard_labels(one_hot), y)

    def to_one_hot(xb, yb):
        return xb, F.one_hot(yb, 2).float()

    train_dl, val_dl = loaders(shuffle=False)
    hard_model, soft_model = mlp(), mlp()
    hard = train.fit(hard_model, train_dl, val_dl, epochs=2, keep_best=False, progress=False,
                     optimizer=torch.optim.SGD(hard_model.parameters(), lr=0.1))
    soft = train.fit(soft_model, train_dl, val_dl, epochs=2, keep_best=False, progress=False,
                     optimizer=torch.optim.SGD(soft_model.parameters(), lr=0.1), batch_transform=to_one_hot)
    assert soft["train_loss"] == pytest.approx(hard["train_loss"], rel=1e-5)
    assert soft["train_acc"] == hard["train_acc"] and soft["val_acc"] == hard["val_acc"]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(hard_model.parameters(), soft_model.parameters()))


def test_soft_targets_of_the_wrong_width_are_explained():
    batches = [(torch.randn(4, 4), torch.full((4, 3), 1 / 3))]  # 3 shares, but the model has 2 outputs
    with pytest.raises(ValueError, match=r"soft targets have shape \(4, 3\).*\(4, 2\)"):
        fit_quickly(mlp(), batches)


class TwoHeads(nn.Module):
    """In training mode (logits, aux_logits), like GoogLeNet; in eval mode the logits only."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Linear(4, 2)
        self.aux = nn.Linear(4, 2)

    def forward(self, x):
        logits = self.body(x)
        return (logits, self.aux(x)) if self.training else logits


def main_and_aux(output, y, loss_fn, aux_weight=0.5):
    logits, aux = output
    return logits, loss_fn(logits, y) + aux_weight * loss_fn(aux, y)


def test_output_loss_handles_a_model_returning_a_tuple():
    x, y = blobs(64, seed=4)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    model = TwoHeads()
    with torch.no_grad():  # the auxiliary head disagrees with the main one on every image
        model.aux.weight.copy_(-model.body.weight)
        model.aux.bias.copy_(-model.body.bias)
    history = frozen_fit(model, batches, output_loss=main_and_aux)

    with torch.no_grad():
        main, aux = model.body(x), model.aux(x)
    expected_loss = F.cross_entropy(main, y) + 0.5 * F.cross_entropy(aux, y)  # equal batches: mean of batch means
    assert history["train_loss"][0] == pytest.approx(expected_loss.item(), rel=1e-5)
    assert history["train_acc"][0] == (main.argmax(1) == y).float().mean().item()  # the main logits' accuracy
    assert history["train_acc"][0] != (aux.argmax(1) == y).float().mean().item()


def test_a_model_returning_a_tuple_without_output_loss_is_explained():
    with pytest.raises(TypeError, match="returned a tuple.*output_loss"):
        fit_quickly(TwoHeads(), [(torch.randn(4, 4), torch.zeros(4).long())])


def test_googlenet_output_loss_is_the_main_loss_plus_weighted_aux_losses():
    from icdl.models import googlenet

    torch.manual_seed(0)
    outputs = googlenet.GoogLeNetOutputs(torch.randn(6, 3), torch.randn(6, 3), torch.randn(6, 3))
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    logits, loss = googlenet.aux_output_loss(outputs, y, F.cross_entropy)
    assert logits is outputs.logits
    assert torch.equal(loss, googlenet.googlenet_loss(outputs, y, aux_weight=0.3))
    _, heavier = googlenet.aux_output_loss(outputs, y, F.cross_entropy, aux_weight=1.0)
    assert heavier.item() == pytest.approx(sum(F.cross_entropy(o, y).item() for o in outputs), rel=1e-6)
    plain_logits, plain = googlenet.aux_output_loss(outputs.logits, y, F.cross_entropy)  # aux_logits=False
    assert plain_logits is outputs.logits and torch.equal(plain, F.cross_entropy(outputs.logits, y))


def scale_inputs(factor):
    def transform(x, y):
        return factor * x, y
    return transform


def doubled_loss(output, y, loss_fn, weight=2.0):
    return output, weight * loss_fn(output, y)


def test_checkpoint_made_with_another_hook_is_not_resumed(tmp_path, capsys):
    path = tmp_path / "mlp.pt"
    fit_small(path, batch_transform=scale_inputs(2.0))
    fit_small(path, batch_transform=scale_inputs(2.0))
    assert "no training needed" in capsys.readouterr().out  # the same hook: the same run

    _, history = fit_small(path, batch_transform=scale_inputs(3.0))
    out = capsys.readouterr().out
    assert "was saved by a different run" in out
    assert "batch_transform: test_train.scale_inputs.<locals>.transform(factor=2.0) -> " \
           "test_train.scale_inputs.<locals>.transform(factor=3.0)" in out
    assert history["epoch"] == [1, 2]

    fit_small(path, batch_transform=scale_inputs(3.0), output_loss=doubled_loss)
    out = capsys.readouterr().out
    assert "output_loss: (none) -> test_train.doubled_loss(weight=2.0)" in out

    fit_small(path, batch_transform=scale_inputs(3.0), output_loss=functools.partial(doubled_loss, weight=3.0))
    out = capsys.readouterr().out
    assert "output_loss: test_train.doubled_loss(weight=2.0) -> functools.partial(<function doubled_loss>" in out
    assert "weight=3.0" in out and "0x" not in out


def test_hooks_must_be_callable():
    with pytest.raises(TypeError, match="batch_transform should be a function"):
        fit_quickly(mlp(), loaders()[0], batch_transform="mixup")
