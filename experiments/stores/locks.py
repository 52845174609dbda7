"""One process at a time where the stores need it: creating a schema, claiming a trial, growing
a study's budget, electing its finaliser.

Optuna and MLflow create their tables (and stamp their alembic versions) the first time a
process opens a new database. Two processes doing that together collide: a UNIQUE error on
``alembic_version``, "table ... already exists", or a half-migrated ``mlflow.db`` that every
later run trips over. SQLite also ignores ``SELECT ... FOR UPDATE``, so two workers can both
move one WAITING trial to RUNNING. :func:`store_lock` serialises such steps: a file lock beside
a SQLite file (processes on one machine), a PostgreSQL advisory lock on the database (processes
on many machines). Other URIs (an MLflow server, a folder) need none: the server or the file
system serialises them.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterator

import sqlalchemy
from filelock import FileLock

from experiments.stores.urls import backend_of, sqlite_path

LOCK_TIMEOUT = 300.0  # seconds; creating a schema takes a second or two


@contextlib.contextmanager
def store_lock(url: str, key: str = "schema", *, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the store's lock named ``key`` while the block runs. A SQLite store has one lock file,
    ``<file>.lock``, for every key: the steps it guards are short and never nested."""
    path = sqlite_path(url)
    if path is not None:
        if not os.access(path.parent, os.W_OK):  # missing or read-only: no process creates a
            yield  # store there, and SQLite itself says what is wrong with the path
            return
        with FileLock(f"{path}.lock", timeout=timeout):
            yield
        return
    if backend_of(url) == "postgresql":
        with _advisory_lock(url, zlib.crc32(f"mlp-sweeps/{key}".encode())):
            yield
        return
    yield


def schema_lock(url: str) -> contextlib.AbstractContextManager[None]:
    """Only one process at a time creates or migrates the store's tables."""
    return store_lock(url, "schema")


@contextlib.contextmanager
def _advisory_lock(url: str, key: int) -> Iterator[None]:
    """``pg_advisory_lock`` on a connection of its own, released when the block ends. A server
    that cannot be reached takes no lock: the opener that follows reports why, in its words."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                      connect_args={"connect_timeout": 10})
    try:
        conn = engine.connect()
    except sqlalchemy.exc.SQLAlchemyError:
        engine.dispose()
        yield
        return
    try:
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        conn.commit()
        try:
            yield
        finally:
            with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):  # closing the connection frees it too
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
    finally:
        conn.close()
        engine.dispose()
