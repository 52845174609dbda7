"""End to end: python -m experiments.train logs params, metrics, artifacts, data set and model."""

import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from experiments import train
from mlp.data import load_raw
from tests.conftest import DATA_ROOT, REPO, small_overrides

PER_EPOCH = ["train/loss", "train/acc", "val/loss", "val/acc", "perf/epoch_seconds",
             "perf/samples_per_sec"]
FINAL = ["val/acc_best", "test/acc", "test/loss", "perf/peak_mem_mb", "model/num_params"]


def _only_run(tmp_path: Path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("mlp")
    (run,) = client.search_runs([exp.experiment_id])
    return client, run


def _logged_model_accuracy(run) -> float:
    """The run's logged model's accuracy on the 10,000 test images, given as the raw pixels."""
    (logged,) = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id],
                                            output_format="list")
    _, _, test_x, test_y = load_raw(str(DATA_ROOT))
    predicted = mlflow.pyfunc.load_model(logged.model_uri).predict(test_x.numpy())["class"]
    return float((predicted.to_numpy() == test_y.numpy()).mean())


def _artifacts(client: MlflowClient, run_id: str, path: str = "") -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return out


@pytest.mark.slow
def test_train_logs_everything_a_user_inspects(workdir: Path) -> None:
    assert train.main([*small_overrides(workdir, epochs=3), "model.width=32"]) == 0
    client, run = _only_run(workdir)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.width"] == "32" and params["optim.lr"] == "0.1"
    assert params["data.limit_train"] == "2000" and params["seed"] == "0"
    assert params["train.precision"] in ("fp32", "bf16")  # as it trained: auto is never logged
    for key in PER_EPOCH:
        history = client.get_metric_history(run.info.run_id, key)
        assert sorted(m.step for m in history) == [1, 2, 3], key
    for key in FINAL:
        assert key in run.data.metrics, key
    assert 0.1 < run.data.metrics["test/acc"] <= 1.0
    assert run.data.metrics["model/num_params"] == 784 * 32 + 32 + 32 * 10 + 10
    files = _artifacts(client, run.info.run_id)
    assert {"config.yaml", "plots/learning_curves.png", "plots/confusion_matrix.png",
            "plots/test_predictions.png"} <= files
    assert run.inputs.dataset_inputs[0].dataset.name == "fashion-mnist-train"
    (logged,) = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id],
                                            output_format="list")
    assert logged.source_run_id == run.info.run_id
    model = mlflow.pyfunc.load_model(logged.model_uri)
    predicted = model.predict(np.full((3, 784), 255))
    assert predicted.columns.tolist() == ["class", "label", "probabilities"] and len(predicted) == 3


@pytest.mark.slow
def test_chapter_defaults_reach_0_83_on_the_real_data(tmp_path: Path) -> None:
    """The README's promise: 10 epochs of the chapter's model on all the data."""
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.train", f"data.root={DATA_ROOT}",
         f"mlflow.tracking_uri=sqlite:///{tmp_path}/mlflow.db", "mlflow.log_model=false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, run = _only_run(tmp_path)
    assert run.data.metrics["test/acc"] >= 0.83
    assert "epoch 10/10" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["scratch", "concise"])
def test_bf16_run_records_everything_and_logs_a_model_that_predicts_as_it_tested(
        workdir: Path, capsys: pytest.CaptureFixture, impl: str) -> None:
    """Asked for explicitly, bf16 runs on any CPU (emulated where it has no native bf16) and says
    so at the start; the test evaluation, figures, data set and the logged model all work, the
    model scoring the run's test accuracy exactly (it computes in bf16 as the test did)."""
    assert train.main([*small_overrides(workdir, epochs=2), "model.width=32",
                       f"model.impl={impl}", "train.precision=bf16"]) == 0
    assert "precision: bf16 (asked for" in capsys.readouterr().out
    client, run = _only_run(workdir)
    assert run.info.status == "FINISHED" and run.data.params["train.precision"] == "bf16"
    assert 0.1 < run.data.metrics["test/acc"] <= 1.0
    assert _logged_model_accuracy(run) == run.data.metrics["test/acc"]


@pytest.mark.slow
def test_a_cross_validated_run_logs_every_fold_the_spread_and_tests_a_refit_once(
        workdir: Path) -> None:
    assert train.main([*small_overrides(workdir, epochs=3), "model.width=32", "data.folds=3"]) == 0
    client, run = _only_run(workdir)
    m = run.data.metrics
    for k in (1, 2, 3):
        assert len(client.get_metric_history(run.info.run_id, f"fold{k}/val/acc")) == 3
    folds = [m[f"fold{k}/val/acc"] for k in (1, 2, 3)]
    assert m["val/acc"] == pytest.approx(sum(folds) / 3)
    assert m["val/acc_best_sd"] >= 0 and 1 <= m["best_epoch"] <= 3
    refit = client.get_metric_history(run.info.run_id, "refit/train/loss")
    assert [h.step for h in refit] == list(range(1, int(m["best_epoch"]) + 1))
    assert 0.1 < m["test/acc"] <= 1.0
    (dataset,) = run.inputs.dataset_inputs  # the refit's: all 2,000 images, none held out
    tags = {t.key: t.value for t in dataset.tags}
    assert tags["rows"] == "2000" and tags["val_rows"] == "0"


@pytest.mark.slow
def test_a_standardised_run_records_its_scaling_and_logs_a_model_that_takes_pixels(
        workdir: Path) -> None:
    assert train.main([*small_overrides(workdir, epochs=2), "model.width=32",
                       "data.normalize=standardize", "train.precision=fp32"]) == 0
    _, run = _only_run(workdir)
    mean, std = float(run.data.params["data.norm_mean"]), float(run.data.params["data.norm_std"])
    assert 0.2 < mean < 0.4 and 0.25 < std < 0.45  # Fashion-MNIST's pixels, from 2,000 of them
    assert _logged_model_accuracy(run) == run.data.metrics["test/acc"]  # from pixels, 0-255


@pytest.mark.slow
def test_mse_runs_log_their_own_loss(workdir: Path) -> None:
    assert train.main([*small_overrides(workdir, epochs=2), "model.width=32", "train.loss=mse",
                       "optim.lr=0.5"]) == 0
    _, run = _only_run(workdir)
    assert run.data.params["train.loss"] == "mse"
    assert 0 <= run.data.metrics["val/loss"] <= 2 and 0 <= run.data.metrics["test/loss"] <= 2
