"""What the sweep machinery costs: the share of a default trial spent outside training, and
small-model trials per hour with 1 and 2 worker processes. Every study lives in a temporary
folder; nothing is asserted, the figures are printed."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[2]
OVERHEAD_TARGET, SPEEDUP_TARGET = 0.05, 1.3
# A trial that is almost all bookkeeping: 8 hidden units, 256 images, 1 epoch.
TINY = ["model.width=8", "data.limit_train=256", "data.val_size=256", "train.epochs=1"]


def _space(folder: Path, params: dict[str, str]) -> list[str]:
    conf = folder / "conf" / "search"
    conf.mkdir(parents=True, exist_ok=True)
    body = "".join(f"  {k}: {v}\n" for k, v in params.items())
    (conf / "bench.yaml").write_text(f"# benchmark space\nparams:\n{body}")
    return [f"hydra.searchpath=[file://{folder}/conf]", "search=bench"]


def _stores(folder: Path) -> list[str]:
    return [f"sweep.storage=sqlite:///{folder}/optuna.db",
            f"mlflow.tracking_uri=sqlite:///{folder}/mlflow.db", "sweep.pruner=none",
            "sweep.sampler=grid", "sweep.retrain_best=false", "mlflow.log_model=false"]


def overhead(trials: int, data: str, quick: bool, *,
             tiny: bool = False) -> tuple[list[float], list[float]]:
    """(trial seconds, training seconds) for each default trial (the chapter's model, 10 epochs,
    all the data; only the learning rate varies, by 0.0001), run in this process. Training is
    ``experiments.training.train_config`` (model, epochs and validation) less the time in its
    per-epoch callbacks; the rest is the machinery: the trial's config, Optuna (claim, sampling,
    per-epoch reports and pruning checks, tell), MLflow (child run, params, per-epoch metrics,
    close), and the worker loop's work between two trials (claim, stale-trial check, progress
    line; counted from the second trial on). MLflow calls made on the sender thread overlap training and
    show up as slower training, not here."""
    from experiments.study import run_sweep, trial, worker

    timings: dict[str, list[float]] = {"train": [], "trial": []}
    ends: list[float] = []
    real_train, real_run = trial.train_config, worker.run_trial

    def timed_train(*args, on_epoch_end=None, **kwargs):
        start, in_callbacks = time.perf_counter(), [0.0]

        def timed_callbacks(epoch, metrics):  # Optuna's report and pruning check, MLflow queueing
            begin = time.perf_counter()
            try:
                on_epoch_end(epoch, metrics)
            finally:
                in_callbacks[0] += time.perf_counter() - begin

        try:
            return real_train(*args, on_epoch_end=timed_callbacks, **kwargs)
        finally:
            timings["train"].append(time.perf_counter() - start - in_callbacks[0])

    def timed_run(*args, **kwargs):  # a trial's time includes the loop's work since the last one
        start = time.perf_counter()  # (claim, stale-trial check, progress line)
        out = real_run(*args, **kwargs)
        between = start - ends[-1] if ends else 0.0
        ends.append(time.perf_counter())
        timings["trial"].append(out.seconds + between)
        return out

    trial.train_config, worker.run_trial = timed_train, timed_run
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # Learning rates a hair apart: trials of the same cost on the same cached split (a
            # sweep over the seed would split the data again for every trial, which a sweep of
            # hyperparameters never does).
            lrs = ",".join(f"{0.1 + 1e-4 * i:.4f}" for i in range(trials))
            space = {"optim.lr": f"choice({lrs})"}
            extra = ["data.limit_train=5000", "train.epochs=2"] if quick else []
            if tiny:  # bookkeeping only: a sampler whose cost does not grow with the study
                space = {"optim.lr": "interval(0.05, 0.2)"}
                extra = [*TINY, "sweep.sampler=random"]
            args = [f"data.root={data}", *_stores(Path(tmp)), f"sweep.n_trials={trials}",
                    *_space(Path(tmp), space), *extra]
            cwd = os.getcwd()
            os.chdir(tmp)
            try:
                run_sweep(args)
            finally:
                os.chdir(cwd)
    finally:
        trial.train_config, worker.run_trial = real_train, real_run
    return timings["trial"], timings["train"]


def throughput(workers: int, trials: int, data: str, quick: bool) -> float:
    """Trials per hour of a small-model study (width 32, 10,000 images, 3 epochs) with
    ``workers`` worker processes, from the first trial's start to the last one's end."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lrs = ",".join(f"{0.05 + 0.01 * i:.2f}" for i in range(trials))
        args = [sys.executable, "-m", "experiments.sweep", f"data.root={data}",
                *_stores(folder), f"sweep.n_trials={trials}", f"sweep.workers={workers}",
                "model.width=32", "model.init=he", f"data.limit_train={3000 if quick else 10000}",
                "data.val_size=2000", "train.epochs=3",
                *_space(folder, {"optim.lr": f"choice({lrs})"})]
        subprocess.run(args, cwd=folder, check=True, capture_output=True, text=True, timeout=1800,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
        study = optuna.load_study(study_name="mlp-sweep", storage=f"sqlite:///{folder}/optuna.db")
        done = [t for t in study.trials if t.datetime_complete]
        span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done))
        return len(done) / (span.total_seconds() / 3600)
