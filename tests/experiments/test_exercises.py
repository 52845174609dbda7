"""The ready experiments (the chapter's exercises): each is there, its quick form is small, the
learning-rate grid survives diverging rates, the strategies driver summarises. Each one runs in
its quick form in tests/test_examples.py (every experiment is a README example)."""

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from experiments import strategies, sweep
from experiments.config import load_config
from tests.conftest import DATA_ROOT

pytestmark = pytest.mark.slow  # end-to-end: whole studies or runs on real data

EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[2] / "conf" / "experiment").glob("*.yaml"))


def _quick(tmp: Path) -> list[str]:
    return ["sweep.quick=true", "sweep.n_trials=2", "data.limit_train=1000", "data.val_size=500",
            "train.epochs=1", "sweep.retrain_best=false", f"data.root={DATA_ROOT}",
            f"sweep.storage=sqlite:///{tmp}/optuna.db", f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db"]


def test_every_exercise_and_further_exploration_has_an_experiment() -> None:
    assert {"hidden_units", "depth", "layer_widths", "learning_rate", "joint", "strategies",
            "init_activation", "input_normalization", "loss_function", "cross_validation"} <= set(
        EXPERIMENTS)


def test_quick_form_is_small_whatever_the_experiment_asks() -> None:
    cfg = load_config(["+experiment=joint", "sweep.quick=true"])
    assert cfg.sweep.n_trials <= 6 and cfg.sweep.timeout <= 300 and cfg.train.epochs <= 3
    assert cfg.data.limit_train <= 10000


def test_learning_rate_grid_records_diverging_rates_instead_of_crashing(workdir: Path) -> None:
    args = [a for a in _quick(workdir) if not a.startswith("sweep.quick")]  # all 8 grid points
    args += ["sweep.n_trials=8", "train.epochs=2", "data.limit_train=2000"]
    assert sweep.main(["+experiment=learning_rate", *args]) == 0
    study = optuna.load_study(study_name="learning-rate", storage=f"sqlite:///{workdir}/optuna.db")
    assert sorted(t.params["optim.lr"] for t in study.trials) == [0.001, 0.003, 0.01, 0.03, 0.1,
                                                                  0.3, 1.0, 3.0]
    for t in study.trials:
        if t.state == TrialState.PRUNED:
            assert "diverged" in t.user_attrs["pruned_reason"]
        else:
            assert t.state == TrialState.COMPLETE


def test_strategies_driver_runs_each_strategy_and_summarises(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    code = strategies.main(["--seeds", "1", "--only", "grid,tpe-hyperband",
                            "--storage", f"sqlite:///{workdir}/optuna.db", *_quick(workdir)[:-1],
                            f"mlflow.tracking_uri=sqlite:///{workdir}/mlflow.db"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| grid |" in out and "| tpe-hyperband |" in out
    assert (workdir / "reports" / "strategies" / "summary.md").exists()
