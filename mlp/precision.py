"""Training precision: fp32, or bf16 matrix products with fp32 master weights, picked by hardware.

``bf16`` multiplies in bfloat16 and keeps everything that sums many small terms in fp32: the
weights the optimiser updates, their gradients, the softmax, the loss. The model follows the
dtype of its input: hold the data in bf16 (:func:`cast_inputs`) and every layer multiplies in
bf16 (see :func:`mlp.model.affine`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "native_bf16", "resolve_precision", "compute_dtype", "cast_inputs",
           "configure_matmul"]

PRECISIONS = ("fp32", "bf16", "auto")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo names of native bf16 multiplies


@functools.cache
def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo); read
    once per process, however many runs and trials resolve their precision."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def native_bf16(device: torch.device, *, flags: frozenset[str] | set[str] | None = None) -> tuple[bool, str]:
    """Whether ``device`` multiplies bf16 natively, and why (one phrase for the start line).

    CPU: the ``amx_bf16`` or ``avx512_bf16`` flag. CUDA: compute capability >= 8.0 (Ampere on).
    """
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return major >= 8, f"CUDA capability {major}.{minor}"
    found = sorted((cpu_flags() if flags is None else flags) & set(BF16_CPU_FLAGS))
    return bool(found), f"CPU flag {found[0]}" if found else "no amx_bf16/avx512_bf16 CPU flag"


def resolve_precision(name: str, device: torch.device, *,
                      flags: frozenset[str] | set[str] | None = None) -> tuple[str, str]:
    """``(fp32 | bf16, reason)``: ``auto`` becomes bf16 where the hardware multiplies it natively."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; expected {', '.join(PRECISIONS)}")
    native, why = native_bf16(device, flags=flags)
    if name == "auto":
        return ("bf16" if native else "fp32"), f"auto: {why}"
    if name == "bf16" and not native:
        return "bf16", f"asked for; {why}, so bf16 is emulated and slower than fp32"
    return name, "asked for"


def compute_dtype(precision: str) -> torch.dtype:
    """The dtype matrix products run in: bfloat16 for ``bf16``, float32 for ``fp32``."""
    return torch.bfloat16 if precision == "bf16" else torch.float32


def cast_inputs(x: torch.Tensor, precision: str) -> torch.Tensor:
    """Images in the compute dtype, cast once so no batch is cast again (a no-op for fp32)."""
    return x.to(compute_dtype(precision))


def configure_matmul(device: torch.device, precision: str) -> None:
    """On a GPU, fp32 matrix products use TF32 tensor cores (10-bit mantissa, fp32 range)."""
    if device.type == "cuda" and precision == "fp32":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
