"""A Fashion-MNIST classifier as MLflow loads and serves it (a "model from code").

MLflow copies this file into every model the project logs and runs it when the model is loaded
(``mlflow.pyfunc.load_model``, ``mlflow models serve``): it imports torch, numpy, pandas and
mlflow, never the project, so a model loads wherever those four are installed. The network is
the model's ``program`` artifact, a ``torch.export`` program that takes pixels and returns
class probabilities, in the precision the run tested in (standardisation inside it when the
run used it).

Input: N images of 28 x 28 pixels, as N x 784 or N x 28 x 28, each pixel a whole number from 0
(black) to 255 (white): the data set's own files and 8-bit greyscale images. Anything else gets
a one-line error (HTTP 400 behind ``mlflow models serve``). Output, one row per image: ``class``
(0-9), ``label`` (its name) and ``probabilities`` (the 10 classes' softmax).
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

LABELS = ["t-shirt", "trouser", "pullover", "dress", "coat",
          "sandal", "shirt", "sneaker", "bag", "ankle boot"]
BATCH = 8192  # rows per forward pass, as the run's test evaluation


def bad_input(message: str) -> MlflowException:
    return MlflowException(f"{message}; expected N x 784 or N x 28 x 28 pixels, whole numbers 0-255",
                           error_code=INVALID_PARAMETER_VALUE)


def pixels(model_input: Any) -> np.ndarray:
    """``model_input`` (an array, a data frame or nested lists) as an (N, 784) float32 array of
    0-255 pixels; a :class:`MlflowException` saying what is wrong otherwise."""
    if isinstance(model_input, pd.DataFrame):
        model_input = model_input.to_numpy()
    try:
        x = np.asarray(model_input)
    except ValueError as exc:  # ragged lists
        raise bad_input(f"the images are not an array ({exc})") from None
    if x.dtype.kind not in "biuf":
        raise bad_input(f"pixels must be numbers, got {x.dtype.name} values")
    if not (x.ndim == 2 and x.shape[1] == 784) and not (x.ndim == 3 and x.shape[1:] == (28, 28)):
        raise bad_input(f"got an array of shape {x.shape}")
    if len(x) == 0:
        raise bad_input("got no image")
    x = x.reshape(len(x), 784).astype(np.float32)
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 255:
        raise bad_input(f"pixels must lie in 0-255, got values from {x.min():g} to {x.max():g}")
    if (x != np.round(x)).any():
        raise bad_input("pixels must be whole numbers 0-255, got fractions (for 0-1 pixels, "
                        "multiply by 255 and round)")
    return x


class Classifier(mlflow.pyfunc.PythonModel):
    """The ``program`` artifact behind MLflow's pyfunc interface."""

    # pixels() checks the input (arrays, data frames, lists: more than a type hint can say), so
    # MLflow's validation by type hints, and its warning that predict() has none, are off
    _skip_type_hint_validation = True

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.program = torch.export.load(context.artifacts["program"]).module()

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 - no hints, see above
        x = torch.from_numpy(pixels(model_input))
        with torch.no_grad():
            probs = torch.cat([self.program(x[i:i + BATCH]) for i in range(0, len(x), BATCH)])
        classes = probs.argmax(dim=1).tolist()
        return pd.DataFrame({"class": classes, "label": [LABELS[c] for c in classes],
                             "probabilities": probs.tolist()})


mlflow.models.set_model(Classifier())
