"""The compare command's learning-curve figure: a retrained best and its own trial (the same
curves) are one entry, so the best N are N different curves; every colour is in the legend."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.colors import to_hex

from experiments.results import compare
from experiments.results.plots import curves_overlay


def _hist(acc: float) -> list[dict[str, float]]:
    return [{"train/loss": 1 - acc, "val/loss": 1.1 - acc, "train/acc": acc, "val/acc": acc - 0.01}]


def test_a_retrain_and_its_trial_are_one_curve_and_the_best_n_are_distinct(
        monkeypatch: pytest.MonkeyPatch) -> None:
    histories = {"r": _hist(0.9), "t7": _hist(0.9), "t3": _hist(0.8), "t1": _hist(0.7)}
    monkeypatch.setattr(compare, "history", lambda client, run_id: histories[run_id])
    df = pd.DataFrame({"run_id": ["r", "t7", "t3", "t1"], "study": ["s"] * 4,
                       "kind": ["retrain", "trial", "trial", "trial"],
                       "run": ["best-trial-7", "trial-0007", "trial-0003", "trial-0001"],
                       "best val/acc": [0.89, 0.89, 0.79, 0.69]})
    top = compare.distinct_curves(None, df, "best val/acc", 3)  # type: ignore[arg-type]
    assert list(top) == ["s/best-trial-7 (0.8900) = trial-0007", "s/trial-0003 (0.7900)",
                         "s/trial-0001 (0.6900)"]


def test_every_run_colour_of_the_curves_is_named_in_the_legend() -> None:
    fig = curves_overlay({"a": _hist(0.9) * 2, "b": _hist(0.8) * 2})
    legend = fig.axes[1].get_legend()
    named = {to_hex(h.get_color()) for h in legend.legend_handles}
    drawn = {to_hex(line.get_color()) for ax in fig.axes[:2] for line in ax.get_lines()}
    assert drawn <= named and [t.get_text() for t in legend.get_texts()][-2:] == ["training",
                                                                                 "validation"]
