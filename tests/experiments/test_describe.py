"""A config in words: run names say what differs, numbers read at 4 significant digits, counts
agree with their nouns, and the reproduce command composes the same training config."""

import shlex

from experiments.config import changes, label, load_config, number, plural, reproduce, short_name


def test_numbers_and_counts_read_as_people_write_them() -> None:
    assert number(0.24558276572568763) == "0.2456" == number("0.24558276572568763")
    assert number(1e-05) == "1e-05" and number(256) == "256" and number("relu") == "relu"
    assert number([512, 128]) == "512x128" == number("[512,128]")
    assert [plural(n, "hyperparameter") for n in (0, 1, 2)] == [
        "0 hyperparameters", "1 hyperparameter", "2 hyperparameters"]


def test_a_run_is_named_after_what_differs_from_the_defaults() -> None:
    cfg = load_config(["model.width=1024", "optim.lr=0.30001", "model.activation=tanh",
                       "mlflow.experiment=notes", "data.root=/elsewhere"])
    assert label(cfg) == "w1024 tanh lr0.3"  # where it is stored or read from is not named
    assert label(load_config([])) == "defaults"
    assert label(load_config(["sweep.quick=true"])) == "quick"
    long = short_name({f"model.k{i}": i for i in range(40)})
    assert len(long) <= 60 and long.endswith("...")


def test_the_reproduce_command_trains_the_same_config() -> None:
    cfg = load_config(["model.hidden_sizes=[512,128]", "optim.lr=0.123456789", "sweep.quick=true",
                       "train.precision=fp32", "sweep.study_name=x", "seed=3"])
    words = shlex.split(reproduce(cfg))
    assert words[:3] == ["python", "-m", "experiments.train"] and "sweep.study_name=x" not in words
    again = load_config(words[3:])
    assert (again.model, again.optim, again.train, again.data, again.seed) == (
        cfg.model, cfg.optim, cfg.train, cfg.data, cfg.seed)
    assert reproduce(cfg) == reproduce({k: str(v) for k, v in changes(cfg).items()}
                                       | {"sweep.quick": "True"})  # from a run's params alike
