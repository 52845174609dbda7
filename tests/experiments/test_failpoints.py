"""Failpoints: what MLP_FAILPOINTS arms, each action, the count, and typos refused."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from experiments import failpoints
from experiments.failpoints import ENV, POINTS, FailpointError, hit
from experiments.study.finish import STAGES
from tests.conftest import REPO


@pytest.fixture()
def arm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Arm failpoints for this test, with fresh pass counts, markers under tmp_path."""
    monkeypatch.setattr(failpoints, "_passes", failpoints.Counter())
    monkeypatch.setenv(failpoints.DIR_ENV, str(tmp_path))

    def set_(spec: str) -> None:
        monkeypatch.setenv(ENV, spec)
    return set_


def test_unset_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    for name in POINTS:
        hit(name)
    assert failpoints.armed() == {}


def test_raise_acts_at_every_pass_or_at_the_nth_only(arm) -> None:
    arm("trial.start=raise;trial.epoch_end=3:raise")
    for _ in range(2):
        with pytest.raises(FailpointError, match="failpoint trial.start raised"):
            hit("trial.start")
    hit("trial.epoch_end")
    hit("trial.epoch_end")
    with pytest.raises(FailpointError, match="trial.epoch_end"):
        hit("trial.epoch_end")
    hit("trial.epoch_end")  # the third pass only
    hit("trial.close")  # not armed


def test_interrupt_is_a_real_sigint_to_this_process(arm) -> None:
    arm("trial.close=interrupt")
    got: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        hit("trial.close")
    finally:
        signal.signal(signal.SIGINT, old)
    assert got == [signal.SIGINT]


def test_pause_blocks_until_its_resume_file_appears(arm, tmp_path: Path) -> None:
    arm("trial.start=2:pause")
    hit("trial.start")  # the first pass goes by
    assert not list(tmp_path.glob("*.paused"))
    thread = threading.Thread(target=hit, args=("trial.start",))
    thread.start()
    marker = tmp_path / f"trial.start.{os.getpid()}.paused"
    thread.join(timeout=0.3)
    assert thread.is_alive() and marker.exists()
    (tmp_path / "trial.start.resume").touch()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_kill_is_sigkill_and_says_where_it_fired(tmp_path: Path) -> None:
    code = ("from experiments.failpoints import hit\nhit('finish.best')\nhit('finish.best')\n"
            "print('survived')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(REPO), ENV: "finish.best=2:kill"}, timeout=60)
    assert done.returncode == -signal.SIGKILL and "survived" not in done.stdout
    assert re.search(r"failpoint finish.best: kill \(pass 2, pid \d+\)", done.stderr)


@pytest.mark.parametrize("spec", ["trial.epochend=kill", "trial.start=0:kill", "trial.start=kil",
                                  "trial.start", "trial.start=x:kill"])
def test_a_malformed_spec_is_refused_in_one_line(arm, spec: str) -> None:
    arm(spec)
    with pytest.raises(FailpointError) as err:
        failpoints.check()
    assert str(err.value).startswith(f"{ENV}: ") and "\n" not in str(err.value)


def test_the_sweep_refuses_a_typo_before_anything_is_written(workdir: Path, monkeypatch, capsys) -> None:
    from experiments import sweep

    monkeypatch.setenv(ENV, "trial.epochend=2:kill")
    with pytest.raises(SystemExit) as exit_:
        sweep.main(["sweep.quick=true"])
    assert exit_.value.code == 2 and list(workdir.iterdir()) == []
    assert "unknown failpoint 'trial.epochend'" in capsys.readouterr().err


def test_every_failpoint_is_placed_once_in_the_code_and_every_place_is_named() -> None:
    """A point nobody passes is a test that tests nothing; a name not in POINTS would raise."""
    placed: dict[str, int] = {}
    for path in (REPO / "experiments").rglob("*.py"):
        for name in re.findall(r"""failpoints\.hit\(f?["']([^"']+)["']\)""", path.read_text()):
            names = [f"finish.{s}" for s in STAGES] if name == "finish.{stage}" else [name]
            for n in names:
                placed[n] = placed.get(n, 0) + 1
    assert set(placed) == set(POINTS), set(placed) ^ set(POINTS)
    assert all(count == 1 for count in placed.values()), placed
