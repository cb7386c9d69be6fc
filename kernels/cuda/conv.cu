// conv.cu: conv2d forward, input, weight and bias gradients as implicit GEMMs.
//
// Shapes (NCHW, contiguous), as in kernels/triton/conv.py, whose docstring
// derives the algorithms at length:
//     x  (N, C, H, W)    w  (K, C, KH, KW)    y, dy  (N, K, OH, OW)
//     stride (sh, sw), padding (ph, pw), dilation (dh, dw)
// Tap (kh, kw) of output pixel (oh, ow) reads input pixel
//     ih = oh*sh - ph + kh*dh,   iw = ow*sw - pw + kw*dw
// and reads zero where that falls outside the image (the padding).
//
// Each conv kernel is a GEMM C[m, n] = sum_r A[m, r] * B[r, n] whose
// operands are never materialised (no im2col buffer, no zero-stuffed
// gradient): a "problem" struct knows, for its GEMM, which address of x, w or
// dy holds A(m, r) and B(r, n) (or that it is a zero: padding, taps off the
// image, tile tails), and where C(m, n) goes. One GEMM main loop per version
// runs all three problems:
//
//   problem     M (rows)               N (cols)        reduction r          C stored to
//   ConvFwd     pixels (n, oh, ow)     out channels K  (tap, c)             y (+ bias)
//   ConvDgrad   pixels (n, i, j) of    in channels C   (matching tap, k)    dx
//               one stride phase
//   ConvWgrad   out channels K         (c, kh, kw)     pixels (n, oh, ow)   dw, or its
//                                                      of one split-K chunk split-K workspace
//
// Kernels (grid; block = the version's THREADS):
//   conv2d_fwd_v1<T, BN>    / conv2d_fwd_v2<BN>     grid (M/BM, K/BN)
//   conv2d_dgrad_v1<T, BN>  / conv2d_dgrad_v2<BN>   grid (M/BM, C/BN, sh*sw): z = the phase
//   conv2d_wgrad_v1<T, BN>  / conv2d_wgrad_v2<BN>   grid (K/BM, R/BN, S):     z = the split
//   splitk_reduce<T>   dw[e] = ws[0, e] + ws[1, e] + ... + ws[S-1, e], in that order.
//                      Grid (K*R/256,), 256 threads; skipped when S = 1.
//   conv2d_bgrad<T>    db[k] = sum of dy[:, k], one 256-thread block per channel,
//                      fixed order (strided per-thread sums, then a fixed tree).
// BN picks the tile shape: 64 (a 64 x 64 tile) for most layers, 8 (a
// 128 x 8 tile) when the GEMM has <= 8 columns, i.e. an RGB layer's input
// gradient or a conv with <= 8 output channels: a 64-wide tile would spend
// 61/64 of its work on a 3-channel image's masked columns.
//
// Forward. A tile's reduction is walked tap-major: step s covers tap
// s / cblocks and channels [c0, c0 + BK) with c0 = BK * (s % cblocks). With
// the tap fixed, a pixel's input address and in-image test are computed once
// per step, and the BK channels of that step are that address plus c*H*W.
//
// Input gradient, by stride phase. dx[n, c, ih, iw] sums dy[n, k, oh, ow] *
// w[k, c, kh, kw] over the taps with ih = oh*sh - ph + kh*dh for an integer
// oh. Input pixels are split by phase (qh, qw) = (ih mod sh, iw mod sw); in one
// phase the contributing kh are exactly those with kh*dh = qh + ph (mod sh):
// none unless g = gcd(dh, sh) divides qh + ph, else kh0, kh0 + sh/g, ... with
//     kh0 = ((qh + ph)/g * inv(dh/g mod sh/g)) mod sh/g
// (the launcher passes g and the modular inverse). For pixel ih = qh + i*sh,
// tap kh reads dy row oh = i + (qh + ph - kh*dh)/sh (an exact division), a
// fixed shift of i, so each phase is a dense GEMM over (matching taps) x K.
// All phases run in one launch (blockIdx.z); a phase with no matching tap, or
// pixels no tap reaches (input_hw larger than the conv reads), gets zeros, so
// every dx element is written exactly once. No zero-stuffing: stride 2 would
// multiply 3 zeros for every useful product. This kernel is also the
// transposed conv's forward, hence correct for any stride, padding, dilation
// and input_hw.
//
// Weight gradient, split-K. dw[k, r] = sum over p = (n, oh, ow) of
// dy[n, k, oh, ow] * x[n, c, ih, iw]: a small output (K x C*KH*KW) and a long
// reduction (N*OH*OW, 131k in DCGAN's first layer), so the reduction is cut
// into S chunks (blockIdx.z), each block writes its partial tile to a workspace
// (S, K, R), and splitk_reduce sums the partials in the fixed order 0..S-1:
// no atomics, bitwise reproducible. S comes from launch_checks.splitk (a pure
// function of the shapes); with S = 1 the GEMM writes dw directly. OH, OW are
// dy's; they may be smaller than x gives (taps off x read zero).
//
// Two versions of the GEMM main loop (issue #5), selected by the launcher
// (conv.py: NN_CUPY_PRECISION / set_precision, or version=):
//
//   version 1: shared-memory tiled SIMT GEMM, templated over float and double.
//     Why: the baseline that is exact in both precisions (float64 runs are
//     what the gradient checks need). A block of THREADS threads owns a
//     BM x BN tile of C; per step every thread gathers its share of the
//     BM x BK slice of A and the BK x BN slice of B from global memory into
//     registers (masks give the zeros), stores them to shared memory, and
//     after a barrier each thread accumulates its own TM x TN register tile
//     (64x64 tile: 256 threads, 4x4 each; 128x8 tile: 128 threads, 8x1):
//     each A/B value read from shared memory feeds TN/TM fused multiply-adds.
//     The next step's global loads are issued before the current step's
//     multiply-adds, so their latency hides behind the arithmetic. The
//     thread<->element maps make global loads coalesced along whichever axis
//     is contiguous in memory (pixels for x and dy, the reduction axis of the
//     weight gradient), and shared reads conflict-free (a warp reads
//     consecutive rows or broadcasts one).
//   version 2: TF32 tensor cores (mma.sync m16n8k8), float only.
//     Why: an H100 does ~7x more TF32 tensor-core FLOPs than fp32 FMA ones;
//     the price is TF32's 10-bit mantissa on the inputs (each rounded by up
//     to 2^-11; products exact, sums in fp32): an output's error is bounded
//     by ~2^-10 of sum |a*b|, ~3e-4 relative on random data, where version 1
//     gives ~1e-7. Same problems,
//     same gathers and same tiles; what changes is the inner loop: four
//     warps per block, each owning a 32 x 32 (64x64 tile) or 32 x 8 (128x8
//     tile) sub-tile made of 16x8 mma tiles, and operands converted to TF32
//     (cvt.rna) once, as they are stored to shared memory, rather than by
//     every warp that reads them. Row strides of the shared tiles are
//     = 8 (mod 32) words, so a fragment load (lanes g = 0..7 along rows,
//     t = 0..3 along k) hits 32 distinct banks.
//
// Every reduction has a fixed order and there are no atomics, so two runs
// give bitwise equal results (for a given version and tile shape).
// Indexing is int32: the launchers refuse arrays of 2**31 elements or more.
#include "common.cuh"

