// loss.cu: binary cross-entropy, on probabilities and on logits, forward and
// backward.
//
// p (or the logits x) and the target t have the same shape and are seen as
// flat arrays of n elements. The reduction is "none" (a loss per element),
// "sum" or "mean" (one number, a 0-d array on the Python side).
//
// Formulas (the backend contract's, i.e. torch's), with g = dloss (/ n for
// mean):
//   probabilities: loss = -(t max(log p, -100) + (1 - t) max(log1p(-p), -100))
//                  dp   = g (p - t) / max(p (1 - p), EPS),  EPS = float32(1e-12)
//                  dt   = g (max(log1p(-p), -100) - max(log p, -100))
//   logits:        loss = (1 - t) x + softplus(-x)
//                       = (1 - t) x + max(-x, 0) + log1p(exp(-|x|))
//                  dx   = g (sigmoid(x) - t),   dt = -g x
// Why these forms:
//   - p = 0 or 1 is legal: log gives -inf and the clamp turns it into -100,
//     so the loss and dt stay finite; dp stays finite through EPS (torch's
//     1e-12 as a C float, 9.99999996e-13, in float32 and float64 alike).
//   - log1p(-p), not log(1 - p): for p = 1e-7 in float32, 1 - p rounds to
//     1 - 1.19e-7 and log(1 - p) is 19% off; log1pf is accurate to an ulp.
//   - softplus(-x) as max(-x, 0) + log1p(exp(-|x|)): exp(-|x|) lies in (0, 1],
//     so it never overflows (x = -100 or -1000 is fine), and log1p keeps the
//     tiny values of exp(-|x|) for large |x| that log(1 + e) would round away.
//     The linear part (1 - t) x + max(-x, 0) is taken as (1 - t) x for x >= 0
//     and -t x below: the same value with one rounding instead of a sum that
//     cancels (t = 0, x = -26: -26 + 26 is 0 and the 5e-12 tail survives, but
//     (1 - t) x + softplus(-x) would round the tail away first).
//   - sigmoid as 1/(1+e) for x >= 0 and e/(1+e) below, e = exp(-|x|): each
//     branch is the exact form on its side of zero and neither overflows.
// The math is the accurate CUDA library functions (logf/log1pf/expf via
// nn::log_/log1p_/exp_), not the __fast intrinsics.
//
// Kernels
//   bce_forward_none<T, LOGITS>    flat grid, one element per thread, 256
//       threads per block: loads are coalesced, the elementwise loss stored.
//   bce_forward_partial<T, LOGITS> the sum: block b owns the contiguous chunk
//       [b*chunk, min(n, (b+1)*chunk)); its threads stride through it by
//       blockDim (coalesced), each keeping a running sum in T; then a block
//       sum (nn::warp_sum, one shared slot per warp, warp 0 sums the slots).
//       With one block (small n: the DCGAN's loss has batch-size elements)
//       that total, / n for mean, IS the result: one launch. Otherwise block
//       b writes partial[b] and
//   bce_sum_partials<T>            one block adds the partials in a fixed
//       order (thread i: partials i, i+256, ...; then the block sum) and
//       divides by n for mean.
//     The split (loss.py): at least MIN_CHUNK = 4096 elements per block (16
//     per thread, so a block's work outweighs its launch and final-pass
//     cost), at most MAX_PARTIALS = 1024 blocks (~8 per SM: the SMs stay
//     busy, and the final pass stays a few loads per thread).
//     No atomics anywhere: the split (chunk, number of blocks) is a pure
//     function of n, chosen on the host, and every sum has a fixed order, so
//     the loss is bitwise reproducible run to run. Two short passes instead
//     of one: a single block would leave 131 of an H100's 132 SMs idle on a
//     large loss, and a "last block finishes" scheme needs atomics.
//   bce_backward<T, LOGITS>        flat grid: dp (or dx) and, when asked for,
//       dt from the same loads. dloss is read in the kernel (a 0-d device
//       array for sum/mean: no host sync to fetch it), / n for mean.
// LOGITS is a template parameter: the two forms share the launchers and the
// reduction, and each instantiation has only its own math.
#include "common.cuh"

