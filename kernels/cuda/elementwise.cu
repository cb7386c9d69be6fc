// elementwise.cu: fill, strided copy/cast, broadcasting arithmetic,
// activations and Philox random numbers.
//
// Every kernel here is memory-bound: it reads each input element once and
// writes each output element once, with a few flops (or, for the random
// numbers, a few dozen integer ops) in between. What matters on an H100 is
// (1) coalesced accesses: consecutive threads touch consecutive output
// elements, so a warp's 32 loads or stores of a contiguous array are one
// 128-byte (float) or 256-byte (double) transaction; (2) enough bytes in
// flight per SM to cover DRAM latency: each thread first issues EW_ILP
// independent loads, then computes and stores (explicit instruction-level
// parallelism, which also holds when input and output might alias and the
// compiler could not reorder on its own); (3) enough blocks to fill all 132
// SMs.
//
// The flat loop every kernel shares (grid-stride over tiles):
//   block = 256 threads; a tile is blockDim.x * EW_ILP consecutive elements,
//   and thread t of the block takes elements t, t + 256, t + 512, t + 768 of
//   it (each of the EW_ILP accesses is coalesced across the warp). Block b
//   takes tiles b, b + gridDim.x, ... The launcher caps the grid (a few
//   waves of the machine on a GPU, a handful of blocks under the emulator),
//   so huge arrays loop inside the kernel instead of launching millions of
//   blocks; no element depends on the grid or block size, the random
//   numbers included. Loop bounds are written as "n - start > k" rather than
//   "start + k < n" so that no int ever overflows near n = 2**31 (ewise
//   instead runs in the index type I, which the launcher picks wide enough
//   for n plus one grid stride).
//
// Kernels
//   fill<U>          out[i] = value for a contiguous array of any dtype. The
//       value arrives as its bit pattern in a long long and U is the unsigned
//       integer type of the element's width (1, 2, 4 or 8 bytes): a float64
//       fill value (0.1) and an int64 counter arrive exactly, and one kernel
//       serves float32/float64/int64/int32/bool alike.
//   ewise<To, Ti, I> out = op(a, b) with a contiguous output and strided
//       inputs: the one kernel behind copy_, cast, contiguous, add/sub/mul/
//       div and neg. Each output element's linear index is unravelled into
//       coordinates of the (coalesced) output shape and dotted with every
//       input's element strides. Broadcasting is stride 0 on a broadcast
//       dimension and a 0-d operand is all strides 0, so broadcasting binary
//       ops, transposed copies and slices are all the same index arithmetic.
//       The host (kernels/strided.py, shared with the Triton backend) first
//         - drops size-1 dims and merges neighbours contiguous in every
//           operand (PyTorch's TensorIterator trick): a contiguous copy or a
//           same-shape add is rank 1 (no division at all; the loads are then
//           as coalesced as the strides allow), a bias add over NCHW rank 3
//           at most. rank (<= 6) is a kernel argument: the unrolled loop
//           below does rank - 1 div/mod pairs and stops, and the branches on
//           rank are uniform across the grid, so they cost no divergence;
//         - handles negative strides by passing a pointer to the view's
//           lowest address plus a non-negative base offset;
//         - picks the index type I: int, unless an index or offset could
//           reach 2**31 (a strided view of a huge buffer), then long long.
//           64-bit integer division is several times slower than 32-bit on
//           GPUs, so the wide path is only compiled in where needed.
//       Loads are converted to To: that is the cast in copy_/cast (Ti != To
//       only for float32 <-> float64; same-dtype copies of integer or bool
//       arrays move the bits as unsigned words). Binary ops get both inputs
//       in one dtype (the launcher casts a mixed-dtype operand first). op is
//       a runtime argument (a uniform branch) rather than a template
//       parameter: 6 ops x 8 type pairs x 2 index types would be 96
//       instantiations to compile (NVRTC on first use, g++ under the
//       emulator) instead of 16, for no measurable gain on a memory-bound
//       kernel. float division is IEEE (CUDA's `/` is div.rn without
//       -use_fast_math), so results match NumPy bit for bit.
//   act_forward<T> / act_backward<T>   contiguous activations, selected by a
//       runtime (uniform) act code:
//         leaky_relu  y = x > 0 ? x : slope*x;     dx = x > 0 ? dy : slope*dy
//         relu        y = x < 0 ? 0 : x (NaN propagates, as np.maximum);
//                     dx = y > 0 ? dy : 0 (from y, torch's choice at 0)
//         tanh        y = tanh(x) (the accurate CUDA tanhf/tanh);
//                     dx = dy * 4e/(1+e)^2, e = exp(-2|x|), from x
//         sigmoid     e = exp(-|x|); y = x >= 0 ? 1/(1+e) : e/(1+e);
//                     dx = dy * e/(1+e)^2, from x
//       e <= 1 in every form, so nothing overflows at any |x|, and the
//       gradients come from x rather than from y = tanh(x) or sigmoid(x):
//       once those saturate, 1 - y^2 or y(1 - y) keeps few correct digits
//       (the backend contract's reason). The slope arrives as a double and
//       is rounded to T in the kernel, as NumPy rounds it for float32.
//   rand_uniform<T> / rand_normal<T>   counter-based random numbers; the
//       exact construction (a seed gives the same numbers on every GPU, at
//       every block size, and, up to the final rounding, in float32 and
//       float64):
//         key     k = (k0, k1) = (seed mod 2**32, seed >> 32)
//         counter element i of a draw uses c = offset + i (a 64-bit integer):
//                 ctr = (c mod 2**32, c >> 32, 0, 0)
//         bits    (r0, r1, r2, r3) = Philox4x32-10(ctr, k) (Salmon et al.,
//                 "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
//                 10 rounds of
//                   (c0, c1, c2, c3) <- (hi(M1*c2) ^ c1 ^ k0, lo(M1*c2),
//                                        hi(M0*c0) ^ c3 ^ k1, lo(M0*c0))
//                 with M0 = 0xD2511F53, M1 = 0xCD9E8D57 (hi/lo: the high and
//                 low 32 bits of the 64-bit product; hi is __umulhi), and the
//                 key bumped by (0x9E3779B9, 0xBB67AE85) between rounds: the
//                 Random123 / cuRAND generator, checked against Random123's
//                 known-answer vectors in the tests.
//         uniform u  = ((r0 >> 5) * 2**26 + (r1 >> 6)) / 2**53, a double
//                 with all 53 bits random, in [0, 1 - 2**-53];
//                 v = low + (high - low) * u in double, rounded to T, and a v
//                 that rounds to `high` (or above) becomes the largest T
//                 below high: the interval stays [low, high).
//         normal  u1 from (r0, r1) and u2 from (r2, r3) as above;
//                 z = sqrt(-2 log(1 - u1)) * cos(2 pi u2) (Box-Muller; 1 - u1
//                 is in [2**-53, 1], so the log is finite and |z| <= 8.58);
//                 v = mean + std * z in double, rounded to T. The sine half of
//                 the pair is dropped: one Philox call per element keeps
//                 every element a pure function of (seed, offset + i).
//       The backend advances offset by the element count after every draw,
//       so consecutive draws never reuse a counter, and (seed, offset) is the
//       whole generator state. The mapping runs in double even for float32
//       outputs (the H100 has full-rate-ish FP64; the kernel stays
//       memory/integer-bound).
#include "common.cuh"

