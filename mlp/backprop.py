"""A hand-written backward pass for the scratch MLP: no autograd, the NumPy-style derivation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlp import functional as F
from mlp.model import MLP

__all__ = ["Cache", "forward_cached", "backward", "logits_grad", "loss_and_grads"]


@dataclass
class Cache:
    """What the forward pass keeps for the backward pass: the input to every layer,
    each hidden layer's activation output and its dropout mask (None without dropout), and
    every weight as the layer multiplied it (the parameter itself in fp32, its cast in bf16)."""

    inputs: list[torch.Tensor]
    outputs: list[torch.Tensor]
    masks: list[torch.Tensor | None]
    weights: list[torch.Tensor]


def forward_cached(model: MLP, x: torch.Tensor, *, training: bool = True) -> tuple[torch.Tensor, Cache]:
    """Forward pass that records the intermediate values the backward pass needs; it runs in
    ``x``'s dtype like :meth:`MLP.forward` (bf16 images: bf16 products, on the casts the model
    keeps, and bf16 logits)."""
    h = x.reshape(-1, model.sizes[0])  # (B, 784)
    act = F.ACTIVATIONS[model.activation] if h.dtype == torch.float32 else F.FUSED[model.activation]
    with torch.no_grad():
        *hidden, (w_out, b_out) = model.compute_weights(h.dtype)
        cache = Cache(inputs=[], outputs=[], masks=[], weights=[])
        for w, b in hidden:
            cache.inputs.append(h)
            cache.weights.append(w)
            a = act(torch.mm(h, w).add_(b))  # (B, fan_in) -> (B, fan_out)
            cache.outputs.append(a)
            mask = None
            if training and model.dropout > 0:
                mask = F.dropout_mask(a, model.dropout)
                a = a * mask
            cache.masks.append(mask)
            h = a
        cache.inputs.append(h)
        cache.weights.append(w_out)
        logits = torch.mm(h, w_out).add_(b_out)  # (B, 10)
    return logits, cache


def logits_grad(log_probs: torch.Tensor, y: torch.Tensor, *, loss: str = "cross_entropy") -> torch.Tensor:
    """d(mean loss)/d(logits), (B, C) in fp32, from ``log_softmax(logits)``.

    Cross-entropy: (p - onehot(y)) / B, with p = softmax(logits).
    MSE on the probabilities, L = mean_b sum_c (p_c - onehot_c)^2: with g = dL/dp =
    2 (p - onehot(y)) / B and the softmax Jacobian dp_c/dz_j = p_c (delta_cj - p_j),
    dL/dz_j = p_j (g_j - sum_c g_c p_c).
    """
    with torch.no_grad():
        p = torch.exp(log_probs)  # (B, C) softmax
        if loss == "cross_entropy":
            p.scatter_add_(1, y.view(-1, 1), p.new_full((len(y), 1), -1.0))  # minus one-hot(y)
            return p / len(y)
        if loss == "mse":
            g = 2.0 * (p - F.one_hot(y, p.shape[1]).to(p.dtype)) / len(y)  # (B, C) dL/dp
            return p * (g - (g * p).sum(dim=1, keepdim=True))
    raise ValueError(f"unknown loss {loss!r}; expected {', '.join(F.LOSSES)}")


def backward(model: MLP, cache: Cache, logits: torch.Tensor, y: torch.Tensor, *,
             loss: str = "cross_entropy") -> None:
    """Write d(mean loss)/d(param) into every ``param.grad``.

    The first dZ is the loss's gradient with respect to the logits (:func:`logits_grad`).
    Per layer: dW = H_in^T dZ, db = sum_rows dZ, dH_in = dZ W^T, dZ_prev = dH_in * act'(z),
    with act' written in terms of the layer's output (``functional.DERIVATIVES``).
    In bf16 the products run in bf16 on the cached casts and each gradient lands in the fp32
    ``param.grad``, as autograd does through the casts.
    """
    backward_from_log_probs(model, cache, F.log_softmax(logits), y, loss=loss)


def backward_from_log_probs(model: MLP, cache: Cache, log_probs: torch.Tensor,
                            y: torch.Tensor, *, loss: str = "cross_entropy") -> None:
    """:func:`backward` given ``log_softmax(logits)``, so the loss can reuse it."""
    derivative = F.DERIVATIVES[model.activation]
    low = cache.inputs[-1].dtype != model.W1.dtype  # bf16 products: gradients land in one copy
    casts = model.low_precision(cache.inputs[-1].dtype) if low else None
    with torch.no_grad():
        dz = logits_grad(log_probs, y, loss=loss).to(cache.inputs[-1].dtype)  # the products' dtype
        layers = model.layers()
        for i in range(len(layers) - 1, -1, -1):
            w, b = layers[i]
            h_in = cache.inputs[i]
            if casts is not None:  # into the bf16 gradient buffer, all cast to fp32 at the end
                torch.mm(h_in.T, dz, out=casts.grads[2 * i])  # (fan_in, B) @ (B, fan_out)
                torch.sum(dz, dim=0, out=casts.grads[2 * i + 1])
            else:
                _accumulate(w, h_in.T @ dz)  # (fan_in, B) @ (B, fan_out)
                _accumulate(b, dz.sum(dim=0))
            if i == 0:
                break
            dh = dz @ cache.weights[i].T  # (B, fan_out) @ (fan_out, fan_in)
            if cache.masks[i - 1] is not None:
                dh = dh * cache.masks[i - 1]
            out = cache.outputs[i - 1]
            dz = F.relu_backward(dh, out) if model.activation == "relu" else dh * derivative(out)
        if casts is not None:
            casts.land_in(model.parameters_in_order())


def _accumulate(param: torch.nn.Parameter, grad: torch.Tensor) -> None:
    if param.grad is None:
        param.grad = grad.contiguous()
    else:
        param.grad += grad


def loss_and_grads(model: MLP, x: torch.Tensor, y: torch.Tensor, *,
                   loss: str = "cross_entropy") -> tuple[torch.Tensor, torch.Tensor]:
    """One training forward + manual backward; returns (mean loss, logits), grads in place."""
    logits, cache = forward_cached(model, x, training=model.training)
    with torch.no_grad():
        log_probs = F.log_softmax(logits)  # (B, 10), fp32 even for bf16 logits; loss and gradient
        value = (-log_probs.gather(1, y.view(-1, 1)).mean() if loss == "cross_entropy"
                 else F.LOSSES[loss](logits, y))
    backward_from_log_probs(model, cache, log_probs, y, loss=loss)
    return value, logits
