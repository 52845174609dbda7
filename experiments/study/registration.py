"""The finish's registration stage: each retrained model as a version of the study's registered
model, the alias ``best`` on the best trial's, found again after a kill instead of made twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from experiments import registry
from experiments.study.context import SweepContext


def register(ctx: SweepContext, study: optuna.Study, picks: list[tuple[str, optuna.trial.FrozenTrial]],
             best: int, summary: dict[str, Any], *, save: Callable[[], None],
             crash_point: Callable[[], None]) -> None:
    """Each retrained model as a version of the study's registered model (``mlflow.register``,
    else the study's name), the alias ``best`` moved to the best trial's; the versions on the
    parent run's tag ``registered``; ``save`` records the summary after each. A version made
    before a kill is found again by its run, never made twice."""
    name = ctx.cfg.mlflow.register or registry.model_name(study.study_name)
    made, versions = summary.get("models", {}), summary.setdefault(registry.SUMMARY_VERSIONS, {})
    for why, t in picks:
        run = made.get(str(t.number))
        if not run or not run["model"]:  # not retrained, or no model logged
            continue
        tags = registry.version_tags(ctx.trial_config(t.user_attrs.get("overrides", [])),
                                     ctx.client.get_run(run["run"]), study=study.study_name,
                                     trial=t.number, front=why if ctx.multi else "")
        version = registry.register(ctx.client, name, run["model"], run["run"], tags=tags, alias=None)
        crash_point()  # registered, not yet recorded: the next run finds it by its run
        versions[str(t.number)] = version.version
        save()  # the summary, with this version, in the study
    crash_point()  # every version recorded, the alias not yet moved
    if str(best) not in versions:
        return
    ctx.client.set_registered_model_alias(name, registry.ALIAS, versions[str(best)])
    uris = [registry.version_uri(name, v) + (f" (alias {registry.ALIAS})" if int(n) == best else "")
            for n, v in versions.items()]
    ctx.client.set_tag(ctx.parent_run_id, "registered", ", ".join(uris))
    summary[registry.SUMMARY_NAME] = name
