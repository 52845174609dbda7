"""``python -m experiments.train [overrides]``: one tracked training run.

Trains the configured MLP, logs every config leaf, per-epoch metrics, the test
evaluation, plots, the data set and the model to MLflow.
"""

from __future__ import annotations

import sys

from experiments import tracking
from experiments.cli import USAGE_ERRORS, chain, epoch_progress, fail, one_line, quiet_libraries
from experiments.config import Config, load_config
from experiments.runner import train_config
from mlp import DataError, DivergedError


def run(cfg: Config, *, quiet: bool = False, parent_run_id: str | None = None,
        run_name: str | None = None, tags: dict[str, str] | None = None) -> dict[str, float]:
    """Train ``cfg`` in a new MLflow run (nested under ``parent_run_id`` if given, with extra
    ``tags``); return its final metrics."""
    client, experiment_id = tracking.client_for(cfg)
    tags = {"kind": "train" if parent_run_id is None else "retrain", **(tags or {})}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run_ = client.create_run(experiment_id, run_name=run_name or f"train-{cfg.model.impl}",
                             tags=tags)
    run_id = run_.info.run_id
    status = tracking.FAILED
    progress, close = epoch_progress(cfg.train.epochs) if not quiet else (None, lambda: None)
    try:
        tracking.log_config(client, run_id, cfg)
        trained = train_config(cfg, on_epoch_end=chain(tracking.epoch_logger(client, run_id),
                                                       progress))
        close()
        final = tracking.log_final(client, run_id, cfg, trained)
        status = tracking.FINISHED
    except KeyboardInterrupt:
        status = tracking.KILLED
        raise
    finally:
        close()
        tracking.end_run(client, run_id, status)
    if not quiet:
        print(f"run {run_id}: val/acc_best {final['val/acc_best']:.4f} "
              f"test/acc {final['test/acc']:.4f} test/loss {final['test/loss']:.4f} "
              f"({cfg.mlflow.tracking_uri}, experiment {cfg.mlflow.experiment!r})")
    return final


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    quiet_libraries()
    try:
        cfg = load_config(args)
    except USAGE_ERRORS as exc:
        fail(one_line(exc))
    try:
        run(cfg)
    except DataError as exc:
        fail(str(exc), code=1)
    except DivergedError as exc:
        fail(f"{exc}; lower optim.lr", code=1)
    except KeyboardInterrupt:
        print("interrupted: the MLflow run is marked KILLED", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
