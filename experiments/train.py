"""``python -m experiments.train [overrides]``: one tracked training run.

Trains the configured MLP, logs every config leaf, per-epoch metrics, the test evaluation,
plots, the data set and the model to MLflow.

Examples:
  python -m experiments.train                                   # the chapter's defaults
  python -m experiments.train model.width=1024 optim.lr=0.05
  python -m experiments.train +experiment=best/mlp-sweep        # a sweep's best configuration
  python -m experiments.train mlflow.register=my-mlp            # a version of the registered model
                                                                #   my-mlp, with the alias best
  python -m experiments.train --cfg job model.depth=2           # show the composed config
"""

from __future__ import annotations

import sys

from experiments import registry, tracking
from experiments.cli import command_config, fail
from experiments.config import Config
from experiments.tracking import check_store
from experiments.training import setup_torch, tracked_run
from mlp import DataError, DivergedError


def main(argv: list[str] | None = None) -> int:
    cfg = command_config(argv, prog="python -m experiments.train", doc=__doc__)
    if isinstance(cfg, int):
        return cfg
    try:  # before minutes of training
        check_store(cfg.mlflow.tracking_uri)
    except ConnectionError as exc:
        fail(str(exc))
    setup_torch()
    try:
        run_id, final, model_uri = tracked_run(cfg)
    except DataError as exc:
        fail(str(exc), code=1)
    except DivergedError as exc:
        fail(f"{exc}; lower optim.lr", code=1)
    except KeyboardInterrupt:
        print("interrupted: the MLflow run is marked KILLED", file=sys.stderr)
        return 130
    print(f"run {run_id}: val/acc_best {final['val/acc_best']:.4f} "
          f"test/acc {final['test/acc']:.4f} test/loss {final['test/loss']:.4f} "
          f"({cfg.mlflow.tracking_uri}, experiment {cfg.mlflow.experiment!r})")
    if cfg.mlflow.register and model_uri:
        register(cfg, run_id, model_uri, cfg.mlflow.register)
    return 0


def register(cfg: Config, run_id: str, model_uri: str, name: str) -> None:
    """The run's model as a new version of ``name``, with the alias ``best``."""
    client, _ = tracking.client_for(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
    version = registry.register(client, name, model_uri, run_id,
                                tags=registry.version_tags(cfg, client.get_run(run_id)))
    page = tracking.ui_address(cfg.mlflow.tracking_uri, registry.version_page(name, version.version))
    print(f"registered: {registry.version_uri(name, version.version)}, alias "
          f"models:/{name}@{registry.ALIAS} (MLflow: {page})")


if __name__ == "__main__":
    sys.exit(main())
