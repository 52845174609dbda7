"""The hand-written backward pass against autograd, float64, every activation, depth 1-4 and both
losses (cross-entropy, and MSE of the softmax to one-hot with its hand-derived gradient)."""

import pytest
import torch

from mlp import functional as F
from mlp.backprop import logits_grad, loss_and_grads
from mlp.model import build_model


def _grads(model, x, y, *, manual: bool, seed: int,
           loss_name: str = "cross_entropy") -> tuple[torch.Tensor, list[torch.Tensor]]:
    for p in model.parameters():
        p.grad = None
    torch.manual_seed(seed)  # same dropout masks on both paths
    if manual:
        loss, _ = loss_and_grads(model, x, y, loss=loss_name)
    else:
        loss = F.LOSSES[loss_name](model(x), y)
        loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_manual_backward_matches_autograd(depth: int, activation: str, dropout: float,
                                          loss: str) -> None:
    model = build_model(784, 10, [32] * depth, activation=activation, init="he",
                        dropout=dropout, seed=depth).double()
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(24, 784, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 10, (24,), generator=gen)
    loss_a, grads_a = _grads(model, x, y, manual=False, seed=11, loss_name=loss)
    loss_m, grads_m = _grads(model, x, y, manual=True, seed=11, loss_name=loss)
    torch.testing.assert_close(loss_m, loss_a)
    for gm, ga in zip(grads_m, grads_a, strict=True):
        torch.testing.assert_close(gm, ga, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_the_logits_gradient_of_each_loss_matches_autograd_even_for_huge_logits(
        loss: str, scale: float) -> None:
    gen = torch.Generator().manual_seed(3)
    logits = (torch.randn(32, 10, dtype=torch.float64, generator=gen) * scale).requires_grad_()
    y = torch.randint(0, 10, (32,), generator=gen)
    F.LOSSES[loss](logits, y).backward()
    ours = logits_grad(F.log_softmax(logits.detach()), y, loss=loss)
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, logits.grad, rtol=1e-10, atol=1e-14)
