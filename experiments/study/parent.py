"""The study's parent MLflow run: created by the study's creator, found again by every other
worker through the study's user attrs."""

from __future__ import annotations

import time

import optuna

from experiments import tracking
from experiments.config import to_yaml
from experiments.stores import mask_url
from experiments.study.context import SweepContext

PARENT_ATTR = "mlflow_parent_run_id"


class SweepError(RuntimeError):
    """A study that cannot go on (mismatched settings, a parent run that never appears)."""


def attach_parent(ctx: SweepContext, study: optuna.Study, *, created: bool) -> str:
    """Create the parent run (the study's creator) or find it (everyone else) and mark it RUNNING."""
    if not created:
        for _ in range(120):  # a creator on another worker may still be setting it up
            run_id = study.user_attrs.get(PARENT_ATTR)
            if run_id:
                ctx.client.update_run(run_id, status="RUNNING")
                return run_id
            time.sleep(0.5)
        raise SweepError(f"study {study.study_name!r} has no parent MLflow run; was it created "
                         "by another tool? use another sweep.study_name")
    cfg = ctx.cfg
    run = ctx.client.create_run(ctx.experiment_id, run_name=f"study-{study.study_name}", tags={
        "kind": "study", "optuna.study": study.study_name})
    run_id = run.info.run_id
    params = {"study_name": study.study_name, "storage": cfg.sweep.storage,
              "sampler": cfg.sweep.sampler, "pruner": cfg.sweep.pruner, "metric": cfg.sweep.metric,
              "direction": study.direction.name.lower(), "seed": cfg.sweep.seed,
              **{f"space.{k}": v for k, v in ctx.space.describe().items()}}
    tracking.log_params(ctx.client, run_id, params)
    ctx.client.log_dict(run_id, ctx.space.describe(), "search_space.json")
    ctx.client.log_text(run_id, mask_url(to_yaml(cfg)), "base_config.yaml")
    study.set_user_attr("metric", cfg.sweep.metric)
    study.set_user_attr("tracking_uri", mask_url(cfg.mlflow.tracking_uri))
    study.set_user_attr("experiment_id", ctx.experiment_id)
    study.set_user_attr(PARENT_ATTR, run_id)
    return run_id


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None
