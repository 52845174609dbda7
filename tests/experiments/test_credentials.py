"""No password reaches what the sweep prints, logs or stores, in any form a store URL carries it:
``user:password@``, ``?password=``, or a URL the environment provides."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

from experiments import sweep
from experiments.stores.scratch import scratch_database
from tests.conftest import DATA_ROOT, needs_postgres

pytestmark = [needs_postgres, pytest.mark.slow]
SECRET = "Zq-s3cret-Pw"  # PostgreSQL here trusts local connections: any password works


def _with_password(url: str, form: str) -> str:
    if form == "userinfo":
        return url.replace("postgres@", f"postgres:{SECRET}@", 1)
    return f"{url}?password={SECRET}&connect_timeout=10"


def _dump(url: str) -> str:
    """Every row of every table of the database, as text."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = 'public'")
            tables = [r[0] for r in cur.fetchall()]
            rows = []
            for table in tables:
                cur.execute(f'SELECT * FROM "{table}"')
                rows.append(repr(cur.fetchall()))
        return "\n".join(rows)
    finally:
        conn.close()


@pytest.mark.parametrize("form", ["userinfo", "query", "environment"])
def test_no_password_is_printed_logged_or_stored(
        workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
        form: str) -> None:
    with scratch_database(prefix="mlp_secret") as optuna_db, \
            scratch_database(prefix="mlp_secret") as mlflow_db:
        storage = _with_password(optuna_db, "query" if form == "environment" else form)
        tracking = _with_password(mlflow_db, "userinfo" if form == "environment" else form)
        if form == "environment":  # e.g. the compose stack: the URLs come from the environment
            monkeypatch.setenv("MLP_TEST_STORAGE", storage)
            monkeypatch.setenv("MLP_TEST_TRACKING", tracking)
            storage, tracking = "${oc.env:MLP_TEST_STORAGE}", "${oc.env:MLP_TEST_TRACKING}"
        code = sweep.main([f"data.root={DATA_ROOT}", "search=tiny", "data.limit_train=1000",
                           "data.val_size=500", "train.epochs=1", "sweep.n_trials=2",
                           "sweep.sampler=random", "mlflow.log_model=false",
                           f"sweep.storage='{storage}'", f"mlflow.tracking_uri='{tracking}'"])
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "***" in out.out  # the URLs were printed, masked
        stored = _dump(optuna_db) + _dump(mlflow_db)
        assert "optuna.study" in stored and "mlflow_parent_run_id" in stored  # dumps hold the runs
    assert SECRET not in out.out + out.err
    assert SECRET not in stored
    files = [p for p in workdir.rglob("*") if p.is_file()]
    assert any(p.name == "config.yaml" for p in files)  # the artifacts are in the folder
    leaks = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert not leaks
