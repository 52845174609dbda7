"""The configuration: the settings' dataclasses (``schema``), their composition with Hydra
(``compose``), the checks a composed config must pass (``checks``) and a config in words: its
run name and the command that reproduces it (``describe``)."""

from experiments.config.checks import (
    CHOICES,
    METRICS,
    QUICK,
    ConfigError,
    apply_quick,
    objectives,
    quick_name,
    validate,
)
from experiments.config.compose import (
    CONF_DIR,
    CONFIG_NAME,
    check_keys,
    compose_config,
    flatten,
    hydra_session,
    load_config,
    local_conf_dir,
    to_config,
    to_yaml,
    with_local_conf,
)
from experiments.config.describe import (
    changes,
    label,
    number,
    plural,
    report_command,
    reproduce,
    short_name,
)
from experiments.config.schema import (
    Config,
    DataConfig,
    LayersSpace,
    MlflowConfig,
    ModelConfig,
    OptimConfig,
    SearchConfig,
    SweepConfig,
    TrainConfig,
)

__all__ = ["CHOICES", "CONFIG_NAME", "CONF_DIR", "METRICS", "QUICK", "Config", "ConfigError", "DataConfig",
           "LayersSpace", "MlflowConfig", "ModelConfig", "OptimConfig", "SearchConfig", "SweepConfig",
           "TrainConfig", "apply_quick", "changes", "check_keys", "compose_config", "flatten",
           "hydra_session", "label", "load_config", "local_conf_dir", "number", "objectives",
           "plural", "quick_name", "report_command", "reproduce", "short_name", "to_config", "to_yaml",
           "validate", "with_local_conf"]
