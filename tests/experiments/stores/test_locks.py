"""Processes that open fresh stores at the same moment all succeed and leave whole stores; where
the store's lock lives."""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import sqlite3
import time
import traceback
from pathlib import Path

import pytest

from experiments.stores import schema_lock, sqlite_path

PROCESSES, ROUNDS = 3, 4


def _open_both(folders: list[str], barrier, errors) -> None:  # noqa: ANN001 - multiprocessing proxies
    """In a spawned process: for each folder, wait for the others, then open both stores."""
    from experiments.study import open_storage
    from experiments.tracking import client_for

    for folder in folders:
        try:
            barrier.wait(timeout=300)
            open_storage(f"sqlite:///{folder}/optuna.db")
            client_for(f"sqlite:///{folder}/mlflow.db", "mlp")
        except Exception:  # noqa: BLE001 - reported to the test, which fails with it
            errors.put(f"{folder}: {traceback.format_exc(limit=3)}")


@pytest.mark.slow
def test_processes_opening_fresh_sqlite_stores_together_all_succeed(tmp_path: Path) -> None:
    folders = [tmp_path / f"round-{k}" for k in range(ROUNDS)]
    for folder in folders:
        folder.mkdir()
    mp = multiprocessing.get_context("spawn")
    barrier, errors = mp.Barrier(PROCESSES), mp.Queue()
    procs = [mp.Process(target=_open_both, args=([str(f) for f in folders], barrier, errors))
             for _ in range(PROCESSES)]
    problems: list[str] = []
    try:
        for p in procs:
            p.start()
        deadline = time.monotonic() + 900
        while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):  # drained as they come: a full pipe would stall
                problems.append(errors.get(timeout=0.5))
        assert not any(p.is_alive() for p in procs), "the processes did not finish within 900 s"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join()
    while not errors.empty():
        problems.append(errors.get())
    assert not problems, "\n".join(problems)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    for folder in folders:  # whole stores: every table there, no migration left half-done
        for name, table in (("optuna.db", "studies"), ("mlflow.db", "experiments")):
            with sqlite3.connect(folder / name) as db:
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            assert table in tables and "alembic_version" in tables, (name, sorted(tables))
            assert not any(t.startswith("_alembic_tmp") for t in tables), (name, sorted(tables))


def test_the_lock_sits_beside_a_sqlite_file_and_is_a_no_op_elsewhere(tmp_path: Path) -> None:
    assert sqlite_path(f"sqlite:///{tmp_path}/optuna.db") == tmp_path / "optuna.db"
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("http://127.0.0.1:5000") is None and sqlite_path("mlruns") is None
    with schema_lock(f"sqlite:///{tmp_path}/optuna.db"):
        assert (tmp_path / "optuna.db.lock").exists()
    with schema_lock("http://127.0.0.1:5000"), schema_lock(f"sqlite:///{tmp_path}/missing/x.db"):
        pass  # nothing to lock: the server or SQLite itself reports a problem
