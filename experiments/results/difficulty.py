"""Exercise 5 in numbers: how a full grid grows with each hyperparameter searched, and how many
trials, trained epochs and minutes a study needed to reach given validation scores."""

from __future__ import annotations

from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from experiments.config import plural
from experiments.results.data import TrialRow
from experiments.results.page import Page

CONTINUOUS_POINTS = 5  # a coarse grid for each continuous hyperparameter
LEVELS = (0.80, 0.85, 0.87, 0.88, 0.89, 0.90, 0.91)


def grid_points(dist: BaseDistribution) -> tuple[int, str]:
    """Values a grid needs for one hyperparameter, and how that count was made."""
    if isinstance(dist, CategoricalDistribution):
        return len(dist.choices), "choices"
    if isinstance(dist, IntDistribution) and not dist.log:
        return (dist.high - dist.low) // dist.step + 1, "integers"
    return CONTINUOUS_POINTS, f"continuous, {CONTINUOUS_POINTS} grid points"


def grid_growth(dists: dict[str, BaseDistribution]) -> list[list[object]]:
    """One row per hyperparameter added: its grid values and the full grid's size so far."""
    rows, total = [], 1
    for i, (key, dist) in enumerate(dists.items(), start=1):
        n, how = grid_points(dist)
        total *= n
        rows.append([i, key, f"{n} ({how})", f"{total:,}"])
    return rows


def time_to_levels(rows: list[TrialRow], *, minimize: bool) -> list[list[object]]:
    """For each score level the best-so-far reached: trials, trained epochs and minutes to it."""
    if minimize:
        return []
    reached: dict[float, list[object]] = {}
    epochs, best, start = 0, float("-inf"), min((r.start for r in rows if r.start), default=None)
    for count, r in enumerate(rows, start=1):
        epochs += r.epochs
        if r.state == "COMPLETE" and r.score is not None:
            best = max(best, r.score)
        minutes = (r.end - start).total_seconds() / 60 if r.end and start else float("nan")
        for level in LEVELS:
            if best >= level and level not in reached:
                reached[level] = [f"{level:.2f}", count, epochs, f"{minutes:.1f}"]
    return [reached[level] for level in LEVELS if level in reached]


def difficulty_section(page: Page, name: str, dists: dict[str, BaseDistribution],
                       rows: list[TrialRow], *, minimize: bool) -> None:
    """Why searching many hyperparameters jointly is hard, with this study's numbers."""
    if not dists:
        return
    page.heading("Search difficulty (exercise 5)", 3)
    growth = grid_growth(dists)
    page.para(f"A full grid over the {plural(len(dists), 'hyperparameter')} {name} searched needs "
              f"{growth[-1][-1]} trainings; each added hyperparameter multiplies the count "
              "(the curse of dimensionality), while the budget grows at best linearly.")
    page.table(["dimensions", "added hyperparameter", "grid values", "full grid size"], growth)
    levels = time_to_levels(rows, minimize=minimize)
    if levels:
        page.para("What it took this study to reach each validation score (best so far):")
        page.table(["val score", "trials", "trained epochs", "minutes"], levels)
