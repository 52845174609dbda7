"""MLflow, driven directly: the client, what a run records, and calls queued while a tracking
server is away. Nothing here trains, evaluates or draws."""

from experiments.tracking.client import (
    FAILED,
    FINISHED,
    KILLED,
    check_store,
    client_for,
    transient,
    ui_address,
    unreachable,
    where_to_look,
)
from experiments.tracking.log import (
    end_run,
    epoch_logger,
    log_config,
    log_dataset,
    log_figures,
    log_history,
    log_metrics,
    log_params,
    no_progress_bars,
    param_value,
)
from experiments.tracking.outbox import Outbox

__all__ = ["FAILED", "FINISHED", "KILLED", "Outbox", "check_store", "client_for", "end_run",
           "epoch_logger", "log_config", "log_dataset", "log_figures", "log_history", "log_metrics",
           "log_params", "no_progress_bars", "param_value", "transient", "ui_address", "unreachable",
           "where_to_look"]
