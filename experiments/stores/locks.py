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
import re
import zlib
from collections.abc import Iterator

import sqlalchemy
from filelock import FileLock, Timeout

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


@contextlib.contextmanager
def held_lock(url: str, key: str, *, wait: bool = False) -> Iterator[bool]:
    """Take the store's lock named ``key`` for a long step (a study's finish), held until the
    block ends or the process dies, whatever way it dies. Without ``wait``, try once and yield
    False when another process holds it. SQLite: a lock file of its own beside the store
    (``<file>.<key>.lock``), so the short steps of :func:`store_lock` go on meanwhile;
    PostgreSQL: a session advisory lock."""
    path = sqlite_path(url)
    if path is not None:
        if not os.access(path.parent, os.W_OK):
            yield True
            return
        lock = FileLock(f"{path}.{re.sub(r'[^A-Za-z0-9._-]+', '-', key)}.lock",
                        timeout=-1 if wait else 0)
        try:
            lock.acquire()
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()
        return
    if backend_of(url) == "postgresql":
        with _advisory_lock(url, zlib.crc32(f"mlp-sweeps/{key}".encode()), wait=wait) as got:
            yield got
        return
    yield True


def schema_lock(url: str) -> contextlib.AbstractContextManager[None]:
    """Only one process at a time creates or migrates the store's tables."""
    return store_lock(url, "schema")


@contextlib.contextmanager
def _advisory_lock(url: str, key: int, *, wait: bool = True) -> Iterator[bool]:
    """``pg_advisory_lock`` on a connection of its own, released when the block ends (or the
    connection drops); ``wait=False`` tries once and yields whether it got the lock. A server
    that cannot be reached takes no lock: the opener that follows reports why, in its words."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                      connect_args={"connect_timeout": 10})
    try:
        conn = engine.connect()
    except sqlalchemy.exc.SQLAlchemyError:
        engine.dispose()
        yield True
        return
    try:
        if wait:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            got = True
        else:
            got = bool(conn.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": key}).scalar())
        conn.commit()
        if not got:
            yield False
            return
        try:
            yield True
        finally:
            with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):  # closing the connection frees it too
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
    finally:
        conn.close()
        engine.dispose()
