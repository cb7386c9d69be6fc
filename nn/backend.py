"""Which backend new tensors and ops use.

The default is the environment variable NN_BACKEND if set, else the best
backend this machine runs natively: a GPU backend when a CUDA GPU is present,
otherwise `numpy`. (Triton under TRITON_INTERPRET=1 is never the default: it
is a CPU test path, far slower than NumPy.)
"""

import contextlib
import os

import kernels

ENV_VAR = "NN_BACKEND"
_current = None


def _default_name():
    name = os.environ.get(ENV_VAR)
    if name:
        return name
    if kernels._gpu_present():
        for name in ("triton", "cupy"):
            if kernels.why_unavailable(name) is None:
                return name
    return "numpy"


def current():
    """The active backend instance (a `kernels.Backend`)."""
    global _current
    if _current is None:
        _current = kernels.get_backend(_default_name())
        _seed_if_needed(_current)
    return _current


def get_backend():
    """The name of the active backend."""
    return current().name


def set_backend(name):
    """Make `name` the active backend; raises if it cannot run here."""
    global _current
    _current = kernels.get_backend(name)
    _seed_if_needed(_current)


@contextlib.contextmanager
def use_backend(name):
    """`with nn.use_backend("triton"): ...` makes `name` active inside the block."""
    global _current
    prev = current()
    set_backend(name)
    try:
        yield _current
    finally:
        _current = prev


# manual_seed seeds every backend created so far, and remembers the seed for
# backends created later, so that "everything the library draws" is seeded.
_seed = None
_seeded = set()


def manual_seed(seed):
    """Seed every backend's generator (NumPy's and the GPU ones)."""
    global _seed
    _seed = int(seed)
    _seeded.clear()
    for backend in kernels._instances.values():
        _seed_if_needed(backend)


def _seed_if_needed(backend):
    if _seed is not None and backend.name not in _seeded:
        backend.manual_seed(_seed)
        _seeded.add(backend.name)
