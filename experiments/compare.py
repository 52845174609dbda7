"""``python -m experiments.compare [filters]``: MLflow runs or whole studies side by side.

Selects runs of one or more experiments (``--experiment``, default mlp), of whole studies
(``--study``: the study's trials, its retrained best and any replicates) and/or by an MLflow
filter string (``--filter "params.\\`model.depth\\` = '2' and metrics.\\`val/acc_best\\` > 0.8"``),
prints a table of the parameters that differ and the best metrics with the command that
reproduces the best run, writes every parameter and metric to CSV, and plots learning curves of
the best runs and each parameter against the score.

Examples:
  python -m experiments.compare --study mlp-sweep
  python -m experiments.compare --study strategies-tpe-seed0 --study strategies-random-seed0 --kind trial
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.cli import Parser, UsageError, fail, quiet_libraries
from experiments.config import plural, reproduce
from experiments.results import default_out, open_client
from experiments.results.compare import figures, kinds_of, save, select, table, terminal_table, varied_keys


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m experiments.compare", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", action="append", help="MLflow experiment name (repeatable; "
                   "default mlp)")
    p.add_argument("--study", action="append", default=[], help="study name (repeatable)")
    p.add_argument("--filter", default="", help="MLflow search filter string")
    p.add_argument("--kind", default="", help="comma-separated run kinds to keep (trial, retrain, "
                   "replicate, train); default all but the study parents")
    p.add_argument("--metric", default="val/acc", choices=("val/acc", "val/loss"),
                   help="the score to rank and plot by (best over epochs)")
    p.add_argument("--max-runs", type=int, default=1000, help="at most this many runs")
    p.add_argument("--rows", type=int, default=20, help="rows printed (the CSV has all)")
    p.add_argument("--curves", type=int, default=8, help="learning curves of the best N runs")
    p.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow tracking URI")
    p.add_argument("--out", type=Path, help="output folder (default reports/compare-<selection>)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_libraries()
    try:
        if args.max_runs < 1 or args.rows < 0 or args.curves < 0:
            raise UsageError("--max-runs must be >= 1, --rows and --curves >= 0")
        kinds = kinds_of(args.kind)
        client = open_client(args.tracking_uri)
        runs = select(client, experiments=args.experiment or ["mlp"], studies=args.study,
                      text=args.filter, kinds=kinds, max_runs=args.max_runs)
    except UsageError as exc:
        fail(str(exc))
    if not runs:
        print("no run matches the selection")
        return 0
    df = table(client, runs, args.metric)
    keys = varied_keys(df)
    print(terminal_table(df, keys, args.metric, args.rows))
    best = next(r for r in runs if r.info.run_id == df["run_id"][0])
    print(f"best run {best.info.run_name} ({best.info.run_id})\nreproduce: {reproduce(best.data.params)}")
    out = args.out or default_out(args.study or args.experiment or ["mlp"], prefix="compare-")
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "runs.csv", index=False)
    made = save(figures(client, df, keys, args.metric, args.curves), out)
    print(f"{plural(len(df), 'run')}: {out / 'runs.csv'}" + "".join(f", {p}" for p in made))
    return 0


if __name__ == "__main__":
    sys.exit(main())
