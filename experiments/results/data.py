"""What reports, replicates and comparisons read: studies, their trials and MLflow runs.

Read-only: opening a storage or a tracking store never creates one (a missing SQLite file is
a usage error), so a typo in a URI leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import optuna
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from experiments.cli import UsageError
from experiments.stores import mask_url, schema_lock, sqlite_path

EDGE = 0.1  # the lowest and highest 10% of a searched range count as its edge
_SEED_SUFFIX = re.compile(r"-(?:seed|s)\d+(-quick)?$")  # the quick form's studies end in -quick
_LAYER_WIDTH = re.compile(r"^layers\.width_\d+$")  # search.layers: one width per layer
# The hard limits of numeric settings, as experiments/config/checks.py's validate() checks them (it holds
# them in code, not in a table). A range whose end already sits on its limit cannot grow past it,
# so its edge gets no advice. Open limits (lr > 0, dropout < 1) leave room in any valid range.
_LIMITS: dict[str, tuple[float, float]] = {
    "model.depth": (1, math.inf), "model.width": (1, math.inf), "model.sigma": (0, math.inf),
    "model.dropout": (0, 1), "layers.depth": (1, math.inf), "layers.width": (1, math.inf),
    "optim.lr": (0, math.inf), "optim.momentum": (0, 1), "optim.weight_decay": (0, math.inf),
    "train.epochs": (1, math.inf), "train.batch_size": (1, math.inf),
    "train.early_stopping": (0, math.inf), "data.val_size": (1, 59999),
}


def _sqlite_must_exist(url: str, what: str) -> None:
    path = sqlite_path(url)
    if path is not None:
        if not path.is_file():
            raise UsageError(f"{what}={mask_url(url)}: no such file {path.resolve()} "
                             "(run the study first, or pass the right URI)")


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The study storage, opened without creating tables or files."""
    _sqlite_must_exist(url, "--storage")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with schema_lock(url):  # not while a sweep is still creating the tables
            return optuna.storages.RDBStorage(url, skip_table_creation=True)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the user's URI
        raise UsageError(f"cannot open --storage={mask_url(url)}: "
                         f"{mask_url(' '.join(str(exc).split()))[:300]}") from None


def load_studies(url: str, names: list[str]) -> list[optuna.Study]:
    """Load every named study, or fail naming the unknown ones and the known ones."""
    storage = open_storage(url)
    try:
        known = optuna.study.get_all_study_names(storage)
    except Exception as exc:  # noqa: BLE001 - not an Optuna database
        raise UsageError(f"--storage={mask_url(url)} holds no Optuna studies: "
                         f"{' '.join(str(exc).split())[:200]}") from None
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"no study {', '.join(map(repr, unknown))} in {mask_url(url)}; "
                         f"known: {', '.join(known) or 'none'}")
    return [optuna.load_study(study_name=n, storage=storage) for n in names]


def open_client(uri: str) -> MlflowClient:
    """A client on an existing tracking store."""
    _sqlite_must_exist(uri, "--tracking-uri")
    with schema_lock(uri):  # the client checks the store's schema; not while a sweep creates it
        return MlflowClient(uri)


def parent_run(client: MlflowClient, study: optuna.Study, uri: str) -> Run:
    """The study's parent MLflow run, or a usage error saying where it was recorded."""
    run_id = study.user_attrs.get("mlflow_parent_run_id")
    recorded = study.user_attrs.get("tracking_uri", "?")
    try:
        if run_id:
            return client.get_run(run_id)
    except Exception:  # noqa: BLE001 - MlflowException (not found) or a broken store alike
        pass
    raise UsageError(f"study {study.study_name!r}: its parent MLflow run {run_id or '(none)'} is "
                     f"not in --tracking-uri={mask_url(uri)}; the study recorded {recorded}")


@dataclass
class TrialRow:
    """One finished trial, as the reports see it."""

    number: int
    state: str  # COMPLETE, PRUNED or FAIL
    score: float | None  # the study's value; for PRUNED the best reached before pruning
    params: dict[str, Any]
    epochs: int
    start: datetime | None
    end: datetime | None
    run_id: str = ""
    overrides: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds() if self.start and self.end else math.nan


def fixed(study: optuna.Study, key: str, default: Any) -> Any:
    """A setting every trial of the study shares, as its identity recorded it (``default``
    for a study recorded before the key existed)."""
    value = study.user_attrs.get("identity", {}).get(key)
    return default if value is None else json.loads(value)


def trial_rows(study: optuna.Study) -> list[TrialRow]:
    """Finished trials (COMPLETE, PRUNED, FAIL) in the order they finished; a cross-validated
    trial's epochs count once per fold (what it cost)."""
    rows, folds = [], max(1, int(fixed(study, "data.folds", 0)))
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                       TrialState.FAIL)):
        score = t.values[0] if t.state == TrialState.COMPLETE else _last(t)  # several: the first
        epochs = len(t.intermediate_values) or int(t.user_attrs.get("epochs", 0))
        rows.append(TrialRow(t.number, t.state.name, score, dict(t.params),
                             folds * epochs, t.datetime_start, t.datetime_complete,
                             t.user_attrs.get("mlflow_run_id", ""), t.user_attrs.get("overrides", [])))
    return sorted(rows, key=lambda r: (r.end or datetime.max, r.number))


def _last(t: FrozenTrial) -> float | None:
    return t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None


def minimizes(study: optuna.Study) -> bool:
    """Whether the study's score (its first metric) is minimised."""
    return study.directions[0] == optuna.study.StudyDirection.MINIMIZE


