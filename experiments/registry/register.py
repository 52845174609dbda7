"""Registered models: a logged model as a version of a name in MLflow's Model Registry, the
alias ``best`` on the version a study (or a user) chose, and where to find it."""

from __future__ import annotations

import urllib.parse

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking import MlflowClient

from experiments.config import Config, reproduce
from experiments.config.checks import MODEL_NAME_BAD

ALIAS = "best"
# Where a study's finish summary records what it registered: the model's name, and each
# registered trial's version by trial number (a string, as JSON keys are)
SUMMARY_NAME, SUMMARY_VERSIONS = "registered.name", "registered"
DESCRIPTION = ("Fashion-MNIST classifiers (N x 784 or N x 28 x 28 pixels, whole numbers 0-255, in; "
               "class, label and the 10 probabilities out), registered by the mlp-sweeps project. "
               "The alias 'best' is on the version chosen last.")


def registered_in(summary: dict) -> tuple[str | None, dict[str, int]]:
    """The registered model's name and the versions by trial number a finish summary records
    (None and {} before the finish registered anything)."""
    return summary.get(SUMMARY_NAME), summary.get(SUMMARY_VERSIONS) or {}


def model_name(study_name: str) -> str:
    """The registered model a study's models go to unless ``mlflow.register`` names one: the
    study's name, with ``/ : ' "`` (which a registered model's name cannot hold) made ``-``."""
    return MODEL_NAME_BAD.sub("-", study_name).strip() or "mlp"


def register(client: MlflowClient, name: str, model_uri: str, run_id: str, *,
             tags: dict[str, str], alias: str | None = ALIAS) -> ModelVersion:
    """The version of ``name`` made from run ``run_id``'s model: the one registered before
    (a rerun, or a process killed before it recorded it) or a new one, with ``tags``; ``alias``
    moved to it. Registering twice never makes two versions of one run."""
    found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if found:
        version = found[0]
    else:
        try:
            client.create_registered_model(name, description=DESCRIPTION)
        except MlflowException as exc:
            if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
        model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
        version = client.create_model_version(name, source=model_uri, run_id=run_id, tags=tags,
                                              model_id=model_id)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return version


def version_uri(name: str, version: str | int) -> str:
    return f"models:/{name}/{version}"


def version_page(name: str, version: str | int) -> str:
    """The version's page in the MLflow UI, relative to the UI's address (``#/models/...``)."""
    return f"#/models/{urllib.parse.quote(name, safe='')}/versions/{version}"


def version_tags(cfg: Config, run: Run, **extra: object) -> dict[str, str]:
    """A version's tags, read off the run that trained it (so a process that did not train it
    tags it the same): its validation and test accuracy, the precision it trained and tested
    in, the command that reproduces it, and ``extra`` (the study, the trial)."""
    metrics, params = run.data.metrics, run.data.params
    tags = {"val_acc": metrics.get("val/acc_best"), "test_acc": metrics.get("test/acc"),
            "precision": params.get("train.precision"), "reproduce": reproduce(cfg), **extra}
    return {k: f"{v:.4f}" if isinstance(v, float) else str(v) for k, v in tags.items()
            if v is not None and v != ""}
