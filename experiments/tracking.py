"""MLflow, driven directly: runs, params, per-epoch metrics and a run's final artifacts."""

from __future__ import annotations

import hashlib
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import mlflow
import torch
from matplotlib import pyplot as plt
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from experiments import plots
from experiments.cli import one_line
from experiments.config import Config, flatten, to_yaml
from experiments.runner import Trained, peak_memory_mb
from experiments.stores import schema_lock
from mlp import count_parameters, evaluate
from mlp.data import raw_dir

_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?P<tail>@)")


def mask_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", url)


def client_for(cfg: Config) -> tuple[MlflowClient, str]:
    """A client on ``mlflow.tracking_uri`` and the id of ``mlflow.experiment`` (created once)."""
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    with schema_lock(cfg.mlflow.tracking_uri):  # the client creates or migrates the store
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


def unreachable(uri: str, *, timeout: float = 5.0) -> str | None:
    """Why an ``http(s)://`` tracking server does not answer ``GET /health``; None when it does.

    Other URIs (SQLite, a folder) are not servers: opening them is the check."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return None
    host = parts.netloc.rsplit("@", 1)[-1]  # no credentials in the probe
    url = urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/") + "/health", "", ""))
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # something answers: the MLflow client says what is wrong with it
    except (OSError, ValueError) as exc:
        return f"GET {url} failed: {getattr(exc, 'reason', exc)} (timeout {timeout:g} s)"


def transient(exc: BaseException) -> bool:
    """True for an unreachable or failing tracking server (worth retrying), False for a request
    that MLflow rejected (a bug to report, not to retry)."""
    if isinstance(exc, MlflowException):
        return exc.get_http_status_code() >= 500 or exc.get_http_status_code() == 429
    return isinstance(exc, OSError)


class Outbox:
    """MLflow calls that failed because the tracking server was unreachable: queued, not lost.

    MLflow's client already retries every request with backoff for a few minutes
    (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, default 7), so a quick server restart goes unnoticed.
    A call that still fails is queued here instead of failing the trial; later calls queue
    behind it, without waiting on the server, until ``GET /health`` answers again (probed at
    most every ``pause`` seconds); then the queue is replayed in order. :meth:`finish` says at
    the end of the sweep what could not be logged. Optuna holds every trial's result meanwhile.
    """

    def __init__(self, uri: str = "", *, pause: float = 5.0) -> None:
        self.uri, self.pause = uri, pause
        self.queue: deque[tuple[str, Callable[[], Any]]] = deque()
        self.deferred = self.replayed = 0
        self.dropped: list[str] = []  # queued calls that MLflow rejected when they were replayed
        self._next_probe = 0.0

    def call(self, what: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, or None (the call queued) while the server is unreachable."""
        job = partial(fn, *args, **kwargs)
        if not self.queue or self.flush():
            try:
                return job()
            except Exception as exc:  # noqa: BLE001 - transient() decides; the rest is re-raised
                if not transient(exc):
                    raise
                print(f"warning: MLflow {what}: {mask_url(one_line(exc))[:300]}; queued until "
                      "the tracking server answers", file=sys.stderr, flush=True)
                self._next_probe = time.monotonic() + self.pause
        self.queue.append((what, job))
        self.deferred += 1
        return None

    def flush(self, *, wait: float = 0.0) -> bool:
        """Replay the queue in order while the server answers; True when nothing is left."""
        deadline = time.monotonic() + wait
        while self.queue:
            if self._answers():
                what, job = self.queue[0]
                try:
                    job()
                    self.replayed += 1
                    self.queue.popleft()
                    continue
                except Exception as exc:  # noqa: BLE001 - transient() decides
                    if not transient(exc):
                        self.dropped.append(f"{what} (rejected late: {one_line(exc)[:200]})")
                        self.queue.popleft()
                        continue
                    self._next_probe = time.monotonic() + self.pause
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
        return True

    def _answers(self) -> bool:
        now = time.monotonic()
        if now < self._next_probe:
            return False
        if unreachable(self.uri, timeout=2.0) is None:
            return True
        self._next_probe = now + self.pause
        return False

    def finish(self, *, wait: float = 60.0) -> bool:
        """End of a worker: send what is queued (waiting up to ``wait`` seconds for the server),
        then print one line on what the tracking server missed. True when it missed nothing."""
        if self.queue:
            print(f"waiting up to {wait:g} s for the tracking server to take {len(self.queue)} "
                  "queued MLflow call(s)", file=sys.stderr, flush=True)
            self.flush(wait=wait)
        lost = [what for what, _ in self.queue] + self.dropped
        if lost:
            print(f"warning: MLflow: {len(lost)} call(s) could not be logged: "
                  f"{'; '.join(lost[:5])}{' ...' if len(lost) > 5 else ''}. Optuna holds every "
                  "trial's result; the runs named here lack that part", file=sys.stderr, flush=True)
        elif self.deferred:
            print(f"MLflow: {self.deferred} call(s) failed while the tracking server was "
                  "unreachable; all of them were logged later", flush=True)
        return not lost
