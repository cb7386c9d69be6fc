"""Debug switches every backend honours.

`poison`: `Backend.empty` fills new arrays with NaN, so any element a kernel
forgets to write shows up as NaN in the tests instead of as stale memory that
happens to look right. The test suite turns it on for every test.
"""

import contextlib

import numpy as np

poison = False


@contextlib.contextmanager
def poison_outputs(on=True):
    global poison
    old, poison = poison, on
    try:
        yield
    finally:
        poison = old


def empty(xp, shape, dtype):
    """An uninitialised contiguous `xp` array (NumPy or CuPy), NaN-filled
    while `poison` is on (integers get their minimum, booleans True), so
    elements a kernel forgets to write fail the tests. The GPU backends'
    allocators call this."""
    dtype = np.dtype(dtype)
    if poison:
        bad = (np.nan if dtype.kind in "fc" else True if dtype.kind == "b"
               else np.iinfo(dtype).min)
        return xp.full(tuple(shape), bad, dtype=dtype)
    return xp.empty(tuple(shape), dtype=dtype)


# What a launch that is recorded but not run (the launch recorders'
# record-only mode: benchmarks/inspect_kernel.py, benchmarks/aot.py) leaves
# in its floating-point arrays: a value inside every op's domain (a
# probability, a variance, a log's argument), so that host-side checks on
# values further on (BCE's input range) pass and the rest of a training step
# is recorded too. A launch plan depends on shapes only, never on these
# values. Only arrays of at most STAND_IN_MAX elements are set: what a step
# reads back on the host is small (losses, statistics, D's (N,) output,
# flags), and setting every activation would cost more than the recording.
STAND_IN, STAND_IN_MAX = 0.5, 1 << 16


def stand_in(args):
    """Set every small writable floating-point array among a skipped
    launch's arguments (torch views for Triton launches; NumPy arrays for
    CUDA C launches under the emulator) to STAND_IN. Integer arrays (pointer
    tables, indices, flags) are left alone."""
    for v in args:
        if hasattr(v, "data_ptr") and hasattr(v, "is_floating_point"):  # torch view
            if v.is_floating_point() and 0 < v.numel() <= STAND_IN_MAX:
                try:
                    v.fill_(STAND_IN)
                except RuntimeError:  # overlapping (broadcast) views: inputs only
                    pass
        elif (hasattr(v, "dtype") and hasattr(v, "flags") and np.dtype(v.dtype).kind == "f"
              and v.flags.writeable and 0 < v.size <= STAND_IN_MAX):
            v[...] = STAND_IN  # NumPy or CuPy array
