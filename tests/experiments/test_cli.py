"""Hydra's own flags on the Hydra commands (``--help``, ``--cfg``, ``--info``), answered before
any store is opened; bad flags and bad overrides give one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from experiments import sweep, train
from tests.conftest import REPO

COMMANDS = {"train": train.main, "sweep": sweep.main}


@pytest.mark.parametrize("name", COMMANDS)
def test_cfg_job_prints_the_composed_config_and_touches_nothing(
        name: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert COMMANDS[name](["--cfg", "job", "model.width=64", "+experiment=hidden_units"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["model"]["width"] == 64 and cfg["sweep"]["sampler"] == "grid"
    assert "hydra" not in cfg and list(workdir.iterdir()) == []


def test_cfg_with_a_package_prints_that_part_only(capsys: pytest.CaptureFixture) -> None:
    assert train.main(["--cfg", "job", "--package", "optim", "optim=adam"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# @package optim") and yaml.safe_load(out)["name"] == "adam"


def test_help_lists_the_groups_and_the_config(capsys: pytest.CaptureFixture) -> None:
    assert sweep.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("``python -m experiments.sweep [overrides]``")
    groups = out.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert ("experiment: accuracy_vs_size, accuracy_vs_time, cross_validation, depth, hidden_units, "
            "init_activation, input_normalization, joint" in groups and "optim: adam, sgd" in groups)
    assert "hydra" not in groups  # Hydra's own groups are for --hydra-help, not the app's
    assert "width: 256" in out and "--cfg, -c job|hydra|all" in out


def test_info_shows_hydras_search_path_and_defaults(workdir: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "experiments.sweep", "--info", "defaults"],
                          cwd=workdir, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "Defaults List" in done.stdout and "model/mlp" in done.stdout
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(("args", "message"), [
    (["--cfg", "job", "model.widht=3"], "error: Could not override 'model.widht'"),
    (["--cfg", "yaml"], "error: argument -c/--cfg: invalid choice: 'yaml'"),
    (["--bogus"], "error: unrecognized arguments: --bogus"),
    (["--resolve"], "error: --package and --resolve go with --cfg"),
])
def test_bad_flags_exit_2_in_one_line(args: list[str], message: str, workdir: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        sweep.main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert list(workdir.iterdir()) == []
