"""``python -m experiments.strategies [--seeds N] [--only a,b] [overrides]``: exercise 6.

Runs every search strategy on the shared space of ``conf/experiment/strategies.yaml`` under the
same budget of trained epochs (the full grid's), each with N search seeds, as studies named
``strategies-<strategy>-seed<k>``; then prints, per strategy, the best validation accuracy and
the trained epochs it took to reach the full grid's best, and writes that table to
``reports/strategies/summary.md``. An existing study resumes (nothing is rerun).
``python -m experiments.report`` draws the curves.

Examples:
  python -m experiments.strategies --seeds 3
  python -m experiments.strategies --seeds 1 --only grid,tpe sweep.quick=true
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.cli import Parser
from experiments.config import load_config
from experiments.results.strategies import STRATEGIES, overrides_for, study_names, summary
from experiments.study import run_sweep


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m experiments.strategies", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="search seeds per strategy (default 3)")
    p.add_argument("--only", default=",".join(STRATEGIES),
                   help=f"comma-separated strategies (default all: {', '.join(STRATEGIES)})")
    p.add_argument("--storage", default="sqlite:///optuna.db", help="Optuna storage URL")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for every study")
    args = p.parse_args(argv)
    args.names = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.names if s not in STRATEGIES]
    if unknown:
        p.error(f"unknown strategies {unknown}; expected {', '.join(STRATEGIES)}")
    if args.seeds < 1:
        p.error("--seeds must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in args.names:
        for seed in range(args.seeds):
            print(f"== strategy {name}, search seed {seed}", flush=True)
            code = run_sweep([*overrides_for(name, seed), f"sweep.storage={args.storage}",
                              *args.overrides])
            if code:
                return code
    quick = load_config(args.overrides).sweep.quick  # the quick form's studies have names of their own
    text = summary(args.names, args.seeds, args.storage, quick=quick)
    out = Path("reports") / "strategies"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text("# Exercise 6: search strategies\n\n" + text + "\n")
    print(text)
    names = study_names(args.names, args.seeds, quick=quick)
    print(f"curves: python -m experiments.report {' '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
