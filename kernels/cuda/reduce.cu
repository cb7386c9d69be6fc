// reduce.cu: sum, mean, max, min, argmax, argmin and the variance over any
// set of axes, bitwise reproducible.
//
// The plan (kernels/strided.py's reduction_plan, shared with the Triton
// backend): a reduction over a set of axes is one pass per run of
// consecutive reduced axes, last run first; a pass sees its contiguous input
// as a 3-D view (outer, R, inner) and reduces the middle axis into a
// contiguous (outer, inner) array. No transposes: sum over (0, 2, 3) of NCHW
// is (N*C, H*W, 1) and then (1, N, C). So two kernels cover everything, each
// a template over the reduction's op functor (below):
//
//   reduce_rows<Op>  inner == 1: every output is a contiguous row of R.
//       A group of G threads (G = 32, a warp, for short rows; G = 256, the
//       whole block, for long ones) owns one row: thread g of the group
//       folds elements g, g + G, g + 2G, ... (a warp reads 32 consecutive
//       elements per load: coalesced), into RD_ILP independent accumulators
//       (4 loads in flight per thread, and 4 shorter dependency chains,
//       which also shortens the rounding-error chains of a sum). Then the
//       group's G partials are combined: a butterfly of shuffles (no shared
//       memory, nn::warp_sum's pattern with Op's combine); for G = 256, lane
//       0 of each warp parks its warp's total in shared memory and thread 0
//       combines the 8 totals in warp order.
//   reduce_cols<Op>  inner > 1: the reduced axis is strided by `inner`.
//       A block owns one outer index and TX consecutive inner columns (TX =
//       min(32, next power of two >= inner)), with its 256 threads laid out
//       as TX columns x TY = 256 / TX rows: thread (tx, ty) folds rows ty,
//       ty + TY, ... of column tx. A warp then reads 32 / TX row segments of
//       TX consecutive elements (one 128-byte line per row when TX = 32), and
//       every lane has work even when inner is 2 or 3 (TX = 32 would leave
//       most lanes idle there). The combine: lanes l and l ^ m hold the same
//       column for every m >= TX, so a butterfly over m = 16 .. TX (the top
//       of the warp butterfly, stopping at TX; the whole of it for TX = 1)
//       leaves every lane with its column's warp total; the first TX lanes of
//       each warp park those in shared memory and the first TX threads of the
//       block combine the 8 warps' totals in order.
//   Both loop over their row groups / column blocks with a grid stride, so
//   the launcher can cap the grid; no result depends on which block does
//   the work.
//
// The op functors: Op::T is the element type (float or double), Op::Acc
// the accumulator, and each says how an element enters (load), how two
// accumulators combine, how one crosses lanes (shfl_xor) and how the result
// is stored:
//   SumOp<T>     Acc = T, a + b, from 0. Sums accumulate in T (float in
//                float32, double in float64). mean: the last pass divides by
//                the number of reduced elements, in double and then rounded
//                to T, as NumPy computes float32 sum / count.
//   MaxOp<T>, MinOp<T>   Acc = T, nn::max_nan_ / nn::min_nan_ from -inf /
//                +inf: NaN propagates, as torch.amax and np.max. (The
//                launcher refuses empty reductions, which have no identity.)
//   SqDevOp<T>   the second pass of the variance: element x of output o
//                enters as (x - mean[o])^2, mean[o] the first pass's result
//                (a SumOp mean over the same (outer, R, inner) view, indexed
//                like the output), and combines as a sum; the last pass
//                divides by count - correction. Two-pass, so a large mean
//                cannot cancel the digits of a small spread as E[x^2] -
//                E[x]^2 would.
//   ArgOp<T, MAX>  Acc = (value, index): argmax (MAX = true) / argmin along
//                one axis. The combine is a selection by a total order: NaN
//                above everything (torch and np.argmax/argmin both return the
//                first NaN), then the larger (smaller) value, then the
//                smaller index, so it is commutative and associative and the
//                result is the first occurrence whatever order the tree
//                combines in. Identity (-inf / +inf, INT_MAX): a real -inf at
//                index k still wins by its index. Stores the int64 index (and,
//                for split-R partials, the value beside it).
// Element r of a row enters with its index along R: r itself, or the index
// a split-R first pass stored beside its partial value (xi).
//
// Split-R (a fixed-order two-pass reduction). When a pass has too few
// blocks to fill the GPU (a full reduction has one output) and R is long,
// the launcher cuts R into n_chunks chunks (grid axis y); chunk s of output
// o writes its partial result to a workspace viewed as (outer, n_chunks,
// inner) (plus an int64 index workspace for ArgOp) and a second pass reduces
// that workspace over its chunks with the same kernels (never split again;
// SqDevOp's partials are sums, so SumOp reduces them). The chunk length is
// a pure function of the shapes, and every fold above runs in an order fixed
// by the shapes and the thread layout, so results are bitwise reproducible
// run to run: no atomics, no "last block finishes" counters.
//
// Loop bounds are written "len - r > k" rather than "r + k < len" so that no
// int overflows for R close to 2**31.
#include "common.cuh"

