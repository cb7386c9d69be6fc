"""Elementwise kernels: fill, strided copy/cast, broadcasting arithmetic,
the array primitives (math functions, pow, clamp, max/min, compare, where),
activations and Philox random numbers.

Kernels, and why each one looks the way it does:

_fill_kernel
    Writes one value into every element of a contiguous array. The value
    travels as its *bit pattern* in an integer argument and is bitcast back
    in the kernel: Triton types every Python float argument as fp32, which
    would round a float64 fill value (0.1 stays 0.1 only to 8 digits), and
    an int64 counter needs all 64 bits. See `_bits`. (Bool arrays get
    bits != 0.) A strided array is filled by copy_ from a filled 0-d one.

_ewise_kernel (one kernel for every elementwise primitive: copy_, cast,
contiguous, add/sub/mul/div, neg, maximum/minimum, the unary primitives of
kernels/registry.py (exp, log, log1p, sqrt, rsqrt, abs: `_unary`, one
branch per registry code), pow, clamp, where and the comparisons; OP is a
constexpr, so a launch compiles only its own op)
    Each input is any strided view (slices, transposes, `broadcast_to` views
    with stride 0, 0-d arrays), up to three of them (where's mask is the
    third). A program takes BLOCK consecutive linear indices, unravels each
    into coordinates of the (coalesced) shape and dots them with every
    operand's element strides. Broadcasting is nothing more than stride 0 on
    a broadcast dimension, so binary ops and strided copies are the same
    index arithmetic. The output is usually a new contiguous array (its
    offset is the linear index itself); copy_ into a strided destination (a
    slice with steps, a transposed view: how concatenation and the slice
    backward write their results) is the same gather with the destination's
    strides as one more operand, a scatter (SCATTER). `_offsets` serves two
    operands per call; a third input or a strided output costs a second
    call (THIRD), compiled only when used. Before launching, the launcher
    (with the host-side planning of kernels/strided.py, shared with the
    CUDA backend)
      - drops size-1 dimensions and merges neighbouring dimensions that are
        contiguous with respect to each other in every operand (the
        TensorIterator trick), so a contiguous copy or a same-shape add is
        RANK=1 with stride 1 (Triton specialises stride 1 to a constant: the
        fast path is plain vectorised loads), and a broadcast bias add over
        NCHW is RANK=3 at most; a strided destination's dims are first put
        in its own memory order (plan_scatter), so a transposed destination
        is written row by row and its source gathered;
      - passes RANK (<= 6) as a constexpr, so only the needed div/mod pairs
        are compiled;
      - switches the index arithmetic to int64 only when an index or an
        element offset could reach 2**31 (int64 division is slow on GPUs);
      - above 6 non-mergeable dimensions, launches once per index of the
        outermost one.
    Negative strides are supported by pointing at the view's lowest address
    and adding a constant base offset (torch, which carries pointers to the
    launcher, rejects negative strides). Loads are converted to the output
    dtype, which is the cast in `copy_`/`cast`: float32, float64, int64 and
    bool in every direction, with Triton's casts doing what NumPy's astype
    does (float -> int truncates, x -> bool is x != 0 with NaN -> True,
    bool -> 0/1). The comparisons instead compare in the inputs' dtype and
    store a bool (NaN compares False, as IEEE's ordered compares do).
    Bool arrays are 1 byte per element, as in NumPy; Triton presents a
    torch.bool pointer as *i1 and loads and stores it as bytes (nonzero ->
    True), so a mask one launch writes is a mask the next one reads.

    The ops, by how they are computed:
      maximum/minimum, clamp
                  NaN-propagating selects, x > y | x != x (tl.maximum
                  compiles to maxnum, which drops NaN). clamp is
                  min(max(x, lo), hi) with an absent bound passed as -inf /
                  +inf, and the bounds rounded to the dtype, as NumPy does.
      sqrt, rsqrt sqrt_ieee and 1 / sqrt_ieee with div_ieee: correctly
                  rounded, and exactly NumPy's 1 / np.sqrt (inf at 0).
      exp, log, log1p, pow
                  evaluated in float64 for both dtypes, then
                  rounded: float32 tl.exp / tl.log compile to ex2.approx /
                  lg2.approx on NVIDIA GPUs, whose absolute error near
                  log(1) = 0 is a large relative one, while float64 goes to
                  libdevice (__nv_exp, __nv_log). The price is float64
                  arithmetic: at half the float32 rate (H100/H200) exp and
                  log still keep up with memory; on consumer GPUs (1/64
                  rate) these four ops become compute-bound. log1p is Kahan's
                  log(u) * x / (u - 1) with u = 1 + x (x itself when u == 1):
                  accurate to a few ulps for every x, no series needed. pow
                  follows NumPy (C99's pow) for the special cases: integer
                  exponents up to 2**30 are exact binary powering (`powi`,
                  the loop count is the exponent's bit length, a runtime
                  scalar), x**-n = 1/x**n, the sign bit of x makes an odd
                  power negative ((-0)**-1 = -inf); other exponents are
                  exp(p log|x|), NaN for x < 0 except -inf; x**0 = 1 and
                  1**p = 1 even for NaN; x**0.5 is NumPy's sqrt. Scalars
                  travel as float64 bits (s0, s1), as everywhere here, after
                  rounding to the array dtype as NumPy's power does.

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

import contextlib
import math
import warnings

import numpy as np
import triton
import triton.language as tl

from .. import registry, strided
from . import common
from ..launch_checks import Plan
from .common import cdiv, empty, ptr, xp

# Elements per program (see the end of the docstring).
PLAN = Plan(__name__, common.INTERPRET, gpu={"BLOCK": 1024}, simulator={"BLOCK": 8192},
            why="the interpreter pays per program and per operation, not per element")
(BLOCK,) = PLAN.current("BLOCK")
MAX_RANK = strided.MAX_RANK  # dims after coalescing (kernels/strided.py)

# The OP table of _ewise_kernel. The groups are ranges: binary arithmetic
# _ADD.._MINIMUM, comparisons _GT.._EQ, and from _UNARY on the unary
# primitives of kernels/registry.py, _UNARY + their registry code (the CUDA
# backend numbers them the same way), computed by `_unary`.
_OPS = {"copy": 0, "neg": 1, "add": 2, "sub": 3, "mul": 4, "div": 5, "maximum": 6,
        "minimum": 7, "clamp": 8, "pow": 9, "powi": 10, "where": 11, "gt": 12, "ge": 13,
        "lt": 14, "le": 15, "eq": 16}
(_COPY, _NEG, _ADD, _SUB, _MUL, _DIV, _MAXIMUM, _MINIMUM, _CLAMP, _POW, _POWI, _WHERE,
 _GT, _GE, _LT, _LE, _EQ) = (tl.constexpr(v) for v in range(len(_OPS)))
_UNARY = tl.constexpr(32)
_OPS.update({op.name: _UNARY.value + op.code for op in registry.UNARY})
UNARY = tuple(op.name for op in registry.UNARY)
COMPARE = ("gt", "ge", "lt", "le", "eq")
_POWI_MAX = 2**30  # integer exponents up to this are exact binary powering
_INF = tl.constexpr(float("inf"))
# NaN as float64 bits (see nan_like): a NaN constexpr global never equals
# itself, and Triton refuses a global whose value seems to change between
# the compiles of two kernels that share a helper.
_NAN_BITS = tl.constexpr(0x7FF8000000000000)
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
def nan_like(x):
    """A NaN scalar of x's dtype."""
    return tl.cast(_NAN_BITS, tl.int64).to(tl.float64, bitcast=True).to(x.dtype)


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
    # The integer of dt's width holding the bits (strided.bits gives them as
    # that signed integer); bool is the one type stored as 0/1, not bitcast.
    if dt.primitive_bitwidth == 64:
        word = tl.cast(bits, tl.int64)
    elif dt.primitive_bitwidth == 32:
        word = tl.cast(bits, tl.int32)
    elif dt.primitive_bitwidth == 16:
        word = tl.cast(bits, tl.int16)
    else:
        word = tl.cast(bits, tl.int8)
    if dt.primitive_bitwidth == 1:  # bool
        vals = (tl.full([BLOCK], 0, tl.int32) + bits) != 0
    else:
        vals = tl.full([BLOCK], 0, dt) + word.to(dt, bitcast=True)
    tl.store(out_ptr + offs, vals, mask=offs < n)


