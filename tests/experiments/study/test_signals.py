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


SECOND_SIGNAL = """
import faulthandler, signal, sys
from experiments.study import signals

faulthandler.dump_traceback_later(60, exit=True)  # a hang prints where it is and fails the test


def in_handler(frame):
    while frame is not None and frame.f_code is not signals._once.__code__:
        frame = frame.f_back
    return frame is not None


def interrupt(second_at):
    '''SIGTERM; a second SIGTERM at the handler's line ``second_at`` (every line Python runs
    inside it, the libraries it calls included). Returns the KeyboardInterrupts and the lines.'''
    signals._state["interrupted"] = False  # a fresh process, as far as the handler can tell
    signals.install(exit_within=3600)
    lines = 0

    def line(frame, event, arg):
        nonlocal lines
        if event == "line":
            lines += 1
            if lines == second_at:
                signal.raise_signal(signal.SIGTERM)
        return line

    sys.settrace(lambda frame, event, arg: line if in_handler(frame) else None)
    interrupts = 0
    try:
        try:
            signal.raise_signal(signal.SIGTERM)
        finally:
            sys.settrace(None)
    except KeyboardInterrupt:
        interrupts += 1
    assert signal.getsignal(signal.SIGTERM) is signals._ignore
    return interrupts, lines


_, n = interrupt(0)
print(n, [interrupt(k)[0] for k in range(1, n + 1)], flush=True)
"""


def test_a_second_signal_at_any_line_of_the_handler_gives_one_interrupt_and_no_hang() -> None:
    """A worker whose parent dies gets SIGTERM twice (the kernel's, its parent watch's); Python
    runs the handler for the second inside the first, wherever it is. Each line in turn."""
    done = subprocess.run([sys.executable, "-c", SECOND_SIGNAL], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines, interrupts = done.stdout.split(" ", 1)
    assert int(lines) > 0
    assert interrupts.strip() == str([1] * int(lines))
