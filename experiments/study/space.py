"""Search spaces: Hydra sweep expressions in ``conf/search/*.yaml`` turned into Optuna calls.

The only module that calls ``trial.suggest_*``. A space has three parts:

- ``params``: ``{config key: expression}`` with Hydra's override grammar, as the Hydra Optuna
  sweeper reads it: ``choice(a,b,...)``, ``range(start,stop[,step])`` (stop excluded, as in
  Hydra), ``interval(low,high)``, ``tag(log, interval(low,high))``, ``int(interval(low,high))``;
  a plain value fixes the key for every trial.
- ``when``: ``{config key: "other.key=value[|value...]"}``: sample that key only in trials where
  the condition holds (e.g. momentum only for SGD); otherwise it keeps its configured value.
  The other key is sampled first; a condition no trial can meet (a typo) is refused.
- ``layers``: ``depth`` and ``width`` expressions: sample a depth, then one width per layer,
  giving ``model.hidden_sizes``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from experiments.config import SearchConfig

GRAMMAR = ("expected a value, choice(a,b,...), range(start,stop[,step]), interval(low,high), "
           "tag(log, interval(low,high)) or int(interval(low,high))")
_PARSER = OverridesParser.create()
_MISSING = object()


class SpaceError(ValueError):
    """A malformed search space; the message is one line naming the key."""


@dataclass(frozen=True)
class Condition:
    key: str
    values: tuple[str, ...]

    def holds(self, chosen: dict[str, Any], base: DictConfig) -> bool:
        value = chosen.get(self.key, OmegaConf.select(base, self.key, default=None))
        return _as_text(value) in self.values


@dataclass(frozen=True)
class Dimension:
    """One searched key: its Optuna distribution, or a fixed value (``dist`` None)."""

    key: str
    expression: str
    dist: BaseDistribution | None
    fixed: Any = None
    condition: Condition | None = None


@dataclass(frozen=True)
class Space:
    dims: tuple[Dimension, ...]
    depth: BaseDistribution | None = None
    width: BaseDistribution | None = None
    layers: tuple[str, str] | None = None  # the depth and width expressions as written

    @property
    def is_empty(self) -> bool:
        return not any(d.dist for d in self.dims) and self.depth is None

    def describe(self) -> dict[str, str]:
        """``{key: expression}`` of everything searched, for logs and reports."""
        out = {d.key: d.expression + (f" when {d.condition.key}={'|'.join(d.condition.values)}"
                                      if d.condition else "") for d in self.dims}
        if self.layers is not None:
            out["layers.depth"], out["layers.width"] = self.layers
        return out


def _as_text(value: Any) -> str:
    if value is None:
        return "null"  # as Hydra reads and writes it
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_expression(key: str, expression: Any) -> tuple[BaseDistribution | None, Any]:
    """``(distribution, None)`` for a sweep expression, ``(None, value)`` for a plain value."""
    text = _as_text(expression).strip()
    try:
        override = _PARSER.parse_override(f"{key}={text}")
    except Exception:  # noqa: BLE001 - Hydra raises several types for grammar errors
        raise SpaceError(f"search key {key!r}: cannot parse {text!r}; {GRAMMAR}") from None
    if not override.is_sweep_override():
        return None, override.value()
    return _distribution(key, text, override), None


def _distribution(key: str, text: str, override: Any) -> BaseDistribution:
    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        values = list(override.sweep_iterator())
        return CategoricalDistribution([v if isinstance(v, str | int | float | bool)
                                        else _as_text(v).replace(" ", "") for v in values])
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise SpaceError(f"search key {key!r}: {text} is empty")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return IntDistribution(values[0], values[-1], step=int(value.step))
        return CategoricalDistribution(values)
    if isinstance(value, IntervalSweep):
        low, high, log = value.start, value.end, "log" in value.tags
        if not low < high:
            raise SpaceError(f"search key {key!r}: {text} needs low < high")
        if log and low <= 0:
            raise SpaceError(f"search key {key!r}: {text} is log-scaled and needs low > 0")
        if isinstance(low, int) and isinstance(high, int):
            return IntDistribution(low, high, log=log)
        return FloatDistribution(float(low), float(high), log=log)
    raise SpaceError(f"search key {key!r}: unsupported sweep {text!r}; {GRAMMAR}")


def _condition(key: str, text: str, base: DictConfig) -> Condition:
    other, sep, values = str(text).partition("=")
    if not sep or not values:
        raise SpaceError(f"search.when[{key!r}]: {text!r} should read OTHER.KEY=VALUE[|VALUE...]")
    _check_key(base, other.strip(), where=f"search.when[{key!r}]")
    return Condition(other.strip(), tuple(v.strip() for v in values.split("|")))


def _check_key(base: DictConfig, key: str, *, where: str) -> None:
    if OmegaConf.select(base, key, default=_MISSING) is not _MISSING:
        return
    parent = key.rpartition(".")[0]
    node = OmegaConf.select(base, parent, default=None) if parent else base
    near = [f"{parent}.{k}" if parent else str(k) for k in node] if isinstance(node, DictConfig) else []
    close = difflib.get_close_matches(key, near, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise SpaceError(f"{where}: key {key!r} is not in the config ({hint}see python -m "
                     "experiments.train --help for the keys)")


def _ordered(dims: list[Dimension]) -> tuple[Dimension, ...]:
    """Each conditional dimension after the key its condition reads, so :func:`sample` tests the
    condition on that key's sampled value, not its configured one."""
    by_key, out = {d.key: d for d in dims}, {}

    def visit(d: Dimension, path: tuple[str, ...] = ()) -> None:
        if d.key in path:
            raise SpaceError(f"search.when[{d.key!r}]: the conditions form a loop")
        if d.condition is not None and d.condition.key in by_key and d.condition.key not in out:
            visit(by_key[d.condition.key], (*path, d.key))
        out.setdefault(d.key, d)

    for d in dims:
        visit(d)
    return tuple(out.values())


