"""Samplers and pruners by name, seeded from ``sweep.seed``."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler

from experiments.config import CHOICES, SweepConfig
from experiments.study.space import Space, grid

SAMPLERS, PRUNERS = CHOICES["sweep.sampler"], CHOICES["sweep.pruner"]  # checked in validate()


def make_sampler(cfg: SweepConfig, space: Space, *, worker: int = 0) -> BaseSampler:
    """A seeded sampler; workers get ``seed + worker`` so their random streams differ."""
    seed = cfg.seed + worker
    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          n_startup_trials=min(10, max(2, cfg.n_trials // 4)))
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if cfg.sampler == "grid":
        return GridSampler(grid(space), seed=seed)
    if cfg.sampler == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False)
    if cfg.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if cfg.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if cfg.sampler == "nsga2":  # generations of a quarter of the trials (Optuna's 50 is too many here)
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, cfg.n_trials // 4)))
    raise ValueError(f"sweep.sampler={cfg.sampler!r}: expected one of {', '.join(SAMPLERS)}")


def make_pruner(cfg: SweepConfig, *, epochs: int) -> BasePruner:
    """The pruner; ``median`` and ``percentile`` wait for a few finished trials and one epoch."""
    startup = min(5, max(1, cfg.n_trials // 5))
    if cfg.pruner == "none":
        return optuna.pruners.NopPruner()
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=1)
    if cfg.pruner == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=startup, n_warmup_steps=1)
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1),
                                              reduction_factor=3)
    if cfg.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    raise ValueError(f"sweep.pruner={cfg.pruner!r}: expected one of {', '.join(PRUNERS)}")


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` after the last point (a call that only
    works inside ``Study.optimize``); the sweep loop asks :meth:`is_exhausted` instead."""

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                    state: optuna.trial.TrialState, values: Sequence[float] | None) -> None:
        pass


def exhausted(study: optuna.Study) -> bool:
    """True when the study's sampler has no new points (a grid whose every point was tried)."""
    return isinstance(study.sampler, GridSampler) and study.sampler.is_exhausted(study)