// Elements per thread per tile (the launcher sizes its grid with the same
// number; only the grid, never a result, depends on it).
constexpr int EW_ILP = 4;

enum EwiseOp { OP_COPY = 0, OP_ADD = 1, OP_SUB = 2, OP_MUL = 3, OP_DIV = 4, OP_NEG = 5 };
enum Act { ACT_LEAKY_RELU = 0, ACT_RELU = 1, ACT_TANH = 2, ACT_SIGMOID = 3 };

// The flat loop of the header, written once: body(start) for each of this
// block's tiles in grid-stride order. Element k of a tile (k = u*blockDim.x +
// threadIdx.x, u < EW_ILP) exists iff n - start > k; the loop stops before
// start + step could overflow an int.
template <typename F>
__device__ __forceinline__ void for_each_tile(int n, F body) {
    const int tile = blockDim.x * EW_ILP;
    const int step = tile * gridDim.x;
    for (int start = blockIdx.x * tile; start < n; start += step) {
        body(start);
        if (n - start <= step) break;
    }
}

// f(i) for every element i this thread owns, when elements are independent
// (nothing to load first): fill and the random draws.
template <typename F>
__device__ __forceinline__ void for_each_element(int n, F f) {
    for_each_tile(n, [&](int start) {
#pragma unroll
        for (int u = 0; u < EW_ILP; ++u) {
            const int k = u * blockDim.x + threadIdx.x;
            if (n - start > k) f(start + k);
        }
    });
}

// ================================================================== fill
template <typename U>
__global__ void __launch_bounds__(256) fill(U* out, int n, long long bits) {
    const U value = (U)(unsigned long long)bits;  // the low sizeof(U) bytes
    for_each_element(n, [&](int i) { out[i] = value; });
}

