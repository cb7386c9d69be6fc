// batchnorm.cu: batch normalisation (training and eval forward, backward) in
// CUDA C, with an optional fused ReLU / LeakyReLU for the DCGAN's BN -> act
// pairs. The launchers are in batchnorm.py; kernels/triton/batchnorm.py is
// the same algorithm in Triton, and kernels/numpy_kernels/batchnorm.py the reference.
//
// Shapes and names (NCHW, contiguous):
//   x, y, dy, dx  (N, C, H, W);  HW = H*W
//   M = N*HW      elements per channel (what each channel's statistics cover)
//   per-channel (C,): weight, bias, running_mean, running_var, mean, invstd,
//                     dweight, dbias
// Element m = (n, s) of channel c, 0 <= m < M, n = m / HW, s = m % HW, lives at
//   x[n*C*HW + c*HW + s]
// so one channel is N runs of HW contiguous values, C*HW apart. A block that
// walks one channel with consecutive threads on consecutive m reads whole
// HW-runs: a warp's 32 loads fall into at most two contiguous pieces when
// HW >= 32, and into two whole 64-byte runs at HW = 16 (the DCGAN's smallest
// map, 4x4): full 32-byte sectors either way. (HW = 1 is the bad case: each m
// is a different n, C values apart; it is correct, only slower.)
// x_hat = (x - mean) * invstd, invstd = 1 / sqrt(var + eps), var biased (/M);
// y = x_hat * w + b, and running_var is updated with the unbiased var*M/(M-1).
//
// Why a split reduction. One block per channel leaves most of an H100's 132
// SMs idle when C is 64..512 (the DCGAN's range) and puts a whole channel's M
// (up to 131k elements) on one SM. So each channel's M elements are cut into
// nchunk chunks, chosen (in batchnorm.py) so that C * nchunk is about
// TARGET_PROGRAMS blocks. Block (c, k) reduces chunk k of channel c and writes
// one partial result to a small (C, nchunk) workspace; a second small kernel
// combines each channel's partials in a fixed order. No atomics anywhere, so
// every result is bitwise reproducible run to run. For the DCGAN at batch 128:
// (128, 64, 32, 32) runs 64 x 16 blocks of 256 threads over 8192 elements each.
//
// Why Welford + Chan, and not sum(x) and sum(x^2). var = E[x^2] - E[x]^2 in
// float32 loses digits in proportion to mean^2 / var (both terms carry
// rounding errors of E[x^2]'s size): enough to miss 1e-5 on inputs like
// U[1, 4]. So sum(x^2) is never formed. Each thread runs Welford's update
//   n += 1;  d = x - mean;  mean += d / n;  M2 += d * (x - mean)
// over the elements it visits, and triples (n, mean, M2) are merged with
// Chan's formula
//   n = na + nb,  delta = mean_b - mean_a,
//   mean = mean_a + delta * nb/n,  M2 = M2a + M2b + delta^2 * na * nb/n,
// whose terms are all non-negative: nothing cancels. This is what PyTorch's
// CUDA batch norm does. Data are accumulated in T (float32 or float64).
//
// Warp-shuffle block reductions. A block reduces its threads' values in two
// levels: within each warp with five __shfl_xor_sync butterfly steps (no
// shared memory, no barrier), then across the (up to 32) warps through a
// 32-slot __shared__ array that warp 0 reduces with the same butterfly.
// Chan's merge is not commutative in floating point (merge(a, b) and
// merge(b, a) can round differently), so in each butterfly step both lanes of
// a pair merge (lower lane, upper lane) in that order: every lane ends with
// the same bits, and the order is fixed, hence reproducible.
//
// Walking without division. Mapping a flat index to (channel, position)
// costs an integer division by a runtime HW (~20 instructions), too much to
// pay per element in a memory-bound kernel. Each thread divides once, for its
// first element, and then advances by a fixed stride with a quotient and
// remainder computed once (ChannelWalk, FlatWalk below): one add, one compare,
// one conditional subtract per element.
//
// ILP. Each thread loads UNROLL = 4 independent elements before it uses any
// of them, so four loads per thread are in flight: with 2048 threads per SM
// that is 32 KB (float) of outstanding reads per SM, enough to cover the
// H100's memory latency at full bandwidth.
//
// Kernels (grid / block; the why is above each kernel):
//   bn_stats_partial<T>     grid (C, nchunk), block = 32..MAX_BLOCK threads:
//                           per-thread Welford over chunk k of channel c,
//                           block Chan merge -> (mean_k, M2_k) in the workspace.
//   bn_stats_finalize<T>    grid cdiv(C, warps), one warp per channel: the
//                           chunks' partials combined in a fixed order (two
//                           passes, warp sums) -> mean, invstd; updates
//                           running_mean / running_var in place.
//   bn_eval_stats<T>        one thread per channel: mean = copy of
//                           running_mean, invstd = 1/sqrt(running_var + eps)
//                           (new arrays: the backward must not see later
//                           updates of the running statistics).
//   bn_normalize<T, ACT>    flat grid-stride over N*C*HW: y = act(x_hat*w + b).
//                           Flat rather than one block per (n, c) row: at
//                           HW = 4x4 a row holds 16 values, and a block per
//                           row would leave most of its threads idle.
//   bn_backward_partial<T, ACT>  grid (C, nchunk): sum(g) and sum(g*x_hat) over
//                           one chunk, g = dy times the activation's gradient
//                           when one is fused. Both sums in one pass (fused).
//   bn_backward_finalize<T> one warp per channel: the chunks summed in a fixed
//                           order -> dbias = sum(g), dweight = sum(g x_hat),
//                           and the dx coefficients sum(g)/M, sum(g x_hat)/M.
//   bn_backward_dx<T, ACT>  flat grid-stride: dx = w invstd (g - sum(g)/M -
//                           x_hat sum(g x_hat)/M) in training (the terms through
//                           the batch mean and variance), dx = w invstd g in
//                           eval (constant statistics).
// So each direction is one reduction pass over the data plus one elementwise
// pass (and a tiny per-channel kernel): the training forward reads x twice and
// writes y once; the backward reads x and dy twice and writes dx once.
//
// Fused activation, ACT: 0 none, 1 ReLU, 2 LeakyReLU with `slope`. The forward
// applies it in bn_normalize, so the BN output never goes to memory. The
// backward receives the gradient of the activation's output, recomputes the
// BN output y = x_hat*w + b (bn_output, the same expression the forward
// uses, so both see the same sign), takes g = dy where y > 0 and slope*dy
// (ReLU: 0) elsewhere, and uses g in place of dy in the sums and in dx.
// torch's choice at y == 0 (gradient 0 for ReLU, slope for LeakyReLU) is kept.
//
// There is one version of each kernel. Alternatives left out, and why:
//   - sum / sum-of-squares statistics: one fewer division per element, but
//     the cancellation described above fails float32 at 1e-5.
//   - a "last block finalizes" single-kernel reduction: needs an atomic
//     counter, and this codebase keeps every reduction atomic-free.
//   - folding w*invstd and b - mean*w*invstd into one multiply-add per element:
//     x*scale + shift cancels when |mean| >> std, so y keeps the reference's
//     (x - mean) * invstd * w + b order.
//
// Float hyperparameters (eps, momentum, 1 - momentum, M/(M-1), slope) arrive
// as double and are rounded to T once in the kernel, as NumPy rounds a Python
// float mixed with a float32 array: float64 runs see the exact values.
#include "common.cuh"

