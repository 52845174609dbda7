"""The trained model as a self-contained MLflow model: a ``torch.export`` program from pixels to
probabilities, behind the pyfunc interface of :mod:`experiments.registry.classifier`."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, Schema
from torch import nn

from experiments.tracking import no_progress_bars
from mlp.train import autocast_for

CODE = Path(__file__).with_name("classifier.py")
OUTPUT = Schema([ColSpec("long", "class"), ColSpec("string", "label"),
                 ColSpec(Array("double"), "probabilities")])
DESCRIPTION = ("Fashion-MNIST classifier. Input: N x 784 or N x 28 x 28 pixels, whole numbers 0-255 "
               "(JSON: {\"inputs\": [[0, 0, ..., 255]]}). Output per image: class (0-9), label, "
               "probabilities (10).")


class Served(nn.Module):
    """Pixels (N, 784) in 0-255 to class probabilities, through the same steps as the run's test
    evaluation: divided by 255, standardised with the training split's ``mean`` and ``std``, cast
    to the run's compute ``dtype``, the network, a softmax in fp32."""

    def __init__(self, net: nn.Module, *, mean: float, std: float, dtype: torch.dtype) -> None:
        super().__init__()
        self.net, self.mean, self.std, self.dtype = net, float(mean), float(std), dtype

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = ((pixels.reshape(-1, 784) / 255.0 - self.mean) / self.std).to(self.dtype)
        with autocast_for(self.net, x):  # as the test evaluation multiplies
            logits = self.net(x)
        return torch.softmax(logits.float(), dim=1)  # (N, 10)


def exported(net: nn.Module, *, mean: float, std: float, dtype: torch.dtype,
             example: torch.Tensor) -> torch.export.ExportedProgram:
    """A copy of ``net`` (on the CPU, in evaluation mode) as a program of any batch size. The
    copy's parameters own their storage: a bf16-trained net's are views of one buffer
    (:mod:`mlp.casts`), which the program's file would store as one group with a warning."""
    served = Served(copy.deepcopy(net).cpu().eval(), mean=mean, std=std, dtype=dtype).eval()
    batch = torch.export.Dim("batch", min=1)
    return torch.export.export(served, (example.float(),), dynamic_shapes=({0: batch},))


def log_model(net: nn.Module, *, mean: float, std: float, dtype: torch.dtype,
              example: torch.Tensor) -> str:
    """Log ``net`` as the active run's ``model`` (pixels in, see :data:`DESCRIPTION`), with two
    test images (``example``, uint8 (N, 28, 28)) as its input example; the model's URI."""
    example = example.reshape(len(example), 784)
    program = exported(net, mean=mean, std=std, dtype=dtype, example=example)
    with tempfile.TemporaryDirectory() as tmp, no_progress_bars():
        path = Path(tmp) / "program.pt2"
        torch.export.save(program, path)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(CODE), artifacts={"program": str(path)},
            signature=ModelSignature(outputs=OUTPUT),
            input_example=example.numpy().astype(np.int64), metadata={"description": DESCRIPTION},
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                              f"mlflow=={mlflow.__version__}", "numpy", "pandas"])
    return info.model_uri
