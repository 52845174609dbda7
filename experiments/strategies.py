"""``python -m experiments.strategies [--seeds N] [--only a,b] [overrides]``: exercise 6.

Runs every search strategy on the shared space of ``conf/experiment/strategies.yaml`` under the
same budget of trained epochs (the full grid's), each with N search seeds, as studies named
``strategies-<strategy>-seed<k>``; then prints, per strategy, the best validation accuracy and
the trained epochs it took to reach the full grid's best, and writes that table to
``reports/strategies/summary.md``. ``python -m experiments.report`` draws the curves.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import optuna

from experiments import sweep
from experiments.report_data import best_so_far, trial_rows

STRATEGIES = {  # name -> (sampler, pruner)
    "grid": ("grid", "none"),
    "random": ("random", "none"),
    "qmc": ("qmc", "none"),
    "tpe": ("tpe", "none"),
    "tpe-hyperband": ("tpe", "hyperband"),
}
TOLERANCE = 0.005  # "reached" also reported within half a point of the grid's best


def study_names(strategies: list[str], seeds: int) -> list[str]:
    return [f"strategies-{s}-seed{k}" for s in strategies for k in range(seeds)]


def run_all(strategies: list[str], seeds: int, overrides: list[str]) -> None:
    """One study per strategy and seed; an existing study resumes (nothing is rerun)."""
    for name in strategies:
        sampler, pruner = STRATEGIES[name]
        for seed in range(seeds):
            print(f"== strategy {name}, search seed {seed}", flush=True)
            code = sweep.main(["+experiment=strategies", f"sweep.sampler={sampler}",
                               f"sweep.pruner={pruner}", f"sweep.seed={seed}",
                               f"sweep.study_name=strategies-{name}-seed{seed}", *overrides])
            if code:
                raise SystemExit(code)


def curve(study: optuna.Study) -> list[tuple[int, float]]:
    """(cumulative trained epochs, best-so-far value) after each finished trial, in order."""
    xs, ys = best_so_far(trial_rows(study), minimize=False, by="epochs")
    return [(int(x), y) for x, y in zip(xs, ys, strict=True)]


def epochs_to(points: list[tuple[int, float]], target: float) -> int | None:
    return next((e for e, v in points if v >= target), None)


def summary(strategies: list[str], seeds: int, storage: str) -> str:
    """A Markdown table: per strategy, the median best value and epochs to the grid's best."""
    curves = {name: [curve(optuna.load_study(study_name=n, storage=storage))
                     for n in study_names([name], seeds)] for name in strategies}
    grid_best = max((c[-1][1] for c in curves.get("grid", []) if c), default=None)
    target = grid_best if grid_best is not None else max(c[-1][1] for cs in curves.values()
                                                          for c in cs if c)
    budget = max(c[-1][0] for cs in curves.values() for c in cs if c)
    lines = [f"Target: the full grid's best validation accuracy {target:.4f} (budget {budget} "
             f"trained epochs per study; medians over {seeds} search seeds).", "",
             "| strategy | best val/acc | epochs to the grid's best | reached | "
             f"epochs to within {TOLERANCE} | share of the grid's epochs |", "|---|---|---|---|---|---|"]
    for name, cs in curves.items():
        hit = [epochs_to(c, target) for c in cs]
        near = [epochs_to(c, target - TOLERANCE) for c in cs]
        reached = [h for h in hit if h is not None]
        med = statistics.median(reached) if reached else None
        near_ok = [n for n in near if n is not None]
        lines.append(f"| {name} | {statistics.median(c[-1][1] for c in cs):.4f} | "
                     f"{med if med is not None else 'not reached'} | {len(reached)}/{len(cs)} | "
                     f"{statistics.median(near_ok) if near_ok else 'not reached'} | "
                     f"{f'{med / budget:.2f}' if med is not None else '-'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default=",".join(STRATEGIES), help="comma-separated strategies")
    parser.add_argument("--storage", default="sqlite:///optuna.db")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every study")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown or args.seeds < 1:
        print(f"error: unknown strategies {unknown}; expected {', '.join(STRATEGIES)} and "
              "--seeds >= 1" if unknown else "error: --seeds must be >= 1", file=sys.stderr)
        return 2
    run_all(names, args.seeds, [f"sweep.storage={args.storage}", *args.overrides])
    text = summary(names, args.seeds, args.storage)
    out = Path("reports") / "strategies"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text("# Exercise 6: search strategies\n\n" + text + "\n")
    print(text)
    print(f"curves: python -m experiments.report {' '.join(study_names(names, args.seeds))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
