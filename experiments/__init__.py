"""Experiment plumbing: Hydra configs, Optuna studies and MLflow tracking around ``mlp``."""

__all__: list[str] = []
