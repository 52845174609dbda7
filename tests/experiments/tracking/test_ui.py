"""``make ui``: the Makefile's command serves the embedded store, and the experiment it shows is
marked as model training."""

import json
import os
import re
import shlex
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from experiments.tracking import client_for
from experiments.tracking.client import KIND, KIND_TAG
from experiments.tracking.server import free_port
from tests.conftest import REPO, wait_for

pytestmark = pytest.mark.slow


def ui_command(port: int) -> list[str]:
    """The ``mlflow ui`` line of the Makefile's ``ui`` target, on ``port``."""
    recipe = re.search(r"^ui:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M)
    assert recipe, "the Makefile has no ui target"
    line = next(x.strip() for x in recipe[1].splitlines() if "mlflow ui" in x)
    words = shlex.split(line.replace("$(BIN)", str(REPO / ".venv" / "bin")))
    return [*words[:words.index("--port") + 1], str(port)]


def test_make_ui_serves_the_embedded_store_with_the_experiment_tagged(tmp_path: Path) -> None:
    client_for(f"sqlite:///{tmp_path}/mlflow.db", "mlp")  # what a first sweep or train creates
    port = free_port()
    proc = subprocess.Popen(ui_command(port), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def health() -> bool | None:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                return r.status == 200 or None
        except OSError:
            assert proc.poll() is None, "mlflow ui exited"
            return None

    try:
        wait_for(health, "mlflow ui to answer /health", timeout=120)
        url = f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=mlp"
        with urllib.request.urlopen(url, timeout=10) as r:
            tags = {t["key"]: t["value"] for t in json.load(r)["experiment"]["tags"]}
        assert tags[KIND_TAG] == KIND
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the workers it started
        proc.wait(timeout=30)
