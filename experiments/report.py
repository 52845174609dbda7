"""``python -m experiments.report STUDY [STUDY ...]``: a study report, or a comparison of studies.

Writes ``reports/<names>/`` (``--out``): ``report.md`` with PNG plots beside it and
``report.html``, one self-contained page (images inlined) that opens in a browser without a
server; the folder is also logged to each study's parent MLflow run under ``reports/<folder>``
(each report its own, so a comparison does not replace a study's own report).

Per study: the score against every varied hyperparameter (axis plots), the best score per value
(isolation plots), a warning when the best point sits on the edge of the searched range, the top
trials, learning curves of the best few, the test accuracy of the chosen configuration (tested
once, when the study finished) and the command that reproduces it. Across studies: the best score
so far against cumulative trained epochs and against wall time; studies named ``NAME-seed<k>`` or
``NAME-s<k>`` are grouped as one strategy run with several search seeds (median and min-max band).

Examples:
  python -m experiments.report mlp-sweep
  python -m experiments.report strategies-tpe-seed0 strategies-tpe-seed1 strategies-random-seed0
"""


from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.cli import Parser, UsageError, fail, quiet_libraries
from experiments.config import plural
from experiments.results import artifact_path, build, default_out, gather, log_to_parents


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_libraries()
    try:
        if args.top < 1 or args.curves < 0:
            raise UsageError("--top must be >= 1 and --curves >= 0")
        views, client = gather(args.storage, args.tracking_uri, args.studies)
    except UsageError as exc:
        fail(str(exc))
    out = args.out or default_out([v.name for v in views])
    html = build(views, client, out, storage=args.storage, tracking_uri=args.tracking_uri,
                 top=args.top, curves=args.curves)
    print(f"report: {html} (and {out / 'report.md'} with {plural(len(list(out.glob('*.png'))), 'plot')})")
    if not args.no_log:
        ids = log_to_parents(client, views, out)
        print(f"logged under {artifact_path(out)}/ to MLflow {plural(len(ids), 'run')} {', '.join(ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
