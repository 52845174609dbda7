"""Turn a plain :class:`Config` into data, model and optimiser, and train it through ``mlp.fit``."""

from __future__ import annotations

import dataclasses
import os
import re
import resource
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from experiments.config import Config
from mlp import (
    Splits,
    Training,
    build_model,
    fit,
    fit_folds,
    hidden_sizes_for,
    load_folds,
    load_pool,
    load_splits,
    make_optimizer,
)
from mlp.precision import Shape, cast_inputs, compute_dtype, configure_matmul, resolve_precision
from mlp.train import EpochCallback, FitResult


def setup_torch(threads: int | None = None) -> None:
    """Process-wide torch settings, once, before any work: ``threads`` CPU threads (None keeps
    torch's choice) and denormals flushed to zero. Saturated tanh/sigmoid layers at high learning
    rates produce subnormal floats, which run 5-15x slower on x86 CPUs; this must happen before
    torch starts its thread pool, whose threads inherit this thread's floating-point mode."""
    torch.set_flush_denormal(True)
    if threads is not None:
        torch.set_num_threads(threads)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but torch sees no CUDA device; use device=auto or cpu")
    return torch.device(name)


def shape_of(cfg: Config) -> Shape:
    """What ``auto`` times for ``cfg``: its layer sizes, activation, backward pass and batch."""
    m = cfg.model
    return Shape((784, *hidden_sizes_for(m.depth, m.width, m.hidden_sizes), 10), m.activation,
                 m.backward, cfg.train.batch_size)


def precision_of(cfg: Config, device: torch.device) -> tuple[str, str]:
    """``(fp32 | bf16, why)`` for ``train.precision`` on ``device``: ``auto`` times a few steps
    of ``cfg``'s model here (once per process and shape, :func:`mlp.precision.decide`)."""
    decision = resolve_precision(cfg.train.precision, device, shape=shape_of(cfg))
    return decision.precision, decision.why


def settle_precision(cfg: Config, *, like: Config | None = None) -> str:
    """Resolve ``cfg.train.precision`` in place (``auto`` becomes what it resolves to here, timed
    on ``like``'s model when given), so what trains, what is logged and what a reproduce line
    or best-config file says is the precision used; returns the start line that says why."""
    precision, why = precision_of(like or cfg, resolve_device(cfg.device))
    if cfg.train.precision != "auto":
        precision = cfg.train.precision
    cfg.train.precision = precision
    return f"precision: {precision} ({why})"


Data = Splits | list[Splits]  # a hold-out split, or the folds of k-fold cross-validation


def load_data(cfg: Config, device: torch.device, precision: str = "fp32") -> Data:
    """The seeded train/validation split (or the ``data.folds`` folds) and the test set, as
    tensors on ``device``, standardised as ``data.normalize`` says; the images held in the
    precision's compute dtype (cast once here, never per batch)."""
    d = cfg.data
    if d.folds:
        folds = load_folds(d.root, folds=d.folds, limit_train=d.limit_train, seed=cfg.seed,
                           normalize=d.normalize, device=device)
        return [in_precision(f, precision) for f in folds]
    data = load_splits(d.root, val_size=d.val_size, limit_train=d.limit_train, seed=cfg.seed,
                       normalize=d.normalize, device=device)
    return in_precision(data, precision)


def in_precision(data: Splits, precision: str) -> Splits:
    """``data`` with its images in the compute dtype of ``precision`` (itself when they are)."""
    if data.train_x.dtype == compute_dtype(precision):
        return data
    return dataclasses.replace(data, train_x=cast_inputs(data.train_x, precision),
                               val_x=cast_inputs(data.val_x, precision),
                               test_x=cast_inputs(data.test_x, precision))