namespace conv {

// --------------------------------------------------------------- the shape
struct Shape {
    int N, C, H, W, K, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw;
};

// ------------------------------------------------------------ tile configs
// BM x BN output tile, BK reduction elements per step, THREADS per block.
template <int BM_, int BN_, int BK_, int THREADS_>
struct Tile {
    static constexpr int BM = BM_, BN = BN_, BK = BK_, THREADS = THREADS_;
};

// Version 1: each thread owns a TM x TN register tile.
template <int BN> struct SimtTile;
template <> struct SimtTile<64> : Tile<64, 64, 16, 256> { static constexpr int TM = 4, TN = 4; };
template <> struct SimtTile<8> : Tile<128, 8, 16, 128> { static constexpr int TM = 8, TN = 1; };

// Version 2: WARPS_M x WARPS_N warps, each owning a (BM/WARPS_M) x (BN/WARPS_N)
// block of 16x8 mma tiles.
template <int BN> struct MmaTile;
template <> struct MmaTile<64> : Tile<64, 64, 16, 128> { static constexpr int WARPS_M = 2, WARPS_N = 2; };
template <> struct MmaTile<8> : Tile<128, 8, 16, 128> { static constexpr int WARPS_M = 4, WARPS_N = 1; };

// Which elements of a ROWS x BK operand slice thread t gathers (E of them,
// e = 0..E-1). ALONG_ROWS: consecutive threads take consecutive rows, and a
// thread keeps one row for every e (good when rows are contiguous in memory:
// output pixels). Otherwise consecutive threads take consecutive reduction
// indices and a thread keeps one k (the weight gradient's pixel axis).
template <int ROWS, int BK, int THREADS, bool ALONG_ROWS>
struct Spread {
    static constexpr int E = ROWS * BK / THREADS;
    static_assert(E >= 1 && E * THREADS == ROWS * BK, "tile must split evenly over the threads");
    static_assert(ALONG_ROWS ? THREADS % ROWS == 0 : THREADS % BK == 0,
                  "a thread must keep one row (one k) for all its elements");
    __device__ static int row(int t, int e) {
        return ALONG_ROWS ? t % ROWS : t / BK + e * (THREADS / BK);
    }
    __device__ static int k(int t, int e) {
        return ALONG_ROWS ? t / ROWS + e * (THREADS / ROWS) : t % BK;
    }
};

// -------------------------------------------------------------- problems
// Each problem is built by every thread at kernel start and provides:
//   SA, SB      the Spread of A's (BM x BK) and B's (BK x BN, rows = n) slices;
//   C_ALONG_M   whether C is contiguous along m (picks the thread layout of
//               the SIMT epilogue, so stores coalesce);
//   M, N, m0, n0, steps    GEMM size, this block's origin, reduction steps;
//   load(s, a, b)          this thread's elements of step s's slices;
//   out + row_offset(m) + col_offset(n)   where C(m, n) goes; bias (or null)
//               is added per column.
// Rows/columns past M/N, taps off the image and reduction tails load 0.

// Forward: A(m, (tap, c)) = x[n, c, ih, iw], B((tap, c), k) = w[k, c, kh, kw].
template <typename T, class Cfg>
struct ConvFwd {
    using SA = Spread<Cfg::BM, Cfg::BK, Cfg::THREADS, true>;   // x: along pixels
    using SB = Spread<Cfg::BN, Cfg::BK, Cfg::THREADS, false>;  // w: along channels
    static constexpr bool C_ALONG_M = true;                    // y: along pixels
    const T* x;
    const T* w;
    T* out;
    const T* bias;
    Shape s;
    int M, N, m0, n0, steps, cblocks, t;
    bool a_ok;          // this thread's pixel exists
    int x_img, ih0, iw0;  // its image offset and the input row/col tap (0, 0) reads

