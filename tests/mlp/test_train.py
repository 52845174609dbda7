"""fit: metrics per epoch, the callback, divergence, early stopping, best weights restored."""

import pytest
import torch

from mlp import DivergedError, build_model, fit, make_optimizer
from mlp.data import Splits


def _toy(n: int = 600) -> Splits:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 784, generator=gen)
    y = (x[:, :10].argmax(dim=1))  # a learnable rule
    idx = torch.arange(n)
    return Splits(x[:400], y[:400], x[400:], y[400:], x[400:], y[400:], idx[:400], idx[400:])


@pytest.mark.parametrize("backward", ["autograd", "manual"])
def test_fit_learns_and_reports_every_epoch(backward: str) -> None:
    data = _toy()
    model = build_model(784, 10, [64], init="he")
    seen: list[tuple[int, dict]] = []
    result = fit(model, data, make_optimizer("sgd", model.parameters(), lr=0.5, momentum=0.9),
                 epochs=8, batch_size=32, backward=backward,
                 on_epoch_end=lambda e, m: seen.append((e, m)))
    assert [e for e, _ in seen] == list(range(1, 9))
    keys = {"train/loss", "train/acc", "val/loss", "val/acc", "perf/epoch_seconds",
            "perf/samples_per_sec", "lr"}
    assert all(keys <= set(m) for _, m in seen)
    assert seen[-1][1]["train/loss"] < seen[0][1]["train/loss"]
    assert result.best_val_acc == max(m["val/acc"] for _, m in seen)


def test_divergence_raises_a_catchable_error() -> None:
    model = build_model(784, 10, [32], init="he")
    with pytest.raises(DivergedError) as info:
        fit(model, _toy(), make_optimizer("sgd", model.parameters(), lr=1e10), epochs=5,
            batch_size=32)
    assert info.value.epoch >= 1


def test_early_stopping_stops_and_best_weights_come_back() -> None:
    data = _toy()
    model = build_model(784, 10, [16])
    opt = make_optimizer("sgd", model.parameters(), lr=1e-6)  # barely moves: no improvement
    result = fit(model, data, opt, epochs=20, batch_size=50, early_stopping=2)
    assert result.stopped_early and len(result.history) <= 20
    assert len(result.history) == result.best_epoch + 2


def test_a_callback_can_stop_training() -> None:
    class Stop(Exception):
        pass

    def stop_at_two(epoch: int, metrics: dict) -> None:
        if epoch == 2:
            raise Stop

    model = build_model(784, 10, [16])
    with pytest.raises(Stop):
        fit(model, _toy(), make_optimizer("sgd", model.parameters(), lr=0.1), epochs=5,
            batch_size=50, on_epoch_end=stop_at_two)
