"""Parity of the from-scratch functions with torch.nn.functional: values and gradients, float64."""

import pytest
import torch

from mlp import functional as F

torch_f = torch.nn.functional


def _inputs(scale: float) -> torch.Tensor:
    x = torch.randn(16, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return (x * scale).requires_grad_()


def _parity(ours, theirs, x: torch.Tensor) -> None:
    x2 = x.detach().clone().requires_grad_()
    a, b = ours(x), theirs(x2)
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a, b)
    w = torch.randn_like(a)  # a random upstream gradient
    (a * w).sum().backward()
    (b * w).sum().backward()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(x.grad, x2.grad)


@pytest.mark.parametrize("scale", [1.0, 50.0, 1e4])
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activations_match_torch(name: str, scale: float) -> None:
    _parity(getattr(F, name), getattr(torch, name), _inputs(scale))


@pytest.mark.parametrize("scale", [1.0, 100.0, 1e4])
def test_softmax_and_log_softmax_match_torch_even_for_huge_logits(scale: float) -> None:
    _parity(F.softmax, lambda z: torch_f.softmax(z, dim=1), _inputs(scale))
    _parity(F.log_softmax, lambda z: torch_f.log_softmax(z, dim=1), _inputs(scale))


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_matches_torch(scale: float) -> None:
    logits = _inputs(scale)
    y = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(2))
    _parity(lambda z: F.cross_entropy(z, y).reshape(1),
            lambda z: torch_f.cross_entropy(z, y).reshape(1), logits)


def test_cross_entropy_of_plus_minus_1e4_logits_is_finite() -> None:
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=torch.float64,
                          requires_grad=True)
    loss = F.cross_entropy(logits, torch.tensor([1, 1]))
    loss.backward()
    assert loss.item() == pytest.approx(1e4)  # first row: wrong by 2e4 / 2 rows
    assert torch.isfinite(logits.grad).all()


def test_accuracy_counts_argmax_hits() -> None:
    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert F.accuracy(logits, torch.tensor([1, 0, 0, 0])).item() == pytest.approx(0.75)


def test_dropout_is_identity_at_evaluation() -> None:
    x = torch.randn(64, 32)
    assert torch.equal(F.dropout(x, 0.5, training=False), x)


def test_dropout_keeps_activation_scale_in_training() -> None:
    torch.manual_seed(0)
    x = torch.ones(2000, 500)
    out = F.dropout(x, 0.3, training=True)
    zeros = (out == 0).float().mean().item()
    assert zeros == pytest.approx(0.3, abs=0.01)
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)  # inverted dropout: E[out] = x
    kept = out[out != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.7))


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_hand_written_derivatives_match_autograd_on_minus_8_to_8_and_beyond(name: str) -> None:
    """The derivative the manual backward pass uses, written in terms of the activation's
    output, against autograd's derivative of the activation itself."""
    z = torch.cat([torch.linspace(-8, 8, 1601, dtype=torch.float64),
                   torch.tensor([-1e4, -40.0, 0.0, 40.0, 1e4], dtype=torch.float64)])
    z.requires_grad_()
    out = F.ACTIVATIONS[name](z)
    (autograd,) = torch.autograd.grad(out.sum(), z)
    torch.testing.assert_close(F.DERIVATIVES[name](out.detach()), autograd, rtol=1e-12, atol=1e-15)


def test_derivatives_have_the_textbook_shapes() -> None:
    z = torch.tensor([-3.0, 0.0, 3.0], dtype=torch.float64)
    assert F.relu_derivative(F.relu(z)).tolist() == [0.0, 0.0, 1.0]  # 0 at z = 0, as autograd
    assert F.sigmoid_derivative(F.sigmoid(z))[1].item() == pytest.approx(0.25)
    assert F.tanh_derivative(F.tanh(z))[1].item() == pytest.approx(1.0)


def test_one_hot_puts_a_single_one_at_each_label() -> None:
    y = torch.tensor([2, 0, 9])
    torch.testing.assert_close(F.one_hot(y, 10), torch_f.one_hot(y, 10).float())


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_mse_is_the_squared_distance_of_softmax_to_one_hot(scale: float) -> None:
    logits = _inputs(scale)
    y = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(2))

    def reference(z: torch.Tensor) -> torch.Tensor:
        onehot = torch_f.one_hot(y, 10).to(z.dtype)
        return torch_f.mse_loss(torch_f.softmax(z, dim=1), onehot, reduction="sum").reshape(1) / len(y)

    _parity(lambda z: F.mse(z, y).reshape(1), reference, logits)
    assert 0.0 <= F.mse(logits, y).item() <= 2.0
