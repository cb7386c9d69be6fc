// matmul.cu: C = A @ B for strided, batched operands, on gemm.cuh's GEMM core.
//
//   A (Bt, M, K), B (Bt, K, N): any element strides (sa_b, sa_m, sa_k),
//   (sb_b, sb_k, sb_n): a transposed view, a stepped slice or a broadcast
//   batch (stride 0) is read in place, with no copy;
//   C (Bt, M, N): a new contiguous array. A 2-D product is Bt = 1.
//
// One problem struct, Matmul, and the same two GEMM main loops as the
// convolutions (gemm.cuh: version 1 SIMT for float and double, version 2
// TF32 tensor cores for float; gemm.cuh says what each does and why). The
// operands are plain strided matrices, so the gather is the simplest of the
// problems: A(m, k) = a[m*sa_m + k*sa_k], B(k, n) = b[k*sb_k + n*sb_n],
// zero past M, N or K; C(m, n) = c[m*N + n].
//
// Kernels (block = the version's THREADS):
//   matmul_v1<T, BN, A_ALONG_M, B_ALONG_N>   version 1, T = float or double
//   matmul_v2<BN, A_ALONG_M, B_ALONG_N>      version 2, float
// grid (M/BM, N/BN, batches of this launch): z = the batch, b0 + blockIdx.z
// (the launcher splits more than 65535 batches over several launches).
// BN picks the tile: 64 (a 64 x 64 tile), or 8 (a 128 x 8 tile) when N <= 8.
//
// Why the two layout flags. A warp's global loads coalesce only along the
// axis that is contiguous in memory, and which axis that is depends on the
// view: a row-major A is contiguous along k, a transposed one (x.T, the
// gradient's dC^T) along m. A_ALONG_M = true gathers A's slice with
// consecutive threads on consecutive rows m (gemm::Spread ALONG_ROWS), false
// with consecutive threads on consecutive k; B_ALONG_N likewise for B (true:
// a row-major B, contiguous along n; false: a transposed one, along k). The
// launcher picks each flag from the strides (the axis of smaller |stride|),
// so all four layouts of a 2-D product (NN, NT, TN, TT) load coalesced. C is
// row-major, so the SIMT epilogue stores along n (C_ALONG_M = false).
//
// Each output's reduction runs in a fixed order with no atomics: two runs
// give bitwise equal results. Indexing is int32: the launcher refuses
// operands whose element offsets reach 2**31 (negative strides work: the
// pointers are those of element (0, 0, 0) and the offsets signed).
#include "gemm.cuh"

namespace mm {

// The strides of one launch, in elements; C is contiguous (Bt, M, N).
struct Strides {
    int M, N, K, sa_b, sa_m, sa_k, sb_b, sb_k, sb_n, b0;
};

// C[z] = A[z] @ B[z] for batch z = b0 + blockIdx.z.
template <typename T, class Cfg, bool A_ALONG_M, bool B_ALONG_N>
struct Matmul {
    using SA = gemm::Spread<Cfg::BM, Cfg::BK, Cfg::THREADS, A_ALONG_M>;
    using SB = gemm::Spread<Cfg::BN, Cfg::BK, Cfg::THREADS, B_ALONG_N>;
    static constexpr bool C_ALONG_M = false;  // C: along n
    const T* a;
    const T* b;
    T* out;
    const T* bias = nullptr;
    Strides s;
    int M, N, m0, n0, steps, t;

    __device__ Matmul(const T* a_, const T* b_, T* c_, const Strides& s_) : s(s_) {
        const int z = s.b0 + int(blockIdx.z);
        a = a_ + z * s.sa_b;
        b = b_ + z * s.sb_b;
        out = c_ + z * s.M * s.N;
        M = s.M;
        N = s.N;
        m0 = blockIdx.x * Cfg::BM;
        n0 = blockIdx.y * Cfg::BN;
        steps = nn::cdiv(s.K, Cfg::BK);  // 0 when K = 0: C = 0
        t = threadIdx.x;
    }

    __device__ void load(int step, T (&ra)[SA::E], T (&rb)[SB::E]) const {
        const int k0 = step * Cfg::BK;
#pragma unroll
        for (int e = 0; e < SA::E; ++e) {
            const int m = m0 + SA::row(t, e), k = k0 + SA::k(t, e);
            ra[e] = m < M && k < s.K ? a[m * s.sa_m + k * s.sa_k] : T(0);
        }
#pragma unroll
        for (int e = 0; e < SB::E; ++e) {
            const int n = n0 + SB::row(t, e), k = k0 + SB::k(t, e);
            rb[e] = n < N && k < s.K ? b[k * s.sb_k + n * s.sb_n] : T(0);
        }
    }

    __device__ int row_offset(int m) const { return m * N; }
    __device__ int col_offset(int n) const { return n; }
};

}  // namespace mm

// ------------------------------------------------------------------ kernels
#define MATMUL_PARAMS \
    int M, int N, int K, int sa_b, int sa_m, int sa_k, int sb_b, int sb_k, int sb_n, int b0
#define MATMUL_STRIDES mm::Strides{M, N, K, sa_b, sa_m, sa_k, sb_b, sb_k, sb_n, b0}

template <typename T, int BN, bool A_ALONG_M, bool B_ALONG_N>
__global__ void __launch_bounds__(gemm::SimtTile<BN>::THREADS)
    matmul_v1(const T* a, const T* b, T* c, MATMUL_PARAMS) {
    using Cfg = gemm::SimtTile<BN>;
    const mm::Matmul<T, Cfg, A_ALONG_M, B_ALONG_N> p(a, b, c, MATMUL_STRIDES);
    gemm::gemm_simt<T, Cfg>(p);
}

template <int BN, bool A_ALONG_M, bool B_ALONG_N>
__global__ void __launch_bounds__(gemm::MmaTile<BN>::THREADS)
    matmul_v2(const float* a, const float* b, float* c, MATMUL_PARAMS) {
    using Cfg = gemm::MmaTile<BN>;
    const mm::Matmul<float, Cfg, A_ALONG_M, B_ALONG_N> p(a, b, c, MATMUL_STRIDES);
    gemm::gemm_tf32<Cfg>(p);
}

#undef MATMUL_PARAMS
#undef MATMUL_STRIDES
