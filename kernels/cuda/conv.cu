// conv.cu: conv2d forward, input, weight and bias gradients as implicit GEMMs.
//
// Shapes (NCHW, contiguous), as in kernels/triton/conv.py, whose docstring
// derives the algorithms at length:
//     x  (N, C, H, W)    w  (K, C/G, KH, KW)    y, dy  (N, K, OH, OW)
//     stride (sh, sw), padding (ph, pw), dilation (dh, dw), G groups
// Tap (kh, kw) of output pixel (oh, ow) reads input pixel
//     ih = oh*sh - ph + kh*dh,   iw = ow*sw - pw + kw*dw
// and reads zero where that falls outside the image (the padding).
//
// Each conv kernel is a GEMM C[m, n] = sum_r A[m, r] * B[r, n] whose
// operands are never materialised (no im2col buffer, no zero-stuffed
// gradient): a "problem" struct knows, for its GEMM, which address of x, w or
// dy holds A(m, r) and B(r, n) (or that it is a zero: padding, taps off the
// image, tile tails), and where C(m, n) goes. The GEMM core is gemm.cuh's:
// one main loop per version (version 1 SIMT float/double, version 2 TF32
// tensor cores; gemm.cuh says what each does and why), which runs these
// three problems and matmul.cu's:
//
//   problem     M (rows)               N (cols)        reduction r          C stored to
//   ConvFwd     pixels (n, oh, ow)     out channels    (tap, c)             y (+ bias)
//                                      K/G of a group
//   ConvDgrad   pixels (n, i, j) of    in channels     (matching tap, k)    dx
//               one stride phase       C/G of a group
//   ConvWgrad   out channels K/G       (c, kh, kw)     pixels (n, oh, ow)   dw, or its
//               of a group             of a group      of one split-K chunk split-K workspace
//
// Kernels (grid; block = the version's THREADS; MT = row tiles of the GEMM):
//   conv2d_fwd_v1<T, BN>    / conv2d_fwd_v2<BN>     grid (G*MT, (K/G)/BN, 1)
//   conv2d_dgrad_v1<T, BN>  / conv2d_dgrad_v2<BN>   grid (G*MT, (C/G)/BN, sh*sw): z = the phase
//   conv2d_wgrad_v1<T, BN>  / conv2d_wgrad_v2<BN>   grid (G*MT, R/BN, S):         z = the split
//   splitk_reduce<T>   dw[e] = ws[0, e] + ws[1, e] + ... + ws[S-1, e], in that order.
//                      Grid (K*R/256,), 256 threads; skipped when S = 1.
//   conv2d_bgrad<T>    db[k] = sum of dy[:, k], one 256-thread block per channel,
//                      fixed order (strided per-thread sums, then a fixed tree).
// BN picks the tile shape (gemm.cuh): 64 (a 64 x 64 tile) for most layers, 8
// (a 128 x 8 tile) when the GEMM has <= 8 columns, i.e. an RGB layer's input
// gradient or a conv with <= 8 output channels (per group).
//
// Groups (torch's meaning: output channels [g*K/G, (g+1)*K/G) read only
// input channels [g*C/G, (g+1)*C/G); G = C is a depthwise conv) are one more
// GEMM axis, not another algorithm: the grid's x axis is (group, row tile),
// blockIdx.x = g*MT + tile, and each problem offsets its three pointers to
// group g's channel ranges (x and dx by g*C/G channels, y, dy and the bias
// by g*K/G, w and dw by g*(K/G) filters) and runs the same GEMM on K/G and
// C/G channels, with the image strides still those of all C (K) channels.
// The x axis because it allows 2**31 - 1 blocks, where y and z stop at
// 65535 (z already holds the phases or the splits). G = 1 is exactly the
// ungrouped conv.
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
// dy[n, k, oh, ow] * x[n, c, ih, iw]: a small output (K x C/G*KH*KW) and a
// long reduction (N*OH*OW, 131k in DCGAN's first layer), so the reduction is
// cut into S chunks (blockIdx.z), each block writes its partial tile to a
// workspace (S, K, R), and splitk_reduce sums the partials in the fixed order
// 0..S-1: no atomics, bitwise reproducible. S comes from launch_checks.splitk
// (a pure function of the shapes); with S = 1 the GEMM writes dw directly.
// OH, OW are dy's; they may be smaller than x gives (taps off x read zero).
//
// Versions: conv.py picks version 2 for float32 under NN_CUPY_PRECISION=tf32
// (or set_precision, or version=), else version 1; gemm.cuh has both loops.
// Every reduction has a fixed order and there are no atomics, so two runs
// give bitwise equal results (for a given version and tile shape).
// Indexing is int32: the launchers refuse arrays of 2**31 elements or more.
#include "gemm.cuh"

