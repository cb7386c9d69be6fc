"""Matrix products as CUDA C kernels: the launcher for matmul.cu.

    matmul(a, b)   (M, K) @ (K, N) -> (M, N), or (B, M, K) @ (B, K, N) -> (B, M, N)

float32 or float64, inputs of any strides (a transposed view, a stepped
slice: read in place, no copy; their element strides go to the kernel), the
output a new contiguous array. matmul.cu runs one strided-matmul "problem" on
the GEMM core the convolutions use (gemm.cuh), so the versions, the tiles and
the precision switch are conv's:

  version 1  shared-memory tiled SIMT GEMM, float32 and float64, exact;
  version 2  TF32 tensor cores (mma.sync m16n8k8), float32 only.

conv.PRECISION (env NN_CUPY_PRECISION, or conv.set_precision) picks version 2
for float32 under "tf32", version 1 otherwise, read at launch time;
`version=` (1, 2, None) overrides it, with conv's checks (version 2 on
float64 is a ValueError naming matmul).

The launch: grid (cdiv(M, BM), cdiv(N, BN), batches) with conv's tiles
(64 x 64, or 128 x 8 when N <= NARROW_MAX), one launch per 65535 batches
(CUDA's limit on grid z). Each operand's load layout (matmul.cu's A_ALONG_M,
B_ALONG_N) follows its strides, so every view loads coalesced.
"""

import numpy as np

from . import conv, runtime
from .. import strided
from ..launch_checks import INT32_LIMIT, cdiv, fail

MAX_GRID_Z = 65535  # batches per launch
_BOOL = {False: "false", True: "true"}


def _names():
    names = []
    for bn in (64, 8):
        for am in (False, True):
            for bn_ in (False, True):
                flags = f"{_BOOL[am]}, {_BOOL[bn_]}"
                names += [f"matmul_v1<float, {bn}, {flags}>", f"matmul_v1<double, {bn}, {flags}>",
                          f"matmul_v2<{bn}, {flags}>"]
    return names


MODULE = runtime.Module("matmul.cu", _names())


def _along_rows(rows, row_stride, red, red_stride):
    """Whether a (rows x red) operand is gathered with consecutive threads on
    consecutive rows: when the row axis is the contiguous one (the smaller
    |stride|, counting only axes longer than 1; rows when red is 1)."""
    if rows <= 1:
        return False
    if red <= 1:
        return True
    return abs(row_stride) < abs(red_stride)


def _check(op, a, b):
    for name, x in (("a", a), ("b", b)):
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            fail(op, f"{name} must be an array, got {type(x).__name__}")
        if x.dtype not in (np.float32, np.float64):
            fail(op, f"{name} must be float32 or float64, got {x.dtype}")
    if a.dtype != b.dtype:
        fail(op, f"a and b must share one dtype, got {a.dtype} and {b.dtype}")
    if a.ndim not in (2, 3) or b.ndim != a.ndim:
        fail(op, f"expects (M, K) @ (K, N) or (B, M, K) @ (B, K, N), got shapes "
                 f"{tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[-1] != b.shape[-2]:
        fail(op, f"inner dimensions differ: a {tuple(a.shape)} has K = {a.shape[-1]}, "
                 f"b {tuple(b.shape)} has {b.shape[-2]}")
    if a.ndim == 3 and a.shape[0] != b.shape[0]:
        fail(op, f"batch sizes differ: a {tuple(a.shape)}, b {tuple(b.shape)}")


def _strides(op, name, x):
    """x's element strides as (batch, row, col), checked for int32 offsets."""
    st = strided.element_strides(x)
    if x.size and strided.max_offset(0, st, x.shape) >= INT32_LIMIT:
        fail(op, f"{name} {tuple(x.shape)} with strides {tuple(st)} spans 2**31 elements or "
                 f"more; int32 indexing")
    return ([0] if x.ndim == 2 else []) + st


def matmul(a, b, *, version=None):
    """a @ b, a new contiguous array: (M, K) @ (K, N) -> (M, N), or batched
    (B, M, K) @ (B, K, N) -> (B, M, N); any strides."""
    op = "matmul"
    _check(op, a, b)
    dtype = np.dtype(a.dtype)
    v = conv._version(op, dtype, version)
    batched = a.ndim == 3
    Bt = int(a.shape[0]) if batched else 1
    M, K, N = (int(e) for e in (a.shape[-2], a.shape[-1], b.shape[-1]))
    out_shape = ((Bt,) if batched else ()) + (M, N)
    if Bt * M * N >= INT32_LIMIT:
        fail(op, f"output {out_shape} has {Bt * M * N} elements; int32 indexing allows < 2**31")
    c = runtime.empty(out_shape, dtype)
    if Bt * M * N == 0:
        return c
    # (K == 0 still launches: the GEMM has no reduction steps and writes zeros.)
    sa_b, sa_m, sa_k = _strides(op, "a", a)
    sb_b, sb_k, sb_n = _strides(op, "b", b)
    a_along_m = _along_rows(M, sa_m, K, sa_k)
    b_along_n = _along_rows(N, sb_n, K, sb_k)
    bn = 8 if N <= conv.NARROW_MAX else 64
    BM, BN, threads = conv.TILES[(v, bn)]
    flags = f"{_BOOL[a_along_m]}, {_BOOL[b_along_n]}"
    if v == 1:
        name = f"matmul_v1<{conv._CTYPE[dtype]}, {bn}, {flags}>"
    else:
        name = f"matmul_v2<{bn}, {flags}>"
    gx, gy = cdiv(M, BM), cdiv(N, BN)
    if gx >= INT32_LIMIT or gy > 65535:
        fail(op, f"grid ({gx}, {gy}) exceeds CUDA's limits")
    for b0 in range(0, Bt, MAX_GRID_Z):
        nb = min(MAX_GRID_Z, Bt - b0)
        MODULE.launch(name, (gx, gy, nb), (threads,),
                      (a, b, c) + tuple(np.int32(e) for e in (
                          M, N, K, sa_b, sa_m, sa_k, sb_b, sb_k, sb_n, b0)))
    return c
