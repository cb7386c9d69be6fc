"""Elementwise kernels: fill, strided copy/cast, broadcasting arithmetic,
activations and Philox random numbers.

Kernels, and why each one looks the way it does:

_fill_kernel
    Writes one value into every element of a contiguous array. The value
    travels as its *bit pattern* in an integer argument and is bitcast back
    in the kernel: Triton types every Python float argument as fp32, which
    would round a float64 fill value (0.1 stays 0.1 only to 8 digits), and
    an int64 counter needs all 64 bits. See `_bits`.

_ewise_kernel (one kernel for copy_, cast, contiguous, add/sub/mul/div, neg)
    The output is contiguous; each input is any strided view (slices,
    transposes, `broadcast_to` views with stride 0, 0-d arrays). A program
    takes BLOCK consecutive output elements, unravels each linear index into
    coordinates of the (coalesced) output shape and dots them with every
    input's element strides. Broadcasting is nothing more than stride 0 on a
    broadcast dimension, so binary ops and strided copies are the same
    index arithmetic. Before launching, the launcher (with the host-side
    planning of kernels/strided.py, shared with the CUDA backend)
      - drops size-1 dimensions and merges neighbouring dimensions that are
        contiguous with respect to each other in every operand (the
        TensorIterator trick), so a contiguous copy or a same-shape add is
        RANK=1 with stride 1 (Triton specialises stride 1 to a constant: the
        fast path is plain vectorised loads), and a broadcast bias add over
        NCHW is RANK=3 at most;
      - passes RANK (<= 6) as a constexpr, so only the needed div/mod pairs
        are compiled;
      - switches the index arithmetic to int64 only when an index or an
        element offset could reach 2**31 (int64 division is slow on GPUs);
      - above 6 non-mergeable dimensions, launches once per index of the
        outermost one.
    Negative strides are supported by pointing at the view's lowest address
    and adding a constant base offset (torch, which carries pointers to the
    launcher, rejects negative strides). Loads are converted to the output
    dtype, which is the cast in `copy_`/`cast`.

_act_fwd_kernel / _act_bwd_kernel
    Contiguous elementwise activations, selected by a constexpr:
      leaky_relu  y = x > 0 ? x : slope*x;   dx = x > 0 ? dy : slope*dy
      relu        y = x < 0 ? 0 : x (NaN propagates, as np.maximum);
                  dx = y > 0 ? dy : 0
      tanh        Triton has no portable tanh, so y = sign(x)(1-e)/(1+e)
                  with e = exp(-2|x|) (no overflow), and a degree-15 Taylor
                  polynomial for |x| < 1/16, where 1-e would cancel (float64
                  keeps 1e-16 there, float32 its last bits);
                  dx = dy*4e/(1+e)^2 from x (contract: saturates gracefully)
      sigmoid     e = exp(-|x|); y = x >= 0 ? 1/(1+e) : e/(1+e);
                  dx = dy*e/(1+e)^2 from x
    The slope is passed as float64 bits, like every float hyperparameter
    here, so float64 arrays see the exact value and float32 arrays see the
    same rounding NumPy applies. On GPUs float32 tl.exp is ex2.approx of
    x*log2(e), whose relative error grows like |x|*2**-24: a few 1e-6 for
    sigmoid/tanh gradients at |x| ~ 50, far out in saturation.

div_ieee / sqrt_ieee (helpers, also used by reduce.py and optim.py)
    Triton's float32 `/` and tl.sqrt compile to div.full / sqrt.approx on
    NVIDIA GPUs (2 ulp); the binary `div` op and Adam use tl.div_rn and
    tl.sqrt_rn for float32 so that they round as NumPy does. float64 `/`
    and sqrt are already IEEE.

_random_kernel
    Philox (tl.rand / tl.randn) keyed by (seed, offset + element index):
    the pair fully determines the draw, and the backend advances `offset`
    by numel per draw, so consecutive draws never share counters. Offsets are
    int64 (Triton's Philox feeds the high word into the second counter).
    Samples are mapped to the distribution in float64 and then rounded, so a
    seed gives the same numbers (up to rounding) in float32 and float64, as
    the NumPy backend promises. Uniform samples that round up to `high` are
    pulled back to the largest value below it, keeping [low, high).

The launchers below check layouts, allocate with `common.empty` and pick
the grid: 1-D, BLOCK elements per program (1024 on GPUs; 8192 under the
interpreter, which pays per program and per operation rather than per
element; the results do not depend on BLOCK, random draws included).
"""

import warnings

import numpy as np
import triton
import triton.language as tl

from .. import strided
from . import common
from .common import cdiv, empty, ptr, require_contiguous, xp