// ======================================================== strided gather
// Element offsets of output element i in inputs a and b. d[k] / sa[k] / sb[k]
// list the coalesced dims innermost first: peel one coordinate per dim with a
// div/mod pair; the outermost of the `rank` dims needs no modulo (whatever is
// left of i is its coordinate), and the loop stops there. Fully unrolled with
// constant indices, so d/sa/sb stay in registers; `rank` is the same for
// every thread, so the early exit never diverges.
template <typename I>
__device__ __forceinline__ void gather_offsets(I i, int rank, const I (&d)[5], const I (&sa)[6],
                                               const I (&sb)[6], I& oa, I& ob) {
    oa = 0;
    ob = 0;
#pragma unroll
    for (int k = 0; k < 6; ++k) {
        if (k + 1 == rank || k == 5) {  // the outermost dim: its coordinate is i
            oa += i * sa[k];
            ob += i * sb[k];
            break;
        }
        const I q = i / d[k];
        const I c = i - q * d[k];
        oa += c * sa[k];
        ob += c * sb[k];
        i = q;
    }
}

template <typename T>
__device__ __forceinline__ T apply_op(int op, T x, T y) {
    switch (op) {
        case OP_ADD: return T(x + y);
        case OP_SUB: return T(x - y);
        case OP_MUL: return T(x * y);
        case OP_DIV: return T(x / y);
        case OP_NEG: return T(-x);
        default: return x;  // OP_COPY (the cast already happened on load)
    }
}

// out[i] = op(a[a_base + offset_a(i)], b[b_base + offset_b(i)]) for the
// contiguous output's n elements. b is only read by the binary ops (it is
// null for copy/neg). dims d0..d4 (the 6th, outermost, is never needed) and
// strides a0..a5 / b0..b5 are in elements, innermost first.
template <typename To, typename Ti, typename I>
__global__ void __launch_bounds__(256)
    ewise(To* out, const Ti* a, const Ti* b, int n, int op, int rank, int d0, int d1, int d2,
          int d3, int d4, long long a_base, long long a0, long long a1, long long a2,
          long long a3, long long a4, long long a5, long long b_base, long long b0, long long b1,
          long long b2, long long b3, long long b4, long long b5) {
    const I d[5] = {I(d0), I(d1), I(d2), I(d3), I(d4)};
    const I sa[6] = {I(a0), I(a1), I(a2), I(a3), I(a4), I(a5)};
    const I sb[6] = {I(b0), I(b1), I(b2), I(b3), I(b4), I(b5)};
    const Ti* pa = a + I(a_base);
    const Ti* pb = b == nullptr ? b : b + I(b_base);
    const bool binary = op >= OP_ADD && op <= OP_DIV;
    // The launcher chose I so that n + step and every offset fit in it.
    const I tile = I(blockDim.x) * EW_ILP;
    const I step = tile * I(gridDim.x);
    for (I start = I(blockIdx.x) * tile; start < I(n); start += step) {
        To r[EW_ILP];
        // All loads first (EW_ILP independent gathers in flight), then stores.
#pragma unroll
        for (int u = 0; u < EW_ILP; ++u) {
            const I i = start + I(u) * I(blockDim.x) + I(threadIdx.x);
            r[u] = To(0);
            if (i < I(n)) {
                I oa, ob;
                gather_offsets(i, rank, d, sa, sb, oa, ob);
                const To x = To(pa[oa]);
                const To y = binary ? To(pb[ob]) : To(0);
                r[u] = apply_op(op, x, y);
            }
        }
#pragma unroll
        for (int u = 0; u < EW_ILP; ++u) {
            const I i = start + I(u) * I(blockDim.x) + I(threadIdx.x);
            if (i < I(n)) out[i] = r[u];
        }
    }
}

// =========================================================== activations
template <typename T>
__device__ __forceinline__ T act_fwd(int act, T x, T slope) {
    switch (act) {
        case ACT_LEAKY_RELU: return x > T(0) ? x : x * slope;
        case ACT_RELU: return x < T(0) ? T(0) : x;  // not max(x, 0): NaN stays NaN
        case ACT_TANH: return nn::tanh_(x);
        default: {  // ACT_SIGMOID: both branches from e = exp(-|x|) <= 1
            const T e = nn::exp_(-nn::abs_(x));
            return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
        }
    }
}

// s is x for leaky_relu/tanh/sigmoid and y for relu.
template <typename T>
__device__ __forceinline__ T act_bwd(int act, T dy, T s, T slope) {
    switch (act) {
        case ACT_LEAKY_RELU: return s > T(0) ? dy : dy * slope;
        case ACT_RELU: return s > T(0) ? dy : T(0);
        case ACT_TANH: {  // sech^2 x = 4e / (1 + e)^2, e = exp(-2|x|)
            const T e = nn::exp_(T(-2) * nn::abs_(s));
            return dy * (T(4) * e / ((T(1) + e) * (T(1) + e)));
        }
        default: {  // ACT_SIGMOID: sigmoid' = e / (1 + e)^2, e = exp(-|x|)
            const T e = nn::exp_(-nn::abs_(s));
            return dy * (e / ((T(1) + e) * (T(1) + e)));
        }
    }
}

