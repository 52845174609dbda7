"""Side-by-side speed and memory benchmark: ``python -m experiments.bench [--epochs N] [--quick]``.

Speed: one epoch of the default model (784-256-10, relu, sigma 0.01, SGD lr 0.1, batch 256)
through the seeds' torchvision ``DataLoader`` pipeline, our ``train_epoch`` (autograd and
manual backward) and a floor of bare matmuls. Memory: training vs inference peak by depth and
batch. All ratios come from the same run; every time is the median of interleaved repeats.
"""

from __future__ import annotations

import argparse
import os

import torch

from experiments.benchmarks.epoch import ROOT, median_times, print_speed, speed_runners
from experiments.benchmarks.memory import print_memory
from experiments.training import resolve_device, setup_torch
from mlp.data import load_splits


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
    setup_torch()
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
    runners = speed_runners(data, device, args.epochs)
    median_times(runners, 1)  # warm-up, untimed: library start-up is not the pipeline's cost
    print_speed(median_times(runners, repeats), n)
    sizes = [256, 1024] if args.quick else [256, 1024, 4096]
    print_memory([1, 2] if args.quick else [1, 2, 4], sizes, 1024, device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
