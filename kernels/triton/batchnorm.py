"""Batch normalisation (training and eval forward, backward) in Triton, with an
optional fused ReLU / LeakyReLU for the DCGAN's BN -> activation pairs.

Shapes and names used throughout (NCHW, contiguous):
    x, y, dy   (N, C, H, W);  HW = H*W
    M = N*HW   elements per channel (what each channel's statistics cover)
    per-channel arrays (C,): weight, bias, running_mean, running_var,
                             mean, invstd, dweight, dbias
Element m = (n, s) of channel c, 0 <= m < M, n = m // HW, s = m % HW, lives at
    x[n*C*HW + c*HW + s].
x_hat = (x - mean) * invstd, invstd = 1 / sqrt(var + eps), var biased (/M).

Why a split reduction. One program per channel leaves most of an H100's 132
SMs idle when C is 64-512 (the DCGAN's range) and puts the whole reduction
over M (up to 131k elements) on one SM. Instead each channel's M elements are
cut into `nchunk` chunks of `chunk` = STEPS * BLOCK elements, chosen so that
C * nchunk is about TARGET_PROGRAMS: every (channel, chunk) pair is one
program that writes its partial result to a small workspace, and a second
small kernel combines the partials of each channel in a fixed order
(k = 0, 1, ..., nchunk-1 through one tl.sum of a fixed shape). No atomics:
the results are bitwise reproducible from run to run. The split depends only
on the shape. For the DCGAN at batch 128: (128, 64, 32, 32) runs 64 x 16
programs of 8 steps of 1024; (128, 512, 4, 4) runs 512 x 2 programs of one.

STEPS, the loop's trip count, is a constexpr (a power of two, so only a few
variants compile; the tail of the last chunk is masked by `hi`). A constant
trip count needs no help from common.py's patch for Triton 3.6's interpreter
under NumPy 2 (triton-lang/triton#9171: `range()` over a runtime integer).

Why Welford + Chan. var = E[x^2] - E[x]^2 in float32 loses digits in
proportion to mean^2 / var (both terms carry rounding errors of E[x^2]'s
size), enough to miss 1e-5 on inputs like U[1, 4], so the statistics never
form sum(x^2). Each lane of a program runs Welford's
update (count, mean, M2) over the elements it visits; the lanes, and then
the chunks, are merged with Chan's formula
    mean = sum(n_i mean_i) / n,  M2 = sum(M2_i) + sum(n_i (mean_i - mean)^2),
whose terms are all non-negative deviations: nothing cancels. This is the
scheme PyTorch's CUDA batch norm uses; float32 data is accumulated in
float32 (per-lane Welford and tree sums keep it well under 1e-5), float64 in
float64.

Scalars. Triton passes a Python float kernel argument as fp32, which would
round eps, momentum and the unbiasing factor M/(M-1) to ~1e-8 and break
float64 runs at 1e-10. So they are declared `tl.float64` and turned into the
array's dtype inside the kernel by `_scalar`, which rounds once, exactly as
NumPy does when it mixes a Python float with a float32 array (and keeps full
precision for float64). Under TRITON_INTERPRET=1 the argument stays a Python
float; `_scalar` handles both cases.

Kernels (one line each; details above each kernel):
  _bn_stats_partial_kernel    grid (C, nchunk): per-lane Welford over one
                              chunk of one channel, lanes merged by Chan ->
                              (mean_k, M2_k) in the workspace.
  _bn_stats_finalize_kernel   grid (cdiv(C, BLOCK_C),): merges each channel's
                              chunks (Chan, fixed order) -> mean, invstd, and
                              updates running_mean / running_var in place.
  _bn_eval_stats_kernel       grid (cdiv(C, BLOCK_C),): mean = copy of
                              running_mean, invstd = 1/sqrt(running_var + eps)
                              (new arrays: the backward must not see later
                              updates of the running statistics).
  _bn_normalize_kernel        flat grid over N*C*HW: y = act(x_hat * w + b),
                              channel c = (i // HW) % C gathered per element
                              (per-channel values stay in L1/L2). A flat grid
                              keeps every program full even at HW = 4x4, where
                              one program per (n, c) row would hold 16 values.
  _bn_backward_partial_kernel grid (C, nchunk): sum(g) and sum(g * x_hat) over
                              one chunk, g = dy times the activation's gradient
                              (recomputed from the sign of the BN output
                              x_hat * w + b) when an activation is fused.
  _bn_backward_finalize_kernel grid (cdiv(C, BLOCK_C),): sums the chunks in a
                              fixed order -> dbias = sum(g), dweight =
                              sum(g x_hat), and the dx coefficients
                              sum(g)/M, sum(g x_hat)/M.
  _bn_backward_dx_kernel      flat grid: dx = w invstd (g - sum(g)/M -
                              x_hat sum(g x_hat)/M) in training (the terms
                              through the batch mean and variance), or
                              dx = w invstd g in eval (constant statistics).

So each direction is one reduction pass over the data + one elementwise pass
(plus a tiny per-channel kernel): training forward reads x twice and writes y
once; the backward reads x and dy twice and writes dx once.

Fused activation (ACT: 0 none, 1 ReLU, 2 LeakyReLU with `slope`). The forward
applies it to y in _bn_normalize_kernel, so the BN output never goes to memory.
The backward is handed the gradient of the activation's output; it recomputes
the BN output y = x_hat * w + b from x, mean, invstd, weight and bias (the same
`_bn_output` helper the forward uses), takes g = dy where y > 0 and
g = slope * dy (ReLU: 0) elsewhere, and uses g in place of dy in both the
reduction and the dx pass. torch's choice at y == 0 (gradient 0 for ReLU,
slope for LeakyReLU) is kept.
"""

