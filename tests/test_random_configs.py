"""Random valid configurations of every shape-carrying op, drawn from a seed.

The tables in test_ops.py hold the cases we thought of; these draw the ones
we did not: any stride, padding, dilation, output_padding and kernel shape
that torch accepts, with small sizes so they stay cheap. Each configuration
is its own test case, with its own inputs, so a failure names it.
"""

import os

import numpy as np
import pytest

from helpers import helper_test_op

N_CASES = int(os.environ.get("NN_RANDOM_CASES", 12))  # raise it for a deeper sweep


def _conv_config(rng, transposed):
    while True:
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        p = tuple(int(rng.integers(0, kk)) for kk in k)  # 0 .. kernel - 1
        n, cin, cout = (int(v) for v in rng.integers(1, 4, 3))
        hw = tuple(int(v) for v in rng.integers(1, 9, 2))
        kw = dict(stride=s, padding=p, dilation=d)
        if transposed:
            op_ = tuple(int(rng.integers(0, max(ss, dd))) for ss, dd in zip(s, d))
            out = [(h - 1) * ss - 2 * pp + dd * (kk - 1) + oo + 1
                   for h, ss, pp, dd, kk, oo in zip(hw, s, p, d, k, op_)]
            kw["output_padding"] = op_
            w_shape = (cin, cout, *k)
        else:
            out = [(h + 2 * pp - dd * (kk - 1) - 1) // ss + 1
                   for h, ss, pp, dd, kk in zip(hw, s, p, d, k)]
            w_shape = (cout, cin, *k)
        if min(out) >= 1:
            return (n, cin, *hw), w_shape, kw, bool(rng.integers(0, 2))


@pytest.mark.parametrize("case", range(N_CASES))
@pytest.mark.parametrize("transposed", [False, True])
def test_random_convolution(backend, dtype, seed, transposed, case):
    x_shape, w_shape, kw, bias = _conv_config(np.random.default_rng(seed), transposed)
    shapes = [x_shape, w_shape] + ([(w_shape[1 if transposed else 0],)] if bias else [])
    name = "conv_transpose2d" if transposed else "conv2d"
    helper_test_op(shapes, lambda F, x, w, *b: getattr(F, name)(x, w, *b, **kw), dtype=dtype,
                   seed=seed, op=name)


@pytest.mark.parametrize("case", range(N_CASES))
def test_random_batch_norm(backend, dtype, seed, case):
    rng = np.random.default_rng(seed)
    ndim = int(rng.integers(2, 5))
    shape = tuple(int(v) for v in rng.integers(1, 6, ndim))
    training = bool(rng.integers(0, 2))
    # Training needs 3+ values per channel for a meaningful check: with 2, the
    # normalised values are +-1 and dx is zero up to eps terms, so a relative
    # error would measure nothing but roundoff.
    while training and np.prod(shape) // shape[1] < 3:
        shape = (shape[0] + 1,) + shape[1:]
    affine = bool(rng.integers(0, 2))
    C = shape[1]
    stats = [rng.uniform(-1, 1, C), rng.uniform(0.5, 2, C)]
    momentum, eps = float(rng.uniform(0, 1)), float(10.0 ** rng.uniform(-6, -2))

    def fn(F, x, *wb):
        import torch
        import nn
        make = (lambda a: torch.tensor(a)) if F.__name__.startswith("torch") else (
            lambda a: nn.tensor(a, dtype=dtype))
        return F.batch_norm(x, *map(make, stats), *(wb or (None, None)), training=training,
                            momentum=momentum, eps=eps)

    helper_test_op([shape] + ([(C,), (C,)] if affine else []), fn, dtype=dtype, seed=seed,
                   low=-3, high=5, op="batch_norm")