def ranked(rows: list[TrialRow], *, minimize: bool) -> list[TrialRow]:
    """COMPLETE trials, best first (selection uses validation only)."""
    done = [r for r in rows if r.state == "COMPLETE" and r.score is not None]
    return sorted(done, key=lambda r: (r.score if minimize else -r.score, r.number))


def varied(study: optuna.Study) -> dict[str, BaseDistribution]:
    """Every searched parameter with more than one possible value, in first-seen order."""
    out: dict[str, BaseDistribution] = {}
    for t in study.get_trials(deepcopy=False):
        for key, dist in t.distributions.items():
            if key not in out and not dist.single():
                out[key] = dist
    return out


def best_so_far(rows: list[TrialRow], *, minimize: bool, by: str) -> tuple[list[float], list[float]]:
    """Best COMPLETE score after each finished trial, against cumulative epochs (every trial's
    epochs count, pruned and failed ones too) or wall seconds since the study's first start."""
    starts = [r.start for r in rows if r.start]
    origin = min(starts) if starts else None
    xs, ys, spent, best = [], [], 0.0, None
    for r in rows:
        spent += r.epochs
        if r.state == "COMPLETE" and r.score is not None:
            best = r.score if best is None else (min if minimize else max)(best, r.score)
        if best is None:
            continue
        x = spent if by == "epochs" else ((r.end - origin).total_seconds() if r.end and origin
                                          else math.nan)
        xs.append(float(x))
        ys.append(float(best))
    return xs, ys


def group_of(study_name: str) -> str:
    """``tpe-seed1`` and ``tpe-s1`` -> ``tpe`` (``tpe-seed1-quick`` -> ``tpe-quick``): studies
    that differ only in their search seed."""
    return _SEED_SUFFIX.sub(r"\1", study_name)


def spread(series: list[tuple[list[float], list[float]]]) -> tuple[np.ndarray, ...]:
    """Median, min and max of several best-so-far step curves on their shared x grid. A curve
    counts from its first point on and keeps its final best after its study ended."""
    grid = np.unique(np.concatenate([np.asarray(xs, float) for xs, _ in series if xs]))
    grid = grid[~np.isnan(grid)]
    stack = np.full((len(series), len(grid)), np.nan)
    for i, (xs, ys) in enumerate(series):
        if not xs:
            continue
        idx = np.searchsorted(np.asarray(xs), grid, side="right") - 1
        stack[i, idx >= 0] = np.asarray(ys)[idx[idx >= 0]]
    keep = ~np.all(np.isnan(stack), axis=0)
    stack, grid = stack[:, keep], grid[keep]
    return grid, np.nanmedian(stack, axis=0), np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)


def edge_warnings(trial: FrozenTrial) -> list[str]:
    """A warning per numeric parameter whose best value sits in the lowest or highest ~10% of
    its searched range (log-aware), or at the lowest/highest of ordered numeric choices, where
    the range can still grow that way (depth 1 cannot go lower; see ``_LIMITS``)."""
    out = []
    for key, dist in trial.distributions.items():
        value, where = trial.params.get(key), _edge(trial.params.get(key), dist)
        if not where:
            continue
        low, high = _ends(dist)
        floor, ceiling = _LIMITS.get(_LAYER_WIDTH.sub("layers.width", key), (-math.inf, math.inf))
        if (low <= floor) if where == "lower" else (high >= ceiling):
            continue  # already at the hard limit: nothing to widen on that side
        beyond = f"below {_fmt(low)}" if where == "lower" else f"above {_fmt(high)}"
        out.append(f"best {key}={_fmt(value)} sits at the {where} edge of the searched range "
                   f"{_range_text(dist)}: the optimum may lie outside; widen the range {beyond}")
    return out


def _ends(dist: BaseDistribution) -> tuple[Any, Any]:
    if isinstance(dist, CategoricalDistribution):
        return min(dist.choices), max(dist.choices)  # only called for all-numeric choices
    return dist.low, dist.high  # type: ignore[attr-defined]


def _edge(value: Any, dist: BaseDistribution) -> str:
    if dist.single() or value is None:
        return ""
    if isinstance(dist, CategoricalDistribution):
        numbers = [c for c in dist.choices if _is_number(c)]
        if len(numbers) != len(dist.choices) or not _is_number(value):
            return ""
        return "lower" if value == min(numbers) else "upper" if value == max(numbers) else ""
    assert isinstance(dist, IntDistribution | FloatDistribution)
    low, high, v = float(dist.low), float(dist.high), float(value)
    if dist.log:
        low, high, v = math.log(low), math.log(high), math.log(v)
    pos = (v - low) / (high - low)
    return "lower" if pos <= EDGE else "upper" if pos >= 1 - EDGE else ""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _range_text(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return "{" + ", ".join(map(_fmt, dist.choices)) + "}"
    scale = ", log scale" if dist.log else ""  # type: ignore[attr-defined]
    return f"[{_fmt(dist.low)}, {_fmt(dist.high)}]{scale}"  # type: ignore[attr-defined]


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def history(client: MlflowClient, run_id: str,
            keys: tuple[str, ...] = ("train/loss", "train/acc", "val/loss", "val/acc"),
            optional: tuple[str, ...] = ("val/loss_sd", "val/acc_sd")) -> list[dict[str, float]]:
    """A run's per-epoch metrics as ``training.figures.learning_curves`` takes them (with the
    folds' spread when the run was cross-validated)."""
    by_step: dict[int, dict[str, float]] = {}
    for key in (*keys, *optional):
        for m in client.get_metric_history(run_id, key):
            by_step.setdefault(m.step, {})[key] = m.value
    return [by_step[s] for s in sorted(by_step) if all(k in by_step[s] for k in keys)]
