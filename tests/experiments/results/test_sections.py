"""The report's sections for the seeds' further exploration: the interaction figure's roles,
the layer statistics of an init x activation study, and hold-out against k folds."""

import contextlib
from pathlib import Path

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from experiments import report, sweep
from experiments.results.interactions import Roles, roles
from tests.conftest import DATA_ROOT

pytestmark = pytest.mark.slow  # end-to-end: whole studies or runs on real data

INIT = CategoricalDistribution(["normal", "scaled", "he"])
ACTIVATION = CategoricalDistribution(["relu", "sigmoid", "tanh"])
LR = CategoricalDistribution([0.003, 0.01, 0.03, 0.1, 0.3, 1.0])


@pytest.mark.parametrize(("dists", "expected"), [
    ({"model.init": INIT, "model.activation": ACTIVATION, "model.depth": IntDistribution(1, 4)},
     Roles("model.depth", "model.init", "model.activation")),
    ({"data.normalize": CategoricalDistribution(["none", "standardize"]), "optim.lr": LR},
     Roles("optim.lr", "data.normalize")),
    ({"optim.lr": FloatDistribution(0.01, 1.0, log=True), "model.init": INIT}, None),  # continuous
    ({"model.init": INIT, "model.activation": ACTIVATION}, None),  # nothing to put on an axis
    ({"model.init": INIT}, None),
    ({"model.init": INIT, "model.activation": ACTIVATION, "optim.lr": LR,
      "model.depth": IntDistribution(1, 4)}, None),  # four keys: the axis plots show them
])
def test_the_interaction_figure_puts_the_longest_numeric_key_on_the_axis(dists: dict,
                                                                       expected: Roles | None) -> None:
    assert roles(dists) == expected


def _study(tmp: Path, experiment: str, *extra: str) -> None:
    assert sweep.main([f"+experiment={experiment}", "sweep.quick=true", "sweep.n_trials=4",
                       "data.limit_train=1000", "data.val_size=500", "train.epochs=2",
                       "sweep.retrain_best=false", "mlflow.log_model=false", f"data.root={DATA_ROOT}",
                       f"sweep.storage=sqlite:///{tmp}/optuna.db",
                       f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db", *extra]) == 0


def _report(tmp: Path, *studies: str) -> str:
    with open(tmp / "out.txt", "w") as f, contextlib.redirect_stdout(f):
        assert report.main([*studies, "--storage", f"sqlite:///{tmp}/optuna.db", "--tracking-uri",
                            f"sqlite:///{tmp}/mlflow.db", "--out", str(tmp / "r"), "--no-log"]) == 0
    return (tmp / "r" / "report.md").read_text()


def test_an_init_activation_study_reports_its_interactions_and_layer_statistics(workdir: Path) -> None:
    _study(workdir, "init_activation")
    text = _report(workdir, "init-activation-quick")
    assert "### How the searched hyperparameters interact" in text
    assert "### Layer statistics in the first epoch" in text
    for name in ("interactions", "layers-init", "layers-epoch1", "activations"):
        assert (workdir / "r" / f"init-activation-quick-{name}.png").stat().st_size > 10000


def test_hold_out_and_k_fold_studies_of_one_space_are_compared(workdir: Path) -> None:
    _study(workdir, "cross_validation", "data.folds=3")
    _study(workdir, "cross_validation", "data.folds=0", "sweep.study_name=cross-validation-holdout")
    text = _report(workdir, "cross-validation-quick", "cross-validation-holdout-quick")
    assert ("## Hold-out (cross-validation-holdout-quick) against 3-fold cross-validation "
            "(cross-validation-quick)") in text
    table = [line for line in text.splitlines() if line.startswith("| model.width=")]
    assert len(table) == 4 and all(" ± " in line for line in table)  # the same four grid points
    assert "Kendall's tau between the two rankings of the 4 configurations" in text
    assert "Each trial trained 3 models, one per fold, in lockstep" in text
