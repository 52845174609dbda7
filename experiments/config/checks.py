"""What a composed config must satisfy beyond its types (choices, ranges, combinations), and the
quick form of any run or study."""

from __future__ import annotations

import re
from typing import Any

import torch

from experiments.config.schema import Config

TRAIN_IMAGES = 60000  # Fashion-MNIST's training file


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
    "train.loss": ("cross_entropy", "mse"),
    "data.normalize": ("none", "standardize"),
    "device": ("auto", "cpu", "cuda"),
    "sweep.sampler": ("tpe", "random", "grid", "qmc", "cmaes", "gp", "nsga2"),
    "sweep.pruner": ("none", "median", "percentile", "hyperband", "successive_halving"),
}
# What a trial records and can be scored on, with its natural direction: the best validation
# accuracy or loss over its epochs, the model's parameters, the mean seconds of its epochs.
METRICS = {"val/acc": "maximize", "val/loss": "minimize", "model/num_params": "minimize",
           "perf/epoch_seconds": "minimize"}
DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}
MULTI_SAMPLERS = ("nsga2", "tpe", "random", "grid", "qmc")  # Optuna's multi-objective samplers
MODEL_NAME_BAD = re.compile(r"[/:'\"]")  # MLflow refuses / and : in a registered model's name;
# a quote would break the registry's search filter


def register_problem(cfg: Config) -> str | None:
    """Why ``mlflow.register`` cannot name a registered model; None if it can (or is unset)."""
    name = cfg.mlflow.register
    if name is None:
        return None
    if not name.strip():
        return "mlflow.register is empty: give the registered model a name, or leave it unset"
    if MODEL_NAME_BAD.search(name):
        return f"mlflow.register={name!r}: a registered model's name cannot hold / : ' or \""
    if not cfg.mlflow.log_model:
        return f"mlflow.register={name!r}: needs mlflow.log_model=true (there is no model to register)"
    return None


def objectives(sweep: Any) -> list[tuple[str, str]]:
    """``sweep.metric`` as ``[(metric, direction), ...]``: one name, or a list of names, each with
    an optional ``:max`` or ``:min`` (else the metric's natural direction)."""
    raw = [sweep.metric] if isinstance(sweep.metric, str) else list(sweep.metric)
    out = []
    for item in raw:
        name, _, how = str(item).partition(":")
        if name not in METRICS:
            raise ConfigError(f"sweep.metric: {name!r} is not a metric the trials record; expected "
                              f"one or a list of {', '.join(METRICS)}")
        if how and how not in DIRECTIONS:
            raise ConfigError(f"sweep.metric: {item!r}: unknown direction {how!r}; expected "
                              f"{name}:max or {name}:min")
        out.append((name, DIRECTIONS[how] if how else METRICS[name]))
    names = [n for n, _ in out]
    if not out or len(set(names)) < len(names):
        raise ConfigError(f"sweep.metric={raw}: give one metric, or a list of different ones")
    if len(out) > 1 and sweep.pruner != "none":
        raise ConfigError(f"sweep.pruner={sweep.pruner}: Optuna's pruners cannot prune a study of "
                          f"several metrics ({', '.join(names)}); use sweep.pruner=none")
    if len(out) > 1 and sweep.sampler not in MULTI_SAMPLERS:
        raise ConfigError(f"sweep.sampler={sweep.sampler}: cannot search several metrics; use one "
                          f"of {', '.join(MULTI_SAMPLERS)}")
    if names[0] not in ("val/acc", "val/loss"):
        raise ConfigError(f"sweep.metric: the first metric is the score trials are ranked and "
                          f"retrained by; make it val/acc or val/loss, not {names[0]}")
    return out


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
    objectives(cfg.sweep)
    if cfg.sweep.retrain_front < 1:
        raise ConfigError(f"sweep.retrain_front={cfg.sweep.retrain_front}: must be >= 1")
    at_least_one = ["model.depth", "model.width", "train.epochs", "train.batch_size"]
    for key in at_least_one:
        if _get(cfg, key) < 1:
            raise ConfigError(f"{key}={_get(cfg, key)}: must be >= 1")
    m, o, d = cfg.model, cfg.optim, cfg.data
    pool = d.limit_train or TRAIN_IMAGES  # the images k folds split
    if m.hidden_sizes is not None and any(h < 1 for h in m.hidden_sizes):
        raise ConfigError(f"model.hidden_sizes={m.hidden_sizes}: every size must be >= 1")
    checks = [
        (o.lr > 0, f"optim.lr={o.lr}: must be > 0"),
        (0 <= o.momentum < 1, f"optim.momentum={o.momentum}: must be in [0, 1)"),
        (o.weight_decay >= 0, f"optim.weight_decay={o.weight_decay}: must be >= 0"),
        (m.sigma > 0, f"model.sigma={m.sigma}: must be > 0"),
        (0 <= m.dropout < 1, f"model.dropout={m.dropout}: must be in [0, 1)"),
        (0 < d.val_size < TRAIN_IMAGES, f"data.val_size={d.val_size}: must be in 1..59999"),
        (d.limit_train is None or 1 <= d.limit_train <= TRAIN_IMAGES - d.val_size,
         f"data.limit_train={d.limit_train}: must be in 1..{TRAIN_IMAGES - d.val_size} "
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
        (cfg.device != "cuda" or torch.cuda.is_available(),
         "device=cuda: torch sees no CUDA device here; use device=auto or device=cpu"),
        (d.folds == 0 or d.folds >= 2, f"data.folds={d.folds}: must be 0 (off) or >= 2"),
        (d.folds <= pool, f"data.folds={d.folds}: more folds than the {pool} training images "
                          "they split" + (" (data.limit_train)" if d.limit_train else "")),
        (register_problem(cfg) is None, register_problem(cfg) or ""),
        (not (cfg.train.layer_stats and m.impl == "concise"),
         "train.layer_stats=true: needs model.impl=scratch (the statistics are read off the "
         "explicit W_i, b_i)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


QUICK = {"limit_train": 10000, "val_size": 2000, "epochs": 3, "n_trials": 6, "timeout": 300}


def quick_name(study_name: str) -> str:
    return study_name if study_name.endswith("-quick") else f"{study_name}-quick"


def apply_quick(cfg: Config) -> Config:
    """``sweep.quick=true``: a smoke-test form of any run or study (small data, few epochs, at
    most 6 trials and 5 minutes, no model logged unless ``mlflow.register`` asks for one), in a
    study of its own (``<study_name>-quick``)."""
    if cfg.sweep.quick:
        cfg.sweep.study_name = quick_name(cfg.sweep.study_name)
        cfg.data.limit_train = min(cfg.data.limit_train or QUICK["limit_train"], QUICK["limit_train"])
        cfg.data.val_size = min(cfg.data.val_size, QUICK["val_size"])
        cfg.train.epochs = min(cfg.train.epochs, QUICK["epochs"])
        cfg.sweep.n_trials = min(cfg.sweep.n_trials, QUICK["n_trials"])
        cfg.sweep.timeout = min(cfg.sweep.timeout or QUICK["timeout"], QUICK["timeout"])
        cfg.mlflow.log_model = cfg.mlflow.register is not None  # a model only when one is to be registered
    return cfg
