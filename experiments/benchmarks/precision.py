"""What bf16 buys here, side by side in one run: per activation at 3x1024, the copies a training
step makes, and what ``train.precision=auto`` picks, with the epoch time of its pick against
fp32's (the target: never below 0.97x, that is, never slower than fp32 by more than noise)."""

from __future__ import annotations

import torch

from experiments.benchmarks.epoch import median_times, ours_runner
from mlp.model import build_model
from mlp.optim import SGD
from mlp.precision import Shape, cast_inputs, native_bf16, resolve_precision
from mlp.splits import Splits
from mlp.train import train_epoch

WIDE = [1024, 1024, 1024]
ACTIVATIONS = ("relu", "tanh", "sigmoid")
AUTO_FLOOR = 0.97  # auto's epoch against fp32's: below this, auto made training slower


def data_copies(hidden: list[int], backward: str, precision: str, batch: int = 256) -> int:
    """Copies of data (``aten::copy_`` of a tensor, 0-dim scalars left out) in one training
    step, counted by torch.profiler: the same figure on every machine."""
    model = build_model(784, 10, hidden, seed=0)
    opt = SGD(model.parameters(), 0.1)
    x, y = cast_inputs(torch.rand(batch, 784), precision), torch.randint(0, 10, (batch,))
    train_epoch(model, x, y, opt, batch_size=batch, backward=backward)  # buffers made, warm
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                record_shapes=True) as prof:
        train_epoch(model, x, y, opt, batch_size=batch, backward=backward)
    return sum(1 for e in prof.events() if e.name == "aten::copy_" and e.input_shapes[0])


def print_copies() -> None:
    native = native_bf16(torch.device("cpu"))[0]
    print("\ncopies per training step (torch.profiler aten::copy_ of tensors; "
          f"bf16 {'native' if native else 'emulated'} here)")
    print(f"{'model':<20}{'backward':<10}{'fp32':>6}{'bf16':>6}  bf16 target: <= 1 per weight + 2")
    for hidden, name in (([256], "784-256-10"), ([1024, 1024], "784-1024-1024-10")):
        for backward in ("autograd", "manual"):
            fp32, bf16 = (data_copies(hidden, backward, p) for p in ("fp32", "bf16"))
            target = len(hidden) + 3
            verdict = "PASS" if bf16 <= target else "MISS"
            print(f"{name:<20}{backward:<10}{fp32:>6}{bf16:>6}  (<= {target}) {verdict}")


def print_activations(data: Splits, device: torch.device, epochs: int, repeats: int) -> None:
    """bf16 against fp32 at 3x1024 for each activation, both backward passes."""
    print("\n784-1024-1024-1024-10 (3x1024) by activation: s/epoch, bf16 speed-up over fp32")
    print(f"{'activation':<12}{'backward':<10}{'fp32':>9}{'bf16':>9}{'bf16 gain':>11}")
    for activation in ACTIVATIONS:
        runners = {}
        for backward in ("autograd", "manual"):
            for p in ("fp32", "bf16"):
                runners[f"{backward} {p}"] = ours_runner(data, device, epochs, backward, WIDE, p,
                                                         activation=activation)
        med = median_times(runners, repeats)
        for backward in ("autograd", "manual"):
            fp32, bf16 = med[f"{backward} fp32"], med[f"{backward} bf16"]
            print(f"{activation:<12}{backward:<10}{fp32:>9.3f}{bf16:>9.3f}{fp32 / bf16:>10.2f}x")


def print_auto(data: Splits, device: torch.device, epochs: int, repeats: int) -> None:
    """What auto picks for the default model and 3x1024 tanh, and its epoch against fp32's."""
    print(f"\ntrain.precision=auto here (its pick's epoch against fp32's; target >= {AUTO_FLOOR:g}x)")
    for hidden, activation in (([256], "relu"), (WIDE, "tanh")):
        made = resolve_precision("auto", device, shape=Shape((784, *hidden, 10), activation))
        runners = {p: ours_runner(data, device, epochs, "autograd", hidden, p, activation=activation)
                   for p in ("fp32", "bf16")}
        med = median_times(runners, repeats)
        ratio = med["fp32"] / med[made.precision]
        verdict = "PASS" if ratio >= AUTO_FLOOR else "MISS"
        print(f"{'-'.join(map(str, (784, *hidden, 10)))} {activation}: {made.precision} ({made.why})\n"
              f"  epoch fp32 {med['fp32']:.3f} s, bf16 {med['bf16']:.3f} s: auto's pick "
              f"{ratio:.2f}x fp32's speed {verdict}")
