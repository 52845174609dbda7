"""A hand-written backward pass for the scratch MLP: no autograd, the NumPy-style derivation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlp import functional as F
from mlp.model import MLP, as_compute

__all__ = ["Cache", "forward_cached", "backward", "loss_and_grads"]


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
    ``x``'s dtype like :meth:`MLP.forward` (bf16 images: bf16 products and logits)."""
    act = F.ACTIVATIONS[model.activation]
    h = x.reshape(-1, model.sizes[0])  # (B, 784)
    cache = Cache(inputs=[], outputs=[], masks=[], weights=[])
    *hidden, (w_out, b_out) = model.layers()
    with torch.no_grad():
        for w, b in hidden:
            cache.inputs.append(h)
            cache.weights.append(as_compute(w, h.dtype))
            a = act(torch.addmm(b.to(h.dtype), h, cache.weights[-1]))  # (B, fan_in) -> (B, fan_out)
            cache.outputs.append(a)
            mask = None
            if training and model.dropout > 0:
                mask = F.dropout_mask(a, model.dropout)
                a = a * mask
            cache.masks.append(mask)
            h = a
        cache.inputs.append(h)
        cache.weights.append(as_compute(w_out, h.dtype))
        logits = torch.addmm(b_out.to(h.dtype), h, cache.weights[-1])  # (B, 10)
    return logits, cache


def _activation_grad(name: str, out: torch.Tensor) -> torch.Tensor:
    """d act / d z written in terms of the activation's output a = act(z)."""
    if name == "relu":
        return (out > 0).to(out.dtype)
    if name == "sigmoid":
        return out * (1.0 - out)
    return 1.0 - out * out  # tanh


def backward(model: MLP, cache: Cache, logits: torch.Tensor, y: torch.Tensor) -> None:
    """Write d(mean cross-entropy)/d(param) into every ``param.grad``.

    Softmax + cross-entropy: dL/dlogits = (softmax(logits) - onehot(y)) / B.
    Per layer: dW = H_in^T dZ, db = sum_rows dZ, dH_in = dZ W^T, dZ_prev = dH_in * act'(z).
    In bf16 the products run in bf16 on the cached casts and each gradient lands in the fp32
    ``param.grad``, as autograd does through the casts.
    """
    backward_from_log_probs(model, cache, F.log_softmax(logits), y)


def backward_from_log_probs(model: MLP, cache: Cache, log_probs: torch.Tensor,
                            y: torch.Tensor) -> None:
    """:func:`backward` given ``log_softmax(logits)``, so the loss can reuse it."""
    with torch.no_grad():
        dz = torch.exp(log_probs)  # (B, 10) softmax, fp32
        dz.scatter_add_(1, y.view(-1, 1), dz.new_full((len(y), 1), -1.0))  # minus one-hot(y)
        dz /= len(y)
        dz = dz.to(cache.inputs[-1].dtype)  # the products' dtype
        layers = model.layers()
        for i in range(len(layers) - 1, -1, -1):
            w, b = layers[i]
            h_in = cache.inputs[i]
            _accumulate(w, h_in.T @ dz)  # (fan_in, B) @ (B, fan_out)
            _accumulate(b, dz.sum(dim=0))
            if i == 0:
                break
            dh = dz @ cache.weights[i].T  # (B, fan_out) @ (fan_out, fan_in)
            if cache.masks[i - 1] is not None:
                dh = dh * cache.masks[i - 1]
            dz = dh * _activation_grad(model.activation, cache.outputs[i - 1])


def _accumulate(param: torch.nn.Parameter, grad: torch.Tensor) -> None:
    grad = grad.to(param.dtype)  # bf16 products -> the fp32 gradient
    if param.grad is None:
        param.grad = grad.contiguous()
    else:
        param.grad += grad


def loss_and_grads(model: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One training forward + manual backward; returns (mean loss, logits), grads in place."""
    logits, cache = forward_cached(model, x, training=model.training)
    with torch.no_grad():
        log_probs = F.log_softmax(logits)  # (B, 10), fp32 even for bf16 logits; loss and gradient
        loss = -log_probs.gather(1, y.view(-1, 1)).mean()
    backward_from_log_probs(model, cache, log_probs, y)
    return loss, logits
