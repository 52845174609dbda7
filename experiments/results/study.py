"""One study's part of a report: best configuration, edge warnings, the reproduce command,
the top trials, axis and isolation plots, learning curves and any seed replicates."""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from experiments import registry, tracking
from experiments.config import load_config, plural, reproduce
from experiments.results import plots as rp
from experiments.results.data import (
    TrialRow,
    edge_warnings,
    fixed,
    history,
    minimizes,
    ranked,
    varied,
)
from experiments.results.difficulty import difficulty_section
from experiments.results.front import front_section, front_trials
from experiments.results.interactions import interaction_section
from experiments.results.layers import layer_section
from experiments.results.page import Page
from experiments.training import figures


@dataclass
class StudyView:
    """One study with everything the report reads about it."""

    study: optuna.Study
    rows: list[TrialRow]
    parent: Run

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def metric(self) -> str:
        return self.study.user_attrs.get("metric", "value")

    @property
    def minimize(self) -> bool:
        return minimizes(self.study)

    @property
    def top(self) -> list[TrialRow]:
        return ranked(self.rows, minimize=self.minimize)

    def fixed(self, key: str, default: object) -> object:
        """A setting every trial of the study shares, as its identity recorded it (``default``
        for a study recorded before the key existed)."""
        return fixed(self.study, key, default)

    @property
    def multi(self) -> bool:
        """A study of several metrics (a Pareto front, not one best)."""
        return len(self.study.directions) > 1

    @property
    def best(self) -> optuna.trial.FrozenTrial:
        """The best trial by the score; for several metrics the front's most accurate."""
        return front_trials(self.study)[0] if self.multi else self.study.best_trial

    @property
    def folds(self) -> int:
        """``data.folds`` of the study (0: a hold-out split)."""
        return int(self.fixed("data.folds", 0))


def safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)


def study_section(page: Page, view: StudyView, client: MlflowClient, *, top: int, curves: int) -> None:
    """Best configuration, warnings, reproduce command, top trials and the plots of one study."""
    page.heading(f"Study {view.name}")
    prefix = safe(view.name)
    if not view.top:
        page.para("No trial completed: nothing to report (see the failed trials' errors in MLflow).")
        return
    _state(page, view)
    if view.multi:
        front_section(page, view.study, view.parent, client, prefix)
    best = view.best
    which = "The front's most accurate trial" if view.multi else "Best trial"
    page.para(f"{which}, {best.number}: {view.metric} {best.values[0]:.4f} (selected on validation) "
              f"with {json.dumps(best.params)}.")
    for text in edge_warnings(best):
        print(f"warning: study {view.name}: {text}")
        page.warn(text)
    page.para(_test_text(view, best.number))
    if registered := _registered(view, best.number):
        page.para(registered)
    command = reproduce_best(view, client)
    print(f"study {view.name}: best trial {best.number} {view.metric} {best.values[0]:.4f}\n"
          f"reproduce: {command}")
    page.para("Reproduce the chosen configuration:")
    page.code(command)
    _top_table(page, view, client, top)
    _importances(page, view)
    difficulty_section(page, view.name, varied(view.study), view.rows, minimize=view.minimize)
    _param_plots(page, view, prefix)
    dists = varied(view.study)
    interaction_section(page, view.name, view.rows, dists, metric=view.metric,
                        minimize=view.minimize, prefix=prefix)
    layer_section(page, view.name, view.rows, client, prefix=prefix, metric=view.metric,
                  order={k: list(getattr(d, "choices", ())) for k, d in dists.items()})
    _curves(page, view, client, curves, prefix)
    _replicates(page, view, client)


