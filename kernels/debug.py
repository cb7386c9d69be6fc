"""Debug switches every backend honours.

`poison`: `Backend.empty` fills new arrays with NaN, so any element a kernel
forgets to write shows up as NaN in the tests instead of as stale memory that
happens to look right. The test suite turns it on for every test.
"""

import contextlib

poison = False


@contextlib.contextmanager
def poison_outputs(on=True):
    global poison
    old, poison = poison, on
    try:
        yield
    finally:
        poison = old
