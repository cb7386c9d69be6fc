"""FLOP and byte counts of every contract op: the formulas behind each
benchmark row's GFLOP/s, GB/s and roofline position.

Conventions (stated once, used everywhere):
- A multiply-add is 2 FLOPs. Convolutions count only their GEMM work:
      2 * N * K * OH * OW * C * KH * KW
  for x (N, C, H, W), w (K, C, KH, KW), y (N, K, OH, OW), the same for the
  forward, the input gradient and the weight gradient (each is one GEMM of
  that size). A transposed conv is counted on its direct-conv side.
- Bytes are the compulsory traffic: every input read once and every output
  written once, at the dtype's size. Real kernels move more (re-reads that
  miss cache, split-K workspaces, BN's two passes over x), so GB/s here is a
  lower bound on the traffic achieved and the percent of bandwidth is
  conservative.
- Elementwise ops count the arithmetic a straightforward implementation
  does per element (`EW_FLOPS`); they are memory-bound by orders of
  magnitude, so only their bytes matter for the roofline.
"""

import numpy as np

from kernels import registry

# FLOPs per element of the elementwise ops: the registry's counts.
EW_FLOPS = registry.elementwise_flops()


def conv_gemm_flops(x_shape, w_shape, y_shape):
    """2 * N * K * OH * OW * C * KH * KW for conv2d x -> y with weight w."""
    N, C = x_shape[:2]
    K, _, KH, KW = w_shape
    OH, OW = y_shape[2:]
    return 2 * N * K * OH * OW * C * KH * KW


def nbytes(shapes, dtype):
    """Bytes of arrays of these shapes at `dtype`."""
    size = np.dtype(dtype).itemsize
    return sum(int(np.prod(s, dtype=np.int64)) for s in shapes) * size


def elementwise(op, shape, n_in, n_out, dtype):
    """(flops, bytes) of an elementwise op over `shape` with n_in inputs, n_out outputs."""
    n = int(np.prod(shape, dtype=np.int64))
    return EW_FLOPS.get(op, 1) * n, nbytes([shape] * (n_in + n_out), dtype)


def batch_norm(op, shape, dtype):
    """(flops, bytes) of batch norm over x (N, C, H, W).

    train forward: mean and variance (3 FLOPs/element with Welford's
    update counted as sub, mul-add), then normalize + affine (4): 7 per
    element; reads x, writes y. eval forward: 4 per element. backward
    (train): sum(dy), sum(dy * xhat) (4), then dx (5): 9 per element; reads
    dy and x, writes dx."""
    n = int(np.prod(shape, dtype=np.int64))
    per = {"batch_norm_train_forward": (7, 2), "batch_norm_eval_forward": (4, 2),
           "batch_norm_backward": (9, 3)}[op]
    return per[0] * n, per[1] * n * np.dtype(dtype).itemsize


def adam(numels, dtype):
    """Adam over parameters of these sizes: ~12 FLOPs per element; reads
    param, grad, exp_avg, exp_avg_sq and writes param, exp_avg, exp_avg_sq."""
    n = int(sum(numels))
    return 12 * n, 7 * n * np.dtype(dtype).itemsize


def sgd(numels, dtype):
    """SGD with momentum: ~5 FLOPs per element; reads p, g, buf, writes p, buf."""
    n = int(sum(numels))
    return 5 * n, 5 * n * np.dtype(dtype).itemsize


def reduction(shape, out_shape, dtype):
    """A sum or mean: one add per input element; reads the input, writes the output."""
    n = int(np.prod(shape, dtype=np.int64))
    return n, nbytes([shape, out_shape], dtype)


def roofline(flops, bytes_, peak_flops, peak_bytes):
    """(bound, attainable FLOP/s): the roofline model's limit for this
    arithmetic intensity, and whether compute or memory sets it."""
    if bytes_ == 0:
        return "compute", peak_flops
    attainable = min(peak_flops, flops / bytes_ * peak_bytes)
    return ("compute" if attainable >= peak_flops else "memory"), attainable
