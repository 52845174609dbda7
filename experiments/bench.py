"""Side-by-side speed and memory benchmark: ``python -m experiments.bench [--epochs N] [--quick]``.

Speed: one epoch of the default model (784-256-10, relu, sigma 0.01, SGD lr 0.1, batch 256)
through the seeds' torchvision ``DataLoader`` pipeline, our ``train_epoch`` (autograd and
manual backward) and a floor of bare matmuls, in fp32 and, where the hardware multiplies bf16
natively, in bf16; then the same for 784-1024-1024-10 (2x1024); the copies a training step
makes; bf16 against fp32 per activation at 3x1024; and what ``train.precision=auto`` picks here,
with its pick's epoch against fp32's. Memory: training vs inference peak by depth and batch. All
ratios come from the same run; every time is the median of interleaved repeats.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import torch

from experiments.benchmarks.epoch import ROOT, median_times, print_speed, speed_runners
from experiments.benchmarks.memory import print_memory
from experiments.benchmarks.precision import print_activations, print_auto, print_copies
from experiments.config import plural
from experiments.training import resolve_device, setup_torch
from mlp.precision import native_bf16
from mlp.splits import load_splits


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.bench", description=__doc__)
    p.add_argument("--epochs", type=int, default=1, help="epochs per timed repeat")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (5; quick: 2)")
    p.add_argument("--quick", action="store_true", help="4096 samples, fewer memory points")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where to time it (auto: CUDA when there is one)")
    p.add_argument("--bf16", choices=["auto", "yes", "no"], default="auto",
                   help="bf16 rows: where the hardware has native bf16 (auto), always, never")
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
          f"not all 60k); {plural(args.epochs, 'epoch')} per repeat, median of {repeats}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    native, why = native_bf16(device)
    bf16 = args.bf16 == "yes" or (args.bf16 == "auto" and native)
    print(f"bf16: {'native' if native else 'not native'} ({why}); "
          + ("bf16 rows included" if bf16 else "bf16 rows skipped (emulated bf16 is slower than "
                                              "fp32 and says nothing; --bf16 yes runs them)"))
    precisions = ["fp32", "bf16"] if bf16 else ["fp32"]
    torch.manual_seed(0)
    for hidden, seeds, title in (([256], True, "784-256-10 (the chapter's model)"),
                                 ([1024, 1024], False, "784-1024-1024-10 (2x1024)")):
        runners = speed_runners(data, device, args.epochs, hidden, precisions, seeds)
        median_times(runners, 1)  # warm-up, untimed: library start-up is not the pipeline's cost
        print_speed(median_times(runners, repeats), n, title, hidden)
    print("floor = addmm, relu, softmax-CE gradient, the backward matmuls and SGD in place on "
          "pre-made random batches, all in the row's dtype; ours also shuffles (a gathered copy) "
          "every epoch and, in bf16, casts its fp32 parameters every step")
    print_copies()
    wide = dataclasses.replace(data, train_x=data.train_x[:1024], train_y=data.train_y[:1024]) \
        if args.quick else data  # 3x1024 epochs are long: the quick form times a quarter of them
    if bf16:
        print_activations(wide, device, args.epochs, repeats)
    print_auto(wide, device, args.epochs, repeats)
    sizes = [256, 1024] if args.quick else [256, 1024, 4096]
    print_memory([1, 2] if args.quick else [1, 2, 4], sizes, 1024, device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
