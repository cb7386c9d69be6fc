"""Second derivatives of every op against torch float64 (`helper_test_grad2`),
on every backend and dtype, plus the engine's higher-order API.

For each op: g = grad(y, x, v, create_graph=True), then grad(<g, u>, (x, v)),
compared with torch doing the same. The conv tables are test_ops.py's
(stride, padding, dilation, output_padding, non-square kernels, batch 1,
C = 1); the primitive table is test_nn_primitives.py's.

float32 tolerance: 1e-5 as for first derivatives, except where stated.
"""

import numpy as np
import pytest
import torch

import nn
from helpers import helper_test_grad2, lib
from test_nn_primitives import CE_CASES, CE_PROB_CASES, PRIMITIVE_CASES, ce_fn, ce_probs_fn
from test_ops import CONV2D_CASES, CONV_TRANSPOSE2D_CASES


def const(F, array, like):
    """A constant (no grad) tensor of `like`'s dtype for either library."""
    if lib(F) is torch:
        return torch.tensor(array, dtype=like.dtype)
    return nn.tensor(array, dtype=like.dtype)


# ------------------------------------------------------------- convolution
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape,w_shape,kw", CONV2D_CASES)
def test_conv2d_grad2(backend, dtype, seed, x_shape, w_shape, kw, bias):
    shapes = [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])
    helper_test_grad2(shapes, lambda F, x, w, *b: F.conv2d(x, w, *b, **kw), dtype=dtype,
                      seed=seed, op="conv2d")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape,w_shape,kw", CONV_TRANSPOSE2D_CASES)
def test_conv_transpose2d_grad2(backend, dtype, seed, x_shape, w_shape, kw, bias):
    shapes = [x_shape, w_shape] + ([(w_shape[1],)] if bias else [])
    helper_test_grad2(shapes, lambda F, x, w, *b: F.conv_transpose2d(x, w, *b, **kw),
                      dtype=dtype, seed=seed, op="conv_transpose2d")


@pytest.mark.parametrize("groups,transposed", [(2, False), (3, True), (6, False)])
def test_grouped_conv_grad2(backend, dtype, seed, groups, transposed):
    if transposed:
        helper_test_grad2([(2, 6, 4, 3), (6, 2, 3, 2)],
                          lambda F, x, w: F.conv_transpose2d(x, w, stride=2, groups=groups),
                          dtype=dtype, seed=seed, op="conv_transpose2d")
    else:
        helper_test_grad2([(2, 6, 5, 5), (6, 6 // groups, 3, 3)],
                          lambda F, x, w: F.conv2d(x, w, padding=1, groups=groups),
                          dtype=dtype, seed=seed, op="conv2d")


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's note
def test_conv2d_unbatched_and_same_padding(backend, dtype, seed):
    """torch's other forms: a (C, H, W) input, padding='same' with an even kernel."""
    helper_test_grad2([(3, 6, 5), (4, 3, 2, 4)], lambda F, x, w: F.conv2d(x, w, padding="same"),
                      dtype=dtype, seed=seed, op="conv2d")


# ---------------------------------------------------------------- batch norm
# float32 batch norm: 2e-5. Its second derivative sums products of three
# O(1) terms per channel (dy, xhat, the upstream direction) whose float32
# roundings do not cancel; torch's own float32 lands at 1e-6 to 1e-5.
BN_TOL32 = 2e-5


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 3, 2), (1, 2, 3, 3), (6, 1, 2, 2), (8, 5)])
def test_batch_norm_grad2(backend, dtype, seed, shape, training, affine):
    rng = np.random.default_rng(seed + 1)
    C = shape[1]
    stats = [rng.uniform(-1, 1, C), rng.uniform(0.5, 2, C)]

    def fn(F, x, *wb):
        rm, rv = (const(F, s, x) for s in stats)
        return F.batch_norm(x, rm, rv, *wb, training=training)
    shapes = [shape] + ([(C,), (C,)] if affine else [])
    helper_test_grad2(shapes, fn, dtype=dtype, seed=seed, op="batch_norm",
                      tol=BN_TOL32 if dtype == np.float32 else None)


# --------------------------------------------------------------- activations
ACTIVATIONS = [
    ("leaky_relu", lambda F, x: F.leaky_relu(x, 0.2)),
    ("leaky_relu", lambda F, x: F.leaky_relu(x, -1.5)),
    ("relu", lambda F, x: F.relu(x)),
    ("tanh", lambda F, x: F.tanh(x)),
    ("sigmoid", lambda F, x: F.sigmoid(x)),
    ("tanh", lambda F, x: F.tanh(x * 4.0)),      # into saturation
]


