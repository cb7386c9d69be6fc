"""What every Triton launcher shares: the array module, the pointer adapter,
allocation and the matmul precision.

Arrays. On a GPU the backend's arrays are CuPy arrays (the same type the
`cupy` backend uses); under TRITON_INTERPRET=1 they are NumPy arrays, and
Triton's interpreter runs the kernels on the CPU. Either way Triton's
launcher wants torch tensors, so `ptr(a)` wraps an array as a zero-copy torch
view (torch.from_numpy, or torch.from_dlpack for CuPy). torch is only the
launcher's runtime here: no torch function computes anything.

Precision. `tl.dot` on float32 defaults to TF32 on NVIDIA GPUs. DOT_PRECISION
is "ieee" (exact fp32, what the tests use) unless NN_TRITON_PRECISION=tf32;
float64 dots are always exact. Every benchmark states which one it ran.
"""

import os

import numpy as np

from ..launch_checks import cdiv, next_pow2, require_contiguous  # noqa: F401 - re-exported

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
SIMULATED = INTERPRET  # the name kernels/gpu_backend.py reads

if INTERPRET:
    xp = np
else:  # pragma: no cover - needs a GPU
    import cupy as xp

DOT_PRECISION = os.environ.get("NN_TRITON_PRECISION", "ieee")
if DOT_PRECISION not in ("ieee", "tf32"):
    raise ValueError(f"NN_TRITON_PRECISION must be 'ieee' or 'tf32', got {DOT_PRECISION!r}")


def set_precision(precision):
    """'ieee' (exact fp32) or 'tf32' for float32 tl.dot; read at launch time."""
    global DOT_PRECISION
    if precision not in ("ieee", "tf32"):
        raise ValueError(f"precision must be 'ieee' or 'tf32', got {precision!r}")
    DOT_PRECISION = precision


def dot_precision(dtype):
    return "ieee" if np.dtype(dtype) == np.float64 else DOT_PRECISION


def ptr(a):
    """A zero-copy torch view of array `a`, for Triton's launcher."""
    import torch
    if INTERPRET:
        return torch.from_numpy(a)
    return torch.from_dlpack(a)  # pragma: no cover - needs a GPU


def address(a):
    """The raw device address of `a`'s first element (for pointer tables)."""
    return a.ctypes.data if INTERPRET else a.data.ptr


def empty(shape, dtype):
    """An uninitialised contiguous array (NaN-poisoned in the tests)."""
    from .. import debug
    return debug.empty(xp, shape, dtype)


def _fix_interpreter_loops():
    """Triton 3.6's interpreter with NumPy >= 2.4 fails on `for i in range(n)`
    when n is a runtime argument (triton-lang/triton#9171, fixed by #9172 in a
    later release): the loop bound is a 1-element array that NumPy no longer
    converts with __index__. Probe once; if the probe fails, give interpreter
    tensors an __index__ as the fix does. GPU compilation is not affected."""
    import torch
    import triton
    import triton.language as tl
    import triton.runtime.interpreter as interp

    @triton.jit
    def _probe(out, n):
        acc = 0
        for i in range(n):
            acc += 1
        tl.store(out, acc)

    out = np.zeros(1, np.int32)
    try:
        _probe[(1,)](torch.from_numpy(out), 2)
        return
    except Exception:  # the bug: TypeError wrapped in InterpreterError
        pass
    original = interp._patch_lang_tensor

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interp._patch_lang_tensor = patched


if INTERPRET:
    _fix_interpreter_loops()
