"""The from-scratch MLP core: torch and torchvision only, no experiment plumbing."""

from mlp.data import DataError, Splits, load_splits, prepare, verify_data
from mlp.model import MLP, build_model, count_parameters, hidden_sizes_for
from mlp.optim import SGD, make_optimizer
from mlp.train import DivergedError, FitResult, evaluate, fit, train_epoch

__all__ = [
    "MLP",
    "SGD",
    "DataError",
    "DivergedError",
    "FitResult",
    "Splits",
    "build_model",
    "count_parameters",
    "evaluate",
    "fit",
    "hidden_sizes_for",
    "load_splits",
    "make_optimizer",
    "prepare",
    "train_epoch",
    "verify_data",
]
