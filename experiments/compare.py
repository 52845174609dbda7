"""``python -m experiments.compare [filters]``: MLflow runs or whole studies side by side.

Selects runs of one or more experiments (``--experiment``, default mlp), of whole studies
(``--study``: the study's trials, its retrained best and any replicates) and/or by an MLflow
filter string (``--filter "params.\\`model.depth\\` = '2' and metrics.\\`val/acc_best\\` > 0.8"``),
prints a table of the parameters that differ and the best metrics with the command that
reproduces the best run, writes every parameter and metric to CSV, and plots learning curves of
the best runs and each parameter against the score.

Example: python -m experiments.compare --study tpe-seed0 --study random-seed0 --kind trial
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
from pathlib import Path

from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from experiments import report_plots as rp
from experiments.cli import fail
from experiments.config import flatten, load_config
from experiments.report import default_out
from experiments.report_data import Parser, UsageError, open_client
from experiments.report_study import history
from experiments.tracking import param_value

HYDRA_WORDS = {"None": "null", "True": "true", "False": "false"}
HIDDEN = ("sampled.", "optuna.trial_number", "data.root", "mlflow.", "sweep.study_name")


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


def experiments(client: MlflowClient, names: list[str]) -> list[str]:
    """Experiment ids by name, or a usage error naming the known ones."""
    ids, known = [], [e.name for e in client.search_experiments()]
    for name in names:
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise UsageError(f"no MLflow experiment {name!r}; known: {', '.join(known) or 'none'}")
        ids.append(exp.experiment_id)
    return ids


def search(client: MlflowClient, ids: list[str], text: str, limit: int) -> list[Run]:
    try:
        return client.search_runs(ids, filter_string=text, max_results=limit)
    except MlflowException as exc:
        raise UsageError(f"bad --filter {text!r}: {' '.join(exc.message.split())[:300]}") from None


def select(args: argparse.Namespace, client: MlflowClient) -> list[Run]:
    """The runs asked for; every check (experiment, filter, study) happens here."""
    names = args.experiment or ["mlp"]
    ids = experiments(client, names)
    search(client, ids, args.filter, 1)  # a malformed filter fails before anything else
    studies = {r.info.run_id: r.data.tags.get("optuna.study", "")
               for r in search(client, ids, "tags.kind = 'study'", 50000)}
    missing = [n for n in args.study if n not in studies.values()]
    if missing:
        raise UsageError(f"no study {', '.join(map(repr, missing))} in experiment(s) {', '.join(names)}; "
                         f"known: {', '.join(sorted(set(studies.values()))) or 'none'}")
    if not args.study:
        runs = search(client, ids, args.filter, args.max_runs)
    else:
        runs = []
        for parent in [pid for pid, name in studies.items() if name in args.study]:
            text = f"tags.mlflow.parentRunId = '{parent}'"
            runs += search(client, ids, f"{args.filter} and {text}" if args.filter else text,
                           args.max_runs)
    for r in runs:  # retrained best and replicates carry no study tag: take their parent's
        r.data.tags.setdefault("optuna.study", studies.get(r.data.tags.get("mlflow.parentRunId"), ""))
    kinds = {k.strip() for k in args.kind.split(",") if k.strip()}
    return [r for r in runs if (r.data.tags.get("kind") in kinds if kinds
                                else r.data.tags.get("kind") != "study")][:args.max_runs]


def score(client: MlflowClient, run: Run, metric: str) -> float | None:
    """The run's best ``metric`` over its epochs (``val/acc_best`` when logged)."""
    logged = run.data.metrics.get(f"{metric}_best")
    if logged is not None:
        return logged
    values = [m.value for m in client.get_metric_history(run.info.run_id, metric)]
    if not values:
        return None
    return min(values) if metric.endswith("loss") else max(values)


def varied_keys(runs: list[Run]) -> list[str]:
    """Parameters whose value differs across the selection (bookkeeping keys left out)."""
    keys = sorted({k for r in runs for k in r.data.params if not k.startswith(HIDDEN)},
                  key=lambda k: (k.startswith("sweep."), k))  # the model's own settings first
    return [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1]


