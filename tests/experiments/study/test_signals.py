"""An interrupted worker always ends: one whose clean-up hangs prints where each thread was and
exits within its bound, so an orphan never holds memory and CPUs for nobody."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.conftest import REPO

HANGS = """
import time
from experiments.study import signals
signals.install(exit_within=0.5)
try:
    print("ready", flush=True)  # inside the try: the signal may come at once
    time.sleep(60)
except KeyboardInterrupt:
    time.sleep(60)  # a clean-up that never ends
"""


def test_a_worker_whose_clean_up_hangs_exits_with_its_stacks_after_the_bound() -> None:
    proc = subprocess.Popen([sys.executable, "-c", HANGS], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)  # it would sleep 60 s more without the bound
    assert proc.returncode == -signal.SIGKILL, err
    assert "still running 0.5 s after the interrupt; exiting" in err
    assert "time.sleep(60)  # a clean-up that never ends" in err or 'File "<string>"' in err
