"""Elementwise ops on the CUDA C kernels of elementwise.cu: fill, strided
copy/cast (into strided destinations too), broadcasting arithmetic and
comparisons, unary math, where, activations and Philox random numbers.

The public functions mirror kernels/triton/elementwise.py (same names,
signatures, dtypes and shapes), so the backend calls either module the same
way; the kernels, their algorithms and the exact random-number construction
are described in elementwise.cu's header. The random draws have the same
distributions and the same (seed, offset) semantics as Triton's, but not the
same numbers: each backend maps Philox's bits its own way. The host-side planning (coalescing
dims, negative strides, bit patterns, the uniform clamp) is
kernels/strided.py, shared with the Triton launchers.

Grids: 256 threads, EW_ILP = 4 elements per thread per tile, and a
grid-stride loop over tiles, so the grid is capped: MAX_BLOCKS (16 blocks
per SM of an H100's 132 on a GPU, two waves of 8 resident 256-thread
blocks; a few under the emulator, where every
block costs milliseconds but a loop iteration costs nothing). No result
depends on the grid or block size.
"""

import numpy as np

from .. import launch_checks as lc
from .. import registry
from .. import strided
from . import runtime
from .runtime import empty

THREADS = 256
ILP = 4  # elements per thread per tile: EW_ILP in elementwise.cu
PLAN = lc.Plan(__name__, runtime.EMULATE, gpu={"MAX_BLOCKS": 132 * 16},
               simulator={"MAX_BLOCKS": 8},
               why="the emulator runs blocks one after another: few blocks, the same "
                   "grid-stride code path")
(MAX_BLOCKS,) = PLAN.current("MAX_BLOCKS")

_FLOAT = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
# The dtypes astype converts between, in every direction.
_CAST = {**_FLOAT, np.dtype(np.int64): "long long", np.dtype(np.bool_): "bool"}
# Same-dtype copies and fills of any dtype move bits as unsigned words.
_WORD = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "unsigned long long"}
_INDEX = {False: "int", True: "long long"}
# ewise's op codes (EwiseOp in elementwise.cu); the unary primitives are
# OP_UNARY + their registry code.
OP_UNARY = 32
_OPS = {"copy": 0, "add": 1, "sub": 2, "mul": 3, "div": 4, "maximum": 5, "minimum": 6,
        "gt": 7, "ge": 8, "lt": 9, "le": 10, "eq": 11, "neg": 12, "pow": 13, "clamp": 14,
        **{op.name: OP_UNARY + op.code for op in registry.UNARY}}
BINARY = ("add", "sub", "mul", "div", "maximum", "minimum")
COMPARE = ("gt", "ge", "lt", "le", "eq")
UNARY = tuple(op.name for op in registry.UNARY)
_ACTS = {"leaky_relu": 0, "relu": 1, "tanh": 2, "sigmoid": 3}

# (To, Ti): float <-> float (arithmetic and casts), bool <- float (the
# comparisons and casts), every other cast between float32/float64/int64/
# bool, and same-dtype bit copies of each width.
_EWISE_TYPES = ([(o, i) for o in _CAST.values() for i in _CAST.values()
                 if o != i or o in _FLOAT.values()]
                + [(w, w) for w in _WORD.values()])

MODULE = runtime.Module("elementwise.cu", (
    [f"fill<{w}>" for w in _WORD.values()]
    + [f"ewise<{o}, {i}, {ix}>" for o, i in _EWISE_TYPES for ix in _INDEX.values()]
    + [f"where<{t}, {ix}>" for t in _FLOAT.values() for ix in _INDEX.values()]
    + [f"{k}<{t}>" for k in ("act_forward", "act_backward", "rand_uniform", "rand_normal")
       for t in ("float", "double")]))


def _grid(n):
    return (max(1, min(lc.cdiv(n, THREADS * ILP), MAX_BLOCKS)),)


def _i32(v):
    return np.int32(v)


def _i64(v):
    return np.int64(v)


