"""MLflow, driven directly: runs, params, per-epoch metrics and a run's final artifacts."""

from __future__ import annotations

import hashlib
import re
import time
import warnings
from collections.abc import Callable
from typing import Any

import mlflow
import torch
from matplotlib import pyplot as plt
from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient

from experiments import plots
from experiments.config import Config, flatten, to_yaml
from experiments.runner import Trained, peak_memory_mb
from mlp import count_parameters, evaluate
from mlp.data import raw_dir

_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?P<tail>@)")


def mask_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", url)


def client_for(cfg: Config) -> tuple[MlflowClient, str]:
    """A client on ``mlflow.tracking_uri`` and the id of ``mlflow.experiment`` (created once)."""
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    client = MlflowClient(cfg.mlflow.tracking_uri)
    exp = client.get_experiment_by_name(cfg.mlflow.experiment)
    if exp is not None:
        return client, exp.experiment_id
    try:
        return client, client.create_experiment(cfg.mlflow.experiment)
    except mlflow.exceptions.MlflowException:  # another worker created it first
        exp = client.get_experiment_by_name(cfg.mlflow.experiment)
        assert exp is not None
        return client, exp.experiment_id


def param_value(value: Any) -> str:
    return mask_url(str(value)) if isinstance(value, str) else str(value)


def log_config(client: MlflowClient, run_id: str, cfg: Config, *, extra: dict | None = None) -> None:
    """Every resolved config leaf as a param, plus ``config.yaml`` as an artifact."""
    params = {k: param_value(v) for k, v in flatten(cfg).items()}
    params.update({k: param_value(v) for k, v in (extra or {}).items()})
    items = [Param(k, v[:6000]) for k, v in params.items()]
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start:start + 100], synchronous=True)
    client.log_text(run_id, mask_url(to_yaml(cfg)), "config.yaml")


def log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float], *,
                step: int = 0) -> None:
    """Log a metrics dict in one request."""
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()],
                     synchronous=True)


def epoch_logger(client: MlflowClient, run_id: str) -> Callable[[int, dict[str, float]], None]:
    """An ``on_epoch_end`` callback that logs the epoch's metrics with step = epoch."""
    def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
        log_metrics(client, run_id, metrics, step=epoch)
    return on_epoch_end


def end_run(client: MlflowClient, run_id: str, status: str) -> None:
    """Close a run as FINISHED, FAILED or KILLED."""
    client.set_terminated(run_id, status=status)


def log_final(client: MlflowClient, run_id: str, cfg: Config, trained: Trained) -> dict[str, float]:
    """Evaluate once on the test set; log final metrics, plots, the data set and the model."""
    model, data, result = trained.model, trained.data, trained.result
    test_loss, test_acc = evaluate(model, data.test_x, data.test_y)
    final = {"val/acc_best": result.best_val_acc, "best_epoch": result.best_epoch,
             "test/acc": test_acc, "test/loss": test_loss,
             "perf/peak_mem_mb": peak_memory_mb(trained.device),
             "model/num_params": count_parameters(model)}
    log_metrics(client, run_id, final, step=len(result.history))
    with torch.no_grad():
        model.eval()
        pred = model(data.test_x).argmax(dim=1)
    figures = {"plots/learning_curves.png": plots.learning_curves(result.history),
               "plots/confusion_matrix.png": plots.confusion_matrix(data.test_y, pred),
               "plots/test_predictions.png": plots.predictions(data.test_x, data.test_y, pred)}
    for path, fig in figures.items():
        client.log_figure(run_id, fig, path)
        plt.close(fig)
    with mlflow.start_run(run_id=run_id, nested=True):
        log_dataset(cfg, trained)
        if cfg.mlflow.log_model:
            log_model(model, data.test_x[:8])
    return final


def log_dataset(cfg: Config, trained: Trained) -> None:
    """Record the training split as the run's input data set (digest = the split's rows)."""
    data = trained.data
    digest = hashlib.sha256(data.train_index.numpy().tobytes()).hexdigest()[:16]
    with warnings.catch_warnings():  # MLflow registers two equal local sources and says so
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_numpy(
            data.train_x.cpu().numpy(), targets=data.train_y.cpu().numpy(),
            source=str(raw_dir(cfg.data.root).resolve()), name="fashion-mnist-train",
            digest=digest)
    mlflow.log_input(dataset, context="training",
                     tags={"rows": str(len(data.train_x)), "val_rows": str(len(data.val_x)),
                           "seed": str(cfg.seed)})


def log_model(model: torch.nn.Module, example: torch.Tensor) -> None:
    """The trained model via ``mlflow.pytorch.log_model`` with an inferred signature."""
    model = model.cpu().eval()
    x = example.cpu()
    with torch.no_grad():
        y = model(x)
    signature = mlflow.models.infer_signature(x.numpy(), y.numpy())
    mlflow.pytorch.log_model(model, name="model", signature=signature, input_example=x.numpy(),
                             pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])


FINISHED, FAILED, KILLED = (RunStatus.to_string(s) for s in
                            (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED))
