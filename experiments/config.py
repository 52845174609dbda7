"""Structured configs (dataclasses registered with Hydra), composition and range checks."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass
class ModelConfig:
    depth: int = 1
    width: int = 256
    hidden_sizes: list[int] | None = None
    activation: str = "relu"
    init: str = "normal"
    sigma: float = 0.01
    impl: str = "scratch"
    backward: str = "autograd"
    dropout: float = 0.0


@dataclass
class OptimConfig:
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 256
    early_stopping: int = 0
    precision: str = "auto"


@dataclass
class DataConfig:
    root: str = "data"
    val_size: int = 10000
    limit_train: int | None = None


@dataclass
class MlflowConfig:
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "mlp"
    log_model: bool = True


@dataclass
class SweepConfig:
    study_name: str = "mlp-sweep"
    storage: str = "sqlite:///optuna.db"
    sampler: str = "tpe"
    pruner: str = "median"
    n_trials: int = 20
    timeout: float | None = None
    epoch_budget: int | None = None
    metric: str = "val/acc"
    workers: int = 1
    max_failures: int = 10
    seed: int = 0
    heartbeat: int = 20
    quick: bool = False
    retrain_best: bool = True


@dataclass
class LayersSpace:
    depth: str | None = None
    width: str | None = None


@dataclass
class SearchConfig:
    params: dict[str, str] = field(default_factory=dict)
    when: dict[str, str] = field(default_factory=dict)
    layers: LayersSpace = field(default_factory=LayersSpace)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    seed: int = 0
    device: str = "auto"


ConfigStore.instance().store(name="config_schema", node=Config)


class ConfigError(ValueError):
    """A configuration value out of range; the message is one line naming the key."""


CHOICES = {
    "model.activation": ("relu", "sigmoid", "tanh"),
    "model.init": ("normal", "scaled", "he"),
    "model.impl": ("scratch", "concise"),
    "model.backward": ("autograd", "manual"),
    "optim.name": ("sgd", "adam"),
    "optim.schedule": ("constant", "cosine", "step"),
    "train.precision": ("fp32", "bf16", "auto"),
    "device": ("auto", "cpu", "cuda"),
    "sweep.sampler": ("tpe", "random", "grid", "qmc", "cmaes", "gp"),
    "sweep.pruner": ("none", "median", "percentile", "hyperband", "successive_halving"),
    "sweep.metric": ("val/acc", "val/loss"),
}


CONFIG_NAME = "config"


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """Compose ``conf/config.yaml`` with Hydra overrides (Hydra's own errors on bad keys).

    A ``conf/`` folder in the working directory (where sweeps write ``experiment/best/``) is
    searched too, after the project's own. Raises :class:`ConfigError` on a YAML file Hydra
    cannot read (a duplicate key) and on a key added with ``+`` that no setting declares.
    """
    with hydra_session():
        try:
            cfg = compose(CONFIG_NAME, overrides=with_local_conf(list(overrides or [])))
        except yaml.YAMLError as exc:  # Hydra lets the loader's errors through, over many lines
            mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
            where = f"{mark.name}, line {mark.line + 1}" if mark else "a config file"
            raise ConfigError(" ".join(f"bad YAML in {where}: {problem or exc}".split())) from None
    check_keys(cfg)
    return cfg


def check_keys(node: DictConfig, prefix: str = "") -> None:
    """Raise :class:`ConfigError` on a key no settings dataclass declares (``+sweep.n_trails=5``:
    Hydra adds it, the conversion to dataclasses would drop it). Free-form dicts
    (``search.params``, ``search.when``) may hold any key."""
    kind = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(kind):
        return
    known = [f.name for f in dataclasses.fields(kind)]
    for key, value in node.items_ex(resolve=False):
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise ConfigError(f"unknown config key {prefix}{key}{hint}")
        if isinstance(value, DictConfig):
            check_keys(value, f"{prefix}{key}.")


@contextlib.contextmanager
def hydra_session() -> Iterator[Any]:
    """Hydra initialised on the project's ``conf/`` (its compose API) while the block runs; yields
    Hydra's application object (``GlobalHydra.instance().hydra``), which answers ``--cfg`` and
    ``--info`` exactly as ``@hydra.main`` would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        yield GlobalHydra.instance().hydra


def local_conf_dir() -> Path:
    """``./conf``: the project's conf/ when run from the project, else the user's own."""
    return Path.cwd() / "conf"


def with_local_conf(overrides: list[str]) -> list[str]:
    """The overrides with ``./conf`` added to Hydra's search path (when it is not the project's)."""
    local = local_conf_dir().resolve()
    if local == CONF_DIR or not local.is_dir():
        return overrides
    entry, head = f"file://{local}", "hydra.searchpath=["
    for i, item in enumerate(overrides):
        if item.startswith(head) and item.endswith("]"):
            inner = item[len(head):-1]
            if entry in inner:
                return overrides
            joined = f"{head}{inner},{entry}]" if inner.strip() else f"{head}{entry}]"
            return [*overrides[:i], joined, *overrides[i + 1:]]
    return [*overrides, f"{head}{entry}]"]


def to_config(cfg: DictConfig) -> Config:
    """Convert a composed config to plain dataclasses and range-check it."""
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, Config)
    validate(obj)
    return apply_quick(obj)


