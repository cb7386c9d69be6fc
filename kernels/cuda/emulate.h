// emulate.h: run our CUDA C kernels on the CPU, for CI machines without a GPU.
//
// The `cupy` backend's kernels are compiled twice from the same .cu source:
// by NVRTC (through cupy.RawModule) for the GPU, and, when NN_CUDA_EMULATE=1,
// by the host C++ compiler with this header force-included. It plays the role
// TRITON_INTERPRET=1 plays for the Triton kernels: every op test runs the real
// kernel code, on small shapes, on a 2-core CI machine.
//
// The execution model, and how each piece is emulated:
//   grid       blocks run one after another (CUDA promises no order either);
//   block      each thread is a fiber (ucontext) with its own stack; the
//              fibers of a block run one at a time, each until it reaches a
//              barrier or exits: a deliberately unfriendly schedule, under
//              which a missing __syncthreads() gives wrong answers rather
//              than lucky right ones;
//   __shared__ `static` locals: one copy, visible to every fiber of the block
//              (blocks never overlap, so one copy serves them all);
//   __syncthreads()  waits until every live thread of the block arrives;
//              threads that have exited count as arrived (as on the GPU);
//   warp ops   __shfl_*_sync and __syncwarp wait for every live lane of the
//              warp; a shuffle that names an exited lane, or a mask other
//              than full, is reported as an error (undefined on the GPU);
//   tensor cores   mma_m16n8k8_tf32 (common.cuh) gathers the warp's
//              fragments, in the PTX ISA's register layout, and multiplies
//              exactly as the hardware's TF32 path does: inputs truncated to
//              TF32, products exact, sums in fp32.
// What it cannot show: timing, memory coalescing, bank conflicts, real races
// between warps (fibers never interleave between barriers), or
// out-of-bounds accesses (the NaN-poisoned outputs catch unwritten elements;
// compute-sanitizer on a GPU catches the rest).
//
// Errors (a deadlocked barrier, a bad shuffle, too many threads) stop the
// launch; the Python launcher raises them with the kernel's name.
#pragma once
#define NN_CUDA_EMULATE 1

#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <math.h>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
typedef dim3 uint3;

namespace emu {

enum State { RUNNING, AT_BLOCK_BARRIER, AT_WARP_BARRIER, EXITED };

// Switching fibers. glibc's swapcontext saves and restores the signal mask
// with a system call on every switch; our fibers never touch signals, so on
// x86-64 a 14-instruction switch does the same job (callee-saved registers,
// the stack pointer, and the SSE/x87 control words) about 20x faster. Other
// architectures use ucontext.
#if defined(__x86_64__) && !defined(NN_EMU_UCONTEXT)
#define NN_EMU_FAST_SWITCH 1
extern "C" void nn_emu_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl nn_emu_switch
    .hidden nn_emu_switch
    .type nn_emu_switch, @function
nn_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size nn_emu_switch, .-nn_emu_switch
)");
#endif

struct Fiber {
#ifdef NN_EMU_FAST_SWITCH
    void* sp = nullptr;
#else
    ucontext_t ctx;
#endif
    dim3 idx;
    int lane = 0, warp = 0;
    State state = RUNNING;
};

constexpr int kMaxThreads = 1024;
constexpr size_t kStackBytes = 256 * 1024;

inline dim3 block_idx, block_dim, grid_dim;
inline Fiber* current = nullptr;
#ifdef NN_EMU_FAST_SWITCH
inline void* scheduler_sp = nullptr;
#else
inline ucontext_t scheduler;
#endif
inline std::vector<Fiber> fibers;
inline std::vector<char*> stacks;
inline std::function<void()> body;
inline std::string error;
// Per-warp exchange slots for shuffles and the tensor-core emulation.
inline std::vector<unsigned long long> exchange;

inline void to_scheduler() {
#ifdef NN_EMU_FAST_SWITCH
    nn_emu_switch(&current->sp, scheduler_sp);
#else
    swapcontext(&current->ctx, &scheduler);
#endif
}

inline void to_fiber(Fiber* f) {
    current = f;
#ifdef NN_EMU_FAST_SWITCH
    nn_emu_switch(&scheduler_sp, f->sp);
#else
    swapcontext(&scheduler, &f->ctx);
#endif
}

inline void yield(State s) {
    current->state = s;
    to_scheduler();
}

// Record the first error and leave this fiber for good.
inline void fail(const std::string& msg) {
    if (error.empty()) {
        char where[128];
        snprintf(where, sizeof where, " (block %u,%u,%u thread %u,%u,%u)", block_idx.x,
                 block_idx.y, block_idx.z, current->idx.x, current->idx.y, current->idx.z);
        error = msg + where;
    }
    yield(EXITED);
    abort();  // never resumed
}

inline void trampoline() {
    body();
    current->state = EXITED;
    to_scheduler();  // never returns: the scheduler does not resume exited fibers
    abort();
}