# Elements per program (see the end of the docstring).
BLOCK = 8192 if common.INTERPRET else 1024
MAX_RANK = strided.MAX_RANK  # dims after coalescing (kernels/strided.py)

_OPS = {"copy": 0, "add": 1, "sub": 2, "mul": 3, "div": 4, "neg": 5}
_ACTS = {"leaky_relu": 0, "relu": 1, "tanh": 2, "sigmoid": 3}

# tanh(x) = x * (1 + x^2 (T1 + x^2 (T2 + ...))) for |x| < _TANH_SMALL.
_TANH_SMALL = tl.constexpr(0.0625)
_T1 = tl.constexpr(-1.0 / 3.0)
_T2 = tl.constexpr(2.0 / 15.0)
_T3 = tl.constexpr(-17.0 / 315.0)
_T4 = tl.constexpr(62.0 / 2835.0)
_T5 = tl.constexpr(-1382.0 / 155925.0)
_T6 = tl.constexpr(21844.0 / 6081075.0)
_T7 = tl.constexpr(-929569.0 / 638512875.0)


# =============================================================== helpers
@triton.jit
def div_ieee(x, y):
    """x / y correctly rounded. Triton's float32 `/` is the 2-ulp div.full
    on NVIDIA GPUs; div_rn is IEEE (float64 `/` already is). `y` must be a
    tensor; `x` may be a constant."""
    if tl.constexpr(y.dtype == tl.float32):
        return tl.div_rn(x, y)
    else:
        return x / y


@triton.jit
def sqrt_ieee(x):
    """sqrt(x) correctly rounded (float32 tl.sqrt is sqrt.approx on GPUs)."""
    if tl.constexpr(x.dtype == tl.float32):
        return tl.sqrt_rn(x)
    else:
        return tl.sqrt(x)


@triton.jit
def _f64_arg(bits):
    """A float64 scalar from its bit pattern passed as an integer argument."""
    return tl.cast(bits, tl.int64).to(tl.float64, bitcast=True)


@triton.jit
def _offsets(i, d0, d1, d2, d3, d4, a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5,
             RANK: tl.constexpr):
    """Element offsets of linear output index `i` in two strided inputs.

    Dimensions are listed innermost first: d0 is the innermost extent (the
    outermost extent is never needed), a*/b* are the inputs' element strides.
    """
    r = i
    oa = i * 0
    ob = i * 0
    if RANK > 1:
        c = r % d0
        r = r // d0
        oa += c * a0
        ob += c * b0
    else:
        oa += r * a0
        ob += r * b0
    if RANK > 2:
        c = r % d1
        r = r // d1
        oa += c * a1
        ob += c * b1
    elif RANK == 2:
        oa += r * a1
        ob += r * b1
    if RANK > 3:
        c = r % d2
        r = r // d2
        oa += c * a2
        ob += c * b2
    elif RANK == 3:
        oa += r * a2
        ob += r * b2
    if RANK > 4:
        c = r % d3
        r = r // d3
        oa += c * a3
        ob += c * b3
    elif RANK == 4:
        oa += r * a3
        ob += r * b3
    if RANK > 5:
        c = r % d4
        r = r // d4
        oa += c * a4
        ob += c * b4
        oa += r * a5
        ob += r * b5
    elif RANK == 5:
        oa += r * a4
        ob += r * b4
    return oa, ob


