"""The study engine: search spaces, the Optuna study and its trial budget, trials logged as
MLflow child runs of the study's parent run, workers, and the study's finish."""

from experiments.study.budget import DONE, add_tickets, claim, counts, top_up
from experiments.study.context import SweepContext, connect, prepare
from experiments.study.parent import SweepError
from experiments.study.run import run_sweep, start, sweep
from experiments.study.space import SpaceError, build_space
from experiments.study.storage import open_storage, serialised

__all__ = ["DONE", "SpaceError", "SweepContext", "SweepError", "add_tickets", "build_space",
           "claim", "connect", "counts", "open_storage", "prepare", "run_sweep", "serialised",
           "start", "sweep", "top_up"]
