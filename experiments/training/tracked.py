"""A tracked run: train a configuration in an MLflow run, evaluate it once on the test set,
and record its metrics, figures, data set and model."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import mlflow
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

from experiments import tracking
from experiments.cli import chain, epoch_progress
from experiments.config import Config, label
from experiments.registry import log_model
from experiments.training import figures
from experiments.training.runner import (
    Trained,
    peak_memory_mb,
    settle_precision,
    train_config,
)
from mlp import count_parameters, evaluate
from mlp.data import load_raw, raw_dir
from mlp.train import predict

NESTED_EVERY = 10.0  # seconds between plain progress lines of a retrain or replicate


class TrackedRun(NamedTuple):
    run_id: str
    final: dict[str, float]  # the run's final metrics (test/acc, val/acc_best, ...)
    model_uri: str | None  # the logged model (``models:/m-...``); None without mlflow.log_model


def tracked_run(cfg: Config, *, quiet: bool = False, progress: str | None = None,
                parent_run_id: str | None = None, run_name: str | None = None,
                tags: dict[str, str] | None = None,
                on_epoch_end: Callable[[int, dict[str, float]], None] | None = None
                ) -> TrackedRun:
    """Train ``cfg`` in a new MLflow run (nested under ``parent_run_id`` if given, with extra
    ``tags``); return the run's id, its final metrics and its model. The epochs' progress is shown as
    ``progress`` (``train`` unless ``quiet``). Ctrl-C closes the run as KILLED, an error as
    FAILED."""
    client, experiment_id = tracking.client_for(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    tags = {"kind": "train" if parent_run_id is None else "retrain", **(tags or {})}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run_id = client.create_run(experiment_id, run_name=run_name or f"train {label(cfg)}",
                               tags=tags).info.run_id
    status = tracking.FAILED
    desc, nested = progress or (None if quiet else "train"), parent_run_id is not None
    shown, close = (epoch_progress(cfg.train.epochs, desc=desc, keep=not nested,
                                   every=NESTED_EVERY if nested else 0.0)
                    if desc else (None, lambda: None))
    try:
        line = settle_precision(cfg)  # train.precision: what trains, never auto
        if not quiet:
            print(line, flush=True)
        tracking.log_config(client, run_id, cfg)
        log = tracking.epoch_logger(client, run_id)
        trained = train_config(cfg, on_epoch_end=chain(log, shown, on_epoch_end), on_probe=log)
        close()
        final, model_uri = record_final(client, run_id, cfg, trained)
        status = tracking.FINISHED
    except KeyboardInterrupt:
        status = tracking.KILLED
        raise
    finally:
        close()
        tracking.end_run(client, run_id, status)
    return TrackedRun(run_id, final, model_uri)


def record_final(client: MlflowClient, run_id: str, cfg: Config,
                 trained: Trained) -> tuple[dict[str, float], str | None]:
    """Evaluate once on the test set; log final metrics, figures, the data set and the model
    (:func:`experiments.registry.log_model`); the metrics and the model's URI."""
    model, data, result = trained.model, trained.data, trained.result
    test_loss, test_acc = evaluate(model, data.test_x, data.test_y, loss=cfg.train.loss)
    final = {"val/acc_best": result.best_val_acc, "best_epoch": result.best_epoch,
             "test/acc": test_acc, "test/loss": test_loss,
             "perf/peak_mem_mb": peak_memory_mb(trained.device),
             "model/num_params": count_parameters(model)}
    if trained.refit is not None:  # cross-validated: the folds' spread, the refit's epochs
        final["val/acc_best_sd"] = result.history[result.best_epoch - 1]["val/acc_sd"]
        tracking.log_history(client, run_id, [
            (epoch, {f"refit/{k}": h[k] for k in ("train/loss", "train/acc")})
            for epoch, h in enumerate(trained.refit.history, start=1)])
    tracking.log_metrics(client, run_id, final, step=len(result.history))
    if cfg.data.normalize != "none":  # the training split's statistics that scaled every split
        tracking.log_params(client, run_id, {"data.norm_mean": data.mean, "data.norm_std": data.std})
    pixels = data.test_x.float() * data.std + data.mean  # the test images as [0, 1] pixels again
    pred = predict(model, data.test_x)
    tracking.log_figures(client, run_id, {
        "plots/learning_curves.png": figures.learning_curves(result.history, loss=cfg.train.loss),
        "plots/confusion_matrix.png": figures.confusion_matrix(data.test_y, pred),
        "plots/test_predictions.png": figures.predictions(pixels, data.test_y, pred)})
    with mlflow.start_run(run_id=run_id, nested=True):
        tracking.log_dataset(data.train_x.cpu().float().numpy(), data.train_y.cpu().numpy(),
                             rows=data.train_index.numpy(), name="fashion-mnist-train",
                             source=str(raw_dir(cfg.data.root).resolve()),
                             tags={"rows": str(len(data.train_x)), "val_rows": str(len(data.val_x)),
                                   "seed": str(cfg.seed)})
        model_uri = None
        if cfg.mlflow.log_model:  # pixels 0-255 in, as the test set's files hold them
            examples = load_raw(cfg.data.root)[2][:2]
            model_uri = log_model(model, mean=data.mean, std=data.std, dtype=data.test_x.dtype,
                                  example=examples)
    return final, model_uri


def figure_run(cfg: Config, figs: dict[str, Figure], metrics: dict[str, float], *, name: str,
               kind: str) -> str:
    """A finished MLflow run that holds ``figs`` under ``plots/`` and ``metrics``; its id."""
    client, experiment_id = tracking.client_for(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    run_id = client.create_run(experiment_id, run_name=name, tags={"kind": kind}).info.run_id
    status = tracking.FAILED
    try:
        tracking.log_metrics(client, run_id, metrics)
        tracking.log_figures(client, run_id, {f"plots/{k}": f for k, f in figs.items()})
        status = tracking.FINISHED
    finally:
        tracking.end_run(client, run_id, status)
    return run_id
