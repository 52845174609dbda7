"""The stores under Optuna and MLflow: their URLs, and the locks that let processes share them."""

from experiments.stores.locks import held_lock, schema_lock, store_lock
from experiments.stores.probe import probe
from experiments.stores.urls import backend_of, has_secret, mask_url, sqlite_path

__all__ = ["backend_of", "has_secret", "held_lock", "mask_url", "probe", "schema_lock", "sqlite_path",
           "store_lock"]
