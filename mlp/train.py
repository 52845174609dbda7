"""The training loop: ``train_epoch``, ``evaluate``, ``fit`` and ``fit_folds`` (the models of k
folds in lockstep), each epoch's metrics dict going to an ``on_epoch_end`` callback."""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from mlp import functional as F
from mlp.backprop import loss_and_grads
from mlp.model import MLP
from mlp.optim import SGD, scheduled_lr, set_lr
from mlp.splits import Splits, batches
from mlp.stats import layer_stats, probe_batches

__all__ = ["DivergedError", "FitResult", "Training", "autocast_for", "train_epoch", "evaluate", "predict",
           "fit", "fit_folds"]

Metrics = dict[str, float]
EpochCallback = Callable[[int, Metrics], None]
BatchCallback = Callable[[int, torch.Tensor, torch.Tensor], None]
FOLD_KEYS = ("train/loss", "train/acc", "val/loss", "val/acc")  # logged per fold, as fold{k}/...
SPREAD_KEYS = ("val/loss", "val/acc")  # their standard deviation across folds, as val/acc_sd


class DivergedError(FloatingPointError):
    """The training loss became NaN or infinite; training stopped at ``epoch``."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"training diverged at epoch {epoch}: train/loss = {loss}")
        self.epoch = epoch
        self.loss = loss


@dataclass
class FitResult:
    """Per-epoch metrics dicts, the best validation accuracy and where it happened."""

    history: list[Metrics] = field(default_factory=list)
    best_val_acc: float = float("-inf")
    best_epoch: int = 0
    stopped_early: bool = False

    def record(self, epoch: int, metrics: Metrics) -> bool:
        """Add an epoch; True when its ``val/acc`` is the best so far."""
        self.history.append(metrics)
        if metrics.get("val/acc", -math.inf) > self.best_val_acc:
            self.best_val_acc, self.best_epoch = metrics["val/acc"], epoch
            return True
        return False


def _loss_fn(loss: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if loss not in F.LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected {', '.join(F.LOSSES)}")
    return F.LOSSES[loss]


def train_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                optimizer: SGD | torch.optim.Optimizer, *, batch_size: int,
                backward: str = "autograd", loss: str = "cross_entropy",
                generator: torch.Generator | None = None,
                on_batch: BatchCallback | None = None) -> Metrics:
    """One pass over the training data; returns ``train/loss`` (the chosen loss) and
    ``train/acc``. ``on_batch(i, xb, yb)`` sees each batch before the update it makes."""
    if backward == "manual" and not isinstance(model, MLP):
        raise ValueError("backward=manual needs the scratch model (model.impl=scratch)")
    loss_fn = _loss_fn(loss)
    model.train()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for i, (xb, yb) in enumerate(batches(x, y, batch_size, generator=generator)):
        if on_batch is not None:
            on_batch(i, xb, yb)
        optimizer.zero_grad()
        if backward == "manual":
            value, logits = loss_and_grads(model, xb, yb, loss=loss)
        else:
            with autocast_for(model, xb):
                logits = model(xb)
            fused = logits.dtype != torch.float32  # the bf16 path's fused loss, as its activations
            value = (F.FUSED_LOSSES[loss] if fused else loss_fn)(logits, yb)  # fp32 either way
            value.backward()
        optimizer.step()
        loss_sum += value.detach() * len(yb)
        correct += torch.count_nonzero(logits.detach().argmax(dim=1) == yb)  # no bool cast
    n = len(x)
    return {"train/loss": loss_sum.item() / n, "train/acc": correct.item() / n}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 8192,
             loss: str = "cross_entropy") -> tuple[float, float]:
    """Mean loss (cross-entropy unless ``loss`` says otherwise) and accuracy of ``model`` on
    ``(x, y)``, in evaluation mode and in the images' precision."""
    loss_fn = _loss_fn(loss)
    model.eval()
    loss_sum, correct = 0.0, 0
    for xb, yb in batches(x, y, batch_size):
        with autocast_for(model, xb):
            logits = model(xb)
        loss_sum += loss_fn(logits, yb).item() * len(yb)
        correct += int((logits.argmax(dim=1) == yb).sum())
    return loss_sum / len(x), correct / len(x)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 8192) -> torch.Tensor:
    """The predicted class of every row of ``x``, in evaluation mode and the images' precision."""
    model.eval()
    preds = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        with autocast_for(model, xb):
            preds.append(model(xb).argmax(dim=1))
    return torch.cat(preds)


