"""Smoke test of the benchmark script: it runs, prints both tables, every figure is finite."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from experiments.bench import main
from experiments.benchmarks.precision import data_copies
from mlp import casts as casts_module

ROOT = Path(__file__).resolve().parents[2]
SPEED_ROWS = ["seeds' pipeline", "ours, autograd, fp32", "ours, manual, fp32", "floor, fp32"]


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
    assert any(line.startswith("bf16: ") for line in lines)  # native or not, and what it did
    bf16 = "bf16 rows included" in out
    for name in SPEED_ROWS + (["ours, manual, bf16", "floor, bf16"] if bf16 else []):
        row = next(line for line in lines if line.startswith(name))
        figures = _numbers(row[len(name):].split("  speed-up")[0])
        assert len(figures) == 4 and all(math.isfinite(v) and v > 0 for v in figures), row
    big = lines[next(i for i, line in enumerate(lines) if line.startswith("784-1024-1024-10")):]
    assert sum(line.startswith(("ours, ", "floor, ")) for line in big[:10]) == (6 if bf16 else 3)
    assert sum("speed-up PASS" in line or "speed-up MISS" in line for line in lines) == (4 if bf16 else 2)
    copies = [line.split() for line in lines if line.startswith("784-") and "(<= " in line]
    native = "bf16: native" in out  # 4 at any depth; emulated, one per parameter + 3
    assert [(row[2], row[3]) for row in copies] == (
        [("0", "4")] * 4 if native else [("0", "7")] * 2 + [("0", "9")] * 2)
    assert [row[-1] for row in copies] == (["PASS"] * 4 if native else ["MISS"] * 4)
    by_activation = [line for line in lines if line.startswith(("relu ", "tanh ", "sigmoid "))]
    assert len(by_activation) == (6 if bf16 else 0)
    picks = [line for line in lines if line.startswith(("784-256-10 relu: ", "784-1024-1024-1024-10 tanh: "))]
    assert len(picks) == 2 and all(": fp32 (auto: " in p or ": bf16 (auto: " in p for p in picks)
    assert sum("auto's pick" in line for line in lines) == 2
    start = next(i for i, line in enumerate(lines) if "saved MB" in line)
    memory = [_numbers(line) for line in lines[start + 1:] if line.strip()]
    assert len(memory) == 4  # quick: depths 1, 2 x batches 256, 1024
    assert all(len(row) == 6 and all(math.isfinite(v) for v in row) for row in memory)


@pytest.mark.slow
def test_sweep_benchmark_prints_its_figures(capsys: pytest.CaptureFixture) -> None:
    from experiments import bench_sweep

    assert bench_sweep.main(["--quick", "--trials", "2", "--small-trials", "4",
                             "--tiny-trials", "30"]) == 0
    out = capsys.readouterr().out
    assert "bookkeeping per tiny trial:" in out and "at the last 10 of 30" in out
    assert "of a trial (median; target < 5%" in out
    assert "small-model trials per hour: 1 worker" in out and "2 workers" in out


@pytest.mark.parametrize("backward", ["autograd", "manual"])
@pytest.mark.parametrize("hidden", [[256], [64, 64, 64]])
def test_a_bf16_step_makes_four_copies_however_deep_and_fp32_none(
        backward: str, hidden: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench's count. Per step where bf16 is native: every parameter cast with one copy
    (they share one buffer), every gradient landed in fp32 with one more, and two around the loss
    (the logits up to fp32 for the softmax, their gradient back down): 4 for any depth, where the
    default model made 22 before the buffers and 10 after. Where bf16 is emulated each weight is
    cast on its own into its column-major layout. Set by the layout, not by the machine."""
    params = 2 * (len(hidden) + 1)
    assert data_copies(hidden, backward, "fp32", batch=64) == 0
    for native, expected in ((True, 4), (False, params + 3)):
        monkeypatch.setattr(casts_module, "native_bf16", lambda device, n=native: (n, ""))
        assert data_copies(hidden, backward, "bf16", batch=64) == expected, native

