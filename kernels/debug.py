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