namespace conv {

using gemm::Spread;

// --------------------------------------------------------------- the shape
// C and K are all channels; G the groups (each of C/G inputs, K/G outputs).
struct Shape {
    int N, C, H, W, K, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, G;
};

// Group g and row tile of this block: blockIdx.x = g * (gridDim.x / G) + tile.
struct GroupTile {
    int g, m0;
    template <class Cfg>
    __device__ static GroupTile of(int G) {
        const int tiles = gridDim.x / G;
        return GroupTile{int(blockIdx.x) / tiles, int(blockIdx.x) % tiles * Cfg::BM};
    }
};

// -------------------------------------------------------------- problems
// Each is what gemm.cuh's main loops take (its header lists the interface),
// for group g's channels. Rows/columns past M/N, taps off the image and
// reduction tails load 0.

// Forward: A(m, (tap, c)) = x[n, c, ih, iw], B((tap, c), k) = w[k, c, kh, kw],
// c and k within group g.
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
    int Cg, Kg, M, N, m0, n0, steps, cblocks, t;
    bool a_ok;          // this thread's pixel exists
    int x_img, ih0, iw0;  // its image offset and the input row/col tap (0, 0) reads

    __device__ ConvFwd(const T* x_, const T* w_, const T* b_, T* y_, const Shape& s_) : s(s_) {
        Cg = s.C / s.G;
        Kg = s.K / s.G;
        const GroupTile gt = GroupTile::of<Cfg>(s.G);
        x = x_ + gt.g * Cg * s.H * s.W;
        w = w_ + gt.g * Kg * Cg * s.KH * s.KW;
        out = y_ + gt.g * Kg * s.OH * s.OW;
        bias = b_ ? b_ + gt.g * Kg : nullptr;
        M = s.N * s.OH * s.OW;
        N = Kg;
        m0 = gt.m0;
        n0 = blockIdx.y * Cfg::BN;
        cblocks = nn::cdiv(Cg, Cfg::BK);
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
            a[e] = ok && c < Cg ? x[base + c * HW] : T(0);
        }
        const int KHKW = s.KH * s.KW;
        const int c = c0 + SB::k(t, 0);  // one channel per thread
        const bool c_ok = c < Cg;
        const int w_off = c * KHKW + tap;
#pragma unroll
        for (int e = 0; e < SB::E; ++e) {
            const int k = n0 + SB::row(t, e);
            b[e] = c_ok && k < Kg ? w[k * Cg * KHKW + w_off] : T(0);
        }
    }

    __device__ int row_offset(int m) const {
        const int OHW = s.OH * s.OW;
        return (m / OHW) * s.K * OHW + m % OHW;
    }
    __device__ int col_offset(int k) const { return k * s.OH * s.OW; }
};

