"""The from-scratch MLP core: torch and torchvision only, no experiment plumbing."""

from mlp.data import DataError, prepare, verify_data
from mlp.model import MLP, build_model, count_parameters, hidden_sizes_for
from mlp.optim import SGD, make_optimizer
from mlp.splits import Splits, load_folds, load_pool, load_splits
from mlp.train import DivergedError, FitResult, Training, evaluate, fit, fit_folds, train_epoch

__all__ = [
    "MLP",
    "SGD",
    "DataError",
    "DivergedError",
    "FitResult",
    "Training",
    "Splits",
    "build_model",
    "count_parameters",
    "evaluate",
    "fit",
    "fit_folds",
    "hidden_sizes_for",
    "load_folds",
    "load_pool",
    "load_splits",
    "make_optimizer",
    "prepare",
    "train_epoch",
    "verify_data",
]
