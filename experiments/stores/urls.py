"""Store URLs: which backend a URL names, the file behind a SQLite URL, and passwords masked."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy

_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?P<tail>@)")


def mask_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", url)


def backend_of(url: str) -> str:
    """``sqlite``, ``postgresql``, ``mysql``...; "" for anything that is not a database URL
    (an MLflow server, a folder)."""
    try:
        return sqlalchemy.engine.make_url(url).get_backend_name()
    except sqlalchemy.exc.ArgumentError:
        return ""


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL; None for anything else (and for ``:memory:``)."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)
