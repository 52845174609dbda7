"""Figures for reports and comparisons: score against every parameter, best per value,
best-so-far curves across studies, and overlaid learning curves."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullLocator
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    IntDistribution,
)

from experiments.results.data import spread

MAX_BINS = 8


@dataclass
class Point:
    """One run or trial: its parameters and score; ``label`` picks the colour."""

    params: dict[str, Any]
    score: float
    label: str = ""
    complete: bool = True


@dataclass
class Axis:
    """How one parameter is drawn: a numeric axis (maybe log) or ordered categories."""

    key: str
    numeric: bool
    log: bool = False
    choices: tuple[str, ...] = ()  # categories, in order
    ticks: tuple[float, ...] = ()  # numeric choices: a tick at each
    integer: bool = False
    bounds: tuple[float, float] | None = None  # the searched range, drawn whole
    linthresh: float | None = None  # choices that hold 0 and span decades: symlog from here

    def x(self, value: Any) -> float:
        return _number(value) if self.numeric else float(self.choices.index(str(value)))


def _number(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError(v)
    return float(v)


def _numeric(values: list[Any]) -> bool:
    try:
        [_number(v) for v in values]
    except (TypeError, ValueError):
        return False
    return bool(values) and not any(str(v).lower() in ("true", "false", "nan") for v in values)


def axis_for(key: str, values: list[Any], dist: BaseDistribution | None = None) -> Axis:
    """An axis from the trial distribution when there is one, else from the values seen."""
    if dist is not None and not isinstance(dist, CategoricalDistribution):
        log, low, high = dist.log, dist.low, dist.high  # type: ignore[attr-defined]
        return Axis(key, True, bool(log), integer=isinstance(dist, IntDistribution),
                    bounds=(float(low), float(high)))
    options = list(dist.choices) if dist is not None else sorted(set(map(str, values)))
    if _numeric(options):
        nums = sorted(_number(v) for v in options)
        few = tuple(nums) if len(nums) <= 12 and (dist is not None or len(nums) <= 6) else ()
        positive = [n for n in nums if n > 0]
        decades = bool(positive) and nums[0] >= 0 and positive[-1] / positive[0] >= 16
        return Axis(key, True, decades and nums[0] > 0, ticks=few,
                    integer=all(n.is_integer() for n in nums),
                    linthresh=positive[0] if decades and nums[0] == 0 else None)
    return Axis(key, False, choices=tuple(map(str, options)))


def _grid(n: int, *, width: float = 4.2, height: float = 3.3,
          sharey: bool = False) -> tuple[Figure, list[Axes]]:
    cols = min(3, max(n, 1))
    rows = math.ceil(max(n, 1) / cols)
    fig = Figure(figsize=(max(width * cols, 6.5), height * rows))  # one panel: room for its ticks
    axes = fig.subplots(rows, cols, squeeze=False, sharey=sharey)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def palette(labels: list[str]) -> dict[str, Any]:
    cmap = matplotlib.colormaps["tab10"]
    return {label: cmap(i % 10) for i, label in enumerate(dict.fromkeys(labels))}


def decorate(ax: Axes, axis: Axis, metric: str) -> None:
    if axis.log:
        ax.set_xscale("log")
    elif axis.linthresh:
        ax.set_xscale("symlog", linthresh=axis.linthresh)
    if axis.ticks:
        crowded = len(axis.ticks) > 4
        ax.set_xticks(axis.ticks, [f"{t:g}" for t in axis.ticks], rotation=45 if crowded else 0,
                      ha="right" if crowded else "center", fontsize=8 if crowded else None)
        ax.xaxis.set_minor_locator(NullLocator())
    elif axis.integer:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if axis.bounds:
        ax.set_xlim(*_padded(*axis.bounds, log=axis.log))
    if not axis.numeric:
        ax.set_xticks(range(len(axis.choices)), axis.choices, rotation=30 if len(axis.choices) > 4
                      else 0)
        ax.set_xlim(-0.5, len(axis.choices) - 0.5)
    ax.set_xlabel(axis.key)
    if ax.get_subplotspec() is None or ax.get_subplotspec().is_first_col():
        ax.set_ylabel(metric)
    ax.grid(alpha=0.3)


def _padded(low: float, high: float, *, log: bool) -> tuple[float, float]:
    if log and low > 0:
        pad = (high / low) ** 0.04
        return low / pad, high * pad
    pad = 0.04 * (high - low)
    return low - pad, high + pad


def param_scores(points: list[Point], axes: list[Axis], *, metric: str,
                 best: Point | None = None, title: str = "") -> Figure:
    """Axis plots: the score of every trial against each parameter (hollow = pruned)."""
    fig, subplots = _grid(len(axes), sharey=True)
    colours = palette([p.label for p in points])
    rng = np.random.default_rng(0)
    for ax, axis in zip(subplots, axes, strict=True):
        for p in points:
            if axis.key not in p.params:
                continue
            jitter = 0.0 if axis.numeric else rng.uniform(-0.12, 0.12)
            c = colours[p.label]
            ax.scatter(axis.x(p.params[axis.key]) + jitter, p.score, s=28, alpha=0.8,
                       facecolors=c if p.complete else "none", edgecolors=c)
            if _same(p, best):  # the star on its own point, jitter and all
                ax.scatter(axis.x(p.params[axis.key]) + jitter, p.score, marker="*", s=220,
                           c="red", edgecolors="black", zorder=5)
        if best is not None and axis.key in best.params and not any(_same(p, best) for p in points):
            ax.scatter(axis.x(best.params[axis.key]), best.score, marker="*", s=220, c="red",
                       edgecolors="black", zorder=5)
        decorate(ax, axis, metric)
    return _finish(fig, colours, title or f"{metric} against each parameter (hollow = pruned, star = best)")


def _same(p: Point, best: Point | None) -> bool:
    return best is not None and p.score == best.score and p.params == best.params


def _legend(fig: Figure, colours: dict[str, Any]) -> None:
    handles = [Line2D([], [], marker="o", ls="", color=c, label=k) for k, c in colours.items()]
    fig.legend(handles=handles, loc="lower center", fontsize=8, ncol=min(4, len(handles)),
               frameon=False)


def _bins(axis: Axis, xs: np.ndarray) -> np.ndarray:
    """The value each point is grouped under: itself when few distinct values, else a bin."""
    if not axis.numeric or len(np.unique(xs)) <= MAX_BINS:
        return xs
    lo, hi = xs.min(), xs.max()
    edges = (np.geomspace(lo, hi, MAX_BINS + 1) if axis.log and lo > 0
             else np.linspace(lo, hi, MAX_BINS + 1))
    idx = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, MAX_BINS - 1)
    mids = np.sqrt(edges[:-1] * edges[1:]) if axis.log and lo > 0 else (edges[:-1] + edges[1:]) / 2
    return mids[idx]


def isolation(points: list[Point], axes: list[Axis], *, metric: str, minimize: bool,
              title: str = "") -> Figure:
    """Isolation plots: the best score reached at each value (or bin) of each parameter, on one
    shared score axis (a small difference looks small); a hollow marker is a value that rests on
    one complete trial (its score says as much about the other settings of that trial)."""
    fig, subplots = _grid(len(axes), sharey=True)
    done = [p for p in points if p.complete]
    colours = palette([p.label for p in done])
    pick = np.min if minimize else np.max
    for ax, axis in zip(subplots, axes, strict=True):
        for label, c in colours.items():
            mine = [p for p in done if p.label == label and axis.key in p.params]
            if not mine:
                continue
            xs = _bins(axis, np.array([axis.x(p.params[axis.key]) for p in mine]))
            ys = np.array([p.score for p in mine])
            keys = np.unique(xs)
            tops = np.array([pick(ys[xs == k]) for k in keys])
            one = np.array([np.count_nonzero(xs == k) == 1 for k in keys])
            ax.plot(keys, tops, "-", color=c, label=label or None)
            ax.plot(keys[~one], tops[~one], "o", color=c)
            ax.plot(keys[one], tops[one], "o", color=c, mfc="white")  # rests on one trial
        decorate(ax, axis, metric)
    return _finish(fig, colours, title or f"best {metric} reached at each value (binned when continuous)")


def _finish(fig: Figure, colours: dict, title: str) -> Figure:
    """Legend for several studies, the title above the grid of axes (not over the first row)."""
    several = len(colours) > 1
    if several:
        _legend(fig, colours)
    fig.suptitle(title)
    rows = fig.axes[0].get_gridspec().nrows if fig.axes else 1
    bottom = 0.25 * math.ceil(len(colours) / 4) / (3.3 * rows) if several else 0.0  # the legend's
    fig.tight_layout(rect=(0, bottom, 1, 0.97))
    return fig


Series = tuple[str, list[float], list[float]]  # (study name, x, best-so-far)


def best_so_far_plot(groups: dict[str, list[Series]], *, xlabel: str, metric: str,
                     title: str = "") -> Figure:
    """One line per study; a group of studies (search seeds) draws its median and min-max band."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    colours = palette(list(groups))
    for group, series in groups.items():
        c = colours[group]
        drawn = [(xs, ys) for _, xs, ys in series if xs]
        if len(drawn) == 1:  # a dot at each trial: a last-trial improvement stays visible
            ax.step(drawn[0][0], drawn[0][1], where="post", color=c, label=series[0][0],
                    marker="o", markersize=3)
        elif drawn:
            grid, mid, lo, hi = spread(drawn)
            ax.step(grid, mid, where="post", color=c, lw=2,
                    label=f"{group} (median of {len(drawn)} seeds, band = min-max)")
            ax.fill_between(grid, lo, hi, step="post", color=c, alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"best {metric} so far")
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=8)
    ax.set_title(title or f"best {metric} so far against {xlabel}")
    fig.tight_layout()
    return fig