# ================================================================== fill
def fill_(a, value):
    """Set every element of `a` (any dtype) to `value`, in place. A strided
    `a` is written by copy_ from a filled 0-d array."""
    if not a.flags.c_contiguous:
        return copy_(a, fill_(empty((), a.dtype), value))
    lc.check_size("fill_", "a", a.size)
    if a.dtype.itemsize not in _WORD:
        lc.fail("fill_", f"unsupported dtype {a.dtype}")
    n = a.size
    if n:
        MODULE.launch(f"fill<{_WORD[a.dtype.itemsize]}>", _grid(n), (THREADS,),
                      (a, _i32(n), _i64(strided.bits(value, a.dtype))))
    return a


# ======================================================== strided gather
def _types(opname, op, out_dtype, in_dtype):
    """(To, Ti) C types of the ewise instantiation, or a ValueError."""
    if op in COMPARE:
        if out_dtype == np.bool_ and in_dtype in _FLOAT:
            return "bool", _FLOAT[in_dtype]
    elif op != "copy":
        if out_dtype == in_dtype and in_dtype in _FLOAT:
            return _FLOAT[in_dtype], _FLOAT[in_dtype]
    elif out_dtype == in_dtype and out_dtype not in _FLOAT and out_dtype.itemsize in _WORD:
        return _WORD[out_dtype.itemsize], _WORD[out_dtype.itemsize]
    elif out_dtype in _CAST and in_dtype in _CAST:
        return _CAST[out_dtype], _CAST[in_dtype]
    lc.fail(opname, f"unsupported dtypes {in_dtype} -> {out_dtype} (casts between float32, "
                    f"float64, int64 and bool, or a same-dtype copy)")


def _broadcasts(shape, to):
    try:
        return np.broadcast_shapes(tuple(shape), to) == to
    except ValueError:
        return False


def _gather(opname, kernel, out, inputs, tail=()):
    """Launch kernel(I) for out[...] = f(*inputs): `out` any strided view
    whose elements do not overlap, each input (None: not read) any view
    broadcastable to out's shape. kernel maps the index type's C name to the
    instantiation's name; tail: the kernel's arguments after the strides."""
    shape = tuple(out.shape)
    n = out.size
    lc.check_size(opname, "the output", n)
    for name, x in inputs:
        if x is not None and not _broadcasts(x.shape, shape):
            lc.fail(opname, f"{name} of shape {tuple(x.shape)} does not broadcast to {shape}")
    if n == 0:
        return out
    if any(st == 0 and extent > 1 for st, extent in zip(out.strides, shape)):
        lc.fail(opname, f"the output (strides {out.strides}) has overlapping elements")
    xp = runtime.xp
    full = [None if x is None else xp.broadcast_to(x, shape) for _, x in inputs]
    views = [strided.pointer_view(out)] + [
        (None, 0, [0] * len(shape)) if x is None else strided.pointer_view(x) for x in full]
    # The output is operand 0. plan_scatter first puts the dims in the
    # output's memory order (a no-op for a contiguous one), so that a
    # transposed destination is written row by row and its source gathered.
    plan = strided.plan_scatter(shape, views[0][1:], [(base, st) for _, base, st in views[1:]])
    if plan is None:  # rare: one launch per index of the outermost dimension
        for i in range(shape[0]):
            _gather(opname, kernel, out[i],
                    [(name, None if x is None else x[i]) for (name, _), x in zip(inputs, full)],
                    tail)
        return out
    rank, dims, strides, span = plan
    grid = _grid(n)
    # int32 index arithmetic unless an index (up to n + one grid-stride step)
    # or an element offset could reach 2**31.
    wide = span + grid[0] * THREADS * ILP >= lc.INT32_LIMIT
    args = [v for v, _, _ in views] + [_i32(n), _i32(rank), *map(_i32, dims[:5])]
    for (_, base, _), st in zip(views, strides):
        args += [_i64(base), *map(_i64, st)]
    MODULE.launch(kernel(_INDEX[wide]), grid, (THREADS,), (*args, *tail))
    return out


def _launch_ewise(opname, op, out, a, b=None, p0=0.0, p1=0.0):
    """out[...] = op(a, b): out any strided view, a and b (one dtype) any
    strided views broadcastable to out's shape; p0, p1 the op's scalars."""
    to, ti = _types(opname, op, out.dtype, a.dtype)
    return _gather(opname, lambda ix: f"ewise<{to}, {ti}, {ix}>", out, [("a", a), ("b", b)],
                   (_i32(_OPS[op]), np.float64(p0), np.float64(p1)))


