"""A local ``mlflow server`` process, for the multi-process tests and the worker benchmark."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from experiments.tracking.client import unreachable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TrackingServer:
    """``mlflow server`` on 127.0.0.1 with a database backend and proxied artifacts (its own
    process group, so stopping it stops its workers too)."""

    def __init__(self, backend: str, artifacts: Path, *, workers: int = 2) -> None:
        self.backend, self.artifacts, self.workers = backend, artifacts, workers
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = artifacts.parent / f"mlflow-server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, *, timeout: float = 150.0) -> None:
        """Start the server and wait until it answers ``GET /health`` (nothing to do if it runs)."""
        if self.proc is not None and self.proc.poll() is None:
            return
        cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.backend,
               "--serve-artifacts", "--artifacts-destination", str(self.artifacts),
               "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while unreachable(self.uri, timeout=1.0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mlflow server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL what is left."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # workers the parent left behind
            os.killpg(self.proc.pid, signal.SIGKILL)

    def __enter__(self) -> TrackingServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
