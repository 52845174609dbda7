"""Search spaces: every shipped space and experiment composes and checks; a ``when:`` condition
no trial can meet is refused in one line before any study exists; a condition is tested on the
other key's sampled value, whatever order the keys are written in."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from experiments import sweep
from experiments.config import CONF_DIR, SearchConfig, compose_config, to_config
from experiments.study.points import extremes, middle
from experiments.study.space import Space, SpaceError, build_space, grid, sample

SHIPPED = ([f"+experiment={p.stem}" for p in sorted((CONF_DIR / "experiment").glob("*.yaml"))]
           + [f"search={p.stem}" for p in sorted((CONF_DIR / "search").glob("*.yaml"))])
BASE_ACTIVE = {"optim.momentum": "interval(0.0, 0.9)"}  # the conditional key in the cases below


def space(params: dict[str, str], when: dict[str, str]) -> Space:
    return build_space(SearchConfig(params=params, when=when), compose_config([]))


@pytest.mark.parametrize("choice", SHIPPED)
def test_every_shipped_experiment_and_search_space_composes_and_checks(choice: str) -> None:
    cfg = to_config(base := compose_config([choice]))
    built = build_space(cfg.search, base)
    for ends in extremes(built):  # as the sweep checks it before it starts
        to_config(compose_config([choice, *ends]))
    if cfg.sweep.sampler == "grid":
        assert grid(built)
    assert built.is_empty == (choice == "search=none")


@pytest.mark.parametrize(("params", "condition", "message"), [
    ({"optim.name": "choice(sgd, adam)"}, "optim.name=sgdd",
     "search key 'optim.momentum': its condition optim.name=sgdd can never hold "
     "(searched values: choice(sgd, adam))"),
    ({}, "optim.name=adam",
     "its condition optim.name=adam can never hold (optim.name is 'sgd' and not searched)"),
    ({}, "optim.name=sgdd|adamm", "its condition optim.name=sgdd|adamm can never hold"),
    ({"optim.lr": "tag(log, interval(0.01, 0.5))"}, "optim.lr=0.9",
     "its condition optim.lr=0.9 can never hold (searched values: tag(log, interval(0.01, 0.5)))"),
    ({"model.depth": "range(1, 4)"}, "model.depth=4", "(searched values: range(1, 4))"),
    ({"model.depth": "range(1, 4)"}, "model.depth=2.5", "model.depth=2.5 can never hold"),
    ({"model.activation": "tanh"}, "model.activation=relu", "(searched values: tanh)"),
])
def test_a_condition_no_trial_can_meet_is_refused(params: dict, condition: str, message: str) -> None:
    with pytest.raises(SpaceError, match="can never hold") as info:
        space({**params, **BASE_ACTIVE}, {"optim.momentum": condition})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_condition_on_a_conditional_key_may_meet_its_configured_value() -> None:
    params = {"optim.name": "choice(sgd, adam)", "optim.lr": "interval(0.01, 0.5)", **BASE_ACTIVE}
    with pytest.raises(SpaceError, match=r"\(optim.name is 'sgd' when not searched; searched "
                                         r"values: choice\(sgd, adam\)\)"):
        space(params, {"optim.name": "optim.lr=0.1", "optim.momentum": "optim.name=rmsprop"})
    space(params, {"optim.name": "optim.lr=0.1", "optim.momentum": "optim.name=sgd"})


@pytest.mark.parametrize(("params", "condition"), [
    ({}, "optim.name=sgd"),  # not searched: its configured value
    ({"optim.name": "choice(sgd, adam)"}, "optim.name=adam|sgdd"),  # one of the values can hold
    ({"optim.lr": "interval(0.01, 0.5)"}, "optim.lr=0.1"),  # a number inside the interval
    ({"model.depth": "range(1, 6, 2)"}, "model.depth=5"),
    ({}, "data.limit_train=null"),
    ({}, "model.hidden_sizes=null"),
])
def test_a_condition_that_can_hold_is_accepted(params: dict, condition: str) -> None:
    built = space({**params, **BASE_ACTIVE}, {"optim.momentum": condition})
    assert built.describe()["optim.momentum"].endswith(f"when {condition}")


def test_a_condition_on_a_key_not_in_the_config_names_it() -> None:
    with pytest.raises(SpaceError, match=r"search.when\['optim.momentum'\]: key 'optim.nmae' is not "
                                         r"in the config \(did you mean optim.name\?"):
        space(BASE_ACTIVE, {"optim.momentum": "optim.nmae=sgd"})


def test_conditions_that_form_a_loop_are_refused() -> None:
    with pytest.raises(SpaceError, match="the conditions form a loop"):
        space({"optim.name": "choice(sgd, adam)", **BASE_ACTIVE},
              {"optim.momentum": "optim.name=sgd", "optim.name": "optim.momentum=0.5"})


def test_the_condition_reads_the_sampled_value_whatever_the_order_of_the_keys() -> None:
    base = compose_config([])  # optim.name=sgd, so testing the configured value never samples
    built = space({**BASE_ACTIVE, "optim.name": "choice(sgd, adam)"},
                  {"optim.momentum": "optim.name=adam"})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        _, chosen = sample(built, study.ask(), base)
        assert ("optim.momentum" in chosen) == (chosen["optim.name"] == "adam"), chosen
    assert {t.params["optim.name"] for t in study.trials} == {"sgd", "adam"}


def test_the_sweep_refuses_a_condition_that_never_holds_before_any_study(
        workdir: Path, capsys: pytest.CaptureFixture) -> None:
    conf = workdir / "conf" / "search"
    conf.mkdir(parents=True)
    (conf / "typo.yaml").write_text("# a space whose condition has a typo\n" + yaml.safe_dump({
        "params": {"optim.name": "choice(sgd, adam)", **BASE_ACTIVE},
        "when": {"optim.momentum": "optim.name=sgdd"}}))
    with pytest.raises(SystemExit) as info:
        sweep.main(["search=typo", f"sweep.storage=sqlite:///{workdir}/optuna.db",
                    f"mlflow.tracking_uri=sqlite:///{workdir}/mlflow.db"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "error: search key 'optim.momentum': its condition optim.name=sgdd can never hold "
        "(searched values: choice(sgd, adam))\n")
    assert not any(workdir.glob("*.db"))


def test_the_middle_of_a_space_is_its_median_choices_and_midpoints() -> None:
    """What a study times ``auto`` precision on: the default space's middle is 784-256-256-10
    tanh (width choice 256 of 64..1024, depth 2 of 1..4, tanh of relu/tanh/sigmoid)."""
    base = compose_config(["search=default"])
    mid = dict(o.split("=", 1) for o in middle(build_space(to_config(base).search, base)))
    assert mid["model.width"] == "256" and mid["model.activation"] == "tanh"
    assert mid["model.depth"] == "2" and float(mid["optim.lr"]) == pytest.approx(0.1)
