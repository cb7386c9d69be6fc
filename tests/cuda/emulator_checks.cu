// Kernels that check the CUDA emulator itself (tests/test_cuda_emulator.py).
#include "common.cuh"

// Reverses 64 values through shared memory. With `sync` = 0 the barrier
// between the writes and the reads is missing: on a GPU that is a race; the
// emulator runs each thread up to its next barrier, so thread 0 reads
// slots nobody has written yet, and the result is visibly wrong.
__global__ void reverse64(const float* x, float* y, int sync) {
    __shared__ float s[64];
    int t = threadIdx.x;
    s[t] = x[t];
    if (sync) __syncthreads();
    y[t] = s[63 - t];
}

// Even threads wait at the block barrier, odd ones at a warp barrier: each
// waits for threads that never come, a hang on the GPU and an error here.
// (Threads that have exited count as arrived, as on the GPU.)
__global__ void divergent_barrier(float* y) {
    if (threadIdx.x % 2 == 0)
        __syncthreads();
    else
        __syncwarp();
    y[threadIdx.x] = 1.0f;
}

// out[lane] = value of lane ^ 5, and the warp total, for each of two warps.
__global__ void shuffles(const double* x, double* xor5, double* total, double* down3) {
    int t = threadIdx.x;
    double v = x[t];
    xor5[t] = __shfl_xor_sync(0xffffffffu, v, 5);
    down3[t] = __shfl_down_sync(0xffffffffu, v, 3);
    total[t] = nn::warp_sum(v);
}

// One 16x8x8 TF32 tile: a (16x8 row-major), b (8x8 row-major) -> d (16x8).
__global__ void mma_tile(const float* a, const float* b, const float* c, float* d) {
    int lane = threadIdx.x, g = lane / 4, t = lane % 4;
    unsigned ra[4] = {nn::to_tf32(a[g * 8 + t]), nn::to_tf32(a[(g + 8) * 8 + t]),
                      nn::to_tf32(a[g * 8 + t + 4]), nn::to_tf32(a[(g + 8) * 8 + t + 4])};
    unsigned rb[2] = {nn::to_tf32(b[t * 8 + g]), nn::to_tf32(b[(t + 4) * 8 + g])};
    float rc[4], rd[4];
    for (int i = 0; i < 4; ++i) rc[i] = c[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + (i & 1)];
    nn::mma_m16n8k8_tf32(rd, ra, rb, rc);
    for (int i = 0; i < 4; ++i) d[(g + (i >= 2 ? 8 : 0)) * 8 + 2 * t + (i & 1)] = rd[i];
}

template <typename T>
__global__ void scale(T* y, int n, double factor) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = y[i] * T(factor);
}