    __device__ ConvFwd(const T* x_, const T* w_, const T* b_, T* y_, const Shape& s_)
        : x(x_), w(w_), out(y_), bias(b_), s(s_) {
        M = s.N * s.OH * s.OW;
        N = s.K;
        m0 = blockIdx.x * Cfg::BM;
        n0 = blockIdx.y * Cfg::BN;
        cblocks = nn::cdiv(s.C, Cfg::BK);
        steps = s.KH * s.KW * cblocks;
        t = threadIdx.x;
        const int m = m0 + SA::row(t, 0);
        a_ok = m < M;
        const int OHW = s.OH * s.OW;
        const int n = m / OHW, pix = m % OHW;
        x_img = n * s.C * s.H * s.W;
        ih0 = (pix / s.OW) * s.sh - s.ph;
        iw0 = (pix % s.OW) * s.sw - s.pw;
    }

    __device__ void load(int step, T (&a)[SA::E], T (&b)[SB::E]) const {
        const int tap = step / cblocks, c0 = (step % cblocks) * Cfg::BK;
        const int kh = tap / s.KW, kw = tap % s.KW;
        const int ih = ih0 + kh * s.dh, iw = iw0 + kw * s.dw;
        const bool ok = a_ok && ih >= 0 && ih < s.H && iw >= 0 && iw < s.W;
        const int HW = s.H * s.W, base = x_img + ih * s.W + iw;
#pragma unroll
        for (int e = 0; e < SA::E; ++e) {
            const int c = c0 + SA::k(t, e);
            a[e] = ok && c < s.C ? x[base + c * HW] : T(0);
        }
        const int KHKW = s.KH * s.KW;
        const int c = c0 + SB::k(t, 0);  // one channel per thread
        const bool c_ok = c < s.C;
        const int w_off = c * KHKW + tap;
#pragma unroll
        for (int e = 0; e < SB::E; ++e) {
            const int k = n0 + SB::row(t, e);
            b[e] = c_ok && k < s.K ? w[k * s.C * KHKW + w_off] : T(0);
        }
    }

