"""The MLP with explicit per-layer parameters, and its concise ``nn.Sequential`` twin."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mlp import functional as F
from mlp.precision import native_bf16

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
    """``h @ wc + bc`` on a layer's low-precision casts (made this step, kept by the model), with
    the gradients going to the fp32 parameters ``w`` and ``b``: one GEMM and one add forward,
    two GEMMs and a column sum backward, each result cast once into the parameter's dtype."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, h: torch.Tensor, w: torch.Tensor,
                b: torch.Tensor, wc: torch.Tensor, bc: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(h, wc)
        ctx.dtypes = (w.dtype, b.dtype)
        return torch.mm(h, wc).add_(bc)  # (B, fan_in) @ (fan_in, fan_out) + (fan_out,)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 dz: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, wc = ctx.saved_tensors
        dh = torch.mm(dz, wc.T) if ctx.needs_input_grad[0] else None  # (B, fan_in)
        dw = torch.mm(h.T, dz).to(ctx.dtypes[0])  # (fan_in, fan_out) in the parameter's dtype
        return dh, dw, dz.sum(dim=0).to(ctx.dtypes[1]), None, None


def affine(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
           casts: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``h @ w + b`` in ``h``'s dtype: fp32 as the chapter writes it; for bf16 inputs on the
    layer's bf16 ``casts`` of ``(w, b)`` (made here when not given), the gradients landing in
    the fp32 parameters."""
    if h.dtype == w.dtype:
        return h @ w + b  # (B, fan_in) @ (fan_in, fan_out) + (fan_out,)
    wc, bc = casts if casts is not None else (as_compute(w, h.dtype), as_compute(b, h.dtype))
    return _LowAffine.apply(h, w, b, wc, bc)


def _cast_buffer(p: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Where a parameter's low-precision cast lives between steps. A weight is laid out
    row-major where the device multiplies ``dtype`` natively; where bf16 is emulated, column-major
    (a transposed layout), which the emulated kernels multiply 6-7x faster."""
    if p.dim() == 2 and dtype == torch.bfloat16 and not native_bf16(p.device)[0]:
        return torch.empty(p.shape[1], p.shape[0], dtype=dtype, device=p.device).t()
    return torch.empty(p.shape, dtype=dtype, device=p.device)


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
        self._casts: dict[torch.dtype, list[tuple[torch.Tensor, torch.Tensor]]] = {}
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

    def compute_weights(self, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every layer's ``(W, b)`` as this step multiplies them: the parameters themselves in
        their own dtype; in another (bf16), each cast once into a buffer the model keeps from step
        to step (no allocation, no transposing copy where bf16 is native)."""
        layers = self.layers()
        if dtype == layers[0][0].dtype:
            return list(layers)
        casts = self._casts.get(dtype)
        if casts is None or casts[0][0].device != layers[0][0].device:
            casts = self._casts[dtype] = [(_cast_buffer(w, dtype), _cast_buffer(b, dtype))
                                          for w, b in layers]
        with torch.no_grad():
            for (wc, bc), (w, b) in zip(casts, layers, strict=True):
                wc.copy_(w)
                bc.copy_(b)
        return casts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(-1, self.sizes[0])  # (B, 784)
        act = F.ACTIVATIONS[self.activation] if h.dtype == torch.float32 else F.FUSED[self.activation]
        casts = self.compute_weights(h.dtype) if h.dtype != self.W1.dtype else None
        *hidden, out = self.layers()
        for i, (w, b) in enumerate(hidden):
            h = act(affine(h, w, b, casts[i] if casts else None))  # (B, fan_in) -> (B, fan_out), h's dtype
            h = F.dropout(h, self.dropout, training=self.training)
        return affine(h, *out, casts[-1] if casts else None)  # (B, H_last) -> (B, 10) logits


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
