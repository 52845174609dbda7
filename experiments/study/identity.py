"""A study is one experiment: what makes its trials comparable, recorded when it is created and
checked by every later run.

The identity is everything that changes a trial's result for the same sampled values: the fixed
configuration (model, optim, train, data and seed, including the fidelity ``sweep.quick`` sets),
the search space and the metric. Runtime settings are not part of it: how many trials, for how
long, on how many workers, which sampler picks the next point, where the stores are, where the
data lives and which device trains (``sweep.*`` but the metric, ``mlflow.*``, ``data.root``,
``device``), and whether per-layer statistics are recorded (``train.layer_stats``). A run that
differs is refused before it writes anything; it is never mixed in.
``train.precision`` is recorded as resolved (``auto`` -> fp32 or bf16, timed once when the study
is created; every later run adopts it), so bf16 and fp32 trials never share a study.
"""

from __future__ import annotations

import hashlib
import json

import optuna

from experiments.config import METRICS, Config, flatten, objectives
from experiments.study.space import Space
from experiments.training.runner import precision_of, resolve_device

IDENTITY_ATTR, FINGERPRINT_ATTR, BASE_ATTR = "identity", "fingerprint", "base_overrides"
SECTIONS = ("model.", "optim.", "train.", "data.")
RUNTIME_KEYS = ("data.root", "device", "train.layer_stats")  # the last records, and changes nothing
RUNTIME_SECTIONS = ("sweep.", "mlflow.")
STUDY_KEYS = ("sweep.quick", "sweep.metric")  # sweep keys that shape the results
SHOWN = 4  # differing keys named in the error, the rest counted
# Keys added to the identity after studies were first recorded, with the value every trial of
# such an older study had: a study that lacks the key is read as having that value.
ADDED = {"train.precision": json.dumps("fp32"), "train.loss": json.dumps("cross_entropy"),
         "data.normalize": json.dumps("none"), "data.folds": json.dumps(0)}


class IdentityError(ValueError):
    """This run's settings are another experiment than the study's; one line, exit code 2."""


def identity_of(cfg: Config, space: Space) -> dict[str, str]:
    """``{key: value as JSON}`` of everything that makes the study's trials comparable."""
    flat = flatten(cfg)
    out = {k: json.dumps(v) for k, v in flat.items()
           if k.startswith(SECTIONS) and k not in RUNTIME_KEYS}
    out["train.precision"] = json.dumps(precision_of(cfg, resolve_device(cfg.device))[0])
    out["seed"] = json.dumps(cfg.seed)
    objs = objectives(cfg.sweep)  # one metric in its natural direction as it always was
    out["sweep.metric"] = json.dumps(objs[0][0] if len(objs) == 1 and objs[0][1] == METRICS[objs[0][0]]
                                     else [f"{n}:{d}" for n, d in objs])
    out.update({f"search.{k}": json.dumps(v) for k, v in space.describe().items()})
    return out


def fingerprint(identity: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def is_runtime(override: str) -> bool:
    """True for an override of a runtime setting (``sweep.storage=...``, ``mlflow.*``...)."""
    key = override.lstrip("+~").split("=", 1)[0]
    if key in STUDY_KEYS:
        return False
    return key in RUNTIME_KEYS or key.startswith(RUNTIME_SECTIONS)


def rebase(overrides: list[str], stored: list[str] | None) -> list[str]:
    """This run's runtime overrides on the study's own recorded base: trials and the best
    configuration are composed from what created the study, never from this command line."""
    if stored is None:
        return list(overrides)
    return [*(o for o in overrides if is_runtime(o)), *(o for o in stored if not is_runtime(o))]


def record(study: optuna.Study, identity: dict[str, str], overrides: list[str]) -> None:
    """Store the identity and the base overrides (runtime settings dropped: a password in a
    store URL is never kept) on a new study, or on an old one that had none."""
    study.set_user_attr(IDENTITY_ATTR, identity)
    study.set_user_attr(FINGERPRINT_ATTR, fingerprint(identity))
    if BASE_ATTR not in study.user_attrs:
        study.set_user_attr(BASE_ATTR, [o for o in overrides if not is_runtime(o)])


def differences(stored: dict[str, str], current: dict[str, str]) -> list[str]:
    """``key (study: a, this run: b)`` for each key whose value differs."""
    keys = sorted(set(stored) | set(current))
    return [f"{k} (study: {stored.get(k, 'unset')}, this run: {current.get(k, 'unset')})"
            for k in keys if stored.get(k) != current.get(k)]


def check(study: optuna.Study, stored: dict[str, str], identity: dict[str, str], *,
          how: str = "") -> None:
    """Raise :class:`IdentityError` when this run's identity differs from the study's."""
    stored = {**ADDED, **stored}
    if fingerprint(stored) == fingerprint(identity):
        return
    diff = differences(stored, identity)
    more = f" and {len(diff) - SHOWN} more" if len(diff) > SHOWN else ""
    name = study.study_name.removesuffix("-quick")  # sweep.quick adds it again
    raise IdentityError(
        f"study {study.study_name!r} is another experiment{how}: {'; '.join(diff[:SHOWN])}{more}. "
        "A study keeps one configuration, search space and metric: rerun with the study's "
        f"settings, or start a new study with sweep.study_name={name}-2")
