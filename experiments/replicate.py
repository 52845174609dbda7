"""``python -m experiments.replicate STUDY --top K --seeds N``: is the best trial really better?

Retrains the study's top K configurations (ranked on validation) with N seeds each. The seed
changes the train/validation split, the initial weights, the batch order and dropout, so the
spread is the noise a single run hides. Each replicate is a child run (tag ``kind=replicate``)
under the study's parent MLflow run; the summary (mean, standard deviation and a 95% t
confidence interval of validation and test accuracy) is printed, written to ``--out`` and
logged to the parent under ``replicate/``, where ``experiments.report`` picks it up.

Each replicate evaluates the test set once: that is the point of replicates (to see the noise
of the number you will quote), but choose between configurations on the validation columns.

With ``--precisions fp32,bf16`` every configuration and seed is trained in each precision and
the test accuracy difference is printed, paired by seed, with its 95% interval.

Examples:
  python -m experiments.replicate mlp-sweep --top 2 --seeds 3
  python -m experiments.replicate mlp-sweep --top 1 --seeds 3 --precisions fp32,bf16
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.cli import Parser, UsageError, fail, quiet_libraries
from experiments.results import default_out
from experiments.results.replicate import (
    log_summary,
    parity,
    plan,
    replicate,
    summarise,
    table,
    verdicts,
    where_next,
    write,
)
from experiments.training import setup_torch

NOTE = ("note: every replicate evaluated the test set once, to show its noise; choose between "
        "configurations on validation accuracy, not on these test numbers.")


def precisions(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in names if p not in ("fp32", "bf16")]
    if bad or len(set(names)) != len(names) or len(names) < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected two or more of fp32, bf16, e.g. fp32,bf16")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m experiments.replicate", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", metavar="STUDY", help="Optuna study name")
    p.add_argument("--top", type=int, default=3, help="how many of the best trials (default 3)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per configuration, >= 2 (default 5)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first..first+N-1")
    p.add_argument("--storage", default="sqlite:///optuna.db", help="Optuna storage URL")
    p.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow tracking URI")
    p.add_argument("--precisions", type=precisions, default=None, metavar="P,P",
                   help="train each seed in each of these precisions (fp32, bf16) and compare")
    p.add_argument("--out", type=Path, help="folder for the summary (default reports/<study>)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_libraries()
    try:
        parent_id, configs, client = plan(args)
    except UsageError as exc:
        fail(str(exc))
    setup_torch()
    runs = len(configs) * args.seeds * len(args.precisions or [None])
    print(f"replicating trials {', '.join(str(n) for n, _, _ in configs)} of study {args.study!r} "
          f"with {args.seeds} seeds each{' in ' + ' and '.join(args.precisions) if args.precisions else ''}"
          f" ({runs} runs under MLflow run {parent_id}); each evaluates the test set once", flush=True)
    try:
        records = replicate(args, parent_id, configs)
    except KeyboardInterrupt:
        print("interrupted: the running replicate is marked KILLED; nothing summarised", file=sys.stderr)
        return 130
    rows = summarise(records, configs, args.precisions)
    compared = parity(records, args.precisions) if args.precisions else verdicts(rows, records)
    lines = [*table(rows), "", *compared, "", NOTE]
    print("\n".join(lines))
    out = args.out or default_out([args.study])
    write(out, rows, records, lines)
    log_summary(client, parent_id, rows, out)
    print(f"summary: {out / 'replicates.md'} (logged under replicate/ to MLflow run {parent_id})")
    print("\n".join(where_next(args, client, parent_id)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
