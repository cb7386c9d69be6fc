// reduce.cu: sum (and mean) over any set of axes, bitwise reproducible.
//
// The plan (kernels/strided.py's reduction_plan, shared with the Triton
// backend): a reduction over a set of axes is one pass per run of
// consecutive reduced axes, last run first; a pass sees its contiguous input
// as a 3-D view (outer, R, inner) and reduces the middle axis into a
// contiguous (outer, inner) array. No transposes: sum over (0, 2, 3) of NCHW
// is (N*C, H*W, 1) and then (1, N, C). So two kernels cover everything:
//
//   reduce_rows<T>   inner == 1: every output is a contiguous row of R.
//       A group of G threads (G = 32, a warp, for short rows; G = 256, the
//       whole block, for long ones) owns one row: thread g of the group adds
//       elements g, g + G, g + 2G, ... (a warp reads 32 consecutive elements
//       per load: coalesced), into RD_ILP independent accumulators (4 loads
//       in flight per thread, and 4 shorter dependency chains, which also
//       shortens the rounding-error chains). Then the group's G partial sums
//       are combined: nn::warp_sum (a butterfly of shuffles, no shared
//       memory); for G = 256, lane 0 of each warp parks its warp's total in
//       shared memory and thread 0 adds the 8 totals in warp order.
//   reduce_cols<T>   inner > 1: the reduced axis is strided by `inner`.
//       A block owns one outer index and TX consecutive inner columns (TX =
//       min(32, next power of two >= inner)), with its 256 threads laid out
//       as TX columns x TY = 256 / TX rows: thread (tx, ty) adds rows ty,
//       ty + TY, ... of column tx. A warp then reads 32 / TX row segments of
//       TX consecutive elements (one 128-byte line per row when TX = 32), and
//       every lane has work even when inner is 2 or 3 (TX = 32 would leave
//       most lanes idle there). The combine: lanes l and l ^ m hold the same
//       column for every m >= TX, so a butterfly over m = 16 .. TX (the top
//       of nn::warp_sum, stopping at TX; the whole of it for TX = 1) leaves
//       every lane with its column's warp total; the first TX lanes of each
//       warp park those in shared memory and the first TX threads of the
//       block add the 8 warps' totals in order.
//   Both loop over their row groups / column blocks with a grid stride, so
//   the launcher can cap the grid; no result depends on which block does
//   the work.
//
// Split-R (a fixed-order two-pass reduction). When a pass has too few
// blocks to fill the GPU (a full reduction has one output) and R is long,
// the launcher cuts R into n_chunks chunks (grid axis y); chunk s of output
// o writes its partial sum to a workspace viewed as (outer, n_chunks, inner)
// and a second pass reduces that workspace over its chunks with the same
// kernels (never split again). The chunk length is a pure function of the
// shapes, and every sum above runs in an order fixed by the shapes and the
// thread layout, so results are bitwise reproducible run to run: no
// atomics, no "last block finishes" counters.
//
// mean: the last pass divides by the number of reduced elements, in double
// and then rounded to T, as NumPy computes float32 sum / count. Sums
// accumulate in T (float in float32, double in float64).
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

// x: (rows, R) contiguous. out[row * n_chunks + s] = sum of chunk s of the row
// (divided by divisor when divide != 0). group: 32 or 256 threads per row.
template <typename T>
__global__ void __launch_bounds__(RD_THREADS)
    reduce_rows(const T* x, T* out, int rows, int R, int chunk, int n_chunks, int group,
                int divide, double divisor) {
    __shared__ T warp_total[RD_WARPS];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int g = threadIdx.x % group;  // this thread's place in its row's group
    const int rows_per_block = RD_THREADS / group;
    const int n_row_blocks = nn::cdiv(rows, rows_per_block);
    const int s = blockIdx.y;
    const int r_begin = s * chunk;
    const int len = nn::min_(chunk, R - r_begin);  // this chunk's length
    for (int rb = blockIdx.x; rb < n_row_blocks; rb += gridDim.x) {
        const int row = rb * rows_per_block + threadIdx.x / group;
        T acc[RD_ILP];
#pragma unroll
        for (int u = 0; u < RD_ILP; ++u) acc[u] = T(0);
        if (row < rows) {
            const T* p = x + row * R + r_begin;
            for (int r = g; r < len;) {
#pragma unroll
                for (int u = 0; u < RD_ILP; ++u)
                    if (len - r > u * group) acc[u] += p[r + u * group];
                if (len - r <= RD_ILP * group) break;
                r += RD_ILP * group;
            }
        }
        T v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        v = nn::warp_sum(v);  // every lane of the warp: the warp's total
        if (group == 32) {
            if (lane == 0 && row < rows) out[row * n_chunks + s] = finish(v, divide, divisor);
        } else {  // group == RD_THREADS: one row per block
            if (lane == 0) warp_total[warp] = v;
            __syncthreads();
            if (threadIdx.x == 0) {
                T t = warp_total[0];
#pragma unroll
                for (int w = 1; w < RD_WARPS; ++w) t += warp_total[w];
                if (row < rows) out[row * n_chunks + s] = finish(t, divide, divisor);
            }
            __syncthreads();  // warp_total is reused by the next row
        }
    }
}

// x: (outer, R, inner) contiguous. out[(o * n_chunks + s) * inner + col] = sum
// over chunk s of R. The column blocks (n_blocks = outer * n_iblocks, TX
// columns each) are grid-strided over blockIdx.x.
template <typename T>
__global__ void __launch_bounds__(RD_THREADS)
    reduce_cols(const T* x, T* out, int R, int inner, int n_iblocks, int n_blocks, int chunk,
                int n_chunks, int tx_width, int divide, double divisor) {
    __shared__ T col_total[RD_THREADS];  // [warp][tx], RD_WARPS * TX <= 256 entries
    const int TX = tx_width, TY = RD_THREADS / TX;
    const int tx = threadIdx.x % TX, ty = threadIdx.x / TX;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int s = blockIdx.y;
    const int r_begin = s * chunk;
    const int len = nn::min_(chunk, R - r_begin);
    for (int blk = blockIdx.x; blk < n_blocks; blk += gridDim.x) {
        const int o = blk / n_iblocks;
        const int col = (blk - o * n_iblocks) * TX + tx;
        T acc[RD_ILP];
#pragma unroll
        for (int u = 0; u < RD_ILP; ++u) acc[u] = T(0);
        if (col < inner) {
            const T* p = x + (o * R + r_begin) * inner + col;
            for (int r = ty; r < len;) {
#pragma unroll
                for (int u = 0; u < RD_ILP; ++u)
                    if (len - r > u * TY) acc[u] += p[(r + u * TY) * inner];
                if (len - r <= RD_ILP * TY) break;
                r += RD_ILP * TY;
            }
        }
        T v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        if (TX == 1) {
            v = nn::warp_sum(v);
        } else {  // only across lanes of the same column: lane ^ m, m >= TX
            for (int m = 16; m >= TX; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
        }
        if (lane < TX) col_total[warp * TX + lane] = v;  // lane == tx here
        __syncthreads();
        if (threadIdx.x < TX) {  // threadIdx.x == tx
            T t = col_total[tx];
#pragma unroll
            for (int w = 1; w < RD_WARPS; ++w) t += col_total[w * TX + tx];
            if (col < inner) out[(o * n_chunks + s) * inner + col] = finish(t, divide, divisor);
        }
        __syncthreads();  // col_total is reused by the next column block
    }
}