    __device__ int row_offset(int m) const {
        const int OHW = s.OH * s.OW;
        return (m / OHW) * s.K * OHW + m % OHW;
    }
    __device__ int col_offset(int k) const { return k * s.OH * s.OW; }
};

// Input gradient of phase blockIdx.z = qh*sw + qw:
// A((n, i, j), (tap, k)) = dy[n, k, oh, ow], B((tap, k), c) = w[k, c, kh, kw].
template <typename T, class Cfg>
struct ConvDgrad {
    using SA = Spread<Cfg::BM, Cfg::BK, Cfg::THREADS, true>;  // dy: along pixels
    using SB = Spread<Cfg::BN, Cfg::BK, Cfg::THREADS, true>;  // w: along input channels
    static constexpr bool C_ALONG_M = true;                   // dx: along pixels (stride sw)
    const T* dy;
    const T* w;
    T* out;
    const T* bias = nullptr;
    Shape s;
    int M, N, m0, n0, steps, t;
    int qh, qw, Hq, Wq;                   // the phase and its pixel grid
    int kh0, step_h, kw0, step_w, ntw;    // its taps: kh = kh0 + u*step_h, u < nth
    int kblocks;
    bool a_ok, b_ok;
    int dy_img, i, j, w_col;

    __device__ ConvDgrad(const T* dy_, const T* w_, T* dx_, const Shape& s_, int gh, int gw,
                         int inv_h, int inv_w)
        : dy(dy_), w(w_), out(dx_), s(s_) {
        qh = blockIdx.z / s.sw;
        qw = blockIdx.z % s.sw;
        Hq = (s.H - qh + s.sh - 1) / s.sh;  // 0 when qh >= H (image smaller than the stride)
        Wq = (s.W - qw + s.sw - 1) / s.sw;
        M = s.N * Hq * Wq;
        N = s.C;
        m0 = blockIdx.x * Cfg::BM;
        n0 = blockIdx.y * Cfg::BN;
        // Taps: kh*dh = qh + ph (mod sh). Solvable iff gh | qh + ph.
        step_h = s.sh / gh;
        step_w = s.sw / gw;
        kh0 = ((qh + s.ph) / gh % step_h) * inv_h % step_h;
        kw0 = ((qw + s.pw) / gw % step_w) * inv_w % step_w;
        const int nth = (qh + s.ph) % gh == 0 ? (s.KH - kh0 + step_h - 1) / step_h : 0;
        ntw = (qw + s.pw) % gw == 0 ? (s.KW - kw0 + step_w - 1) / step_w : 0;
        kblocks = nn::cdiv(s.K, Cfg::BK);
        steps = nth * ntw * kblocks;  // 0: no tap reaches this phase, dx = 0
        t = threadIdx.x;
        const int m = m0 + SA::row(t, 0);
        a_ok = m < M;
        const int HWq = nn::max_(Hq * Wq, 1), Wq1 = nn::max_(Wq, 1);
        dy_img = (m / HWq) * s.K * s.OH * s.OW;
        i = m % HWq / Wq1;
        j = m % HWq % Wq1;
        const int c = n0 + SB::row(t, 0);
        b_ok = c < s.C;
        w_col = c * s.KH * s.KW;
    }

