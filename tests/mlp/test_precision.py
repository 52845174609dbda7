"""bf16 training: ``auto`` decided by timing (an injected timer here), the fused kernels,
the hand-written backward against autograd in bf16, fp32 master weights and gradients, and both
models training and evaluating on bf16 images."""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from mlp import functional as F
from mlp import precision as precision_module
from mlp.model import build_model
from mlp.optim import SGD
from mlp.precision import (
    Shape,
    cast_inputs,
    cpu_flags,
    decide,
    measure_speedup,
    resolve_precision,
    step_timer,
)
from mlp.train import evaluate, predict, train_epoch
from tests.mlp.test_backprop import _grads

CPU = torch.device("cpu")


NATIVE, EMULATED = {"avx512f", "avx512_bf16"}, {"avx2", "fma", "avx512f"}
SHAPE = Shape((784, 256, 10))


def fake_timer(fp32: float, bf16: float, calls: list[str] | None = None) -> Callable[[str], float]:
    def timer(precision: str) -> float:
        if calls is not None:
            calls.append(precision)
        return {"fp32": fp32, "bf16": bf16}[precision]
    return timer


@pytest.mark.parametrize(("fp32", "bf16", "expected"), [
    (1.0, 0.5, "bf16"),   # 2x faster
    (1.0, 0.86, "bf16"),  # 1.16x: clearly faster
    (1.0, 0.9, "fp32"),   # 1.11x: within what a busy machine moves
    (1.0, 1.3, "fp32"),   # slower
])
def test_auto_picks_bf16_only_where_it_measures_clearly_faster(fp32: float, bf16: float,
                                                               expected: str) -> None:
    made = resolve_precision("auto", CPU, shape=SHAPE, timer=fake_timer(fp32, bf16), flags=NATIVE)
    assert made.precision == expected and made.speedup == pytest.approx(fp32 / bf16)
    assert made.why.startswith(f"auto: {'' if expected == 'bf16' else 'bf16 only '}{fp32 / bf16:.2f}x")
    assert "784-256-10 relu here" in made.why and "measured in 0.0 s" in made.why


def test_auto_does_not_time_emulated_bf16() -> None:
    calls: list[str] = []
    made = resolve_precision("auto", CPU, timer=fake_timer(1.0, 0.1, calls), flags=EMULATED)
    assert (made.precision, calls) == ("fp32", [])
    assert "no amx_bf16/avx512_bf16 CPU flag" in made.why and "not timed" in made.why


def test_the_timing_interleaves_the_precisions_and_keeps_to_its_budget() -> None:
    calls: list[str] = []
    measure_speedup(fake_timer(1.0, 0.5, calls), rounds=5, budget_s=60)
    assert calls == ["fp32", "bf16", "bf16", "fp32"] * 2 + ["fp32", "bf16"]

    calls.clear()
    measure_speedup(fake_timer(1.0, 1.0, calls), rounds=50, budget_s=0.0)
    assert len(calls) == 6  # three rounds at least, then the (spent) budget stops it


def test_a_process_times_each_shape_once(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Shape] = []

    def timer_for(shape: Shape, device: torch.device) -> Callable[[str], float]:
        made.append(shape)
        return fake_timer(1.0, 0.5)
    monkeypatch.setattr(precision_module, "step_timer", timer_for)
    monkeypatch.setattr(precision_module, "_decided", {})
    other = Shape((784, 64, 10), "tanh")
    for shape in (SHAPE, other, SHAPE, other):
        assert decide(shape, CPU, flags=NATIVE).precision == "bf16"
    assert made == [SHAPE, other]


def test_the_step_timer_trains_the_shape_in_each_precision() -> None:
    timer = step_timer(Shape((784, 32, 10), "tanh", "manual", 64), CPU, max_steps=2)
    assert timer("fp32") > 0 and timer("bf16") > 0


def test_explicit_choices_are_kept_and_emulated_bf16_is_called_slower() -> None:
    assert resolve_precision("fp32", CPU, flags=NATIVE).precision == "fp32"
    made = resolve_precision("bf16", CPU, flags=EMULATED)
    assert made.precision == "bf16" and "emulated" in made.why
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", CPU)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_the_fused_activations_of_the_bf16_path_are_the_definitions(name: str) -> None:
    x = torch.linspace(-30, 30, 2001)
    torch.testing.assert_close(F.FUSED[name](x), F.ACTIVATIONS[name](x), rtol=1e-5, atol=1e-6)
    low = x.bfloat16()
    torch.testing.assert_close(F.FUSED[name](low).float(), F.ACTIVATIONS[name](x),
                               rtol=1e-2, atol=1e-2)


