"""The scratch MLP: explicit parameters, any depth, the three inits, the concise twin."""

import math

import pytest
import torch

from mlp.model import MLP, build_model, count_parameters, hidden_sizes_for


def test_parameters_are_explicit_w_and_b_per_layer() -> None:
    model = build_model(784, 10, [256, 128])
    names = [n for n, _ in model.named_parameters()]
    assert names == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert model.W1.shape == (784, 256) and model.W3.shape == (128, 10)
    assert count_parameters(model) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10


def test_hidden_sizes_list_wins_over_depth_and_width() -> None:
    assert hidden_sizes_for(3, 64) == [64, 64, 64]
    assert hidden_sizes_for(3, 64, [32, 16]) == [32, 16]


@pytest.mark.parametrize(("init", "expected"), [("normal", 0.01), ("scaled", 1 / math.sqrt(784)),
                                                 ("he", math.sqrt(2 / 784))])
def test_init_scales(init: str, expected: float) -> None:
    model = build_model(784, 10, [512], init=init, sigma=0.01)
    assert model.W1.std().item() == pytest.approx(expected, rel=0.02)
    assert torch.count_nonzero(model.b1) == 0


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_concise_twin_computes_the_same_function(activation: str) -> None:
    scratch = build_model(784, 10, [64, 32], activation=activation, init="he", seed=3)
    concise = build_model(784, 10, [64, 32], impl="concise", activation=activation, init="he",
                          seed=3)
    x = torch.rand(5, 1, 28, 28)
    torch.testing.assert_close(scratch(x), concise(x))


def test_same_seed_same_weights_and_unknown_names_fail() -> None:
    assert torch.equal(build_model(784, 10, [8], seed=1).W1, build_model(784, 10, [8], seed=1).W1)
    with pytest.raises(ValueError, match="activation"):
        MLP(784, 10, [8], activation="gelu")
    with pytest.raises(ValueError, match="init"):
        build_model(784, 10, [8], init="xavier")
