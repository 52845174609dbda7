"""Fashion-MNIST: locate, verify and prepare the files, and read them into tensors (the splits
and batches made of them are in :mod:`mlp.splits`)."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO

import torch

__all__ = [
    "CLASSES",
    "DEBIAN_DIR",
    "DataError",
    "prepare",
    "verify_data",
    "load_raw",
]

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
# The unpacked files training reads: (size in bytes, SHA-256). Computed from the verified .gz
# above (gzip -dc FILE.gz | sha256sum); torchvision unpacks them to the same bytes.
UNPACKED = {
    "train-images-idx3-ubyte": (47040016,
                                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte": (60008,
                                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte": (7840016,
                               "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte": (10008,
                               "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle boot"]
FIX = ("install Debian's package (apt-get update && apt-get install dataset-fashion-mnist) "
       "or run `make data`")


class DataError(RuntimeError, ValueError):
    """Missing or corrupt data; the message (one line) says how to fix it."""


def raw_dir(root: str | os.PathLike) -> Path:
    """Where torchvision's ``FashionMNIST(root)`` looks for the files."""
    return Path(root) / "FashionMNIST" / "raw"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path) -> None:
    got = _sha256(path)
    if got != SHA256[path.name]:
        raise DataError(f"checksum mismatch for {path}: expected {SHA256[path.name][:12]}..., "
                        f"got {got[:12]}...; delete it and prepare the data again ({FIX})")


def _unpacked(gz: Path) -> Path:
    return gz.with_suffix("")


def _is_ready(raw: Path) -> bool:
    """The four .gz are there: a missing unpacked file is then unpacked again from them."""
    return all((raw / n).exists() for n in SHA256)


def _apt_install() -> bool:
    """Install Debian's dataset package when running as root with apt-get; True on success."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    for cmd in (["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"],
                ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"]):
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if all((DEBIAN_DIR / n).exists() for n in SHA256):
            return True
    return False


def _torchvision_download(root: Path) -> None:
    from torchvision.datasets import FashionMNIST

    try:
        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
    except Exception as exc:  # noqa: BLE001 - any network failure means the same to the user
        raise DataError(f"Fashion-MNIST is not in {raw_dir(root)} and could not be downloaded "
                        f"({type(exc).__name__}); {FIX}") from None


def prepare(root: str | os.PathLike, *, allow_install: bool = True,
            debian_dir: Path = DEBIAN_DIR) -> Path:
    """Make ``<root>/FashionMNIST/raw`` hold the four verified files, unpacked.

    Sources, in order: files already there; Debian's ``dataset-fashion-mnist``
    (installed with apt-get when running as root); torchvision's own download.
    Every original ``.gz`` is checked against its published SHA-256.
    """
    root = Path(root)
    raw = raw_dir(root)
    if not _is_ready(raw):
        if not all((debian_dir / n).exists() for n in SHA256) and allow_install:
            _apt_install()
        if all((debian_dir / n).exists() for n in SHA256):
            raw.mkdir(parents=True, exist_ok=True)
            for name in SHA256:
                _verify(debian_dir / name)
                with (debian_dir / name).open("rb") as src:
                    _write_atomically(raw / name, src)
        elif allow_install:
            _torchvision_download(root)
        else:
            raise DataError(f"Fashion-MNIST is not in {raw} nor in {debian_dir}; {FIX}")
    for name in SHA256:
        _verify(raw / name)
        target = _unpacked(raw / name)
        if not target.exists():
            with gzip.open(raw / name, "rb") as src:
                _write_atomically(target, src)
    return raw


def _write_atomically(target: Path, src: BinaryIO) -> None:
    """Copy ``src`` to ``target`` through a temporary file beside it, then rename it into place:
    processes that prepare the data together (sweep workers on a fresh machine) never read half
    a file."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the data is not
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_verified(root: Path, name: str) -> bytearray:
    """The whole unpacked file, after its size and SHA-256 were checked on these very bytes."""
    path = raw_dir(root) / name
    size, sha = UNPACKED[name]
    restore = f"run `python -m mlp {shlex.quote(str(root))}` to restore it"
    fix = f"delete it and {restore} from the verified .gz"
    if not path.is_file():
        raise DataError(f"{path} is missing; {restore}")
    got_size = path.stat().st_size
    if got_size != size:
        what = "truncated" if got_size < size else "too long"
        raise DataError(f"{path} is {what} ({got_size} bytes, expected {size}); {fix}")
    buf = bytearray(size)
    with path.open("rb") as f:
        n = f.readinto(buf)
    got = hashlib.sha256(buf).hexdigest()
    if n != size or got != sha:
        raise DataError(f"{path} is corrupt (SHA-256 {got[:12]}..., expected {sha[:12]}...); "
                        f"{fix}")
    return buf


def verify_data(root: str | os.PathLike) -> None:
    """Check the four unpacked files that training reads: present, full size, right SHA-256.

    Raises :class:`DataError` with one line naming the first bad file and how to restore it.
    Reads only; never downloads or installs (about 0.1 s for the 55 MB).
    """
    for name in UNPACKED:
        _read_verified(Path(root), name)


@functools.lru_cache(maxsize=4)
def load_raw(root: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train_x, train_y, test_x, test_y)``: uint8 images (N, 28, 28) and int64 labels.

    Prepares the files first when one is missing; every file is verified (size and SHA-256)
    on the bytes that become the tensors, so a flipped byte raises :class:`DataError`.
    Cached per process, so a sweep reads them once.
    """
    if not all((raw_dir(root) / name).exists() for name in UNPACKED):
        prepare(root)
    out = []
    for name in UNPACKED:  # train images, train labels, test images, test labels
        buf = _read_verified(Path(root), name)
        if "images" in name:  # idx3 header: magic, N, 28, 28 (4 bytes each)
            out.append(torch.frombuffer(buf, dtype=torch.uint8, offset=16).view(-1, 28, 28))
        else:  # idx1 header: magic, N
            out.append(torch.frombuffer(buf, dtype=torch.uint8, offset=8).to(torch.int64))
    train_x, train_y, test_x, test_y = out
    return train_x, train_y, test_x, test_y
