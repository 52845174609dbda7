"""Seed replicates of a study's top configurations: each retrained with several seeds as child
runs of the study's parent run, summarised with mean, standard deviation and a 95% t interval of
validation and test accuracy, and a Welch test of the best against each other one. With several
precisions, each configuration and seed is trained in each, and the difference is paired by seed."""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient
from scipy import stats

from experiments.cli import USAGE_ERRORS, UsageError, one_line
from experiments.config import Config, load_config, report_command
from experiments.results.data import (
    load_studies,
    minimizes,
    open_client,
    parent_run,
    ranked,
    trial_rows,
)
from experiments.stores import mask_url
from experiments.tracking import where_to_look
from experiments.training import tracked_run
from mlp import DivergedError

KEYS = {"val": "val/acc_best", "test": "test/acc"}
PARITY = 0.005  # precisions agree when their mean test accuracies differ by under 0.5 points


def plan(args: argparse.Namespace) -> tuple[str, list[tuple[int, float, Config]], MlflowClient]:
    """Check everything and compose each configuration before anything is trained."""
    if args.top < 1 or args.seeds < 2:
        raise UsageError("--top must be >= 1 and --seeds >= 2 (a spread needs two runs)")
    (study,) = load_studies(args.storage, [args.study])
    client = open_client(args.tracking_uri)
    parent = parent_run(client, study, args.tracking_uri)
    top = ranked(trial_rows(study), minimize=minimizes(study))[:args.top]
    if not top:
        raise UsageError(f"study {args.study!r} has no COMPLETE trial to replicate")
    base = study.user_attrs.get("base_overrides", [])
    configs = []
    for row in top:
        try:
            cfg = load_config([*base, *row.overrides])
        except USAGE_ERRORS as exc:
            raise UsageError(f"trial {row.number}: cannot recompose its config: {one_line(exc)}") from None
        cfg.mlflow.tracking_uri, cfg.mlflow.log_model = args.tracking_uri, False
        if cfg.train.precision == "auto":  # what the study's trials trained in, not timed again
            cfg.train.precision = json.loads(study.user_attrs.get("identity", {}).get(
                "train.precision", '"fp32"'))
        configs.append((row.number, row.score, cfg))
    return parent.info.run_id, configs, client