import triton
import triton.language as tl

from . import common
from .common import cdiv, next_pow2, ptr
from ..launch_checks import Plan, bn_activation_code, check_batch_norm

TARGET_PROGRAMS = 1024  # (channel, chunk) programs per reduction: ~8 per SM on an H100
PLAN = Plan(__name__, common.INTERPRET,
            # elements per program per loop step in the reductions; per
            # program in the elementwise passes
            gpu={"MAX_BLOCK": 1024, "EW_BLOCK": 1024},
            simulator={"MAX_BLOCK": 4096, "EW_BLOCK": 16384},
            why="the interpreter runs programs one after another, each op costing ~0.1 ms "
                "of Python whatever its size: fewer, larger programs (same kernels)")
MAX_BLOCK, EW_BLOCK = PLAN.current("MAX_BLOCK", "EW_BLOCK")


# ---------------------------------------------------------------- helpers
@triton.jit
def _scalar(s, dtype: tl.constexpr):
    """A tl.float64 kernel argument (a Python float under the interpreter) as
    a scalar of `dtype`, rounded once."""
    return tl.sum(tl.full([1], s, tl.float64), axis=0).to(dtype)


@triton.jit
def _bn_output(xhat, w, b, HAS_W: tl.constexpr, HAS_B: tl.constexpr):
    """y = x_hat * w + b, in the reference's order (w and b optional)."""
    y = xhat
    if HAS_W:
        y = y * w
    if HAS_B:
        y = y + b
    return y


@triton.jit
def _act_forward(y, slope, ACT: tl.constexpr):
    if ACT == 1:
        y = tl.where(y > 0, y, 0.0)
    elif ACT == 2:
        y = tl.where(y > 0, y, y * slope)
    return y


@triton.jit
def _act_backward(dy, y, slope, ACT: tl.constexpr):
    """dy times the activation's derivative at its input y (0 / slope at y <= 0)."""
    if ACT == 1:
        dy = tl.where(y > 0, dy, 0.0)
    elif ACT == 2:
        dy = tl.where(y > 0, dy, dy * slope)
    return dy