// Input gradient of phase blockIdx.z = qh*sw + qw:
// A((n, i, j), (tap, k)) = dy[n, k, oh, ow], B((tap, k), c) = w[k, c, kh, kw],
// c and k within group g.
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
    int Cg, Kg, M, N, m0, n0, steps, t;
    int qh, qw, Hq, Wq;                   // the phase and its pixel grid
    int kh0, step_h, kw0, step_w, ntw;    // its taps: kh = kh0 + u*step_h, u < nth
    int kblocks;
    bool a_ok, b_ok;
    int dy_img, i, j, w_col;

    __device__ ConvDgrad(const T* dy_, const T* w_, T* dx_, const Shape& s_, int gh, int gw,
                         int inv_h, int inv_w)
        : s(s_) {
        Cg = s.C / s.G;
        Kg = s.K / s.G;
        const GroupTile gt = GroupTile::of<Cfg>(s.G);
        dy = dy_ + gt.g * Kg * s.OH * s.OW;
        w = w_ + gt.g * Kg * Cg * s.KH * s.KW;
        out = dx_ + gt.g * Cg * s.H * s.W;
        qh = blockIdx.z / s.sw;
        qw = blockIdx.z % s.sw;
        Hq = (s.H - qh + s.sh - 1) / s.sh;  // 0 when qh >= H (image smaller than the stride)
        Wq = (s.W - qw + s.sw - 1) / s.sw;
        M = s.N * Hq * Wq;
        N = Cg;
        m0 = gt.m0;
        n0 = blockIdx.y * Cfg::BN;
        // Taps: kh*dh = qh + ph (mod sh). Solvable iff gh | qh + ph.
        step_h = s.sh / gh;
        step_w = s.sw / gw;
        kh0 = ((qh + s.ph) / gh % step_h) * inv_h % step_h;
        kw0 = ((qw + s.pw) / gw % step_w) * inv_w % step_w;
        const int nth = (qh + s.ph) % gh == 0 ? (s.KH - kh0 + step_h - 1) / step_h : 0;
        ntw = (qw + s.pw) % gw == 0 ? (s.KW - kw0 + step_w - 1) / step_w : 0;
        kblocks = nn::cdiv(Kg, Cfg::BK);
        steps = nth * ntw * kblocks;  // 0: no tap reaches this phase, dx = 0
        t = threadIdx.x;
        const int m = m0 + SA::row(t, 0);
        a_ok = m < M;
        const int HWq = nn::max_(Hq * Wq, 1), Wq1 = nn::max_(Wq, 1);
        dy_img = (m / HWq) * s.K * s.OH * s.OW;
        i = m % HWq / Wq1;
        j = m % HWq % Wq1;
        const int c = n0 + SB::row(t, 0);
        b_ok = c < Cg;
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
            a[e] = ok && k < Kg ? dy[base + k * OHW] : T(0);
        }
        const int CKK = Cg * s.KH * s.KW, w_off = w_col + kh * s.KW + kw;
