"""Standardisation from the training split only, and the folds of cross-validation: disjoint,
covering the training images, seeded, each standardised on its own training part."""

import pytest
import torch

from mlp.splits import Splits, fold_rows, load_folds, load_pool, load_splits, standardize
from tests.conftest import DATA_ROOT


def _shifted() -> Splits:
    """A split whose validation and test images are far brighter than its training images."""
    gen = torch.Generator().manual_seed(0)
    train = torch.rand(500, 784, generator=gen) * 0.2
    val, test = torch.rand(100, 784, generator=gen) + 5.0, torch.rand(100, 784, generator=gen) - 3.0
    y, idx = torch.zeros(500, dtype=torch.long), torch.arange(500)
    return Splits(train, y, val, y[:100], test, y[:100], idx, idx[:100])


def test_standardize_uses_the_training_split_only_and_applies_it_everywhere() -> None:
    raw = _shifted()
    out = standardize(raw)
    mean, std = raw.train_x.mean().item(), raw.train_x.std().item()
    assert (out.mean, out.std) == pytest.approx((mean, std))
    assert out.train_x.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert out.train_x.std().item() == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(out.val_x, (raw.val_x - mean) / std)  # not its own mean and std
    torch.testing.assert_close(out.test_x, (raw.test_x - mean) / std)
    assert out.val_x.mean().item() > 10  # still as far from the training images as before


def test_standardised_splits_keep_their_rows_and_say_their_statistics() -> None:
    plain = load_splits(DATA_ROOT, val_size=1000, limit_train=2000, seed=1)
    std = load_splits(DATA_ROOT, val_size=1000, limit_train=2000, seed=1, normalize="standardize")
    assert torch.equal(plain.train_index, std.train_index) and (plain.mean, plain.std) == (0.0, 1.0)
    torch.testing.assert_close(std.val_x * std.std + std.mean, plain.val_x)
    assert std.mean == pytest.approx(plain.train_x.mean().item())
    with pytest.raises(ValueError, match="unknown normalize 'minmax'"):
        load_splits(DATA_ROOT, val_size=1000, limit_train=10, normalize="minmax")


@pytest.mark.parametrize(("n", "k"), [(60000, 5), (1003, 4), (10, 10)])
def test_folds_are_disjoint_cover_every_row_and_differ_in_size_by_at_most_one(n: int, k: int) -> None:
    rows = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    parts = fold_rows(rows, k)
    assert len(parts) == k
    assert sorted(torch.cat(parts).tolist()) == list(range(n))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("k", [1, 11])
def test_impossible_fold_counts_are_refused(k: int) -> None:
    with pytest.raises(ValueError, match="folds must be in 2..10"):
        fold_rows(torch.arange(10), k)


@pytest.mark.slow
def test_each_fold_validates_on_its_part_and_trains_on_the_rest() -> None:
    folds = load_folds(DATA_ROOT, folds=5, seed=2)
    vals = [set(f.val_index.tolist()) for f in folds]
    assert all(not a & b for i, a in enumerate(vals) for b in vals[i + 1:])
    assert set().union(*vals) == set(range(60000))  # every training image validated once
    for f, val in zip(folds, vals, strict=True):
        assert not val & set(f.train_index.tolist())
        assert len(f.train_x) + len(f.val_x) == 60000 and len(f.test_x) == 10000
    again = load_folds(DATA_ROOT, folds=5, seed=2)
    assert all(torch.equal(a.val_index, b.val_index) for a, b in zip(folds, again, strict=True))
    assert not torch.equal(load_folds(DATA_ROOT, folds=5, seed=3)[0].val_index, folds[0].val_index)


def test_limited_folds_split_only_that_many_images_each_standardised_on_its_own_training_part() -> None:
    folds = load_folds(DATA_ROOT, folds=4, limit_train=1000, seed=0, normalize="standardize")
    assert sum(len(f.val_x) for f in folds) == 1000
    raw = load_folds(DATA_ROOT, folds=4, limit_train=1000, seed=0)
    for f, r in zip(folds, raw, strict=True):
        assert f.mean == pytest.approx(r.train_x.mean().item())
        torch.testing.assert_close(f.val_x, (r.val_x - f.mean) / f.std)
    assert len({round(f.mean, 6) for f in folds}) == 4  # four training parts, four scalings
    pool = load_pool(DATA_ROOT, limit_train=1000, seed=0)
    assert sorted(pool.train_index.tolist()) == sorted(torch.cat([f.val_index for f in raw]).tolist())
    assert len(pool.val_x) == 0
