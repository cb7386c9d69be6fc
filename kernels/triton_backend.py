"""The `triton` backend: every contract function as hand-written Triton kernels.

The kernels live in kernels/triton/, one file per family (conv, batch norm,
losses, elementwise, reductions, matmul, optimizers); kernels/gpu_backend.py maps the
contract onto them, as it does for the `cupy` backend's CUDA C modules.
Arrays are CuPy arrays on a GPU and NumPy arrays under TRITON_INTERPRET=1
(see kernels/triton/common.py), and every output is allocated by
`common.empty`, NaN-poisoned in the tests.
"""

import contextlib

from .gpu_backend import KernelModuleBackend
from .triton import batchnorm, common, conv, elementwise, loss, matmul, optim, reduce


class TritonBackend(KernelModuleBackend):
    name = "triton"
    conv, batchnorm, loss, elementwise, reduce, optim = (conv, batchnorm, loss, elementwise,
                                                         reduce, optim)
    matmul_module = matmul
    runtime = common

    def add_(self, dst, src):
        """dst += src in place (dst contiguous, src broadcastable): nn's
        gradient accumulation. Not in the contract yet: nn falls back to add."""
        return elementwise._launch_ewise("add", dst, dst, src)

    @contextlib.contextmanager
    def _count_launches(self, names):
        # `kernel[grid](...)` goes through KernelInterface.__getitem__ for both
        # JITFunction (GPU) and InterpretedFunction (TRITON_INTERPRET=1).
        from triton.runtime.jit import KernelInterface
        original = KernelInterface.__getitem__

        def getitem(kernel, grid):
            names.append(kernel.fn.__name__ if hasattr(kernel, "fn") else kernel.__name__)
            return original(kernel, grid)

        KernelInterface.__getitem__ = getitem
        try:
            yield
        finally:
            KernelInterface.__getitem__ = original

    def __repr__(self):
        mode = "interpreter" if common.INTERPRET else "gpu"
        return f"TritonBackend(device={self.device!r}, mode={mode}, precision={common.DOT_PRECISION})"