def _extent(a):
    """The byte range [lo, hi) that view `a` (non-empty) touches."""
    lo = hi = runtime.address(a)
    for extent, st in zip(a.shape, a.strides):
        if st < 0:
            lo += (extent - 1) * st
        else:
            hi += (extent - 1) * st
    return lo, hi + a.itemsize


def _overlaps(dst, src):
    """True if src might share memory with dst other than element for
    element (the byte ranges intersect; the same view is fine)."""
    if dst.size == 0 or src.size == 0:
        return False
    if (runtime.address(dst) == runtime.address(src) and dst.strides == src.strides
            and dst.shape == src.shape and dst.dtype == src.dtype):
        return False
    (lo1, hi1), (lo2, hi2) = _extent(dst), _extent(src)
    return lo1 < hi2 and lo2 < hi1


def copy_(dst, src):
    """dst[...] = src, cast to dst's dtype: dst any strided view (a slice of
    a larger array, a transpose; not a broadcast), src any strided view
    broadcastable to dst's shape. Returns dst."""
    if _overlaps(dst, src):
        src = contiguous(src)  # no thread may read what another overwrote
    return _launch_ewise("copy_", "copy", dst, src)


def cast(a, dtype):
    """A new contiguous array holding `a` (any strided view) as `dtype`."""
    return copy_(empty(a.shape, dtype), a)


def contiguous(a):
    """A contiguous copy of `a`."""
    return cast(a, a.dtype)


def _float(op, name, a):
    if a.dtype not in _FLOAT:
        lc.fail(op, f"{name} must be float32 or float64, got {a.dtype}")


def _common(op, *arrays):
    """The broadcast shape and common float dtype of `arrays`, each cast to
    that dtype (widening float32 is exact, as NumPy computes float32 +
    float64 in float64): one input dtype per launch."""
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        lc.fail(op, "shapes " + " and ".join(str(tuple(a.shape)) for a in arrays)
                + " do not broadcast")
    dtype = np.result_type(*(a.dtype for a in arrays))
    return shape, dtype, [a if a.dtype == dtype else cast(a, dtype) for a in arrays]


def binary(op, a, b):
    """op(a, b) for op in add/sub/mul/div/maximum/minimum (NaN-propagating),
    with NumPy broadcasting; a and b may be strided views or 0-d. The output
    is contiguous."""
    if op not in BINARY:
        raise ValueError(f"unknown binary op {op!r}")
    _float(op, "a", a)
    _float(op, "b", b)
    shape, dtype, (a, b) = _common(op, a, b)
    return _launch_ewise(op, op, empty(shape, dtype), a, b)


def compare(op, a, b):
    """The bool mask a <op> b (op gt/ge/lt/le/eq; False where NaN is
    involved), broadcasting; a contiguous bool array, one byte an element."""
    if op not in COMPARE:
        raise ValueError(f"unknown comparison {op!r}")
    _float(op, "a", a)
    _float(op, "b", b)
    shape, _, (a, b) = _common(op, a, b)
    return _launch_ewise(op, op, empty(shape, np.bool_), a, b)


def where(mask, a, b):
    """a where mask else b: the bool mask, a and b broadcast together; the
    output (contiguous) has a and b's common float dtype."""
    if mask.dtype != np.bool_:
        lc.fail("where", f"mask must be bool, got {mask.dtype}")
    _float("where", "a", a)
    _float("where", "b", b)
    shape, dtype, (a, b) = _common("where", a, b)
    try:
        shape = np.broadcast_shapes(shape, mask.shape)
    except ValueError:
        lc.fail("where", f"mask of shape {tuple(mask.shape)} does not broadcast to {shape}")
    t = _FLOAT[dtype]
    return _gather("where", lambda ix: f"where<{t}, {ix}>", empty(shape, dtype),
                   [("mask", mask), ("a", a), ("b", b)])


def neg(a):
    _float("neg", "a", a)
    return _launch_ewise("neg", "neg", empty(a.shape, a.dtype), a)