def _state(page: Page, view: StudyView) -> None:
    """Say when the report is partial (trials still running or waiting) and what a quick form
    left out of the search."""
    states = [t.state for t in view.study.get_trials(deepcopy=False)]
    running, waiting = states.count(TrialState.RUNNING), states.count(TrialState.WAITING)
    if running or waiting:
        text = (f"The study is still running ({plural(running, 'trial')} running, {waiting} waiting): this "
                f"report shows the {len(view.rows)} trials that ended so far; make it again once "
                "the sweep has finished.")
        print(f"note: study {view.name}: {text}")
        page.warn(text)
    for line in view.study.user_attrs.get("quick.left_out", []):  # the sweep's QUICK_CUT_ATTR
        page.warn(f"Quick form (sweep.quick=true): {line}.")


def _importances(page: Page, view: StudyView) -> None:
    """Optuna's parameter importances (fANOVA) over the complete trials: how much of the score's
    variation each hyperparameter explains, beside the per-value bests that can mislead."""
    done = view.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    names = {k for t in done for k in t.params}
    if len(done) < 2 or len(names) < 2:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's experimental-API notes
        try:
            score = {"target": lambda t: t.values[0]} if view.multi else {}
            scores = optuna.importance.get_param_importances(
                view.study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), **score)
        except (ValueError, RuntimeError) as exc:
            page.para(f"Parameter importances: not computed ({exc}).")
            return
    page.heading("Which hyperparameters matter", 3)
    page.para(f"Optuna's fANOVA importance over the {len(done)} complete trials: the share of the "
              f"variation in {view.metric} each hyperparameter explains (they sum to 1). It says how "
              "much a setting matters, not which value is best; the plots below show the values.")
    page.table(["hyperparameter", "importance"], [[k, f"{v:.3f}"] for k, v in scores.items()])


def reproduce_best(view: StudyView, client: MlflowClient) -> str:
    """The one command that reproduces the best trial, as the sweep printed it: from the
    settings its MLflow run recorded, else (no run) composed from the overrides Optuna holds."""
    best = view.best
    run_id = best.user_attrs.get("mlflow_run_id")
    params = client.get_run(run_id).data.params if run_id else {}
    if params:
        return reproduce(params)
    base = [o for o in view.study.user_attrs.get("base_overrides", [])
            if not o.lstrip("+~").startswith("sweep.") or o.lstrip("+~").startswith("sweep.quick=")]
    return reproduce(load_config([*base, *best.user_attrs.get("overrides", [])]))


def _test_text(view: StudyView, number: int) -> str:
    test = view.parent.data.metrics.get("test/acc")
    if test is None:
        return ("Test accuracy: not evaluated (sweep.retrain_best=false, or the study has not "
                "finished); run the command below once to test the chosen configuration.")
    return (f"Test accuracy of the chosen configuration: {test:.4f} (evaluated once, on the "
            f"retrained best trial, run best-trial-{number}; never used for selection).")


def _registered(view: StudyView, number: int) -> str | None:
    """Where the finish registered the retrained best trial's model; None if it did not."""
    summary = view.study.user_attrs.get("finish.summary") or {}
    name, versions = registry.registered_in(summary)
    version = versions.get(str(number))
    if not name or version is None:
        return None
    ui = tracking.ui_address(view.study.user_attrs.get("tracking_uri", ""),
                             registry.version_page(name, version))
    return (f"Registered model: {registry.version_uri(name, version)}, alias "
            f"models:/{name}@{registry.ALIAS} (MLflow UI: Models, {name}, version {version}: {ui}). "
            f"Load it with mlflow.pyfunc.load_model(\"models:/{name}@{registry.ALIAS}\"); serve it with "
            f"make serve MODEL=models:/{name}@{registry.ALIAS}.")


def _top_table(page: Page, view: StudyView, client: MlflowClient, n: int) -> None:
    keys = list(varied(view.study))
    rows = [[i + 1, r.number, _score(view, client, r), r.epochs // max(view.folds, 1), f"{r.seconds:.1f}",
             *[_short(r.params.get(k, "")) for k in keys]] for i, r in enumerate(view.top[:n])]
    page.heading(f"Top {len(rows)} trials by {view.metric}", 3)
    if view.folds:
        page.para(f"Each trial trained {view.folds} models, one per fold, in lockstep; its score is "
                  "their mean at the best epoch, ± their standard deviation.")
    page.table(["rank", "trial", view.metric, "epochs", "seconds", *keys], rows)