def load_config(overrides: list[str] | None = None) -> Config:
    """Compose, convert and validate in one call."""
    return to_config(compose_config(overrides))


def _get(cfg: Config, key: str) -> Any:
    value: Any = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def validate(cfg: Config) -> None:
    """Raise :class:`ConfigError` on the first value out of range."""
    for key, allowed in CHOICES.items():
        if _get(cfg, key) not in allowed:
            raise ConfigError(f"{key}={_get(cfg, key)!r}: expected one of {', '.join(allowed)}")
    at_least_one = ["model.depth", "model.width", "train.epochs", "train.batch_size"]
    for key in at_least_one:
        if _get(cfg, key) < 1:
            raise ConfigError(f"{key}={_get(cfg, key)}: must be >= 1")
    m, o, d = cfg.model, cfg.optim, cfg.data
    if m.hidden_sizes is not None and any(h < 1 for h in m.hidden_sizes):
        raise ConfigError(f"model.hidden_sizes={m.hidden_sizes}: every size must be >= 1")
    checks = [
        (o.lr > 0, f"optim.lr={o.lr}: must be > 0"),
        (0 <= o.momentum < 1, f"optim.momentum={o.momentum}: must be in [0, 1)"),
        (o.weight_decay >= 0, f"optim.weight_decay={o.weight_decay}: must be >= 0"),
        (m.sigma > 0, f"model.sigma={m.sigma}: must be > 0"),
        (0 <= m.dropout < 1, f"model.dropout={m.dropout}: must be in [0, 1)"),
        (0 < d.val_size < 60000, f"data.val_size={d.val_size}: must be in 1..59999"),
        (d.limit_train is None or 1 <= d.limit_train <= 60000 - d.val_size,
         f"data.limit_train={d.limit_train}: must be in 1..{60000 - d.val_size} "
         f"(the training images left after data.val_size={d.val_size})"),
        (cfg.sweep.n_trials >= 1, f"sweep.n_trials={cfg.sweep.n_trials}: must be >= 1"),
        (cfg.sweep.workers >= 1, f"sweep.workers={cfg.sweep.workers}: must be >= 1"),
        (cfg.sweep.heartbeat >= 1, f"sweep.heartbeat={cfg.sweep.heartbeat}: must be >= 1 second"),
        (cfg.sweep.max_failures >= 0, "sweep.max_failures: must be >= 0"),
        (cfg.sweep.timeout is None or cfg.sweep.timeout > 0, "sweep.timeout: must be > 0 seconds"),
        (cfg.sweep.epoch_budget is None or cfg.sweep.epoch_budget >= 1,
         "sweep.epoch_budget: must be >= 1 trained epoch (null = no limit)"),
        (cfg.train.early_stopping >= 0, "train.early_stopping: must be >= 0 (0 = off)"),
        (not (m.backward == "manual" and m.impl == "concise"),
         "model.backward=manual: needs model.impl=scratch (the hand-written backward pass "
         "works on the explicit W_i, b_i)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


QUICK = {"limit_train": 10000, "val_size": 2000, "epochs": 3, "n_trials": 6, "timeout": 300}


def quick_name(study_name: str) -> str:
    return study_name if study_name.endswith("-quick") else f"{study_name}-quick"


def apply_quick(cfg: Config) -> Config:
    """``sweep.quick=true``: a smoke-test form of any run or study (small data, few epochs, at
    most 6 trials and 5 minutes), in a study of its own (``<study_name>-quick``)."""
    if cfg.sweep.quick:
        cfg.sweep.study_name = quick_name(cfg.sweep.study_name)
        cfg.data.limit_train = min(cfg.data.limit_train or QUICK["limit_train"], QUICK["limit_train"])
        cfg.data.val_size = min(cfg.data.val_size, QUICK["val_size"])
        cfg.train.epochs = min(cfg.train.epochs, QUICK["epochs"])
        cfg.sweep.n_trials = min(cfg.sweep.n_trials, QUICK["n_trials"])
        cfg.sweep.timeout = min(cfg.sweep.timeout or QUICK["timeout"], QUICK["timeout"])
        cfg.mlflow.log_model = False
    return cfg


def flatten(cfg: Config | DictConfig) -> dict[str, Any]:
    """Every config leaf as ``{"model.width": 256, ...}`` (lists kept whole)."""
    container = OmegaConf.to_container(OmegaConf.structured(cfg) if isinstance(cfg, Config)
                                       else cfg, resolve=True)
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = node

    walk(container, "")
    return out


def to_yaml(cfg: Config) -> str:
    """The resolved configuration as YAML."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
