"""A trial's configuration is the base composed once plus its sampled values: the same
configuration Hydra composes from all the overrides, without composing again."""

from __future__ import annotations

import pytest

from experiments.config import compose_config, to_config
from experiments.study.context import set_leaves

BASE = ["+experiment=joint", "data.root=data", "optim.momentum=0.5"]


@pytest.mark.parametrize("sampled", [
    ["seed=3"],
    ["optim.name=adam", "optim.lr=0.00049", "model.dropout=0.24", "train.epochs=40"],
    ["model.hidden_sizes=[1024,512]", "model.activation=tanh", "train.batch_size=128"],
    ["data.limit_train=null", "optim.schedule=cosine", "train.precision=bf16"],
])
def test_sampled_values_set_on_the_base_equal_a_full_compose(sampled: list[str]) -> None:
    fast = set_leaves(compose_config(BASE), sampled)
    assert fast is not None
    assert to_config(fast) == to_config(compose_config([*BASE, *sampled]))


@pytest.mark.parametrize("override", ["optim=adam", "+model.extra=1", "~model.sigma",
                                      "model.nope=1", "model=mlp"])
def test_anything_but_a_plain_setting_is_left_to_hydra(override: str) -> None:
    assert set_leaves(compose_config(BASE), [override]) is None


def test_the_base_is_not_changed() -> None:
    base = compose_config(BASE)
    before = to_config(base)
    set_leaves(base, ["optim.lr=0.3", "model.hidden_sizes=[8]"])
    assert to_config(base) == before
