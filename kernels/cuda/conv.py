"""Convolution (conv2d forward, input, weight and bias gradients) as CUDA C
kernels: launchers for conv.cu.

Same public API, shapes, checks and algorithms as kernels/triton/conv.py
(whose docstring derives them): implicit GEMMs with no im2col buffer, the
input gradient split by stride phase (one GEMM per phase over only the taps
that reach it, all phases in one launch, no zero-stuffing), the weight
gradient split-K into an (S, K, C*KH*KW) workspace summed by a fixed-order
reduce kernel, and a fixed-order bias gradient. No atomics anywhere: results
are bitwise reproducible. conv.cu's header says what each kernel does; the
GEMM main loops are gemm.cuh's, shared with matmul.cu.

Groups (torch's meaning; `groups`, the last positional argument of the
three GEMM launchers, 1 by default) are one more GEMM axis: each group is the
same GEMM on its own C/groups input and K/groups output channels, and the
grid's x axis carries (group, row tile). groups=1 is the ungrouped conv.

Versions (issue #5). Each GEMM has two main loops (gemm.cuh):
  1  shared-memory tiled SIMT GEMM, float32 and float64, exact fp32/fp64
     arithmetic;
  2  TF32 tensor cores (mma.sync m16n8k8), float32 only: inputs rounded to
     TF32 (10-bit mantissa), products exact, sums in fp32.
PRECISION ("ieee", the default, or "tf32"; env NN_CUPY_PRECISION, or
set_precision) picks version 2 for float32 under "tf32" and version 1
otherwise, as the Triton backend's DOT_PRECISION does for tl.dot. Every
public function also takes a keyword-only `version` (1 or 2, None = by
PRECISION) so tests and benchmarks can pick one; version 2 with float64 is a
ValueError naming the op. The bias gradient is no GEMM and has one kernel;
it accepts `version` with the same checks, for a uniform API.

Tile shapes. Both versions use 64 x 64 output tiles (BK = 16 reduction
elements per step), or 128 x 8 tiles when the GEMM has at most NARROW_MAX
columns (a 3-channel image's input gradient, a conv with <= 8 output
channels), where a 64-wide tile would spend most of its work on masked
columns. The split-K factor S of the weight gradient is
launch_checks.splitk over those tiles: a pure function of the shapes (and so
the same for both versions).
"""

import os

import numpy as np

from . import runtime
from ..conv_geometry import check_backward_input, check_backward_weight, check_forward, phase_taps
from ..launch_checks import INT32_LIMIT, cdiv, check_arrays, check_ndim, fail, splitk_plan

PRECISION = os.environ.get("NN_CUPY_PRECISION", "ieee")
if PRECISION not in ("ieee", "tf32"):
    raise ValueError(f"NN_CUPY_PRECISION must be 'ieee' or 'tf32', got {PRECISION!r}")


def set_precision(precision):
    """'ieee' (exact fp32, version 1) or 'tf32' (tensor cores, version 2) for
    float32 convolutions and matmuls (matmul.py reads it too); read at launch
    time. float64 is always exact."""
    global PRECISION
    if precision not in ("ieee", "tf32"):
        raise ValueError(f"precision must be 'ieee' or 'tf32', got {precision!r}")
    PRECISION = precision


BK = 16             # reduction elements per GEMM step (gemm.cuh's Tile::BK)
NARROW_MAX = 8      # GEMMs with at most this many columns use the 128 x 8 tile
REDUCE_BLOCK = 256  # threads of splitk_reduce and conv2d_bgrad
# (BM, BN, threads) of each version's tiles, keyed by (version, BN): gemm.cuh's
# SimtTile<BN> and MmaTile<BN> (matmul.py uses the same table).
TILES = {(1, 64): (64, 64, 256), (1, 8): (128, 8, 128),
         (2, 64): (64, 64, 128), (2, 8): (128, 8, 128)}
_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def _names():
    names = []
    for base in ("conv2d_fwd", "conv2d_dgrad", "conv2d_wgrad"):
        for bn in (64, 8):
            names += [f"{base}_v1<float, {bn}>", f"{base}_v1<double, {bn}>", f"{base}_v2<{bn}>"]
    return names + ["splitk_reduce<float>", "splitk_reduce<double>",
                    "conv2d_bgrad<float>", "conv2d_bgrad<double>"]


MODULE = runtime.Module("conv.cu", _names())


def _version(op, dtype, version):
    """The version to run: `version` if given (checked), else by PRECISION."""
    if version is None:
        return 2 if dtype == np.float32 and PRECISION == "tf32" else 1
    if isinstance(version, bool) or version not in (1, 2):
        fail(op, f"version must be 1, 2 or None, got {version!r}")
    if version == 2 and dtype != np.float32:
        fail(op, f"version 2 (TF32 tensor cores) is float32 only, got {dtype}")
    return int(version)


def _gemm(base, dtype, version, cols):
    """(kernel name, BM, BN, threads) for a GEMM with `cols` output columns."""
    bn = 8 if cols <= NARROW_MAX else 64
    BM, BN, threads = TILES[(version, bn)]
    if version == 1:
        name = f"{base}_v1<{_CTYPE[np.dtype(dtype)]}, {bn}>"
    else:
        name = f"{base}_v2<{bn}>"
    return name, BM, BN, threads


