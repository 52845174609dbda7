"""The scratch SGD against torch.optim.SGD; the learning-rate schedules."""

import pytest
import torch

from mlp.optim import SGD, make_optimizer, scheduled_lr


@pytest.mark.parametrize(("momentum", "weight_decay"), [(0.0, 0.0), (0.9, 0.0), (0.9, 1e-3)])
def test_sgd_steps_match_torch(momentum: float, weight_decay: float) -> None:
    gen = torch.Generator().manual_seed(0)
    ours = torch.nn.Parameter(torch.randn(5, 3, dtype=torch.float64, generator=gen))
    theirs = torch.nn.Parameter(ours.detach().clone())
    opt_ours = SGD([ours], 0.1, momentum=momentum, weight_decay=weight_decay)
    opt_theirs = torch.optim.SGD([theirs], lr=0.1, momentum=momentum, weight_decay=weight_decay)
    for _ in range(4):
        grad = torch.randn(5, 3, dtype=torch.float64, generator=gen)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
        torch.testing.assert_close(ours, theirs)


def test_one_plain_step_is_the_chapters_updater() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.tensor([1.0, 2.0, 3.0])
    SGD([p], 0.5).step()
    assert p.tolist() == [0.5, 0.0, -0.5]


def test_factory_and_schedules() -> None:
    p = [torch.nn.Parameter(torch.ones(2))]
    assert isinstance(make_optimizer("sgd", p, lr=0.1), SGD)
    assert isinstance(make_optimizer("adam", p, lr=0.1), torch.optim.Adam)
    with pytest.raises(ValueError, match="optimiser"):
        make_optimizer("rmsprop", p, lr=0.1)
    assert scheduled_lr(0.1, 3, 10) == 0.1
    assert scheduled_lr(0.1, 0, 10, schedule="cosine") == pytest.approx(0.1)
    assert scheduled_lr(0.1, 5, 10, schedule="cosine") == pytest.approx(0.05)
    assert scheduled_lr(0.1, 7, 10, schedule="step", step_size=5) == pytest.approx(0.01)
