"""Optuna's plots of a study, drawn once at its finish onto the parent run: interactive HTML
(optuna/plots.html, plotly inlined once, opens offline) and PNGs. A study of several metrics
gets the Pareto front first, and the other plots of its score (the first metric)."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from matplotlib import pyplot as plt
from optuna.trial import TrialState

from experiments.study.context import SweepContext

SHOWN_PARAMS = 6  # the PNGs draw the most important few; plots.html keeps every parameter


def log_plots(ctx: SweepContext, study: optuna.Study, drawn: Callable[[], None]) -> None:
    """Optuna's history, parallel coordinates, importances and slice plots (and the Pareto front),
    as HTML and PNG; ``drawn`` is called after each figure (the finish's crash point)."""
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vis_mpl

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return
    plots = {"history": "plot_optimization_history", "parallel_coordinates":
             "plot_parallel_coordinate", "slice": "plot_slice"}
    names = sorted({k for t in done for k in t.params})
    if len(done) >= 2 and len(names) >= 2:  # one parameter's importance is 1 by definition
        plots["importances"] = "plot_param_importances"
    parts, target = [], {"target_name": ctx.metric}
    if ctx.multi:  # the front first; the other plots show the score alone
        plots = {"pareto_front": "plot_pareto_front", **plots}
        target["target"] = _score
    # Optuna's matplotlib plots switch the global style to ggplot: keep that to these figures.
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), plt.rc_context():
        warnings.simplefilter("ignore")  # experimental-API and flat-axis notes from the plots
        shown = _most_important(study, names)
        for name, fn in plots.items():
            try:
                args = ({"target_names": [n for n, _ in ctx.objectives]} if name == "pareto_front"
                        else target)
                fig = getattr(vis, fn)(study, **args)
                parts.append(f"<h2>{name}</h2>" + fig.to_html(full_html=False,
                                                              include_plotlyjs=not parts))
                few = {"params": shown} if name in ("parallel_coordinates", "slice") else {}
                ax = getattr(vis_mpl, fn)(study, **args, **few)
                mpl_fig = ax.flat[0].figure if hasattr(ax, "flat") else ax.figure
                _tidy(name, mpl_fig, ax)
                mpl_fig.savefig(Path(tmp, f"{name}.png"), dpi=110, bbox_inches="tight")
                plt.close("all")
                drawn()
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                print(f"note: optuna plot {name} skipped ({exc})")
        title = f"Study {study.study_name}"
        Path(tmp, "plots.html").write_text(  # plotly inlined once: opens offline
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{''.join(parts)}</body></html>")
        ctx.client.log_artifacts(ctx.parent_run_id, tmp, "optuna")


def _score(trial: optuna.trial.FrozenTrial) -> float:
    """A trial's score: its first metric's value."""
    return trial.values[0]


def _most_important(study: optuna.Study, names: list[str]) -> list[str]:
    """The ``SHOWN_PARAMS`` most important parameters (all of them when there are no more)."""
    if len(names) <= SHOWN_PARAMS:
        return names
    try:
        score = {"target": _score} if len(study.directions) > 1 else {}
        ranked = list(optuna.importance.get_param_importances(study, **score))
    except (ValueError, RuntimeError):
        return names[:SHOWN_PARAMS]
    return ranked[:SHOWN_PARAMS]


def _tidy(name: str, fig: Any, ax: Any) -> None:
    """Keep Optuna's matplotlib figures legible: room for every parallel axis and a gap before
    the colour bar (the last axis' tick labels ran into it), no legend over a single series."""
    if name == "parallel_coordinates":
        n_axes = sum(1 for a in fig.axes if a.get_label() != "<colorbar>")
        fig.set_size_inches(max(6.4, 1.1 * n_axes + 2.5), 4.8)
        pos = ax.get_position()
        ax.set_position([pos.x0, pos.y0, pos.width - 0.9 / fig.get_figwidth(), pos.height])
        for a in fig.axes:
            if a.get_label() != "<colorbar>":
                a.tick_params(labelsize=8)
    elif name == "importances" and ax.get_legend() is not None:
        ax.get_legend().remove()
