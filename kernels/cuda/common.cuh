// common.cuh: what every kernel file of the `cupy` backend shares.
//
// The same source compiles three ways, and this header is where they meet:
//   - NVRTC, through cupy.RawModule, on a GPU (no host headers exist there,
//     so nothing here includes any);
//   - nvcc -arch=sm_90 in CI, as a compile check with warnings as errors
//     (tests/test_cuda_sources.py);
//   - the host C++ compiler with emulate.h force-included, which defines
//     NN_CUDA_EMULATE, to run the kernels on a CPU (runtime.py).
// So kernels use only what is below plus core CUDA C++ (threadIdx, blockIdx,
// __shared__ arrays of fixed size, __syncthreads, __shfl_*_sync): no
// atomics (every reduction here has a fixed order, so results are bitwise
// reproducible), no dynamic shared memory, no inline asm outside this file.
#pragma once

namespace nn {

// ------------------------------------------------------------- math on T
// One spelling for float and double, so kernels can be templated over both
// (float64 runs are what gradient checks need). The float overloads are the
// IEEE-accurate CUDA functions, not the __fast intrinsics.
__device__ __forceinline__ float exp_(float x) { return expf(x); }
__device__ __forceinline__ double exp_(double x) { return exp(x); }
__device__ __forceinline__ float log_(float x) { return logf(x); }
__device__ __forceinline__ double log_(double x) { return log(x); }
__device__ __forceinline__ float log1p_(float x) { return log1pf(x); }
__device__ __forceinline__ double log1p_(double x) { return log1p(x); }
__device__ __forceinline__ float expm1_(float x) { return expm1f(x); }
__device__ __forceinline__ double expm1_(double x) { return expm1(x); }
__device__ __forceinline__ float sqrt_(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrt_(double x) { return sqrt(x); }
__device__ __forceinline__ float tanh_(float x) { return tanhf(x); }
__device__ __forceinline__ double tanh_(double x) { return tanh(x); }
__device__ __forceinline__ float abs_(float x) { return fabsf(x); }
__device__ __forceinline__ double abs_(double x) { return fabs(x); }
__device__ __forceinline__ float fma_(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma_(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ float pow_(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double pow_(double x, double y) { return pow(x, y); }

template <typename T>
__device__ __forceinline__ T min_(T a, T b) { return b < a ? b : a; }
template <typename T>
__device__ __forceinline__ T max_(T a, T b) { return a < b ? b : a; }

// max/min that propagate NaN, as np.maximum/np.minimum and torch.amax (max_
// and min_ above, like fmax, may drop one): NaN if either argument is.
template <typename T>
__device__ __forceinline__ T max_nan_(T a, T b) { return (a > b || a != a) ? a : b; }
template <typename T>
__device__ __forceinline__ T min_nan_(T a, T b) { return (a < b || a != a) ? a : b; }

// +infinity in T, from its bits (no INFINITY macro without host headers).
template <typename T>
__device__ __forceinline__ T inf_();
template <>
__device__ __forceinline__ float inf_<float>() { return __uint_as_float(0x7f800000u); }
template <>
__device__ __forceinline__ double inf_<double>() {
    return __longlong_as_double(0x7ff0000000000000ll);
}

// ceil(a / b) for positive ints.
__device__ __forceinline__ int cdiv(int a, int b) { return (a + b - 1) / b; }

// ------------------------------------------------------------ warp sums
// Butterfly reduction: after it every lane holds the warp's total, summed in
// the same order on every lane and every run.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
    return v;
}

// ------------------------------------------------------ TF32 tensor cores
// to_tf32: cvt.rna.tf32.f32, round an fp32 value to TF32 (10 mantissa bits).
// mma_m16n8k8_tf32: d = a*b + c on one 16x8x8 tile per warp, the register
// layout of the PTX ISA (g = lane / 4, t = lane % 4):
//   a (16x8, row-major):  a[0] (g, t)   a[1] (g+8, t)   a[2] (g, t+4)   a[3] (g+8, t+4)
//   b (8x8, "col"):       b[0] (t, g)   b[1] (t+4, g)
//   c, d (16x8):          c[0] (g, 2t)  c[1] (g, 2t+1)  c[2] (g+8, 2t)  c[3] (g+8, 2t+1)
// Every lane of the warp must call it (it is a warp-wide instruction).
#ifdef NN_CUDA_EMULATE
__device__ __forceinline__ unsigned to_tf32(float x) { return emu::cvt_rna_tf32(x); }
__device__ __forceinline__ void mma_m16n8k8_tf32(float (&d)[4], const unsigned (&a)[4],
                                                 const unsigned (&b)[2], const float (&c)[4]) {
    emu::mma_m16n8k8_tf32(d, a, b, c);
}
#else
__device__ __forceinline__ unsigned to_tf32(float x) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}
__device__ __forceinline__ void mma_m16n8k8_tf32(float (&d)[4], const unsigned (&a)[4],
                                                 const unsigned (&b)[2], const float (&c)[4]) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]),
          "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}
#endif

}  // namespace nn
