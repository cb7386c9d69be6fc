"""Reductions over any set of axes, deterministic: sum, mean, amax, amin,
argmax, argmin and var.

The plan (kernels/strided.py's reduction_plan, shared with the CUDA
backend). A reduction over a set of axes is a sequence of passes, one per run
of *consecutive* reduced axes (their extents multiply into one), from the last
run to the first so that the earlier axes keep their positions. A pass sees
its contiguous input as a 3-D view (outer, R, inner) and reduces R; no
transposes are ever made. sum over (0, 2, 3) of an NCHW array is two passes:
(N*C, H*W, 1), then (1, N, C).

One pair of kernels serves every reduction, the op a constexpr (OP):
    _SUM     acc + x
    _MAX     NaN-propagating max: acc = x if x > acc or x is NaN
    _MIN     likewise
    _SQDEV   acc + (x - c)**2, c the mean of x's output element, read from
             a centre array laid out as the pass's (outer, inner) output
    _ARGMAX  a (value, index) pair per accumulator: the value's first
    _ARGMIN  occurrence, NaN counting as the extreme (torch, np.argmax)

_reduce_rows_kernel (inner == 1: reducing the last axes)
    Each program owns BLOCK_O rows and walks R in steps of BLOCK_R: it loads
    a [BLOCK_O, BLOCK_R] tile (contiguous along R) and folds it into a tile
    of accumulators; one reduction over the tile's R axis at the end. Each
    accumulator lane sums every BLOCK_R-th element in order, then the lanes
    are summed as a tree: blocked, pairwise-like summation, whose error grows
    with R/BLOCK_R + log2(BLOCK_R) rather than with R.

_reduce_cols_kernel (inner > 1)
    Each program owns one outer index and BLOCK_I consecutive inner columns
    and walks R in steps of BLOCK_R with a [BLOCK_R, BLOCK_I] tile, contiguous
    along inner (coalesced loads whenever inner is more than a few elements),
    then reduces the tile over R.

The tile reductions. tl.sum for the sums. tl.max / tl.min drop NaN (maxnum
on a GPU, nanmax under the interpreter), so max and min reduce the tile
with NaN lanes masked to -inf / +inf and return NaN where any lane holds
one. An arg lane keeps the first index at which it saw its extreme (it only
replaces its pair on a strictly better value, or on the first NaN); across
lanes the winner is the smallest index among the lanes holding the row's
extreme (or a NaN), so the result is the first occurrence whatever the tile
shape. Masked elements load the op's identity (0, -inf, +inf), and an arg
lane that never saw an element holds index -1 and never wins.

Split-R. When the outputs are too few to keep the machine busy (a full
reduction has one) while R is long, each kernel also takes a chunk of R
(grid axis 1): chunk s writes its partial result to a workspace viewed as
(outer, n_chunks, inner), and a second pass reduces that workspace over its
chunks with the same kernels (partial sums of squared deviations are summed;
partial arg pairs are reduced again, with the indices read from an index
workspace (FROM_POS) instead of being the positions along R: chunks are in
index order, so the first chunk holding the extreme holds the first
occurrence). Chunk boundaries depend only on the shapes and every reduction
runs in a fixed order, so results are bitwise reproducible (no atomics), as
the layer-norm backward of the Triton tutorials does it.

mean divides the final pass by the number of reduced elements, in float64
and then rounded, which is what NumPy's mean computes (float32 sum / intp
count is evaluated in double); the divisor travels as float64 bits.

var is two-pass, as the contract asks: the mean (keepdims), then the sum of
squared deviations from it, fused into the first pass of that sum (_SQDEV),
divided by max(count - correction, 0) in the last. The first pass reduces
the last run of reduced axes; its centre array is the mean broadcast over
the other reduced axes (numel / R elements, no copy at all when one run is
reduced). Later passes, if any, are plain sums. var over no axes is the
same pass with R = 1 and the input as its own mean.

Accumulation is in the input dtype (float32 in float32, float64 in float64).
Tiles hold 2048 accumulators on GPUs (16384 under the interpreter, which pays
per program, not per element; half of that for the arg ops' value-index
pairs); results depend on the tile sizes only through rounding.

The launchers at the end: `_pass` plans one pass (tile shape, chunks),
allocates with `common.empty` and launches; sum, mean, amax and amin drive
it with strided.run_reduction, argmax/argmin and var with reduction_plan.
"""

import numpy as np
import triton
import triton.language as tl

from .. import strided
from . import common
from .common import cdiv, empty, next_pow2, ptr
from ..launch_checks import Plan
from .elementwise import _f64_arg, contiguous, fill_, nan_like, quiet

