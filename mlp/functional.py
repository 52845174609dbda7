"""From-scratch activations, losses and metrics: one operation per function, tensor in, tensor out."""

from __future__ import annotations

import torch

__all__ = [
    "relu",
    "sigmoid",
    "tanh",
    "relu_derivative",
    "sigmoid_derivative",
    "tanh_derivative",
    "softmax",
    "log_softmax",
    "one_hot",
    "cross_entropy",
    "mse",
    "accuracy",
    "dropout",
    "dropout_mask",
    "ACTIVATIONS",
    "DERIVATIVES",
    "FUSED",
    "LOSSES",
]


class _MaxAgainstZero(torch.autograd.Function):
    """max(x, 0) with its derivative written out: the gradient passes where the output is > 0.

    Autograd's own derivative of ``torch.max(x, zeros)`` builds masks for both operands; this
    one keeps only the output, which is also all the backward pass needs to hold.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        out = torch.maximum(x, x.new_zeros(()))  # (B, H), max against a broadcast zero
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (out,) = ctx.saved_tensors
        return torch.where(out > 0, grad, 0.0)  # no cast of the mask


def relu(x: torch.Tensor) -> torch.Tensor:
    """ReLU as the chapter writes it: the elementwise max against zeros."""
    return _MaxAgainstZero.apply(x)  # (B, H) -> (B, H)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Logistic sigmoid, stable for large |x|: exp is only taken of -|x|.

    -|x| is written as a ``where`` so that autograd differentiates each branch as the one it
    computes; through ``abs``, whose derivative torch takes as 0 at 0, the derivative at x = 0
    would come out 0 instead of 1/4.
    """
    e = torch.exp(torch.where(x >= 0, -x, x))  # (B, H), exp(-|x|) in (0, 1]
    return torch.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def tanh(x: torch.Tensor) -> torch.Tensor:
    """Hyperbolic tangent via the sigmoid: tanh(x) = 2 sigmoid(2x) - 1."""
    return 2.0 * sigmoid(2.0 * x) - 1.0


def relu_derivative(out: torch.Tensor) -> torch.Tensor:
    """d relu(z) / dz from the output a = relu(z): 1 where a > 0, else 0 (0 at z = 0 too)."""
    return (out > 0).to(out.dtype)  # (B, H) -> (B, H)


def relu_backward(dh: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``dh * relu_derivative(out)`` in one fused pass (torch's own relu backward kernel): relu'
    is 0 or 1, so dh where the unit was on and 0 where it was off, with no mask to build; 6-9x
    faster than a mask and a multiply at 256 x 256."""
    return torch.ops.aten.threshold_backward(dh, out, 0)


def sigmoid_derivative(out: torch.Tensor) -> torch.Tensor:
    """d sigmoid(z) / dz from the output a = sigmoid(z): a (1 - a), at most 1/4 (at z = 0)."""
    return out * (1.0 - out)


def tanh_derivative(out: torch.Tensor) -> torch.Tensor:
    """d tanh(z) / dz from the output a = tanh(z): 1 - a^2, at most 1 (at z = 0)."""
    return 1.0 - out * out


def _wide(x: torch.Tensor) -> torch.Tensor:
    """bf16 (or fp16) logits in fp32: softmax and loss sum small terms that 8 bits would lose."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Row-wise log-softmax in at least fp32; the row max is subtracted first so exp never
    overflows."""
    logits = _wide(logits)
    shifted = logits - logits.max(dim=1, keepdim=True).values  # (B, C), max 0 per row
    return shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))


def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Row-wise softmax in at least fp32, stable for logits of any size (d2l's naive version
    is not)."""
    logits = _wide(logits)
    e = torch.exp(logits - logits.max(dim=1, keepdim=True).values)  # (B, C)
    return e / e.sum(dim=1, keepdim=True)


def one_hot(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Integer labels (B,) as rows of a (B, C) float identity: 1 at the label, 0 elsewhere."""
    out = torch.zeros(len(y), num_classes, device=y.device)
    return out.scatter_(1, y.view(-1, 1), 1.0)  # (B,) -> (B, C)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of integer labels ``y`` (B,) under ``logits`` (B, C)."""
    picked = log_softmax(logits).gather(1, y.view(-1, 1))  # (B, 1)
    return -picked.mean()


def fused_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`cross_entropy` with torch's fused kernels, in fp32 for bf16 logits: a log-softmax
    and a pick forward and two kernels back, where the definition above records eight
    operations for autograd. The bf16 path's loss (see ``FUSED``)."""
    return torch.nn.functional.cross_entropy(_wide(logits), y)


def mse(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the squared distance between softmax(logits) and one-hot(y),
    summed over the classes (the Brier score): in [0, 2] per row, fp32 for bf16 logits."""
    p = softmax(logits)  # (B, C)
    return ((p - one_hot(y, p.shape[1]).to(p.dtype)) ** 2).sum(dim=1).mean()


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose arg-max matches ``y``, as a 0-dim tensor."""
    return (logits.argmax(dim=1) == y).float().mean()


def dropout_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """A mask shaped like ``x``: 0 with probability ``p``, else 1/(1-p) (inverted dropout)."""
    keep = 1.0 - p
    return (torch.rand_like(x) < keep).to(x.dtype) / keep  # (B, H)


def dropout(x: torch.Tensor, p: float, *, training: bool) -> torch.Tensor:
    """Inverted dropout: zero each unit with probability ``p`` and scale the rest by 1/(1-p).

    The identity at evaluation time, so nothing needs rescaling after training.
    """
    if not training or p == 0.0:
        return x
    return x * dropout_mask(x, p)


ACTIVATIONS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh}
# Each activation's derivative written by hand, in terms of its output (what the hand-written
# backward pass keeps), in the order of ACTIVATIONS.
DERIVATIVES = {"relu": relu_derivative, "sigmoid": sigmoid_derivative, "tanh": tanh_derivative}
LOSSES = {"cross_entropy": cross_entropy, "mse": mse}
# The same activations as torch's fused kernels: one pass over a layer's output where the
# definitions above take two (relu) to ten (tanh). The bf16 path uses them, because each pass
# converts bf16 to fp32 and back, and on a busy CPU each kernel is also a thread hand-off; they
# agree with the definitions above to the dtype's rounding (tests/mlp/test_precision.py).
FUSED = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}
FUSED_LOSSES = {"cross_entropy": fused_cross_entropy, "mse": mse}
