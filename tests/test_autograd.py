"""The autograd engine: accumulation, graph freeing, no_grad, the custom-op API."""

import numpy as np
import pytest

import nn
from helpers import rel_error


def _leaf(shape, seed, dtype=nn.float64):
    return nn.tensor(np.random.default_rng(seed).uniform(-1, 1, shape), requires_grad=True,
                     dtype=dtype)


def test_gradients_accumulate_across_backward_calls(seed):
    x = _leaf((3, 4), seed)
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((3, 4), 5.0))


def test_a_tensor_used_twice_gets_both_contributions(seed):
    x = _leaf((5,), seed)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 1)


def test_graph_is_freed_after_backward(seed):
    x = _leaf((4,), seed)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward(seed):
    x = _leaf((4,), seed)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.numpy())


def test_no_grad_records_nothing(seed):
    x = _leaf((2, 2), seed)
    with nn.no_grad():
        y = x * 2.0
    assert y.grad_fn is None and not y.requires_grad
    assert nn.is_grad_enabled()

    @nn.no_grad()
    def f(t):
        return t + 1.0
    assert f(x).grad_fn is None


def test_backward_needs_gradient_for_non_scalars(seed):
    x = _leaf((2, 3), seed)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2.0).backward()
    with pytest.raises(RuntimeError, match="gradient has shape"):
        (x * 2.0).backward(nn.ones(3, 2, dtype=nn.float64))


def test_detach_item_numpy(seed):
    x = _leaf((1,), seed)
    d = (x * 3.0).detach()
    assert d.grad_fn is None and not d.requires_grad
    assert d.item() == pytest.approx(3 * x.numpy()[0])
    host = x.numpy()
    host[0] = 123.0  # a copy: the tensor is unchanged
    assert x.numpy()[0] != 123.0
    with pytest.raises(ValueError, match="one-element"):
        nn.ones(2).item()


def test_tensor_creation_dtypes():
    assert nn.tensor([1.0, 2.0]).dtype == nn.float32
    assert nn.tensor(np.zeros(3)).dtype == nn.float64           # float NumPy data keeps its dtype
    assert nn.tensor(np.zeros(3, np.float32)).dtype == nn.float32
    assert nn.tensor([1, 2], dtype=nn.float64).dtype == nn.float64
    assert nn.tensor(3).shape == ()


class ScaledExp(nn.Function):
    """A user-written op: y = exp(a * x), with its own backward."""

    @staticmethod
    def forward(ctx, x, a):
        y = nn.tensor(np.exp(a * x.numpy()), dtype=x.dtype)
        ctx.a = a
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        return dy * y * ctx.a, None


def test_custom_function_forward_and_backward(seed):
    x = _leaf((3, 2), seed)
    y = ScaledExp.apply(x, 0.5)
    assert y.grad_fn is not None
    (y * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * 0.5 * np.exp(0.5 * x.numpy()), rtol=1e-12)
    assert nn.gradcheck(lambda t: ScaledExp.apply(t, 0.5), (x,))


def test_custom_function_needs_input_grad_and_wrong_grad_count(seed):
    seen = {}

    class Twice(nn.Function):
        @staticmethod
        def forward(ctx, x, y):
            seen["needs"] = ctx.needs_input_grad
            return x * 2.0 + y

        @staticmethod
        def backward(ctx, g):
            return (g * 2.0,)  # one gradient for two inputs

    x, y = _leaf((2,), seed), nn.tensor([1.0, 2.0], dtype=nn.float64)
    out = Twice.apply(x, y)
    assert seen["needs"] == (True, False)
    with pytest.raises(RuntimeError, match="returned 1 gradients, expected 2"):
        out.sum().backward()


def test_custom_function_gradient_of_wrong_shape_is_caught(seed):
    class Bad(nn.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            return g.sum()

    with pytest.raises(RuntimeError, match="gradient 0 has shape"):
        Bad.apply(_leaf((3,), seed)).sum().backward()


def test_multi_output_function_with_an_unused_output(seed):
    class Split(nn.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0, x * 3.0

        @staticmethod
        def backward(ctx, g1, g2):
            return g1 * 2.0 + g2 * 3.0

    x = _leaf((4,), seed)
    a, _ = Split.apply(x)
    a.sum().backward()  # the second output's gradient is materialised as zeros
    np.testing.assert_allclose(x.grad.numpy(), np.full(4, 2.0))


def test_deep_graph_does_not_recurse(seed):
    """The engine walks the graph iteratively: a long chain is fine."""
    x = _leaf((2,), seed)
    y = x
    for _ in range(3000):
        y = y + 1.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.ones(2))


def test_float32_and_float64_do_not_mix_silently(seed):
    a = nn.tensor([1.0], dtype=nn.float32)
    b = nn.tensor([1.0], dtype=nn.float64)
    with pytest.raises(TypeError, match="add: dtype mismatch"):
        a + b
    assert rel_error((a.double() + b).numpy(), [2.0]) == 0
