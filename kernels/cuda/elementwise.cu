// elementwise.cu: fill, strided copy/cast, broadcasting arithmetic and
// comparisons, unary math, select (where), activations and Philox random
// numbers.
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
//   ewise<To, Ti, I> out = op(a, b, p0, p1), every operand a strided view
//       (the output included: copy_ writes through slices and transposes):
//       the one kernel behind copy_, cast, contiguous, add/sub/mul/div,
//       maximum/minimum, the comparisons, neg, the unary math functions,
//       pow_scalar and clamp. Each linear index (row-major over the output's
//       shape, its dims in the output's memory order) is unravelled into
//       coordinates of the (coalesced) shape and dotted with every operand's
//       element strides, the output's too: for a contiguous output that dot
//       product is the linear index again (a few integer multiply-adds a
//       memory-bound kernel does not notice), for a strided one it is the
//       scatter address, with no second kernel. Broadcasting is stride 0 on a
//       broadcast dimension and a 0-d operand is all strides 0, so
//       broadcasting binary ops, transposed copies and slices are all the
//       same index arithmetic. The host (kernels/strided.py, shared with the
//       Triton backend) first
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
//           GPUs, so the wide path is only compiled in where needed;
//         - puts the dims in the output's memory order first (plan_scatter;
//           a no-op for a contiguous output), so that consecutive threads
//           write neighbouring addresses whenever the destination allows it:
//           a transposed destination is written row by row and its source
//           gathered;
//         - refuses an output with overlapping elements (a stride-0 dim),
//           and copies a source that overlaps its destination first, so no
//           thread reads what another has already overwritten.
//       What op computes depends on the type pair (resolved at compile time,
//       `if constexpr`, so each instantiation carries only its own ops):
//         To == Ti float/double: arithmetic in T. add/sub/mul/div and neg;
//           maximum/minimum propagate NaN (np.maximum, not fmax); exp, log,
//           log1p, sqrt, abs are the accurate CUDA functions; rsqrt is
//           1 / sqrt(x), two IEEE roundings, exactly NumPy's 1 / np.sqrt
//           (CUDA's rsqrtf is 2 ulp); pow(x, p0) is C pow, which has
//           NumPy's special cases (x**0 = 1 for NaN too, negative x with a
//           non-integer exponent NaN, 0**negative inf), except p0 = 2,
//           x * x (exact); clamp is min(max(x, p0), p1) with NaN-propagating
//           max/min (a missing bound arrives as -inf/+inf). The scalars p0,
//           p1 arrive as doubles and are rounded to T, as NumPy rounds a
//           Python float for a float32 array. float division and sqrt are
//           IEEE (`/` is div.rn and sqrtf sqrt.rn without -use_fast_math),
//           so add/sub/mul/div/sqrt/rsqrt match NumPy bit for bit.
//         To == bool, Ti float/double: the comparisons gt/ge/lt/le/eq (false
//           whenever NaN is involved), or the cast (nonzero -> true; NaN is
//           nonzero).
//         any other pair: the cast alone, in every direction between
//           float32, float64, int64 and bool (bool -> 0/1; float -> int64
//           truncates toward zero, NaN -> 0 and out-of-range values
//           saturate, the GPU's cvt.rzi, defined here on the host too, where
//           NumPy would give INT64_MIN); same-dtype copies of integer or
//           bool arrays (of any width) move the bits as unsigned words.
//       Binary ops get both inputs in one dtype (the launcher casts a
//       mixed-dtype operand first, exactly). op is a runtime argument (a
//       uniform branch) rather than a template parameter: one instantiation
//       per (op, type pair, index type) would be about 200 to compile (NVRTC
//       on first use, g++ under the emulator) instead of 36 (18 type pairs x
//       2 index types), for no measurable gain on a memory-bound kernel.
//   where<T, I>      out = mask ? a : b, the bool mask and both inputs
//       broadcast to the output's shape: the same gather with four operands
//       (out, mask, a, b). The three loads are independent (both a and b are
//       read, as a select, not a branch), so all are in flight at once.
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

// The ewise ops (elementwise.py's _OPS). The binary ones, which read b, are
// the contiguous range OP_ADD..OP_EQ. The unary primitives are numbered
// OP_UNARY + their `code` in kernels/registry.py (UNARY): a new one is one
// more entry there and one more case below.
enum EwiseOp {
    OP_COPY = 0, OP_ADD = 1, OP_SUB = 2, OP_MUL = 3, OP_DIV = 4, OP_MAXIMUM = 5,
    OP_MINIMUM = 6, OP_GT = 7, OP_GE = 8, OP_LT = 9, OP_LE = 10, OP_EQ = 11, OP_NEG = 12,
    OP_POW = 13, OP_CLAMP = 14,
    OP_UNARY = 32,
    OP_EXP = OP_UNARY + 0, OP_LOG = OP_UNARY + 1, OP_LOG1P = OP_UNARY + 2,
    OP_SQRT = OP_UNARY + 3, OP_RSQRT = OP_UNARY + 4, OP_ABS = OP_UNARY + 5,
    OP_EXPM1 = OP_UNARY + 6
};
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
// Type traits for the `if constexpr` dispatch of ewise (no <type_traits>
// under NVRTC).
template <typename A, typename B>
struct same_type { static constexpr bool value = false; };
template <typename A>
struct same_type<A, A> { static constexpr bool value = true; };
template <typename T>
struct is_float { static constexpr bool value = same_type<T, float>::value ||
                                                same_type<T, double>::value; };

