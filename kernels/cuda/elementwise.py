"""Elementwise ops on the CUDA C kernels of elementwise.cu: fill, strided
copy/cast, broadcasting arithmetic, activations and Philox random numbers.

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
from .. import strided
from . import runtime
from .runtime import empty

THREADS = 256
ILP = 4  # elements per thread per tile: EW_ILP in elementwise.cu
MAX_BLOCKS = 8 if runtime.EMULATE else 132 * 16

_FLOAT = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
# Same-dtype copies and fills of any dtype move bits as unsigned words.
_WORD = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "unsigned long long"}
_INDEX = {False: "int", True: "long long"}
_OPS = {"copy": 0, "add": 1, "sub": 2, "mul": 3, "div": 4, "neg": 5}
_ACTS = {"leaky_relu": 0, "relu": 1, "tanh": 2, "sigmoid": 3}

_EWISE_TYPES = ([(o, i) for o in ("float", "double") for i in ("float", "double")]
                + [(w, w) for w in _WORD.values()])

MODULE = runtime.Module("elementwise.cu", (
    [f"fill<{w}>" for w in _WORD.values()]
    + [f"ewise<{o}, {i}, {ix}>" for o, i in _EWISE_TYPES for ix in _INDEX.values()]
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
    """Set every element of contiguous `a` (any dtype) to `value`, in place."""
    lc.require_contiguous("fill_", a)
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
    if out_dtype in _FLOAT and in_dtype in _FLOAT:
        return _FLOAT[out_dtype], _FLOAT[in_dtype]
    if op == "copy" and out_dtype == in_dtype and out_dtype.itemsize in _WORD:
        return _WORD[out_dtype.itemsize], _WORD[out_dtype.itemsize]
    lc.fail(opname, f"unsupported dtypes {in_dtype} -> {out_dtype} (float32/float64, or a "
                    f"same-dtype copy)")


def _broadcasts(shape, to):
    try:
        return np.broadcast_shapes(tuple(shape), to) == to
    except ValueError:
        return False


def _launch_ewise(opname, op, out, a, b=None):
    """out[...] = op(a, b): out contiguous, a and b (one dtype) any strided
    views broadcastable to out's shape."""
    shape = tuple(out.shape)
    n = out.size
    lc.check_size(opname, "the output", n)
    for name, x in (("a", a), ("b", b)):
        if x is not None and not _broadcasts(x.shape, shape):
            lc.fail(opname, f"{name} of shape {tuple(x.shape)} does not broadcast to {shape}")
    to, ti = _types(opname, op, out.dtype, a.dtype)
    if n == 0:
        return out
    xp = runtime.xp
    a_view, a_base, a_st = strided.pointer_view(xp.broadcast_to(a, shape))
    if b is None:
        b_view, b_base, b_st = None, 0, [0] * len(shape)
    else:
        b_view, b_base, b_st = strided.pointer_view(xp.broadcast_to(b, shape))
    plan = strided.plan_gather(shape, [(a_base, a_st), (b_base, b_st)])
    if plan is None:  # rare: one launch per index of the outermost dimension
        a_full = xp.broadcast_to(a, shape)
        b_full = None if b is None else xp.broadcast_to(b, shape)
        for i in range(shape[0]):
            _launch_ewise(opname, op, out[i], a_full[i], None if b is None else b_full[i])
        return out
    rank, dims, (sa, sb), span = plan
    grid = _grid(n)
    # int32 index arithmetic unless an index (up to n + one grid-stride step)
    # or an element offset could reach 2**31.
    wide = span + grid[0] * THREADS * ILP >= lc.INT32_LIMIT
    MODULE.launch(f"ewise<{to}, {ti}, {_INDEX[wide]}>", grid, (THREADS,),
                  (out, a_view, b_view, _i32(n), _i32(_OPS[op]), _i32(rank),
                   *map(_i32, dims[:5]), _i64(a_base), *map(_i64, sa),
                   _i64(b_base), *map(_i64, sb)))
    return out


def copy_(dst, src):
    """dst[...] = src: dst contiguous, src any strided view of the same shape
    (or broadcastable to it), cast to dst's dtype. Returns dst."""
    lc.require_contiguous("copy_", dst)
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


def binary(op, a, b):
    """op(a, b) for op in add/sub/mul/div, with NumPy broadcasting; a and b
    may be strided views or 0-d. The output is contiguous."""
    if op not in ("add", "sub", "mul", "div"):
        raise ValueError(f"unknown binary op {op!r}")
    _float(op, "a", a)
    _float(op, "b", b)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        lc.fail(op, f"shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast")
    dtype = np.result_type(a.dtype, b.dtype)
    # One input dtype per launch: widen the float32 operand first (exact),
    # as NumPy computes float32 + float64 in float64.
    if a.dtype != dtype:
        a = cast(a, dtype)
    if b.dtype != dtype:
        b = cast(b, dtype)
    return _launch_ewise(op, op, empty(shape, dtype), a, b)


def neg(a):
    _float("neg", "a", a)
    return _launch_ewise("neg", "neg", empty(a.shape, a.dtype), a)


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
