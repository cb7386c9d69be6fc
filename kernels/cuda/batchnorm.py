"""Batch normalisation (training and eval forward, backward) as CUDA C kernels
(batchnorm.cu), with an optional fused ReLU / LeakyReLU. The public functions
mirror kernels/triton/batchnorm.py exactly (names, signatures, return values,
in-place running-statistics updates); batchnorm.cu's header explains the
algorithms: a split (channel, chunk) Welford reduction with Chan merges and a
fixed-order per-channel finalize, a fused one-pass backward reduction, and
flat elementwise passes for y and dx.

The launchers only validate, plan the split (integer arithmetic on shapes)
and allocate; every value is computed by the kernels.
"""

import numpy as np

from .. import launch_checks as lc
from . import runtime

# Blocks to aim for in the (channel, chunk) reductions: ~8 per SM on an H100's
# 132 SMs. Tests lower it, with MAX_BLOCK, to force many ragged chunks.
TARGET_PROGRAMS = 1024
MAX_BLOCK = 256         # threads per reduction block (rounded to a multiple of 32)
EW_THREADS = 256        # threads per block of the elementwise passes
EW_ITEMS = 4            # elements per thread there (the grid is sized for it)
FINALIZE_WARPS = 8      # channels per block in the per-channel finalize kernels

_T = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def _names():
    out = []
    for t in ("float", "double"):
        out += [f"bn_stats_partial<{t}>", f"bn_stats_finalize<{t}>", f"bn_eval_stats<{t}>",
                f"bn_backward_finalize<{t}>"]
        for act in (0, 1, 2):
            out += [f"bn_normalize<{t}, {act}>", f"bn_backward_partial<{t}, {act}>",
                    f"bn_backward_dx<{t}, {act}>"]
    return out


MODULE = runtime.Module("batchnorm.cu", _names())

_i32, _f64 = np.int32, np.float64