// Element offsets of element i in each of K operands (operand 0 is the
// output). d[k] / s[j][k] list the coalesced dims innermost first: peel one
// coordinate per dim with a div/mod pair; the outermost of the `rank` dims
// needs no modulo (whatever is left of i is its coordinate), and the loop
// stops there. Fully unrolled with constant indices, so d and s stay in
// registers; `rank` is the same for every thread, so the early exit never
// diverges.
template <int K, typename I>
__device__ __forceinline__ void gather_offsets(I i, int rank, const I (&d)[5],
                                               const I (&s)[K][6], I (&off)[K]) {
#pragma unroll
    for (int j = 0; j < K; ++j) off[j] = 0;
#pragma unroll
    for (int k = 0; k < 6; ++k) {
        if (k + 1 == rank || k == 5) {  // the outermost dim: its coordinate is i
#pragma unroll
            for (int j = 0; j < K; ++j) off[j] += i * s[j][k];
            break;
        }
        const I q = i / d[k];
        const I c = i - q * d[k];
#pragma unroll
        for (int j = 0; j < K; ++j) off[j] += c * s[j][k];
        i = q;
    }
}

// The gather loop ewise and where share: for each of this thread's
// elements (EW_ILP per tile, the flat loop of the header), off = its K
// operand offsets and r = load(off); all EW_ILP loads first (independent
// gathers in flight, and safe when an input is the output itself, element
// for element), then out[off[0]] = r. The launcher chose I so that n + step
// and every offset fit in it.
template <int K, typename I, typename To, typename Load>
__device__ __forceinline__ void gather_loop(To* out, I n, int rank, const I (&d)[5],
                                            const I (&s)[K][6], Load load) {
    const I tile = I(blockDim.x) * EW_ILP;
    const I step = tile * I(gridDim.x);
    for (I start = I(blockIdx.x) * tile; start < n; start += step) {
        To r[EW_ILP];
        I o[EW_ILP];
#pragma unroll
        for (int u = 0; u < EW_ILP; ++u) {
            const I i = start + I(u) * I(blockDim.x) + I(threadIdx.x);
            r[u] = To(0);
            o[u] = 0;
            if (i < n) {
                I off[K];
                gather_offsets<K>(i, rank, d, s, off);
                o[u] = off[0];
                r[u] = load(off);
            }
        }
#pragma unroll
        for (int u = 0; u < EW_ILP; ++u) {
            const I i = start + I(u) * I(blockDim.x) + I(threadIdx.x);
            if (i < n) out[o[u]] = r[u];
        }
    }
}

// The cast of copy_/astype: To(x), except bool (nonzero, NaN included, is
// true) and float -> int64 (truncation; NaN -> 0 and saturation, as the
// GPU's cvt.rzi.s64, so that the host build has no undefined conversion).
template <typename To, typename Ti>
__device__ __forceinline__ To convert(Ti x) {
    if constexpr (same_type<To, bool>::value) {
        return !(x == Ti(0));
    } else if constexpr (same_type<To, long long>::value && is_float<Ti>::value) {
        if (x != x) return 0;
        if (x >= Ti(9223372036854775808.0)) return 9223372036854775807ll;
        if (x < Ti(-9223372036854775808.0)) return -9223372036854775807ll - 1;
        return (long long)x;
    } else {
        return To(x);
    }
}

// To == Ti == T, float or double: every arithmetic op, in T.
template <typename T>
__device__ __forceinline__ T math_op(int op, T x, T y, T p0, T p1) {
    switch (op) {
        case OP_ADD: return T(x + y);
        case OP_SUB: return T(x - y);
        case OP_MUL: return T(x * y);
        case OP_DIV: return T(x / y);
        case OP_MAXIMUM: return nn::max_nan_(x, y);
        case OP_MINIMUM: return nn::min_nan_(x, y);
        case OP_NEG: return T(-x);
        case OP_EXP: return nn::exp_(x);
        case OP_LOG: return nn::log_(x);
        case OP_LOG1P: return nn::log1p_(x);
        case OP_SQRT: return nn::sqrt_(x);
        case OP_RSQRT: return T(T(1) / nn::sqrt_(x));  // not rsqrt: see the header
        case OP_ABS: return nn::abs_(x);
        case OP_EXPM1:
            if constexpr (sizeof(T) == 4) return expm1f(x); else return expm1(x);
        // x ** 2 exactly; x ** 0.5 is sqrt, as NumPy (C's pow(-inf, 0.5) is
        // +inf, NumPy's and torch's NaN).
        case OP_POW:
            return p0 == T(2) ? T(x * x) : p0 == T(0.5) ? nn::sqrt_(x) : nn::pow_(x, p0);
        case OP_CLAMP: return nn::min_nan_(nn::max_nan_(x, p0), p1);
        default: return x;  // OP_COPY
    }
}

