"""Points that stand for a whole search space: its two ends (composed and checked before any
study exists) and its middle (where a study times ``auto`` precision)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from experiments.study.space import Space, override_text


def extremes(space: Space) -> list[list[str]]:
    """Two override lists: every dimension at its lowest, then at its highest value.

    Composing and validating both catches a range that leaves the config's valid values
    (``optim.lr: interval(0, 1)``) before any study exists.
    """
    return [_point(space, lambda dist: _bounds(dist)[0]), _point(space, lambda dist: _bounds(dist)[-1])]


def middle(space: Space) -> list[str]:
    """Overrides that put every dimension at its middle: a categorical's middle choice, a range's
    midpoint (geometric on a log scale, on the step's grid). A study times ``auto`` precision on
    this point, the one that represents its space best in a single shape."""
    return _point(space, _middle)


def _point(space: Space, value_of: Callable[[BaseDistribution], Any]) -> list[str]:
    """Overrides that set every dimension (and the per-layer widths) to ``value_of`` its range."""
    overrides = [f"{d.key}={override_text(d.fixed if d.dist is None else value_of(d.dist))}"
                 for d in space.dims]
    if space.depth is not None:
        depth, width = value_of(space.depth), value_of(space.width)
        overrides.append(f"model.hidden_sizes=[{','.join([str(width)] * int(depth))}]")
    return overrides


def _middle(dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[len(dist.choices) // 2]
    low, high = dist.low, dist.high  # type: ignore[attr-defined]
    mid = math.sqrt(low * high) if dist.log else (low + high) / 2  # type: ignore[attr-defined]
    step = getattr(dist, "step", None)
    if step:
        mid = low + round((mid - low) / step) * step
    return int(round(mid)) if isinstance(dist, IntDistribution) else mid


def _bounds(dist: BaseDistribution) -> tuple[Any, Any]:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[0], dist.choices[-1]
    return dist.low, dist.high  # type: ignore[attr-defined]
