"""fit: metrics per epoch, the callback, divergence, early stopping, best weights restored; the
loss choice; fit_folds: the folds in lockstep, their mean and spread, pruning all at once."""

import pytest
import torch

from mlp import DivergedError, Training, build_model, fit, fit_folds, make_optimizer
from mlp.splits import Splits


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


def _separable(n: int = 600) -> Splits:
    """Each class lights its own band of 78 pixels: learnable in a few epochs by either loss."""
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (n,), generator=gen)
    x = torch.rand(n, 784, generator=gen) * 0.5
    for c in range(10):
        x[y == c, c * 78:(c + 1) * 78] += 0.5
    idx = torch.arange(n)
    return Splits(x[:400], y[:400], x[400:], y[400:], x[400:], y[400:], idx[:400], idx[400:])


@pytest.mark.parametrize("backward", ["autograd", "manual"])
def test_mse_trains_and_both_backward_passes_take_the_same_steps(backward: str) -> None:
    def run(how: str) -> list[dict]:
        model = build_model(784, 10, [32], init="scaled")
        return fit(model, _separable(), make_optimizer("sgd", model.parameters(), lr=0.3), epochs=8,
                   batch_size=50, backward=how, loss="mse").history
    history = run(backward)
    assert history[-1]["train/loss"] < history[0]["train/loss"] <= 2.0
    assert history[-1]["val/acc"] > 0.8
    other = run("manual" if backward == "autograd" else "autograd")
    assert history[-1]["val/loss"] == pytest.approx(other[-1]["val/loss"], rel=1e-4)


def _folds(k: int = 3) -> list[Splits]:
    """``k`` folds of the toy data: fold i validates on part i and trains on the others."""
    data = _toy(900)
    x, y = torch.cat([data.train_x, data.val_x]), torch.cat([data.train_y, data.val_y])
    parts = torch.arange(900).tensor_split(k)
    out = []
    for i, val in enumerate(parts):
        train = torch.cat([p for j, p in enumerate(parts) if j != i])
        out.append(Splits(x[train], y[train], x[val], y[val], data.test_x, data.test_y, train, val))
    return out


def _runs(folds: list[Splits], epochs: int = 6) -> list[Training]:
    runs = []
    for f in folds:
        model = build_model(784, 10, [32], init="he")
        runs.append(Training(model, f, make_optimizer("sgd", model.parameters(), lr=0.5),
                             epochs=epochs, batch_size=50, restore_best=False))
    return runs


def test_folds_train_in_lockstep_and_report_the_mean_the_spread_and_each_fold() -> None:
    order: list[tuple[int, int]] = []
    runs = _runs(_folds())
    for k, r in enumerate(runs):  # record which fold trains which epoch, in order
        epoch = r.epoch
        r.epoch = lambda e, k=k, epoch=epoch, **kw: (order.append((e, k)), epoch(e, **kw))[1]
    seen: list[dict] = []
    result = fit_folds(runs, on_epoch_end=lambda e, m: seen.append(m))
    assert order == [(e, k) for e in range(1, 7) for k in range(3)]
    m = seen[-1]
    folds = [m[f"fold{k}/val/acc"] for k in (1, 2, 3)]
    assert m["val/acc"] == pytest.approx(sum(folds) / 3)
    assert m["val/acc_sd"] == pytest.approx(float(torch.tensor(folds).std()))
    assert m["perf/epoch_seconds"] == pytest.approx(sum(r.result.history[-1]["perf/epoch_seconds"]
                                                        for r in runs))
    assert result.best_val_acc == max(h["val/acc"] for h in seen)
    assert result.history[result.best_epoch - 1]["val/acc"] == result.best_val_acc


def test_a_pruning_callback_stops_every_fold_at_the_same_epoch() -> None:
    class Pruned(Exception):
        pass

    def prune_at_two(epoch: int, metrics: dict) -> None:
        if epoch == 2:
            raise Pruned(metrics["val/acc"])

    runs = _runs(_folds())
    with pytest.raises(Pruned):
        fit_folds(runs, on_epoch_end=prune_at_two)
    assert [len(r.result.history) for r in runs] == [2, 2, 2]


def test_a_split_without_validation_rows_trains_without_evaluating() -> None:
    data = _toy()
    data.val_x, data.val_y = data.val_x[:0], data.val_y[:0]
    model = build_model(784, 10, [16], init="he")
    result = fit(model, data, make_optimizer("sgd", model.parameters(), lr=0.5), epochs=3,
                 batch_size=50, restore_best=False)
    assert len(result.history) == 3 and not any("val/acc" in h for h in result.history)


@pytest.mark.parametrize("backward", ["autograd", "manual"])
def test_probing_layer_statistics_changes_nothing_in_training(backward: str) -> None:
    """The probe runs without dropout and restores the gradients: same losses, same weights."""
    def run(probe: bool) -> tuple[list, list]:
        torch.manual_seed(0)
        model = build_model(784, 10, [32, 32], init="he", dropout=0.3, seed=1)
        seen: list = []
        history = fit(model, _toy(), make_optimizer("sgd", model.parameters(), lr=0.3, momentum=0.9),
                      epochs=2, batch_size=32, backward=backward,
                      on_probe=(lambda b, s: seen.append((b, s))) if probe else None).history
        return [h["train/loss"] for h in history] + [p.sum().item() for p in model.parameters()], seen
    plain, _ = run(False)
    probed, seen = run(True)
    assert probed == plain
    assert [b for b, _ in seen] == [0, 1, 2, 4, 5, 6, 7, 8, 10, 11, 12]  # 13 batches, 11 probes
    assert set(seen[0][1]) == {f"layer{i}/{k}" for i in (1, 2, 3)
                               for k in ("act_mean", "act_std", "grad_mean", "grad_std")}
