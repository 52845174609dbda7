"""Training a configuration: plain config -> data, model, optimiser -> ``mlp.fit``; its figures;
and the tracked run that records it in MLflow."""

from experiments.training.runner import (
    Data,
    Trained,
    load_data,
    peak_memory_mb,
    precision_of,
    reset_peak_memory,
    resolve_device,
    settle_precision,
    setup_torch,
    train_config,
)
from experiments.training.tracked import TrackedRun, figure_run, tracked_run

__all__ = ["Data", "TrackedRun", "Trained", "load_data", "peak_memory_mb", "precision_of", "settle_precision",
           "reset_peak_memory", "resolve_device", "setup_torch", "figure_run", "tracked_run", "train_config"]
