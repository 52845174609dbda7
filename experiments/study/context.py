"""What a worker of a study holds: its configuration and search space (checked before any store
is touched), its MLflow client and Optuna study, and the data it has loaded."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from optuna.storages import RDBStorage

from experiments import failpoints, tracking
from experiments.cli import USAGE_ERRORS, one_line
from experiments.config import Config, compose_config, objectives, to_config
from experiments.stores import mask_url, probe
from experiments.study import identity, runs
from experiments.study.objectives import Objectives
from experiments.study.points import extremes, middle
from experiments.study.quick import quick_form
from experiments.study.samplers import make_pruner, make_sampler
from experiments.study.space import Space, SpaceError, build_space, grid
from experiments.study.storage import open_storage, open_study, serialised
from experiments.training import Data, load_data, precision_of, resolve_device, settle_precision
from mlp import DataError, verify_data
from mlp import prepare as prepare_data


@dataclass
class SweepContext:
    """Everything a worker needs to run trials of one study."""

    cfg: Config  # the base configuration (user overrides, no sampled values)
    overrides: list[str]  # the user's overrides, prepended to each trial's sampled ones
    base: DictConfig
    space: Space
    client: MlflowClient | None = None
    experiment_id: str = ""
    parent_run_id: str = ""
    storage: RDBStorage | None = None
    cache: dict[tuple, Data] = field(default_factory=dict)
    outbox: tracking.Outbox = field(default_factory=tracking.Outbox)  # MLflow calls to send later

    composed: tuple[list[str], DictConfig] | None = None  # self.overrides, composed once
    precision_line: str = ""  # what the study's trials multiply in, and why
    quick_cut: list[str] = field(default_factory=list)  # what the quick form left out, in words
    objectives: Objectives = field(default_factory=list)  # sweep.metric: [(name, direction)]

    @property
    def metric(self) -> str:
        """The score: the study's (first) metric, which ranks and pruning use."""
        return self.objectives[0][0]

    @property
    def multi(self) -> bool:
        """A multi-objective study (several metrics, a Pareto front)."""
        return len(self.objectives) > 1

    def data_for(self, cfg: Config) -> Data:
        """The split (or folds) for ``cfg``, loaded once per process for each distinct data
        setting, its images in the precision's dtype."""
        device = resolve_device(cfg.device)
        precision = precision_of(cfg, device)[0]
        d = cfg.data
        key = (d.root, d.val_size, d.limit_train, d.normalize, d.folds, cfg.seed, cfg.device,
               precision)
        if key not in self.cache:
            if len(self.cache) >= 2:
                self.cache.clear()
            self.cache[key] = load_data(cfg, device, precision)
        return self.cache[key]

    def trial_config(self, sampled: list[str]) -> Config:
        """A trial's config: the sampled values set on the base composed once (Hydra composes
        again only for an override that is not a plain setting)."""
        if self.composed is None or self.composed[0] != self.overrides:
            self.composed = (list(self.overrides), compose_config(self.overrides))
        cfg = to_config(set_leaves(self.composed[1], sampled)
                        or compose_config([*self.overrides, *sampled]))
        if cfg.train.precision == "auto":  # the study's own decision, made once at its creation
            cfg.train.precision = self.cfg.train.precision
        return cfg


_ABSENT = object()
QUICK_CUT_ATTR = "quick.left_out"


def set_leaves(base: DictConfig, overrides: list[str]) -> DictConfig | None:
    """``base`` with plain ``key=value`` overrides of existing settings applied, as composing
    ``base``'s overrides plus these would give, without composing again (0.01 s, not 0.25 s: a
    sweep does this once per trial). None when an override is anything else (a config group,
    ``+key``, ``~key``): compose those."""
    cfg = copy.deepcopy(base)
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        current = OmegaConf.select(cfg, key, default=_ABSENT)
        if (override.type != OverrideType.CHANGE or override.package is not None
                or current is _ABSENT or isinstance(current, DictConfig)):
            return None
        OmegaConf.update(cfg, key, override.value(), merge=False)
    return cfg


def prepare(overrides: list[str]) -> SweepContext:
    """Compose and check everything that needs no storage: config, space, sampler fit."""
    base = compose_config(overrides)
    cfg = to_config(base)
    space, cut = build_space(cfg.search, base), []
    if cfg.sweep.quick:
        capped = {"train.epochs": cfg.train.epochs, "data.limit_train": cfg.data.limit_train,
                  "data.val_size": cfg.data.val_size}
        space, cut = quick_form(space, capped, grid_sampler=cfg.sweep.sampler == "grid",
                                n_trials=cfg.sweep.n_trials)
    if space.is_empty:
        raise SpaceError("the search space is empty: pick one with search=NAME or "
                         "+experiment=NAME (see conf/search/ and conf/experiment/)")
    objs = objectives(cfg.sweep)
    if "val/loss" in dict(objs) and any(d.key == "train.loss" and d.dist for d in space.dims):
        raise SpaceError("sweep.metric=val/loss: the search varies train.loss, and one loss's "
                         "values say nothing of another's; score the trials with sweep.metric=val/acc")
    for ends in extremes(space):  # a range reaching outside the valid values fails here
        to_config(compose_config([*overrides, *ends]))
    try:  # checked once here, not found bad inside every trial
        verify_data(cfg.data.root)
    except DataError:  # missing files are restored (the .gz, Debian's package), as in training
        prepare_data(cfg.data.root)
        verify_data(cfg.data.root)
    if cfg.sweep.sampler == "grid":
        size = math.prod(len(v) for v in grid(space).values())
        if cfg.sweep.n_trials > size:
            print(f"note: the grid has {size} points; sweep.n_trials={cfg.sweep.n_trials} -> {size}")
            cfg.sweep.n_trials = size
    return SweepContext(cfg=cfg, overrides=list(overrides), base=base, space=space, quick_cut=cut,
                        objectives=objs)


