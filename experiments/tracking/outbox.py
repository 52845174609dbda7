"""Calls to a tracking server that was unreachable, queued and sent when it answers again."""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from experiments.cli import one_line
from experiments.stores import mask_url
from experiments.tracking.client import transient, unreachable


class Outbox:
    """MLflow calls that failed because the tracking server was unreachable: queued, not lost.

    MLflow's client already retries every request with backoff for a few minutes
    (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, default 7), so a quick server restart goes unnoticed.
    A call that still fails is queued here instead of failing the trial; later calls queue
    behind it, without waiting on the server, until ``GET /health`` answers again (probed at
    most every ``pause`` seconds); then the queue is replayed in order. :meth:`finish` says at
    the end of the sweep what could not be logged. Optuna holds every trial's result meanwhile.
    """

    def __init__(self, uri: str = "", *, pause: float = 5.0) -> None:
        self.uri, self.pause = uri, pause
        self.queue: deque[tuple[str, Callable[[], Any]]] = deque()
        self.deferred = self.replayed = 0
        self.dropped: list[str] = []  # queued calls that MLflow rejected when they were replayed
        self._next_probe = 0.0

    def call(self, what: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, or None (the call queued) while the server is unreachable."""
        job = partial(fn, *args, **kwargs)
        if not self.queue or self.flush():
            try:
                return job()
            except Exception as exc:  # noqa: BLE001 - transient() decides; the rest is re-raised
                if not transient(exc):
                    raise
                print(f"warning: MLflow {what}: {mask_url(one_line(exc))[:300]}; queued until "
                      "the tracking server answers", file=sys.stderr, flush=True)
                self._next_probe = time.monotonic() + self.pause
        self.queue.append((what, job))
        self.deferred += 1
        return None

    def flush(self, *, wait: float = 0.0) -> bool:
        """Replay the queue in order while the server answers; True when nothing is left."""
        deadline = time.monotonic() + wait
        while self.queue:
            if self._answers():
                what, job = self.queue[0]
                try:
                    job()
                    self.replayed += 1
                    self.queue.popleft()
                    continue
                except Exception as exc:  # noqa: BLE001 - transient() decides
                    if not transient(exc):
                        self.dropped.append(f"{what} (rejected late: {one_line(exc)[:200]})")
                        self.queue.popleft()
                        continue
                    self._next_probe = time.monotonic() + self.pause
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
        return True

    def _answers(self) -> bool:
        now = time.monotonic()
        if now < self._next_probe:
            return False
        if unreachable(self.uri, timeout=2.0) is None:
            return True
        self._next_probe = now + self.pause
        return False

    def finish(self, *, wait: float = 60.0) -> bool:
        """End of a worker: send what is queued (waiting up to ``wait`` seconds for the server),
        then print one line on what the tracking server missed. True when it missed nothing."""
        if self.queue:
            print(f"waiting up to {wait:g} s for the tracking server to take {len(self.queue)} "
                  "queued MLflow call(s)", file=sys.stderr, flush=True)
            self.flush(wait=wait)
        lost = [what for what, _ in self.queue] + self.dropped
        if lost:
            print(f"warning: MLflow: {len(lost)} call(s) could not be logged: "
                  f"{'; '.join(lost[:5])}{' ...' if len(lost) > 5 else ''}. Optuna holds every "
                  "trial's result; the runs named here lack that part", file=sys.stderr, flush=True)
        elif self.deferred:
            print(f"MLflow: {self.deferred} call(s) failed while the tracking server was "
                  "unreachable; all of them were logged later", flush=True)
        return not lost
