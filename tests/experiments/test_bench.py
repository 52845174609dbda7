"""Smoke test of the benchmark script: it runs, prints both tables, every figure is finite."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from experiments.bench import main

ROOT = Path(__file__).resolve().parents[2]
SPEED_ROWS = ["seeds' pipeline", "ours, autograd", "ours, manual", "floor (bare matmuls)"]


def _numbers(line: str) -> list[float]:
    """Every whitespace-separated figure of a table row; ratios lose their trailing ``x``."""
    return [float(tok.removesuffix("x")) for tok in line.split()]


@pytest.mark.slow
def test_quick_bench_prints_finite_tables(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the data lives under ROOT/data
    assert main(["--quick"]) == 0
    out = capsys.readouterr().out
    for heading in ("pipeline", "s/epoch", "samples/s", "vs seeds", "vs floor",
                    "depth", "batch", "train MB", "infer MB", "ratio", "saved MB"):
        assert heading in out
    lines = out.splitlines()
    for name in SPEED_ROWS:
        row = next(line for line in lines if line.startswith(name))
        figures = _numbers(row[len(name):].split("  speed-up")[0])
        assert len(figures) == 4 and all(math.isfinite(v) and v > 0 for v in figures), row
    assert sum("PASS" in line or "MISS" in line for line in lines) == 2
    start = next(i for i, line in enumerate(lines) if "saved MB" in line)
    memory = [_numbers(line) for line in lines[start + 1:] if line.strip()]
    assert len(memory) == 4  # quick: depths 1, 2 x batches 256, 1024
    assert all(len(row) == 6 and all(math.isfinite(v) for v in row) for row in memory)


@pytest.mark.slow
def test_sweep_benchmark_prints_its_figures(capsys: pytest.CaptureFixture) -> None:
    from experiments import bench_sweep

    assert bench_sweep.main(["--quick", "--trials", "2", "--small-trials", "4"]) == 0
    out = capsys.readouterr().out
    assert "of a trial (median; target < 5%" in out
    assert "small-model trials per hour: 1 worker" in out and "2 workers" in out
