"""Matrix multiplication in Triton: C = A @ B, and the GEMM core the conv kernels share.

Read this file top to bottom, as the Triton tutorial "Matrix Multiplication"
(03-matrix-multiplication), which it follows; kernels/triton/conv.py then
reuses its inner loop for the implicit GEMMs of convolution.

What it computes
    matmul(a, b): (M, K) @ (K, N) -> (M, N), or one product per batch entry,
    (B, M, K) @ (B, K, N) -> (B, M, N). float32 or float64, both operands of
    one dtype. The inputs may have ANY strides: a transposed view, a stepped
    slice, a broadcast (stride 0) or a flipped (negative-stride) view is read
    in place, never copied. The output is a new contiguous array.

    c[b, m, n] = sum over k of a[b, m, k] * b[b, k, n]

Tiling
    One program computes one BLOCK_M x BLOCK_N tile of C. It keeps the tile in
    an accumulator (registers) and walks the reduction axis K in steps of
    BLOCK_K: each step loads a BLOCK_M x BLOCK_K tile of A and a BLOCK_K x
    BLOCK_N tile of B and adds their product to the accumulator. In
    pseudo-code, for one program:

        acc = zeros((BLOCK_M, BLOCK_N))
        for k0 in range(0, K, BLOCK_K):
            acc += A[m0:m0+BLOCK_M, k0:k0+BLOCK_K] @ B[k0:k0+BLOCK_K, n0:n0+BLOCK_N]
        C[m0:m0+BLOCK_M, n0:n0+BLOCK_N] = acc

    Every element of A is read by cdiv(N, BLOCK_N) programs and every element
    of B by cdiv(M, BLOCK_M), against once per output element for a naive
    loop: larger tiles mean fewer global reads per FLOP, up to what the
    registers hold.

Addresses from strides
    Element a[m, k] lives at a_ptr + m*stride_am + k*stride_ak (strides in
    elements). The kernel forms the int32 offset tile of the first reduction
    block once,
        a_off = offs_m[:, None]*stride_am + offs_k[None, :]*stride_ak,
    and reduction block k0 only moves the scalar base pointer by
    k0*stride_ak. A transposed view is nothing but swapped strides, so it
    costs no copy; a contiguous operand has stride 1 along its last axis,
    which Triton specialises to a constant, and its loads are vectorised.
    (The tutorial advances 2-D pointer tiles instead; a pointer per element
    is 64 bits of registers where an int32 offset is 32, which is what lets
    the conv kernels' gathers fit without spilling: see conv.py.) Negative
    strides are handled in the launcher (kernels/strided.py: point at the
    lowest address, add a base offset), as the elementwise kernels do.

Grouped program ordering, for L2 reuse
    The grid has one program per tile of C. In row-major order (tile 0, 1,
    2, ... along a row of tiles, then the next row) the programs that run at
    the same time share one row of A tiles but each need a different column
    of B tiles, and B's columns fall out of L2 before the next row comes
    back to them. So program ids are mapped to tiles in groups of GROUP_M
    rows of tiles: within a group, consecutive ids go down a column first,

        row-major              grouped (GROUP_M = 2)
        0  1  2  3             0  2  4  6
        4  5  6  7             1  3  5  7
        8  9 10 11             8 10 12 14
       12 13 14 15             9 11 13 15

    so the first 4 programs touch 2 rows of A tiles and 2 columns of B tiles
    (4 tile loads) instead of 1 row and 4 columns (5), and the gap widens
    with the grid. The mapping is a few integer operations per program
    (_grouped_tile); it changes which program computes what, never the
    result.

Masks for the edges
    M, N and K need not be multiples of the block sizes. Rows m >= M and
    columns n >= N of a tile are masked off in the loads (read as 0) and in
    the store; in the last reduction step the columns k >= K of the A tile
    and the rows k >= K of the B tile read 0, so they add 0 to the
    accumulator. K = 0 simply stores zeros.

Batch as a grid axis
    The grid is 2-D: axis 0 is the tile (grouped as above), axis 1 the batch
    entry, which offsets the three base pointers by its batch strides. A 2-D
    product is a batch of one. CUDA's grid axis 1 holds at most 65535
    programs, so the launcher launches larger batches in chunks.

Precision
    The accumulator has the output's dtype. float32 uses tl.dot with
    input_precision = common.dot_precision(dtype): "ieee" (exact fp32, the
    default and what the tests check), or "tf32" (tensor cores, ~10 bits of
    mantissa per product) when NN_TRITON_PRECISION=tf32. float64 forms each
    block product as tl.sum(a[:, :, None] * b[None, :, :], axis=1): tl.dot's
    fp64 support differs across Triton versions and GPUs, and this holds a
    BLOCK_M x BLOCK_K x BLOCK_N product in registers, so float64 takes small
    tiles on a GPU. Both run in a fixed order, so results are bitwise
    reproducible from run to run.

One GEMM core, shared with the convolutions
    The inner loop above, "for each reduction block: load an A tile at
    base + k0*a_step + a_off and a B tile at base + k0*b_step + b_off,
    masked by a row mask, a column mask and the reduction tail, and
    accumulate", is `gemm_loop`, and the step "acc += a @ b in this dtype" is
    `block_product`. conv.py's forward and input-gradient kernels are the
    same loop on gathered operands: for each filter tap they build a_off
    (and the padding mask) for that tap and call gemm_loop over channel
    blocks, the reduction axis whose addresses are affine (channel c0 moves
    x by c0*H*W). The weight gradient reduces over pixels p = (n, oh, ow)
    instead, whose addresses are not affine in p (n, oh and ow are decoded
    by division at each step), so it keeps its own loop and shares only
    block_product. The block-size rule (`gemm_blocks`), the dtype switch
    (`dot_args`) and the warps/stages rule (`launch_opts`) are shared too.

Block sizes (no triton.autotune: under TRITON_INTERPRET=1 it would time every
config; a fixed rule also keeps results independent of timing noise)
    BLOCK_M = clamp(next_pow2(M), 16, 128), BLOCK_N = clamp(next_pow2(N), 16,
    64), BLOCK_K = clamp(next_pow2(K), 16, 32) for float32 (tl.dot needs every
    block dim >= 16); float64 on a GPU 32 x 32 x 8. GROUP_M = 8. 8 warps for
    tiles of >= 64 x 64 outputs, else 4; 2 pipeline stages: the rule of
    conv.py's forward, whose loop this is. Compiled offline for sm_90
    (Triton 3.9, its bundled ptxas), these tiles use at most 128 registers
    for float32 and 186 for float64, with no spills: the plain strided loads
    leave more room than conv's gathers, so larger tiles or 3 stages are
    the first thing to try when tuning on a GPU (not done: no GPU yet).
    Under the interpreter, whose cost is per tl operation rather than per
    element, float64 takes the float32 tiles (_FP64_SMALL_TILES, as
    conv.py): fewer, larger operations.

Indexing is int32: the launcher refuses an operand whose farthest element
lies 2**31 or more elements from its first, and outputs of 2**31 elements or
more.
"""