    __device__ void load(int step, T (&a)[SA::E], T (&b)[SB::E]) const {
        const int u = step / kblocks, k0 = (step % kblocks) * Cfg::BK;
        const int kh = kh0 + (u / ntw) * step_h, kw = kw0 + (u % ntw) * step_w;
        // Exact divisions (kh*dh = qh + ph mod sh), so C's truncation is harmless.
        const int oh = i + (qh + s.ph - kh * s.dh) / s.sh;
        const int ow = j + (qw + s.pw - kw * s.dw) / s.sw;
        const bool ok = a_ok && oh >= 0 && oh < s.OH && ow >= 0 && ow < s.OW;
        const int OHW = s.OH * s.OW, base = dy_img + oh * s.OW + ow;
#pragma unroll
        for (int e = 0; e < SA::E; ++e) {
            const int k = k0 + SA::k(t, e);
            a[e] = ok && k < s.K ? dy[base + k * OHW] : T(0);
        }
        const int CKK = s.C * s.KH * s.KW, w_off = w_col + kh * s.KW + kw;
#pragma unroll
        for (int e = 0; e < SB::E; ++e) {
            const int k = k0 + SB::k(t, e);
            b[e] = b_ok && k < s.K ? w[k * CKK + w_off] : T(0);
        }
    }

    __device__ int row_offset(int m) const {
        const int HWq = Hq * Wq;  // > 0 here: rows are only stored when m < M
        const int r = m % HWq;
        return (m / HWq) * s.C * s.H * s.W + (qh + r / Wq * s.sh) * s.W + qw + r % Wq * s.sw;
    }
    __device__ int col_offset(int c) const { return c * s.H * s.W; }
};

// Weight gradient, split blockIdx.z of the reduction:
// A(k, p) = dy[n, k, oh, ow], B(p, (c, kh, kw)) = x[n, c, ih, iw], p = (n, oh, ow).
template <typename T, class Cfg>
struct ConvWgrad {
    using SA = Spread<Cfg::BM, Cfg::BK, Cfg::THREADS, false>;  // dy: along pixels p
    using SB = Spread<Cfg::BN, Cfg::BK, Cfg::THREADS, false>;  // x: along pixels p
    static constexpr bool C_ALONG_M = false;                   // dw: along r
    static constexpr int OFF = -(1 << 28);  // a tap offset no pixel passes: columns >= R
    const T* dy;
    const T* x;
    T* out;
    const T* bias = nullptr;
    Shape s;
    int M, N, m0, n0, steps, t, p_lo, p_hi;
    // This thread's columns r = (c, kh, kw): x offset c*H*W + (kh*dh - ph)*W + kw*dw - pw,
    // and the row/column shifts kh*dh - ph, kw*dw - pw (OFF past R).
    int x_col[SB::E], h_off[SB::E], w_off[SB::E];

    __device__ ConvWgrad(const T* dy_, const T* x_, T* out_, const Shape& s_, int chunk)
        : dy(dy_), x(x_), out(out_), s(s_) {
        const int KHKW = s.KH * s.KW;
        M = s.K;
        N = s.C * KHKW;
        m0 = blockIdx.x * Cfg::BM;
        n0 = blockIdx.y * Cfg::BN;
        p_lo = blockIdx.z * chunk;
        p_hi = nn::min_(p_lo + chunk, s.N * s.OH * s.OW);
        steps = p_hi > p_lo ? nn::cdiv(p_hi - p_lo, Cfg::BK) : 0;
        out += blockIdx.z * M * N;  // this split's slice of the workspace (or dw itself)
        t = threadIdx.x;
#pragma unroll
        for (int e = 0; e < SB::E; ++e) {
            const int r = n0 + SB::row(t, e);
            const int c = r / KHKW, tap = r % KHKW;
            h_off[e] = r < N ? (tap / s.KW) * s.dh - s.ph : OFF;
            w_off[e] = (tap % s.KW) * s.dw - s.pw;
            x_col[e] = c * s.H * s.W + h_off[e] * s.W + w_off[e];
        }
    }

    __device__ void load(int step, T (&a)[SA::E], T (&b)[SB::E]) const {
        const int p = p_lo + step * Cfg::BK + SA::k(t, 0);  // one pixel per thread
        const bool ok = p < p_hi;
        const int OHW = s.OH * s.OW;
        const int n = p / OHW, pix = p % OHW;
        const int dy_pix = n * s.K * OHW + pix;
#pragma unroll
        for (int e = 0; e < SA::E; ++e) {
            const int k = m0 + SA::row(t, e);
            a[e] = ok && k < s.K ? dy[dy_pix + k * OHW] : T(0);
        }
        const int ohs = (pix / s.OW) * s.sh, ows = (pix % s.OW) * s.sw;
        const int x_pix = n * s.C * s.H * s.W + ohs * s.W + ows;
#pragma unroll
        for (int e = 0; e < SB::E; ++e) {
            const int ih = ohs + h_off[e], iw = ows + w_off[e];
            b[e] = ok && ih >= 0 && ih < s.H && iw >= 0 && iw < s.W ? x[x_pix + x_col[e]] : T(0);
        }
    }

