"""A study is one experiment: a run whose configuration, fidelity, search space or metric differs
from the study's is refused before it writes anything; runtime settings may change freely."""

from __future__ import annotations

import shlex
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from experiments import sweep
from experiments.study.finish import best_file
from experiments.training import runner
from mlp.precision import Decision, Shape
from tests.experiments.test_sweep import TINY, load, overrides, runs


def snapshot(tmp: Path) -> tuple:
    """Everything a refused run must leave as it was: trials, runs, their states and metrics."""
    study = load(tmp)
    trials = [(t.number, t.state, t.value) for t in study.trials]
    recorded = sorted((r.info.run_id, r.info.status, tuple(sorted(r.data.metrics.items())),
                       tuple(sorted(r.data.tags.items()))) for r in runs(tmp))
    return trials, recorded, sorted(study.user_attrs.items(), key=lambda kv: kv[0]).__repr__()


def refused(args: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as info:
        sweep.main(args)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.startswith("error:") and "\n" not in err
    return err


@pytest.mark.slow
def test_another_experiment_under_the_study_name_is_refused_and_nothing_is_written(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert sweep.main(overrides(workdir, n=2, extra=("sweep.pruner=none",))) == 0
    before = snapshot(workdir)
    err = refused(overrides(workdir, n=4, extra=("optim.name=adam", "train.batch_size=64")), capsys)
    assert "study 's' is another experiment" in err
    assert 'optim.name (study: "sgd", this run: "adam")' in err and "train.batch_size" in err
    assert "sweep.study_name=s-2" in err
    err = refused(overrides(workdir, n=4, extra=("data.limit_train=1000",)), capsys)
    assert "data.limit_train (study: 1500, this run: 1000)" in err  # the fidelity is part of it
    err = refused(overrides(workdir, n=4, space={**TINY, "model.width": "choice(16,64)"}), capsys)
    assert "search.model.width" in err
    err = refused(overrides(workdir, n=4, extra=("sweep.metric=val/loss",)), capsys)
    assert "sweep.metric" in err
    assert snapshot(workdir) == before

    # Runtime settings are not the experiment: more trials, another pruner, no retrain.
    assert sweep.main(overrides(workdir, n=3, extra=("sweep.pruner=median", "sweep.timeout=600",
                                                     "sweep.retrain_best=false"))) == 0
    assert len(load(workdir).trials) == 3


@pytest.mark.slow
def test_the_quick_form_is_a_study_of_its_own(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert sweep.main(overrides(workdir, n=2, extra=("sweep.quick=true",
                                                     "sweep.retrain_best=false"))) == 0
    assert sweep.main(overrides(workdir, n=2, extra=("sweep.retrain_best=false",))) == 0
    out = capsys.readouterr().out
    assert "study 's-quick'" in out and "study 's' on" in out and "0/2 trials done, 2 added" in out
    assert len(load(workdir, "s-quick").trials) == 2 and len(load(workdir).trials) == 2


@pytest.mark.slow
def test_a_study_from_before_identities_is_checked_against_its_recorded_overrides(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    """A study created by the previous version: no identity, its overrides and parent recorded.
    It trained in fp32 (no other precision existed), so on a CPU with native bf16 it resumes only
    with train.precision=fp32."""
    created_with = overrides(workdir, n=2, extra=("optim.momentum=0.5",))
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{workdir}/optuna.db",
                                direction="maximize")
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    exp = client.create_experiment("mlp")
    parent = client.create_run(exp, tags={"kind": "study", "optuna.study": "s"}).info.run_id
    for key, value in {"base_overrides": created_with, "metric": "val/acc",
                       "mlflow_parent_run_id": parent}.items():
        study.set_user_attr(key, value)

    err = refused(overrides(workdir, n=2), capsys)
    assert "(recomposed from its overrides)" in err and "optim.momentum (study: 0.5" in err
    assert "identity" not in load(workdir).user_attrs

    assert sweep.main(overrides(workdir, n=2, extra=("optim.momentum=0.5", "sweep.pruner=none",
                                                     "train.precision=fp32"))) == 0
    assert "predates recorded identities" in capsys.readouterr().out
    study = load(workdir)
    assert len(study.trials) == 2 and study.user_attrs["identity"]["optim.momentum"] == "0.5"


@pytest.mark.slow
def test_precision_is_part_of_the_experiment_and_older_studies_read_as_fp32(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    """The identity holds the precision as resolved (auto -> fp32 or bf16 on this machine); a
    study recorded before the key existed trained in fp32 and resumes in fp32 only."""
    fp32 = ("train.precision=fp32", "sweep.pruner=none", "sweep.retrain_best=false")
    assert sweep.main(overrides(workdir, n=1, extra=fp32)) == 0
    study = load(workdir)
    older = {k: v for k, v in study.user_attrs["identity"].items() if k != "train.precision"}
    study.set_user_attr("identity", older)
    before = snapshot(workdir)
    err = refused(overrides(workdir, n=2, extra=("train.precision=bf16", *fp32[1:])), capsys)
    assert 'train.precision (study: "fp32", this run: "bf16")' in err
    assert snapshot(workdir) == before
    assert sweep.main(overrides(workdir, n=2, extra=fp32)) == 0
    assert "precision: fp32 (asked for)" in capsys.readouterr().out
    assert len(load(workdir).trials) == 2


@pytest.mark.slow
def test_auto_precision_is_decided_once_when_the_study_is_created_and_recorded_everywhere(
        workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new study times ``auto`` on the middle of its space (an injected timing here) and records
    the outcome in its identity; a later run keeps it without timing, even where the timing would
    now say otherwise; trials, the best-config file and the reproduce line name the precision
    used, never ``auto``."""
    timed: list[Shape] = []

    def fake(name: str, device: object, *, shape: Shape | None = None) -> Decision:
        if name != "auto":
            return Decision(name, "asked for")
        timed.append(shape)
        return Decision(answer, f"auto: {answer} by an injected timing")
    monkeypatch.setattr(runner, "resolve_precision", fake)
    answer, args = "bf16", overrides(workdir, n=1, extra=("sweep.pruner=none",))
    assert sweep.main(args) == 0
    out = capsys.readouterr().out
    assert "precision: bf16 (auto: bf16 by an injected timing)" in out
    assert timed == [Shape((784, 32, 10), "relu", "autograd", 256)]  # the middle of TINY: 32 of 16, 32
    assert load(workdir).user_attrs["identity"]["train.precision"] == '"bf16"'
    assert "train.precision=bf16" in next(x for x in out.splitlines() if x.startswith("reproduce:"))
    best = (workdir / "conf" / "experiment" / "best" / "s.yaml").read_text()
    assert "precision: bf16" in best and "precision: auto" not in best

    answer = "fp32"  # the machine's timing would now pick fp32: the study keeps its own
    assert sweep.main(overrides(workdir, n=2, extra=("sweep.pruner=none",))) == 0
    assert "precision: bf16 (auto: as the study decided when it was created)" in capsys.readouterr().out
    assert len(timed) == 1
    trials = [r for r in runs(workdir) if r.data.tags.get("kind") == "trial"]
    assert len(trials) == 2 and {r.data.params["train.precision"] for r in trials} == {"bf16"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["../../../escaped", "my study/v2"])
def test_a_study_name_becomes_a_safe_file_name_and_a_quoted_command(
        workdir: Path, capsys: pytest.CaptureFixture, name: str) -> None:
    args = [a for a in overrides(workdir, n=1) if not a.startswith("sweep.study_name=")]
    assert sweep.main([*args, f"sweep.study_name={name}", "sweep.retrain_best=false"]) == 0
    written = list((workdir / "conf").rglob("*.yaml"))
    assert all(p.resolve().is_relative_to(workdir / "conf") for p in written)
    best = workdir / "conf" / "experiment" / "best" / f"{best_file(name)}.yaml"
    assert best.exists() and "/" not in best_file(name) and not best_file(name).startswith(".")
    assert not (workdir / "escaped.yaml").exists()  # where ../../../ led from conf/experiment/best
    report = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("report:"))
    assert shlex.split(report)[1:4] == ["python", "-m", "experiments.report"]
    assert shlex.split(report)[4] == name  # quoted for the shell


@pytest.mark.slow
def test_loss_normalisation_and_folds_are_part_of_the_experiment_and_older_studies_read_as_before(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    """A study recorded before these keys existed trained with cross-entropy on unscaled pixels
    and one hold-out split; it resumes only so. Recording layer statistics is not part of it."""
    base = ("sweep.pruner=none", "sweep.retrain_best=false")
    assert sweep.main(overrides(workdir, n=1, extra=base)) == 0
    study = load(workdir)
    new = ("train.loss", "data.normalize", "data.folds", "train.layer_stats")
    assert [k in study.user_attrs["identity"] for k in new] == [True, True, True, False]
    study.set_user_attr("identity", {k: v for k, v in study.user_attrs["identity"].items()
                                     if k not in new})
    before = snapshot(workdir)
    for change, shown in (("train.loss=mse", 'train.loss (study: "cross_entropy", this run: "mse")'),
                          ("data.normalize=standardize", "data.normalize (study: \"none\""),
                          ("data.folds=2", "data.folds (study: 0, this run: 2)")):
        assert shown in refused(overrides(workdir, n=2, extra=(change, *base)), capsys)
    assert snapshot(workdir) == before
    assert sweep.main(overrides(workdir, n=2, extra=("train.layer_stats=true", *base))) == 0
    assert len(load(workdir).trials) == 2
