"""Figures of one run (learning curves, confusion matrix, predictions on test images) and of the
core's activations with their derivatives."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mlp import functional as F
from mlp.data import CLASSES

# Figures are built with matplotlib's object API (``Figure``), not pyplot: no backend, no global
# state, nothing to close; ``Figure.savefig`` and MLflow's ``log_figure`` render them.


LOSS_NAMES = {"cross_entropy": "cross-entropy", "mse": "MSE of softmax to one-hot"}


def learning_curves(history: list[dict[str, float]], *, title: str = "",
                    loss: str = "cross_entropy") -> Figure:
    """The chapter's plot: train/validation loss and accuracy per epoch (for cross-validation,
    the fold mean with a band of one standard deviation across the folds)."""
    epochs = range(1, len(history) + 1)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for split, style in (("train", "-"), ("val", "--")):
        ax_loss.plot(epochs, [h[f"{split}/loss"] for h in history], style, label=f"{split} loss")
        ax_acc.plot(epochs, [h[f"{split}/acc"] for h in history], style, label=f"{split} acc")
    for ax, key in ((ax_loss, "val/loss"), (ax_acc, "val/acc")):
        if history and f"{key}_sd" in history[0]:
            mid = np.array([h[key] for h in history])
            sd = np.array([h[f"{key}_sd"] for h in history])
            ax.fill_between(epochs, mid - sd, mid + sd, color="C1", alpha=0.2, label="val ± sd (folds)")
    for ax, name, corner in ((ax_loss, LOSS_NAMES.get(loss, loss), "upper right"),
                             (ax_acc, "accuracy", "lower right")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(loc=corner, fontsize=8, framealpha=0.6)
    fig.suptitle(title or "learning curves")
    return fig


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor) -> Figure:
    """Counts of true (rows) against predicted (columns) classes."""
    n = len(CLASSES)
    counts = torch.bincount(y_true.cpu() * n + y_pred.cpu(), minlength=n * n).reshape(n, n)
    fig = Figure(figsize=(8, 7), layout="constrained")
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
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="test images")  # as tall as the matrix
    ax.set_title(f"test confusion matrix (accuracy {(y_true == y_pred).float().mean():.4f})")
    return fig


def predictions(images: torch.Tensor, y_true: torch.Tensor, y_pred: torch.Tensor, *,
                n: int = 18) -> Figure:
    """The chapter's predict step: test images titled with true and predicted labels."""
    cols = 6
    rows = (min(n, len(images)) + cols - 1) // cols
    fig = Figure(figsize=(cols * 1.8, rows * 2.3), layout="constrained")  # room for two-line titles
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= min(n, len(images)):
            continue
        ax.imshow(images[k].reshape(28, 28).cpu().numpy(), cmap="gray")
        t, p = CLASSES[int(y_true[k])], CLASSES[int(y_pred[k])]
        ax.set_title(f"true: {t}\npred: {p}", fontsize=8, color="black" if t == p else "red")
    fig.suptitle("test images: true and predicted labels (red = wrong)")
    return fig


ACTIVATION_RANGE = (-8.0, 8.0)


def derivatives(name: str, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(act(z), d act/dz by autograd, d act/dz by the hand-written rule)`` in float64; the
    hand-written one is what the manual backward pass uses, computed from the output."""
    z = z.detach().double().requires_grad_()
    out = F.ACTIVATIONS[name](z)
    (auto,) = torch.autograd.grad(out.sum(), z)
    return out.detach(), auto, F.DERIVATIVES[name](out.detach())


def activation_figures(points: int = 1601) -> tuple[dict[str, Figure], dict[str, float]]:
    """Each activation on [-8, 8] with its derivative drawn twice (autograd solid, hand-written
    dashed on top), one figure each and all three side by side; and the largest difference
    between the two derivatives per activation."""
    z = torch.linspace(*ACTIVATION_RANGE, points, dtype=torch.float64)
    figs, gaps = {}, {}
    overview = Figure(figsize=(13, 4))
    for ax_all, name in zip(overview.subplots(1, len(F.ACTIVATIONS)), F.ACTIVATIONS, strict=True):
        out, auto, manual = derivatives(name, z)
        gaps[name] = (auto - manual).abs().max().item()
        single = Figure(figsize=(6, 4))
        for ax in (ax_all, single.subplots()):
            ax.plot(z, out, color="black", lw=1.5, label=f"{name}(z)")
            ax.plot(z, auto, color="C0", lw=4, alpha=0.6, label="derivative, autograd")
            ax.plot(z, manual, color="C1", lw=1.5, ls="--", label="derivative, hand-written")
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_xlabel("z")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="best")
            ax.set_title(f"{name}: max |autograd - hand-written| = {gaps[name]:.1e}", fontsize=10)
        single.tight_layout()
        figs[f"{name}.png"] = single
    overview.suptitle("activations and their derivatives on [-8, 8]")
    overview.tight_layout()
    figs["activations.png"] = overview
    return figs, gaps
