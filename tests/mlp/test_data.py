"""Fashion-MNIST files: checksums, clear errors, and the seeded train/validation split."""

import gzip
import shutil
from pathlib import Path

import pytest
import torch

from mlp.data import SHA256, DataError, batches, load_splits, prepare
from tests.conftest import DATA_ROOT

RAW = DATA_ROOT / "FashionMNIST" / "raw"


def _fake_debian(tmp_path: Path) -> Path:
    src = tmp_path / "debian"
    src.mkdir()
    for name in SHA256:
        shutil.copyfile(RAW / name, src / name)
    return src


def test_prepare_copies_verifies_and_unpacks(tmp_path: Path) -> None:
    raw = prepare(tmp_path / "d", allow_install=False, debian_dir=_fake_debian(tmp_path))
    for name in SHA256:
        assert (raw / name).exists()
        with gzip.open(raw / name) as f:
            assert (raw / name.removesuffix(".gz")).read_bytes() == f.read()


def test_corrupt_file_fails_with_checksum_message(tmp_path: Path) -> None:
    src = _fake_debian(tmp_path)
    (src / "train-labels-idx1-ubyte.gz").write_bytes(b"not the real file")
    with pytest.raises(DataError, match="checksum mismatch for .*train-labels"):
        prepare(tmp_path / "d", allow_install=False, debian_dir=src)
    assert not (tmp_path / "d" / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte").exists()


def test_missing_data_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        prepare(tmp_path / "d", allow_install=False, debian_dir=tmp_path / "nowhere")


def test_split_is_seeded_disjoint_and_sized() -> None:
    a = load_splits(DATA_ROOT, val_size=5000, seed=3)
    b = load_splits(DATA_ROOT, val_size=5000, seed=3)
    c = load_splits(DATA_ROOT, val_size=5000, seed=4)
    assert torch.equal(a.val_index, b.val_index) and torch.equal(a.train_x, b.train_x)
    assert not torch.equal(a.val_index, c.val_index)
    assert len(a.val_x) == 5000 and len(a.train_x) == 55000 and len(a.test_x) == 10000
    assert not set(a.val_index.tolist()) & set(a.train_index.tolist())
    assert a.train_x.shape[1] == 784 and 0.0 <= a.train_x.min() and a.train_x.max() <= 1.0


def test_limit_train_keeps_validation_unchanged() -> None:
    full = load_splits(DATA_ROOT, val_size=1000, seed=0)
    small = load_splits(DATA_ROOT, val_size=1000, seed=0, limit_train=300)
    assert len(small.train_x) == 300
    assert torch.equal(full.val_index, small.val_index)


def test_batches_cover_every_row_once() -> None:
    x = torch.arange(10).float().reshape(10, 1)
    y = torch.arange(10)
    seen = torch.cat([yb for _, yb in batches(x, y, 3, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10))
    assert [len(yb) for _, yb in batches(x, y, 4)] == [4, 4, 2]
