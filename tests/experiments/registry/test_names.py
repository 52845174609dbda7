"""Registered models' names: a study's made safe for the registry; ``mlflow.register`` checked
before any work, with one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import sweep, train
from experiments.registry import model_name


def test_a_study_registers_under_its_name_with_what_the_registry_refuses_replaced() -> None:
    assert model_name("mlp-sweep") == "mlp-sweep"
    assert model_name("team/exp:1") == "team-exp-1"
    assert model_name("it's") == "it-s"


@pytest.mark.parametrize(("value", "says"), [
    ("a/b", "cannot hold / : ' or \""),
    ("v:1", "cannot hold / : ' or \""),
    ("' '", "is empty"),
])
@pytest.mark.parametrize("command", [train, sweep])
def test_a_bad_registered_name_exits_2_in_one_line_before_any_work(
        command: object, value: str, says: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        command.main([f"mlflow.register={value}"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and says in err and err.count("\n") == 1, err
    assert list(workdir.iterdir()) == []  # no store, no run


def test_registering_needs_a_logged_model(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        train.main(["mlflow.register=m", "mlflow.log_model=false"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "needs mlflow.log_model=true" in err and err.count("\n") == 1, err
