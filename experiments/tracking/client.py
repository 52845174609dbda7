"""The MLflow client: opened on a tracking URI, probed before use, and its failures classified."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import mlflow
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from experiments.stores import schema_lock

FINISHED, FAILED, KILLED = (RunStatus.to_string(s) for s in
                            (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED))


def client_for(tracking_uri: str, experiment: str) -> tuple[MlflowClient, str]:
    """A client on ``tracking_uri`` and the id of the ``experiment`` (created once)."""
    mlflow.set_tracking_uri(tracking_uri)
    with schema_lock(tracking_uri):  # the client creates or migrates the store
        client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        return client, exp.experiment_id
    try:
        return client, client.create_experiment(experiment)
    except MlflowException:  # another worker created it first
        exp = client.get_experiment_by_name(experiment)
        assert exp is not None
        return client, exp.experiment_id


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