namespace bn {

constexpr unsigned kFull = 0xffffffffu;
constexpr int UNROLL = 4;  // independent loads in flight per thread

// Walks channel c's elements m, m + step, m + 2*step, ... and keeps the offset
// of the current one in x. Offsets are unsigned: a thread may step past the
// end (it never loads there), and must not overflow int on the way.
struct ChannelWalk {
    unsigned off;       // x offset of the current element: n*C*HW + c*HW + s
    int s;              // its position within its HW run
    int HW;
    int step_s;         // step % HW
    unsigned step_off;  // (step / HW) * C*HW + step % HW
    unsigned wrap;      // C*HW - HW: from the end of one run to the next

    __device__ ChannelWalk(int c, int C, int HW_, unsigned m, int step) : HW(HW_) {
        const unsigned CHW = (unsigned)C * (unsigned)HW_;
        const unsigned n = m / (unsigned)HW_;  // the one division per thread
        s = (int)(m - n * (unsigned)HW_);
        off = n * CHW + (unsigned)c * (unsigned)HW_ + (unsigned)s;
        step_s = step % HW_;
        step_off = (unsigned)(step / HW_) * CHW + (unsigned)step_s;
        wrap = CHW - (unsigned)HW_;
    }
    __device__ __forceinline__ void next() {
        s += step_s;
        off += step_off;
        if (s >= HW) {  // crossed into the next sample's run
            s -= HW;
            off += wrap;
        }
    }
};

// Walks flat indices i, i + step, ... of an NCHW array and keeps the channel
// c = (i / HW) % C of the current one.
struct FlatWalk {
    int c, s;  // channel and position within the HW run of the current index
    int C, HW;
    int step_s;  // step % HW
    int step_c;  // (step / HW) % C

