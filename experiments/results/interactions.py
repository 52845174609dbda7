"""How two or three searched hyperparameters act together (a grid over init x activation x depth,
normalisation or loss x learning rate): the best score of every combination, one hyperparameter
along the x-axis, one line per value of the second, one panel per value of the third."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from experiments.results import plots as rp
from experiments.results.data import TrialRow
from experiments.results.page import Page

MAX_LINES, MAX_PANELS = 6, 4


@dataclass(frozen=True)
class Roles:
    """Which searched key goes where in the figure."""

    x: str
    lines: str
    panels: str | None = None


def _values(dist: BaseDistribution) -> list | None:
    """Every value a discrete distribution can take, in order; None for a continuous one."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution) and not dist.log:
        return list(range(dist.low, dist.high + 1, dist.step))
    return None


def roles(dists: dict[str, BaseDistribution]) -> Roles | None:
    """The x-axis: the numeric key with the most values; the lines: the key with the fewest; the
    panels: the one left. None unless the study searched two or three discrete keys, one of them
    numeric, with few enough values to draw apart."""
    if not 2 <= len(dists) <= 3:
        return None
    values = {k: _values(d) for k, d in dists.items()}
    if any(v is None for v in values.values()):
        return None
    numeric = [k for k, v in values.items() if rp.axis_for(k, v, dists[k]).numeric]
    if not numeric:
        return None
    x = max(numeric, key=lambda k: len(values[k]))
    lines, *panels = sorted((k for k in dists if k != x), key=lambda k: len(values[k]))
    if len(values[lines]) > MAX_LINES or (panels and len(values[panels[0]]) > MAX_PANELS):
        return None
    return Roles(x, lines, panels[0] if panels else None)


def interaction_plot(rows: list[TrialRow], dists: dict[str, BaseDistribution], r: Roles, *,
                     metric: str, minimize: bool, title: str) -> Figure:
    """The best score of each combination; a gap where no trial of it completed."""
    axis = rp.axis_for(r.x, _values(dists[r.x]), dists[r.x])
    xs = _values(dists[r.x])
    panels = _values(dists[r.panels]) if r.panels else [None]
    fig = Figure(figsize=(max(6.4, 4.6 * len(panels)) + 1.6, 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    colours = rp.palette([str(v) for v in _values(dists[r.lines])])
    pick = min if minimize else max
    for ax, panel in zip(axes, panels, strict=True):
        drawn = False
        for value, colour in colours.items():
            best = []
            for x in xs:
                scores = [t.score for t in rows if t.state == "COMPLETE" and t.score is not None
                          and str(t.params.get(r.lines)) == value and t.params.get(r.x) == x
                          and (panel is None or t.params.get(r.panels) == panel)]
                best.append(pick(scores) if scores else np.nan)
            ax.plot([axis.x(x) for x in xs], best, "o-", color=colour, label=f"{r.lines}={value}")
            if not np.isnan(best).all():
                drawn = True
        rp.decorate(ax, axis, metric)
        if panel is not None:
            ax.set_title(f"{r.panels}={panel}", fontsize=10)
        if not drawn:
            ax.text(0.5, 0.5, "no completed trial", transform=ax.transAxes, ha="center",
                    va="center", color="grey")
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    fig.suptitle(title)
    return fig


def interaction_section(page: Page, name: str, rows: list[TrialRow],
                        dists: dict[str, BaseDistribution], *, metric: str, minimize: bool,
                        prefix: str) -> None:
    """The interaction figure, when the study's space suits one (see :func:`roles`)."""
    r = roles(dists)
    if r is None:
        return
    page.heading("How the searched hyperparameters interact", 3)
    by = f", one panel per {r.panels}" if r.panels else ""
    page.para(f"The best {metric} of every combination: {r.x} along the x-axis, one line per "
              f"{r.lines}{by}. A gap: no trial of that combination completed (it was pruned or "
              "diverged).")
    page.figure(interaction_plot(rows, dists, r, metric=metric, minimize=minimize,
                                 title=f"{name}: best {metric} by {r.x} and {r.lines}"),
                f"{prefix}-interactions.png", f"{name}: {metric} by {r.x}, {r.lines}{by}")
