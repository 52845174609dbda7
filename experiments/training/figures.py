"""Figures of one run: learning curves, confusion matrix, predictions on test images."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from mlp.data import CLASSES

# Figures are built with matplotlib's object API (``Figure``), not pyplot: no backend, no global
# state, nothing to close; ``Figure.savefig`` and MLflow's ``log_figure`` render them.


def learning_curves(history: list[dict[str, float]], *, title: str = "") -> Figure:
    """The chapter's plot: train/validation loss and accuracy per epoch."""
    epochs = range(1, len(history) + 1)
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for split, style in (("train", "-"), ("val", "--")):
        ax_loss.plot(epochs, [h[f"{split}/loss"] for h in history], style, label=f"{split} loss")
        ax_acc.plot(epochs, [h[f"{split}/acc"] for h in history], style, label=f"{split} acc")
    for ax, name in ((ax_loss, "cross-entropy"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or "learning curves")
    fig.tight_layout()
    return fig


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor) -> Figure:
    """Counts of true (rows) against predicted (columns) classes."""
    n = len(CLASSES)
    counts = torch.bincount(y_true.cpu() * n + y_pred.cpu(), minlength=n * n).reshape(n, n)
    fig = Figure(figsize=(8, 7))
    ax = fig.subplots()
    im = ax.imshow(counts.numpy(), cmap="Blues")
    ax.set_xticks(range(n), CLASSES, rotation=45, ha="right")
    ax.set_yticks(range(n), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = counts.max().item() / 2
    for i in range(n):
        for j in range(n):
            value = counts[i, j].item()
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                    color="white" if value > threshold else "black")
    fig.colorbar(im, ax=ax)
    ax.set_title(f"test confusion matrix (accuracy {(y_true == y_pred).float().mean():.4f})")
    fig.tight_layout()
    return fig


def predictions(images: torch.Tensor, y_true: torch.Tensor, y_pred: torch.Tensor, *,
                n: int = 18) -> Figure:
    """The chapter's predict step: test images titled with true and predicted labels."""
    cols = 6
    rows = (min(n, len(images)) + cols - 1) // cols
    fig = Figure(figsize=(cols * 1.8, rows * 2.1))
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= min(n, len(images)):
            continue
        ax.imshow(images[k].reshape(28, 28).cpu().numpy(), cmap="gray")
        t, p = CLASSES[int(y_true[k])], CLASSES[int(y_pred[k])]
        ax.set_title(f"{t}\n{p}", fontsize=8, color="black" if t == p else "red")
    fig.suptitle("test images: true label / predicted (red = wrong)")
    fig.tight_layout()
    return fig