    __device__ int row_offset(int k) const { return k * N; }
    __device__ int col_offset(int r) const { return r; }
};

// -------------------------------------------------- version 1: SIMT GEMM
// C tile += A slice x B slice, one BK step at a time: gather (registers) ->
// shared memory -> barrier -> TM x TN register tile of FMAs -> barrier. The
// gather of step s+1 is issued before step s's FMAs (a register double
// buffer), so one shared buffer suffices. float and double alike.
template <typename T, class Cfg, class Prob>
__device__ __forceinline__ void gemm_simt(const Prob& p) {
    constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, TM = Cfg::TM, TN = Cfg::TN;
    constexpr int THREADS_M = BM / TM, THREADS_N = BN / TN;
    static_assert(THREADS_M * THREADS_N == Cfg::THREADS, "register tiles must cover the tile");
    using SA = typename Prob::SA;
    using SB = typename Prob::SB;
    // +1: a warp storing along k (stride BM+1) spreads over the banks.
    __shared__ T As[BK][BM + 1];
    __shared__ T Bs[BK][BN + 1];
    const int t = threadIdx.x;
    // This thread's outputs: rows tm + i*THREADS_M, columns tn + j*THREADS_N.
    // Consecutive threads take consecutive rows when C is contiguous along m
    // (coalesced stores), else consecutive columns.
    const int tm = Prob::C_ALONG_M ? t % THREADS_M : t / THREADS_N;
    const int tn = Prob::C_ALONG_M ? t / THREADS_M : t % THREADS_N;

    T acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

    T a[SA::E], b[SB::E];
    if (p.steps > 0) p.load(0, a, b);
    for (int step = 0; step < p.steps; ++step) {  // p.steps is uniform over the block
#pragma unroll
        for (int e = 0; e < SA::E; ++e) As[SA::k(t, e)][SA::row(t, e)] = a[e];
#pragma unroll
        for (int e = 0; e < SB::E; ++e) Bs[SB::k(t, e)][SB::row(t, e)] = b[e];
        __syncthreads();
        if (step + 1 < p.steps) p.load(step + 1, a, b);  // in flight during the FMAs
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            T ra[TM], rb[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) ra[i] = As[k][tm + i * THREADS_M];
#pragma unroll
            for (int j = 0; j < TN; ++j) rb[j] = Bs[k][tn + j * THREADS_N];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = nn::fma_(ra[i], rb[j], acc[i][j]);
        }
        __syncthreads();  // before the next step overwrites As/Bs
    }

#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int m = p.m0 + tm + i * THREADS_M;
        if (m >= p.M) continue;
        const int row = p.row_offset(m);
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int n = p.n0 + tn + j * THREADS_N;
            if (n < p.N) p.out[row + p.col_offset(n)] = p.bias ? acc[i][j] + p.bias[n] : acc[i][j];
        }
    }
}

