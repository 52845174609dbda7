"""A study's metrics (``sweep.metric``: one, or several for a multi-objective study): what a trial
is told, how it is shown, and for several metrics the Pareto front and the few trials along it
that the finish retrains (the most accurate, the cheapest and the knee)."""

from __future__ import annotations

import itertools
import math

import optuna
from optuna.trial import FrozenTrial

from experiments.config import Config
from mlp.model import hidden_sizes_for

Objectives = list[tuple[str, str]]  # [(metric, "maximize" | "minimize"), ...], the score first


def objective_key(name: str) -> str:
    """The key a trial's MLflow run records an objective's value under: the best over epochs
    for a validation metric, the mean for the epoch's seconds, the count for parameters."""
    if name.startswith("val/"):
        return f"{name}_best"
    if name == "perf/epoch_seconds":
        return "perf/epoch_seconds_mean"
    return name


def fmt(value: float) -> str:
    """A count as it is (25450), a fraction to 4 decimals (0.8712), else 4 significant digits."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.4g}"


def values_text(objs: Objectives, values: list[float]) -> str:
    return " ".join(f"{name} {fmt(v)}" for (name, _), v in zip(objs, values, strict=True))


def front(study: optuna.Study) -> list[FrozenTrial]:
    """The Pareto-optimal complete trials, the best score first."""
    trials = study.best_trials
    sign = -1 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1
    return sorted(trials, key=lambda t: (sign * t.values[0], t.number))


def along_front(trials: list[FrozenTrial], objs: Objectives, k: int) -> list[tuple[str, FrozenTrial]]:
    """Up to ``k`` front trials spread along it, each with why it was picked: the most accurate
    (best first metric), the cheapest (best second metric), the knee (nearest the ideal point once
    each metric is scaled to [0, 1]), then the rest in order of distance from the picked ones."""
    if not trials:
        return []
    scaled = _scaled(trials, objs)
    picks: list[tuple[str, FrozenTrial]] = [("most accurate", trials[0])]
    cheapest = min(range(len(trials)), key=lambda i: (scaled[i][1], scaled[i][0]))
    picks.append((f"lowest {objs[1][0]}", trials[cheapest]))
    knee = min(range(len(trials)), key=lambda i: (math.hypot(*scaled[i]), trials[i].number))
    picks.append(("knee", trials[knee]))
    chosen: list[tuple[str, FrozenTrial]] = []
    for why, t in picks:
        if all(t.number != c.number for _, c in chosen):
            chosen.append((why, t))
    rest = [i for i, t in enumerate(trials) if all(t.number != c.number for _, c in chosen)]
    while rest and len(chosen) < k:  # farthest from everything chosen so far
        taken = [trials.index(c) for _, c in chosen]
        far = max(rest, key=lambda i: min(math.dist(scaled[i], scaled[j]) for j in taken))
        chosen.append(("spread", trials[far]))
        rest.remove(far)
    return chosen[:k]


def _scaled(trials: list[FrozenTrial], objs: Objectives) -> list[list[float]]:
    """Each trial's values scaled to [0, 1] per metric, 0 the best end."""
    out = [[0.0] * len(objs) for _ in trials]
    for j, (_, direction) in enumerate(objs):
        vs = [t.values[j] for t in trials]
        lo, hi = min(vs), max(vs)
        for i, v in enumerate(vs):
            x = (v - lo) / (hi - lo) if hi > lo else 0.0
            out[i][j] = 1 - x if direction == "maximize" else x
    return out


def aggregate(objs: Objectives, values: list[float] | None, metrics: dict[str, float], epoch: int,
              fixed: dict[str, float]) -> list[float]:
    """Each metric's value after ``epoch``: a validation metric's best so far, the mean of the
    epochs' seconds, a fixed value as it is."""
    out = []
    for k, (name, direction) in enumerate(objs):
        before = values[k] if values else None
        if name in fixed:
            out.append(fixed[name])
        elif name.startswith("perf/"):
            out.append(metrics[name] if before is None else before + (metrics[name] - before) / epoch)
        else:
            pick = min if direction == "minimize" else max
            out.append(metrics[name] if before is None else pick(before, metrics[name]))
    return out


def fixed_metrics(cfg: Config) -> dict[str, float]:
    """The metrics a trial's configuration decides before it trains: its parameter count."""
    sizes = [28 * 28, *hidden_sizes_for(cfg.model.depth, cfg.model.width, cfg.model.hidden_sizes), 10]
    return {"model/num_params": float(sum(a * b + b for a, b in itertools.pairwise(sizes)))}
