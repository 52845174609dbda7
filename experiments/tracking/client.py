"""The MLflow client: opened on a tracking URI, probed before use, and its failures classified."""

from __future__ import annotations

import shlex
import urllib.error
import urllib.parse
import urllib.request

import mlflow
from mlflow.entities import Experiment, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from experiments.stores import mask_url, probe, schema_lock

FINISHED, FAILED, KILLED = (RunStatus.to_string(s) for s in
                            (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED))

# MLflow 3 marks an experiment as model training (not GenAI: traces, "Evaluations") by this tag.
# Its open-source UI (3.17) has a GenAI / Model training switch that starts on GenAI and is
# remembered by the browser; a link with this query opens a page in Model training mode.
DEFAULT_URI = "sqlite:///mlflow.db"  # the embedded default, what `make ui` opens
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
MODEL_TRAINING = "workflowType=machine_learning"
DESCRIPTION_TAG = "mlflow.note.content"
DESCRIPTION = ("MLP training runs. A study is a parent run `study-NAME` with one child run per "
               "Optuna trial (`trial-NNNN`, then what it sampled; pruned and failed trials say so "
               "in their name), the retrained best (`best-trial-N`) and replicates; `train` runs "
               "are named after the settings that differ from the defaults. Compare trials on "
               "the `*_best` and `best_epoch` metrics.")


def client_for(tracking_uri: str, experiment: str) -> tuple[MlflowClient, str]:
    """A client on ``tracking_uri`` and the id of the ``experiment`` (created once)."""
    mlflow.set_tracking_uri(tracking_uri)
    with schema_lock(tracking_uri):  # the client creates or migrates the store
        client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        try:
            client.create_experiment(experiment, tags={KIND_TAG: KIND, DESCRIPTION_TAG: DESCRIPTION})
        except MlflowException:  # another worker created it first
            pass
        exp = client.get_experiment_by_name(experiment)
        assert exp is not None
    mark_kind(client, exp)
    return client, exp.experiment_id


def mark_kind(client: MlflowClient, exp: Experiment) -> None:
    """Tag an experiment the project uses as model development (one created before the tag
    existed, or by another tool), so the UI opens it on its runs; a description it lacks too."""
    if exp.tags.get(KIND_TAG) != KIND:
        client.set_experiment_tag(exp.experiment_id, KIND_TAG, KIND)
    if not exp.tags.get(DESCRIPTION_TAG):
        client.set_experiment_tag(exp.experiment_id, DESCRIPTION_TAG, DESCRIPTION)


def where_to_look(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """How to open run ``run_id`` in the MLflow UI: ``make ui`` for the embedded default, an
    ``mlflow ui`` command for another SQLite file, the server's own page otherwise."""
    return ui_address(tracking_uri, f"#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING}")


def ui_address(tracking_uri: str, page: str) -> str:
    """How to open ``page`` (``#/...``) of the MLflow UI on ``tracking_uri``: see
    :func:`where_to_look`."""
    parts = urllib.parse.urlsplit(tracking_uri)
    if parts.scheme in ("http", "https"):
        return f"{_server(parts)}/{page}"
    if tracking_uri == DEFAULT_URI:
        return f"make ui, then http://127.0.0.1:5000/{page}"
    shown = mask_url(tracking_uri)  # a database password is not printed
    return f"mlflow ui --backend-store-uri {shlex.quote(shown)}, then http://127.0.0.1:5000/{page}"


def unreachable(uri: str, *, timeout: float = 5.0) -> str | None:
    """Why an ``http(s)://`` tracking server does not answer ``GET /health``; None when it does.

    Other URIs (SQLite, a folder) are not servers: opening them is the check."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return None
    url = f"{_server(parts)}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # something answers: the MLflow client says what is wrong with it
    except (OSError, ValueError) as exc:
        return f"GET {url} failed: {getattr(exc, 'reason', exc)} (timeout {timeout:g} s)"


def check_store(uri: str) -> None:
    """Raise ConnectionError (one line, the URI masked) when the tracking store cannot be used:
    a server that does not answer, a SQLite file or folder that cannot be written. Seconds,
    before any work, instead of MLflow's minutes of retries and warnings at the first call."""
    problem = unreachable(uri) or probe(uri)
    if problem:
        raise ConnectionError(f"cannot reach mlflow.tracking_uri={mask_url(uri)}: {mask_url(problem)}")


def _server(parts: urllib.parse.SplitResult) -> str:
    """A tracking server's base URL without credentials or a trailing slash."""
    host = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def transient(exc: BaseException) -> bool:
    """True for an unreachable or failing tracking server (worth retrying), False for a request
    that MLflow rejected (a bug to report, not to retry)."""
    if isinstance(exc, MlflowException):
        return exc.get_http_status_code() >= 500 or exc.get_http_status_code() == 429
    return isinstance(exc, OSError)