def curves_overlay(histories: dict[str, list[dict[str, float]]], *, title: str = "",
                   loss: str = "cross-entropy") -> Figure:
    """Several runs' learning curves: loss (left) and accuracy (right); as in the chapter's
    plot, solid = training and dashed = validation; one colour per run, named in a legend
    beside the plots (not over the curves)."""
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    colours = palette(list(histories))
    for label, hist in histories.items():
        epochs = range(1, len(hist) + 1)
        for ax, name in ((ax_loss, "loss"), (ax_acc, "acc")):  # one colour per run, both lines
            ax.plot(epochs, [h[f"train/{name}"] for h in hist], "-", color=colours[label], lw=1.2)
            ax.plot(epochs, [h[f"val/{name}"] for h in hist], "--", color=colours[label], lw=2)
    for ax, name in ((ax_loss, loss), (ax_acc, "accuracy")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    if histories:  # a solid swatch per run (its colour), then what solid and dashed mean
        handles = [Line2D([], [], color=c, lw=3, label=k) for k, c in colours.items()]
        handles += [Line2D([], [], color="0.3", ls="-", lw=1.2, label="training"),
                    Line2D([], [], color="0.3", ls="--", lw=2, label="validation")]
        ax_acc.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1),
                      borderaxespad=0)
    fig.suptitle(title or "learning curves (solid = training, dashed = validation)")
    return fig
