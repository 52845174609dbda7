"""The quick form of a study (``sweep.quick=true``): what its search leaves out, decided and said
before the study starts."""

from __future__ import annotations

import math
from typing import Any

from optuna.distributions import CategoricalDistribution

from experiments.study.space import Dimension, Space, grid


def quick_form(space: Space, capped: dict[str, Any], *, grid_sampler: bool,
               n_trials: int) -> tuple[Space, list[str]]:
    """The quick form's space and what it leaves out, in words.

    A key the quick form caps (``capped``: key -> its quick value) is not searched: every value
    above the cap would train as the cap while its trial recorded the value it was not. A grid
    with more points than the quick form's trials keeps evenly spread points of its longest
    axes, both ends included, so the cut is known and said before the study starts."""
    cut = [f"{d.key}={capped[d.key]} in every trial, not searched over {d.expression}"
           for d in space.dims if d.key in capped and d.dist is not None]
    dims = [d for d in space.dims if not (d.key in capped and d.dist is not None)]
    if grid_sampler:
        points = grid(Space(tuple(dims)))
        keep = {k: len(v) for k, v in points.items()}
        while keep and math.prod(keep.values()) > n_trials and max(keep.values()) > 1:
            keep[max(keep, key=keep.__getitem__)] -= 1
        for i, d in enumerate(dims):
            values = points.get(d.key, [])
            if d.key not in keep or keep[d.key] == len(values):
                continue
            kept = _spread(values, keep[d.key])
            left = [v for v in values if v not in kept]
            dims[i] = Dimension(d.key, f"choice({', '.join(map(str, kept))})",
                                CategoricalDistribution(kept))
            cut.append(f"the grid's {d.key} runs {len(kept)} of its {len(values)} points, leaving "
                       f"out {', '.join(map(str, left))} (drop sweep.quick for the whole grid)")
    return Space(tuple(dims), space.depth, space.width, space.layers), cut


def _spread(values: list[Any], n: int) -> list[Any]:
    """``n`` of ``values``, evenly spread, both ends included (the middle one when ``n`` is 1)."""
    if n == 1:
        return [values[len(values) // 2]]
    return [values[round(i * (len(values) - 1) / (n - 1))] for i in range(n)]
