"""The bf16 buffers a model keeps (mlp/casts.py): casts laid out as the device multiplies them
fastest, parameters sharing one buffer where bf16 is native and found again when replaced,
gradients that accumulate and are never overwritten, and a pickled model without them."""

import pickle

import pytest
import torch

from mlp import casts as casts_module
from mlp.backprop import loss_and_grads
from mlp.model import MLP, build_model
from mlp.precision import cast_inputs


def test_the_casts_are_kept_row_major_where_bf16_is_native(monkeypatch: pytest.MonkeyPatch) -> None:
    for native, layout in ((True, (256, 1)), (False, (1, 784))):
        monkeypatch.setattr(casts_module, "native_bf16", lambda device, n=native: (n, ""))
        model = build_model(784, 10, [256], seed=0)
        (w1, b1), _ = model.compute_weights(torch.bfloat16)
        assert w1.shape == (784, 256) and w1.stride() == layout and w1.dtype == torch.bfloat16
        torch.testing.assert_close(w1.float(), model.W1.detach(), rtol=1e-2, atol=1e-4)
        again, _ = model.compute_weights(torch.bfloat16)
        assert again[0].data_ptr() == w1.data_ptr()  # the same buffer, refreshed: no allocation


def test_where_bf16_is_native_the_parameters_share_one_buffer_and_stay_correct_when_replaced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One copy casts them all; a parameter replaced since (a loaded copy, a move) is found, the
    buffer made again, and the casts still hold the current values."""
    monkeypatch.setattr(casts_module, "native_bf16", lambda device: (True, ""))
    model = build_model(784, 10, [32, 16], seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.compute_weights(torch.bfloat16)
    flat = casts_module.flat_view(model.parameters_in_order())
    assert flat is not None and flat.numel() == sum(p.numel() for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])  # flattening kept every value
    model.W2.data = torch.full_like(model.W2, 0.5)  # no longer a view of the buffer
    (_, _), (w2, _), _ = model.compute_weights(torch.bfloat16)
    assert torch.equal(w2.float(), torch.full_like(w2, 0.5, dtype=torch.float32))
    assert casts_module.flat_view(model.parameters_in_order()) is not None


@pytest.mark.parametrize("manual", [False, True])
def test_gradients_accumulate_over_steps_and_a_kept_gradient_is_never_overwritten(
        manual: bool) -> None:
    """Two backward passes without zeroing sum their gradients (gradient accumulation), and a
    gradient taken from one step is still what it was after the next step's backward: each
    landing in fp32 writes a fresh buffer."""
    model = build_model(784, 10, [32], seed=0)
    gen = torch.Generator().manual_seed(1)
    xs = [cast_inputs(torch.rand(16, 784, generator=gen), "bf16") for _ in range(2)]
    ys = [torch.randint(0, 10, (16,), generator=gen) for _ in range(2)]

    def backward(i: int) -> None:
        if manual:
            loss_and_grads(model, xs[i], ys[i])
        else:
            torch.nn.functional.cross_entropy(model(xs[i]).float(), ys[i]).backward()

    def grads(*steps: int) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        for i in steps:
            backward(i)
        return [p.grad for p in model.parameters()]

    first, second = grads(0), grads(1)
    kept = [g.clone() for g in first]
    both = grads(0, 1)
    for g, k in zip(first, kept, strict=True):
        assert torch.equal(g, k)  # later backward passes left it alone
    for g, a, b in zip(both, first, second, strict=True):
        torch.testing.assert_close(g, a + b)


def test_a_pickled_model_leaves_its_bf16_casts_behind_and_remakes_them() -> None:
    """A logged model carries its fp32 weights only; one pickled before the casts existed loads."""
    model = build_model(784, 10, [32], seed=0)
    x = cast_inputs(torch.rand(4, 784), "bf16")
    expected = model(x)
    assert model._casts
    copy = pickle.loads(pickle.dumps(model))
    assert copy._casts == {}
    torch.testing.assert_close(copy(x), expected)
    state = model.__dict__.copy()
    del state["_casts"]
    older = MLP.__new__(MLP)
    older.__setstate__(state)
    torch.testing.assert_close(older(x), expected)