def unary(op, a):
    """op(a) for a unary primitive of kernels/registry.py (exp, log, ...): a
    any strided view, the output a new contiguous array of a's dtype."""
    if op not in UNARY:
        raise ValueError(f"unknown unary op {op!r}")
    _float(op, "a", a)
    return _launch_ewise(op, op, empty(a.shape, a.dtype), a)


def pow_scalar(a, exponent):
    """a ** exponent (a Python float), as np.power: the exponent is rounded
    to a's dtype first."""
    _float("pow_scalar", "a", a)
    return _launch_ewise("pow_scalar", "pow", empty(a.shape, a.dtype), a, p0=float(exponent))


def clamp(a, min, max):  # noqa: A002 - the contract's names
    """min(max(a, min), max), NaN-propagating; either bound None."""
    _float("clamp", "a", a)
    lo = -np.inf if min is None else float(min)
    hi = np.inf if max is None else float(max)
    return _launch_ewise("clamp", "clamp", empty(a.shape, a.dtype), a, p0=lo, p1=hi)


# =========================================================== activations
def _contig(a):
    return a if a.flags.c_contiguous else contiguous(a)


def _act(op, name, args):
    if name not in _ACTS:
        lc.fail(op, f"unknown activation {name!r}")
    if name == "leaky_relu":
        if len(args) != 1:
            lc.fail(op, "leaky_relu takes one argument, negative_slope")
        return np.float64(args[0])
    return np.float64(0.0)


def activation_forward(name, x, *args):
    """y = act(x) for leaky_relu (args: negative_slope), relu, tanh, sigmoid."""
    op = f"{name}_forward"
    slope = _act(op, name, args)
    x = _contig(x)
    ctype = _FLOAT[lc.check_arrays(op, x=x)]
    y = empty(x.shape, x.dtype)
    if x.size:
        MODULE.launch(f"act_forward<{ctype}>", _grid(x.size), (THREADS,),
                      (x, y, _i32(x.size), _i32(_ACTS[name]), slope))
    return y


def activation_backward(name, dy, saved, *args):
    """dx from dy and the saved array: x for leaky_relu/tanh/sigmoid, y for relu."""
    op = f"{name}_backward"
    slope = _act(op, name, args)
    dy, saved = _contig(dy), _contig(saved)
    ctype = _FLOAT[lc.check_arrays(op, dy=dy, saved=saved)]
    if dy.shape != saved.shape:
        lc.fail(op, f"dy {tuple(dy.shape)} and the saved array {tuple(saved.shape)} differ")
    dx = empty(dy.shape, dy.dtype)
    if dy.size:
        MODULE.launch(f"act_backward<{ctype}>", _grid(dy.size), (THREADS,),
                      (dy, saved, dx, _i32(dy.size), _i32(_ACTS[name]), slope))
    return dx


# ================================================================ random
def _random_out(op, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT:
        lc.fail(op, f"dtype must be float32 or float64, got {dtype}")
    out = empty(shape, dtype)
    lc.check_size(op, "the output", out.size)
    return out, _FLOAT[dtype]


def _key(seed, offset):
    # seed: any int, as 64 bits (the backend keeps it to 31); offset: the
    # first Philox counter, an int64 >= 0.
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    return np.uint64(seed).view(np.int64), np.int64(offset)


def random_normal(shape, mean, std, dtype, seed, offset):
    """N(mean, std^2) samples; element k uses Philox counter offset + k."""
    out, ctype = _random_out("random_normal", shape, dtype)
    if out.size:
        MODULE.launch(f"rand_normal<{ctype}>", _grid(out.size), (THREADS,),
                      (out, _i32(out.size), *_key(seed, offset), np.float64(mean),
                       np.float64(std)))
    return out


def random_uniform(shape, low, high, dtype, seed, offset):
    """U[low, high) samples; element k uses Philox counter offset + k."""
    out, ctype = _random_out("random_uniform", shape, dtype)
    low, high = float(low), float(high)
    top, below = strided.uniform_bounds(low, high, out.dtype)
    if out.size:
        MODULE.launch(f"rand_uniform<{ctype}>", _grid(out.size), (THREADS,),
                      (out, _i32(out.size), *_key(seed, offset), np.float64(low),
                       np.float64(high - low), np.float64(top), np.float64(below)))
    return out
