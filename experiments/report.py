"""``python -m experiments.report STUDY [STUDY ...]``: a study report, or a comparison of studies.

Writes ``reports/<names>/`` (``--out``): ``report.md`` with PNG plots beside it and
``report.html``, one self-contained page (images inlined) that opens in a browser without a
server; the folder is also logged to each study's parent MLflow run under ``report/``.

Per study: the score against every varied hyperparameter (axis plots), the best score per value
(isolation plots), a warning when the best point sits on the edge of the searched range, the top
trials, learning curves of the best few, the test accuracy of the chosen configuration (tested
once, when the study finished) and the command that reproduces it. Across studies: the best score
so far against cumulative trained epochs and against wall time; studies named ``NAME-seed<k>`` or
``NAME-s<k>`` are grouped as one strategy run with several search seeds (median and min-max band).

Example: python -m experiments.report tpe-seed0 tpe-seed1 random-seed0 random-seed1
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from mlflow.tracking import MlflowClient

from experiments import report_plots as rp
from experiments.cli import fail
from experiments.report_data import (
    Parser,
    TrialRow,
    UsageError,
    best_so_far,
    group_of,
    load_studies,
    open_client,
    parent_run,
    trial_rows,
)
from experiments.report_page import Page
from experiments.report_study import StudyView, safe, study_section
from experiments.tracking import mask_url


def default_out(names: list[str], prefix: str = "") -> Path:
    joined = "+".join(safe(n) for n in names)
    if len(joined) > 80:
        joined = f"{safe(names[0])}-and-{len(names) - 1}-more"
    return Path("reports") / f"{prefix}{joined}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m experiments.report", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("studies", nargs="+", metavar="STUDY", help="Optuna study names")
    p.add_argument("--storage", default="sqlite:///optuna.db", help="Optuna storage URL")
    p.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow tracking URI")
    p.add_argument("--out", type=Path, help="report folder (default reports/<study names>)")
    p.add_argument("--top", type=int, default=10, help="rows of the top-trials table")
    p.add_argument("--curves", type=int, default=3, help="learning curves of the best few")
    p.add_argument("--no-log", action="store_true", help="do not log the report to MLflow")
    return p.parse_args(argv)


def gather(args: argparse.Namespace) -> tuple[list[StudyView], MlflowClient]:
    """Check and load everything before any file is written (usage errors exit 2)."""
    if args.top < 1 or args.curves < 0:
        raise UsageError("--top must be >= 1 and --curves >= 0")
    studies = load_studies(args.storage, list(dict.fromkeys(args.studies)))
    client = open_client(args.tracking_uri)
    views = [StudyView(s, trial_rows(s), parent_run(client, s, args.tracking_uri)) for s in studies]
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


def build(views: list[StudyView], client: MlflowClient, args: argparse.Namespace, out: Path) -> Path:
    """Write the report folder; return the HTML page."""
    out.mkdir(parents=True, exist_ok=True)
    names = ", ".join(v.name for v in views)
    page = Page(f"Report: {names}", out)
    page.para(f"Generated {datetime.now():%Y-%m-%d %H:%M} from {mask_url(args.storage)} and "
              f"MLflow {mask_url(args.tracking_uri)}. Scores are each trial's best {views[0].metric} "
              f"on the validation split ({'lower' if views[0].minimize else 'higher'} is better).")
    comparison(page, views)
    for view in views:
        study_section(page, view, client, top=args.top, curves=args.curves)
    return page.write()[1]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        views, client = gather(args)
    except UsageError as exc:
        fail(str(exc))
    out = args.out or default_out([v.name for v in views])
    html = build(views, client, args, out)
    print(f"report: {html} (and {out / 'report.md'} with {len(list(out.glob('*.png')))} plots)")
    if not args.no_log:
        for v in views:
            client.log_artifacts(v.parent.info.run_id, str(out), "report")
        print(f"logged under report/ to MLflow run(s) {', '.join(v.parent.info.run_id for v in views)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
