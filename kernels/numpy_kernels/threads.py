"""A small thread pool for the convolution's big copies and adds.

NumPy releases the GIL inside its copy and ufunc loops, so one large pass
split into chunks over a few threads uses every core, as BLAS already does
for the GEMMs; without it the copying around each GEMM runs on one core
while the GEMM runs on all of them. The thread count is BLAS's (the
OPENBLAS_NUM_THREADS / OMP_NUM_THREADS that benchmarks and users set, so
both sides of a comparison use the same), else the CPU count. Passes smaller
than _MIN_ELEMENTS stay on the calling thread: handing work to another
thread costs tens of microseconds, a pass over 256 K floats about as much.
"""

import concurrent.futures
import os

_MIN_ELEMENTS = 1 << 18
_pool = None
_pool_pid = None  # a forked child inherits the pool object but not its threads


def workers():
    """Threads to use: BLAS's count, read at call time (tests change it)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def _executor(n):
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid() or _pool._max_workers < n:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=False)
        _pool = concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix="numpy-kernels")
        _pool_pid = os.getpid()
    return _pool


def parallel_for(fn, n, elements):
    """fn(start, stop) over [0, n) cut into one contiguous range per thread,
    the first on the calling thread; `elements` is the pass's size, which
    decides whether splitting pays. fn must write disjoint outputs."""
    k = min(workers(), n) if elements >= _MIN_ELEMENTS else 1
    if k <= 1:
        fn(0, n)
        return
    cuts = [n * i // k for i in range(k + 1)]
    pending = [_executor(k - 1).submit(fn, a, b) for a, b in zip(cuts[1:-1], cuts[2:])]
    fn(cuts[0], cuts[1])
    for p in pending:
        p.result()  # re-raises a worker's exception here
