// optim.cu: multi-tensor optimizer steps, torch.optim.Adam and torch.optim.SGD:
// ONE launch updates every parameter tensor of a group, in place.
//
// Why multi-tensor: a DCGAN has ~30 parameter tensors, from 64 to ~2M
// elements. One launch per tensor costs more in launch overhead than the
// update itself, so (as llm.c's adamw, torch's _foreach and fused optimizers)
// each call launches one kernel over all tensors.
//
// The tensor table. The launcher packs one small int64 array (one
// host-to-device copy), row-major with one row per field and one column per
// tensor (ntensors columns):
//   Adam: param, grad, exp_avg, exp_avg_sq addresses | numel | first block
//         [| step_size = lr / (1 - beta1^t) | sqrt(1 - beta2^t), only when
//         the tensors' step counts differ; when they agree, as they do in a
//         training loop, the two scalars are kernel arguments, so the table
//         does not change from step to step and the launcher uploads it once]
//   SGD:  param, grad, momentum buffer addresses (0 without momentum) |
//         numel | first block | 1 on the parameter's first step, else 0
// The first-block row is the exclusive prefix sum of cdiv(numel, chunk); the
// two Adam scalars are float64 values stored as their bits (each parameter
// has its own step count t, and torch computes the bias corrections in
// Python floats, so the host does too and the kernel rounds them to T).
//
// The grid is 1-D over the blocks of all tensors, `chunk` elements per block
// (a multiple of blockDim), so no block idles however uneven the sizes are.
// Block b finds its tensor by a binary search of the first-block row (every
// thread searches: the addresses are the same across the block, so each
// step is one broadcast load; ~5 steps for 30 tensors, cached), then its
// threads stride through the block's chunk by blockDim: coalesced loads,
// and each thread's element loads are independent, so several are in
// flight. All tensors of a call share T (the launcher checks it).
//
// adam_step<T>  torch.optim.Adam (amsgrad=False), in the order of torch's
//     single-tensor path and of the NumPy backend:
//       g = grad + wd*p                           (only when wd != 0)
//       m = m + (1 - b1)*(g - m)                  (torch's lerp form)
//       v = v*b2 + (1 - b2)*(g*g)
//       p = p - step_size * (m / (sqrt(v) / sqrt(1 - b2^t) + eps))
// sgd_step<T>   torch.optim.SGD:
//       g = grad + wd*p                           (only when wd != 0)
//       buf = g on the first step, else buf*momentum + (1 - dampening)*g
//       g = g + momentum*buf (nesterov) or buf     (only with momentum)
//       p = p - lr*g
//
// Rounding. Every operation above is rounded once, in T, exactly as NumPy
// rounds it (a Python float times a float32 array is a float32 product), so
// float64 runs match the NumPy backend bit for bit and float32 runs do too.
// That needs two things the compiler would otherwise change:
//   - no FMA contraction: nvcc fuses a*b + c into one fma by default, which
//     rounds once where NumPy rounds twice. The *_rn intrinsics below
//     (__fmul_rn, __dadd_rn, ...) are never contracted. The host compiler of
//     the emulator does not contract (ISO C++ mode is -ffp-contract=off in
//     GCC, and baseline x86-64 has no FMA), so plain operators serve there.
//   - IEEE division and square root in float: __fdiv_rn / __fsqrt_rn, even
//     under --use_fast_math (double `/` and sqrt are always IEEE).
// Hyperparameters arrive as doubles (the exact Python floats) and are
// converted with T(x): float32 runs see the rounding NumPy applies.
//
// Note for CUDA graphs: the table is cached by the launcher (optim.py) and
// re-uploaded only when an address changes; the step scalars are launch
// arguments, which a captured graph would freeze, so a captured step leaves
// the optimizer step outside the graph (dcgan/trainer.py, CapturedStep).
#include "common.cuh"

namespace {

constexpr int kThreads = 256;  // threads per block

// Once-rounded arithmetic, never fused into an FMA (see the top).
#ifdef NN_CUDA_EMULATE
template <typename T>
__device__ __forceinline__ T add_rn(T a, T b) { return a + b; }
template <typename T>
__device__ __forceinline__ T sub_rn(T a, T b) { return a - b; }
template <typename T>
__device__ __forceinline__ T mul_rn(T a, T b) { return a * b; }
template <typename T>
__device__ __forceinline__ T div_rn(T a, T b) { return a / b; }
template <typename T>
__device__ __forceinline__ T sqrt_rn(T a) { return nn::sqrt_(a); }
#else
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }
#endif

