"""Convolution kernels (conv2d forward, input, weight and bias gradients) in Triton.

Shapes and names used throughout (NCHW, contiguous):
    x  (N, C, H, W)      image
    w  (K, Cg, KH, KW)   weight: K output channels, Cg = C/G input channels each
    y  (N, K, OH, OW)    output; dy has the same shape
    stride (sh, sw), padding (ph, pw), dilation (dh, dw), groups G (Kg = K/G)
Tap (kh, kw) of output pixel (oh, ow) reads input pixel
    ih = oh*sh - ph + kh*dh,   iw = ow*sw - pw + kw*dw
and reads zero where (ih, iw) falls outside the image (the padding).

The three conv kernels are GEMMs whose operands are never materialised: a
kernel computes, for each tile, the addresses in x, w and dy that the GEMM
element would read, and masks stand in for padding, for taps that fall off the image
and for tile tails (sizes that are not multiples of the block). There is no
im2col buffer, no zero-stuffed gradient and no atomic add, so every result is
bitwise reproducible from run to run. Their inner loop is matmul.py's GEMM
core (see "One GEMM core" there): kernels/triton/matmul.py is the place to
start reading.

Kernels (one line each, with its grid; the sections below say why):
  _conv2d_forward_kernel   implicit GEMM, M = N*OH*OW output pixels,
                           N_gemm = K, reduction over C*KH*KW walked as
                           (tap, channel block); bias fused in the epilogue.
                           Grid (M/BM, G*Kg/BN).
  _conv2d_dgrad_kernel     input gradient split by stride phase: one GEMM per
                           phase (ih mod sh, iw mod sw) over only the taps
                           whose residue matches; M = N*ceil(H/sh)*ceil(W/sw)
                           input pixels, N_gemm = C, reduction over K per
                           matching tap. No zero-stuffing.
                           Grid (M/BM, G*Cg/BN, sh*sw): the phase is axis 2.
  _conv2d_wgrad_kernel     weight gradient, M = K, N_gemm = Cg*KH*KW,
                           reduction over N*OH*OW split into S chunks
                           (split-K); each program writes its partial tile to
                           a workspace (S, K, Cg*KH*KW)...
                           Grid (G*Kg/BK, Cg*KH*KW/BR, S).
  _splitk_reduce_kernel    ...and this kernel sums the S partials in a fixed
                           order (s = 0, 1, ..., S-1). Deterministic.
                           Grid (K*Cg*KH*KW/1024,); skipped when S = 1.
  _conv2d_bgrad_kernel     bias gradient: one program per channel sums dy
                           over (N, OH, OW) in a fixed order. Grid (K,).
(Each "X/B" in a grid is a ceiling division; G*Kg/BN means G*ceil(Kg/BN).)
The reference they are checked against is kernels/numpy_kernels/conv.py
(im2col plus one BLAS product), and torch in the tests.

Groups (torch's `groups`). The channels split into G independent convs:
output channels [g*Kg, (g+1)*Kg) read only input channels [g*Cg, (g+1)*Cg),
with filters w[g*Kg:(g+1)*Kg] (G = C is a depthwise conv). So each kernel's
GEMM becomes G GEMMs of 1/G the width and 1/G the reduction, G a batch axis
of the same GEMM, and it is folded into the grid axis that tiles output
channels (forward: K; input gradient: C; weight gradient: K): program id
pid along that axis is group g = pid // T and channel tile pid % T, with
T = ceil(Kg/BLOCK) tiles per group, so no tile straddles two groups. A
program then moves its scalar base pointers to group g's channels (x by
g*Cg*H*W, w by g*Kg*Cg*KH*KW, y/dy by g*Kg*OH*OW, ...), and everything
after is the ungrouped kernel with C, K replaced by Cg, Kg where they count
the GEMM's columns or reduction, and kept where they are strides of the
full arrays (an image of x is C*H*W long whatever G). The block sizes come
from Cg and Kg, so a depthwise conv reduces a BLOCK of 4-16 channels with
all but one masked: correct, and a small share of the FLOPs, but not a
fast depthwise kernel (that would tile over channels and taps instead).
The launcher passes GROUPED = (G > 1) as a constexpr: with G = 1 the group
arithmetic is not compiled at all, and the kernels compile (sm_90, Triton
3.9) to the same PTX instructions as before groups existed.

Conv2d forward (implicit GEMM). Seen as a matrix product,
    y[m, k] = sum_r X[m, r] * W[r, k],  m = (n, oh, ow),  r = (c, kh, kw),
where X is the im2col matrix. A program owns a BLOCK_M x BLOCK_N tile of
(pixels x out channels) and walks the reduction as an outer loop over the
KH*KW taps and an inner loop over channel blocks. For a fixed tap the input
row/column of every pixel of the tile, and so its validity mask, is computed
once as an int32 offset tile, and channel block c0 only moves the base
pointer by c0*H*W (x) and c0*KH*KW (w) (that inner loop is matmul.gemm_loop,
called once per tap, as dgrad does below): no index arithmetic in the inner
loop beyond one channel mask. (Advancing 2-D pointer tiles instead costs
64-bit registers per element: ptxas then spills at 64 x 64 x 32.) The x tile
(BLOCK_M pixels x BLOCK_C channels) is contiguous along ow for stride 1, the
w tile (BLOCK_C x BLOCK_N) is tiny and cache-resident. Storing y[n, k, oh, ow]
is contiguous along the pixel axis. The bias is added to the accumulator
before the one store, so y is written exactly once.

Conv2d input gradient (by stride phase). Differentiating the forward gives
    dx[n, c, ih, iw] = sum over k, kh, kw of dy[n, k, oh, ow] * w[k, c, kh, kw]
        where oh = (ih + ph - kh*dh) / sh must be an integer in [0, OH)
        (and likewise ow).
"Integer" is the whole difficulty: for stride 2 only a quarter of the taps
reach a given input pixel. The naive fix, zero-stuffing dy (inserting sh-1
zero rows between its rows) and running a dense conv, spends 75% of its
multiplies on zeros at stride 2. Instead we split the input pixels by phase
(qh, qw) = (ih mod sh, iw mod sw). Inside one phase the set of contributing
taps is fixed: kh contributes iff kh*dh = qh + ph (mod sh). That congruence
has no solution unless g = gcd(dh, sh) divides qh + ph, and otherwise its
solutions are kh = kh0, kh0 + sh/g, kh0 + 2*sh/g, ... with
    kh0 = ((qh + ph)/g * inv(dh/g mod sh/g)) mod sh/g
(the launcher passes g and the modular inverse). With ih = qh + i*sh, the
output row that tap kh reads is oh = i + (qh + ph - kh*dh)/sh: a fixed shift
of i, so within a phase the gradient is again a dense implicit GEMM
    dx_phase[(n, i, j), c] = sum over (matching taps, k) of dy[...] * w[...]
with M = N * Hq * Wq (Hq = ceil((H - qh)/sh) rows of phase qh), N_gemm = C
and reduction over K per tap. Masks drop taps whose oh/ow fall outside
[0, OH) x [0, OW). Every dx element belongs to exactly one phase and is
stored exactly once, as 0 when no tap reaches it (rows past what the conv
reads, when input_hw is larger; phases with no solution). This kernel is also
the transposed convolution's forward in this library, which is why it must
be right for any stride, padding, dilation and input_hw. All phases run in
one launch (phase = program_id(2)); the phases of one launch have equal M up
to one row/column, so little of the grid idles.

Conv2d weight gradient (split-K). Again a GEMM,
    dw[k, r] = sum_p dY[k, p] * X[p, r],  p = (n, oh, ow),  r = (c, kh, kw),
but now the output is small (K x C*KH*KW, e.g. 128 x 1024) and the
reduction long (N*OH*OW, up to ~131k in DCGAN). A plain tiling would give a
handful of programs each looping over 131k: most SMs idle. Split-K cuts the
reduction into S contiguous chunks, a program per (K block, R block, chunk)
writes its partial tile to a workspace of shape (S, K, R), and a second
kernel sums the S partials element-wise in the fixed order s = 0..S-1. No
atomics, so two runs are bitwise equal (the result depends on S and the
block sizes, which are pure functions of the shapes). With S = 1 the first
kernel writes dw directly and the second is skipped. Column r is decoded into
(c, kh, kw) once per program, together with the range of oh*sh (and ow*sw)
for which its input row (column) is inside the image; inside the loop each x
element's address is a per-pixel term plus a per-column term, and its mask
four compares of those two terms.

Conv2d bias gradient. db[k] = sum over n, oh, ow of dy[n, k, oh, ow]: one
program per channel walks its N planes of OH*OW contiguous values with a
BLOCK-wide accumulator, then reduces the block once. Fixed order, no
atomics. (DCGAN's convs have no bias, so this kernel is off the hot path; a
split reduction like the weight gradient's would fill the GPU better when K
is small and N*OH*OW large.)

Heuristics (matmul.py's gemm_blocks, dot_args and launch_opts, shared with
the matmul kernel; no triton.autotune: under TRITON_INTERPRET=1 it would
time every config; a fixed rule also keeps results independent of timing
noise):
  Block sizes. float32 products use tl.dot, which needs every block dim >= 16.
    forward, input gradient:  BM = clamp(next_pow2(pixels), 16, 128),
                              BN = clamp(next_pow2(channels out of the GEMM), 16, 64),
                              BR = clamp(next_pow2(channels reduced), 16, 32)
    weight gradient:          BK = clamp(next_pow2(Kg), 16, 64),
                              BR = clamp(next_pow2(Cg*KH*KW), 16, 64), BP = 32
  (channel counts per group: Kg and Cg, which are K and C when G = 1)
  Small sizes shrink the tile (a 3-channel layer reduces 16 channels per step,
  13 of them masked: DCGAN's first and last layers are a small share of the
  FLOPs). float64 forms the block product as tl.sum(a[:, :, None] *
  b[None, :, :], 1) (tl.dot's fp64 support differs across Triton versions and
  GPUs), which holds a BM x BR x BN product in registers, so float64 on a GPU
  uses tiles of at most 32 x 32 with BR <= 8 (BP = 8). Under the interpreter,
  whose cost is per operation rather than per element, float64 uses the
  float32 tiles (_FP64_SMALL_TILES).
  Warps and stages. 8 warps for tiles of >= 4096 outputs (64 x 64), else 4;
  2 pipeline stages. The gathered loads keep an offset and a mask per element
  in registers: ptxas (sm_90, Triton 3.6) reports spills for 64 x 64 x 32 and
  128 x 64 x 32 tiles at 4 warps, or at 3 stages, and none for any tile this
  rule picks (at most ~215 registers). Triton 3.9's compile of the same
  source hits 255 registers with small spills (8-16 bytes per thread) at
  128 x 64 x 32 (8 warps) and 128 x 16 x 16 (4 warps), with or without
  groups: a rule to re-tune on a GPU.
  Split-K. tiles = G*ceil(Kg/BK) * ceil(Cg*KH*KW/BR). S = ceil(SPLITK_TARGET /
  tiles) so that the grid holds about 2 waves of an H100's 132 SMs, but no
  chunk shorter than SPLITK_MIN_CHUNK reduction elements (each program must
  do enough work to amortise writing its partial tile) and S <= SPLITK_MAX (kernels/launch_checks.py).
  The chunk length is then rounded up to a multiple of BP and S recomputed,
  so no chunk is empty. E.g. DCGAN's first D layer at batch 128 (K = 64,
  C*KH*KW = 48, N*OH*OW = 131072): 1 tile, S = 256, chunks of 512; its
  second (K = 128, 1024 columns, 32768 long): 32 tiles, S = 9. Problems
  with N*OH*OW < 512 (most interpreter tests) get S = 1 and no workspace.

Precision: accumulators have the output's dtype (fp32 for float32, fp64 for
float64). float32 tl.dot runs with input_precision = common.dot_precision:
"ieee" (exact fp32, the default and what the tests use) or "tf32".

Indexing is int32; the launchers refuse arrays of 2**31 elements or more.

Under TRITON_INTERPRET=1 each program runs serially in Python over NumPy, and
every tl operation costs ~0.1-0.5 ms whatever its size (integer ops also get
an overflow check), so time grows with (programs) x (loop trips) x (ops per
trip), not with FLOPs: hence the hoisted offsets in the inner loops, and
float64's large tiles there.
"""