# ------------------------------------------------------------- planning
def _threads(n, cap):
    """A block size for n work items: a multiple of 32 in [32, cap]."""
    cap = max(32, min(1024, int(cap) // 32 * 32))
    return min(cap, max(32, lc.cdiv(n, 32) * 32))


def _split(M, C):
    """(threads, chunk, nchunk): each channel's M elements in nchunk chunks of
    `chunk` elements (a multiple of the block size) so that C * nchunk is
    about TARGET_PROGRAMS."""
    threads = _threads(M, MAX_BLOCK)
    wanted = max(1, lc.cdiv(TARGET_PROGRAMS, C))
    chunk = max(1, lc.cdiv(lc.cdiv(M, wanted), threads)) * threads
    return threads, chunk, max(1, lc.cdiv(M, chunk))


def _finalize_launch(C):
    warps = max(1, min(int(FINALIZE_WARPS), 32, C))
    return lc.cdiv(C, warps), 32 * warps


def _ew_grid(numel):
    threads = _threads(numel, EW_THREADS)
    return max(1, lc.cdiv(numel, threads * max(1, int(EW_ITEMS)))), threads


# ------------------------------------------------------------- checks
def _check(op, x, dy=None, **per_channel):
    """(C type name, N, C, HW), or a ValueError naming op."""
    dtype, N, C, HW = lc.check_batch_norm(op, x, dy, **per_channel)
    return _T[np.dtype(dtype)], N, C, HW


# ------------------------------------------------------------- launchers
def _normalize(t, x, mean, invstd, weight, bias, act, slope):
    C, HW = x.shape[1], x.shape[2] * x.shape[3]
    y = runtime.empty(x.shape, x.dtype)
    if x.size:
        grid, block = _ew_grid(x.size)
        MODULE.launch(f"bn_normalize<{t}, {act}>", grid, block,
                      (x, y, mean, invstd, weight, bias, _i32(x.size), _i32(C), _i32(HW),
                       _f64(slope)))
    return y


def train_forward(x, weight, bias, running_mean, running_var, momentum, eps, activation=None,
                  negative_slope=0.0):
    """(y, save_mean, save_invstd) from the batch statistics; updates
    running_mean / running_var in place when given (torch's rule, unbiased
    variance for running_var). With activation "relu" or "leaky_relu" (and
    negative_slope) the normalize kernel applies it too: y = act(bn(x))."""
    act, slope = lc.bn_activation_code(activation), negative_slope
    op = "batch_norm_train_forward"
    t, N, C, HW = _check(op, x, weight=weight, bias=bias, running_mean=running_mean,
                         running_var=running_var)
    momentum, eps, slope = float(momentum), float(eps), float(slope)
    M = N * HW
    mean = runtime.empty((C,), x.dtype)
    invstd = runtime.empty((C,), x.dtype)
    if C == 0:
        return runtime.empty(x.shape, x.dtype), mean, invstd
    threads, chunk, nchunk = _split(M, C)
    pmean = runtime.empty((C, nchunk), x.dtype)
    pm2 = runtime.empty((C, nchunk), x.dtype)
    MODULE.launch(f"bn_stats_partial<{t}>", (C, nchunk), threads,
                  (x, pmean, pm2, _i32(C), _i32(HW), _i32(M), _i32(chunk), _i32(nchunk)))
    grid, block = _finalize_launch(C)
    MODULE.launch(f"bn_stats_finalize<{t}>", grid, block,
                  (pmean, pm2, mean, invstd, running_mean, running_var, _i32(C), _i32(M),
                   _i32(chunk), _i32(nchunk), _f64(eps), _f64(momentum), _f64(1.0 - momentum),
                   _f64(M / max(M - 1, 1))))
    return _normalize(t, x, mean, invstd, weight, bias, act, slope), mean, invstd


def eval_forward(x, weight, bias, running_mean, running_var, eps, activation=None,
                 negative_slope=0.0):
    """(y, mean, invstd) from the running statistics (mean and invstd are new
    arrays), with an optional fused activation as in train_forward."""
    act, slope = lc.bn_activation_code(activation), negative_slope
    op = "batch_norm_eval_forward"
    t, N, C, HW = _check(op, x, weight=weight, bias=bias, running_mean=running_mean,
                         running_var=running_var)
    if running_mean is None or running_var is None:
        lc.fail(op, "needs running_mean and running_var")
    mean = runtime.empty((C,), x.dtype)
    invstd = runtime.empty((C,), x.dtype)
    if C == 0:
        return runtime.empty(x.shape, x.dtype), mean, invstd
    threads = _threads(C, 256)
    MODULE.launch(f"bn_eval_stats<{t}>", lc.cdiv(C, threads), threads,
                  (running_mean, running_var, mean, invstd, _i32(C), _f64(float(eps))))
    return _normalize(t, x, mean, invstd, weight, bias, act, float(slope)), mean, invstd


def backward(dy, x, weight, mean, invstd, training, bias=None, activation=None,
             negative_slope=0.0):
    """(dx, dweight, dbias); dweight and dbias are None when weight is.

    With an activation, this is the backward of act(batch_norm(x)): dy is the
    gradient of the activation's output, and the activation's gradient comes
    from the sign of the BN output, recomputed from x, mean, invstd, weight
    and bias (so bias is needed then)."""
    act, slope = lc.bn_activation_code(activation), negative_slope
    op = "batch_norm_backward"
    t, N, C, HW = _check(op, x, dy, weight=weight, bias=bias, mean=mean, invstd=invstd)
    if mean is None or invstd is None:
        lc.fail(op, "needs the saved mean and invstd")
    M = N * HW
    training, slope = bool(training), float(slope)
    has_w = weight is not None
    b_arg = bias if act != 0 else None  # the bias matters only for the activation's sign
    dweight = runtime.empty((C,), x.dtype) if has_w else None
    dbias = runtime.empty((C,), x.dtype) if has_w else None
    dx = runtime.empty(x.shape, x.dtype)
    if C == 0:
        return dx, dweight, dbias
    coef = None
    if training or has_w:  # the per-channel sums are needed
        threads, chunk, nchunk = _split(M, C)
        psum = runtime.empty((C, nchunk), x.dtype)
        psumx = runtime.empty((C, nchunk), x.dtype)
        coef = runtime.empty((2, C), x.dtype)
        MODULE.launch(f"bn_backward_partial<{t}, {act}>", (C, nchunk), threads,
                      (dy, x, mean, invstd, weight, b_arg, psum, psumx, _i32(C), _i32(HW),
                       _i32(M), _i32(chunk), _i32(nchunk), _f64(slope)))
        grid, block = _finalize_launch(C)
        MODULE.launch(f"bn_backward_finalize<{t}>", grid, block,
                      (psum, psumx, coef, dweight, dbias, _i32(C), _i32(M), _i32(nchunk)))
    if x.size:
        grid, block = _ew_grid(x.size)
        MODULE.launch(f"bn_backward_dx<{t}, {act}>", grid, block,
                      (dy, x, mean, invstd, weight, b_arg, coef, dx, _i32(x.size), _i32(C),
                       _i32(HW), _i32(1 if training else 0), _f64(slope)))
    return dx, dweight, dbias
