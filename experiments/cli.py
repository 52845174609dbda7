"""Shared command-line plumbing: one-line errors with exit code 2, Hydra's own flags, and
progress output."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

from hydra import compose
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments.config import CONFIG_NAME, Config, ConfigError, hydra_session, load_config, with_local_conf

USAGE_ERRORS = (ConfigError, HydraException, OmegaConfBaseException)


def one_line(exc: BaseException) -> str:
    """The exception and its causes on one line (Hydra splits its messages over several)."""
    parts: list[str] = []
    while exc is not None:
        text = " ".join(str(exc).split())
        if text and text not in parts:
            parts.append(text)
        exc = exc.__cause__ or (exc.__context__ if not exc.__suppress_context__ else None)
    if parts and "mismatched input '='" in parts[0]:  # Hydra's grammar, e.g. a URL query
        parts.append("quote a value that holds '=', e.g. sweep.storage='postgresql://h/db?a=b'")
    return ": ".join(parts)


def quiet_libraries() -> None:
    """Keep stderr for our own messages: MLflow's and Alembic's INFO lines are noise here."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


class UsageError(ValueError):
    """Bad input (unknown study, missing store, malformed filter): one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, ``error: ...``, with exit code 2."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        fail(f"{message} (see {self.prog} --help)")
        raise AssertionError  # fail() exits


INFO = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
FLAGS_HELP = """Hydra's flags:
  --cfg, -c job|hydra|all   print the composed config (job: the run's keys) and exit
  --package, -p PACKAGE     with --cfg: only this part of the config, e.g. model
  --resolve                 with --cfg: resolve interpolations first
  --info [all|config|defaults|defaults-tree|plugins|searchpath]
                            Hydra's view of this command: search path, defaults, config
  --help, -h                this text"""


def hydra_flags(args: list[str], *, prog: str, doc: str) -> int | None:
    """Answer Hydra's own flags (``--help``, ``--cfg``, ``--info``) for a command that composes
    its config with Hydra's compose API, as ``@hydra.main`` would; return the exit code, or None
    when ``args`` are plain overrides for the command to run."""
    if not any(a.startswith("-") for a in args):
        return None
    parser = Parser(prog=prog, add_help=False)
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("-c", "--cfg", choices=("job", "hydra", "all"))
    parser.add_argument("-p", "--package")
    parser.add_argument("--resolve", action="store_true")
    parser.add_argument("--info", nargs="?", const="all", choices=INFO)
    parser.add_argument("overrides", nargs="*")
    opts = parser.parse_args(args)
    if not (opts.help or opts.cfg or opts.info):
        parser.error("--package and --resolve go with --cfg")
    try:
        with hydra_session() as hydra:
            overrides = with_local_conf(opts.overrides)
            if opts.help:
                _help(hydra, doc, overrides)
            elif opts.cfg:
                hydra.show_cfg(config_name=CONFIG_NAME, overrides=overrides, cfg_type=opts.cfg,
                               package=opts.package, resolve=opts.resolve)
            else:
                hydra.show_info(opts.info, config_name=CONFIG_NAME, overrides=overrides)
    except USAGE_ERRORS as exc:
        fail(one_line(exc))
    return 0


def command_config(argv: list[str] | None, *, prog: str, doc: str) -> Config | int:
    """A single-run command's start: Hydra's flags answered (their exit code), or the composed
    and checked config of its overrides; bad input exits 2 with one line before any work."""
    args = list(sys.argv[1:] if argv is None else argv)
    answered = hydra_flags(args, prog=prog, doc=doc)
    if answered is not None:
        return answered
    quiet_libraries()
    try:
        return load_config(args)
    except USAGE_ERRORS as exc:
        fail(one_line(exc))


def _help(hydra: Any, doc: str, overrides: list[str]) -> None:
    """The command's own text, then Hydra's config groups and the composed config."""
    groups = hydra.format_config_groups(lambda g: not (g == "hydra" or g.startswith("hydra/")))
    cfg = compose(CONFIG_NAME, overrides=overrides)
    print(f"{doc.strip()}\n\n== Configuration groups ==\nChoose one with GROUP=OPTION "
          f"(experiment: +experiment=NAME)\n\n{groups}\n== Config ==\nOverride anything in the "
          f"config, e.g. model.width=512 optim.lr=0.05\n\n{OmegaConf.to_yaml(cfg)}\n{FLAGS_HELP}")


def epoch_progress(epochs: int, *, desc: str = "train", every: float = 0.0, keep: bool = True,
                   bar: bool | None = None) -> tuple[Callable, Callable[[], None]]:
    """An ``on_epoch_end`` printer and its closer: a tqdm bar on a terminal (``bar``: on a
    terminal by default; cleared when closed unless ``keep``), plain lines otherwise, at most one
    every ``every`` seconds (quiet work prints nothing, long work says how it goes)."""
    if sys.stderr.isatty() if bar is None else bar:
        from tqdm import tqdm

        progress = tqdm(total=epochs, desc=desc, unit="epoch", file=sys.stderr, leave=keep)

        def update(epoch: int, m: dict[str, float]) -> None:
            progress.set_postfix(loss=f"{m['train/loss']:.4f}", val_acc=f"{m['val/acc']:.4f}")
            progress.update(1)

        return update, progress.close

    last = time.monotonic()

    def line(epoch: int, m: dict[str, float]) -> None:
        nonlocal last
        if time.monotonic() - last < every:
            return
        last = time.monotonic()
        print(f"{desc} epoch {epoch}/{epochs}: train/loss {m['train/loss']:.4f} "
              f"train/acc {m['train/acc']:.4f} val/loss {m['val/loss']:.4f} "
              f"val/acc {m['val/acc']:.4f} (epoch {m['perf/epoch_seconds']:.2f} s)", flush=True)

    return line, lambda: None


def chain(*callbacks: Callable | None) -> Callable[[int, dict[str, float]], None]:
    """One ``on_epoch_end`` that calls each callback in turn."""
    live = [c for c in callbacks if c is not None]

    def call(epoch: int, metrics: dict[str, float]) -> None:
        for c in live:
            c(epoch, metrics)

    return call