@triton.jit
def _log1p(x):
    """log(1 + x) of float64 x, Kahan's way (see the docstring)."""
    u = x + 1.0
    y = tl.where(u == 1.0, x, tl.log(u) * (x / (u - 1.0)))
    return tl.where(u == _INF, u, y)


@triton.jit
def _expm1(x):
    """exp(x) - 1 of float64 x, Kahan's way: (u - 1) * x / log(u) with
    u = exp(x) cancels the rounding of u (x itself where u rounds to 1)."""
    u = tl.exp(x)
    y = tl.where(u == 1.0, x, (u - 1.0) * (x / tl.log(u)))
    y = tl.where(u - 1.0 == -1.0, -1.0, y)
    return tl.where(u == _INF, u, y)


@triton.jit
def _unary(x, CODE: tl.constexpr):
    """The unary primitives of kernels/registry.py, by their registry code;
    exp, log and log1p evaluated in float64 (see the docstring)."""
    if CODE == 0:  # exp
        y = tl.exp(x.to(tl.float64)).to(x.dtype)
    elif CODE == 1:  # log
        y = tl.log(x.to(tl.float64)).to(x.dtype)
    elif CODE == 2:  # log1p
        y = _log1p(x.to(tl.float64)).to(x.dtype)
    elif CODE == 3:  # sqrt
        y = sqrt_ieee(x)
    elif CODE == 4:  # rsqrt
        y = div_ieee(1.0, sqrt_ieee(x))
    elif CODE == 5:  # abs
        y = tl.abs(x)
    else:
        tl.static_assert(CODE == 6, "a registry unary op without a Triton branch")
        y = _expm1(x.to(tl.float64)).to(x.dtype)  # expm1
    return y