import triton
import triton.language as tl

from . import common
from .matmul import block_product, dot_args, gemm_blocks, gemm_loop, launch_opts
from ..conv_geometry import check_backward_input, check_backward_weight, check_forward, phase_taps
from ..launch_checks import Plan, check_arrays, check_ndim, clamp_pow2, splitk_plan

# ------------------------------------------------------------------ kernels


@triton.jit
def _conv2d_forward_kernel(
        x_ptr, w_ptr, b_ptr, y_ptr,
        N, C, H, W, K, OH, OW, KH, KW,
        sh, sw, ph, pw, dh, dw, G,
        HAS_BIAS: tl.constexpr, GROUPED: tl.constexpr,
        USE_DOT: tl.constexpr, PRECISION: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr):
    # Tile: BLOCK_M output pixels (n, oh, ow) x BLOCK_N output channels of one group.
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    if GROUPED:  # axis 1 = (group, channel tile): move the bases to group g's channels
        Cg = C // G
        Kg = K // G
        tiles_n = tl.cdiv(Kg, BLOCK_N)
        g = pid_n // tiles_n
        pid_n = pid_n - g * tiles_n
        x_ptr += g * Cg * H * W            # input channels [g*Cg, (g+1)*Cg)
        w_ptr += g * Kg * (Cg * KH * KW)   # filters of output channels [g*Kg, (g+1)*Kg)
        y_ptr += g * Kg * OH * OW
        b_ptr += g * Kg
    else:
        Cg = C
        Kg = K
    OHW = OH * OW
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_k = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # output channel within the group
    offs_c = tl.arange(0, BLOCK_C)
    m_ok = offs_m < N * OHW
    k_ok = offs_k < Kg
    n = offs_m // OHW
    s = offs_m % OHW
    oh = s // OW
    ow = s % OW
    ih0 = oh * sh - ph  # input row/col read by tap (0, 0)
    iw0 = ow * sw - pw
    x_img = n * (C * H * W)  # start of each pixel's image
    KHKW = KH * KW
    w_row = offs_k * (Cg * KHKW)  # start of each output channel's filter
    x_chan = offs_c * (H * W)    # channel offsets, hoisted out of every loop
    w_chan = offs_c * KHKW

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=y_ptr.dtype.element_ty)
    for kh in range(0, KH):
        ih = ih0 + kh * dh
        h_ok = m_ok & (ih >= 0) & (ih < H)
        for kw in range(0, KW):
            iw = iw0 + kw * dw
            pix_ok = h_ok & (iw >= 0) & (iw < W)  # padding and tails: read 0
            # int32 offset tiles of channel block 0; block c0 moves the base
            # by c0*H*W (x) and c0*KH*KW (w): matmul's GEMM loop over Cg channels.
            a_off = (x_img + ih * W + iw)[:, None] + x_chan[None, :]
            b_off = w_chan[:, None] + (w_row + kh * KW + kw)[None, :]
            acc = gemm_loop(acc, x_ptr, a_off, pix_ok, H * W, w_ptr, b_off, k_ok, KHKW, Cg,
                            BLOCK_C, USE_DOT, PRECISION)

    if HAS_BIAS:  # epilogue: fused bias
        acc += tl.load(b_ptr + offs_k, mask=k_ok, other=0.0)[None, :]
    y_off = (n * (K * OHW) + s)[:, None] + (offs_k * OHW)[None, :]
    tl.store(y_ptr + y_off, acc, mask=m_ok[:, None] & k_ok[None, :])


