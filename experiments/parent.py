"""The study's parent MLflow run: created once, found again through the study's user attrs,
and, when the study ends, given the plots, the best configuration and its test accuracy."""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from pathlib import Path

import optuna
from matplotlib import pyplot as plt
from optuna.trial import TrialState

from experiments import tracking
from experiments.config import Config, local_conf_dir, to_yaml
from experiments.study import counts
from experiments.trial import SweepContext, trial_config

PARENT_ATTR = "mlflow_parent_run_id"


class SweepError(RuntimeError):
    """A study that cannot go on (mismatched settings, a parent run that never appears)."""


def attach_parent(ctx: SweepContext, study: optuna.Study, *, created: bool) -> str:
    """Create the parent run (the study's creator) or find it (everyone else) and mark it RUNNING."""
    attrs = study.user_attrs
    if not created:
        if attrs.get("metric", ctx.cfg.sweep.metric) != ctx.cfg.sweep.metric:
            raise SweepError(f"study {study.study_name!r} optimises {attrs['metric']}, not "
                             f"sweep.metric={ctx.cfg.sweep.metric}; use another sweep.study_name")
        for _ in range(120):  # a creator on another worker may still be setting it up
            run_id = study.user_attrs.get(PARENT_ATTR)
            if run_id:
                ctx.client.update_run(run_id, status="RUNNING")
                return run_id
            time.sleep(0.5)
        raise SweepError(f"study {study.study_name!r} has no parent MLflow run; was it created "
                         "by another tool? use another sweep.study_name")
    cfg = ctx.cfg
    run = ctx.client.create_run(ctx.experiment_id, run_name=f"study-{study.study_name}", tags={
        "kind": "study", "optuna.study": study.study_name})
    run_id = run.info.run_id
    params = {"study_name": study.study_name, "storage": tracking.mask_url(cfg.sweep.storage),
              "sampler": cfg.sweep.sampler, "pruner": cfg.sweep.pruner, "metric": cfg.sweep.metric,
              "direction": study.direction.name.lower(), "seed": cfg.sweep.seed,
              **{f"space.{k}": v for k, v in ctx.space.describe().items()}}
    ctx.client.log_batch(run_id, params=[tracking.Param(k, tracking.param_value(v)[:6000])
                                         for k, v in params.items()], synchronous=True)
    ctx.client.log_dict(run_id, ctx.space.describe(), "search_space.json")
    ctx.client.log_text(run_id, tracking.mask_url(to_yaml(cfg)), "base_config.yaml")
    study.set_user_attr("metric", cfg.sweep.metric)
    # replicate/report recompose trials from these; a password in a URL is not kept
    study.set_user_attr("base_overrides", [tracking.mask_url(o) for o in ctx.overrides])
    study.set_user_attr("tracking_uri", tracking.mask_url(cfg.mlflow.tracking_uri))
    study.set_user_attr("experiment_id", ctx.experiment_id)
    study.set_user_attr(PARENT_ATTR, run_id)
    return run_id


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def experiment_yaml(cfg: Config, study: str, trial: int, value: float) -> str:
    """The best configuration as a Hydra experiment file (``# @package _global_``)."""
    keep = {k: v for k, v in json.loads(json.dumps(_as_dict(cfg))).items()
            if k in ("model", "optim", "train", "data", "seed", "device")}
    import yaml

    head = (f"# @package _global_\n# Best trial {trial} of study {study!r} "
            f"(validation score {value:.4f}); re-run with\n"
            f"#   python -m experiments.train +experiment=best/{study}\n")
    return head + yaml.safe_dump(keep, sort_keys=False)


def _as_dict(cfg: Config) -> dict:
    from omegaconf import OmegaConf

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
    cfg = trial_config(ctx, best.user_attrs.get("overrides", []))
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
        from experiments.train import run as train_run

        final = train_run(cfg, parent_run_id=run_id, run_name=f"best-trial-{best.number}",
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
