"""Models anyone can load: the trained network exported with its input scaling, logged as an
MLflow pyfunc model that needs no project code, registered in MLflow's Model Registry."""

from experiments.registry.export import log_model
from experiments.registry.register import (
    ALIAS,
    model_name,
    register,
    version_page,
    version_tags,
    version_uri,
)

__all__ = ["ALIAS", "log_model", "model_name", "register", "version_page", "version_tags",
           "version_uri"]