// A fresh fiber whose first switch "returns" into trampoline().
inline void start_fiber(Fiber& f, char* stack) {
#ifdef NN_EMU_FAST_SWITCH
    // The top of the stack, 16-byte aligned, as nn_emu_switch will pop it:
    // control words, six callee-saved registers, then the return address.
    uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + kStackBytes) & ~uintptr_t(15);
    // The return address sits at a 16-byte boundary, so that after `ret` the
    // stack pointer is 8 mod 16, exactly as on entry to a called function.
    void** sp = reinterpret_cast<void**>(top - 8);  // one unused slot above
    *--sp = reinterpret_cast<void*>(&trampoline);
    for (int i = 0; i < 6; ++i) *--sp = nullptr;     // rbp rbx r12 r13 r14 r15
    unsigned words[2];
    asm volatile("stmxcsr %0" : "=m"(words[0]));
    asm volatile("fnstcw %0" : "=m"(words[1]));
    *--sp = nullptr;
    memcpy(sp, words, 8);
    f.sp = sp;
#else
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = stack;
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, trampoline, 0);
#endif
}

inline void syncthreads() { yield(AT_BLOCK_BARRIER); }
inline void syncwarp() { yield(AT_WARP_BARRIER); }

inline unsigned nthreads() { return block_dim.x * block_dim.y * block_dim.z; }

// Release whichever barrier every live thread of a group has reached.
// Returns false on a deadlock (threads waiting at different barriers).
inline bool release_barriers() {
    unsigned n = nthreads();
    bool released = false, all_block = true, any_alive = false;
    for (unsigned w0 = 0; w0 < n; w0 += 32) {
        bool all_warp = true, alive = false;
        for (unsigned t = w0; t < n && t < w0 + 32; ++t) {
            if (fibers[t].state == EXITED) continue;
            alive = true;
            if (fibers[t].state != AT_WARP_BARRIER) all_warp = false;
        }
        if (alive && all_warp) {
            for (unsigned t = w0; t < n && t < w0 + 32; ++t)
                if (fibers[t].state == AT_WARP_BARRIER) fibers[t].state = RUNNING;
            released = true;
        }
    }
    if (released) return true;
    for (unsigned t = 0; t < n; ++t) {
        if (fibers[t].state == EXITED) continue;
        any_alive = true;
        if (fibers[t].state != AT_BLOCK_BARRIER) all_block = false;
    }
    if (!any_alive) return true;
    if (!all_block) return false;
    for (unsigned t = 0; t < n; ++t)
        if (fibers[t].state == AT_BLOCK_BARRIER) fibers[t].state = RUNNING;
    return true;
}

inline bool run_block() {
    unsigned n = nthreads();
    for (unsigned t = 0; t < n; ++t) {
        Fiber& f = fibers[t];
        f.idx.x = t % block_dim.x;
        f.idx.y = (t / block_dim.x) % block_dim.y;
        f.idx.z = t / (block_dim.x * block_dim.y);
        f.lane = t % 32;
        f.warp = t / 32;
        f.state = RUNNING;
        start_fiber(f, stacks[t]);
    }
    for (;;) {
        bool alive = false;
        for (unsigned t = 0; t < n; ++t) {
            if (fibers[t].state != RUNNING) continue;
            to_fiber(&fibers[t]);
            if (!error.empty()) return false;
        }
        for (unsigned t = 0; t < n; ++t) alive |= fibers[t].state != EXITED;
        if (!alive) return true;
        if (!release_barriers()) {
            error = "deadlock: threads of one block wait at different barriers "
                    "(__syncthreads in divergent code, or a warp op some lanes skip)";
            return false;
        }
    }
}

// Launch `kernel` over the grid with arguments in cudaLaunchKernel's form:
// args[i] points at the value of parameter i. Returns 0, or 1 with `error` set.
template <typename... A, size_t... I>
void invoke(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<A>*>(args[I])...);
}

template <typename... A>
int launch(void (*kernel)(A...), const unsigned* dims, void** args) {
    error.clear();
    grid_dim = dim3{dims[0], dims[1], dims[2]};
    block_dim = dim3{dims[3], dims[4], dims[5]};
    unsigned n = nthreads();
    if (n == 0 || n > (unsigned)kMaxThreads || block_dim.z > 64) {
        error = "invalid block size " + std::to_string(block_dim.x) + "x" +
                std::to_string(block_dim.y) + "x" + std::to_string(block_dim.z);
        return 1;
    }
    if (grid_dim.y > 65535 || grid_dim.z > 65535) {
        error = "grid y/z above 65535";
        return 1;
    }
    if (fibers.size() < n) fibers.resize(n);
    while (stacks.size() < n) stacks.push_back(static_cast<char*>(malloc(kStackBytes)));
    exchange.assign(((n + 31) / 32) * 32 * 8, 0ull);
    body = [=] { invoke(kernel, args, std::index_sequence_for<A...>{}); };
    for (unsigned z = 0; z < grid_dim.z; ++z)
        for (unsigned y = 0; y < grid_dim.y; ++y)
            for (unsigned x = 0; x < grid_dim.x; ++x) {
                block_idx = dim3{x, y, z};
                if (!run_block()) return 1;
            }
    return 0;
}