import numpy as np
import triton
import triton.language as tl

from . import common
from .. import strided
from ..launch_checks import INT32_LIMIT, Plan, check_size, clamp_pow2, fail

# ------------------------------------------------------------- the GEMM core


@triton.jit
def block_product(acc, a, b, USE_DOT: tl.constexpr, PRECISION: tl.constexpr):
    """acc += a @ b for an a (BM, BR) and b (BR, BN) tile, in acc's dtype."""
    if USE_DOT:  # float32: tensor-core or FMA dot, exact fp32 unless tf32
        acc += tl.dot(a, b, input_precision=PRECISION)
    else:  # float64: broadcast multiply, reduce over the middle axis
        acc += tl.sum(a[:, :, None] * b[None, :, :], axis=1)
    return acc


@triton.jit
def gemm_loop(acc, a_ptr, a_off, a_row_ok, a_step, b_ptr, b_off, b_col_ok, b_step, RED,
              BLOCK_R: tl.constexpr, USE_DOT: tl.constexpr, PRECISION: tl.constexpr):
    """acc += sum over r < RED of A[:, r] * B[r, :], BLOCK_R reduction elements a step.

    a_off (BM, BLOCK_R) and b_off (BLOCK_R, BN) are the int32 element offsets
    of reduction block 0 from a_ptr and b_ptr; block r0 lies r0*a_step and
    r0*b_step further on. a_row_ok (BM,) and b_col_ok (BN,) mask rows of A and
    columns of B (edges, padding); the reduction tail is masked here."""
    offs_r = tl.arange(0, BLOCK_R)
    for r0 in range(0, RED, BLOCK_R):
        r_ok = offs_r < RED - r0
        a = tl.load(a_ptr + r0 * a_step + a_off,
                    mask=a_row_ok[:, None] & r_ok[None, :], other=0.0)
        b = tl.load(b_ptr + r0 * b_step + b_off,
                    mask=r_ok[:, None] & b_col_ok[None, :], other=0.0)
        acc = block_product(acc, a, b, USE_DOT, PRECISION)
    return acc


