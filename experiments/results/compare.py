"""MLflow runs side by side: select runs (experiments, whole studies, an MLflow filter, kinds),
one pandas table of their identity, best score, params and final metrics, the learning curves and
each varied parameter against the score, and the command that reproduces a run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from experiments.cli import UsageError
from experiments.results import plots as rp
from experiments.results.data import history

HIDDEN = ("sampled.", "optuna.trial_number", "data.root", "mlflow.", "sweep.study_name",
          "sweep.storage", "search.", "device")
SHOWN_KEYS = 8  # varied parameters printed on the terminal (the CSV has them all)


def experiment_ids(client: MlflowClient, names: list[str]) -> list[str]:
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


# The kinds of run this project records (the tag ``kind``), as ``--kind`` names them.
KINDS = ("trial", "retrain", "replicate", "train", "study", "activations")


def kinds_of(text: str) -> set[str]:
    """``--kind``'s comma-separated kinds; an unknown one is refused."""
    kinds = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise UsageError(f"--kind {','.join(unknown)}: unknown run kind; expected some of "
                         f"{', '.join(KINDS)}")
    return kinds


def select(client: MlflowClient, *, experiments: list[str], studies: list[str], text: str,
           kinds: set[str], max_runs: int) -> list[Run]:
    """The runs asked for; every check (experiment, filter, study) happens here."""
    ids = experiment_ids(client, experiments)
    search(client, ids, text, 1)  # a malformed filter fails before anything else
    parents = {r.info.run_id: r.data.tags.get("optuna.study", "")
               for r in search(client, ids, "tags.kind = 'study'", 50000)}
    missing = [n for n in studies if n not in parents.values()]
    if missing:
        raise UsageError(f"no study {', '.join(map(repr, missing))} in experiment(s) "
                         f"{', '.join(experiments)}; known: "
                         f"{', '.join(sorted(set(parents.values()))) or 'none'}")
    if not studies:
        runs = search(client, ids, text, max_runs)
    else:
        runs = []
        for parent in [pid for pid, name in parents.items() if name in studies]:
            mine = f"tags.mlflow.parentRunId = '{parent}'"
            runs += search(client, ids, f"{text} and {mine}" if text else mine, max_runs)
    for r in runs:  # retrained best and replicates carry no study tag: take their parent's
        r.data.tags.setdefault("optuna.study", parents.get(r.data.tags.get("mlflow.parentRunId"), ""))
    return [r for r in runs if (r.data.tags.get("kind") in kinds if kinds
                                else r.data.tags.get("kind") != "study")][:max_runs]


def score(client: MlflowClient, run: Run, metric: str) -> float | None:
    """The run's best ``metric`` over its epochs (``val/acc_best`` when logged)."""
    logged = run.data.metrics.get(f"{metric}_best")
    if logged is not None:
        return logged
    values = [m.value for m in client.get_metric_history(run.info.run_id, metric)]
    if not values:
        return None
    return min(values) if metric.endswith("loss") else max(values)


def table(client: MlflowClient, runs: list[Run], metric: str) -> pd.DataFrame:
    """One row per run, best first: identity, score, every final metric and param."""
    rows = []
    for r in runs:
        tags = r.data.tags
        rows.append({"run_id": r.info.run_id, "run": r.info.run_name,
                     "study": tags.get("optuna.study", ""), "kind": tags.get("kind", ""),
                     "trial": tags.get("optuna.trial", ""),
                     "state": tags.get("optuna.state", r.info.status),
                     f"best {metric}": score(client, r, metric),
                     **{f"metrics.{k}": v for k, v in r.data.metrics.items()},
                     **{f"params.{k}": v for k, v in r.data.params.items()}})
    df = pd.DataFrame(rows)
    return df.sort_values(f"best {metric}", ascending=metric.endswith("loss"), na_position="last",
                          kind="stable", ignore_index=True)


