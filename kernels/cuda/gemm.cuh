// gemm.cuh: the one GEMM core of the `cupy` backend, two versions of its
// main loop, shared by conv.cu (the three convolution GEMMs) and matmul.cu
// (strided batched matmul).
//
// A kernel here is a GEMM C[m, n] = sum_r A[m, r] * B[r, n] whose operands
// are never materialised: a "problem" struct (conv.cu's ConvFwd, ConvDgrad,
// ConvWgrad; matmul.cu's Matmul) knows which address holds A(m, r) and
// B(r, n), or that it is a zero (padding, taps off the image, tile tails),
// and where C(m, n) goes. The main loops below know nothing about convs or
// strides; each problem is built by every thread at kernel start and provides:
//   SA, SB      the Spread of A's (BM x BK) and B's (BK x BN, rows = n) slices;
//   C_ALONG_M   whether C is contiguous along m (picks the thread layout of
//               the SIMT epilogue, so stores coalesce);
//   M, N, m0, n0, steps    GEMM size, this block's origin, reduction steps
//               (steps is uniform over the block: every thread runs every
//               barrier);
//   load(s, a, b)          this thread's elements of step s's slices;
//   out + row_offset(m) + col_offset(n)   where C(m, n) goes; bias (or null)
//               is added per column.
// Rows/columns past M/N and reduction tails load 0. A block owns one BM x BN
// tile of C; a grid axis beyond the tile grid (a stride phase, a split-K
// chunk, a conv group, a matmul batch) is the problem's business.
//
// Tiles (both versions; the launchers' TILES tables mirror them):
//   BN = 64: a 64 x 64 tile, BK = 16 reduction elements per step;
//   BN = 8:  a 128 x 8 tile, for GEMMs with <= 8 columns (an RGB layer's
//            input gradient, a matrix-vector product), where a 64-wide tile
//            would spend most of its work on masked columns.
//
// The two versions of the main loop (issue #5), selected by the launchers
// (conv.py: NN_CUPY_PRECISION / set_precision, or version=):
//
//   version 1, gemm_simt: shared-memory tiled SIMT GEMM, templated over
//     float and double.
//     Why: the baseline that is exact in both precisions (float64 runs are
//     what the gradient checks need). A block of THREADS threads owns a
//     BM x BN tile of C; per step every thread gathers its share of the
//     BM x BK slice of A and the BK x BN slice of B from global memory into
//     registers (masks give the zeros), stores them to shared memory, and
//     after a barrier each thread accumulates its own TM x TN register tile
//     (64x64 tile: 256 threads, 4x4 each; 128x8 tile: 128 threads, 8x1):
//     each A/B value read from shared memory feeds TN/TM fused multiply-adds.
//     The next step's global loads are issued before the current step's
//     multiply-adds (a register double buffer), so their latency hides
//     behind the arithmetic. The problems' Spreads make global loads
//     coalesced along whichever axis is contiguous in memory, and shared
//     reads are conflict-free (a warp reads consecutive rows or broadcasts
//     one).
//   version 2, gemm_tf32: TF32 tensor cores (mma.sync m16n8k8), float only.
//     Why: an H100 does ~7x more TF32 tensor-core FLOPs than fp32 FMA ones;
//     the price is TF32's 10-bit mantissa on the inputs (each rounded by up
//     to 2^-11; products exact, sums in fp32): an output's error is bounded
//     by ~2^-10 of sum |a*b|, ~3e-4 relative on random data, where version 1
//     gives ~1e-7. Same problems, same gathers and same tiles; what changes
//     is the inner loop: four warps per block, each owning a 32 x 32 (64x64
//     tile) or 32 x 8 (128x8 tile) sub-tile made of 16x8 mma tiles, and
//     operands converted to TF32 (cvt.rna) once, as they are stored to
//     shared memory, rather than by every warp that reads them. Row strides
//     of the shared tiles are = 8 (mod 32) words, so a fragment load
//     (lanes g = 0..7 along rows, t = 0..3 along k) hits 32 distinct banks.
//
// Both loops sum each output's reduction in a fixed order, with no atomics:
// two runs give bitwise equal results (for a given version and tile shape).
// Indexing is int32: the launchers refuse arrays of 2**31 elements or more.
#pragma once
#include "common.cuh"

namespace gemm {

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
// output pixels, a column-major matrix). Otherwise consecutive threads take
// consecutive reduction indices and a thread keeps one k (the weight
// gradient's pixel axis, a row-major A).
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

}  // namespace gemm
