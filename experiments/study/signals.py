"""Ctrl-C and SIGTERM (what ``docker stop`` sends) end a sweep the same way in every process:
the first one raises KeyboardInterrupt, later ones are ignored while the process closes its
trial and run, and short critical steps (claiming a trial, creating its run, closing it) are
never cut in half."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


_interrupted = threading.Event()


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt once; the process then cleans up undisturbed."""
    for sig in SIGNALS:
        signal.signal(sig, _once)
    sys.unraisablehook = _unraisable


def _once(signum: int, frame: Any) -> None:
    _interrupted.set()
    for sig in SIGNALS:  # a Python handler, not SIG_IGN: a signal already pending when the
        signal.signal(sig, _ignore)  # handler changes would raise "ignored due to race condition"
    raise KeyboardInterrupt


def check() -> None:
    """Raise KeyboardInterrupt when a signal came but its KeyboardInterrupt was lost: raised
    inside a callback whose exceptions Python only reports (a weakref finaliser run by the
    garbage collector), it never reaches the code that stops the sweep. Called between epochs
    and between trials."""
    if _interrupted.is_set():
        raise KeyboardInterrupt


def _unraisable(info: Any) -> None:
    """A lost KeyboardInterrupt is not reported (:func:`check` acts on it); anything else is."""
    if not isinstance(info.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(info)


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


PR_SET_PDEATHSIG = 1  # prctl(2): the signal the kernel sends when the parent dies


def stop_with_parent(parent: int) -> None:
    """SIGTERM this process when ``parent`` (the sweep that spawned it) is gone, however it ended
    (kill -9, the OOM killer): the worker then closes its trial and run and exits, instead of
    holding memory and CPUs for nobody. Linux (prctl); elsewhere a worker only notices its
    parent is gone through a signal of its own."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it ended before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
