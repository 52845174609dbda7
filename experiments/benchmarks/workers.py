"""Sweep workers against PostgreSQL and a tracking server, the docker-compose topology on one
machine: throughput, per-trial bookkeeping time, and lost or duplicated trials."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from experiments.stores.scratch import ADMIN_URL, scratch_database
from experiments.tracking.server import TrackingServer

REPO = Path(__file__).resolve().parents[2]
TINY = ["data.limit_train=1000", "data.val_size=500", "train.epochs=2", "sweep.pruner=none",
        "sweep.sampler=random", "sweep.retrain_best=false", "mlflow.log_model=false", "search=tiny"]
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
              "PYTHONUNBUFFERED": "1"}


def timed_worker(out: Path, overrides: list[str]) -> int:
    """One sweep worker whose trials are timed: bookkeeping = everything but training compute."""
    import optuna

    from experiments.study import context, run_sweep, trial, worker

    spent: Counter = Counter()
    records: list[dict] = []

    def timed(fn, key: str):
        def call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[key] += time.perf_counter() - t0
        return call

    def train(cfg, *, data=None, on_epoch_end=None):
        t0, callbacks = time.perf_counter(), timed(on_epoch_end, "callbacks")
        try:
            return train_config(cfg, data=data, on_epoch_end=callbacks)
        finally:
            spent["compute"] += time.perf_counter() - t0 - spent.pop("callbacks", 0.0)

    def progress(ctx, study, trial, out):
        t0 = time.perf_counter()
        progress_line(ctx, study, trial, out)
        book = (spent["claim"] + spent["trial"] - spent["compute"] - spent["data"]
                + time.perf_counter() - t0)
        records.append({"number": trial.number, "bookkeeping": book, "compute": spent["compute"],
                        "trial": spent["trial"]})
        spent.clear()

    train_config, progress_line = trial.train_config, worker.progress
    trial.train_config, worker.progress = train, progress
    worker.claim, worker.run_trial = timed(worker.claim, "claim"), timed(worker.run_trial, "trial")
    optuna.storages.fail_stale_trials = timed(optuna.storages.fail_stale_trials, "claim")
    context.SweepContext.data_for = timed(context.SweepContext.data_for, "data")
    code = 1
    try:
        code = run_sweep(overrides)
    finally:
        out.write_text(json.dumps({"code": code, "trials": records}))
    return code


def run(*, workers: int, trials: int, data: str, admin_url: str = ADMIN_URL,
        server_workers: int = 2, extra: list[str] | None = None) -> dict:
    """Run the benchmark; returns the figures (see :func:`figures`)."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-workers-")))
        storage = stack.enter_context(scratch_database(admin_url, prefix="bench_optuna"))
        backend = stack.enter_context(scratch_database(admin_url, prefix="bench_mlflow"))
        server = stack.enter_context(TrackingServer(backend, tmp / "artifacts", workers=server_workers))
        overrides = [f"sweep.storage={storage}", f"mlflow.tracking_uri={server.uri}",
                     f"sweep.n_trials={trials}", f"data.root={data}", "sweep.study_name=bench",
                     *TINY, *(extra or [])]
        env = {**os.environ, **WORKER_ENV, "PYTHONPATH": str(REPO)}
        logs = [stack.enter_context(open(tmp / f"w{i}.log", "w")) for i in range(workers)]
        start = time.monotonic()
        procs = [subprocess.Popen([sys.executable, "-m", "experiments.bench_workers", "--worker",
                                   str(tmp / f"w{i}.json"), *overrides], cwd=tmp, env=env,
                                  stdout=logs[i], stderr=subprocess.STDOUT)
                 for i in range(workers)]
        codes = [p.wait(timeout=900) for p in procs]
        wall = time.monotonic() - start
        if any(codes):
            bad = codes.index(next(c for c in codes if c))
            raise RuntimeError(f"worker {bad} exited {codes[bad]}: "
                               f"{(tmp / f'w{bad}.log').read_text()[-2000:]}")
        timings = [r for i in range(workers)
                   for r in json.loads((tmp / f"w{i}.json").read_text())["trials"]]
        return figures(storage, server.uri, trials, timings, wall=wall, workers=workers)


def figures(storage: str, tracking_uri: str, n_trials: int, timings: list[dict], *,
            wall: float, workers: int) -> dict:
    """Throughput, bookkeeping percentiles, and lost/duplicated trials from Optuna and MLflow."""
    import optuna
    from mlflow.tracking import MlflowClient
    from optuna.trial import TrialState

    study = optuna.load_study(study_name="bench", storage=storage)
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    window = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done))
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("mlp")
    runs = client.search_runs([exp.experiment_id], "tags.kind = 'trial'", max_results=5000)
    per_number = Counter(int(r.data.tags["optuna.trial"]) for r in runs
                         if r.info.status == "FINISHED")
    parents = client.search_runs([exp.experiment_id], "tags.kind = 'study'")
    numbers = [t.number for t in done]
    book = sorted(r["bookkeeping"] for r in timings)
    q = statistics.quantiles(book, n=20, method="inclusive") if len(book) > 1 else book * 19
    return {
        "workers": workers, "trials_done": len(done), "wall_seconds": wall,
        "window_seconds": window.total_seconds(),
        "trials_per_minute": 60 * len(done) / max(window.total_seconds(), 1e-9),
        "bookkeeping_p50": statistics.median(book), "bookkeeping_p95": q[18],
        "compute_p50": statistics.median(r["compute"] for r in timings),
        "lost": max(0, n_trials - len(done)) + sum(per_number[n] == 0 for n in numbers),
        "duplicated": (max(0, len(done) - n_trials) + len(numbers) - len(set(numbers))
                       + sum(c - 1 for c in per_number.values() if c > 1)),
        "parent_runs": len(parents), "failed": sum(t.state == TrialState.FAIL for t in trials),
    }


def report(f: dict, *, trials: int) -> str:
    return "\n".join([
        f"{f['workers']} concurrent workers, {trials} tiny trials (1,000 training images, 2 epochs, "
        "width 16-32) on PostgreSQL + an MLflow tracking server",
        f"wall time {f['wall_seconds']:.1f} s with worker start-up; trials ran for "
        f"{f['window_seconds']:.1f} s",
        f"trials per minute: {f['trials_per_minute']:.1f}",
        f"bookkeeping per trial: p50 {f['bookkeeping_p50']:.3f} s, p95 {f['bookkeeping_p95']:.3f} s "
        f"(training compute p50 {f['compute_p50']:.3f} s)",
        f"lost trials: {f['lost']}, duplicated trials: {f['duplicated']} (target: 0 and 0); "
        f"parent runs: {f['parent_runs']}, failed trials: {f['failed']}",
    ])
