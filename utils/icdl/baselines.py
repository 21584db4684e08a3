"""Simple baselines that put a network's accuracy in context.

Every accuracy in the book is printed beside two numbers computed on the same
split: **chance** (always guessing the most common training class) and a
**simple baseline** on raw pixels, either the one-nearest-neighbour classifier
or logistic regression. A network that does not clearly beat them has learnt
little that the pixels did not already say.
"""

from __future__ import annotations

import torch


def _flat(ds, max_n: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of an ImageSet as float rows ``(N, C*H*W)`` on the 0..1 scale, and labels."""
    images, labels = ds.images, ds.labels
    if max_n is not None and len(labels) > max_n:
        keep = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:max_n]
        images, labels = images[keep], labels[keep]
    return images.reshape(len(images), -1).float().div_(255), labels


def chance(train_ds, test_ds) -> float:
    """Accuracy on ``test_ds`` of always answering the most common class of ``train_ds``."""
    majority = torch.bincount(train_ds.labels).argmax()
    return (test_ds.labels == majority).float().mean().item()


def nearest_neighbour(train_ds, test_ds, max_train: int | None = 20_000, chunk: int = 512) -> float:
    """Test accuracy of 1-nearest-neighbour on raw pixels (Euclidean distance).

    ``max_train`` caps the reference set (a seeded random subset), which keeps
    the cost at ``max_train x len(test_ds)`` distances.
    """
    xtr, ytr = _flat(train_ds, max_train)
    xte, yte = _flat(test_ds)
    sq = (xtr * xtr).sum(1)
    correct = 0
    for start in range(0, len(yte), chunk):
        q = xte[start:start + chunk]
        # ||q - x||^2 = |q|^2 - 2 q.x + |x|^2; |q|^2 is the same for every x, so it can be left out.
        nearest = (sq - 2 * q @ xtr.T).argmin(1)
        correct += (ytr[nearest] == yte[start:start + chunk]).sum().item()
    return correct / len(yte)


def logistic_regression(train_ds, test_ds, max_train: int | None = 10_000, max_iter: int = 200) -> float:
    """Test accuracy of multinomial logistic regression on standardised raw pixels (scikit-learn)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr, ytr = _flat(train_ds, max_train)
    xte, yte = _flat(test_ds)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    model.fit(xtr.numpy(), ytr.numpy())
    return float((model.predict(xte.numpy()) == yte.numpy()).mean())


def context(train_ds, test_ds, method: str = "1-NN", **kwargs) -> dict:
    """``{"chance": ..., "baseline": ..., "method": ...}`` for ``train_ds``/``test_ds``, printed in one line."""
    fn = {"1-NN": nearest_neighbour, "logistic regression": logistic_regression}.get(method)
    if fn is None:
        raise ValueError(f"method must be '1-NN' or 'logistic regression', not {method!r}")
    result = {"chance": chance(train_ds, test_ds), "baseline": fn(train_ds, test_ds, **kwargs), "method": method}
    print(f"chance: {result['chance']:.1%} | {method} on raw pixels: {result['baseline']:.1%} "
          f"({len(train_ds):,} training images, {len(test_ds):,} test images)")
    return result
