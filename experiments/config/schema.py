"""The settings as dataclasses, registered with Hydra as the structured config ``config_schema``:
a typo in a key or a value of the wrong type fails in Hydra with its own message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class ModelConfig:
    depth: int = 1
    width: int = 256
    hidden_sizes: list[int] | None = None
    activation: str = "relu"
    init: str = "normal"
    sigma: float = 0.01
    impl: str = "scratch"
    backward: str = "autograd"
    dropout: float = 0.0


@dataclass
class OptimConfig:
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 256
    early_stopping: int = 0
    precision: str = "auto"
    loss: str = "cross_entropy"
    layer_stats: bool = False


@dataclass
class DataConfig:
    root: str = "data"
    val_size: int = 10000
    limit_train: int | None = None
    normalize: str = "none"
    folds: int = 0


@dataclass
class MlflowConfig:
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "mlp"
    log_model: bool = True
    register: str | None = None  # a registered model's name (a sweep: its study's name if unset)


@dataclass
class SweepConfig:
    study_name: str = "mlp-sweep"
    storage: str = "sqlite:///optuna.db"
    sampler: str = "tpe"
    pruner: str = "median"
    n_trials: int = 20
    timeout: float | None = None
    epoch_budget: int | None = None
    metric: Any = "val/acc"  # one metric, or a list of them (a multi-objective study)
    workers: int = 1
    max_failures: int = 10
    seed: int = 0
    heartbeat: int = 20
    quick: bool = False
    retrain_best: bool = True
    retrain_front: int = 3  # a study of several metrics retrains up to this many front trials


@dataclass
class LayersSpace:
    depth: str | None = None
    width: str | None = None


@dataclass
class SearchConfig:
    params: dict[str, str] = field(default_factory=dict)
    when: dict[str, str] = field(default_factory=dict)
    layers: LayersSpace = field(default_factory=LayersSpace)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    seed: int = 0
    device: str = "auto"


ConfigStore.instance().store(name="config_schema", node=Config)
