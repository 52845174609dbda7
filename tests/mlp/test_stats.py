"""Per-layer statistics: each layer's output and weight gradient as autograd sees them, the
model's own gradients untouched, the probes spread over the epoch."""

import pytest
import torch

from mlp import functional as F
from mlp.model import build_model
from mlp.stats import PROBES, layer_stats, probe_batches


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_layer_stats_are_the_outputs_and_weight_gradients_autograd_sees(loss: str) -> None:
    model = build_model(784, 10, [48, 24], activation="tanh", init="he", dropout=0.5, seed=2).double()
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(64, 784, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 10, (64,), generator=gen)
    kept = [torch.full_like(p, 7.0) for p in model.parameters()]
    for p, g in zip(model.parameters(), kept, strict=True):
        p.grad = g
    stats = layer_stats(model, x, y, loss=loss)
    assert all(p.grad is g for p, g in zip(model.parameters(), kept, strict=True))  # untouched

    model.eval()  # what the probe measures: no dropout
    outputs, h = [], x
    for w, b in model.layers()[:-1]:
        h = F.tanh(h @ w + b)
        outputs.append(h)
    w_out, b_out = model.layers()[-1]
    outputs.append(h @ w_out + b_out)
    weights = [w for w, _ in model.layers()]
    grads = torch.autograd.grad(F.LOSSES[loss](outputs[-1], y), weights)
    for i, (a, g) in enumerate(zip(outputs, grads, strict=True), start=1):
        assert stats[f"layer{i}/act_mean"] == pytest.approx(a.mean().item())
        assert stats[f"layer{i}/act_std"] == pytest.approx(a.std().item())
        assert stats[f"layer{i}/grad_mean"] == pytest.approx(g.mean().item(), abs=1e-12)
        assert stats[f"layer{i}/grad_std"] == pytest.approx(g.std().item())


def test_the_chapters_small_init_starves_deep_layers_and_he_does_not() -> None:
    """The numbers the init x activation experiment draws: with N(0, 0.01^2) weights the signal
    shrinks almost tenfold per ReLU layer of 256 (0.01 * sqrt(256 / 2) = 0.11), with He
    initialisation it keeps its scale."""
    x = torch.rand(256, 784, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (256,), generator=torch.Generator().manual_seed(1))
    small = layer_stats(build_model(784, 10, [256] * 4, init="normal", sigma=0.01), x, y)
    he = layer_stats(build_model(784, 10, [256] * 4, init="he"), x, y)
    assert small["layer4/act_std"] < 0.11 ** 2 * small["layer1/act_std"]
    assert 0.2 < he["layer4/act_std"] / he["layer1/act_std"] < 5
    assert small["layer1/grad_std"] < 1e-4 * he["layer1/grad_std"]


@pytest.mark.parametrize("n", [1, 5, 11, 12, 196])
def test_probes_start_at_the_first_batch_and_end_at_the_last(n: int) -> None:
    at = probe_batches(n)
    assert min(at) == 0 and max(at) == n - 1 and len(at) == min(n, PROBES)