def test_the_fused_loss_of_the_bf16_path_is_the_definition_in_value_and_gradient() -> None:
    gen = torch.Generator().manual_seed(3)
    logits = (torch.randn(64, 10, generator=gen) * 5).bfloat16()
    y = torch.randint(0, 10, (64,), generator=gen)
    values, grads = [], []
    for loss in (F.cross_entropy, F.fused_cross_entropy):
        z = logits.clone().requires_grad_()
        value = loss(z, y)
        value.backward()
        values.append(value)
        grads.append(z.grad.float())
    assert values[0].dtype == values[1].dtype == torch.float32
    torch.testing.assert_close(values[1], values[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-2, atol=1e-4)  # bf16 gradients
    assert F.FUSED_LOSSES.keys() == F.LOSSES.keys()


def test_cpu_flags_read_the_flags_line(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse2 avx512_bf16 amx_bf16\n")
    assert cpu_flags(info) == {"fpu", "sse2", "avx512_bf16", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_manual_backward_matches_autograd_in_bf16(depth: int, activation: str,
                                                  dropout: float) -> None:
    """Both multiply the same bf16 casts, so they differ only where the fp32 softmax gradient
    rounds differently to bf16: gradients agree to 2% in norm (bf16 keeps 8 significant bits,
    0.4% per value), the loss to fp32 rounding."""
    model = build_model(784, 10, [64] * depth, activation=activation, init="he",
                        dropout=dropout, seed=depth)
    gen = torch.Generator().manual_seed(7)
    x = cast_inputs(torch.rand(64, 784, generator=gen), "bf16")
    y = torch.randint(0, 10, (64,), generator=gen)
    loss_a, grads_a = _grads(model, x, y, manual=False, seed=11)
    loss_m, grads_m = _grads(model, x, y, manual=True, seed=11)
    assert loss_a.dtype == loss_m.dtype == torch.float32
    torch.testing.assert_close(loss_m, loss_a, rtol=1e-5, atol=1e-6)
    for (name, p), gm, ga in zip(model.named_parameters(), grads_m, grads_a, strict=True):
        assert gm.dtype == ga.dtype == p.dtype == torch.float32, name
        assert _relative(gm, ga) < 2e-2, name


def test_bf16_gradients_stay_close_to_fp32() -> None:
    """bf16 products change the gradient by rounding only: a few percent in norm."""
    model = build_model(784, 10, [128, 64], init="he", seed=3)
    gen = torch.Generator().manual_seed(5)
    x, y = torch.rand(128, 784, generator=gen), torch.randint(0, 10, (128,), generator=gen)
    _, grads_fp32 = _grads(model, x, y, manual=True, seed=0)
    _, grads_bf16 = _grads(model, cast_inputs(x, "bf16"), y, manual=True, seed=0)
    for gb, gf in zip(grads_bf16, grads_fp32, strict=True):
        assert _relative(gb, gf) < 5e-2


@pytest.mark.slow
@pytest.mark.parametrize(("impl", "backward"), [("scratch", "autograd"), ("scratch", "manual"),
                                                ("concise", "autograd")])
def test_bf16_training_learns_like_fp32_and_keeps_fp32_weights(impl: str, backward: str) -> None:
    gen = torch.Generator().manual_seed(0)
    centers = torch.rand(10, 784, generator=gen)
    y = torch.randint(0, 10, (2048,), generator=gen)
    x = (centers[y] + 0.3 * torch.rand(2048, 784, generator=gen)).clamp(0, 1)
    results = {}
    for precision in ("fp32", "bf16"):
        model = build_model(784, 10, [64], impl=impl, init="he", seed=0)
        opt = SGD(model.parameters(), 0.1)
        xs = cast_inputs(x, precision)
        for _ in range(3):
            train_epoch(model, xs, y, opt, batch_size=128, backward=backward,
                        generator=torch.Generator().manual_seed(1))
        assert all(p.dtype == torch.float32 for p in model.parameters())
        loss, acc = evaluate(model, xs, y)
        assert (predict(model, xs) == y).float().mean().item() == pytest.approx(acc)
        results[precision] = (loss, acc)
    assert results["bf16"][1] == pytest.approx(results["fp32"][1], abs=0.02)
    assert results["bf16"][0] == pytest.approx(results["fp32"][0], rel=0.1, abs=0.01)


def test_fp32_inputs_still_run_in_fp32_after_bf16_training() -> None:
    """The model follows its input's dtype: fp32 images give fp32 logits (what MLflow's
    logged model is called with)."""
    model = build_model(784, 10, [32], seed=0)
    x = torch.rand(4, 784)
    assert model(cast_inputs(x, "bf16")).dtype == torch.bfloat16
    assert model(x).dtype == torch.float32

