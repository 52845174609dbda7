"""python -m experiments.activations: the three activations with both derivatives, as PNGs and
an MLflow run; bad overrides stop it before anything is written."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments import activations


@pytest.mark.slow
def test_activations_are_drawn_written_and_logged(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert activations.main([f"mlflow.tracking_uri=sqlite:///{workdir}/mlflow.db"]) == 0
    out = capsys.readouterr().out
    names = ("relu", "sigmoid", "tanh", "activations")
    assert all((workdir / "reports" / "activations" / f"{n}.png").stat().st_size > 10000 for n in names)
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("mlp").experiment_id])
    assert run.data.tags["kind"] == "activations" and run.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {
        f"plots/{n}.png" for n in names}
    for name in names[:3]:  # autograd and the hand-written derivative agree to float64 rounding
        assert run.data.metrics[f"derivative_gap/{name}"] < 1e-12
        assert f"{name}: largest |autograd - hand-written|" in out


def test_a_bad_override_writes_nothing(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        activations.main(["mlflow.experimnt=x"])
    assert info.value.code == 2 and capsys.readouterr().err.startswith("error: ")
    assert list(workdir.iterdir()) == []


def test_an_unusable_store_is_one_line_before_anything_is_drawn(workdir: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        activations.main([f"mlflow.tracking_uri=sqlite:///{workdir}/no/such/folder/mlflow.db"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: cannot reach mlflow.tracking_uri=") and "does not exist" in err
    assert list(workdir.iterdir()) == []
