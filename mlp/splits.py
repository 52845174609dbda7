"""The splits of Fashion-MNIST a run trains, validates and tests on: a seeded hold-out split or
the k folds of cross-validation, optionally standardised; and minibatches of them."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from mlp.data import load_raw

__all__ = ["NORMALIZE", "Splits", "batches", "features", "fold_rows", "load_folds", "load_pool",
           "load_splits", "normalized", "pool_rows", "standardize"]

NORMALIZE = ("none", "standardize")
Raw = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # what load_raw returns


@dataclasses.dataclass
class Splits:
    """Flattened float images (N, 784), in [0, 1] or standardised, and int64 labels, for each split."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    train_index: torch.Tensor  # rows of the 60k training file used for training
    val_index: torch.Tensor  # rows of the 60k training file used for validation
    mean: float = 0.0  # every split is (pixel - mean) / std: 0 and 1 unless standardised
    std: float = 1.0


def features(x: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """uint8 images as rows of floats in [0, 1] on ``device``."""
    return (x.reshape(len(x), 784).to(torch.float32) / 255.0).to(device)  # (N, 28, 28) -> (N, 784)


def _split(raw: Raw, train_index: torch.Tensor, val_index: torch.Tensor, *, normalize: str,
           device: torch.device | str, test: tuple[torch.Tensor, torch.Tensor] | None = None) -> Splits:
    """Training and validation rows of the 60k training file as a :class:`Splits`, with the test
    set (``test`` when it is already on the device)."""
    train_x, train_y, test_x, test_y = raw
    test_x, test_y = test if test is not None else (features(test_x, device), test_y.to(device))
    return normalized(Splits(
        train_x=features(train_x[train_index], device), train_y=train_y[train_index].to(device),
        val_x=features(train_x[val_index], device), val_y=train_y[val_index].to(device),
        test_x=test_x, test_y=test_y, train_index=train_index, val_index=val_index), normalize)


def load_splits(root: str | os.PathLike, *, val_size: int = 10000, limit_train: int | None = None,
                seed: int = 0, normalize: str = "none", device: torch.device | str = "cpu") -> Splits:
    """Carve a seeded validation split from the 60k training images; keep the test set apart.

    ``limit_train`` keeps only that many training rows (after the validation rows are set
    aside), for quick runs. The validation and training rows never overlap.
    ``normalize="standardize"`` applies :func:`standardize`.
    """
    raw = load_raw(str(Path(root)))
    if not 0 < val_size < len(raw[0]):
        raise ValueError(f"val_size must be in 1..{len(raw[0]) - 1}, got {val_size}")
    perm = torch.randperm(len(raw[0]), generator=torch.Generator().manual_seed(seed))
    val_index, train_index = perm[:val_size], perm[val_size:]
    if limit_train is not None:
        train_index = train_index[:limit_train]
    return _split(raw, train_index, val_index, normalize=normalize, device=device)


def normalized(data: Splits, normalize: str) -> Splits:
    """``data`` as ``normalize`` asks: ``none`` (pixels in [0, 1]) or ``standardize``."""
    if normalize not in NORMALIZE:
        raise ValueError(f"unknown normalize {normalize!r}; expected {', '.join(NORMALIZE)}")
    return standardize(data) if normalize == "standardize" else data


def standardize(data: Splits) -> Splits:
    """Every split as (pixel - mean) / std, with one mean and one std over all pixels of the
    training split only: the validation and test images never shape their own scaling. (One
    pair, not one per pixel: a border pixel that is black in nearly every training image has a
    std near 0, and dividing by it would blow up the rare image that lights it.)"""
    mean, std = data.train_x.mean().item(), data.train_x.std().item()
    return dataclasses.replace(data, train_x=(data.train_x - mean) / std,
                               val_x=(data.val_x - mean) / std, test_x=(data.test_x - mean) / std,
                               mean=mean, std=std)


def pool_rows(n: int, *, limit_train: int | None, seed: int) -> torch.Tensor:
    """The rows cross-validation splits, in a seeded random order: all ``n``, or the first
    ``limit_train`` of that order."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:limit_train] if limit_train is not None else perm


def fold_rows(rows: torch.Tensor, folds: int) -> list[torch.Tensor]:
    """``rows`` (already in a seeded random order) cut into ``folds`` disjoint parts that cover
    them all, their sizes differing by at most one."""
    if not 2 <= folds <= len(rows):
        raise ValueError(f"folds must be in 2..{len(rows)}, got {folds}")
    return list(rows.tensor_split(folds))


def load_folds(root: str | os.PathLike, *, folds: int, limit_train: int | None = None, seed: int = 0,
               normalize: str = "none", device: torch.device | str = "cpu") -> list[Splits]:
    """The ``folds`` train/validation splits of k-fold cross-validation over the 60k training
    images (a seeded ``limit_train`` of them, for quick runs): fold i validates on part i and
    trains on the others, so every image is validated on exactly once. Each fold is standardised
    on its own training part; the test set is the same for all."""
    raw = load_raw(str(Path(root)))
    parts = fold_rows(pool_rows(len(raw[0]), limit_train=limit_train, seed=seed), folds)
    test = features(raw[2], device), raw[3].to(device)
    return [_split(raw, torch.cat([p for j, p in enumerate(parts) if j != i]), val, test=test,
                   normalize=normalize, device=device) for i, val in enumerate(parts)]


def load_pool(root: str | os.PathLike, *, limit_train: int | None = None, seed: int = 0,
              normalize: str = "none", device: torch.device | str = "cpu") -> Splits:
    """Every image :func:`load_folds` splits, all for training and none for validation: the
    refit of a cross-validated configuration, standardised on all of them."""
    raw = load_raw(str(Path(root)))
    rows = pool_rows(len(raw[0]), limit_train=limit_train, seed=seed)
    return _split(raw, rows, rows[:0], normalize=normalize, device=device)


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, *,
            generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Minibatches of in-memory tensors, in a fresh random order when a generator is given.

    Shuffled batches are gathered one at a time from a permutation of the row indices, so no
    shuffled copy of the whole data set is made; unshuffled batches are views.
    """
    if generator is None:
        for start in range(0, len(x), batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]
        return
    perm = torch.randperm(len(x), generator=generator).to(x.device)
    for start in range(0, len(x), batch_size):
        idx = perm[start:start + batch_size]
        yield x.index_select(0, idx), y.index_select(0, idx)
