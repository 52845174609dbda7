"""A model's parameters as a low-precision (bf16) step multiplies them, and its gradients on their
way back to the fp32 parameters, in buffers kept from step to step.

Where the device multiplies bf16 natively, the parameters are views of one fp32 buffer and their
casts views of one bf16 buffer, so a step casts every weight and bias with a single copy. Both
backward passes (autograd through :class:`_Cast` and the layers' :class:`mlp.model._LowAffine`,
and the hand-written one) write their bf16 gradients into one more buffer and land them all in
fp32 with a single copy too. Where bf16 is emulated, each weight is cast on its own into a
column-major buffer (the layout the emulated kernels multiply 6-7x faster), one copy per
parameter.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mlp.precision import native_bf16

__all__ = ["Casts", "flat_view", "flatten"]


def flat_view(params: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """The one 1-D tensor of which ``params`` are consecutive contiguous views, in order, or None
    (they were never flattened, or were replaced since: ``.to(device)``, a deep copy)."""
    first = params[0]
    start = end = first.storage_offset()
    for p in params:
        if (p.untyped_storage().data_ptr() != first.untyped_storage().data_ptr()
                or p.storage_offset() != end or not p.is_contiguous()):
            return None
        end += p.numel()
    return first.detach().new_empty(0).set_(first.untyped_storage(), start, (end - start,))


def flatten(params: Sequence[nn.Parameter]) -> torch.Tensor:
    """Make ``params`` consecutive views of one new fp32 buffer (their values kept) and return it;
    an optimiser holding the parameters sees the same tensors."""
    flat = torch.empty(sum(p.numel() for p in params), dtype=params[0].dtype, device=params[0].device)
    with torch.no_grad():
        for p, view in zip(params, _views(flat, _layout(params)), strict=True):
            view.copy_(p)
            p.data = view
    return flat


def _master(params: Sequence[nn.Parameter]) -> torch.Tensor:
    """The fp32 buffer ``params`` are views of, made (:func:`flatten`) when they are not."""
    master = flat_view(params)
    return master if master is not None else flatten(params)


Layout = list[tuple[torch.Size, tuple[int, ...], int]]  # per tensor: shape, strides, offset


def _layout(like: Sequence[torch.Tensor]) -> Layout:
    """Where each of ``like`` lies in one flat buffer holding them all in order, contiguous."""
    out, start = [], 0
    for p in like:
        out.append((p.shape, torch.empty(p.shape, device="meta").stride(), start))
        start += p.numel()
    return out


def _views(flat: torch.Tensor, layout: Layout) -> list[torch.Tensor]:
    """``flat`` cut into views as ``layout`` says (strided views made directly: half the time
    of slicing and reshaping, and the gradients are cut once a step)."""
    return [flat.as_strided(shape, stride, offset) for shape, stride, offset in layout]


def _column_major(p: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A weight's emulated-bf16 cast: column-major (a transposed layout)."""
    if p.dim() == 2:
        return torch.empty(p.shape[1], p.shape[0], dtype=dtype, device=p.device).t()
    return torch.empty(p.shape, dtype=dtype, device=p.device)


class Casts:
    """The casts of one model's parameters ``[W1, b1, ..., WL, bL]`` in ``dtype``, and the buffer
    their gradients are written into (:attr:`grads`), both kept from step to step. Two forward
    passes before one backward cannot mix their gradients: the second pass's cast changes what
    the first saved, and autograd refuses that backward; the hand-written backward lands its
    gradients before it returns."""

    def __init__(self, params: Sequence[nn.Parameter], dtype: torch.dtype) -> None:
        self.dtype, self.device = dtype, params[0].device
        self.master_dtype = params[0].dtype
        self.flat = native_bf16(self.device)[0] or dtype != torch.bfloat16
        size = sum(p.numel() for p in params)
        self.layout = _layout(params)
        if self.flat:
            self.master = _master(params)
            self.buffer = torch.empty(size, dtype=dtype, device=self.device)
            self.values = _views(self.buffer, self.layout)
        else:
            self.values = [_column_major(p, dtype) for p in params]
        self.ptrs = [p.data_ptr() for p in params]
        self.grad_buffer = torch.empty(size, dtype=dtype, device=self.device)
        self.grads = _views(self.grad_buffer, self.layout)  # [dW1, db1, ..., dWL, dbL]
        self.grad_ptrs = [g.data_ptr() for g in self.grads]

    def refresh(self, params: Sequence[nn.Parameter]) -> list[torch.Tensor]:
        """Cast this step's parameter values into the buffers: one copy where flat (the
        parameters made flat again first if something replaced them), else one each."""
        with torch.no_grad():
            if self.flat:
                if [p.data_ptr() for p in params] != self.ptrs:  # replaced: loaded, moved
                    self.master = _master(params)
                    self.ptrs = [p.data_ptr() for p in params]
                self.buffer.copy_(self.master)
            else:
                for cast, p in zip(self.values, params, strict=True):
                    cast.copy_(p)
        return self.values

    def cast(self, params: Sequence[nn.Parameter]) -> list[torch.Tensor]:
        """:meth:`refresh` as autograd sees it: the gradients the layers write into
        :attr:`grads` (:class:`mlp.model._LowAffine`) land in the parameters."""
        return list(_Cast.apply(self, *params))

    def land(self, grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """``grads`` in the parameters' dtype: with one copy into a fresh buffer (no gradient
        kept from an earlier step is overwritten) when they are :attr:`grads`, as the layers
        write them; else one copy each (a gradient autograd summed, say)."""
        if [g.data_ptr() for g in grads] == self.grad_ptrs:
            landed = torch.empty(self.grad_buffer.shape, dtype=self.master_dtype, device=self.device)
            return _views(landed.copy_(self.grad_buffer), self.layout)
        return [g.to(self.master_dtype) for g in grads]

    def land_in(self, params: Sequence[nn.Parameter]) -> None:
        """The hand-written backward's gradients, written into :attr:`grads`, into each
        parameter's ``.grad`` (added to one that is already there)."""
        with torch.no_grad():
            for p, g in zip(params, self.land(self.grads), strict=True):
                p.grad = g if p.grad is None else p.grad.add_(g)


class _Cast(torch.autograd.Function):
    """Every parameter cast with :meth:`Casts.refresh` forward; every gradient landed in fp32
    with :meth:`Casts.land` backward."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, casts: Casts,
                *params: nn.Parameter) -> tuple[torch.Tensor, ...]:
        ctx.casts = casts
        return tuple(v.view_as(v) for v in casts.refresh(params))

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 *grads: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return (None, *ctx.casts.land(grads))
