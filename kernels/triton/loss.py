"""Binary cross-entropy losses (on probabilities and on logits) in Triton.

p (or the logits x) and the target t have the same shape, any rank,
contiguous, and are seen as flat arrays of n elements. reduction is "mean",
"sum" or "none"; the loss is a 0-d array for mean/sum and has the input's
shape for none, and dloss has the loss's shape.

One kernel each way: the loss and its gradient.
  _bce_forward_kernel   REDUCE = none: a flat grid, one element per lane,
                        the elementwise loss stored. REDUCE = sum / mean: ONE
                        program loops over the array in BLOCK steps, keeps a
                        per-lane running sum, and finishes with one tree sum
                        (/ n for mean) into the 0-d output. A single program
                        is deterministic (fixed order, no atomics) and the
                        reduction needs no second kernel; it is the right
                        size for the DCGAN, whose loss has batch-size
                        elements (128). Not meant for losses over millions of
                        elements. The trip count STEPS = cdiv(n, BLOCK) is a
                        constexpr (a fixed batch size compiles once; no need
                        for common.py's interpreter loop patch).
  _bce_backward_kernel  flat grid: dp (or dx) and, when asked for, dtarget
                        from the same loads. dloss is read inside the kernel
                        (a 0-d array for mean/sum, so no host sync) and
                        divided by n for mean.

Formulas (the contract's, i.e. torch's):
  probabilities: loss = -(t max(log p, -100) + (1 - t) max(log1p(-p), -100))
                 dp   = g (p - t) / max(p (1 - p), EPS),  EPS = float32(1e-12)
                 dt   = g (max(log1p(-p), -100) - max(log p, -100))
  logits:        loss = (1 - t) x + max(-x, 0) + log1p(exp(-|x|))
                 dx   = g (sigmoid(x) - t),   dt = -g x
  with g = dloss (/ n for mean).
At p = 0 or 1, log gives -inf and the clamp -100: the loss and dtarget stay
finite, and dp stays finite through EPS. For logits, exp(-|x|) lies in (0, 1]
and never overflows, so |x| = 100 or 1000 is safe; sigmoid uses the branch
that is exact on each side of 0: 1/(1+e) for x >= 0, e/(1+e) below.

log1p. triton.language has no log1p (libdevice's is backend-specific), and
log(1 + x) loses every digit once |x| nears the rounding unit (p = 1e-7 in
float32: 1 - p rounds to 1 - 1.19e-7, a 19% error). `_log1p` uses, for
|x| < 1/4, the series
    log1p(x) = 2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ... + s^20/21),
    s = x / (2 + x),  |s| <= 1/7,
whose first omitted term, s^22/23, is below 1e-19 relative: float64's last
digit. 2 + x and the quotient are each rounded once, so the result is good
to a few ulps in float32 and float64. For |x| >= 1/4, log(1 + x) is fine:
1 + x is at most half an ulp off and |log(1 + x)| >= 0.22. tl.log lowers to
libdevice's __nv_logf / __nv_log on NVIDIA (not the approximate lg2.approx;
checked in the sm_90 PTX), so log p is accurate everywhere. Python float
literals are weakly typed in Triton, so the coefficients are exact in
float64 (the PTX holds 0d3FD5555555555555 for 1/3), as is EPS.
"""

import contextlib

import numpy as np
import triton
import triton.language as tl

from . import common
from .common import cdiv, next_pow2, ptr

BLOCK = 1024
REDUCTIONS = {"none": 0, "sum": 1, "mean": 2}
# torch's 1e-12 as a C float: float32(1e-12) = 9.99999996e-13, the numpy
# backend's value too. A global constexpr is a weakly typed literal in the
# kernel, so it is this exact value in float32 and in float64.
BCE_EPS = tl.constexpr(float(np.float32(1e-12)))


# ---------------------------------------------------------------- helpers
@triton.jit
def _log1p(x):
    """log(1 + x) for x >= -1, accurate for small |x| (see the top docstring)."""
    s = x / (2.0 + x)
    z = s * s
    # (No `q = <literal>` to start: an assigned Python float becomes an fp32
    # tensor in compiled Triton; inside an expression it takes z's dtype.)
    q = 1.0 / 19.0 + z * (1.0 / 21.0)
    q = 1.0 / 17.0 + z * q
    q = 1.0 / 15.0 + z * q
    q = 1.0 / 13.0 + z * q
    q = 1.0 / 11.0 + z * q
    q = 1.0 / 9.0 + z * q
    q = 1.0 / 7.0 + z * q
    q = 1.0 / 5.0 + z * q
    q = 1.0 / 3.0 + z * q
    series = 2.0 * s * (1.0 + z * q)
    return tl.where(tl.abs(x) < 0.25, series, tl.log(1.0 + x))


@triton.jit
def _clamped_logs(p):
    """(max(log p, -100), max(log1p(-p), -100)): -inf at p = 0 or 1 becomes -100."""
    return tl.maximum(tl.log(p), -100.0), tl.maximum(_log1p(-p), -100.0)


