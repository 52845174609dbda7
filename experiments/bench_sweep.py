"""``python -m experiments.bench_sweep [--trials N] [--quick]``: what the sweep machinery costs.

1. Overhead: a study of default trials (the chapter's model, 10 epochs, all the data; only the
   learning rate varies, by 0.0001) run in this process, timing each trial whole and the part
   spent training (``experiments.training.train_config``: model, epochs and validation, less its
   per-epoch callbacks). The rest is the machinery: the trial's config, Optuna (claim, sampling,
   reports, pruning checks, tell), MLflow (child run, params, per-epoch metrics, close) and the
   progress line. Target: under 5% of a trial.
2. Bookkeeping against study size: the same machinery per trial in a study of tiny trials (8
   hidden units, 256 images, 1 epoch; random sampler), median of trials 6-15 against the last
   10 of ``--tiny-trials`` (1,000). Target: flat.
3. Throughput: the same small-model study (width 32, 10,000 images, 3 epochs) with
   ``sweep.workers=1`` and ``sweep.workers=2`` in subprocesses, side by side; trials per hour
   from the first trial's start to the last one's end. Target: 2 workers >= 1.3x.
Every study lives in a temporary folder; nothing is asserted, the figures are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from experiments.benchmarks.sweep import OVERHEAD_TARGET, REPO, SPEEDUP_TARGET, overhead, throughput


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_sweep",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="default trials for the overhead")
    parser.add_argument("--small-trials", type=int, default=16, help="trials per throughput run")
    parser.add_argument("--tiny-trials", type=int, default=1000,
                        help="size of the bookkeeping study (0 skips it)")
    parser.add_argument("--data", default=str(REPO / "data"), help="the data root (data.root)")
    parser.add_argument("--quick", action="store_true", help="small data: a smoke test")
    args = parser.parse_args(argv)
    trial_s, train_s = overhead(args.trials, args.data, args.quick)
    shares = [(t - r) / t for t, r in zip(trial_s, train_s, strict=True)]
    share = statistics.median(shares)
    print(f"overhead of the sweep machinery, {len(trial_s)} default trials"
          f"{' (quick: 5,000 images, 2 epochs)' if args.quick else ''}: trial "
          f"{statistics.median(trial_s):.2f} s, training {statistics.median(train_s):.2f} s, "
          f"machinery {statistics.median(t - r for t, r in zip(trial_s, train_s, strict=True)):.3f}"
          f" s = {share:.1%} of a trial (median; target < {OVERHEAD_TARGET:.0%}: "
          f"{'PASS' if share < OVERHEAD_TARGET else 'MISS'})")
    if args.tiny_trials >= 30:
        trial_s, train_s = overhead(args.tiny_trials, args.data, args.quick, tiny=True)
        kept = [t - r for t, r in zip(trial_s, train_s, strict=True)]
        early, late = statistics.median(kept[5:15]), statistics.median(kept[-10:])
        print(f"bookkeeping per tiny trial: {early:.3f} s at trials 6-15, {late:.3f} s at the last "
              f"10 of {len(kept)}: {late / early:.2f}x (target: flat)")
    one = throughput(1, args.small_trials, args.data, args.quick)
    two = throughput(2, args.small_trials, args.data, args.quick)
    print(f"small-model trials per hour: 1 worker {one:,.0f}, 2 workers {two:,.0f}: "
          f"{two / one:.2f}x (target >= {SPEEDUP_TARGET}x: "
          f"{'PASS' if two / one >= SPEEDUP_TARGET else 'MISS'}); {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