constexpr int RD_THREADS = 256;  // the launcher's block size: 8 warps
constexpr int RD_WARPS = RD_THREADS / 32;
constexpr int RD_ILP = 4;        // accumulators (and loads in flight) per thread

template <typename T>
__device__ __forceinline__ T finish(T v, int divide, double divisor) {
    return divide ? T((double)v / divisor) : v;
}

// ------------------------------------------------------------ op functors
template <typename T_>
struct SumOp {
    using T = T_;
    using Acc = T;
    __device__ static Acc init() { return T(0); }
    __device__ static Acc load(const T* p, const long long*, int k, int, T) { return p[k]; }
    __device__ static Acc combine(Acc a, Acc b) { return a + b; }
    __device__ static Acc shfl_xor(Acc a, int m) { return __shfl_xor_sync(0xffffffffu, a, m); }
    __device__ static void store(T* out, long long*, int pos, Acc a, int divide,
                                 double divisor) {
        out[pos] = finish(a, divide, divisor);
    }
};

template <typename T_>
struct SqDevOp : SumOp<T_> {
    using T = T_;
    __device__ static T load(const T* p, const long long*, int k, int, T mean) {
        const T d = p[k] - mean;
        return d * d;
    }
};

template <typename T_, bool MAX>
struct ExtremumOp {
    using T = T_;
    using Acc = T;
    __device__ static Acc init() { return MAX ? -nn::inf_<T>() : nn::inf_<T>(); }
    __device__ static Acc load(const T* p, const long long*, int k, int, T) { return p[k]; }
    __device__ static Acc combine(Acc a, Acc b) {
        return MAX ? nn::max_nan_(a, b) : nn::min_nan_(a, b);
    }
    __device__ static Acc shfl_xor(Acc a, int m) { return __shfl_xor_sync(0xffffffffu, a, m); }
    __device__ static void store(T* out, long long*, int pos, Acc a, int, double) {
        out[pos] = a;
    }
};
// Named classes rather than alias templates, so that the kernels' mangled
// (and demangled) names say MaxOp<float>, as their name expressions do.
template <typename T>
struct MaxOp : ExtremumOp<T, true> {};
template <typename T>
struct MinOp : ExtremumOp<T, false> {};

template <typename T>
struct ValueIndex {  // a plain aggregate: it lives in __shared__ arrays
    T v;
    int i;
};

template <typename T_, bool MAX>
struct ArgOp {
    using T = T_;
    using Acc = ValueIndex<T>;
    __device__ static Acc init() { return {MAX ? -nn::inf_<T>() : nn::inf_<T>(), 2147483647}; }
    __device__ static Acc load(const T* p, const long long* pi, int k, int r, T) {
        return {p[k], pi == nullptr ? r : int(pi[k])};
    }
    // b beats a: NaN first, then the better value, then the smaller index.
    __device__ static Acc combine(Acc a, Acc b) {
        const bool a_nan = a.v != a.v, b_nan = b.v != b.v;
        bool take_b;
        if (a_nan || b_nan)
            take_b = b_nan && (!a_nan || b.i < a.i);
        else if (a.v == b.v)
            take_b = b.i < a.i;
        else
            take_b = MAX ? b.v > a.v : b.v < a.v;
        return take_b ? b : a;
    }
    __device__ static Acc shfl_xor(Acc a, int m) {
        return {__shfl_xor_sync(0xffffffffu, a.v, m), __shfl_xor_sync(0xffffffffu, a.i, m)};
    }
    // out: the values of split-R partials (null for the final pass).
    __device__ static void store(T* out, long long* out_i, int pos, Acc a, int, double) {
        if (out != nullptr) out[pos] = a.v;
        out_i[pos] = a.i;
    }
};
template <typename T>
struct ArgMaxOp : ArgOp<T, true> {};
template <typename T>
struct ArgMinOp : ArgOp<T, false> {};

// The warp butterfly of nn::warp_sum with Op's combine, over lane masks
// 16, 8, ... down to `lowest`: every lane of a group of lanes that differ
// only in those bits ends with the group's total, combined in the same order
// on every lane and every run.
template <typename Op>
__device__ __forceinline__ typename Op::Acc warp_fold(typename Op::Acc v, int lowest) {
    for (int m = 16; m >= lowest; m >>= 1) v = Op::combine(v, Op::shfl_xor(v, m));
    return v;
}