def connect(ctx: SweepContext, *, worker: int = 0) -> tuple[optuna.Study, bool]:
    """Check both stores, open the study (refused when it is another experiment), then the
    tracking store; the flag says whether this call created the study. Nothing is created
    before both stores answered and the study's identity matched."""
    cfg = ctx.cfg
    uri, url = cfg.mlflow.tracking_uri, cfg.sweep.storage
    tracking.check_store(uri)  # seconds, not MLflow's minutes of retries
    problem = probe(url)
    if problem:
        raise ConnectionError(f"cannot open sweep.storage={mask_url(url)}: {mask_url(problem)}")
    failpoints.hit("study.create")
    try:
        ctx.storage = open_storage(url, heartbeat=cfg.sweep.heartbeat,
                                   on_stale=lambda s, t: runs.close_stale(ctx, t, s.study_name))
        sampler = make_sampler(cfg.sweep, ctx.space, worker=worker)
        pruner = make_pruner(cfg.sweep, epochs=cfg.train.epochs)
        with serialised(url, cfg.sweep.study_name):  # the creator records the identity first
            study, created = open_study(cfg.sweep, ctx.storage, sampler, pruner)
            attrs = study.user_attrs
            stored, how = attrs.get(identity.IDENTITY_ATTR), ""
            if stored is None and not created:
                stored, how = (_legacy_identity(attrs.get(identity.BASE_ATTR)),
                               " (recomposed from its overrides)")
                print(f"note: study {study.study_name!r} predates recorded identities; "
                      + ("checked against the overrides it was created with" if stored else
                         "this run's settings become its identity"), flush=True)
            ctx.precision_line = settle_study_precision(ctx, stored)
            mine = identity.identity_of(cfg, ctx.space)
            if stored is not None:
                identity.check(study, stored, mine, how=how)
            if identity.IDENTITY_ATTR not in attrs:
                identity.record(study, mine, ctx.overrides)
                if ctx.quick_cut:  # for the report
                    study.set_user_attr(QUICK_CUT_ATTR, ctx.quick_cut)
    except identity.IdentityError:
        raise
    except Exception as exc:  # noqa: BLE001
        reason = one_line(getattr(exc, "orig", None) or exc)  # the driver's words, not SQLAlchemy's
        raise ConnectionError(f"cannot open sweep.storage={mask_url(url)}: "
                              f"{mask_url(reason)[:300]}") from None
    ctx.overrides = identity.rebase(ctx.overrides, study.user_attrs.get(identity.BASE_ATTR))
    try:
        ctx.client, ctx.experiment_id = tracking.client_for(uri, cfg.mlflow.experiment)
    except Exception as exc:  # noqa: BLE001 - whatever the cause, the user needs the URI
        raise ConnectionError(f"cannot use mlflow.tracking_uri={mask_url(uri)}: "
                              f"{mask_url(one_line(exc))[:300]}") from None
    ctx.outbox = tracking.Outbox(uri)
    return study, created


def settle_study_precision(ctx: SweepContext, stored: dict[str, str] | None) -> str:
    """Resolve ``train.precision=auto`` once per study: a study that exists keeps the precision
    its identity recorded (its trials are never mixed); a new one times the middle of its search
    space (:func:`~experiments.study.points.middle`: its median width, depth, activation...) in
    fp32 and bf16. Returns the start line."""
    cfg = ctx.cfg
    if cfg.train.precision == "auto" and stored is not None:
        cfg.train.precision = json.loads({**identity.ADDED, **stored}["train.precision"])
        return f"precision: {cfg.train.precision} (auto: as the study decided when it was created)"
    like = to_config(compose_config([*ctx.overrides, *middle(ctx.space)]))
    return settle_precision(cfg, like=like)


def _legacy_identity(base_overrides: list[str] | None) -> dict[str, str] | None:
    """The identity of a study created before identities were recorded, recomposed from the
    overrides it recorded; None when it recorded none or they no longer compose."""
    if base_overrides is None:
        return None
    try:
        base = compose_config(base_overrides)
        cfg = to_config(base)
        cfg.train.precision = "fp32"  # what every trial of such a study trained in (ADDED)
        return {**identity.identity_of(cfg, build_space(cfg.search, base)), **identity.ADDED}
    except (*USAGE_ERRORS, SpaceError):
        return None
