"""Points that stand for a whole search space: its two ends (composed and checked before any
study exists) and its middle (where a study times ``auto`` precision)."""

from __future__ import annotations

import math
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from experiments.study.space import Space, override_text


def extremes(space: Space) -> list[list[str]]:
    """Two override lists: every dimension at its lowest, then at its highest value.

    Composing and validating both catches a range that leaves the config's valid values
    (``optim.lr: interval(0, 1)``) before any study exists.
    """
    out = []
    for pick in (0, -1):
        overrides = []
        for d in space.dims:
            value = d.fixed if d.dist is None else _bounds(d.dist)[pick]
            overrides.append(f"{d.key}={override_text(value)}")
        if space.depth is not None:
            depth, width = _bounds(space.depth)[pick], _bounds(space.width)[pick]
            overrides.append(f"model.hidden_sizes=[{','.join([str(width)] * int(depth))}]")
        out.append(overrides)
    return out


def middle(space: Space) -> list[str]:
    """Overrides that put every dimension at its middle: a categorical's middle choice, a range's
    midpoint (geometric on a log scale, on the step's grid). A study times ``auto`` precision on
    this point, the one that represents its space best in a single shape."""
    overrides = [f"{d.key}={override_text(d.fixed if d.dist is None else _middle(d.dist))}"
                 for d in space.dims]
    if space.depth is not None:
        depth, width = _middle(space.depth), _middle(space.width)
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
