"""Sum, mean, amax, amin, argmax, argmin and var over any set of axes on the
CUDA C kernels of reduce.cu: deterministic, fixed-order reductions (bitwise
reproducible run to run).

The public functions mirror kernels/triton/reduce.py. The pass plan (one
(outer, R, inner) pass per run of consecutive reduced axes) is
kernels/strided.py's reduction_plan and run_reduction, shared with the
Triton backend; the kernels, their op functors and the split-R scheme are
described in reduce.cu's header. argmax/argmin reduce one axis (or the
flattened array): a single pass. var is two passes over one (outer, R,
inner) view: the mean, then the squared deviations from it; reduced axes
that are not consecutive are first moved last by one contiguous copy, so
that one view holds them.

Split-R. A pass with fewer than TARGET_BLOCKS blocks (two per SM of an
H100's 132 on a GPU) and a long R cuts R into chunks of at least
MIN_ITERS loop iterations per thread (each chunk a multiple of one
iteration's rows), writes partial results to an (outer, n_chunks, inner)
workspace (argmax/argmin: values and int64 indices) and reduces it in a
second pass. Under the emulator, where every block costs milliseconds,
TARGET_BLOCKS and MAX_BLOCKS are small: the same code paths, fewer blocks.
"""

import math

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
PLAN = lc.Plan(__name__, runtime.EMULATE, gpu={"TARGET_BLOCKS": 264, "MAX_BLOCKS": 132 * 32},
               simulator={"TARGET_BLOCKS": 8, "MAX_BLOCKS": 4},
               why="the emulator runs blocks one after another: the same code paths "
                   "(split R, grid-stride rows) with fewer blocks")
TARGET_BLOCKS, MAX_BLOCKS = PLAN.current("TARGET_BLOCKS", "MAX_BLOCKS")

_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
# The op functors of reduce.cu, by the name the launchers use.
_FUNCTORS = {"sum": "SumOp", "max": "MaxOp", "min": "MinOp", "sqdev": "SqDevOp",
             "argmax": "ArgMaxOp", "argmin": "ArgMinOp"}
_ARG = ("argmax", "argmin")

MODULE = runtime.Module("reduce.cu", [f"{k}<{f}<{t}>>" for k in ("reduce_rows", "reduce_cols")
                                      for f in _FUNCTORS.values() for t in _CTYPE.values()])


