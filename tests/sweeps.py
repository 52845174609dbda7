"""``python -m experiments.sweep`` processes for the multi-process tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO


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

    def _log(self, index: int) -> Path:
        return self.cwd / f"sweep-{index}.log"

    def __enter__(self) -> Sweeps:
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
