"""The stores under Optuna and MLflow: their URLs, and the locks that let processes share them."""

from experiments.stores.locks import schema_lock, store_lock
from experiments.stores.urls import backend_of, mask_url, sqlite_path

__all__ = ["backend_of", "mask_url", "schema_lock", "sqlite_path", "store_lock"]