    __device__ FlatWalk(unsigned i, unsigned step, int C_, int HW_) : C(C_), HW(HW_) {
        const unsigned row = i / (unsigned)HW_;  // row = n*C + c
        s = (int)(i - row * (unsigned)HW_);
        c = (int)(row % (unsigned)C_);
        step_s = (int)(step % (unsigned)HW_);
        step_c = (int)((step / (unsigned)HW_) % (unsigned)C_);
    }
    __device__ __forceinline__ void next() {
        s += step_s;
        int carry = 0;
        if (s >= HW) {
            s -= HW;
            carry = 1;
        }
        c += step_c + carry;  // < 2C: one subtraction brings it back
        if (c >= C) c -= C;
    }
};

// ------------------------------------------------------------ Welford
template <typename T>
struct Welford {
    int n;
    T mean, m2;
};

template <typename T>
__device__ __forceinline__ void welford_push(Welford<T>& w, T v) {
    w.n += 1;
    const T d = v - w.mean;
    w.mean += d / T(w.n);
    w.m2 += d * (v - w.mean);
}

// Chan's merge; either side may be empty.
template <typename T>
__device__ __forceinline__ Welford<T> welford_merge(const Welford<T>& a, const Welford<T>& b) {
    if (b.n == 0) return a;
    if (a.n == 0) return b;
    Welford<T> r;
    r.n = a.n + b.n;
    const T delta = b.mean - a.mean;
    const T wb = T(b.n) / T(r.n);
    r.mean = a.mean + delta * wb;
    r.m2 = a.m2 + b.m2 + delta * delta * T(a.n) * wb;
    return r;
}

// Butterfly over the warp: afterwards every lane holds the same merged triple.
// The shuffles run unconditionally (all 32 lanes); the merge order (lower
// lane first) makes both lanes of each pair compute identical bits.
template <typename T>
__device__ __forceinline__ Welford<T> warp_welford(Welford<T> w) {
    const int lane = threadIdx.x & 31;
    for (int o = 16; o > 0; o >>= 1) {
        Welford<T> other;
        other.n = __shfl_xor_sync(kFull, w.n, o);
        other.mean = __shfl_xor_sync(kFull, w.mean, o);
        other.m2 = __shfl_xor_sync(kFull, w.m2, o);
        w = (lane & o) ? welford_merge(other, w) : welford_merge(w, other);
    }
    return w;
}

// Whole block (blockDim.x a multiple of 32): warps, then warp 0 over the
// warps' results. The result is valid in warp 0. Every thread must call it.
template <typename T>
__device__ Welford<T> block_welford(Welford<T> w) {
    __shared__ int s_n[32];
    __shared__ T s_mean[32], s_m2[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    w = warp_welford(w);
    if (lane == 0) {
        s_n[warp] = w.n;
        s_mean[warp] = w.mean;
        s_m2[warp] = w.m2;
    }
    __syncthreads();
    if (warp == 0) {
        Welford<T> v{0, T(0), T(0)};
        if (lane < nwarps) v = Welford<T>{s_n[lane], s_mean[lane], s_m2[lane]};
        w = warp_welford(v);
    }
    return w;
}

// Two plain sums over the block (nn::warp_sum, then warp 0 over the warps);
// valid in warp 0. Every thread must call it.
template <typename T>
__device__ void block_sum2(T& a, T& b) {
    __shared__ T s_a[32], s_b[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    a = nn::warp_sum(a);
    b = nn::warp_sum(b);
    if (lane == 0) {
        s_a[warp] = a;
        s_b[warp] = b;
    }
    __syncthreads();
    if (warp == 0) {
        a = nn::warp_sum(lane < nwarps ? s_a[lane] : T(0));
        b = nn::warp_sum(lane < nwarps ? s_b[lane] : T(0));
    }
}

// ---------------------------------------------------------- activation
// The BN output, in the reference's order; one fused multiply-add, written
// out so that the forward and the backward (which recomputes y to find the
// activation's gradient) round it identically whatever the compiler does.
// With no weight / bias the launcher-side defaults w = 1, b = 0 make it x_hat.
template <typename T>
__device__ __forceinline__ T bn_output(T xhat, T w, T b) { return nn::fma_(xhat, w, b); }

template <int ACT, typename T>
__device__ __forceinline__ T act_forward(T y, T slope) {
    if (ACT == 1) return y > T(0) ? y : T(0);
    if (ACT == 2) return y > T(0) ? y : y * slope;
    return y;
}

// dy times the activation's derivative at its input y (0 / slope at y <= 0).
template <int ACT, typename T>
__device__ __forceinline__ T act_backward(T dy, T y, T slope) {
    if (ACT == 1) return y > T(0) ? dy : T(0);
    if (ACT == 2) return y > T(0) ? dy : dy * slope;
    return dy;
}

// Elements of a [lo, hi) range that thread t visits with stride `step`.
__device__ __forceinline__ int items_of(int len, int t, int step) {
    return len > t ? (len - t - 1) / step + 1 : 0;
}

}  // namespace bn

// ------------------------------------------------------- forward statistics
// Block (c, k) covers m in [k*chunk, min((k+1)*chunk, M)). Thread t visits
// m = lo + t, lo + t + B, ... (B = blockDim.x), so a warp reads 32
// consecutive m; it loads UNROLL of them, then pushes them into its Welford
// state in order. The block's triples are merged (block_welford) and thread 0
// writes the chunk's mean and M2; its count is implied by (chunk, M).
template <typename T>
__global__ void bn_stats_partial(const T* __restrict__ x, T* __restrict__ pmean,
                                 T* __restrict__ pm2, int C, int HW, int M, int chunk,
                                 int nchunk) {
    const int c = blockIdx.x, k = blockIdx.y, t = threadIdx.x, step = blockDim.x;
    const int lo = k * chunk;
    const int len = nn::min_(chunk, M - lo);
    const int mine = bn::items_of(len, t, step);
    bn::ChannelWalk p(c, C, HW, (unsigned)lo + (unsigned)t, step);
    bn::Welford<T> w{0, T(0), T(0)};
    for (int j = 0; j < mine; j += bn::UNROLL) {
        T v[bn::UNROLL];
#pragma unroll
        for (int u = 0; u < bn::UNROLL; ++u) {
            if (j + u < mine) v[u] = x[p.off];
            p.next();
        }
#pragma unroll
        for (int u = 0; u < bn::UNROLL; ++u)
            if (j + u < mine) bn::welford_push(w, v[u]);
    }
    w = bn::block_welford(w);
    if (t == 0) {
        pmean[c * nchunk + k] = w.mean;
        pm2[c * nchunk + k] = w.m2;
    }
}

// One warp per channel combines its nchunk partials (chunk k holds
// min(chunk, M - k*chunk) elements) in two passes, like the Triton kernel:
//   mean = sum(n_k mean_k) / M,  M2 = sum(M2_k + n_k (mean_k - mean)^2),
// lanes striding over k, then a warp sum: a fixed order. Chan's formula in
// this form needs no per-merge division. Then the running statistics, in the
// reference's order: r = (1 - momentum) * r + momentum * stat.
// The `c >= C` exit is warp-uniform and the kernel has no __syncthreads.
template <typename T>
__global__ void bn_stats_finalize(const T* __restrict__ pmean, const T* __restrict__ pm2,
                                  T* __restrict__ mean, T* __restrict__ invstd,
                                  T* __restrict__ rmean, T* __restrict__ rvar, int C, int M,
                                  int chunk, int nchunk, double eps, double momentum,
                                  double one_minus_momentum, double unbias) {
    const int lane = threadIdx.x & 31;
    const int c = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (c >= C) return;
    const T* pm = pmean + c * nchunk;
    const T* pv = pm2 + c * nchunk;
    T s = T(0);
    for (int k = lane; k < nchunk; k += 32) s += T(nn::min_(chunk, M - k * chunk)) * pm[k];
    const T mu = nn::warp_sum(s) / T(M);
    T q = T(0);
    for (int k = lane; k < nchunk; k += 32) {
        const T d = pm[k] - mu;
        q += pv[k] + T(nn::min_(chunk, M - k * chunk)) * d * d;
    }
    const T var = nn::warp_sum(q) / T(M);
    if (lane == 0) {
        mean[c] = mu;
        invstd[c] = T(1) / nn::sqrt_(var + T(eps));
        const T mom = T(momentum), keep = T(one_minus_momentum);
        if (rmean != nullptr) rmean[c] = keep * rmean[c] + mom * mu;
        if (rvar != nullptr) rvar[c] = keep * rvar[c] + mom * (var * T(unbias));
    }
}

template <typename T>
__global__ void bn_eval_stats(const T* __restrict__ rmean, const T* __restrict__ rvar,
                              T* __restrict__ mean, T* __restrict__ invstd, int C, double eps) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < C) {
        mean[c] = rmean[c];
        invstd[c] = T(1) / nn::sqrt_(rvar[c] + T(eps));
    }
}