def varied_keys(df: pd.DataFrame) -> list[str]:
    """Parameters whose value differs across the rows (bookkeeping keys left out), the model's
    own settings first."""
    keys = [c[len("params."):] for c in df.columns if c.startswith("params.")]
    keys = sorted((k for k in keys if not k.startswith(HIDDEN)),
                  key=lambda k: (k.startswith("sweep."), k))
    return [k for k in keys if df[f"params.{k}"].nunique(dropna=True) > 1]


def terminal_table(df: pd.DataFrame, keys: list[str], metric: str, n: int) -> str:
    """The first ``n`` rows as a plain fixed-width table: scores to 4 decimals, params to 4
    significant digits, long values cut."""
    shown = keys[:SHOWN_KEYS]
    view = pd.DataFrame({
        "run": df["run"], "study": df["study"], "kind": df["kind"], "state": df["state"],
        f"best {metric}": df[f"best {metric}"].map(_score),
        "test/acc": (df["metrics.test/acc"] if "metrics.test/acc" in df else
                     pd.Series([None] * len(df))).map(_score),
        **{k: df[f"params.{k}"].map(_cell) for k in shown}}).head(n)
    text = view.to_string(index=False, justify="left")
    lines = [line.rstrip() for line in text.splitlines()]
    if len(df) > n:
        lines.append(f"... {len(df) - n} more rows in the CSV")
    return "\n".join(lines)


def _score(v: object) -> str:
    return "-" if v is None or pd.isna(v) else f"{float(v):.4f}"  # type: ignore[arg-type]


def _cell(text: object) -> str:
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return ""
    text = str(text)
    try:
        return f"{float(text):.4g}" if "." in text or "e" in text else text[:16]
    except ValueError:
        return text[:16]


def figures(client: MlflowClient, df: pd.DataFrame, keys: list[str], metric: str,
            curves: int) -> dict[str, Figure]:
    """``curves.png``: learning curves of the best runs; ``params.png``: each varied parameter
    against the score."""
    made, score_of = {}, f"best {metric}"
    scored = df[df[score_of].notna()]
    top = distinct_curves(client, df, score_of, curves)
    if top:
        made["curves.png"] = rp.curves_overlay(top, title=f"the best {len(top)} runs by {metric} "
                                               "(solid = training, dashed = validation)")
    keys = [k for k in keys if not k.startswith("sweep.")]  # the table shows those; plots: the model's
    points = [rp.Point({k: d[f"params.{k}"] for k in keys if pd.notna(d.get(f"params.{k}"))},
                       d[score_of], label=d["study"] or d["kind"]) for _, d in scored.iterrows()]
    if keys and points:
        axes = [rp.axis_for(k, [p.params[k] for p in points if k in p.params]) for k in keys]
        made["params.png"] = rp.param_scores(points, axes, metric=score_of,
                                             title=f"{score_of} against each parameter that varies")
    return made


def distinct_curves(client: MlflowClient, df: pd.DataFrame, score_of: str,
                    n: int) -> dict[str, list[dict[str, float]]]:
    """The learning curves of the ``n`` best runs whose curves differ: a retrained best trains
    what its trial trained and draws the same curves, so it is one entry, labelled with both."""
    top: dict[str, list[dict[str, float]]] = {}
    seen: dict[tuple, str] = {}
    for _, d in df.iterrows():
        if len(top) == n:
            break
        hist = history(client, d["run_id"])
        if not hist:
            continue
        label = f"{d['study'] or d['kind']}/{d['run']} ({_score(d[score_of])})"
        key = tuple(tuple(sorted(h.items())) for h in hist)
        if key in seen:  # the same curves under another run: name it on the first one's line
            first = seen[key]
            top[f"{first} = {d['run']}"] = top.pop(first)
            seen[key] = f"{first} = {d['run']}"
            continue
        seen[key], top[label] = label, hist
    return top


def save(figs: dict[str, Figure], out: Path) -> list[Path]:
    """Write each figure as a PNG in ``out``."""
    for name, fig in figs.items():
        fig.savefig(out / name, dpi=100, bbox_inches="tight")
    return [out / name for name in figs]