def plan(outer, R, inner, allow_split=True, profile=None):
    """The launch plan of one pass over x viewed as (outer, R, inner): a
    function of the shape and the device profile ("gpu" or "simulator",
    launch_checks.Plan; None: the active one). Rows (inner == 1) get a warp
    each up to ROW_WARP_MAX, else a block; columns get tx lanes across
    inner. R is split into n_chunks chunks when the pass has fewer than
    TARGET_BLOCKS blocks; the grid is capped at MAX_BLOCKS (the kernels
    stride over the rest)."""
    consts = PLAN.constants(profile)
    if inner == 1:
        group, tx, n_iblocks = (32 if R <= ROW_WARP_MAX else THREADS), 0, 0
        blocks = lc.cdiv(outer, THREADS // group)
        step = ILP * group  # elements of a row one loop iteration covers
    else:
        group, tx = 0, min(32, lc.next_pow2(inner))
        n_iblocks = lc.cdiv(inner, tx)
        blocks = outer * n_iblocks
        step = ILP * (THREADS // tx)
    n_chunks, chunk = 1, max(R, 1)
    min_chunk = MIN_ITERS * step
    target = consts["TARGET_BLOCKS"]
    if allow_split and blocks < target and R >= 2 * min_chunk:
        want = min(lc.cdiv(target, blocks), R // min_chunk, MAX_CHUNKS)
        n_chunks, chunk = lc.chunked(R, want, step)
    return {"group": group, "tx": tx, "n_iblocks": n_iblocks, "blocks": blocks,
            "n_chunks": n_chunks, "chunk": chunk,
            "grid": (min(blocks, consts["MAX_BLOCKS"]), n_chunks), "block": (THREADS,)}


def _pass(name, op, x, outer, R, inner, divisor, mean=None, xi=None, allow_split=True):
    """Reduce contiguous x viewed as (outer, R, inner) over R with reduce.cu's
    functor for `op`: a new contiguous (outer, inner) array, divided by
    `divisor` unless it is None (sum and sqdev). mean: sqdev's (outer,
    inner) means; xi: the element indices of an argmax/argmin combine pass.
    For argmax/argmin the result is the int64 index array."""
    arg = op in _ARG
    if outer * inner == 0:
        return empty((outer, inner), np.int64 if arg else x.dtype)
    ctype = _CTYPE[x.dtype]
    p = plan(outer, R, inner, allow_split)
    group, tx, n_iblocks, blocks = p["group"], p["tx"], p["n_iblocks"], p["blocks"]
    n_chunks, chunk, grid = p["n_chunks"], p["chunk"], p["grid"]
    final = n_chunks == 1
    if final:
        out = empty((outer, inner), np.int64 if arg else x.dtype)
        dst, dst_i = (None, out) if arg else (out, None)
    else:
        dst = empty((outer, n_chunks, inner), x.dtype)
        dst_i = empty(dst.shape, np.int64) if arg else None
        lc.check_size(name, "the partial results", dst.size)
    divide = final and divisor is not None
    div = (np.int32(1), np.float64(divisor)) if divide else (np.int32(0), np.float64(1.0))
    kernel = f"<{_FUNCTORS[op]}<{ctype}>>"
    if inner == 1:
        MODULE.launch("reduce_rows" + kernel, grid, (THREADS,),
                      (x, xi, mean, dst, dst_i, np.int32(outer), np.int32(R), np.int32(chunk),
                       np.int32(n_chunks), np.int32(group), *div))
    else:
        MODULE.launch("reduce_cols" + kernel, grid, (THREADS,),
                      (x, xi, mean, dst, dst_i, np.int32(R), np.int32(inner),
                       np.int32(n_iblocks), np.int32(blocks), np.int32(chunk),
                       np.int32(n_chunks), np.int32(tx), *div))
    if final:
        return out
    # The partials of a sum of squared deviations are plain sums; argmax's
    # carry their indices.
    combine = "sum" if op == "sqdev" else op
    return _pass(name, combine, dst, outer, n_chunks, inner, divisor, xi=dst_i,
                 allow_split=False)


def _check(name, a):
    if a.dtype not in _CTYPE:
        lc.fail(name, f"a must be float32 or float64, got {a.dtype}")
    lc.check_size(name, "a", a.size)


def _reduce(name, op, a, axis, keepdims, mean=False):
    _check(name, a)
    if op != "sum" and axis != ():
        _, final_shape, count = strided.reduction_plan(a.shape, axis, keepdims)
        if count == 0 and math.prod(final_shape) > 0:
            lc.fail(name, "zero-size reduction: max/min of no elements has no identity")
    return strided.run_reduction(a, axis, keepdims, mean, contiguous,
                                 lambda x, outer, R, inner, divisor:
                                 _pass(name, op, x, outer, R, inner, divisor))


def sum(a, axis, keepdims):  # noqa: A001 - the contract's name
    """Sum over `axis`: None (all axes), () (a contiguous copy) or a tuple of
    axes. Always an array (0-d for a full reduction), of a's dtype."""
    return _reduce("sum", "sum", a, axis, keepdims)


def mean(a, axis, keepdims):
    """Mean over `axis`, as in `sum`."""
    return _reduce("mean", "sum", a, axis, keepdims, mean=True)


def amax(a, axis, keepdims):
    """Max over `axis` (as in `sum`); NaN if any reduced element is."""
    return _reduce("amax", "max", a, axis, keepdims)


def amin(a, axis, keepdims):
    """Min over `axis` (as in `sum`); NaN if any reduced element is."""
    return _reduce("amin", "min", a, axis, keepdims)


def _arg(name, a, axis, keepdims):
    """The int64 index of the first max/min along one axis (an int), or of
    the flattened array (None; keepdims then gives all-1 dims)."""
    _check(name, a)
    shape = tuple(a.shape)
    if axis is None or a.ndim == 0:
        outer, R, inner = 1, a.size, 1
        final = (1,) * a.ndim if keepdims else ()
    else:
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            lc.fail(name, f"axis must be an int or None, got {axis!r}")
        if not -a.ndim <= axis < a.ndim:
            lc.fail(name, f"axis {axis} is out of range for {a.ndim}-D input")
        ax = int(axis) % a.ndim
        outer, R, inner = math.prod(shape[:ax]), shape[ax], math.prod(shape[ax + 1:])
        final = shape[:ax] + ((1,) if keepdims else ()) + shape[ax + 1:]
    if R == 0:
        lc.fail(name, "attempt to get the index of an empty sequence")
    x = a if a.flags.c_contiguous else contiguous(a)
    return _pass(name, name, x, outer, R, inner, None).reshape(final)


def argmax(a, axis, keepdims):
    """int64 index of the first maximum (NaN counts as the maximum)."""
    return _arg("argmax", a, axis, keepdims)


def argmin(a, axis, keepdims):
    """int64 index of the first minimum (NaN counts as the minimum, as in torch)."""
    return _arg("argmin", a, axis, keepdims)


def var(a, axis, keepdims, correction):
    """Variance over `axis` (None, () or a tuple of axes, as in `sum`): the
    sum of squared deviations from the mean over count - correction (0 when
    negative, as NumPy: inf or NaN then)."""
    _check("var", a)
    shape = tuple(a.shape)
    nd = a.ndim
    axes = (tuple(range(nd)) if axis is None or nd == 0
            else tuple(sorted({int(k) % nd for k in axis})))
    kept = tuple(k for k in range(nd) if k not in axes)
    if keepdims:
        final = tuple(1 if k in axes else n for k, n in enumerate(shape))
    else:
        final = tuple(shape[k] for k in kept)
    if not axes:  # nothing reduced: every element is its own mean
        x, outer, R, inner = a, a.size, 1, 1
    elif axes == tuple(range(axes[0], axes[-1] + 1)):  # one run: one (outer, R, inner) view
        lo, hi = axes[0], axes[-1]
        x = a
        outer, R, inner = (math.prod(shape[:lo]), math.prod(shape[lo:hi + 1]),
                           math.prod(shape[hi + 1:]))
    else:  # move the reduced axes last (one copy), then one run
        x = a.transpose(kept + axes)
        outer, R, inner = math.prod(shape[k] for k in kept), math.prod(shape[k] for k in axes), 1
    if not x.flags.c_contiguous:
        x = contiguous(x)
    m = _pass("var", "sum", x, outer, R, inner, R)
    v = _pass("var", "sqdev", x, outer, R, inner, max(R - int(correction), 0), mean=m)
    return v.reshape(final)
