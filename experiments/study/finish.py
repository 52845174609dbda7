"""The end of a study, done by exactly one process: Optuna's plots, the best parameters and
configuration on the parent run, and the best configuration retrained and tested once."""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import optuna
import yaml
from matplotlib import pyplot as plt
from omegaconf import OmegaConf
from optuna.trial import TrialState

from experiments import tracking
from experiments.cli import one_line
from experiments.config import Config, local_conf_dir
from experiments.stores import mask_url
from experiments.study.budget import counts, done
from experiments.study.context import SweepContext
from experiments.study.parent import best_trial
from experiments.study.samplers import exhausted
from experiments.study.storage import serialised
from experiments.training import tracked_run


def should_finish(study: optuna.Study, cfg: Config, *, spent: bool) -> bool:
    """True for exactly one process once the budget is done or spent (time, epochs, grid;
    workers may finish together); a later run that adds trials finishes the study again."""
    c = counts(study)
    n_done = done(c)
    spent = spent or exhausted(study)
    if c[TrialState.RUNNING] or (not spent and (n_done < cfg.sweep.n_trials or c[TrialState.WAITING])):
        return False
    with serialised(cfg.sweep.storage, study.study_name):
        if study.user_attrs.get("finalized_at") == n_done:
            return False
        token = uuid.uuid4().hex
        study.set_user_attr("finalizer", token)
        time.sleep(0.3)
        if study.user_attrs.get("finalizer") != token:
            return False
        study.set_user_attr("finalized_at", n_done)
    return True


def finish(ctx: SweepContext, study: optuna.Study) -> dict[str, float]:
    """:func:`finalize`, unless the tracking server is unreachable: then the study stays open."""
    try:
        if ctx.outbox.queue:
            raise ConnectionError("the tracking server did not answer")
        return finalize(ctx, study, retrain=ctx.cfg.sweep.retrain_best)
    except Exception as exc:  # noqa: BLE001 - only an unreachable server is expected here
        if not tracking.transient(exc):
            raise
        study.set_user_attr("finalized_at", None)  # the next run of the command finalises
        print(f"warning: every trial is done in Optuna, but the study's parent MLflow run could not "
              f"be finished ({mask_url(one_line(exc))[:200]}); rerun the same command once "
              "the tracking server answers", file=sys.stderr, flush=True)
        return {}


def already_finished(study: optuna.Study) -> bool:
    """True when the study was finished with the trials it holds now."""
    return study.user_attrs.get("finalized_at") == done(counts(study))


def experiment_yaml(cfg: Config, study: str, trial: int, value: float) -> str:
    """The best configuration as a Hydra experiment file (``# @package _global_``)."""
    keep = {k: v for k, v in json.loads(json.dumps(_as_dict(cfg))).items()
            if k in ("model", "optim", "train", "data", "seed", "device")}
    head = (f"# @package _global_\n# Best trial {trial} of study {study!r} "
            f"(validation score {value:.4f}); re-run with\n"
            f"#   python -m experiments.train +experiment=best/{study}\n")
    return head + yaml.safe_dump(keep, sort_keys=False)


def _as_dict(cfg: Config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


def finalize(ctx: SweepContext, study: optuna.Study, *, retrain: bool = True) -> dict[str, float]:
    """Plots, best parameters and config on the parent; retrain the best and test it once."""
    client, run_id = ctx.client, ctx.parent_run_id
    log_plots(ctx, study)
    best = best_trial(study)
    if best is None:
        print("no trial completed: nothing to choose; see the failed trials' errors in MLflow")
        tracking.end_run(client, run_id, tracking.FINISHED)
        return {}
    cfg = ctx.trial_config(best.user_attrs.get("overrides", []))
    text = experiment_yaml(cfg, study.study_name, best.number, best.value)
    client.log_dict(run_id, best.params, "best/params.json")
    client.log_text(run_id, text, "best/experiment.yaml")
    path = local_conf_dir() / "experiment" / "best" / f"{study.study_name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    c = counts(study)
    summary = {"best/trial": best.number, "trials/complete": c[TrialState.COMPLETE],
               "trials/pruned": c[TrialState.PRUNED], "trials/failed": c[TrialState.FAIL]}
    if retrain:
        _, final = tracked_run(cfg, parent_run_id=run_id, run_name=f"best-trial-{best.number}",
                               quiet=True)
        summary.update({"test/acc": final["test/acc"], "test/loss": final["test/loss"],
                        "retrain/val_acc_best": final["val/acc_best"]})
    tracking.log_metrics(client, run_id, summary, step=best.number)
    tracking.end_run(client, run_id, tracking.FINISHED)
    print(f"best trial {best.number}: {ctx.cfg.sweep.metric} {best.value:.4f} {best.params}")
    if "test/acc" in summary:
        print(f"retrained once and tested: test/acc {summary['test/acc']:.4f}")
    print(f"reproduce: python -m experiments.train +experiment=best/{study.study_name}")
    return summary


def log_plots(ctx: SweepContext, study: optuna.Study) -> None:
    """Optuna's history, parallel coordinates, importances and slice plots, as HTML and PNG."""
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vis_mpl

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return
    plots = {"history": "plot_optimization_history", "parallel_coordinates":
             "plot_parallel_coordinate", "slice": "plot_slice"}
    if len(done) >= 2 and len(done[0].params) >= 1:
        plots["importances"] = "plot_param_importances"
    parts = []
    # Optuna's matplotlib plots switch the global style to ggplot: keep that to these figures.
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), plt.rc_context():
        warnings.simplefilter("ignore")  # experimental-API and flat-axis notes from the plots
        for name, fn in plots.items():
            try:
                fig = getattr(vis, fn)(study)
                parts.append(f"<h2>{name}</h2>" + fig.to_html(full_html=False,
                                                              include_plotlyjs=not parts))
                ax = getattr(vis_mpl, fn)(study)
                mpl_fig = ax.flat[0].figure if hasattr(ax, "flat") else ax.figure
                mpl_fig.savefig(Path(tmp, f"{name}.png"), dpi=110, bbox_inches="tight")
                plt.close("all")
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                print(f"note: optuna plot {name} skipped ({exc})")
        title = f"Study {study.study_name}"
        Path(tmp, "plots.html").write_text(  # plotly inlined once: opens offline
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{''.join(parts)}</body></html>")
        ctx.client.log_artifacts(ctx.parent_run_id, tmp, "optuna")
