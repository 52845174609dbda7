"""In-process sweeps on small data: trials, parent/child runs, resume, progress, pruning, folds
(what goes wrong: test_sweep_failures.py)."""

import json
import shlex
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from experiments import sweep
from experiments.config import flatten, load_config, reproduce
from experiments.study import trial
from tests.conftest import DATA_ROOT

TINY = {"model.width": "choice(16,32)", "optim.lr": "tag(log, interval(0.05, 0.5))"}


def overrides(tmp: Path, *, n: int, study: str = "s", space: dict | None = None,
              extra: tuple[str, ...] = ()) -> list[str]:
    """A small study on 1,500 images with its search space in a config dir under ``tmp``."""
    conf = tmp / "conf" / "search"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "t.yaml").write_text("# test space\n" + yaml.safe_dump({"params": space or TINY}))
    return [f"data.root={DATA_ROOT}", "mlflow.log_model=false", "data.limit_train=1500",
            "data.val_size=500", "train.epochs=2", f"hydra.searchpath=[file://{tmp}/conf]",
            "search=t",
            f"sweep.n_trials={n}", f"sweep.study_name={study}", "sweep.sampler=random",
            f"sweep.storage=sqlite:///{tmp}/optuna.db",
            f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db", *extra]


def training(cfg) -> dict:
    """The settings that decide what is trained (not where it is stored or how it is searched)."""
    return {k: v for k, v in flatten(cfg).items()
            if not k.startswith(("sweep.", "mlflow.", "search.")) and k not in ("data.root", "device")}


def closing_lines(out: str) -> dict[str, str]:
    """The sweep's last lines by their first word: best, reproduce, report, MLflow."""
    lines = {}
    for line in out.splitlines():
        head, _, rest = line.partition(":")
        if head in ("reproduce", "report", "MLflow"):
            lines[head] = rest.strip()
        elif line.startswith("best trial"):
            lines["best"] = line
    return lines


def load(tmp: Path, study: str = "s") -> optuna.Study:
    return optuna.load_study(study_name=study, storage=f"sqlite:///{tmp}/optuna.db")


def runs(tmp: Path) -> list:
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    exp = client.get_experiment_by_name("mlp")
    return client.search_runs([exp.experiment_id], max_results=1000)


def children(tmp: Path, kind: str = "trial") -> list:
    return [r for r in runs(tmp) if r.data.tags.get("kind") == kind]


@pytest.mark.slow
def test_study_runs_n_trials_under_one_parent_and_resumes_only_the_missing(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep.main(overrides(workdir, n=3, extra=("sweep.pruner=none",))) == 0
    study = load(workdir)
    closing = closing_lines(capsys.readouterr().out)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    (parent,) = [r for r in runs(workdir) if r.data.tags.get("kind") == "study"]
    assert study.user_attrs["mlflow_parent_run_id"] == parent.info.run_id
    assert study.metric_names == ["val/acc"]  # optuna-dashboard shows val/acc, not "Objective 0"
    trials = children(workdir)
    assert sorted(int(r.data.tags["optuna.trial"]) for r in trials) == [0, 1, 2]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trials)
    assert all(r.data.tags["optuna.state"] == "COMPLETE" for r in trials)
    params = set(trials[0].data.params)  # each setting once, under its config key
    assert {"model.width", "optim.lr"} <= params and not {k for k in params if k.startswith(
        ("sampled.", "search.", "optuna."))}
    assert trials[0].data.tags["sampled"] == "model.width, optim.lr"
    assert "test/acc" in parent.data.metrics and "best/val_acc" in parent.data.metrics
    for r in trials:  # named after what the trial sampled, numbers to 4 significant digits
        t = study.trials[int(r.data.tags["optuna.trial"])]
        lr = t.params["optim.lr"]
        assert r.info.run_name == f"trial-{t.number:04d} w{t.params['model.width']} lr{lr:.4g}"
        assert r.data.metrics["val/acc_best"] == pytest.approx(t.value)
        assert 1 <= r.data.metrics["best_epoch"] <= 2
    best = study.best_trial
    assert closing["best"].startswith(f"best trial {best.number} (3 trials done): val/acc "
                                      f"{best.value:.4f} with model.width={best.params['model.width']} "
                                      f"optim.lr={best.params['optim.lr']:.4g}")
    assert closing["report"] == (f"python -m experiments.report s --storage sqlite:///{workdir}/optuna.db "
                                 f"--tracking-uri sqlite:///{workdir}/mlflow.db")
    assert closing["MLflow"] == (f"mlflow ui --backend-store-uri sqlite:///{workdir}/mlflow.db, then "
                                 f"http://127.0.0.1:5000/#/experiments/{parent.info.experiment_id}"
                                 f"/runs/{parent.info.run_id}?workflowType=machine_learning")
    # The one reproduce form trains exactly the best trial's configuration.
    words = shlex.split(closing["reproduce"])
    assert words[:3] == ["python", "-m", "experiments.train"]
    trial_run = next(r for r in trials if r.data.tags["optuna.trial"] == str(best.number))
    trial_cfg = load_config(study.user_attrs["base_overrides"] + best.user_attrs["overrides"])
    trial_cfg.train.precision = json.loads(study.user_attrs["identity"]["train.precision"])  # as used
    assert training(load_config(words[3:])) == training(trial_cfg)
    assert closing["reproduce"] == reproduce(trial_run.data.params)
    assert f"#   {closing['reproduce']}" in (workdir / "conf/experiment/best/s.yaml").read_text()
    first_values = {t.number: t.value for t in study.trials}
    again = load_config(["+experiment=best/s"])  # the printed command's experiment file
    assert again.model.width == study.best_params["model.width"]
    assert again.optim.lr == pytest.approx(study.best_params["optim.lr"])

    assert sweep.main(overrides(workdir, n=5, extra=("sweep.pruner=none",))) == 0
    study = load(workdir)
    assert len(study.trials) == 5 and {t.number: t.value for t in study.trials[:3]} == first_values
    assert sorted(int(r.data.tags["optuna.trial"]) for r in children(workdir)) == [0, 1, 2, 3, 4]
    parents = [r for r in runs(workdir) if r.data.tags.get("kind") == "study"]
    assert [p.info.run_id for p in parents] == [parent.info.run_id]

    assert sweep.main(overrides(workdir, n=5)) == 0  # the same command again: nothing to do
    assert len(load(workdir).trials) == 5


@pytest.mark.slow
def test_long_work_says_how_it_goes(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Output that is not a terminal gets plain progress lines: a trial's epochs and the final
    retrain's, at most one per PROGRESS_EVERY (here: every epoch)."""
    from experiments.training import tracked

    monkeypatch.setattr(trial, "PROGRESS_EVERY", 0.0)
    monkeypatch.setattr(tracked, "NESTED_EVERY", 0.0)
    assert sweep.main(overrides(workdir, n=2, extra=("sweep.pruner=none",))) == 0
    out = capsys.readouterr().out
    for number in (0, 1):
        for epoch in (1, 2):
            assert f"trial {number} epoch {epoch}/2: train/loss " in out
    best = load(workdir).best_trial.number
    assert f"retrain trial {best} epoch 2/2: " in out
    assert out.index("retraining the best trial") < out.index(f"retrain trial {best} epoch 1/2")


def test_a_worker_with_nothing_to_claim_says_what_it_waits_for(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments.study import worker

    ctx = type("Ctx", (), {"cfg": load_config(["sweep.heartbeat=20"])})()
    running = [optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={"worker": "h:7"})]
    running[0].number = 4
    said = worker.say_waiting(ctx, running, None)  # a wait that may be short: quiet
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(worker, "WAIT_NOTE_AFTER", 0.0)
    said = worker.say_waiting(ctx, running, said)
    line = capsys.readouterr().out
    assert "waiting for 1 running trial (trial 4 on h:7, started" in line
    assert "failed and rerun here once its heartbeat is 60 s old (3 x sweep.heartbeat)" in line
    said = worker.say_waiting(ctx, running, said)  # the same trials, at once: quiet
    assert capsys.readouterr().out == ""
    running.append(optuna.trial.create_trial(state=TrialState.RUNNING))
    running[1].number = 5
    worker.say_waiting(ctx, running, said)  # another trial: said again
    assert "waiting for 2 running trials" in capsys.readouterr().out


@pytest.mark.slow
def test_a_pruner_that_must_prune_prunes(workdir: Path) -> None:
    space = {"optim.lr": "choice(0.5,1e-7)", "seed": "choice(0,1,2)"}
    args = overrides(workdir, n=6, space=space,
                     extra=("sweep.sampler=grid", "sweep.pruner=median", "train.epochs=3"))
    assert sweep.main(args) == 0
    study = load(workdir)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and all(t.params["optim.lr"] == 1e-7 for t in pruned)
    tags = {int(r.data.tags["optuna.trial"]): r.data.tags for r in children(workdir)}
    names = {int(r.data.tags["optuna.trial"]): r.info.run_name for r in children(workdir)}
    for t in pruned:
        assert tags[t.number]["optuna.state"] == "PRUNED"
        assert int(tags[t.number]["pruned_at_epoch"]) == len(t.intermediate_values) < 3
        assert names[t.number].startswith(f"trial-{t.number:04d} pruned@{len(t.intermediate_values)} ")
    for t in study.trials:  # the runs table tells pruned trials from complete ones by name
        assert ("pruned@" in names[t.number]) == (t.state == TrialState.PRUNED)


@pytest.mark.slow
def test_cross_validated_trials_report_the_fold_mean_and_are_pruned_in_lockstep(
        workdir: Path) -> None:
    """Every fold trains each epoch before the mean goes to the pruner; a pruned trial stopped
    all its folds at the same epoch; the trial's value is the best fold mean."""
    space = {"optim.lr": "choice(0.5,1e-7)", "seed": "choice(0,1,2)"}
    args = overrides(workdir, n=6, space=space,
                     extra=("sweep.sampler=grid", "sweep.pruner=median", "train.epochs=3",
                            "data.folds=3", "sweep.retrain_best=false"))
    assert sweep.main(args) == 0
    study = load(workdir)
    by_run = {int(r.data.tags["optuna.trial"]): r for r in children(workdir)}
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and any(t.params["optim.lr"] == 1e-7 for t in pruned)
    for t in study.trials:
        run_id = by_run[t.number].info.run_id
        mean = [m.value for m in sorted(client.get_metric_history(run_id, "val/acc"), key=lambda m: m.step)]
        folds = [[m.step for m in client.get_metric_history(run_id, f"fold{k}/val/acc")] for k in (1, 2, 3)]
        assert folds[0] == folds[1] == folds[2] == list(range(1, len(t.intermediate_values) + 1))
        best = [max(mean[:e]) for e in range(1, len(mean) + 1)]  # what the pruner saw each epoch
        assert [t.intermediate_values[e] for e in sorted(t.intermediate_values)] == pytest.approx(best)
        if t.state == TrialState.COMPLETE:
            assert t.value == pytest.approx(max(mean))
            metrics = by_run[t.number].data.metrics
            assert metrics["val/acc_best"] == pytest.approx(t.value) and "val/acc_best_sd" in metrics
