"""Composing the config with Hydra's compose API: the project's ``conf/`` (and a ``./conf`` of the
user's), unknown keys refused, then plain dataclasses, range-checked."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from experiments.config.checks import ConfigError, apply_quick, validate
from experiments.config.schema import Config

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

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