@pytest.mark.parametrize("name,fn", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_grad2(backend, dtype, seed, name, fn):
    helper_test_grad2([(3, 4, 5)], fn, dtype=dtype, seed=seed, op=name)


def test_activation_chain_grad2(backend, dtype, seed):
    """An activation's backward differentiated through the op before it."""
    helper_test_grad2([(4, 6)], lambda F, x: F.sigmoid(F.tanh(x) * x),
                      dtype=dtype, seed=seed, op="tanh")


# --------------------------------------------------------------------- losses
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_grad2(backend, dtype, seed, reduction):
    helper_test_grad2([(4, 5), (4, 5)],
                      lambda F, p, t: F.binary_cross_entropy(p, t, reduction=reduction),
                      dtype=dtype, seed=seed, op="binary_cross_entropy", low=0.05, high=0.95)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_grad2(backend, dtype, seed, reduction):
    helper_test_grad2([(4, 5), (4, 5)],
                      lambda F, x, t: F.binary_cross_entropy_with_logits(
                          x * 3.0, t, reduction=reduction),
                      dtype=dtype, seed=seed, op="binary_cross_entropy_with_logits",
                      low=-2, high=2)


# ---------------------------------------------------------------------- glue
GLUE = [
    ("add", [(3, 4), (4,)], lambda F, a, b: (a + b) * a),
    ("sub", [(3, 1), (1, 5)], lambda F, a, b: (a - b) * (a - b)),
    ("mul", [(2, 3), (2, 3)], lambda F, a, b: a * b * a),
    ("div", [(3, 4), (3, 4)], lambda F, a, b: a / (b * b + 1.0)),
    ("neg", [(5,)], lambda F, a: -(a * a)),
    ("sum", [(3, 4)], lambda F, a: (a * a).sum(1) * a.sum()),
    ("mean", [(3, 4)], lambda F, a: (a * a).mean((0, 1)) * a),
    ("reshape", [(2, 6)], lambda F, a: (a.reshape(3, 4) * a.reshape(3, 4))),
    ("expand", [(3, 1)], lambda F, a: a.expand(3, 4) * a.expand(3, 4)),
    ("cast", [(3, 4)], lambda F, a: (a.double() * a.double()).to(a.dtype)),
]


@pytest.mark.parametrize("name,shapes,fn", GLUE, ids=[g[0] for g in GLUE])
def test_glue_grad2(backend, dtype, seed, name, shapes, fn):
    helper_test_grad2(shapes, fn, dtype=dtype, seed=seed, op=name)


# ----------------------------------------------------------------- primitives
@pytest.mark.parametrize("case", PRIMITIVE_CASES, ids=lambda c: c[0])
def test_primitive_grad2(backend, dtype, seed, case):
    name, shapes, fn, opts = case
    helper_test_grad2(shapes, fn, dtype=dtype, seed=seed, op=name, **opts)


@pytest.mark.parametrize("shape,kwargs", CE_CASES[:4])
def test_cross_entropy_grad2(backend, dtype, seed, shape, kwargs):
    helper_test_grad2([shape], ce_fn(shape, kwargs, seed), dtype=dtype, seed=seed,
                      op="cross_entropy")


@pytest.mark.parametrize("shape,kwargs", CE_PROB_CASES)
def test_cross_entropy_with_class_probabilities_grad2(backend, dtype, seed, shape, kwargs):
    helper_test_grad2([shape], ce_probs_fn(shape, kwargs, seed), dtype=dtype, seed=seed,
                      op="cross_entropy")


# ------------------------------------------------------------ WGAN-GP penalty
def _critic(lib_nn, F, params, x):
    """A small conv critic (no batch norm, as WGAN-GP requires)."""
    w1, b1, w2, b2, w3 = params
    h = F.leaky_relu(F.conv2d(x, w1, b1, stride=2, padding=1), 0.2)
    h = F.leaky_relu(F.conv2d(h, w2, b2, stride=2, padding=1), 0.2)
    return F.conv2d(h, w3).reshape(-1)


def test_wgan_gp_penalty_matches_torch(backend, dtype, seed):
    """((||grad_x D(x_hat)||_2 - 1)^2).mean(), written as a user would, and its
    gradient with respect to the critic's weights."""
    rng = np.random.default_rng(seed)
    shapes = [(4, 1, 3, 3), (4,), (6, 4, 3, 3), (6,), (1, 6, 2, 2)]
    params = [rng.normal(0, 0.5, s) for s in shapes]
    real, fake = rng.standard_normal((3, 1, 8, 8)), rng.standard_normal((3, 1, 8, 8))
    alpha = rng.uniform(0, 1, (3, 1, 1, 1))
    hat = (alpha * real + (1 - alpha) * fake).astype(dtype).astype(np.float64)
    params = [p.astype(dtype).astype(np.float64) for p in params]

    def penalty(T, F, make):
        ps = [make(p, True) for p in params]
        x_hat = make(hat, True)
        score = _critic(T, F, ps, x_hat)
        gx, = T.autograd.grad(score.sum(), x_hat, create_graph=True)
        gp = ((gx.view(gx.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()
        gp.backward()
        return gp, ps

    t_gp, t_ps = penalty(torch, torch.nn.functional,
                         lambda a, g: torch.tensor(a, requires_grad=g))
    o_gp, o_ps = penalty(nn, nn.functional, lambda a, g: nn.tensor(a, dtype=dtype,
                                                                   requires_grad=g))
    tol = 1e-10 if dtype == np.float64 else 1e-5
    from helpers import rel_error
    assert rel_error(o_gp.numpy(), t_gp.detach().numpy()) <= tol
    for k, (o, t) in enumerate(zip(o_ps, t_ps)):
        # The biases do not reach grad_x D (LeakyReLU'' = 0): torch leaves None.
        t_grad = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        err = rel_error(np.zeros(o.shape) if o.grad is None else o.grad.numpy(), t_grad)
        assert err <= tol, f"penalty gradient of critic parameter {k}: {err:.2e}"
