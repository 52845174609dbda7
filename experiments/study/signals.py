"""Ctrl-C and SIGTERM (what ``docker stop`` sends) end a sweep the same way in every process:
the first one raises KeyboardInterrupt, later ones are ignored while the process closes its
trial and run, and short critical steps (claiming a trial, creating its run, closing it) are
never cut in half."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt once; the process then cleans up undisturbed."""
    for sig in SIGNALS:
        signal.signal(sig, _once)


def _once(signum: int, frame: Any) -> None:
    for sig in SIGNALS:  # a Python handler, not SIG_IGN: a signal already pending when the
        signal.signal(sig, _ignore)  # handler changes would raise "ignored due to race condition"
    raise KeyboardInterrupt


def _ignore(signum: int, frame: Any) -> None:
    pass


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A signal that arrives inside the block takes effect when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if got and callable(old[got[0]]):
            old[got[0]](got[0], None)  # type: ignore[operator]
        elif got and old[got[0]] == signal.SIG_DFL:
            signal.raise_signal(got[0])