// ---------------------------------------------------------------- warp ops
template <typename T>
unsigned long long to_bits(T v) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    unsigned long long b = 0;
    memcpy(&b, &v, sizeof(T));
    return b;
}

template <typename T>
T from_bits(unsigned long long b) {
    T v;
    memcpy(&v, &b, sizeof(T));
    return v;
}

inline unsigned long long& slot(int warp, int lane, int k = 0) {
    return exchange[(size_t)(warp * 32 + lane) * 8 + k];
}

// Every live lane posts `v`, then reads lane `src` (or keeps its own value
// when src is outside the warp, as __shfl_down_sync does past the end).
template <typename T>
T shuffle(unsigned mask, T v, int src, const char* op) {
    if (mask != 0xffffffffu) fail(std::string(op) + ": only the full mask is supported");
    slot(current->warp, current->lane) = to_bits(v);
    syncwarp();
    T out = v;
    if (src >= 0 && src < 32) {
        unsigned t = current->warp * 32 + src;
        if (t >= nthreads() || fibers[t].state == EXITED)
            fail(std::string(op) + " reads lane " + std::to_string(src) +
                 ", which has exited or does not exist");
        out = from_bits<T>(slot(current->warp, src));
    }
    syncwarp();
    return out;
}

// D = A*B + C for one m16n8k8 TF32 tile per warp, registers in the PTX ISA
// layout (g = lane/4, t = lane%4):
//   A (16x8, row): a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4)
//   B (8x8, col):  b0 (t, g), b1 (t+4, g)
//   C, D (16x8):   c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1)
inline void mma_m16n8k8_tf32(float* d, const unsigned* a, const unsigned* b, const float* c) {
    int w = current->warp, lane = current->lane;
    for (int i = 0; i < 4; ++i) slot(w, lane, i) = a[i];
    for (int i = 0; i < 2; ++i) slot(w, lane, 4 + i) = b[i];
    syncwarp();
    for (int l = 0; l < 32; ++l) {
        unsigned t = w * 32 + l;
        if (t >= nthreads() || fibers[t].state == EXITED)
            fail("mma_m16n8k8_tf32 needs all 32 lanes of the warp");
    }
    auto tf32 = [](unsigned bits) {  // the hardware reads only the TF32 bits
        return from_bits<float>(bits & 0xffffe000u);
    };
    float A[16][8], B[8][8];
    for (int l = 0; l < 32; ++l) {
        int g = l / 4, t = l % 4;
        A[g][t] = tf32((unsigned)slot(w, l, 0));
        A[g + 8][t] = tf32((unsigned)slot(w, l, 1));
        A[g][t + 4] = tf32((unsigned)slot(w, l, 2));
        A[g + 8][t + 4] = tf32((unsigned)slot(w, l, 3));
        B[t][g] = tf32((unsigned)slot(w, l, 4));
        B[t + 4][g] = tf32((unsigned)slot(w, l, 5));
    }
    int g = lane / 4, t = lane % 4;
    for (int i = 0; i < 4; ++i) {
        int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
        float acc = c[i];
        for (int k = 0; k < 8; ++k) acc += A[row][k] * B[k][col];  // TF32 products are exact
        d[i] = acc;
    }
    syncwarp();
}

// cvt.rna.tf32.f32: round to the nearest TF32 value, ties away from zero.
inline unsigned cvt_rna_tf32(float x) {
    unsigned u = to_bits(x) & 0xffffffffu;
    if ((u & 0x7f800000u) == 0x7f800000u) return u & 0xffffe000u;  // inf/nan
    u += 0x1000u;
    return u & 0xffffe000u;
}

}  // namespace emu

// ------------------------------------------------ CUDA C++ spelled for the host
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static
#define __launch_bounds__(...)
#define threadIdx (emu::current->idx)
#define blockIdx (emu::block_idx)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)
#define warpSize 32

inline void __syncthreads() { emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    if (mask != 0xffffffffu) emu::fail("__syncwarp: only the full mask is supported");
    emu::syncwarp();
}
template <typename T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    if (width != 32) emu::fail("__shfl_sync: width must be 32");
    return emu::shuffle(mask, v, src & 31, "__shfl_sync");
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    if (width != 32) emu::fail("__shfl_xor_sync: width must be 32");
    return emu::shuffle(mask, v, emu::current->lane ^ lane_mask, "__shfl_xor_sync");
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    if (width != 32) emu::fail("__shfl_down_sync: width must be 32");
    return emu::shuffle(mask, v, emu::current->lane + (int)delta, "__shfl_down_sync");
}
template <typename T>
T __ldg(const T* p) { return *p; }

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline unsigned __float_as_uint(float x) { return (unsigned)emu::to_bits(x); }
inline float __uint_as_float(unsigned x) { return emu::from_bits<float>(x); }
inline long long __double_as_longlong(double x) { return (long long)emu::to_bits(x); }
inline double __longlong_as_double(long long x) {
    return emu::from_bits<double>((unsigned long long)x);
}
inline unsigned __umulhi(unsigned a, unsigned b) {
    return (unsigned)(((unsigned long long)a * b) >> 32);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
