"""``python -m experiments.sweep`` processes for the multi-process tests.

A test never races a process for a moment: where it needs one *at* a point (mid-trial, just
after a claim, inside a close), it arms that failpoint (``experiments.failpoints``) in the
process's environment. The process kills or interrupts itself there, or pauses there until the
test releases it, so what the test does happens at the same point on a fast or a slow machine."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from experiments.failpoints import DIR_ENV, ENV
from tests.conftest import REPO, wait_for


class Sweeps:
    """Sweep processes started by a test. Each runs in a session of its own, so it is killed at
    the end together with the workers it spawned, and writes its output to a file in ``cwd``
    (a pipe nobody reads while it runs would fill and stall it). Paused failpoints leave their
    marker files in ``cwd`` and look there for the file that resumes them."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.cwd, self.procs = cwd, []
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
                    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", DIR_ENV: str(cwd), **(env or {})}
        self.env.pop(ENV, None)

    def start(self, overrides: list[str], *, failpoints: str = "") -> subprocess.Popen:
        """A sweep with ``overrides``; ``failpoints`` arms failpoints in it (and in the workers
        it spawns), as ``MLP_FAILPOINTS`` would."""
        env = {**self.env, ENV: failpoints} if failpoints else self.env
        with open(self._log(len(self.procs)), "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "experiments.sweep", *overrides], cwd=self.cwd,
                                    env=env, stdout=log, stderr=subprocess.STDOUT,
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

    def paused(self, point: str, count: int = 1, *, timeout: float = 300) -> list[int]:
        """Wait until ``count`` processes are paused at failpoint ``point``; their pids. Fails at
        once, with their output, if every sweep has exited."""
        def found() -> list[int] | None:
            pids = sorted(int(p.name.split(".")[-2]) for p in self.cwd.glob(f"{point}.*.paused"))
            if len(pids) >= count:
                return pids
            if all(p.poll() is not None for p in self.procs):
                outputs = "\n".join(self.output(p)[-3000:] for p in self.procs)
                raise AssertionError(f"every sweep exited before {count} paused at {point}:\n{outputs}")
            return None

        return wait_for(found, f"{count} process(es) paused at failpoint {point}", timeout=timeout,
                        every=0.05)

    def resume(self, point: str) -> None:
        """Let every process paused (or yet to pause) at ``point`` go on."""
        (self.cwd / f"{point}.resume").touch()

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
