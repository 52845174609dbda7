"""Peak memory of training against inference by depth and batch size, and what autograd saves
for the backward pass."""

from __future__ import annotations

import ctypes
import math
import os
import re
from collections.abc import Callable

import torch

from experiments.benchmarks.epoch import model_and_opt, sync
from experiments.training import peak_memory_mb, reset_peak_memory
from mlp import functional as F
from mlp.model import count_parameters

M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def saved_for_backward_mb(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """MB of unique tensors autograd saves in one training forward (params and input excluded)."""
    skip = {p.data_ptr() for p in model.parameters()} | {x.data_ptr(), 0}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() not in skip:
            seen[t.data_ptr()] = max(seen.get(t.data_ptr(), 0), t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(model(x), y)
    return sum(seen.values()) / 2**20


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) / 1024


def peak_delta_mb(fn: Callable[[], None], device: torch.device) -> float:
    """Peak memory while ``fn`` runs, above what was in use just before it."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)  # hand freed heap pages back so they cannot hide new ones
    sync(device)
    reset_peak_memory(device)
    base = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else _rss_mb()
    fn()
    sync(device)
    return peak_memory_mb(device) - base


def memory_row(depth: int, batch: int, width: int, device: torch.device) -> tuple[float, ...]:
    """(train peak MB, inference peak MB, saved-for-backward MB) for one configuration."""
    model, opt = model_and_opt(device, [width] * depth)
    x = torch.rand(batch, 784, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def train_step() -> None:
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def infer() -> None:
        with torch.no_grad():
            model(x)

    train_step()  # warm-up: lazy library buffers are not the model's memory
    opt.zero_grad()
    train = peak_delta_mb(train_step, device)
    opt.zero_grad()
    infer_mb = peak_delta_mb(infer, device)
    return train, infer_mb, saved_for_backward_mb(model, x, y)


def print_memory(depths: list[int], sizes: list[int], width: int, device: torch.device) -> None:
    """The memory table; glibc is told to mmap every block over 64 KiB while it runs."""
    if device.type == "cpu" and not os.path.exists("/proc/self/clear_refs"):
        print("\nmemory: skipped, the CPU peak needs Linux's /proc/self/clear_refs")
        return
    libc = _libc() if device.type == "cpu" else None
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, 64 * 1024)  # freed tensors leave RSS at once
    try:
        _memory_table(depths, sizes, width, device)
    finally:
        if libc is not None:
            libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)  # glibc's default (now fixed)


def _memory_table(depths: list[int], sizes: list[int], width: int, device: torch.device) -> None:
    grads = {d: count_parameters(model_and_opt(device, [width] * d)[0]) * 4 / 2**20
             for d in depths}
    print(f"\nmemory, width {width}: peaks are above the RSS (CPU) or allocation (CUDA) just "
          "before; saved = unique tensors autograd keeps (no params, no input); train also "
          "holds the gradients: " + ", ".join(f"depth {d} {mb:.1f} MB" for d, mb in grads.items()))
    print(f"{'depth':>5}{'batch':>7}{'train MB':>11}{'infer MB':>11}{'ratio':>8}{'saved MB':>11}")
    for depth in depths:
        for batch in sizes:
            train, infer, saved = memory_row(depth, batch, width, device)
            ratio = train / infer if infer > 0 else math.inf
            print(f"{depth:>5}{batch:>7}{train:>11.1f}{infer:>11.1f}{ratio:>7.2f}x{saved:>11.1f}")
