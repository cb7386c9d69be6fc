"""Host-side planning for the GPU backends' elementwise and reduction kernels.

Pure integer arithmetic on shapes and strides, shared by the Triton launchers
(kernels/triton/elementwise.py, reduce.py) and the CUDA C launchers
(kernels/cuda/elementwise.py, reduce.py), so both backends see the same plan
for the same arrays:

Strided gathers (copy, cast, broadcasting arithmetic)
    pointer_view   negative strides -> (view at the lowest address, base
                   element offset, element strides); kernels then only ever
                   add non-negative offsets to the pointer they are given.
    coalesce       drop size-1 dims and merge neighbours that are contiguous
                   with respect to each other in every operand (PyTorch's
                   TensorIterator trick): a contiguous copy is rank 1, a
                   bias add over NCHW rank 3 at most.
    plan_gather    both of the above for the operands of one launch, padded
                   to MAX_RANK, with the largest index the kernel forms (to
                   pick int32 or int64 index arithmetic).
    plan_scatter   plan_gather for a strided destination (copy_ into a
                   slice or a transposed view): the dims are first put in
                   the destination's memory order, and its strides are one
                   more operand.

Values passed to kernels as bit patterns
    bits, f64_bits a value stored in a dtype, as the signed integer with the
                   same bits: a float64 fill value or an int64 counter
                   travels exactly, whatever the launcher types its scalars as.
    uniform_bounds the clamp that keeps U[low, high) half-open after rounding.

Reductions
    runs           sorted axes -> runs of consecutive axes.
    reduction_plan the passes (outer, R, inner) over contiguous 3-D views that
                   reduce a set of axes, the result's shape and the element
                   count a mean divides by.
"""

import math

import numpy as np

MAX_RANK = 6  # dims a gather kernel indexes (after coalescing)


# ======================================================== bit patterns
def bits(value, dtype):
    """`value` stored in `dtype`, as the signed integer with the same bits."""
    dtype = np.dtype(dtype)
    ity = {8: np.int64, 4: np.int32, 2: np.int16, 1: np.int8}[dtype.itemsize]
    return int(np.array(value, dtype=dtype).view(ity))


def f64_bits(value):
    return bits(float(value), np.float64)


def uniform_bounds(low, high, dtype):
    """(top, below) as floats: a uniform sample that rounds (in `dtype`) to
    top = high or above is replaced by below, the largest `dtype` value under
    it, so the interval stays [low, high). A degenerate interval (high <= low)
    gets (inf, 0): no clamp."""
    low, high = float(low), float(high)
    dtype = np.dtype(dtype)
    if high > low:
        top = np.asarray(high, dtype=dtype)
        below = np.nextafter(top, np.asarray(low, dtype=dtype))
        return float(top), float(below)
    return float("inf"), 0.0


