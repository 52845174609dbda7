"""Comparing MLflow runs of small studies: terminal table, CSV, plots, filters and errors."""

import csv
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from experiments import compare
from experiments.config import load_config
from tests.experiments.test_report import run_studies

pytestmark = pytest.mark.slow  # end-to-end: every test reads studies run for the module

STUDIES = ("test-compare-seed0", "test-compare-seed1")


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from run_studies(tmp_path_factory.mktemp("compare"), STUDIES, n=3, retrain=False)


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_whole_studies_give_a_table_a_csv_and_plots(
        studies: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(studies)
    assert compare.main(["--study", STUDIES[0], "--study", STUDIES[1],
                         "--tracking-uri", f"sqlite:///{studies}/mlflow.db"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:5] == ["run", "study", "kind", "state", "best"] and "model.width" in header
    folder = studies / "reports" / f"compare-{'+'.join(STUDIES)}"
    table = rows(folder / "runs.csv")
    assert len(table) == 6 and {r["kind"] for r in table} == {"trial"}
    assert {r["study"] for r in table} == set(STUDIES)
    scores = [float(r["best val/acc"]) for r in table]
    assert scores == sorted(scores, reverse=True)
    assert {"params.model.width", "params.optim.lr", "metrics.val/acc"} <= set(table[0])
    assert all(r["run"] in out for r in table)  # every run printed
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"best run {table[0]['run']} "))
    head, _, command = lines[at + 1].partition(": ")
    assert head == "reproduce"
    cfg = load_config(shlex.split(command)[3:])  # the printed command trains the best run
    assert (cfg.model.width, cfg.optim.lr, cfg.train.epochs, cfg.data.limit_train) == (
        int(table[0]["params.model.width"]), float(table[0]["params.optim.lr"]), 2, 1500)
    assert (folder / "curves.png").stat().st_size > 10_000
    assert (folder / "params.png").stat().st_size > 10_000


def test_an_mlflow_filter_selects_runs(studies: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(studies)
    assert compare.main(["--filter", "params.`model.width` = '16'", "--kind", "trial",
                         "--out", "w16"]) == 0
    table = rows(studies / "w16" / "runs.csv")
    assert table and {r["params.model.width"] for r in table} == {"16"}


@pytest.mark.parametrize("args, message", [
    (["--filter", "params.width ==== 3"], "error: bad --filter"),
    (["--experiment", "nope"], "error: no MLflow experiment 'nope'; known: "),
    (["--study", "nope"], "error: no study 'nope' in experiment(s) mlp"),
    (["--tracking-uri", "sqlite:///missing.db"], "error: --tracking-uri=sqlite:///missing.db: no such"),
    (["--kind", "foo"], "error: --kind foo: unknown run kind; expected some of trial, retrain, "),
    (["--kind", "trial,foo"], "error: --kind foo: unknown run kind"),
])
def test_bad_selection_exits_2_in_one_line_and_writes_nothing(
        studies: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    monkeypatch.chdir(studies)
    with pytest.raises(SystemExit) as exc:
        compare.main([*args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists() and not (studies / "missing.db").exists()
