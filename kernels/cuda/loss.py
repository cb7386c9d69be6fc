"""Binary cross-entropy losses (on probabilities and on logits): launchers for
the CUDA C kernels of loss.cu, with the public API of kernels/triton/loss.py.

p (or the logits x) and the target t have the same shape, any rank,
contiguous, and are seen as flat arrays of n elements. reduction is "mean",
"sum" or "none"; the loss is a 0-d array for mean/sum and has the input's
shape for none, and dloss has the loss's shape.

The sum is split on the host into S contiguous chunks (S a pure function of
n, so the result is bitwise reproducible): S = 1 for n <= MIN_CHUNK (one
launch, the block writes the result), else block partials and a second,
one-block pass that adds them in a fixed order. See loss.cu for the kernels.
"""

import numpy as np

from .. import launch_checks as lc
from . import runtime

THREADS = 256  # block of the flat kernels (kThreads in loss.cu)
REDUCE_THREADS = 256  # block of the reduction kernels (a multiple of 32, <= kReduceThreads)
MIN_CHUNK = 4096  # elements per reduction block, at least (tests lower it)
MAX_PARTIALS = 1024  # reduction blocks, at most: 7-8 per H100 SM

REDUCTIONS = {"none": 0, "sum": 1, "mean": 2}

_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_KERNELS = ("bce_forward_none", "bce_forward_partial", "bce_backward")
MODULE = runtime.Module("loss.cu", [
    f"{k}<{c}, {lg}>" for k in _KERNELS for c in _TYPES.values() for lg in (0, 1)
] + [f"bce_sum_partials<{c}>" for c in _TYPES.values()])


def _check(op, p, target, reduction, dloss=None):
    if reduction not in REDUCTIONS:
        lc.fail(op, f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if p.shape != target.shape:
        lc.fail(op, f"input {p.shape} and target {target.shape} differ in shape")
    dtype = lc.check_arrays(op, input=p, target=target, dloss=dloss)
    red = REDUCTIONS[reduction]
    if dloss is not None:
        want = p.shape if red == 0 else ()
        if dloss.size != (p.size if red == 0 else 1) or (red == 0 and dloss.shape != want):
            lc.fail(op, f"dloss must have the loss's shape {want}, got {dloss.shape}")
    return red, _TYPES[np.dtype(dtype)]


def bce_forward(p, target, reduction, logits):
    """The BCE loss of probabilities p (logits=False) or logits x (logits=True)."""
    red, ctype = _check("bce_forward", p, target, reduction)
    lg = 1 if logits else 0
    n = p.size
    if red == 0:
        out = runtime.empty(p.shape, p.dtype)
        if n:
            MODULE.launch(f"bce_forward_none<{ctype}, {lg}>", (lc.cdiv(n, THREADS),), (THREADS,),
                          (p, target, out, np.int32(n)))
        return out
    out = runtime.empty((), p.dtype)
    mean = np.int32(red == 2)
    # S blocks of CHUNK elements (a multiple of the block), at most MAX_PARTIALS.
    blocks, chunk = lc.chunked(n, min(MAX_PARTIALS, max(1, lc.cdiv(n, MIN_CHUNK))),
                               REDUCE_THREADS)
    if blocks == 1:  # the block's total is the loss (n = 0 gives 0, and 0/0 for mean)
        MODULE.launch(f"bce_forward_partial<{ctype}, {lg}>", (1,), (REDUCE_THREADS,),
                      (p, target, out, np.int32(n), np.int32(chunk), mean))
        return out
    partials = runtime.empty((blocks,), p.dtype)
    MODULE.launch(f"bce_forward_partial<{ctype}, {lg}>", (blocks,), (REDUCE_THREADS,),
                  (p, target, partials, np.int32(n), np.int32(chunk), mean))
    MODULE.launch(f"bce_sum_partials<{ctype}>", (1,), (REDUCE_THREADS,),
                  (partials, out, np.int32(blocks), np.int32(n), mean))
    return out


def bce_backward(dloss, p, target, reduction, need_target_grad, logits):
    """(dp, dtarget): dtarget is None unless need_target_grad."""
    red, ctype = _check("bce_backward", p, target, reduction, dloss)
    n = p.size
    dp = runtime.empty(p.shape, p.dtype)
    dt = runtime.empty(p.shape, p.dtype) if need_target_grad else None
    if n:
        MODULE.launch(f"bce_backward<{ctype}, {1 if logits else 0}>", (lc.cdiv(n, THREADS),),
                      (THREADS,), (dloss, p, target, dp, dt, np.int32(n), np.int32(red),
                                   np.int32(1 if need_target_grad else 0)))
    return dp, dt