@triton.jit
def _conv2d_dgrad_kernel(
        dy_ptr, w_ptr, dx_ptr,
        N, C, H, W, K, OH, OW, KH, KW,
        sh, sw, ph, pw, dh, dw, G,
        gh, gw, inv_h, inv_w,
        GROUPED: tl.constexpr, USE_DOT: tl.constexpr, PRECISION: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    # Tile: BLOCK_M input pixels of one stride phase x BLOCK_N input channels of one group.
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    phase = tl.program_id(2)
    if GROUPED:  # axis 1 = (group, channel tile): move the bases to group g's channels
        Cg = C // G
        Kg = K // G
        tiles_n = tl.cdiv(Cg, BLOCK_N)
        g = pid_n // tiles_n
        pid_n = pid_n - g * tiles_n
        dy_ptr += g * Kg * OH * OW          # output channels [g*Kg, (g+1)*Kg)
        w_ptr += g * Kg * (Cg * KH * KW)
        dx_ptr += g * Cg * H * W            # input channels [g*Cg, (g+1)*Cg)
    else:
        Cg = C
        Kg = K
    qh = phase // sw
    qw = phase % sw
    # This phase's pixels: ih = qh + i*sh (i < Hq), iw = qw + j*sw (j < Wq).
    Hq = (H - qh + sh - 1) // sh  # 0 when qh >= H (image smaller than stride)
    Wq = (W - qw + sw - 1) // sw
    HWq = tl.maximum(Hq * Wq, 1)  # avoid dividing by 0; m_ok is then all False
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_c = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # input channel within the group
    offs_k = tl.arange(0, BLOCK_K)
    m_ok = offs_m < N * Hq * Wq
    c_ok = offs_c < Cg
    n = offs_m // HWq
    t = offs_m % HWq
    i = t // tl.maximum(Wq, 1)
    j = t % tl.maximum(Wq, 1)

    # The taps of this phase: kh*dh = qh + ph (mod sh). Solvable iff
    # gh = gcd(dh, sh) divides qh + ph; then kh = kh0 + u*step_h, u < nth.
    step_h = sh // gh
    step_w = sw // gw
    kh0 = ((qh + ph) // gh % step_h) * inv_h % step_h
    kw0 = ((qw + pw) // gw % step_w) * inv_w % step_w
    nth = tl.where((qh + ph) % gh == 0, (KH - kh0 + step_h - 1) // step_h, 0)
    ntw = tl.where((qw + pw) % gw == 0, (KW - kw0 + step_w - 1) // step_w, 0)

    OHW = OH * OW
    KHKW = KH * KW
    dy_img = n * (K * OHW)
    w_col = offs_c * KHKW  # w[k, c, kh, kw] = k*Cg*KHKW + c*KHKW + kh*KW + kw
    dy_chan = offs_k * OHW  # channel offsets, hoisted out of every loop
    w_chan = offs_k * (Cg * KHKW)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=dx_ptr.dtype.element_ty)
    for uh in range(0, nth):
        kh = kh0 + uh * step_h
        oh = i + (qh + ph - kh * dh) // sh  # exact division: same in C and Python
        h_ok = m_ok & (oh >= 0) & (oh < OH)
        for uw in range(0, ntw):
            kw = kw0 + uw * step_w
            ow = j + (qw + pw - kw * dw) // sw
            pix_ok = h_ok & (ow >= 0) & (ow < OW)
            # Channel block k0 of dy moves the bases by k0*OH*OW (dy) and
            # k0*Cg*KH*KW (w): matmul's GEMM loop over the group's Kg channels.
            a_off = (dy_img + oh * OW + ow)[:, None] + dy_chan[None, :]
            b_off = w_chan[:, None] + (w_col + kh * KW + kw)[None, :]
            acc = gemm_loop(acc, dy_ptr, a_off, pix_ok, OHW, w_ptr, b_off, c_ok, Cg * KHKW,
                            Kg, BLOCK_K, USE_DOT, PRECISION)

    # Every pixel of the phase is stored, 0 where no tap reached it.
    ih = qh + i * sh
    iw = qw + j * sw
    dx_off = (n * (C * H * W) + ih * W + iw)[:, None] + (offs_c * (H * W))[None, :]
    tl.store(dx_ptr + dx_off, acc, mask=m_ok[:, None] & c_ok[None, :])


@triton.jit
def _conv2d_wgrad_kernel(
        dy_ptr, x_ptr, out_ptr,
        N, C, H, W, K, OH, OW, KH, KW,
        sh, sw, ph, pw, dh, dw, G,
        CHUNK,
        GROUPED: tl.constexpr, USE_DOT: tl.constexpr, PRECISION: tl.constexpr,
        BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_P: tl.constexpr):
    # Tile: BLOCK_K output channels of one group x BLOCK_R columns r = (c, kh, kw),
    # summed over reduction elements p = (n, oh, ow) in [split*CHUNK, (split+1)*CHUNK).
    pid_k = tl.program_id(0)
    pid_r = tl.program_id(1)
    split = tl.program_id(2)
    KHKW = KH * KW
    if GROUPED:  # axis 0 = (group, channel tile): move the bases to group g's channels
        Cg = C // G
        Kg = K // G
        tiles_k = tl.cdiv(Kg, BLOCK_K)
        g = pid_k // tiles_k
        pid_k = pid_k - g * tiles_k
        dy_ptr += g * Kg * OH * OW          # output channels [g*Kg, (g+1)*Kg)
        x_ptr += g * Cg * H * W             # input channels [g*Cg, (g+1)*Cg)
        out_ptr += g * Kg * (Cg * KHKW)     # rows [g*Kg, (g+1)*Kg) of each (K, R) partial
    else:
        Cg = C
        Kg = K
    R = Cg * KHKW  # dw (K, Cg, KH, KW) seen as a (K, R) matrix
    OHW = OH * OW
    P = N * OHW
    offs_k = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    offs_r = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    offs_p = tl.arange(0, BLOCK_P)
    k_ok = offs_k < Kg
    r_ok = offs_r < R
    # Decode the columns once: (c, kh, kw) and their share of the x address.
    # Input row ih = oh*sh + kh_off is in [0, H) iff oh*sh is in
    # [lo_h, hi_h) = [-kh_off, H - kh_off); columns past R get an empty range.
    c = offs_r // KHKW
    tap = offs_r % KHKW
    kh_off = (tap // KW) * dh - ph
    kw_off = (tap % KW) * dw - pw
    x_col = c * (H * W) + kh_off * W + kw_off
    lo_h = -kh_off
    hi_h = tl.where(r_ok, H - kh_off, lo_h)
    lo_w = -kw_off
    hi_w = W - kw_off
    dy_chan = offs_k * OHW

    # The reduction axis p = (n, oh, ow) is decoded by division at every step,
    # so its addresses are not affine in p: this loop is not matmul's
    # gemm_loop, but its block product is.
    acc = tl.zeros((BLOCK_K, BLOCK_R), dtype=out_ptr.dtype.element_ty)
    p_lo = split * CHUNK
    p_hi = tl.minimum(p_lo + CHUNK, P)
    for p0 in range(p_lo, p_hi, BLOCK_P):
        p = p0 + offs_p
        p_ok = p < p_hi
        n = p // OHW
        s = p - n * OHW
        oh = s // OW
        ow = s - oh * OW
        a = tl.load(dy_ptr + dy_chan[:, None] + (n * (K * OHW) + s)[None, :],
                    mask=k_ok[:, None] & p_ok[None, :], other=0.0)
        ohs = oh * sh
        ows = ow * sw
        x_ok = (p_ok[:, None] & (ohs[:, None] >= lo_h[None, :]) & (ohs[:, None] < hi_h[None, :])
                & (ows[:, None] >= lo_w[None, :]) & (ows[:, None] < hi_w[None, :]))
        b = tl.load(x_ptr + (n * (C * H * W) + ohs * W + ows)[:, None] + x_col[None, :],
                    mask=x_ok, other=0.0)
        acc = block_product(acc, a, b, USE_DOT, PRECISION)

    out_off = split * (K * R) + (offs_k * R)[:, None] + offs_r[None, :]
    tl.store(out_ptr + out_off, acc, mask=k_ok[:, None] & r_ok[None, :])


@triton.jit
def _splitk_reduce_kernel(ws_ptr, out_ptr, S, L, BLOCK: tl.constexpr):
    # out[e] = ws[0, e] + ws[1, e] + ... + ws[S-1, e], always in that order.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < L
    acc = tl.zeros((BLOCK,), dtype=out_ptr.dtype.element_ty)
    for s in range(0, S):
        acc += tl.load(ws_ptr + s * L + offs, mask=ok, other=0.0)
    tl.store(out_ptr + offs, acc, mask=ok)


@triton.jit
def _conv2d_bgrad_kernel(dy_ptr, db_ptr, N, K, HW, BLOCK: tl.constexpr):
    # db[k] = sum over n, then over the OH*OW plane, of dy[n, k]; fixed order.
    k = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros((BLOCK,), dtype=db_ptr.dtype.element_ty)
    for n in range(0, N):
        plane = dy_ptr + (n * K + k) * HW
        for s0 in range(0, HW, BLOCK):
            s = s0 + offs
            acc += tl.load(plane + s, mask=s < HW, other=0.0)
    tl.store(db_ptr + k, tl.sum(acc, axis=0))


# ---------------------------------------------------------------- launchers

# float64's broadcast product needs small tiles on a GPU (registers). The
# interpreter has no registers and pays per tl operation, not per element, so
# there float64 takes float32's larger tiles: 3-6x faster on the test shapes.
# (matmul.py, whose block rule `gemm_blocks` this module uses, has the same switch.)
PLAN = Plan(__name__, common.INTERPRET, gpu={"_FP64_SMALL_TILES": True},
            simulator={"_FP64_SMALL_TILES": False},
            why="no registers in the interpreter, which pays per tl operation: float64 "
                "takes float32's larger tiles, 3-6x faster on the test shapes")
(_FP64_SMALL_TILES,) = PLAN.current("_FP64_SMALL_TILES")


def conv2d_forward(x, w, b, stride, padding, dilation, groups=1):
    """y = conv2d(x, w) + b: x (N, C, H, W), w (K, C/groups, KH, KW), b (K,) or None."""
    op = "conv2d_forward"
    dtype, shape = check_forward(op, x, w, b, stride, padding, dilation, groups=groups)
    N, C, K, OH, OW = shape.N, shape.C, shape.K, shape.OH, shape.OW
    y = common.empty((N, K, OH, OW), dtype)
    M = N * OH * OW
    if M == 0 or K == 0:
        return y
    dot, fp64 = dot_args(dtype)
    G = int(groups)
    BM, BN, BC = gemm_blocks(M, K // G, C // G, fp64 and _FP64_SMALL_TILES)
    grid = (common.cdiv(M, BM), G * common.cdiv(K // G, BN))
    _conv2d_forward_kernel[grid](
        common.ptr(x), common.ptr(w), common.ptr(b if b is not None else w), common.ptr(y),
        *shape, G,
        HAS_BIAS=b is not None, GROUPED=G > 1, BLOCK_M=BM, BLOCK_N=BN, BLOCK_C=BC, **dot,
        **launch_opts(BM, BN))
    return y


def conv2d_backward_input(dy, w, input_hw, stride, padding, dilation, groups=1):
    """dx (N, C, *input_hw), the gradient of conv2d w.r.t. x; dy (N, K, OH, OW),
    w (K, C/groups, KH, KW)."""
    op = "conv2d_backward_input"
    dtype, shape = check_backward_input(op, dy, w, input_hw, stride, padding, dilation,
                                        groups=groups)
    N, C, H, W, K, sh, sw = shape.N, shape.C, shape.H, shape.W, shape.K, shape.sh, shape.sw
    dx = common.empty((N, C, H, W), dtype)
    M = N * common.cdiv(H, sh) * common.cdiv(W, sw)  # the largest phase
    if M == 0 or C == 0:
        return dx
    dot, fp64 = dot_args(dtype)
    G = int(groups)
    BM, BN, BK = gemm_blocks(M, C // G, K // G, fp64 and _FP64_SMALL_TILES)
    grid = (common.cdiv(M, BM), G * common.cdiv(C // G, BN), sh * sw)
    _conv2d_dgrad_kernel[grid](
        common.ptr(dy), common.ptr(w), common.ptr(dx),
        *shape, G, *phase_taps(shape),
        GROUPED=G > 1, BLOCK_M=BM, BLOCK_N=BN, BLOCK_K=BK, **dot, **launch_opts(BM, BN))
    return dx


def conv2d_backward_weight(dy, x, kernel_hw, stride, padding, dilation, groups=1, *,
                           splits=None):
    """dw (K, C/groups, *kernel_hw), the gradient of conv2d w.r.t. w.

    OH, OW are dy's: they may be smaller than x would give (the transposed
    conv's weight gradient passes such a pair); taps off x read zero.
    `splits` forces the split-K factor S (for tests); None uses the heuristic.
    """
    op = "conv2d_backward_weight"
    dtype, shape = check_backward_weight(op, dy, x, kernel_hw, stride, padding, dilation,
                                         groups=groups)
    G = int(groups)
    K, Cg, KH, KW = shape.K, shape.C // G, shape.KH, shape.KW
    Kg, R, P = K // G, Cg * KH * KW, shape.N * shape.OH * shape.OW
    grad_w = common.empty((K, Cg, KH, KW), dtype)  # not `dw`: that is the dilation
    if K == 0 or R == 0:
        return grad_w
    dot, fp64 = dot_args(dtype)
    if fp64 and _FP64_SMALL_TILES:
        BK, BR, BP = clamp_pow2(Kg, 16, 32), clamp_pow2(R, 16, 32), 8
    else:
        BK, BR, BP = clamp_pow2(Kg, 16, 64), clamp_pow2(R, 16, 64), 32
    tiles_k = G * common.cdiv(Kg, BK)  # grid axis 0: (group, channel tile)
    S, chunk = splitk_plan(op, P, K, R, tiles_k * common.cdiv(R, BR), BP, splits)
    out = grad_w if S == 1 else common.empty((S, K, R), dtype)
    _conv2d_wgrad_kernel[(tiles_k, common.cdiv(R, BR), S)](
        common.ptr(dy), common.ptr(x), common.ptr(out),
        *shape, G, chunk,
        GROUPED=G > 1, BLOCK_K=BK, BLOCK_R=BR, BLOCK_P=BP, **dot, **launch_opts(BK, BR))
    if S > 1:
        L = K * R
        BLOCK = 1024
        _splitk_reduce_kernel[(common.cdiv(L, BLOCK),)](
            common.ptr(out), common.ptr(grad_w), S, L, BLOCK=BLOCK)
    return grad_w


def conv2d_backward_bias(dy):
    """db (K,): dy (N, K, OH, OW) summed over N, OH and OW."""
    op = "conv2d_backward_bias"
    check_ndim(op, "dy", dy, 4)
    dtype = check_arrays(op, dy=dy)
    N, K, OH, OW = dy.shape
    db = common.empty((K,), dtype)
    if K == 0:
        return db
    HW = OH * OW
    _conv2d_bgrad_kernel[(K,)](common.ptr(dy), common.ptr(db), N, K, HW,
                               BLOCK=clamp_pow2(HW, 16, 1024))
    return db