namespace {

constexpr int kThreads = 256;        // threads per block of the flat kernels
constexpr int kReduceThreads = 256;  // at most, per block of the reduction kernels

// torch's BCE eps: 1e-12 rounded to float, then widened (exact in double).
template <typename T>
__device__ __forceinline__ T bce_eps() { return T(1e-12f); }

// (max(log p, -100), max(log1p(-p), -100)): -inf at p = 0 or 1 becomes -100.
template <typename T>
__device__ __forceinline__ void clamped_logs(T p, T& log_p, T& log_1mp) {
    log_p = nn::max_(nn::log_(p), T(-100));
    log_1mp = nn::max_(nn::log1p_(-p), T(-100));
}

// The loss of one element (p is the logit x when LOGITS).
template <typename T, int LOGITS>
__device__ __forceinline__ T bce_elem(T p, T t) {
    if (LOGITS) {
        // (1 - t) x + max(-x, 0), without the cancellation (see the top).
        const T linear = p >= T(0) ? (T(1) - t) * p : -(t * p);
        return linear + nn::log1p_(nn::exp_(-nn::abs_(p)));
    }
    T log_p, log_1mp;
    clamped_logs(p, log_p, log_1mp);
    return -(t * log_p + (T(1) - t) * log_1mp);
}

// Sum of v over the block, valid in thread 0. blockDim.x is a multiple of 32
// (at most 1024): each warp reduces by shuffles, lane 0 parks the warp's sum
// in shared memory, and warp 0 adds the parked sums. Fixed order throughout.
// Called once per kernel (the shared slots are not reused).
template <typename T>
__device__ __forceinline__ T block_sum(T v) {
    __shared__ T warp_sums[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = nn::warp_sum(v);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    T total = T(0);
    if (warp == 0) {  // warp-uniform: all 32 lanes of warp 0 shuffle
        total = lane < (int)(blockDim.x / 32) ? warp_sums[lane] : T(0);
        total = nn::warp_sum(total);
    }
    return total;
}

}  // namespace

// ------------------------------------------------------------------ forward
template <typename T, int LOGITS>
__global__ void __launch_bounds__(kThreads)
bce_forward_none(const T* __restrict__ p, const T* __restrict__ t, T* __restrict__ out, int n) {
    const int i = blockIdx.x * kThreads + threadIdx.x;
    if (i < n) out[i] = bce_elem<T, LOGITS>(p[i], t[i]);
}

// out[blockIdx.x] = sum of the losses of the block's chunk; with a single
// block, mean != 0 divides by n and out is the 0-d result.
template <typename T, int LOGITS>
__global__ void __launch_bounds__(kReduceThreads)
bce_forward_partial(const T* __restrict__ p, const T* __restrict__ t, T* __restrict__ out,
                    int n, int chunk, int mean) {
    const int begin = blockIdx.x * chunk;
    const int end = nn::min_(n, begin + chunk);
    T acc = T(0);
    for (int i = begin + (int)threadIdx.x; i < end; i += blockDim.x)
        acc += bce_elem<T, LOGITS>(p[i], t[i]);
    T total = block_sum(acc);
    if (threadIdx.x == 0) {
        if (gridDim.x == 1 && mean) total = total / T(n);
        out[blockIdx.x] = total;
    }
}

// *out = the sum of partials[0:count] (/ n for mean), in a fixed order.
template <typename T>
__global__ void __launch_bounds__(kReduceThreads)
bce_sum_partials(const T* __restrict__ partials, T* __restrict__ out, int count, int n,
                 int mean) {
    T acc = T(0);
    for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
    T total = block_sum(acc);
    if (threadIdx.x == 0) *out = mean ? total / T(n) : total;
}

// ----------------------------------------------------------------- backward
// reduction: 0 none (dloss has n elements), 1 sum, 2 mean (dloss is 0-d).
// dt may be null when need_dt == 0.
template <typename T, int LOGITS>
__global__ void __launch_bounds__(kThreads)
bce_backward(const T* __restrict__ dloss, const T* __restrict__ p, const T* __restrict__ t,
             T* __restrict__ dp, T* __restrict__ dt, int n, int reduction, int need_dt) {
    const int i = blockIdx.x * kThreads + threadIdx.x;
    if (i >= n) return;
    T g;
    if (reduction == 0) {
        g = dloss[i];
    } else {
        g = dloss[0];  // the same address for every thread: one broadcast load
        if (reduction == 2) g = g / T(n);
    }
    const T x = p[i], ti = t[i];
    if (LOGITS) {
        const T e = nn::exp_(-nn::abs_(x));
        const T sig = x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
        dp[i] = g * (sig - ti);
        if (need_dt) dt[i] = -g * x;
    } else {
        dp[i] = g * (x - ti) / nn::max_(x * (T(1) - x), bce_eps<T>());
        if (need_dt) {
            T log_p, log_1mp;
            clamped_logs(x, log_p, log_1mp);
            dt[i] = g * (log_1mp - log_p);
        }
    }
}
