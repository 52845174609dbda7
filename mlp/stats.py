"""Per-layer statistics of a scratch MLP on one batch: what each layer outputs and the gradient
each weight receives, the numbers that show why an initialisation trains or stalls."""

from __future__ import annotations

import torch

from mlp.backprop import backward, forward_cached
from mlp.model import MLP

__all__ = ["PROBES", "layer_stats", "probe_batches"]

PROBES = 11  # points of the first epoch at which the statistics are taken, the first batch included


def probe_batches(n_batches: int, probes: int = PROBES) -> set[int]:
    """The 0-based batch indices of the probes: evenly spaced from the first batch (the weights as
    initialised) to the last one of the epoch."""
    if n_batches <= probes:
        return set(range(n_batches))
    return {round(i * (n_batches - 1) / (probes - 1)) for i in range(probes)}


@torch.no_grad()
def layer_stats(model: MLP, x: torch.Tensor, y: torch.Tensor, *,
                loss: str = "cross_entropy") -> dict[str, float]:
    """Mean and standard deviation, for layer l = 1..L, of its output on the batch (a hidden
    layer's activation, the last layer's logits) and of d(loss)/dW_l, at the current weights.

    Keys ``layer{l}/act_mean``, ``layer{l}/act_std``, ``layer{l}/grad_mean``,
    ``layer{l}/grad_std``. Computed with the hand-written backward pass and without dropout, so
    nothing draws random numbers; the model's own gradients are left as they were.
    """
    params = list(model.parameters())
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    try:
        logits, cache = forward_cached(model, x, training=False)
        backward(model, cache, logits, y, loss=loss)
        outputs = [*cache.outputs, logits]  # (B, H_l) per hidden layer, then (B, 10)
        out: dict[str, float] = {}
        for i, ((w, _), a) in enumerate(zip(model.layers(), outputs, strict=True), start=1):
            a, g = a.float(), w.grad
            out.update({f"layer{i}/act_mean": a.mean().item(), f"layer{i}/act_std": a.std().item(),
                        f"layer{i}/grad_mean": g.mean().item(), f"layer{i}/grad_std": g.std().item()})
        return out
    finally:
        for p, g in zip(params, saved, strict=True):
            p.grad = g
