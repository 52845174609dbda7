"""Minibatch SGD written by hand (the chapter's updater), the optimiser factory and LR schedules."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["SGD", "make_optimizer", "scheduled_lr", "set_lr"]


class SGD:
    """``p <- p - lr * v`` with ``v = momentum * v + (grad + weight_decay * p)``.

    The same update rule as ``torch.optim.SGD`` (no dampening, no Nesterov); with
    momentum 0 and weight decay 0 it is the chapter's ``param -= lr * param.grad``.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        *,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = list(params)
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self._velocity: list[torch.Tensor | None] = [None] * len(self.params)

    @torch.no_grad()
    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay:
                g = g.add(p, alpha=self.weight_decay)
            if self.momentum:
                v = self._velocity[i]
                if v is None:
                    v = self._velocity[i] = g.clone()
                else:
                    v.mul_(self.momentum).add_(g)
                g = v
            p.sub_(g, alpha=self.lr)

    def zero_grad(self) -> None:
        """Drop the gradients (the next backward pass writes fresh ones)."""
        for p in self.params:
            p.grad = None


def make_optimizer(
    name: str,
    params: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> SGD | torch.optim.Optimizer:
    """``sgd`` -> the scratch :class:`SGD`; ``adam`` -> ``torch.optim.Adam``."""
    if name == "sgd":
        return SGD(params, lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimiser {name!r}; expected sgd or adam")


def scheduled_lr(base_lr: float, epoch: int, epochs: int, *, schedule: str = "constant",
                 step_size: int = 5, gamma: float = 0.1) -> float:
    """The learning rate for 0-based ``epoch`` of ``epochs``.

    ``constant``; ``cosine`` anneals from ``base_lr`` towards 0 over the run;
    ``step`` multiplies by ``gamma`` every ``step_size`` epochs.
    """
    if schedule == "constant":
        return base_lr
    if schedule == "cosine":
        return 0.5 * base_lr * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))
    if schedule == "step":
        return base_lr * gamma ** (epoch // max(step_size, 1))
    raise ValueError(f"unknown lr schedule {schedule!r}; expected constant, cosine or step")


def set_lr(optimizer: SGD | torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of either kind of optimiser."""
    if isinstance(optimizer, SGD):
        optimizer.lr = lr
    else:
        for group in optimizer.param_groups:
            group["lr"] = lr
