"""Fashion-MNIST files: checksums (packed and unpacked), clear errors, and the seeded
train/validation split."""

import gzip
import shutil
from pathlib import Path

import pytest
import torch

from mlp.data import SHA256, DataError, load_raw, prepare, verify_data
from mlp.splits import batches, load_splits
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


def _copy_root(tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(RAW, root / "FashionMNIST" / "raw")
    return root


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[16 + 28 * 28 * 123 + 400] ^= 0x01  # one pixel of image 123, past the header
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(("damage", "name", "says"), [
    (_flip_byte, "train-images-idx3-ubyte", "is corrupt"),
    (_truncate, "t10k-images-idx3-ubyte", "is truncated"),
])
def test_damaged_unpacked_file_is_refused_in_one_line(tmp_path: Path, damage: object, name: str,
                                                      says: str) -> None:
    root = _copy_root(tmp_path)
    verify_data(root)  # the good copy passes
    assert torch.equal(load_raw(str(root))[0], load_raw(str(DATA_ROOT))[0])
    load_raw.cache_clear()  # read the files again, not the tensors above
    damage(root / "FashionMNIST" / "raw" / name)  # type: ignore[operator]
    for read in (lambda: verify_data(root), lambda: load_raw(str(root))):
        with pytest.raises(DataError) as err:
            read()
        message = str(err.value)
        assert isinstance(err.value, ValueError) and "\n" not in message
        assert f"{name} {says}" in message and "delete it and run `python -m mlp" in message


def test_missing_file_is_named_and_the_advice_restores_it_offline(tmp_path: Path) -> None:
    root = _copy_root(tmp_path)
    (root / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte is missing; run `python -m mlp "):
        verify_data(root)
    assert not (root / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte").exists()  # no fetching
    prepare(root, allow_install=False, debian_dir=tmp_path / "nowhere")  # what `python -m mlp` does
    verify_data(root)  # unpacked again from the verified .gz beside it


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
