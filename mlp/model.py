"""The MLP with explicit per-layer parameters, and its concise ``nn.Sequential`` twin."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mlp import functional as F

__all__ = ["MLP", "Standardize", "affine", "build_model", "hidden_sizes_for", "init_weight",
           "count_parameters"]

INITS = ("normal", "scaled", "he")


def init_weight(
    fan_in: int, fan_out: int, *, init: str, sigma: float, generator: torch.Generator
) -> torch.Tensor:
    """A (fan_in, fan_out) weight drawn from N(0, s^2).

    ``normal``: s = sigma (the chapter's 0.01); ``scaled``: s = 1/sqrt(fan_in);
    ``he``: s = sqrt(2/fan_in).
    """
    scale = {"normal": sigma, "scaled": 1.0 / math.sqrt(fan_in), "he": math.sqrt(2.0 / fan_in)}
    if init not in scale:
        raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
    return torch.randn(fan_in, fan_out, generator=generator) * scale[init]


def hidden_sizes_for(depth: int, width: int, hidden_sizes: Sequence[int] | None = None) -> list[int]:
    """The hidden layer sizes: an explicit list wins over ``depth`` layers of ``width``."""
    if hidden_sizes:
        return [int(h) for h in hidden_sizes]
    return [int(width)] * int(depth)


def as_compute(w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A weight in the dtype its layer multiplies in (itself when that is its own dtype).

    The bf16 copy is laid out column-major (a transposed copy), the layout CPUs without native
    bf16 multiply 6-7x faster; native kernels take either. Autograd sends its gradient back
    through the cast, so the fp32 weight receives an fp32 gradient.
    """
    if w.dtype == dtype:
        return w
    return w.t().to(dtype).contiguous().t()  # (fan_in, fan_out), strides (1, fan_in)


def affine(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``h @ w + b`` in ``h``'s dtype: fp32 as the chapter writes it; for bf16 inputs the
    weight's cast and the bias in bf16, fused into one addmm."""
    if h.dtype == w.dtype:
        return h @ w + b  # (B, fan_in) @ (fan_in, fan_out) + (fan_out,)
    return torch.addmm(b.to(h.dtype), h, as_compute(w, h.dtype))


class MLP(nn.Module):
    """A multilayer perceptron written out by hand: ``H = act(X @ W_i + b_i)`` per layer.

    Parameters are named as in the chapter: ``W1, b1`` for the first layer up to
    ``W{L}, b{L}`` for the output layer. Weights are (fan_in, fan_out), kept in fp32; a bf16
    input makes every layer multiply in bf16 (:func:`affine`) and the logits come out in bf16.
    """

    def __init__(
        self,
        num_inputs: int,
        num_outputs: int,
        hidden_sizes: Sequence[int],
        *,
        activation: str = "relu",
        init: str = "normal",
        sigma: float = 0.01,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if activation not in F.ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected relu, sigmoid or tanh")
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        self.sizes = [num_inputs, *hidden_sizes, num_outputs]
        self.activation = activation
        self.dropout = float(dropout)
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=False), start=1):
            w = init_weight(fan_in, fan_out, init=init, sigma=sigma, generator=gen)
            setattr(self, f"W{i}", nn.Parameter(w))
            setattr(self, f"b{i}", nn.Parameter(torch.zeros(fan_out)))

    def layers(self) -> list[tuple[nn.Parameter, nn.Parameter]]:
        """``[(W1, b1), ..., (WL, bL)]``, input layer first."""
        n = len(self.sizes) - 1
        return [(getattr(self, f"W{i}"), getattr(self, f"b{i}")) for i in range(1, n + 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.ACTIVATIONS[self.activation]
        h = x.reshape(-1, self.sizes[0])  # (B, 784)
        *hidden, (w_out, b_out) = self.layers()
        for w, b in hidden:
            h = act(affine(h, w, b))  # (B, fan_in) -> (B, fan_out), in the input's dtype
            h = F.dropout(h, self.dropout, training=self.training)
        return affine(h, w_out, b_out)  # (B, H_last) -> (B, 10) logits


class Standardize(nn.Module):
    """``(x - mean) / std``: a standardised model's input scaling, put in front of it so that the
    pair takes pixels in [0, 1] like every other model."""

    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.mean, self.std = float(mean), float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _concise(
    sizes: list[int], *, activation: str, init: str, sigma: float, dropout: float,
    generator: torch.Generator,
) -> nn.Sequential:
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        linear = nn.Linear(fan_in, fan_out)
        with torch.no_grad():  # same draws as the scratch model; nn.Linear stores (out, in)
            linear.weight.copy_(init_weight(fan_in, fan_out, init=init, sigma=sigma,
                                            generator=generator).T)
            linear.bias.zero_()
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(acts[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def build_model(
    num_inputs: int,
    num_outputs: int,
    hidden_sizes: Sequence[int],
    *,
    impl: str = "scratch",
    activation: str = "relu",
    init: str = "normal",
    sigma: float = 0.01,
    dropout: float = 0.0,
    seed: int = 0,
) -> nn.Module:
    """Build the scratch ``MLP`` or its concise twin with identical initial weights."""
    gen = torch.Generator().manual_seed(seed)
    if impl == "scratch":
        return MLP(num_inputs, num_outputs, hidden_sizes, activation=activation, init=init,
                   sigma=sigma, dropout=dropout, generator=gen)
    if impl == "concise":
        if activation not in F.ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected relu, sigmoid or tanh")
        sizes = [num_inputs, *hidden_sizes, num_outputs]
        return _concise(sizes, activation=activation, init=init, sigma=sigma, dropout=dropout,
                        generator=gen)
    raise ValueError(f"unknown model impl {impl!r}; expected scratch or concise")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
