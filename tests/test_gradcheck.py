"""nn.gradcheck passes on every op in float64, and fails when a backward is wrong."""

import numpy as np
import pytest

import nn
import nn.functional as F


def _inputs(seed, *shapes, low=-1.0, high=1.0):
    rng = np.random.default_rng(seed)
    return tuple(nn.tensor(rng.uniform(low, high, s), requires_grad=True, dtype=nn.float64)
                 for s in shapes)


def _bn(training):
    def f(x, w, b):
        rm = nn.tensor(np.linspace(-0.5, 0.5, x.shape[1]), dtype=nn.float64)
        rv = nn.tensor(np.linspace(0.5, 1.5, x.shape[1]), dtype=nn.float64)
        return F.batch_norm(x, rm, rv, w, b, training=training)
    return f


# name -> (fn, input shapes, value range)
OPS = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2)),
               [(2, 2, 5, 6), (3, 2, 3, 2), (3,)], (-1, 1)),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=3, padding=1,
                                                            output_padding=2),
                         [(1, 2, 3, 2), (2, 2, 3, 3), (2,)], (-1, 1)),
    "batch_norm_train": (_bn(True), [(3, 2, 2, 3), (2,), (2,)], (-1, 1)),
    "batch_norm_eval": (_bn(False), [(3, 2, 2, 3), (2,), (2,)], (-1, 1)),
    # Values kept off the kink at 0, where no finite difference is right.
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), [(3, 4)], (0.05, 1)),
    "leaky_relu_negative": (lambda x: F.leaky_relu(-x, 0.2), [(3, 4)], (0.05, 1)),
    "relu": (lambda x: F.relu(x) + F.relu(-x) * 3.0, [(3, 4)], (0.05, 1)),
    "tanh": (F.tanh, [(3, 4)], (-3, 3)),
    "sigmoid": (F.sigmoid, [(3, 4)], (-5, 5)),
    "bce": (lambda p, t: F.binary_cross_entropy(p, t), [(4, 3), (4, 3)], (0.1, 0.9)),
    "bce_sum": (lambda p, t: F.binary_cross_entropy(p, t, reduction="sum"), [(5,), (5,)], (0.1, 0.9)),
    "bce_none": (lambda p, t: F.binary_cross_entropy(p, t, reduction="none"), [(5,), (5,)], (0.1, 0.9)),
    "bce_with_logits": (lambda x, t: F.binary_cross_entropy_with_logits(x, t), [(4, 3), (4, 3)], (-3, 3)),
    "bce_with_logits_none": (lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
                             [(6,), (6,)], (-3, 3)),
    "add": (lambda a, b: a + b, [(2, 3), (3,)], (-1, 1)),
    "sub": (lambda a, b: a - b, [(2, 1), (1, 3)], (-1, 1)),
    "mul": (lambda a, b: a * b, [(2, 3), (2, 1)], (-1, 1)),
    "div": (lambda a, b: a / b, [(2, 3), (3,)], (0.5, 2)),
    "neg": (lambda a: -a, [(4,)], (-1, 1)),
    "sum": (lambda a: a.sum(dim=1, keepdim=True), [(2, 3, 2)], (-1, 1)),
    "mean": (lambda a: a.mean(dim=(0, 2)), [(2, 3, 2)], (-1, 1)),
    "reshape": (lambda a: a.reshape(3, -1) * 2.0, [(2, 3, 2)], (-1, 1)),
}


@pytest.mark.parametrize("fast_mode", [False, True])
@pytest.mark.parametrize("name", list(OPS))
def test_gradcheck_passes_on_every_op(seed, name, fast_mode):
    fn, shapes, (low, high) = OPS[name]
    assert nn.gradcheck(fn, _inputs(seed, *shapes, low=low, high=high), fast_mode=fast_mode)


class WrongBackward(nn.Function):
    """y = x^2 with a backward that forgets the factor 2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x


@pytest.mark.parametrize("fast_mode", [False, True])
def test_gradcheck_catches_a_wrong_backward(seed, fast_mode):
    (x,) = _inputs(seed, (3, 2), low=0.5, high=1.0)
    with pytest.raises(nn.GradcheckError) as info:
        nn.gradcheck(WrongBackward.apply, (x,), fast_mode=fast_mode)
    msg = str(info.value)
    assert "input 0" in msg and "analytic" in msg and "numerical" in msg
    if not fast_mode:
        assert "at element (" in msg  # the worst element is named
    assert nn.gradcheck(WrongBackward.apply, (x,), raise_exception=False,
                        fast_mode=fast_mode) is False


def test_gradcheck_catches_a_non_reentrant_backward(seed):
    calls = []

    class Drifting(nn.Function):
        """Right to 1e-3, but each backward answers a little differently."""

        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            return g * (2.0 + 1e-4 * len(calls))

    (x,) = _inputs(seed, (2,))
    with pytest.raises(nn.GradcheckError, match="not reentrant"):
        nn.gradcheck(Drifting.apply, (x,), atol=1e-2, rtol=0)


def test_gradcheck_runs_in_float64_even_for_float32_inputs(seed):
    x = nn.tensor(np.random.default_rng(seed).uniform(-1, 1, (3,)), dtype=nn.float32,
                  requires_grad=True)
    assert nn.gradcheck(F.tanh, (x,))


def test_gradcheck_names_float32_parameters_as_the_problem(seed):
    w = nn.tensor(np.ones(3), dtype=nn.float32)
    (x,) = _inputs(seed, (3,))
    with pytest.raises(TypeError, match="dtype mismatch"):
        nn.gradcheck(lambda t: t * w, (x,))