# GPU: 2048 accumulators = 16 registers per thread at 4 warps; two programs
# per SM of an H100 (132 SMs) before a pass bothers splitting R.
PLAN = Plan(__name__, common.INTERPRET,
            gpu={"_TILE": 2048, "_MAX_BLOCK_R": 1024, "_TARGET_PROGRAMS": 264},
            simulator={"_TILE": 16384, "_MAX_BLOCK_R": 8192, "_TARGET_PROGRAMS": 8},
            why="the interpreter pays per program and per operation, not per element: "
                "big tiles and few programs")
_TILE, _MAX_BLOCK_R, _TARGET_PROGRAMS = PLAN.current("_TILE", "_MAX_BLOCK_R", "_TARGET_PROGRAMS")
_MAX_BLOCK_I = 128
_MIN_ITERS_PER_CHUNK = 4

_OPS = {"sum": 0, "max": 1, "min": 2, "sqdev": 3, "argmax": 4, "argmin": 5}
_SUM, _MAX, _MIN, _SQDEV, _ARGMAX, _ARGMIN = (tl.constexpr(v) for v in range(6))
_INF = tl.constexpr(float("inf"))
_NO_INDEX = tl.constexpr(2**63 - 1)


# =============================================================== kernels
@triton.jit
def _finish(s, div_bits, DIVIDE: tl.constexpr):
    if DIVIDE:
        s = (s.to(tl.float64) / _f64_arg(div_bits)).to(s.dtype)
    return s


@triton.jit
def _identity(OP: tl.constexpr):
    """What a masked element loads: it leaves the accumulator unchanged."""
    if OP == _MAX or OP == _ARGMAX:
        return -_INF
    elif OP == _MIN or OP == _ARGMIN:
        return _INF
    else:
        return 0.0


@triton.jit
def _fold(acc, x, mask, center, OP: tl.constexpr):
    """One tile of x folded into the accumulators (not the arg ops)."""
    if OP == _SUM:
        acc += x
    elif OP == _SQDEV:
        d = x - center
        acc += tl.where(mask, d * d, 0.0)
    elif OP == _MAX:
        acc = tl.where((x > acc) | (x != x), x, acc)
    else:
        acc = tl.where((x < acc) | (x != x), x, acc)
    return acc


@triton.jit
def _tile_reduce(acc, AXIS: tl.constexpr, OP: tl.constexpr):
    """The accumulator tile reduced over AXIS (not the arg ops)."""
    if OP == _SUM or OP == _SQDEV:
        return tl.sum(acc, axis=AXIS)
    nan = acc != acc
    any_nan = tl.max(nan.to(tl.int32), axis=AXIS) > 0
    if OP == _MAX:
        m = tl.max(tl.where(nan, -_INF, acc), axis=AXIS)
    else:
        m = tl.min(tl.where(nan, _INF, acc), axis=AXIS)
    return tl.where(any_nan, nan_like(m), m)


@triton.jit
def _arg_fold(acc, acc_i, x, pos, mask, OP: tl.constexpr):
    """Fold a tile into (value, index) lanes: a lane takes an element that
    is strictly better, or its first element, or its first NaN."""
    if OP == _ARGMAX:
        better = x > acc
    else:
        better = x < acc
    take = mask & ((acc_i < 0) | better | ((x != x) & (acc == acc)))
    return tl.where(take, x, acc), tl.where(take, pos, acc_i)


@triton.jit
def _arg_reduce(acc, acc_i, AXIS: tl.constexpr, OP: tl.constexpr):
    """(value, first index) of the extreme over AXIS of the lane tiles."""
    nan = acc != acc
    any_nan = tl.max(nan.to(tl.int32), axis=AXIS) > 0
    if OP == _ARGMAX:
        m = tl.max(tl.where(nan, -_INF, acc), axis=AXIS)
    else:
        m = tl.min(tl.where(nan, _INF, acc), axis=AXIS)
    hit = tl.where(tl.expand_dims(any_nan, AXIS), nan, acc == tl.expand_dims(m, AXIS))
    hit = hit & (acc_i >= 0)
    idx = tl.min(tl.where(hit, acc_i, _NO_INDEX), axis=AXIS)
    return tl.where(any_nan, nan_like(m), m), idx


