"""Shared command-line plumbing: one-line errors with exit code 2, and progress output."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from experiments.config import ConfigError

USAGE_ERRORS = (ConfigError, HydraException, OmegaConfBaseException)


def one_line(exc: BaseException) -> str:
    """The exception and its causes on one line (Hydra splits its messages over several)."""
    parts: list[str] = []
    while exc is not None:
        text = " ".join(str(exc).split())
        if text and text not in parts:
            parts.append(text)
        exc = exc.__cause__ or (exc.__context__ if not exc.__suppress_context__ else None)
    return ": ".join(parts)


def quiet_libraries() -> None:
    """Keep stderr for our own messages: MLflow's and Alembic's INFO lines are noise here."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` on stderr and exit."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def epoch_progress(epochs: int, *, desc: str = "train") -> tuple[Callable, Callable[[], None]]:
    """An ``on_epoch_end`` printer: a tqdm bar on a terminal, plain lines otherwise."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=epochs, desc=desc, unit="epoch", file=sys.stderr)

        def update(epoch: int, m: dict[str, float]) -> None:
            bar.set_postfix(loss=f"{m['train/loss']:.4f}", val_acc=f"{m['val/acc']:.4f}")
            bar.update(1)

        return update, bar.close

    def line(epoch: int, m: dict[str, float]) -> None:
        print(f"{desc} epoch {epoch}/{epochs}: train/loss {m['train/loss']:.4f} "
              f"train/acc {m['train/acc']:.4f} val/loss {m['val/loss']:.4f} "
              f"val/acc {m['val/acc']:.4f} ({m['perf/epoch_seconds']:.2f} s)", flush=True)

    return line, lambda: None


def chain(*callbacks: Callable | None) -> Callable[[int, dict[str, float]], None]:
    """One ``on_epoch_end`` that calls each callback in turn."""
    live = [c for c in callbacks if c is not None]

    def call(epoch: int, metrics: dict[str, float]) -> None:
        for c in live:
            c(epoch, metrics)

    return call
