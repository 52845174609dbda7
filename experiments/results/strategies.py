"""Exercise 6 in numbers: per search strategy, the best validation accuracy and the trained
epochs it took to reach the full grid's best, over several search seeds."""

from __future__ import annotations

import statistics

import optuna

from experiments.config import quick_name
from experiments.results.data import best_so_far, trial_rows

STRATEGIES = {  # name -> (sampler, pruner)
    "grid": ("grid", "none"),
    "random": ("random", "none"),
    "qmc": ("qmc", "none"),
    "tpe": ("tpe", "none"),
    "tpe-hyperband": ("tpe", "hyperband"),
}
TOLERANCE = 0.005  # "reached" also reported within half a point of the grid's best


def study_name(strategy: str, seed: int, *, quick: bool = False) -> str:
    name = f"strategies-{strategy}-seed{seed}"
    return quick_name(name) if quick else name


def study_names(strategies: list[str], seeds: int, *, quick: bool = False) -> list[str]:
    return [study_name(s, k, quick=quick) for s in strategies for k in range(seeds)]


def overrides_for(strategy: str, seed: int) -> list[str]:
    """The sweep overrides of one strategy's study with one search seed."""
    sampler, pruner = STRATEGIES[strategy]
    return ["+experiment=strategies", f"sweep.sampler={sampler}", f"sweep.pruner={pruner}",
            f"sweep.seed={seed}", f"sweep.study_name={study_name(strategy, seed)}"]


def curve(study: optuna.Study) -> list[tuple[int, float]]:
    """(cumulative trained epochs, best-so-far value) after each finished trial, in order."""
    xs, ys = best_so_far(trial_rows(study), minimize=False, by="epochs")
    return [(int(x), y) for x, y in zip(xs, ys, strict=True)]


def epochs_to(points: list[tuple[int, float]], target: float) -> int | None:
    return next((e for e, v in points if v >= target), None)


def summary(strategies: list[str], seeds: int, storage: str, *, quick: bool = False) -> str:
    """A Markdown table: per strategy, the median best value and epochs to the grid's best."""
    curves = {name: [curve(optuna.load_study(study_name=n, storage=storage))
                     for n in study_names([name], seeds, quick=quick)] for name in strategies}
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