@triton.jit
def _reduce_rows_kernel(x_ptr, c_ptr, pos_ptr, out_ptr, idx_ptr, n_rows, R, chunk, n_chunks,
                        div_bits, OP: tl.constexpr, FROM_POS: tl.constexpr,
                        DIVIDE: tl.constexpr, INT64: tl.constexpr,
                        BLOCK_O: tl.constexpr, BLOCK_R: tl.constexpr):
    pid_o = tl.program_id(0)
    pid_s = tl.program_id(1)
    rows = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
    if INT64:
        rows = rows.to(tl.int64)
    row_mask = rows < n_rows
    if INT64:
        r_start = pid_s.to(tl.int64) * chunk
    else:
        r_start = pid_s * chunk
    r_end = tl.minimum(r_start + chunk, R)
    base = rows[:, None] * R
    cols0 = tl.arange(0, BLOCK_R)
    dt: tl.constexpr = x_ptr.dtype.element_ty
    ident = _identity(OP)
    acc = tl.full([BLOCK_O, BLOCK_R], ident, dtype=dt)
    if OP == _ARGMAX or OP == _ARGMIN:
        acc_i = tl.full([BLOCK_O, BLOCK_R], -1, dtype=tl.int64)
        for r0 in range(r_start, r_end, BLOCK_R):
            cols = r0 + cols0
            mask = row_mask[:, None] & (cols[None, :] < r_end)
            x = tl.load(x_ptr + base + cols[None, :], mask=mask, other=ident)
            if FROM_POS:
                pos = tl.load(pos_ptr + base + cols[None, :], mask=mask, other=0)
            else:
                pos = (base * 0 + cols[None, :]).to(tl.int64)
            acc, acc_i = _arg_fold(acc, acc_i, x, pos, mask, OP)
        v, idx = _arg_reduce(acc, acc_i, 1, OP)
        tl.store(idx_ptr + rows * n_chunks + pid_s, idx, mask=row_mask)
    else:
        if OP == _SQDEV:
            center = tl.load(c_ptr + rows, mask=row_mask, other=0.0)[:, None]
        else:
            center = 0.0
        for r0 in range(r_start, r_end, BLOCK_R):
            cols = r0 + cols0
            mask = row_mask[:, None] & (cols[None, :] < r_end)
            x = tl.load(x_ptr + base + cols[None, :], mask=mask, other=ident)
            acc = _fold(acc, x, mask, center, OP)
        v = _finish(_tile_reduce(acc, 1, OP), div_bits, DIVIDE)
    tl.store(out_ptr + rows * n_chunks + pid_s, v, mask=row_mask)


@triton.jit
def _reduce_cols_kernel(x_ptr, c_ptr, pos_ptr, out_ptr, idx_ptr, R, inner, n_iblocks, chunk,
                        n_chunks, div_bits, OP: tl.constexpr, FROM_POS: tl.constexpr,
                        DIVIDE: tl.constexpr, INT64: tl.constexpr,
                        BLOCK_R: tl.constexpr, BLOCK_I: tl.constexpr):
    pid = tl.program_id(0)
    pid_s = tl.program_id(1)
    o = pid // n_iblocks
    ib = pid % n_iblocks
    if INT64:
        o = o.to(tl.int64)
    cols = ib * BLOCK_I + tl.arange(0, BLOCK_I)
    col_mask = cols < inner
    if INT64:
        r_start = pid_s.to(tl.int64) * chunk
    else:
        r_start = pid_s * chunk
    r_end = tl.minimum(r_start + chunk, R)
    base = o * R * inner + cols[None, :]
    rr0 = tl.arange(0, BLOCK_R)
    dt: tl.constexpr = x_ptr.dtype.element_ty
    ident = _identity(OP)
    acc = tl.full([BLOCK_R, BLOCK_I], ident, dtype=dt)
    dst = (o * n_chunks + pid_s) * inner + cols
    if OP == _ARGMAX or OP == _ARGMIN:
        acc_i = tl.full([BLOCK_R, BLOCK_I], -1, dtype=tl.int64)
        for r0 in range(r_start, r_end, BLOCK_R):
            rr = r0 + rr0
            mask = (rr[:, None] < r_end) & col_mask[None, :]
            x = tl.load(x_ptr + base + rr[:, None] * inner, mask=mask, other=ident)
            if FROM_POS:
                pos = tl.load(pos_ptr + base + rr[:, None] * inner, mask=mask, other=0)
            else:
                pos = (rr[:, None] + cols[None, :] * 0).to(tl.int64)
            acc, acc_i = _arg_fold(acc, acc_i, x, pos, mask, OP)
        v, idx = _arg_reduce(acc, acc_i, 0, OP)
        tl.store(idx_ptr + dst, idx, mask=col_mask)
    else:
        if OP == _SQDEV:
            center = tl.load(c_ptr + o * inner + cols, mask=col_mask, other=0.0)[None, :]
        else:
            center = 0.0
        for r0 in range(r_start, r_end, BLOCK_R):
            rr = r0 + rr0
            mask = (rr[:, None] < r_end) & col_mask[None, :]
            x = tl.load(x_ptr + base + rr[:, None] * inner, mask=mask, other=ident)
            acc = _fold(acc, x, mask, center, OP)
        v = _finish(_tile_reduce(acc, 0, OP), div_bits, DIVIDE)
    tl.store(out_ptr + dst, v, mask=col_mask)