# ------------------------------------------------------- forward statistics
# Program (c, k) visits m in [k*chunk, min((k+1)*chunk, M)) in steps of BLOCK.
# Lane j keeps Welford's (count, mean, M2) over the elements it sees; a
# masked-off lane (the tail of the last step) leaves its state unchanged.
# The lanes are then merged with Chan's formula into the chunk's mean and M2.
@triton.jit
def _bn_stats_partial_kernel(x_ptr, pmean_ptr, pm2_ptr, C, HW, M, nchunk,
                             BLOCK: tl.constexpr, STEPS: tl.constexpr):
    c = tl.program_id(0)
    k = tl.program_id(1)
    dt = x_ptr.dtype.element_ty
    lo = k * (STEPS * BLOCK)
    hi = tl.minimum(lo + STEPS * BLOCK, M)
    cnt = tl.zeros([BLOCK], dtype=dt)
    mean = tl.zeros([BLOCK], dtype=dt)
    m2 = tl.zeros([BLOCK], dtype=dt)
    lanes = tl.arange(0, BLOCK)
    for step in range(0, STEPS):  # chunk = STEPS * BLOCK; hi masks the tail
        m = lo + step * BLOCK + lanes
        mask = m < hi
        n = m // HW
        x = tl.load(x_ptr + (n * C + c) * HW + (m - n * HW), mask=mask, other=0.0)
        cnt_new = cnt + tl.where(mask, 1.0, 0.0)
        delta = x - mean
        mean_new = mean + tl.where(mask, delta / tl.maximum(cnt_new, 1.0), 0.0)
        m2 = m2 + tl.where(mask, delta * (x - mean_new), 0.0)
        mean = mean_new
        cnt = cnt_new
    n_chunk = hi - lo  # >= 1: every chunk starts below M
    mean_chunk = tl.sum(cnt * mean, axis=0) / n_chunk
    d = mean - mean_chunk
    m2_chunk = tl.sum(m2 + cnt * d * d, axis=0)
    tl.store(pmean_ptr + c * nchunk + k, mean_chunk)
    tl.store(pm2_ptr + c * nchunk + k, m2_chunk)


# Chan's merge of each channel's nchunk partials, as one [BLOCK_C, BLOCK_K]
# tile (chunk k holds min(chunk, M - k*chunk) elements), then the running
# statistics update, in the reference's order of operations:
#   r = (1 - momentum) * r + momentum * stat,  running_var from var * M/(M-1).
@triton.jit
def _bn_stats_finalize_kernel(pmean_ptr, pm2_ptr, mean_ptr, invstd_ptr, rmean_ptr, rvar_ptr,
                              C, M, chunk, nchunk,
                              eps: tl.float64, momentum: tl.float64,
                              one_minus_momentum: tl.float64, unbias: tl.float64,
                              HAS_RM: tl.constexpr, HAS_RV: tl.constexpr,
                              BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr):
    dt = pmean_ptr.dtype.element_ty
    ch = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    kk = tl.arange(0, BLOCK_K)
    cmask = ch < C
    mask = cmask[:, None] & (kk < nchunk)[None, :]
    idx = ch[:, None] * nchunk + kk[None, :]
    pmean = tl.load(pmean_ptr + idx, mask=mask, other=0.0)
    pm2 = tl.load(pm2_ptr + idx, mask=mask, other=0.0)
    cnt = tl.minimum(tl.maximum(M - kk * chunk, 0), chunk).to(dt)
    cnt = tl.where(mask, cnt[None, :], 0.0)
    mean = tl.sum(cnt * pmean, axis=1) / M
    d = pmean - mean[:, None]
    var = tl.sum(pm2 + cnt * d * d, axis=1) / M
    invstd = 1.0 / tl.sqrt(var + _scalar(eps, dt))
    tl.store(mean_ptr + ch, mean, mask=cmask)
    tl.store(invstd_ptr + ch, invstd, mask=cmask)
    mom = _scalar(momentum, dt)
    keep = _scalar(one_minus_momentum, dt)
    if HAS_RM:
        rm = tl.load(rmean_ptr + ch, mask=cmask, other=0.0)
        tl.store(rmean_ptr + ch, keep * rm + mom * mean, mask=cmask)
    if HAS_RV:
        rv = tl.load(rvar_ptr + ch, mask=cmask, other=0.0)
        tl.store(rvar_ptr + ch, keep * rv + mom * (var * _scalar(unbias, dt)), mask=cmask)


@triton.jit
def _bn_eval_stats_kernel(rmean_ptr, rvar_ptr, mean_ptr, invstd_ptr, C, eps: tl.float64,
                          BLOCK_C: tl.constexpr):
    dt = rmean_ptr.dtype.element_ty
    ch = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = ch < C
    rm = tl.load(rmean_ptr + ch, mask=cmask, other=0.0)
    rv = tl.load(rvar_ptr + ch, mask=cmask, other=0.0)
    tl.store(mean_ptr + ch, rm, mask=cmask)
    tl.store(invstd_ptr + ch, 1.0 / tl.sqrt(rv + _scalar(eps, dt)), mask=cmask)