def _grid(op, gx, gy, gz):
    if gx >= INT32_LIMIT or gy > 65535 or gz > 65535:
        fail(op, f"grid ({gx}, {gy}, {gz}) exceeds CUDA's limits")
    return (gx, gy, gz)


def _i32(*v):
    return tuple(np.int32(e) for e in v)


def conv2d_forward(x, w, b, stride, padding, dilation, groups=1, *, version=None):
    """y = conv2d(x, w) + b: x (N, C, H, W), w (K, C/groups, KH, KW), b (K,) or None."""
    op = "conv2d_forward"
    dtype, shape = check_forward(op, x, w, b, stride, padding, dilation, groups)
    v = _version(op, dtype, version)
    G = int(groups)
    N, K, OH, OW = shape.N, shape.K, shape.OH, shape.OW
    y = runtime.empty((N, K, OH, OW), dtype)
    M, Kg = N * OH * OW, K // G
    if M == 0 or K == 0:
        return y
    # (C == 0 still launches: the GEMM has no reduction steps and writes b, or 0.)
    name, BM, BN, threads = _gemm("conv2d_fwd", dtype, v, Kg)
    MODULE.launch(name, _grid(op, G * cdiv(M, BM), cdiv(Kg, BN), 1), (threads,),
                  (x, w, b, y) + _i32(*shape, G))
    return y


def conv2d_backward_input(dy, w, input_hw, stride, padding, dilation, groups=1, *,
                          version=None):
    """dx (N, C, *input_hw), the gradient of conv2d w.r.t. x; dy (N, K, OH, OW),
    w (K, C/groups, KH, KW).

    Also the transposed conv's forward (input_hw its output size), so it is
    right for any stride, padding, dilation and input_hw: input pixels no tap
    reaches get 0."""
    op = "conv2d_backward_input"
    dtype, shape = check_backward_input(op, dy, w, input_hw, stride, padding, dilation, groups)
    v = _version(op, dtype, version)
    G = int(groups)
    N, C, H, W, sh, sw = shape.N, shape.C, shape.H, shape.W, shape.sh, shape.sw
    dx = runtime.empty((N, C, H, W), dtype)
    M, Cg = N * cdiv(H, sh) * cdiv(W, sw), C // G  # M: the largest phase
    if M == 0 or C == 0:
        return dx
    name, BM, BN, threads = _gemm("conv2d_dgrad", dtype, v, Cg)
    MODULE.launch(name, _grid(op, G * cdiv(M, BM), cdiv(Cg, BN), sh * sw), (threads,),
                  (dy, w, dx) + _i32(*shape, G, *phase_taps(shape)))
    return dx


def conv2d_backward_weight(dy, x, kernel_hw, stride, padding, dilation, groups=1, *,
                           splits=None, version=None):
    """dw (K, C/groups, *kernel_hw), the gradient of conv2d w.r.t. w.

    OH, OW are dy's: they may be smaller than x would give (the transposed
    conv's weight gradient passes such a pair); taps off x read zero.
    `splits` forces the split-K factor S (for tests); None uses the heuristic.
    """
    op = "conv2d_backward_weight"
    dtype, shape = check_backward_weight(op, dy, x, kernel_hw, stride, padding, dilation,
                                         groups)
    v = _version(op, dtype, version)
    G = int(groups)
    K, C, KH, KW = shape.K, shape.C, shape.KH, shape.KW
    Kg, R, P = K // G, C // G * KH * KW, shape.N * shape.OH * shape.OW  # R: one group's
    grad_w = runtime.empty((K, C // G, KH, KW), dtype)  # not `dw`: that is the dilation
    if K == 0 or R == 0:
        return grad_w
    name, BM, BN, threads = _gemm("conv2d_wgrad", dtype, v, R)
    tiles = G * cdiv(Kg, BM) * cdiv(R, BN)
    S, chunk = splitk_plan(op, P, K, R, tiles, BK, splits)
    out = grad_w if S == 1 else runtime.empty((S, K, R), dtype)
    MODULE.launch(name, _grid(op, G * cdiv(Kg, BM), cdiv(R, BN), S), (threads,),
                  (dy, x, out) + _i32(*shape, G, chunk))
    if S > 1:
        L = K * R
        MODULE.launch(f"splitk_reduce<{_CTYPE[np.dtype(dtype)]}>",
                      (cdiv(L, REDUCE_BLOCK),), (REDUCE_BLOCK,), (out, grad_w) + _i32(S, L))
    return grad_w


def conv2d_backward_bias(dy, *, version=None):
    """db (K,): dy (N, K, OH, OW) summed over N, OH and OW (one kernel for
    both versions; `version` is checked as elsewhere)."""
    op = "conv2d_backward_bias"
    check_ndim(op, "dy", dy, 4)
    dtype = check_arrays(op, dy=dy)
    _version(op, dtype, version)
    N, K, OH, OW = dy.shape
    db = runtime.empty((K,), dtype)
    if K == 0:
        return db
    MODULE.launch(f"conv2d_bgrad<{_CTYPE[np.dtype(dtype)]}>", (K,), (REDUCE_BLOCK,),
                  (dy, db) + _i32(N, K, OH * OW))
    return db