def replicate(args: argparse.Namespace, parent_id: str,
              configs: list[tuple[int, float, Config]]) -> list[dict]:
    """Train every (configuration, seed) as a child run; return one record per run."""
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    precisions = args.precisions or [None]
    total, records = len(configs) * len(seeds) * len(precisions), []
    for number, _, cfg in configs:
        for seed, precision in ((s, p) for s in seeds for p in precisions):
            cfg.seed, name, start = seed, f"replicate-trial-{number}-seed-{seed}", time.perf_counter()
            record = {"trial": number, "seed": seed, "run": name}
            tags = {"kind": "replicate", "optuna.study": args.study, "optuna.trial": str(number),
                    "replicate.seed": str(seed)}
            if precision is not None:
                cfg.train.precision, name = precision, f"{name}-{precision}"
                record.update(precision=precision, run=name)
                tags["replicate.precision"] = precision
            try:
                final = tracked_run(cfg, quiet=True, parent_run_id=parent_id, run_name=name,
                                    tags=tags, progress=f"trial {number} seed {seed}").final
                record.update({k: final[m] for k, m in KEYS.items()})
                text = f"val/acc_best {final[KEYS['val']]:.4f} test/acc {final[KEYS['test']]:.4f}"
            except DivergedError as exc:
                text = f"diverged ({exc}); left out of the statistics"
            records.append(record)
            print(f"[{len(records)}/{total}] trial {number} seed {seed}"
                  f"{f' {precision}' if precision else ''}: {text} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
    return records


def interval(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation and the 95% t confidence interval of the mean."""
    x = np.asarray(values, float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n > 1 else math.nan
    return {"mean": mean, "sd": sd, "lo": mean - half, "hi": mean + half, "n": n}


def summarise(records: list[dict], configs: list[tuple[int, float, Config]],
              precisions: list[str] | None = None) -> list[dict]:
    """One row per configuration (and precision), in the study's ranking order."""
    rows = []
    for (number, value, _), precision in ((c, p) for c in configs for p in precisions or [None]):
        group = [r for r in records if r["trial"] == number and r.get("precision") == precision]
        mine = [r for r in group if "val" in r]
        row: dict = {"trial": number, "study_value": value, "n": len(mine),
                     "failed": len(group) - len(mine)}
        if precision is not None:
            row["precision"] = precision
        for key in KEYS:
            row.update({f"{key}_{k}": v for k, v in interval([r[key] for r in mine]).items() if k != "n"})
        rows.append(row)
    return rows


def verdicts(rows: list[dict], records: list[dict]) -> list[str]:
    """The best configuration against each other one: Welch's t-test on validation accuracy."""
    out, best = [], rows[0]
    a = [r["val"] for r in records if r["trial"] == best["trial"] and "val" in r]
    for row in rows[1:]:
        b = [r["val"] for r in records if r["trial"] == row["trial"] and "val" in r]
        if len(a) < 2 or len(b) < 2:
            continue
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
        diff = float(np.mean(a) - np.mean(b))
        call = ("a real difference at the 5% level" if p < 0.05 else
                "not distinguishable from noise with these seeds")
        out.append(f"trial {best['trial']} vs trial {row['trial']}: val/acc {diff:+.4f} "
                   f"(Welch t-test p = {p:.3g}): {call}")
    return out


def parity(records: list[dict], precisions: list[str]) -> list[str]:
    """Each configuration's test accuracy in every other precision against the first, paired by
    seed (same split, initial weights and batch order): the mean difference and its 95% interval."""
    out, (ref, *others) = [], precisions
    for number in dict.fromkeys(r["trial"] for r in records):
        by = {(r["seed"], r["precision"]): r["test"] for r in records
              if r["trial"] == number and "test" in r}
        for other in others:
            diffs = [by[s, other] - by[s, ref] for s, p in by if p == ref and (s, other) in by]
            if len(diffs) < 2:
                continue
            d = interval(diffs)
            call = (f"parity (|mean| < {PARITY * 100:g} points)" if abs(d["mean"]) < PARITY else
                    f"NO parity (|mean| >= {PARITY * 100:g} points)")
            out.append(f"trial {number} test/acc {other} - {ref}: mean {d['mean'] * 100:+.2f} points, "
                       f"95% CI [{d['lo'] * 100:+.2f}, {d['hi'] * 100:+.2f}] (paired by seed, "
                       f"{d['n']} seeds): {call}")
    return out


def table(rows: list[dict]) -> list[str]:
    """The summary as Markdown table lines (also printed)."""
    lines = ["| trial | study value | seeds | val/acc mean ± sd | val/acc 95% CI | "
             "test/acc mean ± sd | test/acc 95% CI |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        trial = f"{r['trial']} {r['precision']}" if "precision" in r else r["trial"]
        lines.append(f"| {trial} | {r['study_value']:.4f} | {r['n']} | {r['val_mean']:.4f} ± "
                     f"{r['val_sd']:.4f} | [{r['val_lo']:.4f}, {r['val_hi']:.4f}] | "
                     f"{r['test_mean']:.4f} ± {r['test_sd']:.4f} | "
                     f"[{r['test_lo']:.4f}, {r['test_hi']:.4f}] |")
    return lines


def write(out: Path, rows: list[dict], records: list[dict], lines: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "replicates.json").write_text(json.dumps({"summary": rows, "runs": records}, indent=2))
    (out / "replicates.md").write_text("\n".join(lines) + "\n")
    with open(out / "replicates.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["trial", "seed", "precision", "run", "val", "test"])
        w.writeheader()
        w.writerows(records)


def where_next(args: argparse.Namespace, client: MlflowClient, parent_id: str) -> list[str]:
    """The closing lines: the report that shows the replicates, and the study's run in the UI."""
    experiment_id = client.get_run(parent_id).info.experiment_id
    command = report_command([args.study], storage=mask_url(args.storage),
                             tracking_uri=mask_url(args.tracking_uri))
    return [f"report:  {command} (its study section shows the replicates)",
            f"MLflow:  {where_to_look(args.tracking_uri, experiment_id, parent_id)}"]


def log_summary(client: MlflowClient, parent_id: str, rows: list[dict], out: Path) -> None:
    """The summary under ``replicate/`` on the parent run, where the report picks it up."""
    client.log_dict(parent_id, rows, "replicate/summary.json")
    client.log_artifact(parent_id, str(out / "replicates.md"), "replicate")
    client.log_artifact(parent_id, str(out / "replicates.csv"), "replicate")