// ------------------------------------------------------ normalize (+ act)
// Grid-stride over the flat array: thread i handles i, i + G, i + 2G, ...
// (G = gridDim.x * blockDim.x; the launcher sizes the grid so that each
// thread gets EW_ITEMS of them, but any grid is correct). The per-channel
// values are gathered per element: C of them, they stay in L1.
// w / b may be null (no affine part): then w = 1, b = 0, and y = x_hat.
template <typename T, int ACT>
__global__ void bn_normalize(const T* __restrict__ x, T* __restrict__ y,
                             const T* __restrict__ mean, const T* __restrict__ invstd,
                             const T* __restrict__ w, const T* __restrict__ b, int numel, int C,
                             int HW, double slope) {
    const unsigned step = gridDim.x * blockDim.x;
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    const int mine = (unsigned)numel > i ? (int)(((unsigned)numel - i - 1) / step + 1) : 0;
    bn::FlatWalk p(i, step, C, HW);
    const T sl = T(slope);
    for (int j = 0; j < mine; j += bn::UNROLL) {
        T v[bn::UNROLL];
        int ch[bn::UNROLL];
        unsigned at[bn::UNROLL];
#pragma unroll
        for (int u = 0; u < bn::UNROLL; ++u) {
            at[u] = i;
            ch[u] = p.c;
            if (j + u < mine) v[u] = x[i];
            i += step;
            p.next();
        }
#pragma unroll
        for (int u = 0; u < bn::UNROLL; ++u) {
            if (j + u < mine) {
                const int c = ch[u];
                const T xhat = (v[u] - mean[c]) * invstd[c];
                const T out = bn::bn_output(xhat, w != nullptr ? w[c] : T(1),
                                            b != nullptr ? b[c] : T(0));
                y[at[u]] = bn::act_forward<ACT>(out, sl);
            }
        }
    }
}

