"""Experiment plumbing: Hydra configs, Optuna studies and MLflow tracking around ``mlp``."""

import torch

# Saturated tanh/sigmoid layers at high learning rates produce subnormal floats, which run
# 5-15x slower on x86 CPUs. Flushing them to zero must happen before torch starts its
# thread pool: the pool's threads inherit this thread's floating-point mode.
torch.set_flush_denormal(True)

__all__: list[str] = []
