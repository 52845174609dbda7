"""One epoch timed side by side: the seeds' torchvision ``DataLoader`` pipeline, our
``train_epoch`` (autograd and manual backward) in fp32 and bf16, and a floor of bare matmuls on
ready batches in each dtype. Every time is the median of interleaved repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from mlp import functional as F
from mlp.model import build_model
from mlp.optim import SGD
from mlp.precision import cast_inputs, compute_dtype
from mlp.splits import Splits
from mlp.train import train_epoch

ROOT, BATCH, LR, HIDDEN = "data", 256, 0.1, 256
# ours vs the seeds (fp32, bf16), ours vs its own dtype's floor
SPEEDUP_TARGET, BF16_SPEEDUP_TARGET, FLOOR_TARGET = 6.0, 10.0, 1.5
# bf16 vs our fp32, where bf16 is native: the chapter's model (its GEMMs are a third of a step),
# 2x1024 (GEMMs nearly all of it)
BF16_GAIN_TARGETS = {(256,): 1.4, (1024, 1024): 2.0}
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


def model_and_opt(device: torch.device, hidden: list[int] | None = None,
                  activation: str = "relu") -> tuple[torch.nn.Module, SGD]:
    model = build_model(784, 10, hidden or [HIDDEN], activation=activation, sigma=0.01,
                        seed=0).to(device)
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


def ours_runner(data: Splits, device: torch.device, epochs: int, backward: str,
                hidden: list[int] | None = None, precision: str = "fp32",
                activation: str = "relu") -> Runner:
    """``mlp.train.train_epoch`` on the in-memory tensors (it syncs via ``.item()``), the
    images held in the precision's dtype as training holds them."""
    x = cast_inputs(data.train_x, precision)

    def run() -> float:
        model, opt = model_and_opt(device, hidden, activation)
        gen = torch.Generator().manual_seed(0)
        return _timed(lambda: train_epoch(model, x, data.train_y, opt, batch_size=BATCH,
                                          backward=backward, generator=gen), epochs, device)
    return run


def _floor_step(x: torch.Tensor, y: torch.Tensor, params: list[torch.Tensor]) -> None:
    """Forward, softmax-CE gradient, backward matmuls and in-place SGD, in plain torch ops, all
    in the batches' dtype (no casts, no fp32 master weights)."""
    weights, biases = params[0::2], params[1::2]
    hs = [x]
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        hs.append(torch.addmm(b, hs[-1], w).clamp_min_(0))  # (B, H)
    dz = torch.softmax(torch.addmm(biases[-1], hs[-1], weights[-1]).float(), dim=1)  # (B, 10)
    dz.scatter_add_(1, y.view(-1, 1), dz.new_full((len(y), 1), -1.0))
    dz = dz.div_(len(y)).to(x.dtype)
    for i in range(len(weights) - 1, -1, -1):
        dw, db = hs[i].T @ dz, dz.sum(0)
        if i:
            dz = (dz @ weights[i].T).mul_(hs[i] > 0)  # masked by the relu
        weights[i].sub_(dw, alpha=LR)
        biases[i].sub_(db, alpha=LR)


def floor_runner(n: int, device: torch.device, epochs: int, hidden: list[int] | None = None,
                 precision: str = "fp32") -> Runner:
    """Pre-made contiguous random batches of the same shapes; no data handling at all."""
    dtype, sizes = compute_dtype(precision), [784, *(hidden or [HIDDEN]), 10]
    gen = torch.Generator().manual_seed(0)
    xs = torch.rand(n, 784, generator=gen).to(device, dtype).split(BATCH)
    ys = torch.randint(0, 10, (n,), generator=gen).to(device).split(BATCH)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=False):
        params += [torch.randn(fan_in, fan_out, generator=gen).mul_(0.01), torch.zeros(fan_out)]
    params = [p.to(device, dtype) for p in params]

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


def print_speed(med: dict[str, float], n: int, title: str, hidden: list[int]) -> None:
    """One speed table: s/epoch, samples/s, speed-up vs the seeds and ratio to the floor of the
    row's own dtype; bf16 rows also give their speed-up over our fp32 row."""
    seeds = med.get("seeds' pipeline")
    gain_target = BF16_GAIN_TARGETS.get(tuple(hidden), 1.0)
    print(f"\n{title}")
    print(f"{'pipeline':<24}{'s/epoch':>10}{'samples/s':>12}{'vs seeds':>10}{'vs floor':>10}"
          f"  targets: fp32 >= {SPEEDUP_TARGET:g}x seeds, bf16 >= {BF16_SPEEDUP_TARGET:g}x; "
          f"<= {FLOOR_TARGET:g}x floor; bf16 >= {gain_target:g}x our fp32")
    for name, sec in med.items():
        bf16 = name.endswith("bf16")
        floor = med["floor, bf16" if bf16 else "floor, fp32"]
        verdicts = []
        if name.startswith("ours"):
            if seeds is not None:
                target = BF16_SPEEDUP_TARGET if bf16 else SPEEDUP_TARGET
                verdicts.append(f"speed-up {'PASS' if seeds / sec >= target else 'MISS'}")
            verdicts.append(f"floor {'PASS' if sec / floor <= FLOOR_TARGET else 'MISS'}")
            if bf16:
                gain = med[name.replace("bf16", "fp32")] / sec
                verdicts.append(f"{gain:.2f}x our fp32 {'PASS' if gain >= gain_target else 'MISS'}")
        vs_seeds = f"{seeds / sec:>9.2f}x" if seeds is not None else f"{'-':>10}"
        print(f"{name:<24}{sec:>10.3f}{n / sec:>12.0f}{vs_seeds}{sec / floor:>9.2f}x"
              f"{'  ' + ', '.join(verdicts) if verdicts else ''}")


def speed_runners(data: Splits, device: torch.device, epochs: int, hidden: list[int],
                  precisions: list[str], seeds: bool = True) -> dict[str, Runner]:
    """Our epoch (both backward passes) and the floor in each precision on the same images,
    and the seeds' pipeline first when ``seeds``."""
    runners = {"seeds' pipeline": seeds_runner(data, device, epochs)} if seeds else {}
    for p in precisions:
        runners[f"ours, autograd, {p}"] = ours_runner(data, device, epochs, "autograd", hidden, p)
        runners[f"ours, manual, {p}"] = ours_runner(data, device, epochs, "manual", hidden, p)
        runners[f"floor, {p}"] = floor_runner(len(data.train_x), device, epochs, hidden, p)
    return runners
