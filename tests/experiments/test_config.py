"""Config errors: Hydra's message for unknown keys and wrong types, one line and exit 2 for
values out of range, and nothing trained or logged in either case."""

from pathlib import Path

import pytest

from experiments import train
from experiments.config import load_config
from tests.conftest import small_overrides


def test_defaults_are_the_chapters() -> None:
    cfg = load_config()
    assert (cfg.model.depth, cfg.model.width, cfg.model.activation) == (1, 256, "relu")
    assert (cfg.model.init, cfg.model.sigma, cfg.optim.name, cfg.optim.lr) == ("normal", 0.01,
                                                                               "sgd", 0.1)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.data.val_size) == (10, 256, 10000)
    assert cfg.mlflow.tracking_uri == "sqlite:///mlflow.db"


@pytest.mark.parametrize(("override", "message"), [
    ("model.widht=3", "Key 'widht' not in 'ModelConfig'"),
    ("model.width=abc", "could not be converted to Integer"),
    ("model.depth=0", "model.depth=0: must be >= 1"),
    ("model.width=-4", "model.width=-4: must be >= 1"),
    ("train.epochs=0", "train.epochs=0: must be >= 1"),
    ("train.batch_size=0", "train.batch_size=0: must be >= 1"),
    ("optim.lr=0", "optim.lr=0.0: must be > 0"),
    ("optim.name=rmsprop", "optim.name='rmsprop': expected one of sgd, adam"),
    ("model.activation=gelu", "expected one of relu, sigmoid, tanh"),
    ("data.val_size=60000", "data.val_size=60000: must be in 1..59999"),
    ("data.limit_train=59500", "data.limit_train=59500: must be in 1..59000"),
    ("model.backward=manual model.impl=concise", "needs model.impl=scratch"),
])
def test_bad_config_exits_2_with_one_line_before_any_work(
        workdir: Path, capsys: pytest.CaptureFixture, override: str, message: str) -> None:
    with pytest.raises(SystemExit) as info:
        train.main([*small_overrides(workdir), *override.split()])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (workdir / "mlflow.db").exists() and not (workdir / "mlruns").exists()
