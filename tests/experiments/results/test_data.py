"""The read side's arithmetic on made-up trials: edge warnings, best-so-far curves and their
spread over search seeds, and the search-difficulty tables."""

from datetime import datetime, timedelta

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from experiments.results.data import TrialRow, best_so_far, edge_warnings, group_of, spread
from experiments.results.difficulty import grid_growth, time_to_levels


def test_edge_warning_is_log_aware_and_skips_unordered_choices() -> None:
    dists = {"optim.lr": FloatDistribution(0.001, 1.0, log=True), "model.depth": IntDistribution(1, 5),
             "model.width": CategoricalDistribution([64, 256, 1024]),
             "model.activation": CategoricalDistribution(["relu", "tanh"])}

    def warned(**params: object) -> set[str]:
        trial = optuna.trial.create_trial(params=params, distributions=dists, value=0.8)
        return {w.split("=")[0].removeprefix("best ") for w in edge_warnings(trial)}

    # on the log scale lr 0.6 is 93% of the way up (an edge), 0.03 is in the middle (49%)
    assert warned(**{"optim.lr": 0.6, "model.depth": 3, "model.width": 256,
                     "model.activation": "relu"}) == {"optim.lr"}
    assert warned(**{"optim.lr": 0.03, "model.depth": 5, "model.width": 1024,
                     "model.activation": "tanh"}) == {"model.depth", "model.width"}
    assert warned(**{"optim.lr": 0.0012, "model.depth": 3, "model.width": 64,
                     "model.activation": "relu"}) == {"optim.lr", "model.width"}


def test_edge_warning_advises_only_where_the_range_can_grow() -> None:
    dists = {"model.depth": IntDistribution(1, 5), "layers.width_2": IntDistribution(1, 512, log=True),
             "model.width": CategoricalDistribution([1, 8, 64]),
             "model.dropout": FloatDistribution(0.0, 0.5), "optim.momentum": FloatDistribution(0.5, 0.99),
             "optim.lr": FloatDistribution(1e-4, 1.0, log=True), "other.knob": IntDistribution(0, 10)}

    def warned(**params: object) -> dict[str, str]:
        trial = optuna.trial.create_trial(params=params, distributions=dists, value=0.8)
        return {w.split("=")[0].removeprefix("best "): w.rsplit("; ", 1)[1] for w in edge_warnings(trial)}

    # every value at its range's low end: only ranges above their hard limit can grow downward
    # (lr > 0 is open; a key without a known limit keeps its advice)
    low = {"model.depth": 1, "layers.width_2": 1, "model.width": 1, "model.dropout": 0.01,
           "optim.momentum": 0.52, "optim.lr": 1.2e-4, "other.knob": 0}
    assert warned(**low) == {"optim.momentum": "widen the range below 0.5",
                             "optim.lr": "widen the range below 0.0001",
                             "other.knob": "widen the range below 0"}
    # at the high end the same ranges can all grow (momentum 0.99 is still short of 1)
    high = {"model.depth": 5, "layers.width_2": 500, "model.width": 64, "model.dropout": 0.49,
            "optim.momentum": 0.98, "optim.lr": 0.9, "other.knob": 10}
    assert warned(**high) == {k: f"widen the range above {v}" for k, v in {
        "model.depth": "5", "layers.width_2": "512", "model.width": "64", "model.dropout": "0.5",
        "optim.momentum": "0.99", "optim.lr": "1", "other.knob": "10"}.items()}
    # an upper limit that a range can reach (59999 validation images at most) stops advice too
    top = {"data.val_size": IntDistribution(50000, 59999)}
    trial = optuna.trial.create_trial(params={"data.val_size": 59999}, distributions=top, value=0.8)
    assert edge_warnings(trial) == []


def test_best_so_far_counts_every_trials_epochs_and_groups_search_seeds() -> None:
    t0 = datetime(2026, 1, 1)

    def row(n: int, state: str, score: float, epochs: int) -> TrialRow:
        return TrialRow(n, state, score, {}, epochs, t0 + timedelta(seconds=10 * n),
                        t0 + timedelta(seconds=10 * n + 5))

    rows = [row(0, "PRUNED", 0.9, 1), row(1, "COMPLETE", 0.5, 3), row(2, "PRUNED", 0.95, 1),
            row(3, "COMPLETE", 0.7, 3), row(4, "COMPLETE", 0.6, 3)]
    assert best_so_far(rows, minimize=False, by="epochs") == ([4, 5, 8, 11], [0.5, 0.5, 0.7, 0.7])
    assert best_so_far(rows, minimize=False, by="seconds")[0] == [15, 25, 35, 45]
    assert best_so_far(rows, minimize=True, by="epochs")[1] == [0.5, 0.5, 0.5, 0.5]
    assert [group_of(n) for n in ("tpe-seed0", "tpe-s12", "tpe", "my-seedling", "a-seed1-x")] == [
        "tpe", "tpe", "tpe", "my-seedling", "a-seed1-x"]
    grid, mid, lo, hi = spread([([1, 3], [0.2, 0.6]), ([2], [0.4])])
    assert list(grid) == [1, 2, 3]
    assert list(lo) == [0.2, 0.2, 0.4] and list(hi) == [0.2, 0.4, 0.6]  # finished runs keep their best
    assert list(mid) == pytest.approx([0.2, 0.3, 0.5])



def test_difficulty_tables_grow_the_grid_and_find_when_levels_were_reached() -> None:
    dists = {"a": CategoricalDistribution(["x", "y", "z"]), "b": IntDistribution(1, 4),
             "c": FloatDistribution(1e-3, 1.0, log=True)}
    assert [row[-1] for row in grid_growth(dists)] == ["3", "12", "60"]
    t0 = datetime(2026, 1, 1)
    rows = [TrialRow(0, "COMPLETE", 0.84, {}, 10, t0, t0 + timedelta(minutes=2)),
            TrialRow(1, "PRUNED", 0.95, {}, 1, t0, t0 + timedelta(minutes=3)),  # pruned: no credit
            TrialRow(2, "COMPLETE", 0.885, {}, 10, t0, t0 + timedelta(minutes=6))]
    assert time_to_levels(rows, minimize=False) == [["0.80", 1, 10, "2.0"], ["0.85", 3, 21, "6.0"],
                                                    ["0.87", 3, 21, "6.0"], ["0.88", 3, 21, "6.0"]]