def rows_for(client: MlflowClient, runs: list[Run], metric: str) -> list[dict]:
    """One dict per run, best first: identity, score, every param and final metric."""
    rows = []
    for r in runs:
        tags, best = r.data.tags, score(client, r, metric)
        rows.append({"run_id": r.info.run_id, "run": r.info.run_name,
                     "study": tags.get("optuna.study", ""), "kind": tags.get("kind", ""),
                     "trial": tags.get("optuna.trial", ""),
                     "state": tags.get("optuna.state", r.info.status), f"best {metric}": best,
                     **{f"metrics.{k}": v for k, v in r.data.metrics.items()},
                     **{f"params.{k}": v for k, v in r.data.params.items()}})
    minimize = metric.endswith("loss")

    def rank(d: dict) -> float:
        v = d[f"best {metric}"]
        return (v if minimize else -v) if v is not None else float("inf")

    return sorted(rows, key=rank)


def print_table(rows: list[dict], keys: list[str], metric: str, n: int) -> None:
    """A plain fixed-width table on the terminal."""
    head = ["run", "study", "kind", "state", f"best {metric}", "test/acc", *keys[:8]]
    body = [[d["run"], d["study"], d["kind"], d["state"], _f(d[f"best {metric}"]),
             _f(d.get("metrics.test/acc")), *[_cell(d.get(f"params.{k}", "")) for k in keys[:8]]]
            for d in rows[:n]]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]
    for line in [head, ["-" * w for w in widths], *body]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    if len(rows) > n:
        print(f"... {len(rows) - n} more rows in the CSV")


def _cell(text: str) -> str:
    """A parameter for the terminal: floats to 4 significant digits, long values cut."""
    try:
        return f"{float(text):.4g}" if "." in text or "e" in text else text[:16]
    except ValueError:
        return text[:16]


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def write_csv(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(k for d in rows for k in d))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def plots(client: MlflowClient, rows: list[dict], keys: list[str], metric: str, out: Path,
          curves: int) -> list[Path]:
    """Learning curves of the best runs and each varied parameter against the score."""
    made, score_of = [], f"best {metric}"
    top = {f"{d['study'] or d['kind']}/{d['run']} ({_f(d[score_of])})": history(client, d["run_id"])
           for d in rows[:curves]}
    top = {k: h for k, h in top.items() if h}
    if top:
        made.append(_save(rp.curves_overlay(top, title=f"the best {len(top)} runs by {metric} "
                                            "(solid = training, dashed = validation)"),
                          out / "curves.png"))
    points = [rp.Point({k: d[f"params.{k}"] for k in keys if d.get(f"params.{k}") is not None},
                       d[score_of], label=d["study"] or d["kind"])
              for d in rows if d[score_of] is not None]
    if keys and points:
        axes = [rp.axis_for(k, [p.params[k] for p in points if k in p.params]) for k in keys]
        made.append(_save(rp.param_scores(points, axes, metric=score_of,
                                          title=f"{score_of} against each parameter that varies"),
                          out / "params.png"))
    return made


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def reproduce(params: dict[str, str]) -> str:
    """The ``experiments.train`` command for a logged run: every config leaf that differs from
    the defaults (study bookkeeping and tracking settings left out)."""
    out = []
    for key, default in flatten(load_config([])).items():
        skip = key.startswith(("mlflow.", "search.", "sweep.")) and key != "sweep.quick"
        if key in params and not skip and params[key] != param_value(default):
            value = params[key].replace(", ", ",")  # "[512, 128]" -> "[512,128]"
            out.append(f"{key}={HYDRA_WORDS.get(value, value)}")
    return " ".join(["python -m experiments.train", *map(shlex.quote, out)])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.max_runs < 1 or args.rows < 0 or args.curves < 0:
            raise UsageError("--max-runs must be >= 1, --rows and --curves >= 0")
        client = open_client(args.tracking_uri)
        runs = select(args, client)
    except UsageError as exc:
        fail(str(exc))
    if not runs:
        print("no run matches the selection")
        return 0
    rows, keys = rows_for(client, runs, args.metric), varied_keys(runs)
    print_table(rows, keys, args.metric, args.rows)
    best = next(r for r in runs if r.info.run_id == rows[0]["run_id"])
    print(f"best run {best.info.run_name} ({best.info.run_id}); reproduce with:\n"
          f"  {reproduce(best.data.params)}")
    out = args.out or default_out(args.study or args.experiment or ["mlp"], prefix="compare-")
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "runs.csv", rows)
    made = plots(client, rows, keys, args.metric, out, args.curves)
    print(f"{len(rows)} runs: {out / 'runs.csv'}" + "".join(f", {p}" for p in made))
    return 0


if __name__ == "__main__":
    sys.exit(main())
