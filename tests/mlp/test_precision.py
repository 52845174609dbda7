"""bf16 training: the choice by hardware, the hand-written backward against autograd in bf16,
fp32 master weights and gradients, and both models training and evaluating on bf16 images."""

from pathlib import Path

import pytest
import torch

from mlp.model import build_model
from mlp.optim import SGD
from mlp.precision import cast_inputs, cpu_flags, resolve_precision
from mlp.train import evaluate, predict, train_epoch
from tests.mlp.test_backprop import _grads

CPU = torch.device("cpu")


@pytest.mark.parametrize(("flags", "expected"), [
    ({"avx2", "amx_bf16", "amx_tile"}, "bf16"),
    ({"avx512f", "avx512_bf16"}, "bf16"),
    ({"avx2", "fma", "avx512f"}, "fp32"),
    (set(), "fp32"),
])
def test_auto_picks_bf16_only_where_the_cpu_multiplies_it_natively(flags: set[str],
                                                                   expected: str) -> None:
    precision, why = resolve_precision("auto", CPU, flags=flags)
    assert precision == expected
    assert why.startswith("auto: ")


def test_explicit_choices_are_kept_and_emulated_bf16_is_called_slower() -> None:
    assert resolve_precision("fp32", CPU, flags={"amx_bf16"})[0] == "fp32"
    precision, why = resolve_precision("bf16", CPU, flags={"avx2"})
    assert precision == "bf16" and "emulated" in why
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", CPU)


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
