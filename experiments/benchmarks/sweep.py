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


def overhead(trials: int, data: str, quick: bool) -> tuple[list[float], list[float]]:
    """(trial seconds, training seconds) for each default trial (the chapter's model, 10 epochs,
    all the data; only the seed varies), run in this process. Training is
    ``experiments.training.train_config`` (data split, model, epochs and validation); the rest
    is the machinery: Hydra composition, Optuna (claim, sampling, reports, tell), MLflow (child
    run, params, per-epoch metrics) and the progress line."""
    from experiments.study import run_sweep, trial, worker

    timings: dict[str, list[float]] = {"train": [], "trial": []}
    real_train, real_run = trial.train_config, worker.run_trial

    def timed_train(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real_train(*args, **kwargs)
        finally:
            timings["train"].append(time.perf_counter() - start)

    def timed_run(*args, **kwargs):
        out = real_run(*args, **kwargs)
        timings["trial"].append(out.seconds)
        return out

    trial.train_config, worker.run_trial = timed_train, timed_run
    try:
        with tempfile.TemporaryDirectory() as tmp:
            seeds = ",".join(str(s) for s in range(trials))
            extra = ["data.limit_train=5000", "train.epochs=2"] if quick else []
            args = [f"data.root={data}", *_stores(Path(tmp)), f"sweep.n_trials={trials}",
                    *_space(Path(tmp), {"seed": f"choice({seeds})"}), *extra]
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
