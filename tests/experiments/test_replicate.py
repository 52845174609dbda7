"""Seed replicates of a small study's top trials: child runs, statistics, the report's table."""

import json
import math
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from scipy import stats

from experiments import replicate, report
from experiments.results.replicate import interval
from tests.experiments.test_report import run_studies, stores

pytestmark = pytest.mark.slow  # end-to-end: whole studies or runs on real data

STUDY = "test-replicate"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from run_studies(tmp_path_factory.mktemp("replicate"), (STUDY,), n=3, retrain=False)


def replicates(tmp: Path) -> list:
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    exp = client.get_experiment_by_name("mlp")
    return client.search_runs([exp.experiment_id], "tags.kind = 'replicate'", max_results=100)


def test_top_k_times_n_seeds_under_the_parent_with_mean_sd_and_ci(
        study: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(study)
    assert replicate.main([STUDY, "--top", "2", "--seeds", "2", *stores(study)]) == 0
    out = capsys.readouterr().out
    assert "[1/4] trial " in out and "[4/4] trial " in out
    assert "val/acc 95% CI" in out and "evaluated the test set once" in out
    s = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{study}/optuna.db")
    done = [t for t in s.trials if t.state == optuna.trial.TrialState.COMPLETE]
    top2 = [str(t.number) for t in sorted(done, key=lambda t: (-t.value, t.number))[:2]]
    runs = replicates(study)
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {s.user_attrs["mlflow_parent_run_id"]}
    assert {r.data.tags["optuna.trial"] for r in runs} == set(top2)
    assert sorted(r.data.tags["replicate.seed"] for r in runs) == ["0", "0", "1", "1"]
    assert {r.data.params["seed"] for r in runs} == {"0", "1"}
    summary = json.loads((study / "reports" / STUDY / "replicates.json").read_text())["summary"]
    assert [str(r["trial"]) for r in summary] == top2  # in the study's ranking order
    for row in summary:
        mine = [r.data.metrics["val/acc_best"] for r in runs
                if r.data.tags["optuna.trial"] == str(row["trial"])]
        assert row["n"] == 2 and row["val_mean"] == pytest.approx(sum(mine) / 2)
        assert row["val_lo"] <= row["val_mean"] <= row["val_hi"]
    # the study's report now shows the replicate table
    assert report.main([STUDY, *stores(study), "--no-log"]) == 0
    assert "### Seed replicates" in (study / "reports" / STUDY / "report.md").read_text()


def test_interval_is_the_t_interval_of_the_mean() -> None:
    got = interval([1.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # sd = 1
    assert got["mean"] == 2.0 and got["sd"] == pytest.approx(1.0)
    assert (got["lo"], got["hi"]) == pytest.approx((2.0 - half, 2.0 + half))
    assert half == pytest.approx(2.484, abs=1e-3)


@pytest.mark.parametrize("args, message", [
    (["nope", "--seeds", "2"], "error: no study 'nope'"),
    ([STUDY, "--seeds", "1"], "error: --top must be >= 1 and --seeds >= 2"),
    ([STUDY, "--top", "x"], "error: argument --top: invalid int value"),
])
def test_bad_input_exits_2_before_training(study: Path, args: list[str], message: str,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(study)
    before = len(replicates(study))
    with pytest.raises(SystemExit) as exc:
        replicate.main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert len(replicates(study)) == before
