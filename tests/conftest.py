"""Shared fixtures: the prepared data root and a throw-away MLflow store per test."""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import optuna
import pytest

from experiments.stores import mask_url
from experiments.stores.scratch import ADMIN_URL
from experiments.study import open_storage

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO / "data"


def _postgres_problem() -> str | None:
    try:
        import psycopg2

        psycopg2.connect(ADMIN_URL, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        return f"no PostgreSQL at {mask_url(ADMIN_URL)}: {exc}"
    return None


_NO_POSTGRES = _postgres_problem()
needs_postgres = pytest.mark.skipif(_NO_POSTGRES is not None, reason=str(_NO_POSTGRES))


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory, so mlflow.db, optuna.db and mlruns/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _no_tracking_uri_leaks() -> Iterator[None]:
    """The commands call ``mlflow.set_tracking_uri``, which also exports ``MLFLOW_TRACKING_URI``:
    put both back after each test, so no later test or subprocess inherits that test's store."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    mlflow.set_tracking_uri(before)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


def small_overrides(tmp_path: Path, *, epochs: int = 2, limit: int = 2000) -> list[str]:
    """Overrides for a quick run on a slice of the real data with a store under tmp_path."""
    return [f"data.root={DATA_ROOT}", f"data.limit_train={limit}", "data.val_size=1000",
            f"train.epochs={epochs}", f"mlflow.tracking_uri=sqlite:///{tmp_path}/mlflow.db"]


_STORAGES: dict[str, optuna.storages.RDBStorage] = {}


def load_study(url: str, name: str = "mlp-sweep") -> optuna.Study:
    """A study read while other processes may still be creating its store: through the sweep's
    own opener (the store's schema lock), one engine per URL so polling piles up no connections.
    Raises KeyError while the study does not exist yet."""
    if url not in _STORAGES:
        _STORAGES[url] = open_storage(url)
    return optuna.load_study(study_name=name, storage=_STORAGES[url])


def forget_storage(url: str) -> None:
    """Close the engine :func:`load_study` keeps for ``url`` (before its database is dropped)."""
    if url in _STORAGES:
        _STORAGES.pop(url).engine.dispose()


T = TypeVar("T")


def wait_for(found: Callable[[], T | None], what: str, *, timeout: float = 120, every: float = 0.2) -> T:
    """Poll ``found()`` until it returns something other than None, and return that; fail with
    ``what`` after ``timeout`` seconds. Tests wait for exactly the condition they then assert."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value is not None:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def run_in_session(cmd: list[str], *, timeout: float, **popen: Any) -> tuple[int, str, str]:
    """Run ``cmd`` in a session of its own and return its exit code, stdout and stderr. What it
    started (a browser's renderers, the workers a sweep spawned) is killed with it, on a timeout
    too."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode, out, err