# ============================================================= launchers
def plan(outer, R, inner, arg=False, allow_split=True, profile=None):
    """The launch plan of one pass over x viewed as (outer, R, inner): a
    function of the shape and the device profile ("gpu" or "simulator",
    launch_checks.Plan; None: the active one). Rows (inner == 1) take
    BLOCK_O rows x BLOCK_R columns per program, columns BLOCK_I x BLOCK_R,
    about a tile of accumulators (half for the arg ops, which carry
    indices); R is split into chunks (a multiple of BLOCK_R each) when there
    are fewer than _TARGET_PROGRAMS programs and enough work per chunk."""
    c = PLAN.constants(profile)
    tile = c["_TILE"] // 2 if arg else c["_TILE"]
    block_o = block_i = n_iblocks = 0
    if inner == 1:
        block_r = min(next_pow2(R), c["_MAX_BLOCK_R"])
        block_o = min(max(1, tile // block_r), next_pow2(outer))
        programs = cdiv(outer, block_o)
    else:
        block_i = min(next_pow2(inner), _MAX_BLOCK_I)
        block_r = min(max(1, tile // block_i), next_pow2(R))
        n_iblocks = cdiv(inner, block_i)
        programs = outer * n_iblocks
    n_chunks, chunk = 1, max(R, 1)
    min_chunk = _MIN_ITERS_PER_CHUNK * block_r
    if allow_split and programs < c["_TARGET_PROGRAMS"] and R >= 2 * min_chunk:
        want = min(cdiv(c["_TARGET_PROGRAMS"], programs), R // min_chunk)
        chunk = cdiv(cdiv(R, want), block_r) * block_r
        n_chunks = cdiv(R, chunk)
    return {"tile": tile, "BLOCK_R": block_r, "BLOCK_O": block_o, "BLOCK_I": block_i,
            "programs": programs, "n_iblocks": n_iblocks, "n_chunks": n_chunks, "chunk": chunk,
            "grid": (programs, n_chunks)}


def _pass(op, x, outer, R, inner, divisor=None, center=None, pos=None, allow_split=True):
    """Reduce contiguous x viewed as (outer, R, inner) over R with `op`.

    Returns (out, idx): out a new contiguous (outer, inner) array of x's
    dtype, divided by `divisor` unless it is None; idx the int64 indices
    along R for the arg ops, else None. `center` is the (outer, inner) mean
    for "sqdev"; `pos` the indices that x's elements stand for (the second
    pass over an arg op's chunks)."""
    arg = op in ("argmax", "argmin")
    out = empty((outer, inner), x.dtype)
    idx = empty((outer, inner), np.int64) if arg else None
    if outer * inner == 0:
        return out, idx
    p = plan(outer, R, inner, arg, allow_split)
    int64 = x.size + p["tile"] >= 2**31
    block_r, block_o, block_i = p["BLOCK_R"], p["BLOCK_O"], p["BLOCK_I"]
    programs, n_iblocks, n_chunks, chunk = p["programs"], p["n_iblocks"], p["n_chunks"], p["chunk"]
    final = n_chunks == 1
    dst = out if final else empty((outer, n_chunks, inner), x.dtype)
    dst_idx = None
    if arg:
        dst_idx = idx if final else empty((outer, n_chunks, inner), np.int64)
    divide = final and divisor is not None
    div_bits = strided.f64_bits(divisor if divide else 1.0)
    # Unused pointer arguments get x or dst (same object: see elementwise._pointers).
    px, pdst = ptr(x), ptr(dst)
    args = (px, px if center is None else ptr(center), px if pos is None else ptr(pos),
            pdst, pdst if dst_idx is None else ptr(dst_idx))
    flags = dict(OP=_OPS[op], FROM_POS=pos is not None, DIVIDE=divide, INT64=int64)
    with quiet():
        if inner == 1:
            _reduce_rows_kernel[(programs, n_chunks)](
                *args, outer, R, chunk, n_chunks, div_bits,
                **flags, BLOCK_O=block_o, BLOCK_R=block_r)
        else:
            _reduce_cols_kernel[(programs, n_chunks)](
                *args, R, inner, n_iblocks, chunk, n_chunks, div_bits,
                **flags, BLOCK_R=block_r, BLOCK_I=block_i)
    if final:
        return out, idx
    # The chunks' partial results, reduced once more (not split again).
    return _pass("sum" if op == "sqdev" else op, dst, outer, n_chunks, inner, divisor,
                 pos=dst_idx, allow_split=False)


def _require_elements(name, count, out_size):
    if count == 0 and out_size:
        raise ValueError(f"{name}: zero-size reduction (no identity)")


def _reduce(op, a, axis, keepdims, mean=False):
    def run_pass(x, outer, R, inner, divisor):
        return _pass(op, x, outer, R, inner, divisor)[0]
    return strided.run_reduction(a, axis, keepdims, mean, contiguous, run_pass)


def sum(a, axis, keepdims):  # noqa: A001 - the contract's name
    """Sum over `axis`: None (all axes), () (a contiguous copy) or a tuple of
    axes. Always an array (0-d for a full reduction), of a's dtype."""
    return _reduce("sum", a, axis, keepdims)


def mean(a, axis, keepdims):
    """Mean over `axis`, as in `sum`."""
    return _reduce("sum", a, axis, keepdims, mean=True)


def _extreme(op, name, a, axis, keepdims):
    passes, final_shape, count = strided.reduction_plan(a.shape, axis, keepdims)
    if passes:
        _require_elements(name, count, int(np.prod(final_shape)))
    return _reduce(op, a, axis, keepdims)


def amax(a, axis, keepdims):
    """Max over `axis` (as in `sum`); NaN if any reduced element is NaN."""
    return _extreme("max", "amax", a, axis, keepdims)


def amin(a, axis, keepdims):
    """Min over `axis` (as in `sum`); NaN if any reduced element is NaN."""
    return _extreme("min", "amin", a, axis, keepdims)


def _arg(op, a, axis, keepdims):
    """int64 index of the first extreme along one axis (an int; negative
    counts from the end), or of the flattened array (axis None)."""
    if not a.flags.c_contiguous:
        a = contiguous(a)
    passes, final_shape, count = strided.reduction_plan(
        a.shape, None if axis is None else (axis,), keepdims)
    if not passes:  # a 0-d array: index 0
        return fill_(empty(final_shape, np.int64), 0)
    _require_elements(op, count, int(np.prod(final_shape)))
    (outer, R, inner), = passes  # one axis, or every axis: one run
    return _pass(op, a, outer, R, inner)[1].reshape(final_shape)


def argmax(a, axis, keepdims):
    """Index of the first maximum along `axis` (an int) or of the flattened
    array (None); NaN counts as the maximum."""
    return _arg("argmax", a, axis, keepdims)


def argmin(a, axis, keepdims):
    """Index of the first minimum, as `argmax` (NaN counts as the minimum)."""
    return _arg("argmin", a, axis, keepdims)


def var(a, axis, keepdims, correction):
    """Variance over `axis` (as in `sum`): squared deviations from the mean
    summed, divided by max(count - correction, 0). Two-pass: the mean first."""
    if not a.flags.c_contiguous:
        a = contiguous(a)
    passes, final_shape, count = strided.reduction_plan(a.shape, axis, keepdims)
    if not passes:  # axis=() or a 0-d array: every element is its own mean, count 1
        flat = a.reshape(a.size)
        out, _ = _pass("sqdev", flat, a.size, 1, 1, max(1 - correction, 0), center=flat)
        return out.reshape(a.shape)
    divisor = max(count - correction, 0)
    m = mean(a, axis, keepdims=True)
    # The first pass reduces the last run of reduced axes; it needs the mean
    # broadcast over the other reduced axes, in its (outer, inner) layout.
    nd = a.ndim
    axes = sorted({int(ax) % nd for ax in (range(nd) if axis is None else axis)})
    last_run = strided.runs(axes)[-1]
    cshape = tuple(1 if k in last_run else n for k, n in enumerate(a.shape))
    center = m if cshape == m.shape else contiguous(common.xp.broadcast_to(m, cshape))
    cur = a
    for j, (outer, R, inner) in enumerate(passes):
        last = j == len(passes) - 1
        op, c = ("sqdev", center.reshape(outer * inner)) if j == 0 else ("sum", None)
        cur, _ = _pass(op, cur, outer, R, inner, divisor if last else None, center=c)
    return cur.reshape(final_shape)