// The tensor that owns grid block `block`: the last column whose first block
// is <= block. starts[0] == 0, and the row is non-decreasing (an empty
// tensor has no blocks and the same start as the next one, so "last" skips
// it).
__device__ __forceinline__ int find_tensor(const long long* starts, int ntensors,
                                           long long block) {
    int lo = 0, hi = ntensors - 1;  // the answer lies in [lo, hi]
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (starts[mid] <= block) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

template <typename T>
__device__ __forceinline__ T* table_ptr(const long long* table, int row, int ntensors, int i) {
    return reinterpret_cast<T*>(table[(long long)row * ntensors + i]);
}

__device__ __forceinline__ double table_f64(const long long* table, int row, int ntensors,
                                            int i) {
    return __longlong_as_double(table[(long long)row * ntensors + i]);
}

// Table rows (keep in step with optim.py).
enum AdamRow { A_P, A_G, A_M, A_V, A_N, A_START, A_STEP_SIZE, A_BC2_SQRT };
enum SgdRow { S_P, S_G, S_B, S_N, S_START, S_FIRST };

}  // namespace

// ----------------------------------------------------------------------- Adam
template <typename T>
__global__ void __launch_bounds__(kThreads)
adam_step(const long long* __restrict__ table, int ntensors, int chunk, double beta2,
          double one_minus_beta1, double one_minus_beta2, double eps, double weight_decay,
          int has_weight_decay, int per_tensor_steps, double step_size_all,
          double bc2_sqrt_all) {
    const int k = find_tensor(table + A_START * ntensors, ntensors, blockIdx.x);
    const long long n = table[A_N * ntensors + k];
    const int begin = (int)(blockIdx.x - table[A_START * ntensors + k]) * chunk;
    const int end = (int)nn::min_(n, (long long)begin + chunk);
    T* __restrict__ param = table_ptr<T>(table, A_P, ntensors, k);
    const T* __restrict__ grad = table_ptr<T>(table, A_G, ntensors, k);
    T* __restrict__ exp_avg = table_ptr<T>(table, A_M, ntensors, k);
    T* __restrict__ exp_avg_sq = table_ptr<T>(table, A_V, ntensors, k);
    const T step_size = T(per_tensor_steps ? table_f64(table, A_STEP_SIZE, ntensors, k)
                                           : step_size_all);
    const T bc2_sqrt = T(per_tensor_steps ? table_f64(table, A_BC2_SQRT, ntensors, k)
                                          : bc2_sqrt_all);
    const T b2 = T(beta2), omb1 = T(one_minus_beta1), omb2 = T(one_minus_beta2);
    const T eps_ = T(eps), wd = T(weight_decay);
    for (int i = begin + (int)threadIdx.x; i < end; i += blockDim.x) {
        T p = param[i], g = grad[i], m = exp_avg[i], v = exp_avg_sq[i];
        if (has_weight_decay) g = add_rn(g, mul_rn(wd, p));
        m = add_rn(m, mul_rn(omb1, sub_rn(g, m)));
        v = add_rn(mul_rn(v, b2), mul_rn(omb2, mul_rn(g, g)));
        const T denom = add_rn(div_rn(sqrt_rn(v), bc2_sqrt), eps_);
        p = sub_rn(p, mul_rn(step_size, div_rn(m, denom)));
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = p;
    }
}

// ------------------------------------------------------------------------ SGD
template <typename T>
__global__ void __launch_bounds__(kThreads)
sgd_step(const long long* __restrict__ table, int ntensors, int chunk, double lr,
         double momentum, double one_minus_dampening, double weight_decay, int has_momentum,
         int nesterov, int has_weight_decay) {
    const int k = find_tensor(table + S_START * ntensors, ntensors, blockIdx.x);
    const long long n = table[S_N * ntensors + k];
    const int begin = (int)(blockIdx.x - table[S_START * ntensors + k]) * chunk;
    const int end = (int)nn::min_(n, (long long)begin + chunk);
    T* __restrict__ param = table_ptr<T>(table, S_P, ntensors, k);
    const T* __restrict__ grad = table_ptr<T>(table, S_G, ntensors, k);
    T* __restrict__ buf = table_ptr<T>(table, S_B, ntensors, k);  // null without momentum
    const bool first = table[S_FIRST * ntensors + k] != 0;
    const T lr_ = T(lr), mom = T(momentum), omd = T(one_minus_dampening), wd = T(weight_decay);
    for (int i = begin + (int)threadIdx.x; i < end; i += blockDim.x) {
        T p = param[i], g = grad[i];
        if (has_weight_decay) g = add_rn(g, mul_rn(wd, p));
        if (has_momentum) {
            // On the first step the buffer is not read: torch starts it at g.
            const T b = first ? g : add_rn(mul_rn(buf[i], mom), mul_rn(omd, g));
            buf[i] = b;
            g = nesterov ? add_rn(g, mul_rn(mom, b)) : b;
        }
        param[i] = sub_rn(p, mul_rn(lr_, g));
    }
}