// ------------------------------------------ version 2: TF32 tensor cores
// What changes from version 1: the inner product. Operands go to shared
// memory already rounded to TF32; each warp then loads, per 8-deep k slice,
// MT A fragments and NT B fragments and issues MT*NT mma.sync m16n8k8 into
// fp32 accumulators: 16*8*8 = 1024 multiply-adds per warp instruction where
// version 1's FMA does 32. Gathers, masks, barriers and the register double
// buffer are version 1's. float only.
template <class Cfg, class Prob>
__device__ __forceinline__ void gemm_tf32(const Prob& p) {
    constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK;
    constexpr int WM = BM / Cfg::WARPS_M, WN = BN / Cfg::WARPS_N;  // one warp's sub-tile
    constexpr int MT = WM / 16, NT = WN / 8;                         // its 16x8 mma tiles
    static_assert(Cfg::WARPS_M * Cfg::WARPS_N * 32 == Cfg::THREADS, "one warp per sub-tile");
    static_assert(MT * 16 == WM && NT * 8 == WN && BK % 8 == 0, "sub-tiles of whole mma tiles");
    using SA = typename Prob::SA;
    using SB = typename Prob::SB;
    // TF32 bit patterns, converted once on the way in. Row strides are the
    // smallest >= BM (BN) that are 8 (mod 32) words: a fragment load (rows
    // g = 0..7 x k-rows q = 0..3 per warp) then hits 32 distinct banks.
    constexpr int SA_STRIDE = BM + (40 - BM % 32) % 32, SB_STRIDE = BN + (40 - BN % 32) % 32;
    __shared__ unsigned As[BK][SA_STRIDE];
    __shared__ unsigned Bs[BK][SB_STRIDE];
    const int t = threadIdx.x;
    const int warp = t / 32, lane = t % 32, g = lane / 4, q = lane % 4;
    const int wm = (warp % Cfg::WARPS_M) * WM, wn = (warp / Cfg::WARPS_M) * WN;

    float acc[MT][NT][4];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

    float a[SA::E], b[SB::E];
    if (p.steps > 0) p.load(0, a, b);
    for (int step = 0; step < p.steps; ++step) {
#pragma unroll
        for (int e = 0; e < SA::E; ++e) As[SA::k(t, e)][SA::row(t, e)] = nn::to_tf32(a[e]);
#pragma unroll
        for (int e = 0; e < SB::E; ++e) Bs[SB::k(t, e)][SB::row(t, e)] = nn::to_tf32(b[e]);
        __syncthreads();
        if (step + 1 < p.steps) p.load(step + 1, a, b);
#pragma unroll
        for (int k = 0; k < BK; k += 8) {
            // Fragments in the PTX layout (common.cuh): A row g / g+8, col q / q+4;
            // B row (k) q / q+4, col g.
            unsigned af[MT][4], bf[NT][2];
#pragma unroll
            for (int i = 0; i < MT; ++i) {
                const int r = wm + i * 16 + g;
                af[i][0] = As[k + q][r];
                af[i][1] = As[k + q][r + 8];
                af[i][2] = As[k + q + 4][r];
                af[i][3] = As[k + q + 4][r + 8];
            }
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                const int c = wn + j * 8 + g;
                bf[j][0] = Bs[k + q][c];
                bf[j][1] = Bs[k + q + 4][c];
            }
#pragma unroll
            for (int i = 0; i < MT; ++i)
#pragma unroll
                for (int j = 0; j < NT; ++j) nn::mma_m16n8k8_tf32(acc[i][j], af[i], bf[j], acc[i][j]);
        }
        __syncthreads();
    }

    // Accumulator layout: acc[.][.][e] is (row g + 8*(e >= 2), col 2q + (e & 1)).
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int m = p.m0 + wm + i * 16 + g + 8 * h;
            if (m >= p.M) continue;
            const int row = p.row_offset(m);
#pragma unroll
            for (int j = 0; j < NT; ++j)
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int n = p.n0 + wn + j * 8 + 2 * q + e;
                    const float v = acc[i][j][2 * h + e];
                    if (n < p.N) p.out[row + p.col_offset(n)] = p.bias ? v + p.bias[n] : v;
                }
        }
}

}  // namespace conv

// ------------------------------------------------------------------ kernels
// Thin wrappers: build the shape and the problem, skip blocks past this
// launch's M (a phase smaller than the largest; uniform over the block), run
// the version's GEMM.

#define CONV_SHAPE_PARAMS                                                                   \
    int N, int C, int H, int W, int K, int OH, int OW, int KH, int KW, int sh, int sw, int ph, \
        int pw, int dh, int dw
#define CONV_SHAPE conv::Shape{N, C, H, W, K, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw}

template <typename T, int BN>
__global__ void __launch_bounds__(conv::SimtTile<BN>::THREADS)
    conv2d_fwd_v1(const T* x, const T* w, const T* b, T* y, CONV_SHAPE_PARAMS) {
    using Cfg = conv::SimtTile<BN>;
    const conv::ConvFwd<T, Cfg> p(x, w, b, y, CONV_SHAPE);
    if (p.m0 >= p.M) return;
    conv::gemm_simt<T, Cfg>(p);
}