def _check_condition(d: Dimension, dims: list[Dimension], base: DictConfig) -> None:
    """Refuse a condition no trial can meet (``optim.name=sgdd``): the other key takes its searched
    values, and its configured one where it is not searched in every trial."""
    if d.condition is None:
        return
    key, values = d.condition.key, d.condition.values
    other = next((o for o in dims if o.key == key), None)
    configured = _as_text(OmegaConf.select(base, key))
    kept = other is None or other.condition is not None
    if (kept and configured in values) or (other and any(_can_take(other, v) for v in values)):
        return
    seen = [f"{key} is {configured!r} {'when' if other else 'and'} not searched"] if kept else []
    seen += [f"searched values: {other.expression}"] if other else []
    raise SpaceError(f"search key {d.key!r}: its condition {key}={'|'.join(values)} can never "
                     f"hold ({'; '.join(seen)})")


def _can_take(d: Dimension, text: str) -> bool:
    """Whether a trial can give ``d`` the value written ``text`` (any number inside a range)."""
    if isinstance(d.dist, IntDistribution | FloatDistribution):
        try:
            number = int(text) if isinstance(d.dist, IntDistribution) else float(text)
        except ValueError:
            return False
        low, step = d.dist.low, d.dist.step
        return low <= number <= d.dist.high and not (step and (number - low) % step)
    choices = d.dist.choices if isinstance(d.dist, CategoricalDistribution) else [d.fixed]
    return text in {_as_text(c) for c in choices}


def build_space(search: SearchConfig, base: DictConfig) -> Space:
    """Parse and check a search config against the composed base config."""
    dims = []
    for key, expression in search.params.items():
        _check_key(base, key, where="search.params")
        dist, fixed = parse_expression(key, expression)
        cond = _condition(key, search.when[key], base) if key in search.when else None
        dims.append(Dimension(key, _as_text(expression), dist, fixed, cond))
    for key in search.when:
        if key not in search.params:
            raise SpaceError(f"search.when[{key!r}]: the key is not in search.params")
    for d in dims:
        _check_condition(d, dims, base)
    depth = width = None
    if (search.layers.depth is None) != (search.layers.width is None):
        raise SpaceError("search.layers: give both depth and width expressions, or neither")
    if search.layers.depth is not None:
        depth, _ = parse_expression("layers.depth", search.layers.depth)
        width, _ = parse_expression("layers.width", search.layers.width)
        if not isinstance(depth, IntDistribution | CategoricalDistribution) or width is None:
            raise SpaceError("search.layers: depth must be range(...) or choice(...) of ints, "
                             "width a sweep expression")
    layers = None if depth is None else (str(search.layers.depth), str(search.layers.width))
    return Space(_ordered(dims), depth, width, layers)


def sample(space: Space, trial: optuna.Trial, base: DictConfig) -> tuple[list[str], dict[str, Any]]:
    """Suggest every active dimension; return Hydra overrides and the sampled values."""
    chosen: dict[str, Any] = {}
    overrides: list[str] = []
    for d in space.dims:
        if d.condition is not None and not d.condition.holds(chosen, base):
            continue
        value = d.fixed if d.dist is None else _suggest(trial, d.key, d.dist)
        chosen[d.key] = value
        overrides.append(f"{d.key}={override_text(value)}")
    if space.depth is not None:
        depth = int(_suggest(trial, "layers.depth", space.depth))
        widths = [int(_suggest(trial, f"layers.width_{i}", space.width)) for i in range(1, depth + 1)]
        chosen["model.hidden_sizes"] = widths
        overrides.append(f"model.hidden_sizes=[{','.join(map(str, widths))}]")
    return overrides, chosen


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def override_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ",".join(override_text(v) for v in value) + "]"
    return _as_text(value)


def grid(space: Space) -> dict[str, list[Any]]:
    """The search space for ``GridSampler``: every dimension must be discrete and unconditional."""
    if space.depth is not None:
        raise SpaceError("sweep.sampler=grid cannot search search.layers (per-layer widths); "
                         "use model.hidden_sizes: choice([..],[..]) or another sampler")
    out: dict[str, list[Any]] = {}
    for d in space.dims:
        if d.dist is None:
            continue
        if d.condition is not None:
            raise SpaceError(f"sweep.sampler=grid cannot search conditional key {d.key!r}")
        if isinstance(d.dist, CategoricalDistribution):
            out[d.key] = list(d.dist.choices)
        elif isinstance(d.dist, IntDistribution) and not d.dist.log:
            out[d.key] = list(range(d.dist.low, d.dist.high + 1, d.dist.step))
        else:
            raise SpaceError(f"sweep.sampler=grid needs choice(...) or range(...) for every key; "
                             f"{d.key!r} is {d.expression}")
    return out

