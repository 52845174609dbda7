"""Studies of several metrics (accuracy against size or time): refused settings are one line
before anything is written; the front's picks are the most accurate, the cheapest and the knee;
a multi-objective sweep killed mid-trial completes with the same command, names its metrics in
Optuna, reports its front and retrains along it."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from experiments import report, sweep
from experiments.results.front import trade_off
from experiments.study.objectives import along_front
from tests.conftest import DATA_ROOT, forget_storage, load_study
from tests.sweeps import Sweeps

TWO = ["sweep.metric=[val/acc,model/num_params]", "sweep.sampler=nsga2", "sweep.pruner=none"]


def _args(tmp: Path, *extra: str) -> list[str]:
    return [f"data.root={DATA_ROOT}", "search=tiny", "data.limit_train=1500", "data.val_size=500",
            "train.epochs=2", "sweep.n_trials=6", "sweep.heartbeat=1", "sweep.retrain_front=2", f"sweep.storage=sqlite:///{tmp}/optuna.db",
            f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db", *TWO, *extra]


@pytest.mark.parametrize(("extra", "says"), [
    (["sweep.pruner=median"], "sweep.pruner=median: Optuna's pruners cannot prune a study of several"),
    (["sweep.metric=[val/acc,model/size]"], "'model/size' is not a metric the trials record"),
    (["sweep.metric=[val/acc,model/num_params:up]"], "unknown direction 'up'"),
    (["sweep.sampler=cmaes"], "sweep.sampler=cmaes: cannot search several metrics"),
    (["sweep.metric=[model/num_params,val/acc]"], "the first metric is the score"),
])
def test_a_bad_metric_setting_is_one_line_and_nothing_is_written(
        workdir: Path, capsys: pytest.CaptureFixture, extra: list[str], says: str) -> None:
    with pytest.raises(SystemExit) as info:
        sweep.main(_args(workdir, *extra))
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.startswith("error:") and "\n" not in err and says in err
    assert list(workdir.iterdir()) == []


def _trial(number: int, acc: float, params: int) -> optuna.trial.FrozenTrial:
    t = create_trial(values=[acc, params], params={"w": number}, distributions={"w": IntDistribution(0, 99)})
    t.number = number
    return t


FRONT = [_trial(0, 0.90, 800_000), _trial(1, 0.897, 200_000), _trial(2, 0.88, 50_000),
         _trial(3, 0.85, 20_000), _trial(4, 0.80, 12_000)]  # the most accurate first
OBJS = [("val/acc", "maximize"), ("model/num_params", "minimize")]


def test_the_front_is_retrained_at_its_ends_and_its_knee_then_spread() -> None:
    picks = along_front(FRONT, OBJS, 3)
    assert [(why, t.number) for why, t in picks] == [("most accurate", 0), ("lowest model/num_params", 4),
                                                     ("knee", 2)]
    assert [t.number for _, t in along_front(FRONT, OBJS, 5)] == [0, 4, 2, 3, 1]  # farthest first
    assert [t.number for _, t in along_front(FRONT, OBJS, 1)] == [0]


def test_the_trade_off_is_said_in_words() -> None:
    text = trade_off(FRONT, ["val/acc", "model/num_params"])
    assert text.startswith("The cheapest trial within 0.5 points of the most accurate is trial 1: "
                           "val/acc 0.8970 against 0.9000 (trial 0), with 200,000 parameters")
    assert "4.0 times fewer" in text


@pytest.mark.slow
def test_a_study_of_two_metrics_resumes_after_a_kill_and_reports_its_front(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    args = _args(tmp_path)
    with Sweeps(tmp_path) as sweeps:  # killed mid-trial: its epochs are recorded, not reported
        sweeps.start(args, failpoints="trial.epoch_end=3:kill")
        ((code, out),) = sweeps.wait(timeout=600)
    assert code == -signal.SIGKILL, out
    with Sweeps(tmp_path) as sweeps:
        sweeps.start(args)
        ((code, out),) = sweeps.wait(timeout=600)
    assert code == 0, out
    url = f"sqlite:///{tmp_path}/optuna.db"
    study = load_study(url)
    forget_storage(url)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val/acc", "model/num_params"]
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 6 and TrialState.RUNNING not in states
    front = study.best_trials
    assert front and all(len(t.values) == 2 for t in front)
    for t in study.trials:  # the parameter count is the network's own
        if t.state == TrialState.COMPLETE:
            assert t.values[1] == 784 * t.params["model.width"] + t.params["model.width"] * 11 + 10
    assert "Pareto front: " in out and f"trial {front[0].number}: val/acc" in out
    assert out.count("reproduce: python -m experiments.train") >= len(front[:10])

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    parent = client.get_run(study.user_attrs["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.params["metric"] == "val/acc, model/num_params"
    assert parent.data.tags["front.trials"] == ", ".join(
        str(t.number) for t in sorted(front, key=lambda t: (-t.values[0], t.number)))
    rows = json.loads(Path(client.download_artifacts(parent.info.run_id, "front/front.json",
                                                     str(tmp_path))).read_text())
    assert {r["trial"] for r in rows} == {t.number for t in front}
    retrained = [r for r in client.search_runs([parent.info.experiment_id])
                 if r.data.tags.get("kind") == "retrain" and r.info.status == "FINISHED"]
    assert len(retrained) == min(2, len(front))
    tested = client.get_metric_history(parent.info.run_id, "front/test_acc")
    assert sorted(m.step for m in tested) == sorted(int(r.info.run_name.split()[0].split("-")[-1])
                                                    for r in retrained)
    versions = {v.tags["trial"]: v for v in client.search_model_versions("name = 'mlp-sweep'")}
    assert set(versions) == {r.info.run_name.split()[0].split("-")[-1] for r in retrained}
    most_accurate = str(min(front, key=lambda t: (-t.values[0], t.number)).number)
    assert versions[most_accurate].tags["front"] == "most accurate"
    best = client.get_model_version_by_alias("mlp-sweep", "best")
    assert str(best.version) == str(versions[most_accurate].version)
    best_dir = tmp_path / "conf" / "experiment" / "best"
    assert (best_dir / "mlp-sweep.yaml").exists()

    monkeypatch.chdir(tmp_path)
    assert report.main(["mlp-sweep", "--storage", url, "--tracking-uri",
                        f"sqlite:///{tmp_path}/mlflow.db", "--no-log"]) == 0
    md = (tmp_path / "reports" / "mlp-sweep" / "report.md").read_text()
    assert "### Pareto front" in md and "](mlp-sweep-front.png)" in md
    assert "| trial | val/acc | model/num_params | test/acc (retrained) |" in md