template <int BN>
__global__ void __launch_bounds__(conv::MmaTile<BN>::THREADS)
    conv2d_fwd_v2(const float* x, const float* w, const float* b, float* y, CONV_SHAPE_PARAMS) {
    using Cfg = conv::MmaTile<BN>;
    const conv::ConvFwd<float, Cfg> p(x, w, b, y, CONV_SHAPE);
    if (p.m0 >= p.M) return;
    conv::gemm_tf32<Cfg>(p);
}

template <typename T, int BN>
__global__ void __launch_bounds__(conv::SimtTile<BN>::THREADS)
    conv2d_dgrad_v1(const T* dy, const T* w, T* dx, CONV_SHAPE_PARAMS, int gh, int gw,
                    int inv_h, int inv_w) {
    using Cfg = conv::SimtTile<BN>;
    const conv::ConvDgrad<T, Cfg> p(dy, w, dx, CONV_SHAPE, gh, gw, inv_h, inv_w);
    if (p.m0 >= p.M) return;
    conv::gemm_simt<T, Cfg>(p);
}

template <int BN>
__global__ void __launch_bounds__(conv::MmaTile<BN>::THREADS)
    conv2d_dgrad_v2(const float* dy, const float* w, float* dx, CONV_SHAPE_PARAMS, int gh,
                    int gw, int inv_h, int inv_w) {
    using Cfg = conv::MmaTile<BN>;
    const conv::ConvDgrad<float, Cfg> p(dy, w, dx, CONV_SHAPE, gh, gw, inv_h, inv_w);
    if (p.m0 >= p.M) return;
    conv::gemm_tf32<Cfg>(p);
}

template <typename T, int BN>
__global__ void __launch_bounds__(conv::SimtTile<BN>::THREADS)
    conv2d_wgrad_v1(const T* dy, const T* x, T* out, CONV_SHAPE_PARAMS, int chunk) {
    using Cfg = conv::SimtTile<BN>;
    const conv::ConvWgrad<T, Cfg> p(dy, x, out, CONV_SHAPE, chunk);
    conv::gemm_simt<T, Cfg>(p);
}

template <int BN>
__global__ void __launch_bounds__(conv::MmaTile<BN>::THREADS)
    conv2d_wgrad_v2(const float* dy, const float* x, float* out, CONV_SHAPE_PARAMS, int chunk) {
    using Cfg = conv::MmaTile<BN>;
    const conv::ConvWgrad<float, Cfg> p(dy, x, out, CONV_SHAPE, chunk);
    conv::gemm_tf32<Cfg>(p);
}

#undef CONV_SHAPE_PARAMS
#undef CONV_SHAPE

// out[e] = ws[0, e] + ws[1, e] + ... + ws[S-1, e]: the fixed order that makes
// split-K reproducible. One thread per element; consecutive threads read
// consecutive addresses of each partial.
template <typename T>
__global__ void __launch_bounds__(256) splitk_reduce(const T* ws, T* out, int S, int L) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= L) return;
    T acc = ws[e];
    for (int s = 1; s < S; ++s) acc += ws[s * L + e];
    out[e] = acc;
}

// db[k] = sum over n, oh, ow of dy[n, k, oh, ow]. One block per channel: thread
// t sums elements t, t + 256, ... of each of the N planes (coalesced), then
// the block's 256 partials are summed by a fixed tree (warp butterflies, then
// warp 0 over the 8 warp totals). Off DCGAN's hot path (its convs have no
// bias); with few channels and large planes a split like the weight
// gradient's would fill the GPU better.
template <typename T>
__global__ void __launch_bounds__(256) conv2d_bgrad(const T* dy, T* db, int N, int K, int HW) {
    __shared__ T warp_totals[8];
    const int k = blockIdx.x, t = threadIdx.x;
    T acc = T(0);
    for (int n = 0; n < N; ++n) {
        const T* plane = dy + (n * K + k) * HW;
        for (int e = t; e < HW; e += 256) acc += plane[e];
    }
    acc = nn::warp_sum(acc);
    if (t % 32 == 0) warp_totals[t / 32] = acc;
    __syncthreads();
    if (t < 32) {
        T v = t < 8 ? warp_totals[t] : T(0);
        v = nn::warp_sum(v);
        if (t == 0) db[k] = v;
    }
}
