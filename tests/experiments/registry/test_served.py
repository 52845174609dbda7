"""A registered model as its users take it: loaded by name and alias in a fresh interpreter
where the project cannot be imported, and served by ``mlflow models serve`` over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from experiments import train
from experiments.tracking.server import free_port
from mlp.data import CLASSES, load_raw
from tests.conftest import DATA_ROOT, small_overrides, wait_for

pytestmark = pytest.mark.slow

NAME = "fmnist"
# Run in a fresh interpreter: mlp and experiments cannot be imported, the test set is read from
# the data set's own files, the model loaded by its alias; prints what the test checks.
LOAD_WITHOUT_PROJECT = """
import importlib.abc, json, sys
import numpy as np

class NoProject(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mlp", "experiments", "tests"):
            raise ImportError(f"the model imported {name}")

sys.meta_path.insert(0, NoProject())
import mlflow

raw = sys.argv[2]
images = np.frombuffer(open(f"{raw}/t10k-images-idx3-ubyte", "rb").read(), np.uint8, offset=16)
labels = np.frombuffer(open(f"{raw}/t10k-labels-idx1-ubyte", "rb").read(), np.uint8, offset=8)
model = mlflow.pyfunc.load_model(sys.argv[1])
rows = model.predict(images.reshape(-1, 784))
squares = model.predict(images.reshape(-1, 28, 28)[:100].tolist())
print(json.dumps({"correct": int((rows["class"].to_numpy() == labels).sum()), "n": len(labels),
                  "same_as_squares": rows["class"][:100].tolist() == squares["class"].tolist(),
                  "probability_sums": rows["probabilities"].map(sum).round(4).unique().tolist(),
                  "outputs": model.metadata.signature.outputs.input_names()}))
"""


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two standardised bf16 runs registered under one name (the alias on the second); the
    working directory their store is in."""
    tmp = tmp_path_factory.mktemp("registry")
    before, here = os.environ.get("MLFLOW_TRACKING_URI"), Path.cwd()
    os.chdir(tmp)
    try:
        for width in (32, 48):
            assert train.main([*small_overrides(tmp), f"model.width={width}", "data.normalize=standardize",
                               "train.precision=bf16", f"mlflow.register={NAME}"]) == 0
    finally:
        os.chdir(here)
        mlflow.set_tracking_uri(before)
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield tmp


def _uri(tmp: Path) -> str:
    return f"sqlite:///{tmp}/mlflow.db"


def test_each_registered_run_is_a_version_with_its_tags_and_best_moves_to_the_newest(
        registered: Path, capsys: pytest.CaptureFixture) -> None:
    client = MlflowClient(_uri(registered))
    versions = sorted(client.search_model_versions(f"name = '{NAME}'"), key=lambda v: int(v.version))
    assert [str(v.version) for v in versions] == ["1", "2"]
    assert str(client.get_model_version_by_alias(NAME, "best").version) == "2"
    for v in versions:
        run = client.get_run(v.run_id)
        assert v.tags["test_acc"] == f"{run.data.metrics['test/acc']:.4f}"
        assert v.tags["val_acc"] == f"{run.data.metrics['val/acc_best']:.4f}"
        assert v.tags["precision"] == "bf16"
        assert v.tags["reproduce"].startswith("python -m experiments.train ")
        assert "model.width=" in v.tags["reproduce"]


def test_the_best_alias_loads_without_the_project_and_scores_the_logged_test_accuracy(
        registered: Path) -> None:
    client = MlflowClient(_uri(registered))
    best = client.get_model_version_by_alias(NAME, "best")
    logged = client.get_run(best.run_id).data.metrics["test/acc"]
    seen = load_without_project(f"models:/{NAME}@best", _uri(registered), registered)
    assert seen["correct"] / seen["n"] == logged  # the same 10,000 images, the same precision
    assert seen["same_as_squares"] and seen["probability_sums"] == [1.0]
    assert seen["outputs"] == ["class", "label", "probabilities"]


def load_without_project(uri: str, tracking_uri: str, home: Path) -> dict:
    """What :data:`LOAD_WITHOUT_PROJECT` saw of model ``uri`` on ``tracking_uri``."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "MLFLOW_TRACKING_URI": tracking_uri}
    proc = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_PROJECT, uri,
                           str(DATA_ROOT / "FashionMNIST" / "raw")], cwd="/", env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _post(port: int, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _answers(port: int) -> bool | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
            return True
    except (OSError, urllib.error.URLError):
        return None


def test_mlflow_models_serve_answers_with_the_models_predictions_and_400_for_bad_requests(
        registered: Path) -> None:
    port, log = free_port(), registered / "serve.log"
    bin_dir = str(Path(sys.executable).parent)  # mlflow runs uvicorn from PATH
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "MLFLOW_TRACKING_URI": _uri(registered)}
    with open(log, "w") as out:
        cmd = [f"{bin_dir}/mlflow", "models", "serve", "--model-uri", f"models:/{NAME}@best",
               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
        server = subprocess.Popen(cmd, cwd=registered, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        def up() -> bool | None:
            assert server.poll() is None, log.read_text()[-3000:]
            return _answers(port)

        wait_for(up, "the model server to answer /ping", timeout=180)
        _, _, test_x, test_y = load_raw(str(DATA_ROOT))
        images = test_x[:256].reshape(256, 784).numpy()
        status, body = _post(port, {"inputs": images.tolist()})
        assert status == 200, body
        served = [p["class"] for p in body["predictions"]]
        mlflow.set_tracking_uri(_uri(registered))
        model = mlflow.pyfunc.load_model(f"models:/{NAME}@best")  # in this process, the same store
        assert served == model.predict(images)["class"].tolist()
        client = MlflowClient(_uri(registered))
        logged = client.get_run(client.get_model_version_by_alias(NAME, "best").run_id).data.metrics
        accuracy = float(np.mean(np.array(served) == test_y[:256].numpy()))
        assert abs(accuracy - logged["test/acc"]) < 0.15  # 256 of the 10,000 images it was tested on
        assert {p["label"] for p in body["predictions"]} <= set(CLASSES)
        assert all(abs(sum(p["probabilities"]) - 1) < 1e-4 for p in body["predictions"])
        for bad, says in [({"inputs": images[:2, :100].tolist()}, "shape (2, 100)"),
                          ({"inputs": [["a"] * 784]}, "must be numbers"),
                          ({"inputs": (images[:2] / 255).tolist()}, "fractions")]:
            status, body = _post(port, bad)
            assert status == 400, body
            assert says in body["message"] and "stack_trace" not in body and "Traceback" not in str(body)
        assert _post(port, {"inputs": images[:1].tolist()})[0] == 200  # still serving
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()

