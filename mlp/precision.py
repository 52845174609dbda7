"""Training precision: fp32, or bf16 matrix products with fp32 master weights; ``auto`` measures.

``bf16`` multiplies in bfloat16 and keeps everything that sums many small terms in fp32: the
weights the optimiser updates, their gradients, the softmax, the loss. The model follows the
dtype of its input: hold the data in bf16 (:func:`cast_inputs`) and every layer multiplies in
bf16 (see :func:`mlp.model.affine`).

``auto`` is decided by measurement, as FFTW's planner and cuDNN's benchmark mode decide: where
the hardware multiplies bf16 natively, a few training steps of the actual model shape are timed
in fp32 and in bf16, interleaved, and bf16 is picked only when it is at least
:data:`BF16_MIN_SPEEDUP` times faster. Where bf16 is emulated it is not timed: fp32. A process
decides once per shape (:func:`decide`).
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["PRECISIONS", "BF16_MIN_SPEEDUP", "Shape", "Decision", "native_bf16", "decide",
           "resolve_precision", "compute_dtype", "cast_inputs", "configure_matmul"]

PRECISIONS = ("fp32", "bf16", "auto")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo names of native bf16 multiplies
BF16_MIN_SPEEDUP = 1.15  # auto picks bf16 only this much faster than fp32: clearly, not by noise
# Up to 7 interleaved rounds (at least 3) of ~20 ms of steps each, stopped after ~0.5 s
ROUNDS, ROUND_S, MAX_STEPS, BUDGET_S = 7, 0.02, 8, 0.5
Timer = Callable[[str], float]  # seconds for one round of steps in a precision ("fp32", "bf16")


@dataclass(frozen=True)
class Shape:
    """What a training step's speed depends on: layer sizes, activation, backward pass, batch."""

    sizes: tuple[int, ...]
    activation: str = "relu"
    backward: str = "autograd"
    batch_size: int = 256

    def __str__(self) -> str:
        return f"{'-'.join(map(str, self.sizes))} {self.activation}"


@dataclass(frozen=True)
class Decision:
    """A resolved precision and the phrase that says why (for the start line); ``speedup`` and
    ``seconds`` when ``auto`` timed it."""

    precision: str
    why: str
    speedup: float | None = None
    seconds: float | None = None


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
    Native does not mean faster for a given model: that is what ``auto`` measures.
    """
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return major >= 8, f"CUDA capability {major}.{minor}"
    found = sorted((cpu_flags() if flags is None else flags) & set(BF16_CPU_FLAGS))
    return bool(found), f"CPU flag {found[0]}" if found else "no amx_bf16/avx512_bf16 CPU flag"


_decided: dict[tuple, Decision] = {}


def decide(shape: Shape, device: torch.device, *, timer: Timer | None = None,
           flags: frozenset[str] | set[str] | None = None) -> Decision:
    """``auto`` for ``shape`` on ``device``: fp32 where bf16 is not native (not timed); else
    bf16 when interleaved timing shows it at least :data:`BF16_MIN_SPEEDUP` times faster.
    ``timer(precision)`` returns the seconds of one round (default: real training steps of the
    shape, :func:`step_timer`); a real timing is made once per process for each shape."""
    native, why = native_bf16(device, flags=flags)
    if not native:
        return Decision("fp32", f"auto: {why}, so bf16 would be emulated; not timed")
    key = (shape, str(device))
    if timer is None and key in _decided:
        return _decided[key]
    start = time.perf_counter()
    speedup = measure_speedup(timer or step_timer(shape, device))
    seconds = time.perf_counter() - start
    if speedup >= BF16_MIN_SPEEDUP:
        made = Decision("bf16", f"auto: {speedup:.2f}x faster than fp32 for {shape} here, "
                                f"measured in {seconds:.1f} s", speedup, seconds)
    else:
        made = Decision("fp32", f"auto: bf16 only {speedup:.2f}x fp32 for {shape} here (needs "
                                f"{BF16_MIN_SPEEDUP:g}x), measured in {seconds:.1f} s", speedup, seconds)
    if timer is None:
        _decided[key] = made
    return made


def measure_speedup(timer: Timer, *, rounds: int = ROUNDS, budget_s: float = BUDGET_S) -> float:
    """fp32 time over bf16 time, each the median of interleaved rounds (so a busy moment hits
    both alike); fewer rounds when the budget runs out, at least three."""
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    start = time.perf_counter()
    for i in range(rounds):
        for precision in (("fp32", "bf16") if i % 2 == 0 else ("bf16", "fp32")):
            times[precision].append(timer(precision))
        if i >= 2 and time.perf_counter() - start > budget_s:
            break
    return statistics.median(times["fp32"]) / statistics.median(times["bf16"])


def step_timer(shape: Shape, device: torch.device, *, max_steps: int = MAX_STEPS) -> Timer:
    """A timer of real training steps (our model, SGD, the shape's backward pass) on random
    batches: an untimed warm-up step in bf16, then one fp32 step whose time sets how many steps
    a round takes to fill about :data:`ROUND_S` (one for a wide model, up to ``max_steps`` for a
    small one)."""
    from mlp.model import build_model  # noqa: PLC0415 - the model module imports this one
    from mlp.optim import SGD  # noqa: PLC0415
    from mlp.train import train_epoch  # noqa: PLC0415

    gen = torch.Generator().manual_seed(0)
    rows = shape.batch_size * max_steps
    x = torch.rand(rows, shape.sizes[0], generator=gen).to(device)
    y = torch.randint(0, shape.sizes[-1], (rows,), generator=gen).to(device)
    trained = {}
    for precision in ("fp32", "bf16"):
        model = build_model(shape.sizes[0], shape.sizes[-1], list(shape.sizes[1:-1]), init="he",
                            activation=shape.activation, seed=0).to(device)
        trained[precision] = (model, SGD(model.parameters(), 0.01), cast_inputs(x, precision))

    def run(precision: str, steps: int) -> float:
        model, opt, xs = trained[precision]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start, n = time.perf_counter(), shape.batch_size * steps
        train_epoch(model, xs[:n], y[:n], opt, batch_size=shape.batch_size,
                    backward=shape.backward)  # ends in .item(): the device has finished
        return time.perf_counter() - start

    run("bf16", 1)  # warm-up: first calls allocate and pick kernels
    one = run("fp32", 1)
    steps = max(1, min(max_steps, int(ROUND_S / max(one, 1e-6))))
    return lambda precision: run(precision, steps)


def resolve_precision(name: str, device: torch.device, *, shape: Shape | None = None,
                      timer: Timer | None = None,
                      flags: frozenset[str] | set[str] | None = None) -> Decision:
    """``fp32``/``bf16`` as asked (saying when bf16 is emulated); ``auto`` as :func:`decide`
    finds for ``shape`` (the chapter's 784-256-10 relu when None)."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; expected {', '.join(PRECISIONS)}")
    if name == "auto":
        return decide(shape or Shape((784, 256, 10)), device, timer=timer, flags=flags)
    if name == "bf16" and not native_bf16(device, flags=flags)[0]:
        return Decision("bf16", f"asked for; {native_bf16(device, flags=flags)[1]}, so bf16 is "
                                "emulated and slower than fp32")
    return Decision(name, "asked for")


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
