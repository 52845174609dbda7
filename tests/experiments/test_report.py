"""Reports from small in-process studies: every plot, the HTML page in headless Chromium, the
edge warning, best-so-far curves grouped by search seed, and one-line errors on bad input."""

import contextlib
import dataclasses
import hashlib
import json
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from experiments import report, sweep
from experiments.config import load_config
from tests.conftest import DATA_ROOT, run_in_session

pytestmark = pytest.mark.slow  # end-to-end: every test reads studies run for the module

TINY = {"model.width": "choice(16,32)", "optim.lr": "tag(log, interval(0.05, 0.5))"}
STUDIES = ("test-report-seed0", "test-report-seed1")


def stores(tmp: Path) -> list[str]:
    return ["--storage", f"sqlite:///{tmp}/optuna.db", "--tracking-uri", f"sqlite:///{tmp}/mlflow.db"]


def run_studies(tmp: Path, names: tuple[str, ...], *, n: int = 4, retrain: bool = True) -> Iterator[Path]:
    """Quick random-search studies (1,500 images, 2 epochs) run from ``tmp``."""
    conf = tmp / "conf" / "search"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "t.yaml").write_text("# test space\n" + yaml.safe_dump({"params": TINY}))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        for seed, name in enumerate(names):
            assert sweep.main([
                f"data.root={DATA_ROOT}", "mlflow.log_model=false", "data.limit_train=1500",
                "data.val_size=500", "train.epochs=2", f"hydra.searchpath=[file://{tmp}/conf]",
                "search=t", f"sweep.n_trials={n}", f"sweep.study_name={name}",
                "sweep.sampler=random", f"sweep.seed={seed}", f"sweep.retrain_best={retrain}",
                f"sweep.storage=sqlite:///{tmp}/optuna.db",
                f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db"]) == 0
    assert all((tmp / "conf" / "experiment" / "best" / f"{n}.yaml").exists() for n in names)
    yield tmp


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """Two studies (search seeds 0 and 1) and one report of both; yields (dir, stdout)."""
    for tmp in run_studies(tmp_path_factory.mktemp("report"), STUDIES):
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(tmp)
            out = tmp / "stdout.txt"
            with open(out, "w") as f, contextlib.redirect_stdout(f):
                assert report.main([*STUDIES, *stores(tmp)]) == 0
        yield tmp, out.read_text()


def folder(tmp: Path) -> Path:
    return tmp / "reports" / "+".join(STUDIES)


def test_report_holds_every_plot_and_is_logged_to_each_parent(made: tuple[Path, str]) -> None:
    tmp, _ = made
    out = folder(tmp)
    expected = {"best_vs_epochs.png", "best_vs_time.png"} | {
        f"{s}-{kind}.png" for s in STUDIES for kind in ("axis", "isolation", "best-curves", "top-curves")}
    assert expected <= {p.name for p in out.glob("*.png")}
    md = (out / "report.md").read_text()
    for png in expected:
        assert f"]({png})" in md
    for heading in ("## Studies compared", "### Top ", "### Which hyperparameters matter",
                    "### Every varied hyperparameter",
                    "### Learning curves of the best", "Test accuracy of the chosen configuration"):
        assert heading in md
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    for name in STUDIES:
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp}/optuna.db")
        run_id = study.user_attrs["mlflow_parent_run_id"]
        where = f"reports/{out.name}"
        logged = {a.path for a in client.list_artifacts(run_id, where)}
        assert {f"{where}/report.html", f"{where}/report.md", f"{where}/best_vs_epochs.png"} <= logged


def test_each_report_keeps_its_own_artifacts_in_the_parent_run(made: tuple[Path, str]) -> None:
    tmp, _ = made
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        assert report.main([STUDIES[0], *stores(tmp)]) == 0  # after the comparison of both
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    study = optuna.load_study(study_name=STUDIES[0], storage=f"sqlite:///{tmp}/optuna.db")
    kept = {a.path for a in client.list_artifacts(study.user_attrs["mlflow_parent_run_id"], "reports")}
    assert kept == {f"reports/{STUDIES[0]}", f"reports/{folder(tmp).name}"}
    both = client.download_artifacts(study.user_attrs["mlflow_parent_run_id"],
                                     f"reports/{folder(tmp).name}/report.md", str(tmp / "dl"))
    assert "## Studies compared" in Path(both).read_text()  # not replaced by the single report


def test_printed_command_reproduces_the_best_trial_and_edges_are_warned(made: tuple[Path, str]) -> None:
    tmp, stdout = made
    study = optuna.load_study(study_name=STUDIES[0], storage=f"sqlite:///{tmp}/optuna.db")
    best = study.best_trial
    lines = stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"study {STUDIES[0]}: best trial"))
    head, _, command = lines[at + 1].partition(": ")
    assert head == "reproduce" and command.startswith("python -m experiments.train ")
    cfg = load_config(shlex.split(command)[3:])
    want = load_config([*study.user_attrs["base_overrides"], *best.user_attrs["overrides"]])
    want.train.precision = json.loads(study.user_attrs["identity"]["train.precision"])  # as trained
    assert (cfg.model, cfg.optim, cfg.train) == (want.model, want.optim, want.train)
    assert dataclasses.replace(cfg.data, root=want.data.root) == want.data  # data.root: a runtime key
    # one form: the report prints what the sweep printed and the experiment file holds
    best_file = (tmp / "conf" / "experiment" / "best" / f"{STUDIES[0]}.yaml").read_text()
    assert f"#   {command}\n" in best_file
    # width is choice(16,32): the best is always at one end of it
    assert f"warning: study {STUDIES[0]}: best model.width=" in stdout
    assert "> **warning:** best model.width=" in (folder(tmp) / "report.md").read_text()


CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (apt-get install "
                    "chromium; the Makefile's test set-up installs it)")
def test_html_page_renders_offline_in_headless_chromium(made: tuple[Path, str], tmp_path: Path) -> None:
    page = folder(made[0]) / "report.html"
    text = page.read_text()
    assert not re.search(r"(src|href)=['\"]https?:", text), "the page must not load anything"
    # a cold start on a busy machine is slow; the renderer and zygote processes go with it
    code, dom, err = run_in_session(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()], timeout=300)
    assert code == 0, err[-2000:]
    assert "<h1>Report: " in dom and "<h2>Studies compared</h2>" in dom
    assert all(f"<h2>Study {s}</h2>" in dom for s in STUDIES)
    assert dom.count("src=\"data:image/png;base64,") >= 2 + 4 * len(STUDIES)
    console = [line for line in err.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, console


def _digest(tmp: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tmp.glob("*.db"))}


@pytest.mark.parametrize("args, message", [
    (["no-such-study"], "error: no study 'no-such-study' in sqlite:///"),
    ([STUDIES[0], "--storage", "sqlite:///missing.db"], "error: --storage=sqlite:///missing.db: no such"),
    ([STUDIES[0], "--tracking-uri", "sqlite:///missing.db"], "error: --tracking-uri=sqlite:///missing.db"),
    ([STUDIES[0], "--top", "0"], "error: --top must be >= 1"),
])
def test_bad_input_exits_2_in_one_line_and_changes_nothing(
        made: tuple[Path, str], args: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    tmp = made[0]
    monkeypatch.chdir(tmp)
    before, reports = _digest(tmp), sorted(p.name for p in (tmp / "reports").iterdir())
    with pytest.raises(SystemExit) as exc:
        report.main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert _digest(tmp) == before and not (tmp / "missing.db").exists()
    assert sorted(p.name for p in (tmp / "reports").iterdir()) == reports