# ----------------------------------------------------------------- the kernel


@triton.jit
def _grouped_tile(pid, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                  GROUP_M: tl.constexpr):
    """(pid_m, pid_n): program pid's tile, going down GROUP_M rows of tiles
    before moving one column right (see "Grouped program ordering")."""
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    num_pid_in_group = GROUP_M * num_pid_n  # programs per group of GROUP_M tile rows
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_M
    group_size_m = tl.minimum(num_pid_m - first_pid_m, GROUP_M)  # the last group may be short
    pid_m = first_pid_m + (pid % num_pid_in_group) % group_size_m
    pid_n = (pid % num_pid_in_group) // group_size_m
    return pid_m, pid_n


@triton.jit
def _matmul_kernel(
        a_ptr, b_ptr, c_ptr,
        M, N, K,
        a_base, stride_ab, stride_am, stride_ak,
        b_base, stride_bb, stride_bk, stride_bn,
        USE_DOT: tl.constexpr, PRECISION: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
        GROUP_M: tl.constexpr):
    # Which tile of which product: axis 0 the tile, axis 1 the batch entry.
    pid_m, pid_n = _grouped_tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    batch = tl.program_id(1)
    a_ptr += a_base + batch * stride_ab
    b_ptr += b_base + batch * stride_bb
    c_ptr += batch * (M * N)  # C is contiguous (B, M, N)

    # The tile's rows, columns and first reduction block, and their edge masks.
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    m_ok = offs_m < M
    n_ok = offs_n < N
    a_off = offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak
    b_off = offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn

    # Walk K: reduction block k0 is stride_ak (A) and stride_bk (B) per k further on.
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=c_ptr.dtype.element_ty)
    acc = gemm_loop(acc, a_ptr, a_off, m_ok, stride_ak, b_ptr, b_off, n_ok, stride_bk, K,
                    BLOCK_K, USE_DOT, PRECISION)

    c_off = offs_m[:, None] * N + offs_n[None, :]
    tl.store(c_ptr + c_off, acc, mask=m_ok[:, None] & n_ok[None, :])


# ------------------------------------------------- heuristics, shared with conv

# float64's broadcast product needs small tiles on a GPU (registers). The
# interpreter has no registers and pays per tl operation, not per element, so
# there float64 takes float32's larger tiles (conv.py has the same switch).
PLAN = Plan(__name__, common.INTERPRET, gpu={"_FP64_SMALL_TILES": True},
            simulator={"_FP64_SMALL_TILES": False},
            why="no registers in the interpreter, which pays per tl operation: float64 "
                "takes float32's larger tiles")
(_FP64_SMALL_TILES,) = PLAN.current("_FP64_SMALL_TILES")

GROUP_M = 8       # tile rows per group of the grouped ordering
MAX_GRID_Y = 65535  # CUDA's limit on grid axis 1 (the batch axis here)