// ---------------------------------------------------------------- kernels
// x: (rows, R) contiguous. Output row * n_chunks + s gets chunk s of the row
// (divided by divisor when divide != 0, for the sums). xi: the element
// indices of an ArgOp combine pass (else null); mean: SqDevOp's per-row
// means (else null); out_i: ArgOp's indices. group: 32 or 256 threads per
// row.
template <typename Op>
__global__ void __launch_bounds__(RD_THREADS)
    reduce_rows(const typename Op::T* x, const long long* xi, const typename Op::T* mean,
                typename Op::T* out, long long* out_i, int rows, int R, int chunk,
                int n_chunks, int group, int divide, double divisor) {
    using T = typename Op::T;
    using Acc = typename Op::Acc;
    __shared__ Acc warp_total[RD_WARPS];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = threadIdx.x % group;  // this thread's place in its row's group
    const int rows_per_block = RD_THREADS / group;
    const int n_row_blocks = nn::cdiv(rows, rows_per_block);
    const int s = blockIdx.y;
    const int r_begin = s * chunk;
    const int len = nn::min_(chunk, R - r_begin);  // this chunk's length
    for (int rb = blockIdx.x; rb < n_row_blocks; rb += gridDim.x) {
        const int row = rb * rows_per_block + threadIdx.x / group;
        Acc acc[RD_ILP];
#pragma unroll
        for (int u = 0; u < RD_ILP; ++u) acc[u] = Op::init();
        if (row < rows) {
            const T* p = x + row * R + r_begin;
            const long long* pi = xi == nullptr ? xi : xi + (row * R + r_begin);
            const T m = mean == nullptr ? T(0) : mean[row];
            for (int r = g; r < len;) {
#pragma unroll
                for (int u = 0; u < RD_ILP; ++u) {
                    const int k = r + u * group;
                    if (len - r > u * group)
                        acc[u] = Op::combine(acc[u], Op::load(p, pi, k, r_begin + k, m));
                }
                if (len - r <= RD_ILP * group) break;
                r += RD_ILP * group;
            }
        }
        Acc v = Op::combine(Op::combine(acc[0], acc[1]), Op::combine(acc[2], acc[3]));
        v = warp_fold<Op>(v, 1);  // every lane of the warp: the warp's total
        if (group == 32) {
            if (lane == 0 && row < rows)
                Op::store(out, out_i, row * n_chunks + s, v, divide, divisor);
        } else {  // group == RD_THREADS: one row per block
            if (lane == 0) warp_total[warp] = v;
            __syncthreads();
            if (threadIdx.x == 0) {
                Acc t = warp_total[0];
#pragma unroll
                for (int w = 1; w < RD_WARPS; ++w) t = Op::combine(t, warp_total[w]);
                if (row < rows) Op::store(out, out_i, row * n_chunks + s, t, divide, divisor);
            }
            __syncthreads();  // warp_total is reused by the next row
        }
    }
}

// x: (outer, R, inner) contiguous. Output (o * n_chunks + s) * inner + col
// gets chunk s of R; xi, mean, out_i as in reduce_rows (mean indexed
// o * inner + col). The column blocks (n_blocks = outer * n_iblocks, TX
// columns each) are grid-strided over blockIdx.x.
template <typename Op>
__global__ void __launch_bounds__(RD_THREADS)
    reduce_cols(const typename Op::T* x, const long long* xi, const typename Op::T* mean,
                typename Op::T* out, long long* out_i, int R, int inner, int n_iblocks,
                int n_blocks, int chunk, int n_chunks, int tx_width, int divide,
                double divisor) {
    using T = typename Op::T;
    using Acc = typename Op::Acc;
    __shared__ Acc col_total[RD_THREADS];  // [warp][tx], RD_WARPS * TX <= 256 entries
    const int TX = tx_width, TY = RD_THREADS / TX;
    const int tx = threadIdx.x % TX, ty = threadIdx.x / TX;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int s = blockIdx.y;
    const int r_begin = s * chunk;
    const int len = nn::min_(chunk, R - r_begin);
    for (int blk = blockIdx.x; blk < n_blocks; blk += gridDim.x) {
        const int o = blk / n_iblocks;
        const int col = (blk - o * n_iblocks) * TX + tx;
        Acc acc[RD_ILP];
#pragma unroll
        for (int u = 0; u < RD_ILP; ++u) acc[u] = Op::init();
        if (col < inner) {
            const int base = (o * R + r_begin) * inner + col;
            const T* p = x + base;
            const long long* pi = xi == nullptr ? xi : xi + base;
            const T m = mean == nullptr ? T(0) : mean[o * inner + col];
            for (int r = ty; r < len;) {
#pragma unroll
                for (int u = 0; u < RD_ILP; ++u) {
                    const int k = r + u * TY;
                    if (len - r > u * TY)
                        acc[u] = Op::combine(acc[u], Op::load(p, pi, k * inner, r_begin + k, m));
                }
                if (len - r <= RD_ILP * TY) break;
                r += RD_ILP * TY;
            }
        }
        Acc v = Op::combine(Op::combine(acc[0], acc[1]), Op::combine(acc[2], acc[3]));
        // Only across lanes of the same column: lane ^ m, m >= TX.
        v = warp_fold<Op>(v, TX);
        if (lane < TX) col_total[warp * TX + lane] = v;  // lane == tx here
        __syncthreads();
        if (threadIdx.x < TX) {  // threadIdx.x == tx
            Acc t = col_total[tx];
#pragma unroll
            for (int w = 1; w < RD_WARPS; ++w) t = Op::combine(t, col_total[w * TX + tx]);
            if (col < inner)
                Op::store(out, out_i, (o * n_chunks + s) * inner + col, t, divide, divisor);
        }
        __syncthreads();  // col_total is reused by the next column block
    }
}