template <typename T>
__global__ void __launch_bounds__(256) act_forward(const T* x, T* y, int n, int act,
                                                   double slope_) {
    const T slope = T(slope_);
    for_each_tile(n, [&](int start) {
        T v[EW_ILP];  // all loads first: EW_ILP in flight
#pragma unroll
        for (int u = 0; u < EW_ILP; ++u) {
            const int k = u * blockDim.x + threadIdx.x;
            v[u] = n - start > k ? x[start + k] : T(0);
        }
#pragma unroll
        for (int u = 0; u < EW_ILP; ++u) {
            const int k = u * blockDim.x + threadIdx.x;
            if (n - start > k) y[start + k] = act_fwd(act, v[u], slope);
        }
    });
}

template <typename T>
__global__ void __launch_bounds__(256) act_backward(const T* dy, const T* saved, T* dx, int n,
                                                    int act, double slope_) {
    const T slope = T(slope_);
    for_each_tile(n, [&](int start) {
        T g[EW_ILP], s[EW_ILP];
#pragma unroll
        for (int u = 0; u < EW_ILP; ++u) {
            const int k = u * blockDim.x + threadIdx.x;
            const bool in = n - start > k;
            g[u] = in ? dy[start + k] : T(0);
            s[u] = in ? saved[start + k] : T(0);
        }
#pragma unroll
        for (int u = 0; u < EW_ILP; ++u) {
            const int k = u * blockDim.x + threadIdx.x;
            if (n - start > k) dx[start + k] = act_bwd(act, g[u], s[u], slope);
        }
    });
}

// ================================================================ Philox
// Philox4x32-10 (see the header): 4 x 32 random bits from a 128-bit counter
// and a 64-bit key. Multiplies, xors and adds only: a few dozen integer
// instructions, no state in memory.
__device__ __forceinline__ void philox4x32_10(unsigned c0, unsigned c1, unsigned c2, unsigned c3,
                                              unsigned k0, unsigned k1, unsigned (&r)[4]) {
    const unsigned M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    const unsigned W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += W0;
            k1 += W1;
        }
        const unsigned hi0 = __umulhi(M0, c0), lo0 = M0 * c0;
        const unsigned hi1 = __umulhi(M1, c2), lo1 = M1 * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    r[0] = c0;
    r[1] = c1;
    r[2] = c2;
    r[3] = c3;
}

// A double in [0, 1 - 2**-53] from 64 random bits: the top 27 bits of hi
// and the top 26 of lo, all 53 mantissa bits random.
__device__ __forceinline__ double unit_double(unsigned hi, unsigned lo) {
    return ((double)(hi >> 5) * 67108864.0 + (double)(lo >> 6)) * (1.0 / 9007199254740992.0);
}

// The four Philox words of element i of a draw at (seed, offset).
__device__ __forceinline__ void philox_element(long long seed, long long offset, int i,
                                               unsigned (&r)[4]) {
    const unsigned long long c = (unsigned long long)offset + (unsigned long long)i;
    const unsigned long long k = (unsigned long long)seed;
    philox4x32_10((unsigned)c, (unsigned)(c >> 32), 0u, 0u, (unsigned)k, (unsigned)(k >> 32), r);
}

// U[low, high): p0 = low, p1 = high - low; v >= top (= high as T) -> below.
template <typename T>
__global__ void __launch_bounds__(256) rand_uniform(T* out, int n, long long seed, long long offset,
                                                    double p0, double p1, double top_,
                                                    double below_) {
    const T top = T(top_), below = T(below_);
    for_each_element(n, [&](int i) {
        unsigned r[4];
        philox_element(seed, offset, i, r);
        const T v = T(p0 + p1 * unit_double(r[0], r[1]));
        out[i] = v >= top ? below : v;
    });
}

// N(mean, std^2): p0 = mean, p1 = std.
template <typename T>
__global__ void __launch_bounds__(256) rand_normal(T* out, int n, long long seed, long long offset,
                                                   double p0, double p1) {
    const double two_pi = 6.283185307179586;
    for_each_element(n, [&](int i) {
        unsigned r[4];
        philox_element(seed, offset, i, r);
        const double u1 = unit_double(r[0], r[1]), u2 = unit_double(r[2], r[3]);
        const double z = nn::sqrt_(-2.0 * nn::log_(1.0 - u1)) * cos(two_pi * u2);
        out[i] = T(p0 + p1 * z);
    });
}