// ------------------------------------------------------------- backward
// Same split and walk as bn_stats_partial: block (c, k) sums g and g*x_hat
// over its chunk (per-thread sums, then block_sum2). With a fused activation
// g = act'(y) dy, y recomputed from x (weight / bias may be null).
template <typename T, int ACT>
__global__ void bn_backward_partial(const T* __restrict__ dy, const T* __restrict__ x,
                                    const T* __restrict__ mean, const T* __restrict__ invstd,
                                    const T* __restrict__ w, const T* __restrict__ b,
                                    T* __restrict__ psum, T* __restrict__ psumx, int C, int HW,
                                    int M, int chunk, int nchunk, double slope) {
    const int c = blockIdx.x, k = blockIdx.y, t = threadIdx.x, step = blockDim.x;
    const int lo = k * chunk;
    const int len = nn::min_(chunk, M - lo);
    const int mine = bn::items_of(len, t, step);
    const T mu = mean[c], inv = invstd[c];
    const T wc = (ACT != 0 && w != nullptr) ? w[c] : T(1);
    const T bc = (ACT != 0 && b != nullptr) ? b[c] : T(0);
    const T sl = T(slope);
    bn::ChannelWalk p(c, C, HW, (unsigned)lo + (unsigned)t, step);
    T s1 = T(0), s2 = T(0);
    for (int j = 0; j < mine; j += bn::UNROLL) {
        T xv[bn::UNROLL], gv[bn::UNROLL];
#pragma unroll
        for (int u = 0; u < bn::UNROLL; ++u) {
            if (j + u < mine) {
                xv[u] = x[p.off];
                gv[u] = dy[p.off];
            }
            p.next();
        }
#pragma unroll
        for (int u = 0; u < bn::UNROLL; ++u) {
            if (j + u < mine) {
                const T xhat = (xv[u] - mu) * inv;
                T g = gv[u];
                if (ACT != 0) g = bn::act_backward<ACT>(g, bn::bn_output(xhat, wc, bc), sl);
                s1 += g;
                s2 += g * xhat;
            }
        }
    }
    bn::block_sum2(s1, s2);
    if (t == 0) {
        psum[c * nchunk + k] = s1;
        psumx[c * nchunk + k] = s2;
    }
}

