"""The MLP with explicit per-layer parameters, and its concise ``nn.Sequential`` twin."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mlp import functional as F
from mlp.casts import Casts

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
    """A weight in the dtype its layer multiplies in (itself when that is its own dtype), as a
    fresh cast that autograd differentiates (the concise model's and the tests' path; the scratch
    MLP casts into buffers it keeps, :meth:`MLP.compute_weights`)."""
    if w.dtype == dtype:
        return w
    return w.to(dtype)


class _LowAffine(torch.autograd.Function):
    """``h @ wc + bc`` on a layer's low-precision casts: one GEMM and one add forward, two GEMMs
    and a column sum backward, the weight's and bias's gradients written into ``grads`` when
    given (the buffer of :class:`mlp.casts.Casts`, landed in fp32 with one copy for all
    layers)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, h: torch.Tensor, wc: torch.Tensor,
                bc: torch.Tensor, grads: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        ctx.save_for_backward(h, wc)
        ctx.grads = grads
        return torch.mm(h, wc).add_(bc)  # (B, fan_in) @ (fan_in, fan_out) + (fan_out,)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 dz: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, wc = ctx.saved_tensors
        dh = torch.mm(dz, wc.T) if ctx.needs_input_grad[0] else None  # (B, fan_in)
        gw, gb = ctx.grads if ctx.grads is not None else (None, None)
        dw = torch.mm(h.T, dz, out=gw)  # (fan_in, fan_out)
        db = torch.sum(dz, dim=0, out=gb)
        return dh, dw, db, None


def affine(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
           grads: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``h @ w + b`` in ``h``'s dtype, as the chapter writes it when ``w`` is in that dtype and no
    gradient buffers are given. Otherwise on bf16 casts of ``w`` and ``b`` (made here when they
    are fp32) by :class:`_LowAffine`, the gradients written into ``grads`` when given."""
    if h.dtype == w.dtype and grads is None:
        return h @ w + b  # (B, fan_in) @ (fan_in, fan_out) + (fan_out,)
    return _LowAffine.apply(h, as_compute(w, h.dtype), as_compute(b, h.dtype), grads)


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
        self._casts: dict[torch.dtype, Casts] = {}
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=False), start=1):
            w = init_weight(fan_in, fan_out, init=init, sigma=sigma, generator=gen)
            setattr(self, f"W{i}", nn.Parameter(w))
            setattr(self, f"b{i}", nn.Parameter(torch.zeros(fan_out)))

    def __getstate__(self) -> dict:
        """Pickled (a logged model, a deep copy) without the bf16 casts: they are remade."""
        return {**self.__dict__, "_casts": {}}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__({"_casts": {}, **state})  # a model pickled before the casts existed

    def layers(self) -> list[tuple[nn.Parameter, nn.Parameter]]:
        """``[(W1, b1), ..., (WL, bL)]``, input layer first."""
        n = len(self.sizes) - 1
        return [(getattr(self, f"W{i}"), getattr(self, f"b{i}")) for i in range(1, n + 1)]

    def parameters_in_order(self) -> list[nn.Parameter]:
        """``[W1, b1, ..., WL, bL]``."""
        return [p for layer in self.layers() for p in layer]

    def low_precision(self, dtype: torch.dtype) -> Casts:
        """The buffers a ``dtype`` step multiplies in and writes gradients to (:mod:`mlp.casts`),
        made on first use and again when the parameters move to another device."""
        casts = self._casts.get(dtype)
        if casts is None or casts.device != self.W1.device:
            casts = self._casts[dtype] = Casts(self.parameters_in_order(), dtype)
        return casts

    def compute_weights(self, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every layer's ``(W, b)`` as this step multiplies them: the parameters themselves in
        their own dtype; in another (bf16), their casts in buffers the model keeps from step to
        step (:meth:`low_precision`), refreshed with one copy where bf16 is native, through
        autograd where it records (traced by ``torch.export``: casts in the graph)."""
        layers = self.layers()
        if dtype == layers[0][0].dtype:
            return list(layers)
        if torch.compiler.is_compiling():
            return [(as_compute(w, dtype), as_compute(b, dtype)) for w, b in layers]
        casts, params = self.low_precision(dtype), self.parameters_in_order()
        values = casts.cast(params) if torch.is_grad_enabled() else casts.refresh(params)
        return list(zip(values[::2], values[1::2], strict=True))

    def gradient_buffers(self, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        """Per layer, where a ``dtype`` step writes its weight's and bias's gradients: None in
        the parameters' own dtype, without autograd recording, or traced."""
        if dtype == self.W1.dtype or not torch.is_grad_enabled() or torch.compiler.is_compiling():
            return [None] * len(self.sizes[1:])
        grads = self.low_precision(dtype).grads
        return list(zip(grads[::2], grads[1::2], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(-1, self.sizes[0])  # (B, 784)
        act = F.ACTIVATIONS[self.activation] if h.dtype == torch.float32 else F.FUSED[self.activation]
        *hidden, last = zip(self.compute_weights(h.dtype), self.gradient_buffers(h.dtype), strict=True)
        for (w, b), grads in hidden:
            h = act(affine(h, w, b, grads))  # (B, fan_in) -> (B, fan_out), h's dtype
            h = F.dropout(h, self.dropout, training=self.training)
        (w, b), grads = last
        return affine(h, w, b, grads)  # (B, H_last) -> (B, 10) logits


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