#pragma unroll
        for (int e = 0; e < SB::E; ++e) {
            const int k = k0 + SB::k(t, e);
            b[e] = b_ok && k < Kg ? w[k * CKK + w_off] : T(0);
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
// A(k, p) = dy[n, k, oh, ow], B(p, (c, kh, kw)) = x[n, c, ih, iw], p = (n, oh, ow),
// c and k within group g.
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
        : s(s_) {
        const int KHKW = s.KH * s.KW, Cg = s.C / s.G, Kg = s.K / s.G;
        const GroupTile gt = GroupTile::of<Cfg>(s.G);
        M = Kg;
        N = Cg * KHKW;
        dy = dy_ + gt.g * Kg * s.OH * s.OW;
        x = x_ + gt.g * Cg * s.H * s.W;
        // This split's slice of the (S, K, R) workspace (or dw itself), group g's rows.
        out = out_ + blockIdx.z * s.K * N + gt.g * Kg * N;
        m0 = gt.m0;
        n0 = blockIdx.y * Cfg::BN;
        p_lo = blockIdx.z * chunk;
        p_hi = nn::min_(p_lo + chunk, s.N * s.OH * s.OW);
        steps = p_hi > p_lo ? nn::cdiv(p_hi - p_lo, Cfg::BK) : 0;
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
            a[e] = ok && k < M ? dy[dy_pix + k * OHW] : T(0);
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

}  // namespace conv

// ------------------------------------------------------------------ kernels
// Thin wrappers: build the shape and the problem, skip blocks past this
// launch's M (a phase smaller than the largest; uniform over the block), run
// the version's GEMM.

#define CONV_SHAPE_PARAMS                                                                   \
    int N, int C, int H, int W, int K, int OH, int OW, int KH, int KW, int sh, int sw, int ph, \
        int pw, int dh, int dw, int G
#define CONV_SHAPE conv::Shape{N, C, H, W, K, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, G}

template <typename T, int BN>
__global__ void __launch_bounds__(gemm::SimtTile<BN>::THREADS)
    conv2d_fwd_v1(const T* x, const T* w, const T* b, T* y, CONV_SHAPE_PARAMS) {
    using Cfg = gemm::SimtTile<BN>;
    const conv::ConvFwd<T, Cfg> p(x, w, b, y, CONV_SHAPE);
    if (p.m0 >= p.M) return;
    gemm::gemm_simt<T, Cfg>(p);
}

template <int BN>
__global__ void __launch_bounds__(gemm::MmaTile<BN>::THREADS)
    conv2d_fwd_v2(const float* x, const float* w, const float* b, float* y, CONV_SHAPE_PARAMS) {
    using Cfg = gemm::MmaTile<BN>;
    const conv::ConvFwd<float, Cfg> p(x, w, b, y, CONV_SHAPE);
    if (p.m0 >= p.M) return;
    gemm::gemm_tf32<Cfg>(p);
}

template <typename T, int BN>
__global__ void __launch_bounds__(gemm::SimtTile<BN>::THREADS)
    conv2d_dgrad_v1(const T* dy, const T* w, T* dx, CONV_SHAPE_PARAMS, int gh, int gw,
                    int inv_h, int inv_w) {
    using Cfg = gemm::SimtTile<BN>;
    const conv::ConvDgrad<T, Cfg> p(dy, w, dx, CONV_SHAPE, gh, gw, inv_h, inv_w);
    if (p.m0 >= p.M) return;
    gemm::gemm_simt<T, Cfg>(p);
}

template <int BN>
__global__ void __launch_bounds__(gemm::MmaTile<BN>::THREADS)
    conv2d_dgrad_v2(const float* dy, const float* w, float* dx, CONV_SHAPE_PARAMS, int gh,
                    int gw, int inv_h, int inv_w) {
    using Cfg = gemm::MmaTile<BN>;
    const conv::ConvDgrad<float, Cfg> p(dy, w, dx, CONV_SHAPE, gh, gw, inv_h, inv_w);
    if (p.m0 >= p.M) return;
    gemm::gemm_tf32<Cfg>(p);
}

template <typename T, int BN>
__global__ void __launch_bounds__(gemm::SimtTile<BN>::THREADS)
    conv2d_wgrad_v1(const T* dy, const T* x, T* out, CONV_SHAPE_PARAMS, int chunk) {
    using Cfg = gemm::SimtTile<BN>;
    const conv::ConvWgrad<T, Cfg> p(dy, x, out, CONV_SHAPE, chunk);
    gemm::gemm_simt<T, Cfg>(p);
}

template <int BN>
__global__ void __launch_bounds__(gemm::MmaTile<BN>::THREADS)
    conv2d_wgrad_v2(const float* dy, const float* x, float* out, CONV_SHAPE_PARAMS, int chunk) {
    using Cfg = gemm::MmaTile<BN>;
    const conv::ConvWgrad<float, Cfg> p(dy, x, out, CONV_SHAPE, chunk);
    gemm::gemm_tf32<Cfg>(p);
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
