"""Models anyone can load: the trained network exported with its input scaling, logged as an
MLflow pyfunc model that needs no project code, registered in MLflow's Model Registry."""

from experiments.registry.export import log_model
from experiments.registry.register import (
    ALIAS,
    SUMMARY_NAME,
    SUMMARY_VERSIONS,
    model_name,
    register,
    registered_in,
    version_page,
    version_tags,
    version_uri,
)

__all__ = ["ALIAS", "SUMMARY_NAME", "SUMMARY_VERSIONS", "log_model", "model_name", "register",
           "registered_in", "version_page", "version_tags", "version_uri"]
