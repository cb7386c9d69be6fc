"""The `cupy` backend: every contract function as hand-written CUDA C kernels.

The kernels are .cu files in kernels/cuda/, one per family (conv, matmul,
batch norm, losses, elementwise, reductions, optimizers), each with a thin
Python launcher beside it; kernels/gpu_backend.py maps the contract onto
them, as it does for the `triton` backend. On a GPU the sources are compiled
by NVRTC through cupy.RawModule and arrays are CuPy arrays; with
NN_CUDA_EMULATE=1 the same sources run on the CPU through
kernels/cuda/emulate.h, over NumPy arrays (the path CI takes).

Precision: float32 convolutions and matmuls use the exact-FP32 tiled kernels
(version 1) unless NN_CUPY_PRECISION=tf32 selects the tensor-core ones
(version 2); both run on one GEMM core, kernels/cuda/gemm.cuh.
"""

import contextlib

from .cuda import batchnorm, conv, elementwise, loss, matmul, optim, reduce, runtime
from .gpu_backend import KernelModuleBackend


class CupyBackend(KernelModuleBackend):
    name = "cupy"
    conv, batchnorm, loss, elementwise, reduce, optim = (conv, batchnorm, loss, elementwise,
                                                         reduce, optim)
    matmul_module = matmul
    runtime = runtime

    def add_(self, dst, src):
        """dst += src in place (dst contiguous, src broadcastable): nn's
        gradient accumulation. Not in the contract yet: nn falls back to add."""
        return elementwise._launch_ewise("add_", "add", dst, dst, src)

    @contextlib.contextmanager
    def _count_launches(self, names):
        # runtime.py's recording hook sees every launch (after its checks).
        saved = runtime.recorder
        runtime.recorder = []
        try:
            yield
        finally:
            names += [name for _, name, _, _ in runtime.recorder]
            if saved is not None:
                saved += runtime.recorder
            runtime.recorder = saved

    def __repr__(self):
        mode = "emulated" if runtime.EMULATE else "gpu"
        return f"CupyBackend(device={self.device!r}, mode={mode}, precision={conv.PRECISION})"
