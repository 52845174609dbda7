"""The quick form says what it ran: a key it caps is not searched, a grid it cuts names the points
it left out (on the start line and in the report), and a trial that trained every epoch it was
allowed is never PRUNED; a report on a running study says it is partial."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution

from experiments.results.data import trial_rows
from experiments.results.page import Page
from experiments.results.study import StudyView, _importances, _state
from experiments.study.context import prepare
from experiments.study.trial import _reporter


def test_a_quick_grid_keeps_its_ends_and_names_the_points_it_leaves_out() -> None:
    ctx = prepare(["+experiment=learning_rate", "sweep.quick=true"])
    assert ctx.cfg.sweep.n_trials == 6
    assert ctx.space.describe()["optim.lr"] == "choice(0.001, 0.003, 0.03, 0.1, 1.0, 3.0)"
    assert ctx.quick_cut == ["the grid's optim.lr runs 6 of its 8 points, leaving out 0.01, 0.3 "
                             "(drop sweep.quick for the whole grid)"]
    full = prepare(["+experiment=learning_rate"])  # the whole grid when not quick
    assert full.quick_cut == [] and len(full.space.dims[0].dist.choices) == 8


def test_a_key_the_quick_form_caps_is_fixed_not_searched() -> None:
    ctx = prepare(["+experiment=joint", "sweep.quick=true"])
    assert "train.epochs" not in ctx.space.describe() and ctx.cfg.train.epochs == 3
    assert ctx.quick_cut == ["train.epochs=3 in every trial, not searched over choice(10, 20, 30, 40)"]
    assert "train.epochs" in prepare(["+experiment=joint"]).space.describe()


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_a_trial_at_its_last_allowed_epoch_is_not_pruned() -> None:
    study = optuna.create_study(direction="maximize", pruner=_AlwaysPrune())
    report = _reporter(study.ask(), [("val/acc", "maximize")], {}, last=3, fixed={})
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 2"):
        report(2, {"val/acc": 0.5})
    report = _reporter(study.ask(), [("val/acc", "maximize")], {}, last=3, fixed={})
    report(3, {"val/acc": 0.5})  # its last epoch: the trial completes


def test_a_report_on_a_running_study_says_it_is_partial(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr("quick.left_out", ["the grid's optim.lr runs 6 of its 8 points, leaving out 0.01"])
    for i in range(4):
        t = study.ask({"optim.lr": FloatDistribution(0.01, 1.0, log=True),
                       "model.dropout": FloatDistribution(0.0, 0.5)})
        study.tell(t, 0.8 + 0.1 * t.params["optim.lr"] + 0.001 * i)
    study.ask()  # running
    study.enqueue_trial({})  # waiting
    page = Page("t", tmp_path)
    view = StudyView(study, trial_rows(study), parent=None)  # type: ignore[arg-type]
    _state(page, view)
    _importances(page, view)
    md = "\n".join(page.md)
    assert "still running (1 trial running, 1 waiting)" in md and "the 4 trials that ended" in md
    assert "still running" in capsys.readouterr().out
    assert "Quick form (sweep.quick=true): the grid's optim.lr runs 6 of its 8 points" in md
    assert "### Which hyperparameters matter" in md
    rows = [line for line in page.md if line.startswith(("| optim.lr", "| model.dropout"))]
    assert len(rows) == 2