def _score(view: StudyView, client: MlflowClient, row: TrialRow) -> str:
    """The trial's score; for cross-validation with the folds' spread (from its MLflow run)."""
    sd = (client.get_run(row.run_id).data.metrics.get(f"{view.metric}_best_sd")
          if view.folds and row.run_id else None)
    return f"{row.score:.4f}" + (f" ± {sd:.4f}" if sd is not None else "")


def _short(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _param_plots(page: Page, view: StudyView, prefix: str) -> None:
    dists = varied(view.study)
    if not dists:
        page.para("No hyperparameter was varied: no axis plots.")
        return
    points = [rp.Point(r.params, r.score, complete=r.state == "COMPLETE")
              for r in view.rows if r.score is not None and r.state != "FAIL"]
    axes = [rp.axis_for(k, [p.params.get(k) for p in points], d) for k, d in dists.items()]
    best = view.top[0]
    page.heading("Every varied hyperparameter", 3)
    page.figure(rp.param_scores(points, axes, metric=view.metric, best=rp.Point(best.params, best.score),
                                title=f"{view.name}: {view.metric} against each hyperparameter "
                                      "(hollow = pruned, star = best)"),
                f"{prefix}-axis.png", f"{view.name}: score against each varied hyperparameter")
    page.figure(rp.isolation(points, axes, metric=view.metric, minimize=view.minimize,
                             title=f"{view.name}: best {view.metric} at each value "
                                   "(hollow = one trial only)"),
                f"{prefix}-isolation.png", f"{view.name}: isolation plots (best trial per value)")


def _curves(page: Page, view: StudyView, client: MlflowClient, k: int, prefix: str) -> None:
    runs = {f"trial {r.number} ({r.score:.4f})": history(client, r.run_id)
            for r in view.top[:k] if r.run_id}
    runs = {label: h for label, h in runs.items() if h}
    if not runs:
        return
    page.heading(f"Learning curves of the best {len(runs)}", 3)
    best_label, best_hist = next(iter(runs.items()))
    loss = str(view.top[0].params.get("train.loss") or view.fixed("train.loss", "cross_entropy"))
    page.figure(figures.learning_curves(best_hist, title=f"{view.name}: best, {best_label}", loss=loss),
                f"{prefix}-best-curves.png", f"{view.name}: learning curves of the best trial")
    page.figure(rp.curves_overlay(runs, title=f"{view.name}: the best {len(runs)} trials "
                                              "(solid = training, dashed = validation)",
                                  loss=figures.LOSS_NAMES.get(loss, loss)),
                f"{prefix}-top-curves.png", f"{view.name}: learning curves of the best trials")


def _replicates(page: Page, view: StudyView, client: MlflowClient) -> None:
    """The seed-replicate summary, when ``experiments.replicate`` has logged one."""
    run_id = view.parent.info.run_id
    if not any(a.path == "replicate/summary.json" for a in client.list_artifacts(run_id, "replicate")):
        return
    with tempfile.TemporaryDirectory() as tmp, tracking.no_progress_bars():
        rows = json.loads(Path(client.download_artifacts(run_id, "replicate/summary.json", tmp))
                          .read_text())
    page.heading("Seed replicates", 3)
    page.para("Each configuration retrained with several seeds (python -m experiments.replicate); "
              "mean, standard deviation and 95% confidence interval.")
    page.table(["trial", "seeds", "val/acc mean", "val/acc sd", "val/acc 95% CI", "test/acc mean",
                "test/acc 95% CI"],
               [[r["trial"], r["n"], f"{r['val_mean']:.4f}", f"{r['val_sd']:.4f}",
                 f"[{r['val_lo']:.4f}, {r['val_hi']:.4f}]", f"{r['test_mean']:.4f}",
                 f"[{r['test_lo']:.4f}, {r['test_hi']:.4f}]"] for r in rows])
