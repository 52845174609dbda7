"""A report of one or more studies: the comparison across studies, then each study's section,
written as Markdown and a self-contained HTML page."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from mlflow.tracking import MlflowClient

from experiments.results import plots as rp
from experiments.results.data import (
    TrialRow,
    best_so_far,
    group_of,
    load_studies,
    open_client,
    parent_run,
    trial_rows,
)
from experiments.results.folds import folds_section
from experiments.results.page import Page
from experiments.results.study import StudyView, safe, study_section
from experiments.stores import mask_url


def default_out(names: list[str], prefix: str = "") -> Path:
    joined = "+".join(safe(n) for n in names)
    if len(joined) > 80:
        joined = f"{safe(names[0])}-and-{len(names) - 1}-more"
    return Path("reports") / f"{prefix}{joined}"


def gather(storage: str, tracking_uri: str, names: list[str]) -> tuple[list[StudyView], MlflowClient]:
    """Load every study and its parent run before any file is written (a :class:`UsageError`
    names what is missing)."""
    studies = load_studies(storage, list(dict.fromkeys(names)))
    client = open_client(tracking_uri)
    views = [StudyView(s, trial_rows(s), parent_run(client, s, tracking_uri)) for s in studies]
    return views, client


def comparison(page: Page, views: list[StudyView]) -> None:
    """The study table and best-so-far against cumulative epochs and wall time."""
    page.heading("Studies compared" if len(views) > 1 else "Study overview")
    metrics = {v.metric for v in views}
    if len(metrics) > 1:
        page.warn(f"the studies optimise different metrics ({', '.join(sorted(metrics))}); "
                  "their curves are not comparable")
    rows = []
    for v in views:
        p, m, best = v.parent.data.params, v.parent.data.metrics, v.top[:1]
        states = [r.state for r in v.rows]
        rows.append([v.name, group_of(v.name), p.get("sampler", "?"), p.get("pruner", "?"),
                     f"{states.count('COMPLETE')}/{states.count('PRUNED')}/{states.count('FAIL')}",
                     sum(r.epochs for r in v.rows), f"{_wall(v.rows):.0f}",
                     f"{best[0].score:.4f}" if best else "-", _num(m.get("test/acc"))])
    page.table(["study", "group", "sampler", "pruner", "complete/pruned/failed", "epochs trained",
                "wall s", f"best {views[0].metric}", "test/acc (chosen config)"], rows)
    metric = views[0].metric
    for by, label, name in (("epochs", "cumulative trained epochs", "best_vs_epochs.png"),
                            ("seconds", "wall time (s)", "best_vs_time.png")):
        groups: dict[str, list[rp.Series]] = {}
        for v in views:
            xs, ys = best_so_far(v.rows, minimize=v.minimize, by=by)
            groups.setdefault(group_of(v.name), []).append((v.name, xs, ys))
        page.figure(rp.best_so_far_plot(groups, xlabel=label, metric=metric), name,
                    f"best {metric} so far against {label}")


def _wall(rows: list[TrialRow]) -> float:
    starts, ends = [r.start for r in rows if r.start], [r.end for r in rows if r.end]
    return (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def build(views: list[StudyView], client: MlflowClient, out: Path, *, storage: str,
          tracking_uri: str, top: int, curves: int) -> Path:
    """Write the report folder; return the HTML page."""
    out.mkdir(parents=True, exist_ok=True)
    names = ", ".join(v.name for v in views)
    page = Page(f"Report: {names}", out)
    page.para(f"Generated {datetime.now():%Y-%m-%d %H:%M} from {mask_url(storage)} and "
              f"MLflow {mask_url(tracking_uri)}. Scores are each trial's best {views[0].metric} "
              f"on the validation split ({'lower' if views[0].minimize else 'higher'} is better).")
    comparison(page, views)
    folds_section(page, views, client)
    for view in views:
        study_section(page, view, client, top=top, curves=curves)
    return page.write()[1]


def artifact_path(out: Path) -> str:
    """Where a report goes in its studies' parent runs: ``reports/<its folder's name>``, so a
    study's own report and a comparison that includes it are kept side by side (a report made
    again replaces itself only)."""
    return f"reports/{out.resolve().name}"


def log_to_parents(client: MlflowClient, views: list[StudyView], out: Path) -> list[str]:
    """Log the report folder to each study's parent run (:func:`artifact_path`); their ids."""
    for v in views:
        client.log_artifacts(v.parent.info.run_id, str(out), artifact_path(out))
    return [v.parent.info.run_id for v in views]