@triton.jit
def _pow64(x, s0, s1, OP: tl.constexpr):
    """x ** p of float64 x (see the docstring). _POW: s0 the exponent's bits,
    s1 1 if it is integral (or infinite) | 2 if odd. _POWI: s0 the integer
    exponent, s1 its bit length."""
    if OP == _POW:
        p = _f64_arg(s0)
        ax = tl.abs(x)
        r = tl.exp(p * tl.log(ax))
        r = tl.where(ax == 1.0, 1.0, r)  # 1**p, and (-1)**inf
        negative = x.to(tl.int64, bitcast=True) < 0  # the sign bit: -0 included
        r = tl.where(negative & ((s1 & 2) != 0), -r, r)
        r = tl.where((x < 0) & ((s1 & 1) == 0) & (x != -_INF), nan_like(r), r)
        y = tl.where(p == 0.0, 1.0, r)
    else:
        n = tl.where(s0 < 0, -s0, s0)
        base = tl.abs(x)
        r = tl.zeros_like(base) + 1.0
        for k in range(s1):
            r = tl.where(((n >> k) & 1) != 0, r * base, r)
            base = base * base
        r = tl.where(s0 < 0, 1.0 / r, r)
        negative = x.to(tl.int64, bitcast=True) < 0
        y = tl.where(negative & ((n & 1) != 0), -r, r)
    return y


