"""Hold-out against k-fold cross-validation: two studies of one search space, one scored on a
single validation split, the other on the mean over k folds. Does the chosen configuration
change, how far do the two rankings agree, and what did the folds cost?"""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient
from scipy import stats

from experiments.results.data import TrialRow
from experiments.results.page import Page
from experiments.results.study import StudyView


def _space(view: StudyView) -> dict[str, str]:
    return {k: v for k, v in view.study.user_attrs.get("identity", {}).items() if k.startswith("search.")}


def pairs(views: list[StudyView]) -> list[tuple[StudyView, StudyView]]:
    """(hold-out study, k-fold study) for every two studies that searched the same space."""
    return [(h, k) for k in views if k.folds for h in views
            if not h.folds and _space(h) and _space(h) == _space(k)]


def _config(row: TrialRow) -> str:
    return json.dumps(row.params, sort_keys=True)


def _ranks(view: StudyView) -> dict[str, tuple[int, TrialRow]]:
    """Each configuration's rank (1 = best) and its best trial, among the completed ones."""
    out: dict[str, tuple[int, TrialRow]] = {}
    for row in view.top:
        out.setdefault(_config(row), (len(out) + 1, row))
    return out


def _cost(view: StudyView) -> tuple[int, float]:
    """Models x epochs trained (k per epoch of a k-fold trial) and the wall time in seconds."""
    epochs = sum(r.epochs for r in view.rows)  # every fold's epochs counted
    starts, ends = [r.start for r in view.rows if r.start], [r.end for r in view.rows if r.end]
    return epochs, (max(ends) - min(starts)).total_seconds() if starts and ends else float("nan")


def folds_section(page: Page, views: list[StudyView], client: MlflowClient) -> None:
    """One comparison per (hold-out, k-fold) pair in the report."""
    for holdout, kfold in pairs(views):
        h, k = _ranks(holdout), _ranks(kfold)
        shared = [c for c in k if c in h]
        if not shared:
            continue
        page.heading(f"Hold-out ({holdout.name}) against {kfold.folds}-fold cross-validation "
                     f"({kfold.name})")
        rows = []
        for config in sorted(shared, key=lambda c: k[c][0]):
            (rank_k, row_k), (rank_h, row_h) = k[config], h[config]
            sd = (client.get_run(row_k.run_id).data.metrics.get(f"{kfold.metric}_best_sd")
                  if row_k.run_id else None)
            rows.append([", ".join(f"{p}={v}" for p, v in row_k.params.items()),
                         f"{row_h.score:.4f}", rank_h,
                         f"{row_k.score:.4f}" + (f" ± {sd:.4f}" if sd is not None else ""), rank_k])
        page.table(["configuration", f"hold-out {holdout.metric}", "hold-out rank",
                    f"{kfold.folds}-fold mean ± sd", f"{kfold.folds}-fold rank"], rows)
        best_h, best_k = min(shared, key=lambda c: h[c][0]), min(shared, key=lambda c: k[c][0])
        verdict = ("Both choose the same configuration." if best_h == best_k else
                   f"They choose different configurations: the hold-out's choice ranks "
                   f"{k[best_h][0]} of {len(shared)} under cross-validation.")
        tau = stats.kendalltau([h[c][0] for c in shared], [k[c][0] for c in shared]).statistic
        (epochs_h, wall_h), (epochs_k, wall_k) = _cost(holdout), _cost(kfold)
        page.para(f"{verdict} Kendall's tau between the two rankings of the {len(shared)} "
                  f"configurations: {tau:.2f} (1 = the same order). Cost: {epochs_h} trained "
                  f"model-epochs and {wall_h / 60:.1f} minutes for the hold-out study, {epochs_k} "
                  f"and {wall_k / 60:.1f} minutes for the cross-validated one "
                  f"({epochs_k / max(epochs_h, 1):.1f}x the epochs).")
