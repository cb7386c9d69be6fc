"""Sum and mean over any set of axes on the CUDA C kernels of reduce.cu:
deterministic, fixed-order reductions (bitwise reproducible run to run).

The public functions mirror kernels/triton/reduce.py. The pass plan (one
(outer, R, inner) pass per run of consecutive reduced axes) is
kernels/strided.py's reduction_plan, shared with the Triton backend; the
kernels and the split-R scheme are described in reduce.cu's header.

Split-R. A pass with fewer than TARGET_BLOCKS blocks (two per SM of an
H100's 132 on a GPU) and a long R cuts R into chunks of at least
MIN_ITERS loop iterations per thread (each chunk a multiple of one
iteration's rows), writes partial sums to an (outer, n_chunks, inner)
workspace and reduces it in a second pass. Under the emulator, where every
block costs milliseconds, TARGET_BLOCKS and MAX_BLOCKS are small: the same
code paths, fewer blocks.
"""

import numpy as np

from .. import launch_checks as lc
from .. import strided
from . import runtime
from .elementwise import contiguous
from .runtime import empty

THREADS = 256        # RD_THREADS in reduce.cu
ILP = 4              # RD_ILP in reduce.cu
ROW_WARP_MAX = 2048  # rows up to this long get one warp each, longer ones a block
MIN_ITERS = 4        # loop iterations per thread in a chunk of a split R, at least
MAX_CHUNKS = 65535   # grid.y limit
if runtime.EMULATE:
    TARGET_BLOCKS, MAX_BLOCKS = 8, 4
else:  # pragma: no cover - needs a GPU
    TARGET_BLOCKS, MAX_BLOCKS = 264, 132 * 32

_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

MODULE = runtime.Module("reduce.cu", [f"{k}<{t}>" for k in ("reduce_rows", "reduce_cols")
                                      for t in ("float", "double")])


def _pass(op, x, outer, R, inner, divisor, allow_split=True):
    """Reduce contiguous x viewed as (outer, R, inner) over R: a new
    contiguous (outer, inner) array, divided by `divisor` unless it is None."""
    out = empty((outer, inner), x.dtype)
    if outer * inner == 0:
        return out
    ctype = _CTYPE[x.dtype]
    if inner == 1:
        group = 32 if R <= ROW_WARP_MAX else THREADS
        blocks = lc.cdiv(outer, THREADS // group)
        step = ILP * group  # elements of a row one loop iteration covers
    else:
        tx = min(32, lc.next_pow2(inner))
        n_iblocks = lc.cdiv(inner, tx)
        blocks = outer * n_iblocks
        step = ILP * (THREADS // tx)
    n_chunks, chunk = 1, max(R, 1)
    min_chunk = MIN_ITERS * step
    if allow_split and blocks < TARGET_BLOCKS and R >= 2 * min_chunk:
        want = min(lc.cdiv(TARGET_BLOCKS, blocks), R // min_chunk, MAX_CHUNKS)
        n_chunks, chunk = lc.chunked(R, want, step)
    final = n_chunks == 1
    dst = out if final else empty((outer, n_chunks, inner), x.dtype)
    lc.check_size(op, "the partial sums", dst.size)
    divide = final and divisor is not None
    div = (np.int32(1), np.float64(divisor)) if divide else (np.int32(0), np.float64(1.0))
    grid = (min(blocks, MAX_BLOCKS), n_chunks)
    if inner == 1:
        MODULE.launch(f"reduce_rows<{ctype}>", grid, (THREADS,),
                      (x, dst, np.int32(outer), np.int32(R), np.int32(chunk),
                       np.int32(n_chunks), np.int32(group), *div))
    else:
        MODULE.launch(f"reduce_cols<{ctype}>", grid, (THREADS,),
                      (x, dst, np.int32(R), np.int32(inner), np.int32(n_iblocks),
                       np.int32(blocks), np.int32(chunk), np.int32(n_chunks), np.int32(tx),
                       *div))
    if final:
        return out
    return _pass(op, dst, outer, n_chunks, inner, divisor, allow_split=False)


def _reduce(op, a, axis, keepdims, mean):
    if a.dtype not in _CTYPE:
        lc.fail(op, f"a must be float32 or float64, got {a.dtype}")
    lc.check_size(op, "a", a.size)
    return strided.run_reduction(a, axis, keepdims, mean, contiguous,
                                 lambda x, outer, R, inner, divisor:
                                 _pass(op, x, outer, R, inner, divisor))


def sum(a, axis, keepdims):  # noqa: A001 - the contract's name
    """Sum over `axis`: None (all axes), () (a contiguous copy) or a tuple of
    axes. Always an array (0-d for a full reduction), of a's dtype."""
    return _reduce("sum", a, axis, keepdims, mean=False)


def mean(a, axis, keepdims):
    """Mean over `axis`, as in `sum`."""
    return _reduce("mean", a, axis, keepdims, mean=True)
