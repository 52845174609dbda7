"""The end of a study: Optuna's plots, the best parameters and configuration on the parent run,
the best configuration retrained and tested once, the parent closed.

The finish is crash-safe and idempotent: one process at a time holds the study's finish lock
(released however the process ends), each stage is recorded in the study when it is done, and
the next run of the same command completes the stages that are missing, first closing any run
a killed process left RUNNING. Adding trials later finishes the study again."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import optuna
import yaml
from omegaconf import OmegaConf
from optuna.trial import TrialState

from experiments import failpoints, registry, tracking
from experiments.cli import one_line
from experiments.config import (
    Config,
    local_conf_dir,
    number,
    plural,
    report_command,
    reproduce,
    short_name,
)
from experiments.stores import held_lock, mask_url
from experiments.study.budget import counts, done
from experiments.study.context import SweepContext
from experiments.study.objectives import along_front, front, values_text
from experiments.study.parent import best_trial, close_finished, unlogged
from experiments.study.plots import log_plots
from experiments.study.registration import register
from experiments.study.runs import close_orphans
from experiments.study.samplers import exhausted
from experiments.training import TrackedRun, tracked_run

STAGES = ("plots", "best", "retrain", "register", "closed")  # each has the failpoint finish.STAGE
SUMMARY_ATTR = "finish.summary"


def crash_point(stage: str) -> None:
    failpoints.hit(f"finish.{stage}")


def ready(study: optuna.Study, n_trials: int, *, spent: bool) -> bool:
    """No trial runs and the budget is done or spent (time, epochs, grid)."""
    c = counts(study)
    if c[TrialState.RUNNING]:
        return False
    return spent or exhausted(study) or (done(c) >= n_trials and not c[TrialState.WAITING])


def missing(study: optuna.Study) -> list[str]:
    """The finish stages not yet done for the trials the study holds now (none once the last
    is done: a study finished before a stage existed is not finished again for it)."""
    n, attrs = done(counts(study)), study.user_attrs
    if attrs.get(f"finish.{STAGES[-1]}") == n:
        return []
    return [s for s in STAGES if attrs.get(f"finish.{s}") != n]


def already_finished(study: optuna.Study) -> bool:
    return not missing(study)


def finish(ctx: SweepContext, study: optuna.Study, *, spent: bool) -> dict[str, Any] | None:
    """Complete what is missing of the finish; None when the study is not ready for it. While
    another process is finishing it, wait for that one. An unreachable tracking server leaves
    the rest for the next run."""
    if not ready(study, ctx.cfg.sweep.n_trials, spent=spent):
        return None
    key = f"finish/{study.study_name}"
    with held_lock(ctx.cfg.sweep.storage, key) as mine:
        if mine:
            return _finish(ctx, study)
    print("another process is finishing the study: waiting for it", flush=True)
    with held_lock(ctx.cfg.sweep.storage, key, wait=True):
        return _finish(ctx, study)


def _finish(ctx: SweepContext, study: optuna.Study) -> dict[str, Any]:
    todo = missing(study)
    if not todo:  # another process finished it; this one had marked the parent RUNNING again
        close_finished(ctx, ctx.parent_run_id)
        return dict(study.user_attrs.get(SUMMARY_ATTR) or {})
    try:
        if ctx.outbox.queue:
            raise ConnectionError("the tracking server did not answer")
        return finalize(ctx, study, todo)
    except Exception as exc:  # noqa: BLE001 - only an unreachable server is expected here
        if not tracking.transient(exc):
            raise
        print(f"warning: every trial is done in Optuna, but the study's parent MLflow run could "
              f"not be finished ({mask_url(one_line(exc))[:200]}); rerun the same command "
              "once the tracking server answers", file=sys.stderr, flush=True)
        return {}


def experiment_yaml(cfg: Config, study: str, trial: int, value: float) -> str:
    """The best configuration as a Hydra experiment file (``# @package _global_``), a base for
    further experiments; its header holds the command that reproduces the trial."""
    keep = {k: v for k, v in json.loads(json.dumps(_as_dict(cfg))).items()
            if k in ("model", "optim", "train", "data", "seed", "device")}
    head = (f"# @package _global_\n# Best trial {trial} of study {study!r} "
            f"(validation score {value:.4f}); reproduce it with\n"
            f"#   {reproduce(cfg)}\n")
    return head + yaml.safe_dump(keep, sort_keys=False)


def _as_dict(cfg: Config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


def best_file(study_name: str) -> str:
    """The study's name as a safe file name under ``conf/experiment/best/``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", study_name).strip(".-") or "study"


def finalize(ctx: SweepContext, study: optuna.Study, todo: list[str]) -> dict[str, Any]:
    """The missing stages of the finish, each recorded in the study once done."""
    client, run_id, n = ctx.client, ctx.parent_run_id, done(counts(study))
    close_orphans(ctx, study)
    summary = dict(study.user_attrs.get(SUMMARY_ATTR) or {})
    if summary.get("trials/done") != n:
        summary = {"trials/done": n}

    def mark(stage: str) -> None:
        study.set_user_attr(SUMMARY_ATTR, summary)
        study.set_user_attr(f"finish.{stage}", n)

    if "plots" in todo:
        log_plots(ctx, study, lambda: crash_point("plots"))
        mark("plots")
    best = best_trial(study)
    if best is None:
        print("no trial completed: nothing to choose; see the failed trials' errors in MLflow")
        close_finished(ctx, run_id)
        for stage in STAGES[1:]:
            mark(stage)
        return {}
    cfg = ctx.trial_config(best.user_attrs.get("overrides", []))  # the study's base + the trial's
    picks = (along_front(front(study), ctx.objectives, ctx.cfg.sweep.retrain_front) if ctx.multi
             else [("best", best)])  # several metrics: the most accurate first, then along the front
    if "best" in todo:
        client.log_dict(run_id, best.params, "best/params.json")
        crash_point("best")
        if ctx.multi:
            log_front(ctx, study, picks)
        for _, t in picks:
            text = experiment_yaml(ctx.trial_config(t.user_attrs.get("overrides", [])),
                                   study.study_name, t.number, t.values[0])
            mine = "" if t.number == best.number else f"-trial-{t.number}"
            client.log_text(run_id, text, f"best/experiment{mine}.yaml")
            path = local_conf_dir() / "experiment" / "best" / f"{best_file(study.study_name)}{mine}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        mark("best")
    if "retrain" in todo:
        if ctx.cfg.sweep.retrain_best:
            tested = summary.setdefault("front", {})  # trial -> its test/acc, kept as each ends
            models = summary.setdefault("models", {})  # trial -> its retrain's run and model
            for why, t in picks:
                if str(t.number) in tested:  # retrained before a kill in this stage
                    continue
                run, final, model_uri = retrain(ctx, study, t, why if ctx.multi else "")
                tested[str(t.number)] = final["test/acc"]
                models[str(t.number)] = {"run": run, "model": model_uri}
                if t.number == best.number:
                    summary.update({"test/acc": final["test/acc"], "test/loss": final["test/loss"],
                                    "retrain/val_acc_best": final["val/acc_best"]})
                study.set_user_attr(SUMMARY_ATTR, summary)
        mark("retrain")
    if "register" in todo:
        register(ctx, study, picks, best.number, summary, crash_point=lambda: crash_point("register"),
                 save=lambda: study.set_user_attr(SUMMARY_ATTR, summary))
        mark("register")
    if "closed" in todo:
        c = counts(study)
        summary.update({"best/trial": best.number, "trials/complete": c[TrialState.COMPLETE],
                        "trials/pruned": c[TrialState.PRUNED], "trials/failed": c[TrialState.FAIL]})
        metrics = {k: v for k, v in summary.items()
                   if k != "trials/done" and isinstance(v, int | float)}
        tracking.log_metrics(client, run_id, unlogged(ctx, run_id, metrics, best.number),
                             step=best.number)
        for number, acc in summary.get("front", {}).items() if ctx.multi else ():
            tracking.log_metrics(client, run_id, unlogged(ctx, run_id, {"front/test_acc": acc},
                                                          int(number)), step=int(number))
        crash_point("closed")
        close_finished(ctx, run_id)
        mark("closed")
    closing_lines(ctx, study, best, cfg, summary)
    return summary


def retrain(ctx: SweepContext, study: optuna.Study, t: optuna.trial.FrozenTrial,
            why: str) -> TrackedRun:
    """Train trial ``t``'s configuration once more as a child run and test it once."""
    cfg = ctx.trial_config(t.user_attrs.get("overrides", []))
    which = f"front trial {t.number} ({why})" if why else f"best trial ({t.number})"
    print(f"retraining the {which} on {trained_on(cfg)} and testing it once...", flush=True)
    name = f"best-trial-{t.number} {short_name(sampled(t))}".strip()
    return tracked_run(cfg, parent_run_id=ctx.parent_run_id, run_name=name, quiet=True,
                       progress=f"retrain trial {t.number}", tags={"optuna.study": study.study_name},
                       on_epoch_end=lambda epoch, metrics: crash_point("retrain"))


def log_front(ctx: SweepContext, study: optuna.Study,
              picks: list[tuple[str, optuna.trial.FrozenTrial]]) -> None:
    """The Pareto front on the parent run: ``front/front.json`` (every front trial's metrics,
    parameters and reproduce command) and the tag ``front.trials`` (their numbers)."""
    why = {t.number: w for w, t in picks}
    rows = [{"trial": t.number, **dict(zip([n for n, _ in ctx.objectives], t.values, strict=True)),
             "retrained": why.get(t.number, ""), "params": t.params,
             "reproduce": reproduce(ctx.trial_config(t.user_attrs.get("overrides", [])))}
            for t in front(study)]
    ctx.client.log_dict(ctx.parent_run_id, rows, "front/front.json")
    ctx.client.set_tag(ctx.parent_run_id, "front.trials", ", ".join(str(r["trial"]) for r in rows))


def trained_on(cfg: Config) -> str:
    """What the best trial's retrain trains on: a hold-out's training split, or every image the
    folds of a cross-validated study split (its refit)."""
    return f"all {cfg.data.folds} folds' images" if cfg.data.folds else "the training split"


def sampled(trial: optuna.trial.FrozenTrial) -> dict[str, str]:
    """What a trial sampled, as ``{key: value}`` from its recorded overrides."""
    pairs = (o.lstrip("+~").partition("=") for o in trial.user_attrs.get("overrides", []))
    return {k: v for k, _, v in pairs}


def closing_lines(ctx: SweepContext, study: optuna.Study, best: optuna.trial.FrozenTrial,
                  cfg: Config, summary: dict[str, Any]) -> None:
    """What the study found and where to go from here: the UI, the report, the one command that
    reproduces the best trial."""
    if ctx.multi:
        front_lines(ctx, study, summary)
    else:
        values = " ".join(f"{k}={v if v.startswith('[') else number(v)}" for k, v in sampled(best).items())
        print(f"best trial {best.number} ({summary.get('trials/done', '?')} trials done): "
              f"{ctx.metric} {best.value:.4f}" + (f" with {values}" if values else ""))
        if "test/acc" in summary:
            print(f"retrained on {trained_on(cfg)} and tested once: test/acc {summary['test/acc']:.4f}")
        print(f"reproduce: {reproduce(cfg)}")
    name, versions = registry.registered_in(summary)
    if name and str(best.number) in versions:
        print(f"model:     {registry.version_uri(name, versions[str(best.number)])}, alias "
              f"models:/{name}@{registry.ALIAS} (serve it: make serve MODEL=models:/{name}@{registry.ALIAS})")
    stores = {"storage": mask_url(ctx.cfg.sweep.storage),
              "tracking_uri": mask_url(ctx.cfg.mlflow.tracking_uri)}
    print(f"report:    {report_command([study.study_name], **stores)}")
    ui = tracking.where_to_look(ctx.cfg.mlflow.tracking_uri, ctx.experiment_id, ctx.parent_run_id)
    print(f"MLflow:    {ui}")


FRONT_SHOWN = 10  # the closing lines list this many front trials; the report has them all


def front_lines(ctx: SweepContext, study: optuna.Study, summary: dict[str, Any]) -> None:
    """The Pareto front: each trial's metrics, its test accuracy when retrained, and the
    command that reproduces it."""
    trials, tested = front(study), summary.get("front", {})
    name, versions = registry.registered_in(summary)
    arrows = ", ".join(f"{n} {'up' if d == 'maximize' else 'down'}" for n, d in ctx.objectives)
    print(f"Pareto front: {plural(len(trials), 'trial')} of {summary.get('trials/done', '?')} done "
          f"({arrows}); no trial is better on every metric than these:")
    for t in trials[:FRONT_SHOWN]:
        n = str(t.number)
        model = f", {registry.version_uri(name, versions[n])}" if n in versions else ""
        test = f" (retrained, test/acc {tested[n]:.4f}{model})" if n in tested else ""
        print(f"  trial {t.number}: {values_text(ctx.objectives, list(t.values))}{test}")
        print(f"    reproduce: {reproduce(ctx.trial_config(t.user_attrs.get('overrides', [])))}")
    if len(trials) > FRONT_SHOWN:
        print(f"  ... and {len(trials) - FRONT_SHOWN} more: see the report")


def remind(ctx: SweepContext, study: optuna.Study) -> None:
    """The closing lines of a study finished before, for a rerun that has nothing left to do."""
    best = best_trial(study)
    if best is None:
        print("no trial completed: see the failed trials' errors in MLflow")
        return
    summary = dict(study.user_attrs.get(SUMMARY_ATTR) or {})
    closing_lines(ctx, study, best, ctx.trial_config(best.user_attrs.get("overrides", [])), summary)
