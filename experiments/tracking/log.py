"""What a run records: params, per-epoch metrics, figures, the data set and the model."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import mlflow
import numpy as np
from matplotlib.figure import Figure
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from experiments.config import Config, flatten, to_yaml
from experiments.stores import mask_url


def param_value(value: Any) -> str:
    """A param as MLflow stores it, a password in a URL masked."""
    return mask_url(str(value)) if isinstance(value, str) else str(value)


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any], *,
               tags: dict[str, str] | None = None) -> None:
    """Params in batches of 100 (MLflow's limit per request), values cut to 6,000 characters;
    ``tags`` go with the first batch."""
    items = [Param(k, param_value(v)[:6000]) for k, v in params.items()]
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start:start + 100], synchronous=True,
                         tags=[RunTag(k, v) for k, v in (tags or {}).items()] if not start else [])


def log_config(client: MlflowClient, run_id: str, cfg: Config, *, extra: dict | None = None,
               tags: dict[str, str] | None = None) -> None:
    """Every setting as a param (:func:`run_params`; and ``tags``), plus the whole resolved
    ``config.yaml`` as an artifact."""
    log_params(client, run_id, {**run_params(cfg), **(extra or {})}, tags=tags)
    client.log_text(run_id, mask_url(to_yaml(cfg)), "config.yaml")


def run_params(cfg: Config) -> dict[str, object]:
    """Each setting once, under its config key (the README's table): not the search space
    (the study's, on its parent run), and not ``model.width``/``model.depth`` when
    ``model.hidden_sizes`` replaces them (they would name a network the run did not train)."""
    flat = flatten(cfg)
    unused = ("model.width", "model.depth") if cfg.model.hidden_sizes else ()
    return {k: v for k, v in flat.items() if not k.startswith("search.") and k not in unused}


def log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float], *,
                step: int = 0) -> None:
    """Log a metrics dict in one request."""
    log_history(client, run_id, [(step, metrics)])


def log_history(client: MlflowClient, run_id: str, history: list[tuple[int, dict[str, float]]], *,
                tags: dict[str, str] | None = None) -> None:
    """Metrics of several steps (``[(step, metrics), ...]``) and tags, in one request."""
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, step) for step, m in history for k, v in m.items()]
    client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in (tags or {}).items()],
                     synchronous=True)


def epoch_logger(client: MlflowClient, run_id: str) -> Callable[[int, dict[str, float]], None]:
    """An ``on_epoch_end`` callback that logs the epoch's metrics with step = epoch."""
    def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
        log_metrics(client, run_id, metrics, step=epoch)
    return on_epoch_end


def end_run(client: MlflowClient, run_id: str, status: str) -> None:
    """Close a run as FINISHED, FAILED or KILLED."""
    client.set_terminated(run_id, status=status)


def log_figures(client: MlflowClient, run_id: str, figures: dict[str, Figure]) -> None:
    """Each figure as a PNG at its artifact path."""
    for path, fig in figures.items():
        client.log_figure(run_id, fig, path)


def log_dataset(x: np.ndarray, y: np.ndarray, *, rows: np.ndarray, source: str, name: str,
                tags: dict[str, str]) -> None:
    """Record a training split as the active run's input data set (digest = its row indices)."""
    digest = hashlib.sha256(rows.tobytes()).hexdigest()[:16]
    with warnings.catch_warnings():  # MLflow registers two equal local sources and says so
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_numpy(x, targets=y, source=source, name=name, digest=digest)
    mlflow.log_input(dataset, context="training", tags=tags)


@contextlib.contextmanager
def no_progress_bars() -> Iterator[None]:
    """MLflow without its "Downloading artifacts" progress bars (it reads a logged model back
    to check it, a report reads artifacts): they are noise in a command's output."""
    with mock.patch.dict(os.environ, {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}):
        yield