@triton.jit
def _ewise_kernel(out_ptr, a_ptr, b_ptr, c_ptr, n, o_base, a_base, b_base, c_base, s0, s1,
                  d0, d1, d2, d3, d4,
                  a0, a1, a2, a3, a4, a5,
                  b0, b1, b2, b3, b4, b5,
                  c0, c1, c2, c3, c4, c5,
                  o0, o1, o2, o3, o4, o5,
                  OP: tl.constexpr, RANK: tl.constexpr, INT64: tl.constexpr,
                  THIRD: tl.constexpr, SCATTER: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    if INT64:
        i = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    else:
        i = pid * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    oa, ob = _offsets(i, d0, d1, d2, d3, d4, a0, a1, a2, a3, a4, a5,
                      b0, b1, b2, b3, b4, b5, RANK)
    if THIRD:  # where's mask, and/or a strided destination
        oc, oo = _offsets(i, d0, d1, d2, d3, d4, c0, c1, c2, c3, c4, c5,
                          o0, o1, o2, o3, o4, o5, RANK)
    if SCATTER:
        dst = out_ptr + o_base + oo
    else:
        dst = out_ptr + i
    dt: tl.constexpr = out_ptr.dtype.element_ty
    xa = tl.load(a_ptr + a_base + oa, mask=mask)
    if OP >= _UNARY:
        y = _unary(xa.to(dt), OP - _UNARY)
    elif OP >= _GT:  # comparisons, in the inputs' dtype
        z = tl.load(b_ptr + b_base + ob, mask=mask)
        if OP == _GT:
            y = xa > z
        elif OP == _GE:
            y = xa >= z
        elif OP == _LT:
            y = xa < z
        elif OP == _LE:
            y = xa <= z
        else:
            y = xa == z
    elif OP == _WHERE:
        cond = tl.load(c_ptr + c_base + oc, mask=mask)
        z = tl.load(b_ptr + b_base + ob, mask=mask).to(dt)
        y = tl.where(cond, xa.to(dt), z)
    else:
        x = xa.to(dt)
        if OP == _COPY:
            y = x
        elif OP == _NEG:
            y = -x
        elif OP <= _MINIMUM:
            z = tl.load(b_ptr + b_base + ob, mask=mask, other=1).to(dt)
            if OP == _ADD:
                y = x + z
            elif OP == _SUB:
                y = x - z
            elif OP == _MUL:
                y = x * z
            elif OP == _DIV:
                y = div_ieee(x, z)
            elif OP == _MAXIMUM:
                y = tl.where((x > z) | (x != x), x, z)
            else:
                y = tl.where((x < z) | (x != x), x, z)
        elif OP == _CLAMP:  # s0, s1: the bounds' float64 bits (-inf / +inf if absent)
            lo = _f64_arg(s0).to(dt)
            hi = _f64_arg(s1).to(dt)
            y = tl.where((x > lo) | (x != x), x, lo)
            y = tl.where((y < hi) | (y != y), y, hi)
        else:  # pow, powi: in float64
            y = _pow64(x.to(tl.float64), s0, s1, OP).to(dt)
    tl.store(dst, y, mask=mask)


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
    """Set every element of `a` (any dtype, any strided view) to `value`, in place."""
    if not a.flags.c_contiguous:
        return copy_(a, fill_(empty((), a.dtype), value))
    n = a.size
    if n:
        _fill_kernel[_grid(n)](ptr(a), n, strided.bits(value, a.dtype), BLOCK=BLOCK)
    return a


def quiet():
    """Under the interpreter, NumPy evaluates the kernels' arithmetic and
    warns on the inf/NaN results the contract documents (log(0), sqrt(-1))
    and on masked-off lanes; a GPU never warns, so neither do we."""
    return np.errstate(all="ignore") if common.INTERPRET else contextlib.nullcontext()


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


def _pointers(views):
    """Pointer arguments for `views`, where views that start at the same
    address with the same dtype are handed to Triton as one object: the one
    reaching furthest. (The interpreter keys the arrays it syncs by address
    and fails on two different extents; on a GPU it changes nothing.)"""
    reach = [strided.max_offset(0, strided.element_strides(v), v.shape) for v in views]
    chosen = list(range(len(views)))
    for k, v in enumerate(views):
        for j, w in enumerate(views):
            if (_address(w) == _address(v) and w.dtype == v.dtype
                    and reach[j] > reach[chosen[k]]):
                chosen[k] = j
    # One object per group: the same torch view for every argument in it.
    ptrs = {j: _src_ptr(views[j]) for j in set(chosen)}
    return [ptrs[j] for j in chosen]


def _launch_ewise(op, out, a, b=None, c=None, s0=0, s1=0):
    """out[...] = op(a, b, c), out contiguous or any strided view (copy_ into
    a slice), a, b, c any strided views broadcastable to out; s0, s1 are the
    op's scalar arguments (bit patterns)."""
    shape = tuple(out.shape)
    n = out.size
    if n == 0:
        return out
    ins = [None if x is None else strided.pointer_view(xp.broadcast_to(x, shape))
           for x in (a, b, c)]
    operands = [(0, [0] * len(shape)) if v is None else (v[1], v[2]) for v in ins]
    scatter = not out.flags.c_contiguous
    if scatter:
        out_view, o_base, o_st = strided.pointer_view(out)
        plan = strided.plan_scatter(shape, (o_base, o_st), operands)
    else:
        out_view, o_base = out, 0
        plan = strided.plan_gather(shape, operands)
    if plan is None:  # rare: one launch per index of the outermost dimension
        full = [None if x is None else xp.broadcast_to(x, shape) for x in (a, b, c)]
        for i in range(shape[0]):
            _launch_ewise(op, out[i], *[None if x is None else x[i] for x in full],
                          s0=s0, s1=s1)
        return out
    rank, dims, strides, span = plan
    if scatter:
        so, (sa, sb, sc) = strides[0], strides[1:]
    else:
        so, (sa, sb, sc) = [0] * MAX_RANK, strides
    # Largest index or element offset the kernel forms: int32 unless it overflows.
    int64 = span + BLOCK >= 2**31
    views = [out_view] + [ins[0][0] if v is None else v[0] for v in ins]
    bases = [0 if v is None else v[1] for v in ins]
    with quiet():
        _ewise_kernel[_grid(n)](
            *_pointers(views), n, o_base, *bases, s0, s1,
            *dims[:5], *sa, *sb, *sc, *so,
            OP=_OPS[op], RANK=rank, INT64=int64, THIRD=scatter or c is not None,
            SCATTER=scatter, BLOCK=BLOCK)
    return out


def copy_(dst, src):
    """dst[...] = src, cast to dst's dtype: dst any strided view (a slice
    with steps, a transposed view), src any strided view broadcastable to
    dst's shape. Returns dst."""
    return _launch_ewise("copy", dst, src)


def cast(a, dtype):
    """A new contiguous array holding `a` (any strided view) as `dtype`:
    float32, float64, int64 or bool, in every direction."""
    return copy_(empty(a.shape, dtype), a)


def contiguous(a):
    """A contiguous copy of `a`."""
    return cast(a, a.dtype)


def binary(op, a, b):
    """op(a, b) for op in add/sub/mul/div/maximum/minimum (NaN-propagating),
    with NumPy broadcasting; a and b may be strided views or 0-d. The output
    is contiguous."""
    if op not in ("add", "sub", "mul", "div", "maximum", "minimum"):
        raise ValueError(f"unknown binary op {op!r}")
    shape = np.broadcast_shapes(a.shape, b.shape)
    out = empty(shape, np.result_type(a.dtype, b.dtype))
    return _launch_ewise(op, out, a, b)


def neg(a):
    return _launch_ewise("neg", empty(a.shape, a.dtype), a)


def unary(op, a):
    """op(a) for op in exp, log, log1p, sqrt, rsqrt, abs: a new contiguous
    array of a's dtype (a any strided view)."""
    if op not in UNARY:
        raise ValueError(f"unknown unary op {op!r}")
    return _launch_ewise(op, empty(a.shape, a.dtype), a)


def pow_scalar(a, exponent):
    """a ** exponent (a Python float) with NumPy's power semantics; the
    exponent is first rounded to a's dtype, as NumPy does."""
    p = float(np.asarray(exponent, dtype=a.dtype))
    out = empty(a.shape, a.dtype)
    if p == 0.5:  # NumPy's power takes sqrt here: (-0)**0.5 = -0, (-inf)**0.5 = NaN
        return _launch_ewise("sqrt", out, a)
    if p.is_integer() and abs(p) <= _POWI_MAX:
        return _launch_ewise("powi", out, a, s0=int(p), s1=int(abs(p)).bit_length())
    integral = p.is_integer() or math.isinf(p)  # (-x)**inf = x**inf, as C's pow
    odd = p.is_integer() and abs(p) < 2**53 and int(p) % 2 == 1
    return _launch_ewise("pow", out, a, s0=strided.f64_bits(p), s1=int(integral) | 2 * odd)


def clamp(a, min, max):  # noqa: A002 - the contract's names
    """min(max(a, min), max) with either bound None; NaN stays NaN."""
    lo = -math.inf if min is None else float(min)
    hi = math.inf if max is None else float(max)
    return _launch_ewise("clamp", empty(a.shape, a.dtype), a,
                         s0=strided.f64_bits(lo), s1=strided.f64_bits(hi))


def compare(op, a, b):
    """The bool array a <op> b, op in gt/ge/lt/le/eq, broadcasting (NaN
    compares False)."""
    if op not in COMPARE:
        raise ValueError(f"unknown comparison {op!r}")
    shape = np.broadcast_shapes(a.shape, b.shape)
    return _launch_ewise(op, empty(shape, np.bool_), a, b)


def where(mask, a, b):
    """a where mask else b; mask (bool), a and b broadcast together."""
    shape = np.broadcast_shapes(mask.shape, a.shape, b.shape)
    out = empty(shape, np.result_type(a.dtype, b.dtype))
    return _launch_ewise("where", out, a, b, mask)


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
