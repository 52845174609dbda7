"""The experiments the project writes to open on their runs in MLflow 3's UI, and the closing
lines say where to look."""

from pathlib import Path

from mlflow.tracking import MlflowClient

from experiments.tracking import client_for, where_to_look
from experiments.tracking.client import DESCRIPTION_TAG, KIND, KIND_TAG


def test_a_new_experiment_is_tagged_for_model_development(tmp_path: Path) -> None:
    client, experiment_id = client_for(f"sqlite:///{tmp_path}/mlflow.db", "mlp")
    tags = client.get_experiment(experiment_id).tags
    assert tags[KIND_TAG] == KIND == "custom_model_development"
    assert "study-NAME" in tags[DESCRIPTION_TAG]


def test_an_experiment_made_elsewhere_is_tagged_and_keeps_its_description(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    plain = MlflowClient(uri)
    made = plain.create_experiment("theirs", tags={DESCRIPTION_TAG: "my notes"})
    untouched = plain.create_experiment("other")
    _, experiment_id = client_for(uri, "theirs")
    assert experiment_id == made
    tags = plain.get_experiment(made).tags
    assert tags[KIND_TAG] == KIND and tags[DESCRIPTION_TAG] == "my notes"
    assert KIND_TAG not in plain.get_experiment(untouched).tags  # only what the project uses
    client_for(uri, "theirs")  # again: nothing changes
    assert plain.get_experiment(made).tags == tags


def test_where_to_look_names_the_command_and_the_run_page() -> None:
    page = "#/experiments/3/runs/abc?workflowType=machine_learning"  # the UI's Model training mode
    assert where_to_look("sqlite:///mlflow.db", "3", "abc") == f"make ui, then http://127.0.0.1:5000/{page}"
    assert where_to_look("sqlite:////data/m.db", "3", "abc") == (
        f"mlflow ui --backend-store-uri sqlite:////data/m.db, then http://127.0.0.1:5000/{page}")
    assert where_to_look("http://user:secret@10.0.0.5:5000/", "3", "abc") == f"http://10.0.0.5:5000/{page}"
