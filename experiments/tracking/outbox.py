"""MLflow calls made off the training path, in order, and queued while the tracking server is
unreachable; sent when it answers again."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from experiments import failpoints
from experiments.cli import one_line
from experiments.config import plural
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

    :meth:`send` takes a call off the caller's path: one sender thread makes the calls in the
    order sent, each as :meth:`call` would. A trial's params, epochs and close go this way, so
    training never waits on the tracking store. MLflow's own asynchronous logging was not enough
    here: it covers ``log_batch`` only (runs, artifacts and status stay synchronous) and drops a
    batch once the client's retries are spent, where this queue holds it until the server is back.
    """

    def __init__(self, uri: str = "", *, pause: float = 5.0) -> None:
        self.uri, self.pause = uri, pause
        self.queue: deque[tuple[str, Callable[[], Any]]] = deque()
        self.deferred = self.replayed = 0
        self.dropped: list[str] = []  # calls MLflow rejected: replayed late, or sent in the background
        self._next_probe = 0.0
        self._lock = threading.RLock()  # the queue and counters, shared with the sender thread
        self._jobs: queue.Queue[tuple[str, Callable[[], Any]]] = queue.Queue()
        self._sender: threading.Thread | None = None

    def call(self, what: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, or None (the call queued) while the server is unreachable."""
        job = partial(fn, *args, **kwargs)
        with self._lock:
            if self.queue and not self.flush():
                self._defer(what, job)
                return None
        try:
            failpoints.hit("mlflow.send")
            answer = job()
            failpoints.hit("mlflow.sent")
            return answer
        except Exception as exc:  # noqa: BLE001 - transient() decides; the rest is re-raised
            if not transient(exc):
                raise
            print(f"warning: MLflow {what}: {mask_url(one_line(exc))[:300]}; queued until "
                  "the tracking server answers", file=sys.stderr, flush=True)
            with self._lock:
                self._next_probe = time.monotonic() + self.pause
                self._defer(what, job)
        return None

    def _defer(self, what: str, job: Callable[[], Any]) -> None:
        self.queue.append((what, job))
        self.deferred += 1

    def send(self, what: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """:meth:`call` on the sender thread: returns at once; calls run in the order sent. A
        call MLflow rejects is reported by :meth:`finish` (there is no caller left to raise to)."""
        if self._sender is None:
            self._sender = threading.Thread(target=self._send_loop, name="mlflow-sender", daemon=True)
            self._sender.start()
        self._jobs.put((what, partial(fn, *args, **kwargs)))

    def _send_loop(self) -> None:
        while True:
            what, job = self._jobs.get()
            try:
                self.call(what, job)
            except Exception as exc:  # noqa: BLE001 - rejected: reported by finish()
                with self._lock:
                    self.dropped.append(f"{what} (rejected: {one_line(exc)[:200]})")
            finally:
                self._jobs.task_done()

    def drain(self, *, wait: float | None = None) -> bool:
        """Wait (at most ``wait`` seconds) until every sent call was made or queued; True if so."""
        deadline = None if wait is None else time.monotonic() + wait
        while self._jobs.unfinished_tasks:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def flush(self, *, wait: float = 0.0) -> bool:
        """Replay the queue in order while the server answers; True when nothing is left."""
        with self._lock:
            return self._flush(wait)

    def _flush(self, wait: float) -> bool:
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
        self.drain()
        if self.queue:
            print(f"waiting up to {wait:g} s for the tracking server to take "
                  f"{plural(len(self.queue), 'queued MLflow call')}", file=sys.stderr, flush=True)
            self.flush(wait=wait)
        lost = [what for what, _ in self.queue] + self.dropped
        if lost:
            print(f"warning: MLflow: {plural(len(lost), 'call')} could not be logged: "
                  f"{'; '.join(lost[:5])}{' ...' if len(lost) > 5 else ''}. Optuna holds every "
                  "trial's result; the runs named here lack that part", file=sys.stderr, flush=True)
        elif self.deferred:
            print(f"MLflow: {plural(self.deferred, 'call')} failed while the tracking server was "
                  "unreachable; all of them were logged later", flush=True)
        return not lost
