"""A multi-objective study's part of a report: the Pareto front as a figure (every trial, the
front highlighted and numbered), as a table (with the retrained trials' test accuracy), and the
trade-off in words: the cheapest trial within half a point of the most accurate."""

from __future__ import annotations

import optuna
from matplotlib.figure import Figure
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from experiments.results.page import Page

NEAR = 0.005  # "within half a point" of the most accurate
NOUNS = {"model/num_params": ("parameters", "fewer"), "perf/epoch_seconds": ("s per epoch", "faster")}


def metrics_of(study: optuna.Study) -> list[str]:
    """The study's metric names (``val/acc``, ...), as it named them in Optuna."""
    return list(study.metric_names or [study.user_attrs.get("metric", "value")])


def front_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The Pareto-optimal trials, the best score (first metric) first."""
    sign = -1 if study.directions[0] == StudyDirection.MAXIMIZE else 1
    return sorted(study.best_trials, key=lambda t: (sign * t.values[0], t.number))


def _text(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.4g}"


def front_section(page: Page, study: optuna.Study, parent: Run, client: MlflowClient,
                  prefix: str) -> None:
    """The front: figure, table and the answer in words."""
    names, trials = metrics_of(study), front_trials(study)
    if not trials:
        return
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    tested = {m.step: m.value for m in client.get_metric_history(parent.info.run_id, "front/test_acc")}
    page.heading("Pareto front", 3)
    page.para(f"{len(trials)} of the {len(done)} complete trials are Pareto-optimal: no other trial "
              f"is at least as good on every metric ({', '.join(names)}) and better on one. "
              "The parent run's optuna/plots.html draws the front with each trial's number on hover.")
    if len(names) >= 2:
        page.figure(pareto_figure(done, trials, names, study.directions, title=f"{study.study_name}: "
                                  f"{names[0]} against {names[1]} (front in red, numbered)"),
                    f"{prefix}-front.png", f"{study.study_name}: the Pareto front")
    keys = sorted({k for t in trials for k in t.params})
    page.table(["trial", *names, "test/acc (retrained)", *keys],
               [[t.number, *map(_text, t.values), f"{tested[t.number]:.4f}" if t.number in tested else "",
                 *[_text(t.params[k]) if isinstance(t.params.get(k), float) else t.params.get(k, "")
                   for k in keys]] for t in trials])
    answer = trade_off(trials, names)
    if answer:
        page.para(answer)


def trade_off(trials: list[FrozenTrial], names: list[str]) -> str:
    """The cheapest front trial (by the second metric) within half a point of the most accurate,
    in words; empty when the first metric is not an accuracy."""
    if len(names) < 2 or names[0] != "val/acc":
        return ""
    top = trials[0]
    near = [t for t in trials if t.values[0] >= top.values[0] - NEAR]
    cheap = min(near, key=lambda t: (t.values[1], t.number))
    noun, fewer = NOUNS.get(names[1], (names[1], "less"))
    if cheap.number == top.number:
        return (f"The most accurate trial ({top.number}, {names[0]} {top.values[0]:.4f}) is also the "
                f"cheapest by {names[1]} of the front trials within {NEAR * 100:.1f} points of it.")
    ratio = top.values[1] / cheap.values[1] if cheap.values[1] else float("inf")
    return (f"The cheapest trial within {NEAR * 100:.1f} points of the most accurate is trial "
            f"{cheap.number}: {names[0]} {cheap.values[0]:.4f} against {top.values[0]:.4f} (trial "
            f"{top.number}), with {_text(cheap.values[1])} {noun} against {_text(top.values[1])}: "
            f"{ratio:.1f} times {fewer}.")


def pareto_figure(done: list[FrozenTrial], trials: list[FrozenTrial], names: list[str],
                  directions: list[StudyDirection], *, title: str) -> Figure:
    """Every complete trial (grey) and the front (red, joined, each numbered), the second metric
    on x (log when it spans a decade or more), the score on y."""
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.subplots()
    on_front = {t.number for t in trials}
    rest = [t for t in done if t.number not in on_front]
    ax.scatter([t.values[1] for t in rest], [t.values[0] for t in rest], s=22, c="0.6",
               label="other trials")
    line = sorted(trials, key=lambda t: t.values[1])
    ax.plot([t.values[1] for t in line], [t.values[0] for t in line], "o-", c="tab:red", ms=6,
            label="Pareto front")
    for t in trials:
        ax.annotate(str(t.number), (t.values[1], t.values[0]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8, color="tab:red")
    xs = [t.values[1] for t in done]
    if min(xs) > 0 and max(xs) / min(xs) >= 10:
        ax.set_xscale("log")
    arrow = {StudyDirection.MAXIMIZE: "higher is better", StudyDirection.MINIMIZE: "lower is better"}
    ax.set_xlabel(f"{names[1]} ({arrow[directions[1]]})")
    ax.set_ylabel(f"{names[0]} ({arrow[directions[0]]})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig
