"""Every op, forward and every input gradient, against torch in float64.

Each case is one line through `helper_test_op`; the tables hold the odd
shapes: batch 1, C = 1, non-square kernels, stride 3, padding up to
kernel - 1, dilation, output_padding, BCE near p = 0 and 1, logits at +-50.
Every test runs for each backend (fixture `backend`) and dtype.
"""

import numpy as np
import pytest
import torch

import nn
from helpers import helper_test_op, rel_error

# ------------------------------------------------------------- convolution
# (input shape, weight shape, kwargs); bias is tested separately per case.
CONV2D_CASES = [
    ((2, 3, 7, 9), (4, 3, 3, 3), {}),
    ((1, 1, 5, 5), (1, 1, 2, 2), {}),                                  # batch 1, C = 1
    ((2, 3, 8, 7), (5, 3, 3, 2), dict(stride=(3, 1), padding=(2, 1))),  # non-square, stride 3
    ((2, 2, 9, 10), (3, 2, 3, 3), dict(stride=3, padding=2, dilation=2)),
    ((3, 4, 6, 5), (2, 4, 1, 1), dict(stride=2)),                      # 1x1, tail rows unread
    ((2, 3, 10, 10), (4, 3, 4, 4), dict(stride=2, padding=1)),         # the DCGAN layer
    ((1, 3, 5, 5), (2, 3, 5, 5), {}),                                  # kernel = image -> 1x1
    ((2, 2, 6, 9), (3, 2, 2, 3), dict(stride=(1, 2), padding=(1, 2), dilation=(1, 3))),
    ((2, 3, 7, 7), (2, 3, 3, 3), dict(padding="same")),
    ((2, 1, 4, 17), (1, 1, 1, 5), dict(stride=(1, 3), padding=(0, 4))),
]

# (input shape, weight shape (C_in, C_out, KH, KW), kwargs)
CONV_TRANSPOSE2D_CASES = [
    ((2, 3, 4, 4), (3, 5, 4, 4), dict(stride=2, padding=1)),           # the DCGAN layer
    ((2, 4, 1, 1), (4, 6, 4, 4), {}),                                  # DCGAN's first layer
    ((1, 1, 3, 3), (1, 1, 2, 3), {}),                                  # batch 1, C = 1
    ((2, 4, 3, 5), (4, 2, 3, 2), dict(stride=3, padding=(2, 1), output_padding=(2, 1))),
    ((2, 3, 4, 4), (3, 2, 3, 3), dict(stride=2, dilation=2, output_padding=1)),
    ((1, 2, 5, 4), (2, 3, 3, 3), dict(stride=(2, 3), padding=(1, 2), output_padding=(1, 2))),
    ((2, 2, 6, 3), (2, 3, 5, 2), dict(stride=1, padding=(4, 1))),       # padding = kernel - 1
    ((2, 3, 2, 3), (3, 1, 2, 2), dict(stride=3, output_padding=1)),    # gaps between taps
    ((2, 2, 4, 3), (2, 3, 3, 2), dict(stride=1, dilation=3, output_padding=(2, 1))),  # op >= s
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape,w_shape,kw", CONV2D_CASES)
def test_conv2d(backend, dtype, seed, x_shape, w_shape, kw, bias):
    shapes = [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])
    helper_test_op(shapes, lambda F, x, w, *b: F.conv2d(x, w, *b, **kw), dtype=dtype, seed=seed,
                   op="conv2d")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape,w_shape,kw", CONV_TRANSPOSE2D_CASES)
def test_conv_transpose2d(backend, dtype, seed, x_shape, w_shape, kw, bias):
    shapes = [x_shape, w_shape] + ([(w_shape[1],)] if bias else [])
    helper_test_op(shapes, lambda F, x, w, *b: F.conv_transpose2d(x, w, *b, **kw), dtype=dtype,
                   seed=seed, op="conv_transpose2d")


def test_conv2d_input_only_gradient(backend, dtype, seed):
    """Weights frozen: only dx is asked for, and the weight gets none."""
    helper_test_op([(2, 3, 6, 6), (4, 3, 3, 3)], lambda F, x, w: F.conv2d(x, w, padding=1),
                   dtype=dtype, seed=seed, requires_grad=[True, False], op="conv2d")


# ---------------------------------------------------------------- batch norm
BN_SHAPES = [(4, 3, 5, 6), (1, 2, 3, 3), (6, 1, 2, 2), (8, 5), (3, 4, 7)]


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm(backend, dtype, seed, shape, training, affine):
    """Both modes with a random upstream gradient; running stats updated as torch's."""
    rng = np.random.default_rng(seed + 1)
    C = shape[1]
    stats0 = [rng.uniform(-1, 1, C), rng.uniform(0.5, 2, C)]
    frameworks = {}  # F -> its running stats, made on first call

    def fn(F, x, *wb):
        stats = [torch.tensor(s) if F is torch.nn.functional else nn.tensor(s, dtype=dtype)
                 for s in stats0]
        frameworks[F] = stats
        return F.batch_norm(x, *stats, *(wb or (None, None)), training=training, momentum=0.3,
                            eps=1e-4)

    shapes = [shape] + ([(C,), (C,)] if affine else [])
    # A mean far from 0 makes the normalisation do real work.
    helper_test_op(shapes, fn, dtype=dtype, seed=seed, low=1.0, high=4.0, op="batch_norm")
    (t_mean, t_var), (o_mean, o_var) = frameworks[torch.nn.functional], frameworks[nn.functional]
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert rel_error(o_mean.numpy(), t_mean.numpy()) <= tol
    assert rel_error(o_var.numpy(), t_var.numpy()) <= tol
    if not training:
        np.testing.assert_array_equal(o_mean.numpy(), stats0[0].astype(dtype))


def test_batch_norm_training_without_running_stats(backend, dtype, seed):
    helper_test_op([(3, 2, 4, 4), (2,), (2,)],
                   lambda F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                   dtype=dtype, seed=seed, op="batch_norm")


# ---------------------------------------------------------------- activations
ACTIVATIONS = {
    "relu": lambda F, x: F.relu(x),
    "tanh": lambda F, x: F.tanh(x),
    "sigmoid": lambda F, x: F.sigmoid(x),
    "leaky_relu(0.2)": lambda F, x: F.leaky_relu(x, 0.2),
    "leaky_relu(default)": lambda F, x: F.leaky_relu(x),
    "leaky_relu(-0.5)": lambda F, x: F.leaky_relu(x, negative_slope=-0.5),
    "leaky_relu(1.7)": lambda F, x: F.leaky_relu(x, 1.7),
}


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1,), (1, 1, 1, 1), (1000,)])
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation(backend, dtype, seed, name, shape):
    helper_test_op([shape], ACTIVATIONS[name], dtype=dtype, seed=seed, low=-6, high=6,
                   op=name.split("(")[0])


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_saturating_activation_large_inputs(backend, dtype, seed, name):
    x = np.array([-1000.0, -100.0, -50.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 50.0, 100.0, 1000.0])
    helper_test_op(None, ACTIVATIONS[name], vals=[x], dtype=dtype, seed=seed, op=name)


# -------------------------------------------------------------------- losses
REDUCTIONS = ["mean", "sum", "none"]


def _bce_inputs(rng, shape, hard_targets):
    p = rng.uniform(1e-6, 1 - 1e-6, shape)
    t = (rng.uniform(size=shape) < 0.5).astype(float) if hard_targets else rng.uniform(size=shape)
    return p, t


@pytest.mark.parametrize("hard_targets", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(16, 1), (2, 3, 4), (1,)])
def test_binary_cross_entropy(backend, dtype, seed, shape, reduction, hard_targets):
    p, t = _bce_inputs(np.random.default_rng(seed), shape, hard_targets)
    helper_test_op(None, lambda F, p, t: F.binary_cross_entropy(p, t, reduction=reduction),
                   vals=[p, t], dtype=dtype, seed=seed, op="binary_cross_entropy")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_near_0_and_1(backend, dtype, seed, reduction):
    """p at and next to 0 and 1: torch clamps log at -100 and the gradient's
    denominator at 1e-12; we must give the same (finite) numbers."""
    p = np.array([0.0, 1e-30, 1e-12, 1e-7, 0.5, 1 - 1e-7, 1.0, 1.0, 0.0, 0.25])
    t = np.array([1.0, 1.0, 0.0, 1.0, 0.3, 0.0, 1.0, 0.0, 0.0, 0.9])
    helper_test_op(None, lambda F, p, t: F.binary_cross_entropy(p, t, reduction=reduction),
                   vals=[p, t], dtype=dtype, seed=seed, requires_grad=[True, False],
                   op="binary_cross_entropy")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_weighted(backend, dtype, seed, reduction):
    rng = np.random.default_rng(seed)
    p, t = _bce_inputs(rng, (4, 3), False)
    w = rng.uniform(0.1, 2, (3,))
    helper_test_op(None, lambda F, p, t, w: F.binary_cross_entropy(p, t, w, reduction=reduction),
                   vals=[p, t, w], dtype=dtype, seed=seed, requires_grad=[True, True, False],
                   op="binary_cross_entropy")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scale", [3.0, 50.0, 1000.0])
def test_binary_cross_entropy_with_logits(backend, dtype, seed, reduction, scale):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-scale, scale, (5, 4))
    x[0, :2] = [scale, -scale]
    t = rng.uniform(size=(5, 4))
    t[1] = (t[1] > 0.5)
    helper_test_op(None, lambda F, x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction),
                   vals=[x, t], dtype=dtype, seed=seed, op="binary_cross_entropy_with_logits")


def test_binary_cross_entropy_with_logits_weighted(backend, dtype, seed):
    rng = np.random.default_rng(seed)
    vals = [rng.uniform(-5, 5, (3, 4)), rng.uniform(size=(3, 4)), rng.uniform(0.1, 2, (3, 1))]
    helper_test_op(None, lambda F, x, t, w: F.binary_cross_entropy_with_logits(x, t, w),
                   vals=vals, dtype=dtype, seed=seed, requires_grad=[True, True, False],
                   op="binary_cross_entropy_with_logits")


# ---------------------------------------------------------------------- glue
BINARY = {
    "add": lambda F, a, b: a + b,
    "sub": lambda F, a, b: a - b,
    "mul": lambda F, a, b: a * b,
    "div": lambda F, a, b: a / b,
}


@pytest.mark.parametrize("shapes", [[(3, 4), (3, 4)], [(2, 3, 4), (3, 1)], [(1,), (2, 3)],
                                    [(4, 1, 5), (1, 3, 1)], [(), (2, 2)]])
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_op(backend, dtype, seed, name, shapes):
    # Values away from 0 keep div well conditioned.
    helper_test_op(shapes, BINARY[name], dtype=dtype, seed=seed, low=0.5, high=2.0, op=name)


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_op_with_python_scalar(backend, dtype, seed, name):
    helper_test_op([(3, 2)], lambda F, a: BINARY[name](F, a, 1.7), dtype=dtype, seed=seed, op=name)
    helper_test_op([(3, 2)], lambda F, a: BINARY[name](F, 1.7, a), dtype=dtype, seed=seed + 1,
                   low=0.5, op=name)


def test_neg(backend, dtype, seed):
    helper_test_op([(4, 5)], lambda F, a: -a, dtype=dtype, seed=seed, op="neg")


@pytest.mark.parametrize("kw", [{}, dict(dim=0), dict(dim=(1, 2)), dict(dim=-1, keepdim=True),
                                dict(dim=(0, 2), keepdim=True)])
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_reduction(backend, dtype, seed, name, kw):
    helper_test_op([(3, 4, 5)], lambda F, a: getattr(a, name)(**kw), dtype=dtype, seed=seed,
                   op=name)


@pytest.mark.parametrize("shape", [(6, 4), (2, -1), (24,), (1, 2, 3, 4)])
def test_reshape_and_view(backend, dtype, seed, shape):
    helper_test_op([(2, 3, 4)], lambda F, a: a.reshape(*shape) * 2.0, dtype=dtype, seed=seed,
                   op="reshape")
    helper_test_op([(2, 3, 4)], lambda F, a: a.view(shape) * 2.0, dtype=dtype, seed=seed + 1,
                   op="reshape")


def test_expand(backend, dtype, seed):
    helper_test_op([(3, 1)], lambda F, a: a.expand(2, 3, 4) * 1.5, dtype=dtype, seed=seed,
                   op="expand")


def test_composite_expression(backend, dtype, seed):
    """Broadcast arithmetic, reductions and an op reused twice in one graph."""
    helper_test_op([(2, 3, 4, 4), (3, 1, 1)],
                   lambda F, x, s: (F.relu(x * s - 0.5) / (s + 2.0)).mean(dim=(2, 3)) + x.sum() * s.sum(),
                   dtype=dtype, seed=seed, op="composite")