def autocast_for(model: nn.Module, x: torch.Tensor) -> contextlib.AbstractContextManager:
    """bf16 products for the concise model on bf16 images (its ``nn.Linear`` layers hold fp32
    weights and let autocast cast them); the scratch MLP casts its own weights. Training, the
    evaluation and the exported model (``experiments.registry``) all multiply under it."""
    if x.dtype == torch.bfloat16 and not isinstance(model, MLP):
        return torch.autocast(x.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Training:
    """One model's training, an epoch at a time: its learning-rate schedule, batch order, the
    best validation accuracy and (with ``restore_best``) the weights that reached it. A split
    without validation rows (a final refit) is trained and not evaluated."""

    def __init__(self, model: nn.Module, data: Splits, optimizer: SGD | torch.optim.Optimizer, *,
                 epochs: int, batch_size: int, backward: str = "autograd", seed: int = 0,
                 lr_schedule: str = "constant", loss: str = "cross_entropy",
                 restore_best: bool = True) -> None:
        self.model, self.data, self.optimizer = model, data, optimizer
        self.epochs, self.batch_size, self.backward, self.loss = epochs, batch_size, backward, loss
        self.lr_schedule, self.restore_best = lr_schedule, restore_best
        self.base_lr = _current_lr(optimizer)
        self.gen = torch.Generator().manual_seed(seed)
        self.result, self.best_state = FitResult(), None

    def epoch(self, epoch: int, *, on_batch: BatchCallback | None = None) -> Metrics:
        """Train 1-based ``epoch`` and evaluate on the validation split; its metrics dict.
        Raises :class:`DivergedError` when the training loss is not finite."""
        lr = scheduled_lr(self.base_lr, epoch - 1, self.epochs, schedule=self.lr_schedule)
        set_lr(self.optimizer, lr)
        start = time.perf_counter()
        metrics = train_epoch(self.model, self.data.train_x, self.data.train_y, self.optimizer,
                              batch_size=self.batch_size, backward=self.backward, loss=self.loss,
                              generator=self.gen, on_batch=on_batch)
        seconds = time.perf_counter() - start
        if not math.isfinite(metrics["train/loss"]):
            raise DivergedError(epoch, metrics["train/loss"])
        if len(self.data.val_x):
            metrics["val/loss"], metrics["val/acc"] = evaluate(self.model, self.data.val_x,
                                                               self.data.val_y, loss=self.loss)
        metrics.update({"perf/epoch_seconds": seconds,
                        "perf/samples_per_sec": len(self.data.train_x) / seconds, "lr": lr})
        if self.result.record(epoch, metrics) and self.restore_best:
            self.best_state = copy.deepcopy(self.model.state_dict())
        return metrics

    def probe(self, on_probe: EpochCallback | None) -> BatchCallback | None:
        """An ``on_batch`` that sends the scratch model's :func:`~mlp.stats.layer_stats` at the
        probe batches of an epoch to ``on_probe(batch, stats)``; None when there is nothing to do."""
        if on_probe is None or not isinstance(self.model, MLP):
            return None
        at = probe_batches(math.ceil(len(self.data.train_x) / self.batch_size))

        def on_batch(i: int, xb: torch.Tensor, yb: torch.Tensor) -> None:
            if i in at:
                on_probe(i, layer_stats(self.model, xb, yb, loss=self.loss))
        return on_batch

    def end(self) -> FitResult:
        """Back to the best weights (if kept) and the base learning rate; the result."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        set_lr(self.optimizer, self.base_lr)
        return self.result


def fit(model: nn.Module, data: Splits, optimizer: SGD | torch.optim.Optimizer, *, epochs: int,
        batch_size: int, backward: str = "autograd", seed: int = 0, lr_schedule: str = "constant",
        loss: str = "cross_entropy", early_stopping: int = 0, restore_best: bool = True,
        on_epoch_end: EpochCallback | None = None, on_probe: EpochCallback | None = None) -> FitResult:
    """Train for ``epochs`` epochs, evaluating on the validation split after each.

    Each epoch's metrics dict (``train/*``, ``val/*``, ``perf/*``, ``lr``) goes to
    ``on_epoch_end(epoch, metrics)`` with 1-based epochs; the callback may raise to stop
    (a pruner does). ``early_stopping`` > 0 stops after that many epochs without a better
    ``val/acc``. With ``restore_best`` the model ends with its best-validation weights.
    ``on_probe(batch, stats)`` receives per-layer statistics at a few batches of the first
    epoch (scratch model only; training is the same with or without it).
    Raises :class:`DivergedError` as soon as an epoch's training loss is not finite.
    """
    run = Training(model, data, optimizer, epochs=epochs, batch_size=batch_size, backward=backward,
                   seed=seed, lr_schedule=lr_schedule, loss=loss, restore_best=restore_best)
    for epoch in range(1, epochs + 1):
        metrics = run.epoch(epoch, on_batch=run.probe(on_probe) if epoch == 1 else None)
        if on_epoch_end is not None:
            on_epoch_end(epoch, metrics)
        if early_stopping and epoch - run.result.best_epoch >= early_stopping:
            run.result.stopped_early = True
            break
    return run.end()


def fit_folds(runs: list[Training], *, early_stopping: int = 0,
              on_epoch_end: EpochCallback | None = None,
              on_probe: EpochCallback | None = None) -> FitResult:
    """Train one model per fold in lockstep: every fold trains epoch e before any trains e + 1.

    After each epoch ``on_epoch_end`` gets the mean over the folds of every metric, the standard
    deviation of ``val/loss`` and ``val/acc`` (``val/acc_sd``) and each fold's own
    (``fold{k}/val/acc``...); ``perf/epoch_seconds`` is the time of all folds. So a pruner
    judges, and early stopping watches, the fold mean; raising in the callback stops every fold
    at the same epoch. ``on_probe`` sees the first fold. Returns the fold mean's result.
    """
    result, epochs = FitResult(), runs[0].epochs
    for epoch in range(1, epochs + 1):
        per_fold = [r.epoch(epoch, on_batch=r.probe(on_probe) if epoch == 1 and k == 0 else None)
                    for k, r in enumerate(runs)]
        metrics = fold_summary(per_fold)
        result.record(epoch, metrics)
        if on_epoch_end is not None:
            on_epoch_end(epoch, metrics)
        if early_stopping and epoch - result.best_epoch >= early_stopping:
            result.stopped_early = True
            break
    for r in runs:
        r.end()
    return result


def fold_summary(per_fold: list[Metrics]) -> Metrics:
    """One epoch of k folds as one metrics dict: fold means, spreads, sums and each fold's own."""
    out = {key: statistics.fmean(m[key] for m in per_fold) for key in per_fold[0]}
    seconds = sum(m["perf/epoch_seconds"] for m in per_fold)
    samples = sum(m["perf/samples_per_sec"] * m["perf/epoch_seconds"] for m in per_fold)
    out.update({"perf/epoch_seconds": seconds, "perf/samples_per_sec": samples / seconds})
    out.update({f"{key}_sd": statistics.stdev(m[key] for m in per_fold) for key in SPREAD_KEYS})
    for k, m in enumerate(per_fold, start=1):
        out.update({f"fold{k}/{key}": m[key] for key in FOLD_KEYS})
    return out


def _current_lr(optimizer: SGD | torch.optim.Optimizer) -> float:
    return optimizer.lr if isinstance(optimizer, SGD) else optimizer.param_groups[0]["lr"]
