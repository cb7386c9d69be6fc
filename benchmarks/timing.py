"""Timers and machine peaks.

CPU work is timed with time.perf_counter around whole calls: one warm-up,
then repeated runs until `min_time` seconds have passed and at least
`min_runs` were taken; we report the median and the min-max spread.

GPU work is timed with CUDA events on the default stream (torch's events;
CuPy and Triton launch on the same legacy default stream, so the events
bracket our kernels too), after a warm-up, and between runs a 256 MB buffer is
overwritten so that every run starts with a cold L2 (the DCGAN's activations,
4-32 MB, would otherwise stay in the H100's 50 MB L2 from one repeat to the
next, which a training step does not enjoy). Median and min-max again.

Peaks are measured in the same run, so each row's percentage refers to this
machine as it was at that moment:
  compute  a float32 matrix product, 4096^3 on the CPU (NumPy/OpenBLAS and
           torch: the faster), 8192^3 on a GPU with TF32 off ("fp32") and on
           ("tf32");
  memory   a large copy (256 MB on the CPU, 1 GB on a GPU), counted as read +
           write bytes.
"""

import statistics
import time

import numpy as np


def _summary(times):
    return dict(median_s=statistics.median(times), min_s=min(times), max_s=max(times),
                runs=len(times))


class CpuTimer:
    kind = "cpu"

    def __init__(self, min_time=0.5, min_runs=3, max_runs=50):
        self.min_time, self.min_runs, self.max_runs = min_time, min_runs, max_runs

    def sync(self):
        pass

    def __call__(self, fn):
        fn()  # warm-up
        times, start = [], time.perf_counter()
        while len(times) < self.max_runs and (len(times) < self.min_runs
                                              or time.perf_counter() - start < self.min_time):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return _summary(times)


class CudaTimer:  # pragma: no cover - needs a GPU
    kind = "cuda"

    def __init__(self, min_time=0.5, min_runs=5, max_runs=100, flush_l2=True):
        import torch
        self.torch = torch
        self.min_time, self.min_runs, self.max_runs = min_time, min_runs, max_runs
        self.flush = torch.empty(64 * 1024 * 1024, dtype=torch.float32, device="cuda") \
            if flush_l2 else None

    def sync(self):
        self.torch.cuda.synchronize()

    def __call__(self, fn):
        torch = self.torch
        for _ in range(2):  # warm-up: compilation, autotuning, allocator
            fn()
        torch.cuda.synchronize()
        times, start = [], time.perf_counter()
        while len(times) < self.max_runs and (len(times) < self.min_runs
                                              or time.perf_counter() - start < self.min_time):
            if self.flush is not None:
                self.flush.zero_()
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end) / 1e3)
        return _summary(times)


def cpu_peaks(timer, small=False):
    """{"flops": {"fp32": FLOP/s}, "bandwidth": B/s, "detail": ...} on the CPU."""
    import torch
    n = 512 if small else 4096
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    ta = torch.from_numpy(a)
    np_mm = timer(lambda: a @ a)["median_s"]
    torch_mm = timer(lambda: ta @ ta)["median_s"]
    fp32 = 2 * n ** 3 / min(np_mm, torch_mm)
    m = (1 << 20) if small else (64 << 20)  # float32 elements: 4 MB or 256 MB
    src, dst = np.ones(m, np.float32), np.empty(m, np.float32)
    copy = timer(lambda: np.copyto(dst, src))["median_s"]
    return dict(flops={"fp32": fp32}, bandwidth=2 * src.nbytes / copy,
                detail=dict(matmul_n=n, numpy_matmul_flops=2 * n ** 3 / np_mm,
                            torch_matmul_flops=2 * n ** 3 / torch_mm, copy_bytes=src.nbytes))


def gpu_peaks(timer, small=False):  # pragma: no cover - needs a GPU
    """{"flops": {"fp32", "tf32"}, "bandwidth"} measured with torch on the GPU."""
    import torch
    n = 2048 if small else 8192
    a = torch.randn(n, n, device="cuda")
    old = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        fp32 = 2 * n ** 3 / timer(lambda: a @ a)["median_s"]
        torch.backends.cuda.matmul.allow_tf32 = True
        tf32 = 2 * n ** 3 / timer(lambda: a @ a)["median_s"]
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    m = (16 << 20) if small else (256 << 20)  # float32 elements: 64 MB or 1 GB
    src, dst = torch.ones(m, device="cuda"), torch.empty(m, device="cuda")
    copy = timer(lambda: dst.copy_(src))["median_s"]
    return dict(flops={"fp32": fp32, "tf32": tf32}, bandwidth=2 * m * 4 / copy,
                detail=dict(matmul_n=n, copy_bytes=m * 4))
