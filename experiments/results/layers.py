"""The first epoch's per-layer statistics (``train.layer_stats``): whether the signal forward and
the gradient backward keep their scale through the layers, by initialisation and activation."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from mlflow.tracking import MlflowClient

from experiments.results import plots as rp
from experiments.results.data import TrialRow
from experiments.results.page import Page
from experiments.training.figures import activation_figures

LAYER = re.compile(r"^layer(\d+)/act_std$")
DEPTH_KEYS = ("model.depth", "model.hidden_sizes", "layers.")  # what sets the number of layers
PANEL_KEY = "model.activation"


@dataclass
class Probed:
    """One trial's statistics: ``{key: [(batch, value), ...]}`` for act_std and grad_std."""

    row: TrialRow
    layers: int
    series: dict[str, list[tuple[int, float]]]

    def at(self, key: str, which: int) -> float:
        return self.series[key][which][1] if self.series.get(key) else np.nan


def probed(client: MlflowClient, rows: list[TrialRow]) -> list[Probed]:
    """The deepest trials that logged layer statistics, with their histories."""
    depth = {}
    for r in rows:
        if r.run_id and r.state != "FAIL":
            keys = client.get_run(r.run_id).data.metrics
            depth[r.number] = max((int(m.group(1)) for k in keys if (m := LAYER.match(k))), default=0)
    deepest = max(depth.values(), default=0)
    out = []
    for r in rows:
        if deepest and depth.get(r.number) == deepest:
            series = {f"layer{i}/{s}": [(m.step, m.value) for m in sorted(
                client.get_metric_history(r.run_id, f"layer{i}/{s}"), key=lambda m: m.step)]
                for i in range(1, deepest + 1) for s in ("act_std", "grad_std")}
            out.append(Probed(r, deepest, series))
    return out


def _name(p: Probed, keys: list[str]) -> str:
    """What tells the trial apart from the others in its panel, e.g. ``init=he``."""
    text = ", ".join(f"{k.rsplit('.', 1)[-1]}={p.row.params[k]}" for k in keys if k in p.row.params)
    return text or f"trial {p.row.number}"


def _ordered(runs: list[Probed], order: dict[str, list]) -> list[Probed]:
    """The trials in the order of their values in the searched choices (relu, sigmoid, tanh)."""
    def key(p: Probed) -> list[int]:
        return [order[k].index(p.row.params[k]) if p.row.params.get(k) in order[k] else -1
                for k in order]
    return sorted(runs, key=key)


def _draw(ax: Axes, runs: list[Probed], colours: dict, keys: list[str], *, what: str,
          stat: str) -> list[float]:
    """One panel: each trial's ``stat`` by layer at the first batch (``init``) or, through the
    first epoch, the last hidden layer's output or the first layer's gradient (``epoch``)."""
    layers, seen = runs[0].layers, []
    for p in runs:
        if what == "init":
            xs = list(range(1, layers + 1))
            ys = [p.at(f"layer{i}/{stat}", 0) for i in xs]
        else:
            layer = max(layers - 1, 1) if stat == "act_std" else 1
            points = p.series.get(f"layer{layer}/{stat}") or [(0, np.nan)]
            xs, ys = [b for b, _ in points], [v for _, v in points]
        ax.plot(xs, ys, "o-", ms=3, color=colours[_name(p, keys)])
        seen += [y for y in ys if np.isfinite(y) and y > 0]
    ax.grid(alpha=0.3)
    if what == "init":
        ax.set_xticks(range(1, layers + 1))
    ax.set_xlabel("layer (the last one: the logits)" if what == "init" else "batch of the first epoch")
    return seen


def layer_plots(runs: list[Probed], *, name: str, metric: str) -> tuple[Figure, Figure]:
    """At initialisation, by layer; and through the first epoch. Rows: outputs, gradients; one
    column per activation; one colour per other setting (init), the same in every panel; each
    panel's scores in its title."""
    keys = sorted({k for p in runs for k in p.row.params
                   if k != PANEL_KEY and not k.startswith(DEPTH_KEYS)})
    panels = list(dict.fromkeys(p.row.params.get(PANEL_KEY) for p in runs))
    last = max(runs[0].layers - 1, 1)
    colours = rp.palette([_name(p, keys) for p in runs])
    labels = {("init", "act_std"): "std of the layer's output", ("init", "grad_std"): "std of dloss/dW",
              ("epoch", "act_std"): f"std of layer {last}'s output",
              ("epoch", "grad_std"): "std of dloss/dW1"}
    made = []
    for what in ("init", "epoch"):
        fig = Figure(figsize=(max(4.4 * len(panels), 6.5), 6.8))  # the title fits one panel too
        grid = fig.subplots(2, len(panels), squeeze=False, sharey="row")
        seen: dict[int, list[float]] = {0: [], 1: []}
        for col, panel in enumerate(panels):
            mine = [p for p in runs if p.row.params.get(PANEL_KEY) == panel]
            scores = " · ".join(f"{_name(p, keys).split('=')[-1]} {p.row.score:.3f}"
                                for p in mine if p.row.score is not None)
            grid[0][col].set_title((f"{PANEL_KEY}={panel}\n" if panel is not None else "")
                                   + f"{metric}: {scores}", fontsize=9)
            for row, stat in enumerate(("act_std", "grad_std")):
                seen[row] += _draw(grid[row][col], mine, colours, keys, what=what, stat=stat)
                if col == 0:
                    grid[row][col].set_ylabel(labels[what, stat])
        for row, values in seen.items():  # log where a row spans decades, else it only clutters
            if values and max(values) / min(values) > 10:
                grid[row][0].set_yscale("log")
        handles = [Line2D([], [], marker="o", color=c, label=k) for k, c in colours.items()]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9)
        fig.suptitle(f"{name}: {runs[0].layers - 1} hidden layers, "
                     + ("at initialisation (the first batch)" if what == "init"
                        else "through the first epoch"))
        fig.tight_layout(rect=(0, 0.05, 1, 0.96))
        made.append(fig)
    return made[0], made[1]


def layer_section(page: Page, name: str, rows: list[TrialRow], client: MlflowClient, *,
                  prefix: str, order: dict[str, list], metric: str) -> None:
    """The layer statistics, when the study's trials recorded them (``order``: each searched
    key's values, in order); when the activation was searched, the activations and their
    derivatives beside them."""
    runs = _ordered(probed(client, rows), order)
    if not runs:
        return
    page.heading("Layer statistics in the first epoch", 3)
    page.para(f"The {len(runs)} deepest trials ({runs[0].layers - 1} hidden layers): the standard "
              "deviation of each layer's output and of the gradient its weights receive, on a "
              "training batch (log scale where a row spans decades; each trial's score above its "
              "panel). A curve that falls by "
              "orders of magnitude from layer to layer is a signal, or a gradient, that vanishes "
              "with depth: those trials barely train.")
    at_init, through = layer_plots(runs, name=name, metric=metric)
    page.figure(at_init, f"{prefix}-layers-init.png", f"{name}: per-layer statistics at initialisation")
    page.figure(through, f"{prefix}-layers-epoch1.png", f"{name}: per-layer statistics through epoch 1")
    if PANEL_KEY in order:
        page.para("The activations and their derivatives (python -m experiments.activations): the "
                  "sigmoid's derivative is at most 1/4, so every sigmoid layer shrinks the gradient "
                  "at least fourfold; tanh's and relu's reach 1.")
        page.figure(activation_figures()[0]["activations.png"], f"{prefix}-activations.png",
                    "relu, sigmoid and tanh with their derivatives (autograd and hand-written)")
