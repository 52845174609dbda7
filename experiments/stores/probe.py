"""Can a store be used? Asked before either store is created, answered in seconds."""

from __future__ import annotations

import os

import sqlalchemy

from experiments.stores.urls import backend_of, sqlite_path

CONNECT_SECONDS = 5


def probe(url: str) -> str | None:
    """Why the database behind ``url`` cannot be used (missing or read-only folder or file,
    a server that does not answer); None when it can, or when ``url`` is not a database
    (an MLflow server or folder, which their own checks cover). Creates nothing."""
    path = sqlite_path(url)
    if path is not None:
        if path.exists():
            if not os.access(path, os.R_OK | os.W_OK):
                return f"{path} is not writable"
            if not os.access(path.parent, os.W_OK):  # SQLite writes its journal beside the file
                return f"the folder of {path} is read-only (SQLite writes its journal there)"
            return None
        if not path.parent.is_dir():
            return f"the folder {path.parent} does not exist"
        if not os.access(path.parent, os.W_OK):
            return f"the folder {path.parent} is read-only"
        return None
    if backend_of(url) in ("postgresql", "mysql"):
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                          connect_args={"connect_timeout": CONNECT_SECONDS})
        try:
            with engine.connect():
                return None
        except Exception as exc:  # noqa: BLE001 - a missing driver, a refused connection...
            orig = getattr(exc, "orig", None) or exc
            return " ".join(str(orig).split()) or type(orig).__name__
        finally:
            engine.dispose()
    return None