@triton.jit
def _bce_elem(p, t, LOGITS: tl.constexpr):
    if LOGITS:
        loss = (1.0 - t) * p + tl.maximum(-p, 0.0) + _log1p(tl.exp(-tl.abs(p)))
    else:
        log_p, log_1mp = _clamped_logs(p)
        loss = -(t * log_p + (1.0 - t) * log_1mp)
    return loss


# ---------------------------------------------------------------- kernels
@triton.jit
def _bce_forward_kernel(p_ptr, t_ptr, out_ptr, n, LOGITS: tl.constexpr, REDUCE: tl.constexpr,
                        BLOCK: tl.constexpr, STEPS: tl.constexpr):
    lanes = tl.arange(0, BLOCK)
    if REDUCE == 0:
        offs = tl.program_id(0) * BLOCK + lanes
        mask = offs < n
        p = tl.load(p_ptr + offs, mask=mask, other=0.5)
        t = tl.load(t_ptr + offs, mask=mask, other=0.0)
        tl.store(out_ptr + offs, _bce_elem(p, t, LOGITS), mask=mask)
    else:
        acc = tl.zeros([BLOCK], dtype=p_ptr.dtype.element_ty)
        for step in range(0, STEPS):  # STEPS = cdiv(n, BLOCK)
            offs = step * BLOCK + lanes
            mask = offs < n
            p = tl.load(p_ptr + offs, mask=mask, other=0.5)
            t = tl.load(t_ptr + offs, mask=mask, other=0.0)
            acc = acc + tl.where(mask, _bce_elem(p, t, LOGITS), 0.0)
        total = tl.sum(acc, axis=0)
        if REDUCE == 2:
            total = total / n
        tl.store(out_ptr, total)


@triton.jit
def _bce_backward_kernel(dloss_ptr, p_ptr, t_ptr, dp_ptr, dt_ptr, n, LOGITS: tl.constexpr,
                         REDUCE: tl.constexpr, NEED_DT: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    p = tl.load(p_ptr + offs, mask=mask, other=0.5)
    t = tl.load(t_ptr + offs, mask=mask, other=0.0)
    if REDUCE == 0:
        g = tl.load(dloss_ptr + offs, mask=mask, other=0.0)
    else:
        g = tl.load(dloss_ptr)
        if REDUCE == 2:
            g = g / n
    if LOGITS:
        e = tl.exp(-tl.abs(p))
        sig = tl.where(p >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        tl.store(dp_ptr + offs, g * (sig - t), mask=mask)
        if NEED_DT:
            tl.store(dt_ptr + offs, -g * p, mask=mask)
    else:
        dp = g * (p - t) / tl.maximum(p * (1.0 - p), BCE_EPS)
        tl.store(dp_ptr + offs, dp, mask=mask)
        if NEED_DT:
            log_p, log_1mp = _clamped_logs(p)
            tl.store(dt_ptr + offs, g * (log_1mp - log_p), mask=mask)


# ------------------------------------------------------------- launchers
def _quiet():
    """The interpreter runs the kernels as NumPy code: log(0) = -inf is an
    intended value (clamped to -100), not a warning."""
    return np.errstate(divide="ignore", invalid="ignore") if common.INTERPRET \
        else contextlib.nullcontext()


def _check(op, p, target, reduction):
    common.require_contiguous(op, p, target)
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if p.shape != target.shape:
        raise ValueError(f"{op}: input {p.shape} and target {target.shape} differ in shape")
    if p.size >= 2**31:
        raise ValueError(f"{op}: {p.size} elements exceed the kernels' int32 indexing")
    return REDUCTIONS[reduction]


def bce_forward(p, target, reduction, logits):
    """The BCE loss of probabilities p (logits=False) or logits x (logits=True)."""
    red = _check("bce_forward", p, target, reduction)
    n = p.size
    out = common.empty(p.shape if red == 0 else (), p.dtype)
    if red == 0:  # elementwise: a flat grid
        block, steps, grid = BLOCK, 1, (cdiv(n, BLOCK),)
    else:  # one program, STEPS loop steps (constexpr: see _bce_forward_kernel)
        block = min(BLOCK, next_pow2(n))
        steps, grid = cdiv(n, block), (1,)
    if n or red:
        with _quiet():
            _bce_forward_kernel[grid](ptr(p), ptr(target), ptr(out), n, LOGITS=bool(logits),
                                      REDUCE=red, BLOCK=block, STEPS=steps)
    return out


def bce_backward(dloss, p, target, reduction, need_target_grad, logits):
    """(dp, dtarget): dtarget is None unless need_target_grad."""
    red = _check("bce_backward", p, target, reduction)
    common.require_contiguous("bce_backward", dloss)
    n = p.size
    dp = common.empty(p.shape, p.dtype)
    dt = common.empty(p.shape, p.dtype) if need_target_grad else None
    if n:
        with _quiet():
            _bce_backward_kernel[(cdiv(n, BLOCK),)](
                ptr(dloss), ptr(p), ptr(target), ptr(dp), ptr(dt if dt is not None else dp), n,
                LOGITS=bool(logits), REDUCE=red, NEED_DT=bool(need_target_grad), BLOCK=BLOCK)
    return dp, dt