# =============================================================== kernels
@triton.jit
def _fill_kernel(out_ptr, n, bits, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    dt: tl.constexpr = out_ptr.dtype.element_ty
    if dt.primitive_bitwidth == 64:
        value = tl.cast(bits, tl.int64).to(dt, bitcast=True)
    else:
        value = tl.cast(bits, tl.int32).to(dt, bitcast=True)
    vals = tl.full([BLOCK], 0, dt) + value
    tl.store(out_ptr + offs, vals, mask=offs < n)


@triton.jit
def _ewise_kernel(out_ptr, a_ptr, b_ptr, n, a_base, b_base,
                  d0, d1, d2, d3, d4,
                  a0, a1, a2, a3, a4, a5,
                  b0, b1, b2, b3, b4, b5,
                  OP: tl.constexpr, RANK: tl.constexpr, INT64: tl.constexpr,
                  BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    if INT64:
        i = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    else:
        i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    oa, ob = _offsets(i, d0, d1, d2, d3, d4, a0, a1, a2, a3, a4, a5,
                      b0, b1, b2, b3, b4, b5, RANK)
    dt: tl.constexpr = out_ptr.dtype.element_ty
    x = tl.load(a_ptr + a_base + oa, mask=mask).to(dt)
    if OP == 0:
        y = x
    elif OP == 5:
        y = -x
    else:
        z = tl.load(b_ptr + b_base + ob, mask=mask, other=1).to(dt)
        if OP == 1:
            y = x + z
        elif OP == 2:
            y = x - z
        elif OP == 3:
            y = x * z
        else:
            y = div_ieee(x, z)
    tl.store(out_ptr + i, y, mask=mask)


@triton.jit
def _tanh(x):
    ax = tl.abs(x)
    e = tl.exp(-2.0 * ax)
    big = div_ieee(1.0 - e, 1.0 + e)
    xs = tl.minimum(ax, _TANH_SMALL)  # keeps the unused polynomial finite
    x2 = xs * xs
    poly = x2 * _T7 + _T6
    poly = x2 * poly + _T5
    poly = x2 * poly + _T4
    poly = x2 * poly + _T3
    poly = x2 * poly + _T2
    poly = x2 * poly + _T1
    small = xs + xs * (x2 * poly)
    t = tl.where(ax < _TANH_SMALL, small, big)
    return tl.where(x < 0, -t, t)


@triton.jit
def _act_fwd_kernel(x_ptr, y_ptr, n, slope_bits, ACT: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    if ACT == 0:  # leaky_relu
        slope = _f64_arg(slope_bits).to(x.dtype)
        y = tl.where(x > 0, x, x * slope)
    elif ACT == 1:  # relu; x < 0 rather than max(x, 0) so that NaN propagates
        y = tl.where(x < 0, 0.0, x)
    elif ACT == 2:  # tanh
        y = _tanh(x)
    else:  # sigmoid, both branches from e = exp(-|x|) <= 1: no overflow
        e = tl.exp(-tl.abs(x))
        y = tl.where(x >= 0, div_ieee(1.0, 1.0 + e), div_ieee(e, 1.0 + e))
    tl.store(y_ptr + offs, y.to(x.dtype), mask=mask)


@triton.jit
def _act_bwd_kernel(dy_ptr, s_ptr, dx_ptr, n, slope_bits, ACT: tl.constexpr,
                    BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    dy = tl.load(dy_ptr + offs, mask=mask)
    s = tl.load(s_ptr + offs, mask=mask).to(dy.dtype)  # x, or y for relu
    if ACT == 0:  # leaky_relu, from x
        slope = _f64_arg(slope_bits).to(dy.dtype)
        dx = tl.where(s > 0, dy, dy * slope)
    elif ACT == 1:  # relu, from y
        dx = tl.where(s > 0, dy, 0.0)
    elif ACT == 2:  # tanh, from x: sech^2 = 4e/(1+e)^2, e = exp(-2|x|)
        e = tl.exp(-2.0 * tl.abs(s))
        dx = dy * div_ieee(4.0 * e, (1.0 + e) * (1.0 + e))
    else:  # sigmoid, from x: e/(1+e)^2, e = exp(-|x|)
        e = tl.exp(-tl.abs(s))
        dx = dy * div_ieee(e, (1.0 + e) * (1.0 + e))
    tl.store(dx_ptr + offs, dx.to(dy.dtype), mask=mask)


@triton.jit
def _random_kernel(out_ptr, n, seed, offset, p0_bits, p1_bits, top_bits, below_bits,
                   NORMAL: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    i = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    counter = i + offset  # int64: Philox uses the high word as a second counter
    p0 = _f64_arg(p0_bits)
    p1 = _f64_arg(p1_bits)
    dt: tl.constexpr = out_ptr.dtype.element_ty
    if NORMAL:  # p0 = mean, p1 = std
        z = tl.randn(seed, counter).to(tl.float64)
        v = (p0 + p1 * z).to(dt)
    else:  # p0 = low, p1 = high - low; u in [0, 1)
        u = tl.rand(seed, counter).to(tl.float64)
        v = (p0 + p1 * u).to(dt)
        top = _f64_arg(top_bits).to(dt)
        below = _f64_arg(below_bits).to(dt)
        v = tl.where(v >= top, below, v)
    tl.store(out_ptr + i, v, mask=mask)


# ============================================================= launchers
def _grid(n):
    return (cdiv(n, BLOCK),)


def fill_(a, value):
    """Set every element of contiguous `a` (any dtype) to `value`, in place."""
    require_contiguous("fill_", a)
    n = a.size
    if n:
        _fill_kernel[_grid(n)](ptr(a), n, strided.bits(value, a.dtype), BLOCK=BLOCK)
    return a


def _address(a):
    return a.ctypes.data if common.INTERPRET else a.data.ptr


def _src_ptr(a):
    if common.INTERPRET and not a.flags.writeable:
        # broadcast_to views are read-only; torch warns once when wrapping
        # them, although the kernels only read through them.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return ptr(a)
    return ptr(a)


def _launch_ewise(op, out, a, b=None):
    """out[...] = op(a, b), out contiguous, a and b broadcastable to out."""
    shape = tuple(out.shape)
    n = out.size
    if n == 0:
        return out
    a_view, a_base, a_st = strided.pointer_view(xp.broadcast_to(a, shape))
    if b is None:
        b_view, b_base, b_st = a_view, 0, [0] * len(shape)
    else:
        b_view, b_base, b_st = strided.pointer_view(xp.broadcast_to(b, shape))
    if b is not None and _address(a_view) == _address(b_view):
        # Same start address: hand Triton one object. (The interpreter keys
        # the arrays it syncs by address and fails on two different extents.)
        b_view = a_view
    plan = strided.plan_gather(shape, [(a_base, a_st), (b_base, b_st)])
    if plan is None:  # rare: one launch per index of the outermost dimension
        a_full = xp.broadcast_to(a, shape)
        b_full = None if b is None else xp.broadcast_to(b, shape)
        for i in range(shape[0]):
            _launch_ewise(op, out[i], a_full[i], None if b is None else b_full[i])
        return out
    rank, dims, (sa, sb), span = plan
    # Largest index or element offset the kernel forms: int32 unless it overflows.
    int64 = span + BLOCK >= 2**31
    _ewise_kernel[_grid(n)](
        ptr(out), _src_ptr(a_view), _src_ptr(b_view), n, a_base, b_base,
        *dims[:5], *sa, *sb,
        OP=_OPS[op], RANK=rank, INT64=int64, BLOCK=BLOCK)
    return out


def copy_(dst, src):
    """dst[...] = src: dst contiguous, src any strided view of the same shape
    (or broadcastable to it), cast to dst's dtype. Returns dst."""
    require_contiguous("copy_", dst)
    return _launch_ewise("copy", dst, src)


def cast(a, dtype):
    """A new contiguous array holding `a` (any strided view) as `dtype`."""
    return copy_(empty(a.shape, dtype), a)


def contiguous(a):
    """A contiguous copy of `a`."""
    return cast(a, a.dtype)


def binary(op, a, b):
    """op(a, b) for op in add/sub/mul/div, with NumPy broadcasting; a and b
    may be strided views or 0-d. The output is contiguous."""
    if op not in ("add", "sub", "mul", "div"):
        raise ValueError(f"unknown binary op {op!r}")
    shape = np.broadcast_shapes(a.shape, b.shape)
    out = empty(shape, np.result_type(a.dtype, b.dtype))
    return _launch_ewise(op, out, a, b)


def neg(a):
    return _launch_ewise("neg", empty(a.shape, a.dtype), a)


def _contig(a):
    return a if a.flags.c_contiguous else contiguous(a)


def activation_forward(name, x, *args):
    """y = act(x) for leaky_relu (args: negative_slope), relu, tanh, sigmoid."""
    x = _contig(x)
    slope = strided.f64_bits(args[0]) if name == "leaky_relu" else 0
    y = empty(x.shape, x.dtype)
    if x.size:
        _act_fwd_kernel[_grid(x.size)](ptr(x), ptr(y), x.size, slope, ACT=_ACTS[name],
                                       BLOCK=BLOCK)
    return y


def activation_backward(name, dy, saved, *args):
    """dx from dy and the saved array: x for leaky_relu/tanh/sigmoid, y for relu."""
    dy, saved = _contig(dy), _contig(saved)
    slope = strided.f64_bits(args[0]) if name == "leaky_relu" else 0
    dx = empty(dy.shape, dy.dtype)
    if dy.size:
        _act_bwd_kernel[_grid(dy.size)](ptr(dy), ptr(saved), ptr(dx), dy.size, slope,
                                        ACT=_ACTS[name], BLOCK=BLOCK)
    return dx


def _random(shape, dtype, seed, offset, normal, p0, p1, top, below):
    out = empty(shape, dtype)
    n = out.size
    if n:
        f64 = strided.f64_bits
        _random_kernel[_grid(n)](ptr(out), n, int(seed), int(offset), f64(p0), f64(p1),
                                 f64(top), f64(below), NORMAL=normal, BLOCK=BLOCK)
    return out


def random_normal(shape, mean, std, dtype, seed, offset):
    """N(mean, std^2) samples; element k uses Philox counter offset + k."""
    return _random(shape, dtype, seed, offset, True, mean, std, 0.0, 0.0)


def random_uniform(shape, low, high, dtype, seed, offset):
    """U[low, high) samples; element k uses Philox counter offset + k."""
    low, high = float(low), float(high)
    top, below = strided.uniform_bounds(low, high, dtype)
    return _random(shape, dtype, seed, offset, False, low, high - low, top, below)
