"""``python -m experiments.sweep`` processes for the multi-process tests."""

from __future__ import annotations

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

        Trials last a second or two, so a worker seen mid-trial may have finished it by the time
        a signal lands. The worker is frozen first (SIGSTOP, waited for until the kernel shows it
        stopped) and its trial read again: only a trial still unfinished while its worker cannot
        move is killed; otherwise the worker goes on (SIGCONT) and the search goes on. A trial
        read with fewer than ``epochs`` values cannot complete after that read: its last report
        must commit and answer before the worker sends the ``tell``, and a stopped worker sends
        nothing. Fails at once, with their output, if every process has exited."""
        pids = {p.pid for p in self.procs}

        def caught() -> tuple[int, int] | None:
            if all(p.poll() is not None for p in self.procs):
                outputs = "\n".join(self.output(p)[-2000:] for p in self.procs)
                raise AssertionError(f"every sweep exited before one was caught mid-trial:\n{outputs}")
            for t in trials():
                pid = int(t.user_attrs.get("worker", ":0").rsplit(":", 1)[1])
                if pid in pids and _mid_trial(t, epochs):
                    os.kill(pid, signal.SIGSTOP)
                    wait_for(functools.partial(_stopped, pid), f"sweep {pid} to stop", timeout=30, every=0.01)
                    if any(u.number == t.number and _mid_trial(u, epochs) for u in _read(trials)):
                        os.kill(pid, signal.SIGKILL)
                        return pid, t.number
                    os.kill(pid, signal.SIGCONT)
            return None

        return wait_for(caught, "a sweep in the middle of a trial", timeout=timeout, every=0.1)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process (and the workers it spawned) stopped (SIGSTOP) inside the block, so what
        the test does there happens between two of their steps, not in a race with them."""
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for p in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGCONT)

    def _log(self, index: int) -> Path:
        return self.cwd / f"sweep-{index}.log"

    def __enter__(self) -> Sweeps:
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _mid_trial(t: FrozenTrial, epochs: int) -> bool:
    return (t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs
            and 1 <= len(t.intermediate_values) < epochs)


def _stopped(pid: int) -> bool | None:
    """True once the kernel shows ``pid`` stopped, or exited and not yet reaped (either way it
    writes nothing more; a signal is delivered asynchronously)."""
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state in ("T", "t", "Z") or None


def _read(trials: Callable[[], list[FrozenTrial]]) -> list[FrozenTrial]:
    """The trials, or none when the store cannot be read now (a frozen worker may hold SQLite's
    write lock: then its trial is not killed this time)."""
    try:
        return trials()
    except Exception:  # noqa: BLE001 - any storage error means "cannot tell now"
        return []
