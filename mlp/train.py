"""The training loop: ``train_epoch``, ``evaluate`` and ``fit`` with an ``on_epoch_end`` callback."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from mlp import functional as F
from mlp.backprop import loss_and_grads
from mlp.data import Splits, batches
from mlp.model import MLP
from mlp.optim import SGD, scheduled_lr, set_lr

__all__ = ["DivergedError", "FitResult", "train_epoch", "evaluate", "predict", "fit"]

Metrics = dict[str, float]
EpochCallback = Callable[[int, Metrics], None]


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


def train_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                optimizer: SGD | torch.optim.Optimizer, *, batch_size: int,
                backward: str = "autograd", generator: torch.Generator | None = None) -> Metrics:
    """One pass over the training data; returns ``train/loss`` and ``train/acc``."""
    if backward == "manual" and not isinstance(model, MLP):
        raise ValueError("backward=manual needs the scratch model (model.impl=scratch)")
    model.train()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for xb, yb in batches(x, y, batch_size, generator=generator):
        optimizer.zero_grad()
        if backward == "manual":
            loss, logits = loss_and_grads(model, xb, yb)
        else:
            with _autocast(model, xb):
                logits = model(xb)
            loss = F.cross_entropy(logits, yb)  # fp32 whatever the logits' dtype
            loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(yb)
        correct += (logits.detach().argmax(dim=1) == yb).sum()
    n = len(x)
    return {"train/loss": loss_sum.item() / n, "train/acc": correct.item() / n}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
             batch_size: int = 8192) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)``, in evaluation mode and in
    the images' precision."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for xb, yb in batches(x, y, batch_size):
        with _autocast(model, xb):
            logits = model(xb)
        loss_sum += F.cross_entropy(logits, yb).item() * len(yb)
        correct += int((logits.argmax(dim=1) == yb).sum())
    return loss_sum / len(x), correct / len(x)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 8192) -> torch.Tensor:
    """The predicted class of every row of ``x``, in evaluation mode and the images' precision."""
    model.eval()
    preds = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        with _autocast(model, xb):
            preds.append(model(xb).argmax(dim=1))
    return torch.cat(preds)


def _autocast(model: nn.Module, x: torch.Tensor) -> contextlib.AbstractContextManager:
    """bf16 products for the concise model on bf16 images (its ``nn.Linear`` layers hold fp32
    weights and let autocast cast them); the scratch MLP casts its own weights."""
    if x.dtype == torch.bfloat16 and not isinstance(model, MLP):
        return torch.autocast(x.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def fit(model: nn.Module, data: Splits, optimizer: SGD | torch.optim.Optimizer, *, epochs: int,
        batch_size: int, backward: str = "autograd", seed: int = 0, lr_schedule: str = "constant",
        early_stopping: int = 0, restore_best: bool = True,
        on_epoch_end: EpochCallback | None = None) -> FitResult:
    """Train for ``epochs`` epochs, evaluating on the validation split after each.

    Each epoch's metrics dict (``train/*``, ``val/*``, ``perf/*``, ``lr``) goes to
    ``on_epoch_end(epoch, metrics)`` with 1-based epochs; the callback may raise to stop
    (a pruner does). ``early_stopping`` > 0 stops after that many epochs without a better
    ``val/acc``. With ``restore_best`` the model ends with its best-validation weights.
    Raises :class:`DivergedError` as soon as an epoch's training loss is not finite.
    """
    base_lr = _current_lr(optimizer)
    gen = torch.Generator().manual_seed(seed)
    result, best_state, stale = FitResult(), None, 0
    for epoch in range(1, epochs + 1):
        lr = scheduled_lr(base_lr, epoch - 1, epochs, schedule=lr_schedule)
        set_lr(optimizer, lr)
        start = time.perf_counter()
        metrics = train_epoch(model, data.train_x, data.train_y, optimizer,
                              batch_size=batch_size, backward=backward, generator=gen)
        seconds = time.perf_counter() - start
        if not math.isfinite(metrics["train/loss"]):
            raise DivergedError(epoch, metrics["train/loss"])
        metrics["val/loss"], metrics["val/acc"] = evaluate(model, data.val_x, data.val_y)
        metrics.update({"perf/epoch_seconds": seconds,
                        "perf/samples_per_sec": len(data.train_x) / seconds, "lr": lr})
        result.history.append(metrics)
        if metrics["val/acc"] > result.best_val_acc:
            result.best_val_acc, result.best_epoch, stale = metrics["val/acc"], epoch, 0
            best_state = copy.deepcopy(model.state_dict()) if restore_best else None
        else:
            stale += 1
        if on_epoch_end is not None:
            on_epoch_end(epoch, metrics)
        if early_stopping and stale >= early_stopping:
            result.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    set_lr(optimizer, base_lr)
    return result


def _current_lr(optimizer: SGD | torch.optim.Optimizer) -> float:
    return optimizer.lr if isinstance(optimizer, SGD) else optimizer.param_groups[0]["lr"]
