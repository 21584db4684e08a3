"""Tests of icdl.recipes: the reference recipe is what its documentation says, a scaled copy leaves it alone,
one tiny run goes through the whole function and writes its checkpoint, and the training-craft page's FLOP count is the code's."""

import inspect
import re

import pytest
import torch
from icdl import data, recipes
from icdl.env import repo_root
from icdl.summary import count_flops
from icdl.models import resnet


def test_reference_recipe_is_the_documented_one():
    r = recipes.REFERENCE
    assert (r.epochs, r.warmup_epochs, r.batch_size) == (100, 5, 128)
    assert (r.lr, r.weight_decay, r.label_smoothing, r.clip_grad_norm) == (1e-3, 0.05, 0.1, 1.0)
    assert r.max_steps_per_epoch is None  # whole epochs
    assert inspect.signature(recipes.train_cifar10).parameters["recipe"].default is recipes.REFERENCE


def test_scaled_is_a_copy():
    short = recipes.REFERENCE.scaled(epochs=3, warmup_epochs=1)
    assert (short.epochs, short.warmup_epochs, short.lr) == (3, 1, recipes.REFERENCE.lr)
    assert recipes.REFERENCE.epochs == 100
    with pytest.raises(TypeError):
        recipes.REFERENCE.scaled(epoch=3)  # a misspelt field fails instead of being ignored


def tiny_set(n, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 10
    return data.ImageSet(images, labels, [str(i) for i in range(10)], "tiny", True, (0.5,) * 3, (0.25,) * 3,
                         "random test images")


def test_train_cifar10_runs_end_to_end(tmp_path):
    torch.manual_seed(0)
    model = resnet.ResNet("basic", (1, 1, 1, 1), num_classes=10, widths=(4, 4, 8, 8), cifar_stem=True)
    recipe = recipes.REFERENCE.scaled(epochs=2, warmup_epochs=1, batch_size=16, max_steps_per_epoch=2)
    result = recipes.train_cifar10(model, tiny_set(64, 0), tiny_set(32, 1), tiny_set(32, 2), recipe,
                                   device="cpu", checkpoint=tmp_path / "run.pt", progress=False)
    assert len(result.history) == 2 and result.history.best_epoch in (1, 2)
    assert set(result.test) >= {"loss", "acc"} and 0.0 <= result.test["acc"] <= 1.0
    assert (tmp_path / "run.pt").exists() and result.seconds > 0


def test_training_craft_page_quotes_the_counted_flops():
    page = (repo_root() / "craft" / "reference_recipe.md").read_text()
    quoted = float(re.search(r"costs ([0-9.]+) GFLOPs per\s+32x32 image", page).group(1))
    counted = count_flops(resnet.resnet18(num_classes=10, cifar_stem=True), (1, 3, 32, 32)) / 1e9
    assert quoted == round(counted, 2)
    assert page.count("93%") == 1, "the course's time target is stated once, as a target"