def gemm_blocks(rows, cols, red, small):
    """(BM, BN, BR): a rows x cols output tile, BR reduction elements a step.
    `small` for float64 on a GPU, whose broadcast product holds BM*BR*BN values."""
    if small:
        return (clamp_pow2(rows, 16, 32), clamp_pow2(cols, 16, 32), clamp_pow2(red, 4, 8))
    return (clamp_pow2(rows, 16, 128), clamp_pow2(cols, 16, 64), clamp_pow2(red, 16, 32))


def dot_args(dtype):
    """(constexprs for block_product, is float64)."""
    fp64 = np.dtype(dtype) == np.float64
    return dict(USE_DOT=not fp64, PRECISION=common.dot_precision(dtype)), fp64


def launch_opts(rows, cols):
    """num_warps/num_stages for a rows x cols tile (ignored by the interpreter)."""
    return dict(num_warps=8 if rows * cols >= 4096 else 4, num_stages=2)


# ------------------------------------------------------------------ launcher


def _operand(op, name, a):
    """(view, base, element strides) of a 3-D operand, checked for int32 reach."""
    view, base, st = strided.pointer_view(a)
    reach = base + sum((n - 1) * abs(s) for n, s in zip(a.shape, st))
    if reach >= INT32_LIMIT:
        fail(op, f"{name}'s elements span {reach + 1} elements of memory; int32 indexing "
                 f"allows < 2**31")
    return view, base, st


def matmul(a, b):
    """a @ b: (M, K) @ (K, N) -> (M, N) or (B, M, K) @ (B, K, N) -> (B, M, N),
    inputs of any strides, a new contiguous output."""
    op = "matmul"
    if a.ndim not in (2, 3) or b.ndim != a.ndim:
        fail(op, f"expected two 2-D or two 3-D arrays, got shapes {tuple(a.shape)} and "
                 f"{tuple(b.shape)}")
    for name, t in (("a", a), ("b", b)):
        if t.dtype not in (np.float32, np.float64):
            fail(op, f"{name} must be float32 or float64, got {t.dtype}")
    if a.dtype != b.dtype:
        fail(op, f"a and b must share one dtype, got {a.dtype} and {b.dtype}")
    batched = a.ndim == 3
    a3, b3 = (a, b) if batched else (a[None], b[None])
    (Ba, M, K), (Bb, Kb, N) = a3.shape, b3.shape
    if K != Kb:
        fail(op, f"inner dimensions differ: a {tuple(a.shape)} @ b {tuple(b.shape)}")
    if Ba != Bb:
        fail(op, f"batch sizes differ: a {tuple(a.shape)} @ b {tuple(b.shape)}")
    check_size(op, "the output", Ba * M * N)
    dtype = a.dtype
    c = common.empty((Ba, M, N) if batched else (M, N), dtype)
    if c.size == 0:
        return c
    c3 = c if batched else c[None]

    dot, fp64 = dot_args(dtype)
    BM, BN, BK = gemm_blocks(M, N, K, fp64 and _FP64_SMALL_TILES)
    tiles = common.cdiv(M, BM) * common.cdiv(N, BN)
    for b0 in range(0, Ba, MAX_GRID_Y):  # one launch unless the batch exceeds grid axis 1
        b1 = min(Ba, b0 + MAX_GRID_Y)
        av, a_base, (sab, sam, sak) = _operand(op, "a", a3[b0:b1])
        bv, b_base, (sbb, sbk, sbn) = _operand(op, "b", b3[b0:b1])
        _matmul_kernel[(tiles, b1 - b0)](
            _in_ptr(av), _in_ptr(bv), common.ptr(c3[b0:b1]),
            M, N, K,
            a_base, sab, sam, sak,
            b_base, sbb, sbk, sbn,
            BLOCK_M=BM, BLOCK_N=BN, BLOCK_K=BK, GROUP_M=GROUP_M, **dot,
            **launch_opts(BM, BN))
    return c


def _in_ptr(a):
    """common.ptr for an input, which may be a read-only (broadcast) view."""
    if common.INTERPRET and not a.flags.writeable:
        import warnings
        with warnings.catch_warnings():  # torch warns on wrapping read-only arrays
            warnings.simplefilter("ignore", UserWarning)
            return common.ptr(a)
    return common.ptr(a)
