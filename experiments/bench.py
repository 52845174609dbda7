"""Side-by-side speed and memory benchmark: ``python -m experiments.bench [--epochs N] [--quick]``.

Speed: one epoch of the default model (784-256-10, relu, sigma 0.01, SGD lr 0.1, batch 256)
through the seeds' torchvision ``DataLoader`` pipeline, our ``train_epoch`` (autograd and
manual backward) and a floor of bare matmuls. Memory: training vs inference peak by depth and
batch. All ratios come from the same run; every time is the median of interleaved repeats.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import re
import statistics
import time
from collections.abc import Callable

import torch

from experiments.runner import peak_memory_mb, reset_peak_memory, resolve_device
from mlp import functional as F
from mlp.data import Splits, load_splits
from mlp.model import build_model, count_parameters
from mlp.optim import SGD
from mlp.train import train_epoch

ROOT, BATCH, LR, HIDDEN = "data", 256, 0.1, 256
SPEEDUP_TARGET, FLOOR_TARGET = 6.0, 1.5
M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
Runner = Callable[[], float]  # runs the timed epochs, returns seconds per epoch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(epoch: Callable[[], object], epochs: int, device: torch.device) -> float:
    """Seconds per epoch of ``epochs`` calls of ``epoch``, the device synchronised around them."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    _sync(device)
    return (time.perf_counter() - start) / epochs


def _model_and_opt(device: torch.device,
                   hidden: list[int] | None = None) -> tuple[torch.nn.Module, SGD]:
    model = build_model(784, 10, hidden or [HIDDEN], sigma=0.01, seed=0).to(device)
    return model, SGD(model.parameters(), LR)


