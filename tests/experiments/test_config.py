"""Config errors: Hydra's message for unknown keys and wrong types, one line and exit 2 for
values out of range, keys added with ``+`` that no setting declares and YAML files Hydra cannot
read, and nothing trained or logged in any case."""

from pathlib import Path
from types import ModuleType

import pytest
import torch

from experiments import sweep, train
from experiments.config import ConfigError, compose_config, load_config
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
    ("sweep.n_trails=5", "Could not override 'sweep.n_trails'"),
    ("+sweep.n_trails=5", "unknown config key sweep.n_trails (did you mean sweep.n_trials?)"),
    ("++model.widht=3", "unknown config key model.widht (did you mean model.width?)"),
    ("+seeed=3", "unknown config key seeed (did you mean seed?)"),
    ("+model.extra.deep=1", "unknown config key model.extra"),
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
    ("train.precision=fp16", "train.precision='fp16': expected one of fp32, bf16, auto"),
    ("data.folds=1", "data.folds=1: must be 0 (off) or >= 2"),
    ("data.folds=-3", "data.folds=-3: must be 0 (off) or >= 2"),
    ("data.folds=2001", "data.folds=2001: more folds than the 2000 training images they split "
                        "(data.limit_train)"),
    ("data.folds=60001 data.limit_train=null", "data.folds=60001: more folds than the 60000 "
                                               "training images they split"),
    ("train.loss=hinge", "train.loss='hinge': expected one of cross_entropy, mse"),
    ("data.normalize=minmax", "data.normalize='minmax': expected one of none, standardize"),
    ("train.layer_stats=true model.impl=concise", "train.layer_stats=true: needs model.impl=scratch"),
])
def test_bad_config_exits_2_with_one_line_before_any_work(
        workdir: Path, capsys: pytest.CaptureFixture, override: str, message: str) -> None:
    with pytest.raises(SystemExit) as info:
        train.main([*small_overrides(workdir), *override.split()])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (workdir / "mlflow.db").exists() and not (workdir / "mlruns").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_device_cuda_without_cuda_is_refused_before_any_store_is_opened(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    """Not blamed on a store, and no store left behind holding an empty study."""
    for command in (train.main, sweep.main):
        with pytest.raises(SystemExit) as info:
            command([*small_overrides(workdir), f"sweep.storage=sqlite:///{workdir}/optuna.db",
                     "device=cuda"])
        err = capsys.readouterr().err.strip()
        assert info.value.code == 2 and "\n" not in err
        assert err == "error: device=cuda: torch sees no CUDA device here; use device=auto or device=cpu"
    assert sorted(p.name for p in workdir.iterdir() if p.name != "data") == []


def test_more_workers_than_the_machine_runs_are_refused_before_any_store_is_opened(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    """64 workers on 2 cores once took all 24 GiB and left 63 orphans running."""
    with pytest.raises(SystemExit) as info:
        sweep.main([*small_overrides(workdir), f"sweep.storage=sqlite:///{workdir}/optuna.db",
                    "sweep.workers=100000"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and "\n" not in err
    assert err.startswith("error: sweep.workers=100000: this machine runs at most ")
    assert sorted(p.name for p in workdir.iterdir() if p.name != "data") == []


def test_free_form_keys_and_overlays_still_take_plus() -> None:
    cfg = load_config(["+experiment=joint", "+search.params={optim.lr: '0.1'}",
                       "+search.when={model.dropout: 'optim.name=adam'}"])
    assert cfg.search.params["optim.lr"] == "0.1" and cfg.search.params["optim.name"]
    assert cfg.search.when == {"optim.momentum": "optim.name=sgd", "model.dropout": "optim.name=adam"}
    empty = load_config(["search=none", "+search.when={optim.lr: 'optim.name=sgd'}"])
    assert empty.search.when == {"optim.lr": "optim.name=sgd"}


DUPLICATES = {  # the YAML after its comment line, and the key written twice
    "params": ("params:\n  model.width: choice(16, 32)\n  optim.lr: interval(0.01, 0.1)\n"
               "  model.width: choice(64, 128)\n", "model.width"),
    "top-level": ("params:\n  optim.lr: interval(0.01, 0.1)\nwhen: {}\nparams: {}\n", "params"),
}


@pytest.mark.parametrize("where", list(DUPLICATES))
@pytest.mark.parametrize("command", [train, sweep], ids=["train", "sweep"])
def test_a_duplicate_key_in_a_search_yaml_is_one_line_naming_file_and_key(
        workdir: Path, capsys: pytest.CaptureFixture, where: str, command: ModuleType) -> None:
    (text, key), line = DUPLICATES[where], 5  # the second one is on line 5 in both
    path = workdir / "conf" / "search" / "dup.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("# a search space with a key written twice\n" + text)
    with pytest.raises(ConfigError, match=f"found duplicate key {key}$"):
        compose_config(["search=dup"])
    with pytest.raises(SystemExit) as info:
        command.main([*small_overrides(workdir), "search=dup",
                      f"sweep.storage=sqlite:///{workdir}/optuna.db"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: bad YAML in {path}, line {line}: found duplicate key {key}"
    assert not any(workdir.glob("*.db")) and not (workdir / "mlruns").exists()


NEW_KEYS_BAD = [
    ("data.folds=1", "data.folds=1: must be 0 (off) or >= 2"),
    ("data.folds=2001", "more folds than the 2000 training images"),
    ("train.loss=hinge", "train.loss='hinge': expected one of cross_entropy, mse"),
    ("data.normalize=minmax", "data.normalize='minmax': expected one of none, standardize"),
]


@pytest.mark.parametrize(("override", "message"), NEW_KEYS_BAD)
def test_a_sweep_with_bad_folds_loss_or_normalisation_writes_nothing(
        workdir: Path, capsys: pytest.CaptureFixture, override: str, message: str) -> None:
    with pytest.raises(SystemExit) as info:
        sweep.main([*small_overrides(workdir), "search=tiny", override,
                    f"sweep.storage=sqlite:///{workdir}/optuna.db"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.startswith("error: ") and message in err and "\n" not in err
    assert not any(workdir.glob("*.db")) and not (workdir / "mlruns").exists()


def test_scoring_a_search_over_losses_by_validation_loss_is_refused(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        sweep.main([*small_overrides(workdir), "+experiment=loss_function", "sweep.metric=val/loss",
                    f"sweep.storage=sqlite:///{workdir}/optuna.db"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and "sweep.metric=val/loss: the search varies train.loss" in err
    assert not any(workdir.glob("*.db"))