def build(cfg: Config, device: torch.device) -> tuple[nn.Module, object]:
    """The model (seeded by ``cfg.seed``) and its optimiser, from plain config values."""
    m = cfg.model
    model = build_model(784, 10, hidden_sizes_for(m.depth, m.width, m.hidden_sizes),
                        impl=m.impl, activation=m.activation, init=m.init, sigma=m.sigma,
                        dropout=m.dropout, seed=cfg.seed).to(device)
    o = cfg.optim
    optimizer = make_optimizer(o.name, model.parameters(), lr=o.lr, momentum=o.momentum,
                               weight_decay=o.weight_decay)
    return model, optimizer


@dataclass
class Trained:
    """A trained configuration. Hold-out: the model with its best-validation weights and its
    split. Cross-validation: ``result`` is the fold mean's and, after the final refit on every
    image the folds split (``refit``), ``model`` and ``data`` are the refit's."""

    model: nn.Module
    data: Splits
    result: FitResult
    device: torch.device
    refit: FitResult | None = None


def train_config(cfg: Config, *, data: Data | None = None, on_epoch_end: EpochCallback | None = None,
                 on_probe: EpochCallback | None = None, refit: bool = True) -> Trained:
    """Train the configured model; ``data`` may be passed in to reuse a loaded split. With
    ``data.folds`` one model per fold trains in lockstep (``on_epoch_end`` sees the fold mean)
    and, with ``refit``, the configuration is trained once more on all their images for the fold
    mean's best number of epochs: the model a test evaluates. ``on_probe`` receives the first
    epoch's per-layer statistics when ``train.layer_stats`` is set."""
    device = resolve_device(cfg.device)
    precision, _ = precision_of(cfg, device)
    configure_matmul(device, precision)
    torch.manual_seed(cfg.seed)  # dropout masks
    if data is None:
        data = load_data(cfg, device, precision)
    probe = on_probe if cfg.train.layer_stats else None
    reset_peak_memory(device)
    if not isinstance(data, list):
        data = in_precision(data, precision)
        model, optimizer = build(cfg, device)
        result = fit(model, data, optimizer, epochs=cfg.train.epochs,
                     early_stopping=cfg.train.early_stopping, on_epoch_end=on_epoch_end,
                     on_probe=probe, **_schedule(cfg))
        return Trained(model, data, result, device)
    runs = []
    for split in data:  # one model per fold, all from the same initial weights
        model, optimizer = build(cfg, device)
        runs.append(Training(model, in_precision(split, precision), optimizer,
                             epochs=cfg.train.epochs, restore_best=False, **_schedule(cfg)))
    result = fit_folds(runs, early_stopping=cfg.train.early_stopping, on_epoch_end=on_epoch_end,
                       on_probe=probe)
    if not refit:
        return Trained(runs[0].model, runs[0].data, result, device)
    d = cfg.data
    pool = in_precision(load_pool(d.root, limit_train=d.limit_train, seed=cfg.seed,
                                  normalize=d.normalize, device=device), precision)
    model, optimizer = build(cfg, device)
    final = Training(model, pool, optimizer, epochs=cfg.train.epochs, restore_best=False,
                     **_schedule(cfg))
    for epoch in range(1, result.best_epoch + 1):  # the folds' schedule, stopped at their best
        final.epoch(epoch)
    return Trained(model, pool, result, device, refit=final.end())


def _schedule(cfg: Config) -> dict[str, Any]:
    """How every model of ``cfg`` trains, but for its epochs and callbacks."""
    return {"batch_size": cfg.train.batch_size, "backward": cfg.model.backward, "seed": cfg.seed,
            "lr_schedule": cfg.optim.schedule, "loss": cfg.train.loss}


def reset_peak_memory(device: torch.device) -> None:
    """Start a fresh peak-memory window (CUDA allocator, or the process's RSS high-water mark)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open(f"/proc/{os.getpid()}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # not Linux: the high-water mark then spans the whole process


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory since :func:`reset_peak_memory`: CUDA allocated bytes, or the process RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open(f"/proc/{os.getpid()}/status") as f:
            match = re.search(r"VmHWM:\s+(\d+) kB", f.read())
        if match:
            return int(match.group(1)) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