// One warp per channel: the chunks' sums in a fixed order. coef holds
// (sum(g)/M, sum(g x_hat)/M) as two rows of C; dweight / dbias may be null.
template <typename T>
__global__ void bn_backward_finalize(const T* __restrict__ psum, const T* __restrict__ psumx,
                                     T* __restrict__ coef, T* __restrict__ dw,
                                     T* __restrict__ db, int C, int M, int nchunk) {
    const int lane = threadIdx.x & 31;
    const int c = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (c >= C) return;  // warp-uniform; no __syncthreads in this kernel
    T s1 = T(0), s2 = T(0);
    for (int k = lane; k < nchunk; k += 32) {
        s1 += psum[c * nchunk + k];
        s2 += psumx[c * nchunk + k];
    }
    s1 = nn::warp_sum(s1);
    s2 = nn::warp_sum(s2);
    if (lane == 0) {
        coef[c] = s1 / T(M);
        coef[C + c] = s2 / T(M);
        if (db != nullptr) db[c] = s1;
        if (dw != nullptr) dw[c] = s2;
    }
}

// Grid-stride like bn_normalize. training != 0: dx = scale (g - coef0 -
// x_hat coef1), scale = w invstd (invstd without weight). training == 0:
// dx = scale g, and x is read only when the activation needs y.
template <typename T, int ACT>
__global__ void bn_backward_dx(const T* __restrict__ dy, const T* __restrict__ x,
                               const T* __restrict__ mean, const T* __restrict__ invstd,
                               const T* __restrict__ w, const T* __restrict__ b,
                               const T* __restrict__ coef, T* __restrict__ dx, int numel, int C,
                               int HW, int training, double slope) {
    const unsigned step = gridDim.x * blockDim.x;
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    const int mine = (unsigned)numel > i ? (int)(((unsigned)numel - i - 1) / step + 1) : 0;
    bn::FlatWalk p(i, step, C, HW);
    const T sl = T(slope);
    const bool need_x = training != 0 || ACT != 0;
    for (int j = 0; j < mine; j += bn::UNROLL) {
        T gv[bn::UNROLL], xv[bn::UNROLL];
        int ch[bn::UNROLL];
        unsigned at[bn::UNROLL];
#pragma unroll
        for (int u = 0; u < bn::UNROLL; ++u) {
            at[u] = i;
            ch[u] = p.c;
            xv[u] = T(0);
            if (j + u < mine) {
                gv[u] = dy[i];
                if (need_x) xv[u] = x[i];
            }
            i += step;
            p.next();
        }
#pragma unroll
        for (int u = 0; u < bn::UNROLL; ++u) {
            if (j + u < mine) {
                const int c = ch[u];
                const T inv = invstd[c];
                const T wc = w != nullptr ? w[c] : T(1);
                T g = gv[u];
                T xhat = T(0);
                if (need_x) xhat = (xv[u] - mean[c]) * inv;
                if (ACT != 0)
                    g = bn::act_backward<ACT>(
                        g, bn::bn_output(xhat, wc, b != nullptr ? b[c] : T(0)), sl);
                const T scale = w != nullptr ? wc * inv : inv;
                dx[at[u]] = training != 0 ? scale * (g - coef[c] - xhat * coef[C + c])
                                          : g * scale;
            }
        }
    }
}
