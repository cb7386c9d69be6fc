"""Sum and mean over any set of axes, deterministic.

The plan (kernels/strided.py's reduction_plan, shared with the CUDA
backend). A reduction over a set of axes is a sequence of passes, one per run
of *consecutive* reduced axes (their extents multiply into one), from the last
run to the first so that the earlier axes keep their positions. A pass sees
its contiguous input as a 3-D view (outer, R, inner) and reduces R; no
transposes are ever made. sum over (0, 2, 3) of an NCHW array is two passes:
(N*C, H*W, 1), then (1, N, C).

_sum_rows_kernel (inner == 1: reducing the last axes)
    Each program owns BLOCK_O rows and walks R in steps of BLOCK_R: it loads
    a [BLOCK_O, BLOCK_R] tile (contiguous along R) and adds it to a tile of
    accumulators; one tl.sum over the tile's R axis at the end. Each
    accumulator lane sums every BLOCK_R-th element in order, then the lanes
    are summed as a tree: blocked, pairwise-like summation, whose error grows
    with R/BLOCK_R + log2(BLOCK_R) rather than with R.

_sum_cols_kernel (inner > 1)
    Each program owns one outer index and BLOCK_I consecutive inner columns
    and walks R in steps of BLOCK_R with a [BLOCK_R, BLOCK_I] tile, contiguous
    along inner (coalesced loads whenever inner is more than a few elements),
    then sums the tile over R.

Split-R. When the outputs are too few to keep the machine busy (a full
reduction has one) while R is long, each kernel also takes a chunk of R
(grid axis 1): chunk s writes its partial sum to a workspace viewed as
(outer, n_chunks, inner), and a second pass reduces that workspace over its
chunks with the same kernels. Chunk boundaries depend only on the shapes and
every sum runs in a fixed order, so results are bitwise reproducible (no
atomics), as the layer-norm backward of the Triton tutorials does it.

mean divides the final pass by the number of reduced elements, in float64
and then rounded, which is what NumPy's mean computes (float32 sum / intp
count is evaluated in double).

Accumulation is in the input dtype (float32 in float32, float64 in float64).
Tiles hold 2048 accumulators on GPUs (16384 under the interpreter, which pays
per program, not per element); results depend on the tile sizes only
through rounding.
"""

import triton
import triton.language as tl

from .. import strided
from . import common
from .common import cdiv, empty, next_pow2, ptr
from .elementwise import contiguous

if common.INTERPRET:
    # The interpreter pays per program and per operation, not per element:
    # big tiles and few programs.
    _TILE, _MAX_BLOCK_R, _TARGET_PROGRAMS = 16384, 8192, 8
else:  # pragma: no cover - needs a GPU
    # 2048 accumulators = 16 registers per thread at 4 warps; two programs
    # per SM of an H100 (132 SMs) before a pass bothers splitting R.
    _TILE, _MAX_BLOCK_R, _TARGET_PROGRAMS = 2048, 1024, 264
_MAX_BLOCK_I = 128
_MIN_ITERS_PER_CHUNK = 4


# =============================================================== kernels
@triton.jit
def _finish(s, divisor, DIVIDE: tl.constexpr):
    if DIVIDE:
        s = (s.to(tl.float64) / divisor).to(s.dtype)
    return s


@triton.jit
def _sum_rows_kernel(x_ptr, out_ptr, n_rows, R, chunk, n_chunks, divisor,
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
    base = x_ptr + rows[:, None] * R
    cols0 = tl.arange(0, BLOCK_R)
    acc = tl.zeros([BLOCK_O, BLOCK_R], dtype=x_ptr.dtype.element_ty)
    for r0 in range(r_start, r_end, BLOCK_R):
        cols = r0 + cols0
        mask = row_mask[:, None] & (cols[None, :] < r_end)
        acc += tl.load(base + cols[None, :], mask=mask, other=0.0)
    s = _finish(tl.sum(acc, axis=1), divisor, DIVIDE)
    tl.store(out_ptr + rows * n_chunks + pid_s, s, mask=row_mask)


@triton.jit
def _sum_cols_kernel(x_ptr, out_ptr, R, inner, n_iblocks, chunk, n_chunks, divisor,
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
    base = x_ptr + o * R * inner + cols[None, :]
    rr0 = tl.arange(0, BLOCK_R)
    acc = tl.zeros([BLOCK_R, BLOCK_I], dtype=x_ptr.dtype.element_ty)
    for r0 in range(r_start, r_end, BLOCK_R):
        rr = r0 + rr0
        mask = (rr[:, None] < r_end) & col_mask[None, :]
        acc += tl.load(base + rr[:, None] * inner, mask=mask, other=0.0)
    s = _finish(tl.sum(acc, axis=0), divisor, DIVIDE)
    tl.store(out_ptr + (o * n_chunks + pid_s) * inner + cols, s, mask=col_mask)


# ============================================================= launchers
def _pass(x, outer, R, inner, divisor, allow_split=True):
    """Reduce contiguous x viewed as (outer, R, inner) over R: a new
    contiguous (outer, inner) array, divided by `divisor` unless it is None."""
    out = empty((outer, inner), x.dtype)
    if outer * inner == 0:
        return out
    int64 = x.size + _TILE >= 2**31
    if inner == 1:
        block_r = min(next_pow2(R), _MAX_BLOCK_R)
        block_o = min(max(1, _TILE // block_r), next_pow2(outer))
        programs = cdiv(outer, block_o)
    else:
        block_i = min(next_pow2(inner), _MAX_BLOCK_I)
        block_r = min(max(1, _TILE // block_i), next_pow2(R))
        n_iblocks = cdiv(inner, block_i)
        programs = outer * n_iblocks
    # Split R into chunks (a multiple of block_r each) when there are too few
    # programs and enough work per chunk.
    n_chunks, chunk = 1, max(R, 1)
    min_chunk = _MIN_ITERS_PER_CHUNK * block_r
    if allow_split and programs < _TARGET_PROGRAMS and R >= 2 * min_chunk:
        want = min(cdiv(_TARGET_PROGRAMS, programs), R // min_chunk)
        chunk = cdiv(cdiv(R, want), block_r) * block_r
        n_chunks = cdiv(R, chunk)
    final = n_chunks == 1
    dst = out if final else empty((outer, n_chunks, inner), x.dtype)
    divide = final and divisor is not None
    div_arg = int(divisor) if divide else 1
    if inner == 1:
        _sum_rows_kernel[(programs, n_chunks)](
            ptr(x), ptr(dst), outer, R, chunk, n_chunks, div_arg,
            DIVIDE=divide, INT64=int64, BLOCK_O=block_o, BLOCK_R=block_r)
    else:
        _sum_cols_kernel[(programs, n_chunks)](
            ptr(x), ptr(dst), R, inner, n_iblocks, chunk, n_chunks, div_arg,
            DIVIDE=divide, INT64=int64, BLOCK_R=block_r, BLOCK_I=block_i)
    if final:
        return out
    return _pass(dst, outer, n_chunks, inner, divisor, allow_split=False)


def _reduce(a, axis, keepdims, mean):
    return strided.run_reduction(a, axis, keepdims, mean, contiguous, _pass)


def sum(a, axis, keepdims):  # noqa: A001 - the contract's name
    """Sum over `axis`: None (all axes), () (a contiguous copy) or a tuple of
    axes. Always an array (0-d for a full reduction), of a's dtype."""
    return _reduce(a, axis, keepdims, mean=False)


def mean(a, axis, keepdims):
    """Mean over `axis`, as in `sum`."""
    return _reduce(a, axis, keepdims, mean=True)