// Ti float or double, To bool: a comparison, or the cast.
template <typename T>
__device__ __forceinline__ bool compare_op(int op, T x, T y) {
    switch (op) {
        case OP_GT: return x > y;
        case OP_GE: return x >= y;
        case OP_LT: return x < y;
        case OP_LE: return x <= y;
        case OP_EQ: return x == y;
        default: return convert<bool>(x);  // OP_COPY
    }
}

template <typename To, typename Ti>
__device__ __forceinline__ To apply_op(int op, Ti x, Ti y, double p0, double p1) {
    if constexpr (is_float<Ti>::value && same_type<To, Ti>::value) {
        return math_op(op, x, y, Ti(p0), Ti(p1));
    } else if constexpr (is_float<Ti>::value && same_type<To, bool>::value) {
        return compare_op(op, x, y);
    } else {
        return convert<To>(x);  // OP_COPY: a cast or a bit copy
    }
}

// out[o_base + offset_o(i)] = op(a[a_base + offset_a(i)], b[b_base + offset_b(i)])
// for the n elements of the output's shape. b is only read by the binary
// ops (it is null for the others). dims d0..d4 (the 6th, outermost, is
// never needed) and strides o0..o5 / a0..a5 / b0..b5 are in elements,
// innermost first.
template <typename To, typename Ti, typename I>
__global__ void __launch_bounds__(256)
    ewise(To* out, const Ti* a, const Ti* b, int n, int rank, int d0, int d1, int d2, int d3,
          int d4, long long o_base, long long o0, long long o1, long long o2, long long o3,
          long long o4, long long o5, long long a_base, long long a0, long long a1,
          long long a2, long long a3, long long a4, long long a5, long long b_base,
          long long b0, long long b1, long long b2, long long b3, long long b4, long long b5,
          int op, double p0, double p1) {
    const I d[5] = {I(d0), I(d1), I(d2), I(d3), I(d4)};
    const I s[3][6] = {{I(o0), I(o1), I(o2), I(o3), I(o4), I(o5)},
                       {I(a0), I(a1), I(a2), I(a3), I(a4), I(a5)},
                       {I(b0), I(b1), I(b2), I(b3), I(b4), I(b5)}};
    const Ti* pa = a + I(a_base);
    const Ti* pb = b == nullptr ? b : b + I(b_base);
    const bool binary = op >= OP_ADD && op <= OP_EQ;
    gather_loop<3>(out + I(o_base), I(n), rank, d, s, [&](const I (&off)[3]) {
        const Ti x = pa[off[1]];
        const Ti y = binary ? pb[off[2]] : Ti(0);
        return apply_op<To, Ti>(op, x, y, p0, p1);
    });
}

// ================================================================= where
// out = mask ? a : b over the output's n elements, all four operands
// strided (mask 1 byte per element), as ewise.
template <typename T, typename I>
__global__ void __launch_bounds__(256)
    where(T* out, const bool* mask, const T* a, const T* b, int n, int rank, int d0, int d1,
          int d2, int d3, int d4, long long o_base, long long o0, long long o1, long long o2,
          long long o3, long long o4, long long o5, long long m_base, long long m0,
          long long m1, long long m2, long long m3, long long m4, long long m5,
          long long a_base, long long a0, long long a1, long long a2, long long a3,
          long long a4, long long a5, long long b_base, long long b0, long long b1,
          long long b2, long long b3, long long b4, long long b5) {
    const I d[5] = {I(d0), I(d1), I(d2), I(d3), I(d4)};
    const I s[4][6] = {{I(o0), I(o1), I(o2), I(o3), I(o4), I(o5)},
                       {I(m0), I(m1), I(m2), I(m3), I(m4), I(m5)},
                       {I(a0), I(a1), I(a2), I(a3), I(a4), I(a5)},
                       {I(b0), I(b1), I(b2), I(b3), I(b4), I(b5)}};
    const bool* pm = mask + I(m_base);
    const T* pa = a + I(a_base);
    const T* pb = b + I(b_base);
    gather_loop<4>(out + I(o_base), I(n), rank, d, s, [&](const I (&off)[4]) {
        const bool m = pm[off[1]];
        const T x = pa[off[2]], y = pb[off[3]];
        return m ? x : y;
    });
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
