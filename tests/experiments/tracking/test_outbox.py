"""The MLflow adapter's queue for calls made while the tracking server is unreachable."""

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from experiments import tracking


class _Flaky:
    """A stand-in for an MLflow call: fails like an unreachable server while ``down``."""

    def __init__(self) -> None:
        self.down, self.sent = True, []

    def __call__(self, value: int) -> int:
        if self.down:
            raise MlflowException("API request to http://u:pw@h/api failed: Connection refused")
        self.sent.append(value)
        return value


def test_the_outbox_queues_while_the_server_is_down_and_replays_in_order(
        capsys: pytest.CaptureFixture) -> None:
    box, call = tracking.Outbox(pause=0.0), _Flaky()
    assert box.call("first", call, 1) is None  # fails: queued, the trial goes on
    assert box.call("second", call, 2) is None  # still down: queued behind it
    assert "u:***@h" in capsys.readouterr().err
    call.down = False
    assert box.call("third", call, 3) == 3  # the server is back: the queue goes first
    assert call.sent == [1, 2, 3] and not box.queue
    assert box.finish(wait=0) is True
    assert "2 calls failed while the tracking server was unreachable" in capsys.readouterr().out


def test_the_outbox_reports_what_it_could_not_send_and_reraises_rejections(
        capsys: pytest.CaptureFixture) -> None:
    box, call = tracking.Outbox(pause=0.0), _Flaky()
    box.call("trial 3: epoch 1 metrics", call, 1)
    assert box.finish(wait=0) is False
    assert "1 call could not be logged: trial 3: epoch 1 metrics" in capsys.readouterr().err

    def rejected() -> None:
        raise MlflowException("bad param", error_code=INVALID_PARAMETER_VALUE)

    with pytest.raises(MlflowException):  # a rejected request is a bug to see, not to queue
        tracking.Outbox(pause=0.0).call("params", rejected)



def test_sent_calls_run_in_order_off_the_callers_path_and_queue_while_down(
        capsys: pytest.CaptureFixture) -> None:
    box, call = tracking.Outbox(pause=0.0), _Flaky()
    call.down = False
    for value in range(5):
        box.send(f"call {value}", call, value)
    assert box.drain(wait=10)
    assert call.sent == [0, 1, 2, 3, 4]
    call.down = True
    box.send("while down", call, 5)
    box.send("behind it", call, 6)
    assert box.drain(wait=10) and [what for what, _ in box.queue] == ["while down", "behind it"]
    call.down = False
    assert box.finish(wait=5) is True
    assert call.sent == [0, 1, 2, 3, 4, 5, 6]
    assert "2 calls failed while the tracking server was unreachable" in capsys.readouterr().out


def test_a_sent_call_mlflow_rejects_is_named_at_the_end(capsys: pytest.CaptureFixture) -> None:
    def rejected() -> None:
        raise MlflowException("bad param", error_code=INVALID_PARAMETER_VALUE)

    box = tracking.Outbox(pause=0.0)
    box.send("trial 2: params", rejected)
    assert box.finish(wait=0) is False
    err = capsys.readouterr().err
    assert "1 call could not be logged: trial 2: params (rejected: bad param" in err