def seeds_runner(data: Splits, device: torch.device, epochs: int) -> Runner:
    """The d2l chapter's pipeline: ToTensor per image, DataLoader, autograd, scratch SGD."""
    import torchvision
    from torch.utils.data import DataLoader, Subset

    full = torchvision.datasets.FashionMNIST(
        root=ROOT, train=True, transform=torchvision.transforms.ToTensor(), download=False)
    loader = DataLoader(Subset(full, data.train_index.tolist()), batch_size=BATCH,
                        shuffle=True, num_workers=0)

    def run() -> float:
        model, opt = _model_and_opt(device)

        def epoch() -> None:
            for x, y in loader:
                loss = F.cross_entropy(model(x.to(device)), y.to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
        return _timed(epoch, epochs, device)
    return run


def ours_runner(data: Splits, device: torch.device, epochs: int, backward: str) -> Runner:
    """``mlp.train.train_epoch`` on the in-memory tensors (it syncs via ``.item()``)."""
    def run() -> float:
        model, opt = _model_and_opt(device)
        gen = torch.Generator().manual_seed(0)
        return _timed(lambda: train_epoch(model, data.train_x, data.train_y, opt,
                                          batch_size=BATCH, backward=backward, generator=gen),
                      epochs, device)
    return run


def _floor_step(x: torch.Tensor, y: torch.Tensor, params: list[torch.Tensor]) -> None:
    """Forward, softmax-CE gradient, backward matmuls and in-place SGD, in plain torch ops."""
    w1, b1, w2, b2 = params
    h = torch.addmm(b1, x, w1).clamp_min_(0)  # (B, 256)
    dz = torch.softmax(torch.addmm(b2, h, w2), dim=1)  # (B, 10)
    dz[torch.arange(len(y), device=y.device), y] -= 1.0
    dz /= len(y)
    dw2, db2 = h.T @ dz, dz.sum(0)
    dz1 = (dz @ w2.T).mul_(h > 0)  # (B, 256), masked by the relu
    dw1, db1 = x.T @ dz1, dz1.sum(0)
    for p, g in zip(params, (dw1, db1, dw2, db2), strict=True):
        p.sub_(g, alpha=LR)


def floor_runner(n: int, device: torch.device, epochs: int) -> Runner:
    """Pre-made contiguous random batches of the same shapes; no data handling at all."""
    gen = torch.Generator().manual_seed(0)
    xs = torch.rand(n, 784, generator=gen).to(device).split(BATCH)
    ys = torch.randint(0, 10, (n,), generator=gen).to(device).split(BATCH)
    params = [torch.randn(784, HIDDEN, generator=gen).mul_(0.01), torch.zeros(HIDDEN),
              torch.randn(HIDDEN, 10, generator=gen).mul_(0.01), torch.zeros(10)]
    params = [p.to(device) for p in params]

    @torch.no_grad()
    def epoch() -> None:
        for x, y in zip(xs, ys, strict=True):
            _floor_step(x, y, params)
    return lambda: _timed(epoch, epochs, device)


def median_times(runners: dict[str, Runner], repeats: int) -> dict[str, float]:
    """Median seconds/epoch of each runner; repeats are interleaved so drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            times[name].append(run())
    return {name: statistics.median(ts) for name, ts in times.items()}


def print_speed(med: dict[str, float], n: int) -> None:
    """The speed table: s/epoch, samples/s, speed-up vs the seeds and ratio to the floor."""
    seeds, floor = med["seeds' pipeline"], med["floor (bare matmuls)"]
    print("\nfloor = addmm, relu, addmm, softmax-CE gradient, the 3 backward matmuls and SGD in "
          "place on pre-made random batches; ours also shuffles (a gathered copy) every epoch")
    print(f"{'pipeline':<24}{'s/epoch':>10}{'samples/s':>12}{'vs seeds':>10}"
          f"{'vs floor':>10}  targets (>= {SPEEDUP_TARGET:g}x seeds, <= {FLOOR_TARGET:g}x floor)")
    for name, sec in med.items():
        verdict = ""
        if name.startswith("ours"):
            fast = "PASS" if seeds / sec >= SPEEDUP_TARGET else "MISS"
            near = "PASS" if sec / floor <= FLOOR_TARGET else "MISS"
            verdict = f"  speed-up {fast}, floor {near}"
        print(f"{name:<24}{sec:>10.3f}{n / sec:>12.0f}{seeds / sec:>9.2f}x"
              f"{sec / floor:>9.2f}x{verdict}")


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
    _sync(device)
    reset_peak_memory(device)
    base = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else _rss_mb()
    fn()
    _sync(device)
    return peak_memory_mb(device) - base


def memory_row(depth: int, batch: int, width: int, device: torch.device) -> tuple[float, ...]:
    """(train peak MB, inference peak MB, saved-for-backward MB) for one configuration."""
    model, opt = _model_and_opt(device, [width] * depth)
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
    grads = {d: count_parameters(_model_and_opt(device, [width] * d)[0]) * 4 / 2**20
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.bench", description=__doc__)
    p.add_argument("--epochs", type=int, default=1, help="epochs per timed repeat")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (5; quick: 2)")
    p.add_argument("--quick", action="store_true", help="4096 samples, fewer memory points")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the speed and memory benchmarks and print both tables."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    repeats = args.repeats or (2 if args.quick else 5)
    data = load_splits(ROOT, val_size=10000, limit_train=4096 if args.quick else None,
                       device=device)
    n = len(data.train_x)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}; "
          f"{n} training images (the seeds' pipeline uses a Subset of the same {n} indices, "
          f"not all 60k); {args.epochs} epoch(s) per repeat, median of {repeats}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    torch.manual_seed(0)
    runners = {"seeds' pipeline": seeds_runner(data, device, args.epochs),
               "ours, autograd": ours_runner(data, device, args.epochs, "autograd"),
               "ours, manual": ours_runner(data, device, args.epochs, "manual"),
               "floor (bare matmuls)": floor_runner(n, device, args.epochs)}
    median_times(runners, 1)  # warm-up, untimed: library start-up is not the pipeline's cost
    print_speed(median_times(runners, repeats), n)
    sizes = [256, 1024] if args.quick else [256, 1024, 4096]
    print_memory([1, 2] if args.quick else [1, 2, 4], sizes, 1024, device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
