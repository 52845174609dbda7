"""Ctrl-C and SIGTERM (what ``docker stop`` sends) end a sweep the same way in every process:
the first one raises KeyboardInterrupt, later ones are ignored while the process closes its
trial and run, and short critical steps (claiming a trial, creating its run, closing it) are
never cut in half."""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


_state = {"interrupted": False}  # a plain flag: the handler may run inside itself (below)
_watchdog: list[tuple[int, float]] = []  # a worker's exit watchdog: its pipe's write end, its bound


def install(*, exit_within: float | None = None) -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt once; the process then cleans up undisturbed.
    With ``exit_within`` (a worker, whom nobody may be left to kill), a process still running
    that many seconds after the interrupt prints where each thread is and exits."""
    for sig in SIGNALS:
        signal.signal(sig, _once)
    sys.unraisablehook = _unraisable
    _watchdog.clear()
    if exit_within is not None:  # started now: starting a thread in the handler takes locks
        read_end, write_end = os.pipe()
        threading.Thread(target=_end_after, args=(read_end, exit_within), name="exit-watchdog",
                         daemon=True).start()
        _watchdog.append((write_end, exit_within))


def _once(signum: int, frame: Any) -> None:
    """The handler of the first signal. A second one can arrive while it runs (a worker whose
    parent dies gets SIGTERM from the kernel and from its own parent watch), and Python then runs
    this handler again inside itself, at any line. So it takes no lock (a threading.Event's
    set() held its lock when the second signal came, and the nested set() waited for it
    forever), and whichever call sets the flag first raises the only KeyboardInterrupt."""
    if _state["interrupted"]:
        return
    _state["interrupted"] = True
    for sig in SIGNALS:  # a Python handler, not SIG_IGN: a signal already pending when the
        signal.signal(sig, _ignore)  # handler changes would raise "ignored due to race condition"
    if _watchdog:
        os.write(_watchdog[0][0], b"!")  # no lock either: the watchdog's clock starts
    raise KeyboardInterrupt


def _end_after(read_end: int, seconds: float) -> None:
    """The last resort of an interrupted worker that has not ended: its threads' stacks on
    stderr (to find what held it), then SIGKILL (no clean-up is left to wait for); its trial's
    heartbeat goes stale, so the next run fails and reruns it. Waits for the handler's byte."""
    os.read(read_end, 1)
    time.sleep(seconds)
    print(f"error: still running {seconds:g} s after the interrupt; exiting (where each thread "
          "was follows)", file=sys.stderr, flush=True)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    os.kill(os.getpid(), signal.SIGKILL)


def check() -> None:
    """Raise KeyboardInterrupt when a signal came but its KeyboardInterrupt was lost: raised
    inside a callback whose exceptions Python only reports (a weakref finaliser run by the
    garbage collector), it never reaches the code that stops the sweep. Called between epochs
    and between trials."""
    if _state["interrupted"]:
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
PARENT_POLL_SECONDS = 1.0


def stop_with_parent(parent: int) -> None:
    """SIGTERM this process when ``parent`` (the sweep that spawned it) is gone, however it ended
    (kill -9, the OOM killer): the worker then closes its trial and run and exits, instead of
    holding memory and CPUs for nobody. Linux (prctl); elsewhere a worker only notices its
    parent is gone through a signal of its own."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    """SIGTERM this process once ``parent`` is gone, also where PR_SET_PDEATHSIG is not (other
    systems) or its signal did not come: checked every second."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