# ===================================================== strided gathers
def element_strides(a):
    """a's strides in elements (they must be whole elements)."""
    item = a.dtype.itemsize
    if any(s % item for s in a.strides):
        raise ValueError(f"strides {a.strides} are not multiples of the item size {item}")
    return [s // item for s in a.strides]


def pointer_view(a):
    """(view, base, element strides) for a possibly negatively strided `a`.

    The view starts at `a`'s lowest address (its negative-stride dimensions
    flipped); element (c_k) of `a` lies at base + sum(c_k * strides[k])
    elements from that view's start, and every such offset is >= 0."""
    strides = element_strides(a)
    base = 0
    if any(s < 0 for s in strides):
        base = sum((n - 1) * -s for n, s in zip(a.shape, strides) if s < 0)
        a = a[tuple(slice(None, None, -1) if s < 0 else slice(None) for s in strides)]
    return a, base, strides


def coalesce(shape, strides_list):
    """Drop size-1 dims and merge neighbours contiguous in every operand.

    Returns (dims, [strides per operand]), both listed innermost first. The
    output's linear index order is unchanged, so a contiguous output needs
    no strides at all."""
    dims, out = [], [[] for _ in strides_list]
    for k in reversed(range(len(shape))):
        extent = shape[k]
        if extent == 1:
            continue
        if dims and all(st[k] == o[-1] * dims[-1] for st, o in zip(strides_list, out)):
            dims[-1] *= extent
        else:
            dims.append(extent)
            for st, o in zip(strides_list, out):
                o.append(st[k])
    if not dims:
        dims, out = [1], [[0] for _ in strides_list]
    return dims, out


def max_offset(base, strides, dims):
    """The largest element offset base + sum(c_k * |s_k|) a gather forms."""
    return base + sum(abs(s) * (d - 1) for s, d in zip(strides, dims))


def plan_gather(shape, operands):
    """Plan one gather over a contiguous output of `shape`.

    operands: [(base, element strides)] of views already broadcast to
    `shape` (from pointer_view). Returns None when more than MAX_RANK dims
    survive coalescing (the caller splits the launch), else
    (rank, dims, strides, span): dims innermost first padded with 1s to
    MAX_RANK, each operand's strides padded with 0s, and span the largest
    linear index or element offset the kernel forms (int32 arithmetic is
    safe while span plus the launcher's own slack stays below 2**31)."""
    n = math.prod(shape)
    dims, strides = coalesce(shape, [st for _, st in operands])
    rank = len(dims)
    if rank > MAX_RANK:
        return None
    span = max([n] + [max_offset(base, st, dims) for (base, _), st in zip(operands, strides)])
    dims = dims + [1] * (MAX_RANK - rank)
    strides = [st + [0] * (MAX_RANK - rank) for st in strides]
    return rank, dims, strides, span


def plan_scatter(shape, out, operands):
    """Plan one launch whose output is itself a strided view of `shape`.

    out: (base, element strides) of the destination (from pointer_view);
    operands: as in plan_gather. The dims are reordered so that the
    destination's strides decrease (a stable sort: ties keep their order),
    so consecutive linear indices write neighbouring addresses whenever the
    destination allows it (a transposed destination is written in its own
    row order and the sources are gathered instead), then planned by
    plan_gather with the destination as the first operand. Returns
    plan_gather's tuple (None above MAX_RANK dims), the destination's
    strides first."""
    order = sorted(range(len(shape)), key=lambda k: -abs(out[1][k]))
    shape = [shape[k] for k in order]
    ops = [(base, [st[k] for k in order]) for base, st in [out, *operands]]
    return plan_gather(shape, ops)


# ========================================================== reductions
def runs(axes):
    """Group sorted axes into runs of consecutive ones: (0, 2, 3) -> [[0], [2, 3]]."""
    out = []
    for ax in axes:
        if out and ax == out[-1][-1] + 1:
            out[-1].append(ax)
        else:
            out.append([ax])
    return out


def reduction_plan(shape, axis, keepdims):
    """How to reduce an array of `shape` over `axis` (None: all axes; a tuple
    of possibly negative, possibly repeated axes).

    Returns (passes, final_shape, count). Each pass reduces its contiguous
    input, viewed as (outer, R, inner), over R into a contiguous (outer,
    inner) array that the next pass reads: one pass per run of consecutive
    reduced axes (their extents multiply into one R), the last run first so
    that the earlier axes keep their positions, and no transposes are ever
    made. sum over (0, 2, 3) of NCHW is (N*C, H*W, 1), then (1, N, C). No
    passes when there is nothing to reduce (axis=() or a 0-d input): the
    result is then a copy. count is the number of elements reduced into each
    output (what mean divides by, in the last pass)."""
    nd = len(shape)
    if axis is None:
        axes = tuple(range(nd))
    else:
        axes = tuple(sorted({int(ax) % nd for ax in axis}))
    shape = list(shape)
    kept = tuple(1 if k in axes else n for k, n in enumerate(shape))
    final_shape = kept if keepdims else tuple(n for k, n in enumerate(shape) if k not in axes)
    count = math.prod(shape[k] for k in axes)
    passes = []
    for run in reversed(runs(axes)):
        lo, hi = run[0], run[-1]
        passes.append((math.prod(shape[:lo]), math.prod(shape[lo:hi + 1]),
                       math.prod(shape[hi + 1:])))
        shape = shape[:lo] + shape[hi + 1:]
    return passes, final_shape, count


def run_reduction(a, axis, keepdims, mean, contiguous, run_pass):
    """Sum or mean of a contiguous-or-not array `a` over `axis`, by the passes
    of `reduction_plan`: the driver both GPU backends share. `contiguous(a)`
    makes a contiguous copy; `run_pass(x, outer, R, inner, divisor)` reduces
    contiguous x viewed as (outer, R, inner) over R into a new (outer, inner)
    array, dividing by `divisor` unless it is None (only the last pass of a
    mean divides, by the count of every reduced element)."""
    if axis is not None and len(axis) == 0:
        return contiguous(a)  # nothing to reduce, but still a new array
    if not a.flags.c_contiguous:
        a = contiguous(a)
    passes, final_shape, count = reduction_plan(a.shape, axis, keepdims)
    if not passes:  # 0-d input with axis=None
        return contiguous(a).reshape(final_shape)
    cur = a
    for j, (outer, R, inner) in enumerate(passes):
        last = j == len(passes) - 1
        cur = run_pass(cur, outer, R, inner, count if (mean and last) else None)
    return cur.reshape(final_shape)
