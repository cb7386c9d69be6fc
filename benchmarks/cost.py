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
  magnitude, so only their bytes matter for the roofline. Masks (bool) and
  indices (int64) count at their own size (`elementwise_io`).
- Reductions count per *input* element (`REDUCTION_FLOPS`): one add or one
  compare (sum, mean, amax, amin, argmax, argmin), 4 for var (its two
  passes: the mean's add, then subtract, square, add), bytes the input once
  and the output once.
- matmul: 2 * B * M * N * K for (B, M, K) @ (B, K, N); bytes A, B and C once
  each (an operand broadcast over the batch, stride 0, is read once).
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


def elementwise_io(op, out_shape, inputs, outputs):
    """(flops, bytes) of an elementwise op whose operands have their own
    dtypes (a bool mask, an int64 index): `inputs` and `outputs` are lists of
    (shape, dtype), each read or written once; EW_FLOPS[op] per output element."""
    n = int(np.prod(out_shape, dtype=np.int64))
    return (EW_FLOPS.get(op, 1) * n,
            sum(nbytes([s], d) for s, d in list(inputs) + list(outputs)))


# FLOPs per input element of the reductions (sum and mean, and any reduction
# not listed: 1).
REDUCTION_FLOPS = {"sum": 1, "mean": 1, "amax": 1, "amin": 1, "argmax": 1, "argmin": 1,
                   "var": 4}


def reduction(shape, out_shape, dtype, op="sum", out_dtype=None):
    """A reduction of `shape` to `out_shape`: REDUCTION_FLOPS[op] per input
    element; reads the input, writes the output (at `out_dtype`, default the
    input's: argmax/argmin write int64)."""
    n = int(np.prod(shape, dtype=np.int64))
    return (REDUCTION_FLOPS.get(op, 1) * n,
            nbytes([shape], dtype) + nbytes([out_shape], out_dtype or dtype))


def matmul(M, K, N, batch=1, dtype=np.float32, shared=()):
    """(flops, bytes) of `batch` products (M, K) @ (K, N): 2*batch*M*N*K
    FLOPs; A, B and C read or written once, except an operand named in
    `shared` ("a", "b"), broadcast over the batch and so read once in all."""
    a = M * K * (1 if "a" in shared else batch)
    b = K * N * (1 if "b" in shared else batch)
    c = M * N * batch
    return 2 * batch * M * N * K, (a + b + c) * np.dtype(dtype).itemsize


def roofline(flops, bytes_, peak_flops, peak_bytes):
    """(bound, attainable FLOP/s): the roofline model's limit for this
    arithmetic intensity, and whether compute or memory sets it."""
    if bytes_ == 0:
        return "compute", peak_flops
    attainable = min(peak_flops, flops / bytes_ * peak_bytes)
    return ("compute" if attainable >= peak_flops else "memory"), attainable
