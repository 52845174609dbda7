"""``python -m experiments.sweep`` processes for the multi-process tests."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from optuna.trial import FrozenTrial, TrialState

from tests.conftest import REPO, wait_for

RUN_BETWEEN_LOOKS = 0.05  # seconds the workers run between two looks by kill_mid_trial
READ_WITHIN = 2.0  # seconds a look may read the store while the workers are frozen


class Sweeps:
    """Sweep processes started by a test. Each runs in a session of its own, so it is killed at
    the end together with the workers it spawned, and writes its output to a file in ``cwd``
    (a pipe nobody reads while it runs would fill and stall it)."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.cwd, self.procs = cwd, []
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
                    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", **(env or {})}

    def start(self, overrides: list[str]) -> subprocess.Popen:
        with open(self._log(len(self.procs)), "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "experiments.sweep", *overrides], cwd=self.cwd,
                                    env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def output(self, proc: subprocess.Popen) -> str:
        return self._log(self.procs.index(proc)).read_text()

    def wait(self, timeout: float = 900) -> list[tuple[int, str]]:
        """Every process's exit code and output, once all have ended."""
        deadline = time.monotonic() + timeout
        codes = [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in self.procs]
        return [(code, self.output(p)) for code, p in zip(codes, self.procs, strict=True)]

    def said(self, text: str) -> bool | None:
        """True once some process has printed ``text``, else None (for ``wait_for``)."""
        return any(text in self.output(p) for p in self.procs) or None

    def kill_mid_trial(self, trials: Callable[[], list[FrozenTrial]], epochs: int,
                       timeout: float = 300) -> tuple[int, int]:
        """SIGKILL one of these processes while it trains a trial (its MLflow run open, at least
        one epoch reported, not all ``epochs``), and return (pid, trial number).

        All of a trial's epochs can pass between two reads of the store (twelve epochs of a
        small set take a fraction of a second on a fast CPU, less than one read on a loaded
        machine), so the store is never read while the workers run. Every process is frozen
        (SIGSTOP, waited for until the kernel shows it stopped), the store read, and a worker
        whose trial is then unfinished is killed before it can move again; else they all run
        for ``RUN_BETWEEN_LOOKS`` seconds and are looked at again. A frozen worker writes
        nothing, so the read shows where each stands, however long it takes; and any trial
        whose epochs take longer than that short run to pass is caught. Fails at once, with
        their output, if every process has exited."""
        pids = {p.pid for p in self.procs}

        def caught() -> tuple[int, int] | None:
            if all(p.poll() is not None for p in self.procs):
                outputs = "\n".join(self.output(p)[-2000:] for p in self.procs)
                raise AssertionError(f"every sweep exited before one was caught mid-trial:\n{outputs}")
            with self.frozen():
                for t in _read(trials):
                    pid = int(t.user_attrs.get("worker", ":0").rsplit(":", 1)[1])
                    if pid in pids and _mid_trial(t, epochs):
                        os.kill(pid, signal.SIGKILL)
                        return pid, t.number
            return None

        return wait_for(caught, "a sweep in the middle of a trial", timeout=timeout,
                        every=RUN_BETWEEN_LOOKS)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process (and the workers it spawned) stopped (SIGSTOP) inside the block, so what
        the test does there happens between two of their steps, not in a race with them. The
        block starts once the kernel shows them all stopped (a signal lands asynchronously)."""
        self._signal(signal.SIGSTOP)
        try:
            for p in self.procs:
                wait_for(functools.partial(_stopped, p.pid), f"sweep {p.pid} to stop",
                         timeout=30, every=0.005)
            yield
        finally:
            self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        """``sig`` to every process and the workers it spawned (its process group)."""
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, sig)

    def _log(self, index: int) -> Path:
        return self.cwd / f"sweep-{index}.log"

    def __enter__(self) -> Sweeps:
        return self

    def __exit__(self, *exc: object) -> None:
        self._signal(signal.SIGKILL)
        for p in self.procs:
            p.wait()


def _mid_trial(t: FrozenTrial, epochs: int) -> bool:
    return (t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs
            and 1 <= len(t.intermediate_values) < epochs)


def _stopped(pgid: int) -> bool | None:
    """True once the kernel shows every process of group ``pgid`` stopped, or exited and not
    yet reaped (either way it writes nothing more)."""
    states = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # a process that ended while the group was listed
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
            if int(fields[2]) == pgid:
                states.append(fields[0])
    return all(state in ("T", "t", "Z", "X") for state in states) or None


def _read(trials: Callable[[], list[FrozenTrial]]) -> list[FrozenTrial]:
    """The trials, or none when they cannot be read within ``READ_WITHIN`` seconds: a frozen
    worker may hold SQLite's lock, and would hold it for as long as the read waited (the read
    that waits goes on in its thread and ends once the worker has moved). Then no trial is
    killed this time."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(trials).result(timeout=READ_WITHIN)
    except Exception:  # noqa: BLE001 - a storage error or a wait means "cannot tell now"
        return []
    finally:
        pool.shutdown(wait=False)
