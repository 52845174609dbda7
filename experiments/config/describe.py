"""A configuration in words: the settings that differ from the defaults, as a short run name and
as the one command that reproduces a run."""

from __future__ import annotations

import functools
import shlex
from typing import Any

from experiments.config.compose import flatten, load_config
from experiments.config.schema import Config

# Bookkeeping and where things are stored do not change what is trained.
NOT_TRAINING = ("mlflow.", "sweep.", "search.")
RUNTIME = ("data.root", "device")

# Short forms for run names: "w1024 d2 lr0.3 tanh adam". A key mapped to "" shows its value only.
SHORT = {"model.width": "w", "model.depth": "d", "model.hidden_sizes": "h", "optim.lr": "lr",
         "model.activation": "", "optim.name": "", "train.precision": "", "train.loss": "",
         "model.init": "init-", "model.impl": "", "model.backward": "bw-", "model.sigma": "sigma",
         "model.dropout": "drop", "optim.momentum": "mom", "optim.weight_decay": "wd",
         "optim.schedule": "", "train.batch_size": "bs", "train.epochs": "ep",
         "train.early_stopping": "es", "data.limit_train": "n", "data.val_size": "val",
         "data.normalize": "", "data.folds": "k", "seed": "seed"}
NAME_LENGTH = 60


def number(value: Any) -> str:
    """A value for people: floats to 4 significant digits, lists joined with x."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "x".join(number(v) for v in value)
    text = str(value)
    if text.startswith("[") and text.endswith("]"):  # an override's list, "[512,128]"
        return "x".join(number(v.strip()) for v in text[1:-1].split(",") if v.strip())
    if isinstance(value, str) and any(c in text for c in ".e") and text[0] in "0123456789.-":
        try:
            return f"{float(text):.4g}"  # an override's float, "0.24558276572568763"
        except ValueError:
            pass
    return text


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 worker``, ``2 workers`` (``many`` for an irregular plural)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def short_name(values: dict[str, Any], *, limit: int = NAME_LENGTH) -> str:
    """``{"model.width": 1024, "optim.lr": 0.30001}`` as ``w1024 lr0.3``, cut to ``limit``."""
    parts = []
    for key, value in values.items():
        label = SHORT.get(key, key.rsplit(".", 1)[-1] + "=")
        parts.append(f"{label}{number(value)}")
    text = " ".join(parts)
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


@functools.lru_cache(maxsize=2)
def _defaults(quick: bool) -> dict[str, str]:
    return {k: _word(v) for k, v in flatten(load_config(["sweep.quick=true"] if quick else [])).items()}


def changes(cfg: Config | dict[str, Any]) -> dict[str, str]:
    """The training settings of ``cfg`` (a config, or its flattened leaves as a run's params)
    that differ from the defaults (those of the quick form for a quick run), as override values.
    Bookkeeping (``sweep.*``, ``mlflow.*``), ``data.root`` and ``device`` are left out."""
    leaves = _leaves(cfg)
    out = {}
    for key, default in _defaults(_quick(leaves)).items():
        if key.startswith(NOT_TRAINING) or key in RUNTIME or key not in leaves:
            continue
        value = _word(leaves[key])
        if value != default:
            out[key] = value
    return out


def label(cfg: Config) -> str:
    """What sets ``cfg`` apart from the defaults, short: ``w1024 lr0.3`` (``quick w1024 ...`` in
    the quick form, ``defaults`` when nothing does)."""
    text = short_name(changes(cfg))
    if cfg.sweep.quick:
        text = f"quick {text}".strip()
    return text or "defaults"


def reproduce(cfg: Config | dict[str, Any]) -> str:
    """The one command that trains ``cfg`` again on its own: ``python -m experiments.train``
    with every training setting that differs from the defaults (exact values, not rounded)."""
    quick = ["sweep.quick=true"] if _quick(_leaves(cfg)) else []
    return " ".join(["python -m experiments.train",
                     *map(shlex.quote, [*quick, *(f"{k}={v}" for k, v in changes(cfg).items())])])


def report_command(studies: list[str], *, storage: str, tracking_uri: str) -> str:
    """``python -m experiments.report STUDY ...``, naming the stores when they are not the
    defaults (``storage`` and ``tracking_uri`` as they may be shown: passwords masked)."""
    defaults = Config()
    words = ["python -m experiments.report", *map(shlex.quote, studies)]
    if storage != defaults.sweep.storage:
        words.append(f"--storage {shlex.quote(storage)}")
    if tracking_uri != defaults.mlflow.tracking_uri:
        words.append(f"--tracking-uri {shlex.quote(tracking_uri)}")
    return " ".join(words)


def _leaves(cfg: Config | dict[str, Any]) -> dict[str, Any]:
    return flatten(cfg) if isinstance(cfg, Config) else cfg


def _quick(leaves: dict[str, Any]) -> bool:
    """Whether the run was in the quick form (``sweep.quick`` as a value or as a logged param)."""
    return _word(leaves.get("sweep.quick", False)) == "true"


def _word(value: Any) -> str:
    """A leaf as a Hydra override writes it (a run's params hold ``str(value)``)."""
    text = str(value)
    return {"None": "null", "True": "true", "False": "false"}.get(text, text.replace(", ", ","))