# ----------------------------------------------------- normalize (+ act)
@triton.jit
def _bn_normalize_kernel(x_ptr, y_ptr, mean_ptr, invstd_ptr, w_ptr, b_ptr, numel, C, HW,
                         slope: tl.float64,
                         HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACT: tl.constexpr,
                         BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    c = (offs // HW) % C
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    mean = tl.load(mean_ptr + c, mask=mask, other=0.0)
    invstd = tl.load(invstd_ptr + c, mask=mask, other=0.0)
    w = 1.0  # placeholders: read only under HAS_W / HAS_B
    b = 0.0
    if HAS_W:
        w = tl.load(w_ptr + c, mask=mask, other=0.0)
    if HAS_B:
        b = tl.load(b_ptr + c, mask=mask, other=0.0)
    y = _bn_output((x - mean) * invstd, w, b, HAS_W, HAS_B)
    if ACT != 0:
        y = _act_forward(y, _scalar(slope, x.dtype), ACT)
    tl.store(y_ptr + offs, y, mask=mask)


# ------------------------------------------------------------- backward
# Same split as the forward statistics: program (c, k) sums g and g * x_hat
# over its chunk (per-lane accumulators, then one tree sum each).
@triton.jit
def _bn_backward_partial_kernel(dy_ptr, x_ptr, mean_ptr, invstd_ptr, w_ptr, b_ptr,
                                psum_ptr, psumx_ptr, C, HW, M, nchunk,
                                slope: tl.float64,
                                HAS_W: tl.constexpr, HAS_B: tl.constexpr,
                                ACT: tl.constexpr, BLOCK: tl.constexpr, STEPS: tl.constexpr):
    c = tl.program_id(0)
    k = tl.program_id(1)
    dt = x_ptr.dtype.element_ty
    mean = tl.load(mean_ptr + c)
    invstd = tl.load(invstd_ptr + c)
    w = 1.0
    b = 0.0
    if ACT != 0:
        sl = _scalar(slope, dt)
        if HAS_W:
            w = tl.load(w_ptr + c)
        if HAS_B:
            b = tl.load(b_ptr + c)
    lo = k * (STEPS * BLOCK)
    hi = tl.minimum(lo + STEPS * BLOCK, M)
    s1 = tl.zeros([BLOCK], dtype=dt)
    s2 = tl.zeros([BLOCK], dtype=dt)
    lanes = tl.arange(0, BLOCK)
    for step in range(0, STEPS):  # chunk = STEPS * BLOCK; hi masks the tail
        m = lo + step * BLOCK + lanes
        mask = m < hi
        n = m // HW
        off = (n * C + c) * HW + (m - n * HW)
        x = tl.load(x_ptr + off, mask=mask, other=0.0)
        g = tl.load(dy_ptr + off, mask=mask, other=0.0)
        xhat = (x - mean) * invstd
        if ACT != 0:
            g = _act_backward(g, _bn_output(xhat, w, b, HAS_W, HAS_B), sl, ACT)
        s1 = s1 + g
        s2 = s2 + g * xhat
    tl.store(psum_ptr + c * nchunk + k, tl.sum(s1, axis=0))
    tl.store(psumx_ptr + c * nchunk + k, tl.sum(s2, axis=0))


@triton.jit
def _bn_backward_finalize_kernel(psum_ptr, psumx_ptr, coef_ptr, dw_ptr, db_ptr, C, M, nchunk,
                                 WRITE_GRADS: tl.constexpr,
                                 BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr):
    ch = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    kk = tl.arange(0, BLOCK_K)
    cmask = ch < C
    mask = cmask[:, None] & (kk < nchunk)[None, :]
    idx = ch[:, None] * nchunk + kk[None, :]
    sum_g = tl.sum(tl.load(psum_ptr + idx, mask=mask, other=0.0), axis=1)
    sum_gx = tl.sum(tl.load(psumx_ptr + idx, mask=mask, other=0.0), axis=1)
    tl.store(coef_ptr + ch, sum_g / M, mask=cmask)
    tl.store(coef_ptr + C + ch, sum_gx / M, mask=cmask)
    if WRITE_GRADS:
        tl.store(db_ptr + ch, sum_g, mask=cmask)
        tl.store(dw_ptr + ch, sum_gx, mask=cmask)


@triton.jit
def _bn_backward_dx_kernel(dy_ptr, x_ptr, mean_ptr, invstd_ptr, w_ptr, b_ptr, coef_ptr, dx_ptr,
                           numel, C, HW, slope: tl.float64,
                           HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACT: tl.constexpr,
                           TRAINING: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    c = (offs // HW) % C
    g = tl.load(dy_ptr + offs, mask=mask, other=0.0)
    invstd = tl.load(invstd_ptr + c, mask=mask, other=0.0)
    w = 1.0
    b = 0.0
    if HAS_W:
        w = tl.load(w_ptr + c, mask=mask, other=0.0)
    if TRAINING or ACT != 0:
        x = tl.load(x_ptr + offs, mask=mask, other=0.0)
        mean = tl.load(mean_ptr + c, mask=mask, other=0.0)
        xhat = (x - mean) * invstd
    if ACT != 0:
        if HAS_B:
            b = tl.load(b_ptr + c, mask=mask, other=0.0)
        g = _act_backward(g, _bn_output(xhat, w, b, HAS_W, HAS_B),
                          _scalar(slope, g.dtype), ACT)
    scale = invstd
    if HAS_W:
        scale = w * invstd
    if TRAINING:
        mean_g = tl.load(coef_ptr + c, mask=mask, other=0.0)
        mean_gx = tl.load(coef_ptr + C + c, mask=mask, other=0.0)
        dx = scale * (g - mean_g - xhat * mean_gx)
    else:
        dx = g * scale
    tl.store(dx_ptr + offs, dx, mask=mask)


# ------------------------------------------------------------- launchers
def _split(M, C, profile=None):
    """(BLOCK, chunk, nchunk): each channel's M elements in nchunk chunks of
    `chunk` = STEPS * BLOCK elements so that C * nchunk ~ TARGET_PROGRAMS.
    STEPS is a power of two (few distinct compiled variants). `profile`:
    "gpu" or "simulator" (launch_checks.Plan), None for the active one."""
    block = min(PLAN.constants(profile)["MAX_BLOCK"], next_pow2(M))
    wanted = max(1, cdiv(TARGET_PROGRAMS, C))
    chunk = next_pow2(cdiv(cdiv(M, wanted), block)) * block
    return block, chunk, max(1, cdiv(M, chunk))


def _tile(C, nchunk):
    """(BLOCK_C, BLOCK_K) for the per-channel combine kernels: all chunks of a
    channel in one row of the tile, ~4096 values per program at most."""
    block_k = next_pow2(nchunk)
    block_c = max(1, min(next_pow2(C), 4096 // block_k))
    return block_c, block_k


def _normalize(x, mean, invstd, weight, bias, act, slope):
    C, HW = x.shape[1], x.shape[2] * x.shape[3]
    y = common.empty(x.shape, x.dtype)
    if x.size:
        _bn_normalize_kernel[(cdiv(x.size, EW_BLOCK),)](
            ptr(x), ptr(y), ptr(mean), ptr(invstd),
            ptr(weight if weight is not None else mean), ptr(bias if bias is not None else mean),
            x.size, C, HW, float(slope),
            HAS_W=weight is not None, HAS_B=bias is not None, ACT=act, BLOCK=EW_BLOCK)
    return y


def train_forward(x, weight, bias, running_mean, running_var, momentum, eps, activation=None,
                  negative_slope=0.0):
    """(y, save_mean, save_invstd) from the batch statistics; updates
    running_mean / running_var in place when given (torch's rule, unbiased
    variance for running_var). With activation "relu" or "leaky_relu" (and
    negative_slope) the normalize kernel applies it too: y = act(bn(x))."""
    act, slope = bn_activation_code(activation), negative_slope
    _, N, C, HW = check_batch_norm("batch_norm_train_forward", x, weight=weight, bias=bias,
                                   running_mean=running_mean, running_var=running_var)
    M = N * HW
    block, chunk, nchunk = _split(M, C)
    pmean = common.empty((C, nchunk), x.dtype)
    pm2 = common.empty((C, nchunk), x.dtype)
    mean = common.empty((C,), x.dtype)
    invstd = common.empty((C,), x.dtype)
    _bn_stats_partial_kernel[(C, nchunk)](ptr(x), ptr(pmean), ptr(pm2), C, HW, M, nchunk,
                                          BLOCK=block, STEPS=chunk // block)
    block_c, block_k = _tile(C, nchunk)
    momentum = float(momentum)
    _bn_stats_finalize_kernel[(cdiv(C, block_c),)](
        ptr(pmean), ptr(pm2), ptr(mean), ptr(invstd),
        ptr(running_mean if running_mean is not None else mean),
        ptr(running_var if running_var is not None else mean),
        C, M, chunk, nchunk, float(eps), momentum, 1.0 - momentum, M / max(M - 1, 1),
        HAS_RM=running_mean is not None, HAS_RV=running_var is not None,
        BLOCK_C=block_c, BLOCK_K=block_k)
    return _normalize(x, mean, invstd, weight, bias, act, slope), mean, invstd


def eval_forward(x, weight, bias, running_mean, running_var, eps, activation=None,
                 negative_slope=0.0):
    """(y, mean, invstd) from the running statistics (mean and invstd are new
    arrays), with an optional fused activation as in train_forward."""
    act, slope = bn_activation_code(activation), negative_slope
    _, N, C, HW = check_batch_norm("batch_norm_eval_forward", x, weight=weight, bias=bias,
                                   running_mean=running_mean, running_var=running_var)
    mean = common.empty((C,), x.dtype)
    invstd = common.empty((C,), x.dtype)
    block_c = min(next_pow2(C), 1024)
    _bn_eval_stats_kernel[(cdiv(C, block_c),)](ptr(running_mean), ptr(running_var), ptr(mean),
                                               ptr(invstd), C, float(eps), BLOCK_C=block_c)
    return _normalize(x, mean, invstd, weight, bias, act, slope), mean, invstd


def backward(dy, x, weight, mean, invstd, training, bias=None, activation=None,
             negative_slope=0.0):
    """(dx, dweight, dbias); dweight and dbias are None when weight is.

    With an activation, this is the backward of act(batch_norm(x)): dy is the
    gradient of the activation's output, and the activation's gradient comes
    from the sign of the BN output, recomputed from x, mean, invstd, weight
    and bias (so bias is needed then)."""
    act, slope = bn_activation_code(activation), negative_slope
    _, N, C, HW = check_batch_norm("batch_norm_backward", x, dy, weight=weight, bias=bias,
                                   mean=mean, invstd=invstd)
    M = N * HW
    training = bool(training)
    has_w, has_b = weight is not None, (bias is not None and act != 0)
    w_arg = weight if has_w else mean
    b_arg = bias if has_b else mean
    dweight = common.empty((C,), x.dtype) if has_w else None
    dbias = common.empty((C,), x.dtype) if has_w else None
    coef = None
    if training or has_w:  # the per-channel sums are needed
        block, chunk, nchunk = _split(M, C)
        psum = common.empty((C, nchunk), x.dtype)
        psumx = common.empty((C, nchunk), x.dtype)
        coef = common.empty((2, C), x.dtype)
        _bn_backward_partial_kernel[(C, nchunk)](
            ptr(dy), ptr(x), ptr(mean), ptr(invstd), ptr(w_arg), ptr(b_arg),
            ptr(psum), ptr(psumx), C, HW, M, nchunk, float(slope),
            HAS_W=has_w, HAS_B=has_b, ACT=act, BLOCK=block, STEPS=chunk // block)
        block_c, block_k = _tile(C, nchunk)
        _bn_backward_finalize_kernel[(cdiv(C, block_c),)](
            ptr(psum), ptr(psumx), ptr(coef), ptr(dweight if has_w else coef),
            ptr(dbias if has_w else coef), C, M, nchunk,
            WRITE_GRADS=has_w, BLOCK_C=block_c, BLOCK_K=block_k)
    dx = common.empty(x.shape, x.dtype)
    if x.size:
        _bn_backward_dx_kernel[(cdiv(x.size, EW_BLOCK),)](
            ptr(dy), ptr(x), ptr(mean), ptr(invstd), ptr(w_arg), ptr(b_arg),
            ptr(coef if coef is not None else mean), ptr(dx), x.size, C, HW, float(slope),
            HAS_W=has_w, HAS_B=has_b, ACT=act, TRAINING=training, BLOCK=EW_BLOCK)
    return dx, dweight, dbias
