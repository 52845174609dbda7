"""The study's parent MLflow run: created by the study's creator, found again by every other
worker through the study's user attrs."""

from __future__ import annotations

import optuna

from experiments import failpoints, tracking
from experiments.config import to_yaml
from experiments.stores import mask_url
from experiments.study.context import SweepContext
from experiments.study.objectives import front
from experiments.study.storage import serialised

PARENT_ATTR = "mlflow_parent_run_id"


class SweepError(RuntimeError):
    """A study that cannot go on (mismatched settings, a parent run that never appears)."""


def attach_parent(ctx: SweepContext, study: optuna.Study, *, created: bool) -> str:
    """Find the study's parent run and mark it RUNNING, or create it. Creating happens under the
    study's lock, by whoever finds it missing first: the creator, or a later run adopting a study
    whose creator stopped between creating it and its parent (a crash, a bad setting found late).
    A study that has trials but never had a parent was made by another tool and is refused."""
    with serialised(ctx.cfg.sweep.storage, study.study_name):
        run_id = study.user_attrs.get(PARENT_ATTR)
        if run_id:
            ctx.client.update_run(run_id, status="RUNNING")
            return run_id
        if not created:
            if study.get_trials(deepcopy=False):
                raise SweepError(f"study {study.study_name!r} has trials but no parent MLflow run; "
                                 "was it created by another tool? use another sweep.study_name")
            print(f"note: study {study.study_name!r} was created without its parent MLflow run "
                  "(its first run stopped early); this run adopts it", flush=True)
        failpoints.hit("study.parent")
        return _create_parent(ctx, study)


def _create_parent(ctx: SweepContext, study: optuna.Study) -> str:
    cfg = ctx.cfg
    run = ctx.client.create_run(ctx.experiment_id, run_name=f"study-{study.study_name}", tags={
        "kind": "study", "optuna.study": study.study_name})
    run_id = run.info.run_id
    names, directions = [n for n, _ in ctx.objectives], [d for _, d in ctx.objectives]
    params = {"study_name": study.study_name, "storage": cfg.sweep.storage,
              "sampler": cfg.sweep.sampler, "pruner": cfg.sweep.pruner, "metric": ", ".join(names),
              "direction": ", ".join(directions), "seed": cfg.sweep.seed,
              **{f"space.{k}": v for k, v in ctx.space.describe().items()}}
    tracking.log_params(ctx.client, run_id, params)
    ctx.client.log_dict(run_id, ctx.space.describe(), "search_space.json")
    ctx.client.log_text(run_id, mask_url(to_yaml(cfg)), "base_config.yaml")
    study.set_user_attr("metric", ctx.metric)  # the score; every metric: study.metric_names
    study.set_user_attr("tracking_uri", mask_url(cfg.mlflow.tracking_uri))
    study.set_user_attr("experiment_id", ctx.experiment_id)
    study.set_user_attr(PARENT_ATTR, run_id)
    return run_id


def close_finished(ctx: SweepContext, run_id: str) -> None:
    """Close the parent run FINISHED, without the ``stopped`` tag an earlier interrupted or
    failed run of the same command left on it (that run's reason no longer holds)."""
    if "stopped" in ctx.client.get_run(run_id).data.tags:
        ctx.client.delete_tag(run_id, "stopped")
    tracking.end_run(ctx.client, run_id, tracking.FINISHED)


def unlogged(ctx: SweepContext, run_id: str, metrics: dict[str, float], step: int) -> dict[str, float]:
    """The metrics the run does not yet hold at ``step`` with these values: a finish killed
    after logging them and completed by the next run logs each once."""
    return {k: v for k, v in metrics.items()
            if not any(m.step == step and m.value == v
                       for m in ctx.client.get_metric_history(run_id, k))}


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best complete trial by the study's score (for several metrics: the front's trial
    with the best first metric); None before any completed."""
    if len(study.directions) > 1:
        trials = front(study)
        return trials[0] if trials else None
    try:
        return study.best_trial
    except ValueError:
        return None
