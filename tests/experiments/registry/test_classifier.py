"""What a logged model accepts and refuses, checked on the pyfunc's own input function: raw
pixels (N x 784 or N x 28 x 28, whole numbers 0-255), anything else a one-line error that the
model server turns into HTTP 400."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from experiments.registry import classifier
from experiments.registry.classifier import pixels
from mlp.data import CLASSES


def test_rows_images_and_data_frames_of_8_bit_pixels_are_accepted() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    rows = images.reshape(3, 784)
    for given in (rows, images, images.tolist(), rows.astype(np.float64), pd.DataFrame(rows)):
        x = pixels(given)
        assert x.dtype == np.float32 and x.shape == (3, 784)
        assert np.array_equal(x, rows.astype(np.float32))


@pytest.mark.parametrize(("given", "says"), [
    (np.zeros((2, 100)), "shape (2, 100)"),
    (np.zeros(784), "shape (784,)"),  # one image still needs its batch axis
    (np.zeros((2, 28, 27)), "shape (2, 28, 27)"),
    ([["a"] * 784], "must be numbers"),
    (np.full((1, 784), 0.5), "fractions"),  # 0-1 pixels: the model takes 0-255
    (np.full((1, 784), 256.0), "0-255"),
    (np.full((1, 784), -1.0), "0-255"),
    (np.full((1, 784), np.nan), "0-255"),
    (np.zeros((0, 784)), "no image"),
    ([[1, 2], [3]], "not an array"),
])
def test_anything_else_is_refused_with_a_one_line_invalid_parameter_error(given: object, says: str) -> None:
    with pytest.raises(MlflowException) as raised:
        pixels(given)
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
    message = raised.value.message
    assert says in message and "\n" not in message and "N x 784 or N x 28 x 28" in message


def test_the_model_code_names_the_classes_as_the_project_does_and_imports_none_of_it() -> None:
    assert classifier.LABELS == CLASSES
    tree = ast.parse(Path(classifier.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"__future__", "typing", "mlflow", "numpy", "pandas", "torch"}
