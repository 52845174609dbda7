"""One epoch of the default model three ways, timed side by side: the seeds' torchvision
``DataLoader`` pipeline, our ``train_epoch`` (autograd and manual backward), and a floor of bare
matmuls on ready batches. Every time is the median of interleaved repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from mlp import functional as F
from mlp.data import Splits
from mlp.model import build_model
from mlp.optim import SGD
from mlp.train import train_epoch

ROOT, BATCH, LR, HIDDEN = "data", 256, 0.1, 256
SPEEDUP_TARGET, FLOOR_TARGET = 6.0, 1.5
Runner = Callable[[], float]  # runs the timed epochs, returns seconds per epoch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(epoch: Callable[[], object], epochs: int, device: torch.device) -> float:
    """Seconds per epoch of ``epochs`` calls of ``epoch``, the device synchronised around them."""
    sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    sync(device)
    return (time.perf_counter() - start) / epochs


def model_and_opt(device: torch.device,
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
        model, opt = model_and_opt(device)

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
        model, opt = model_and_opt(device)
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


def speed_runners(data: Splits, device: torch.device, epochs: int) -> dict[str, Runner]:
    """The four pipelines on the same training images."""
    return {"seeds' pipeline": seeds_runner(data, device, epochs),
            "ours, autograd": ours_runner(data, device, epochs, "autograd"),
            "ours, manual": ours_runner(data, device, epochs, "manual"),
            "floor (bare matmuls)": floor_runner(len(data.train_x), device, epochs)}
