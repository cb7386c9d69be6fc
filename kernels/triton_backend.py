"""The `triton` backend: every contract function as hand-written Triton kernels.

The kernels live in kernels/triton/, one file per family (conv, batch norm,
losses, elementwise, reductions, matmul, optimizers); kernels/gpu_backend.py maps the
contract onto them, as it does for the `cupy` backend's CUDA C modules.
Arrays are CuPy arrays on a GPU and NumPy arrays under TRITON_INTERPRET=1
(see kernels/triton/common.py), and every output is allocated by
`common.empty`, NaN-poisoned in the tests.
"""

from .gpu_backend import KernelModuleBackend
from .triton import batchnorm, common, conv, elementwise, loss, matmul, optim, reduce


class TritonBackend(KernelModuleBackend):
    name = "triton"
    conv, batchnorm, loss, elementwise, reduce, optim = (conv, batchnorm, loss, elementwise,
                                                         reduce, optim)
    matmul_module = matmul
    runtime = common

    def __repr__(self):
        mode = "interpreter" if common.INTERPRET else "gpu"
        return f"TritonBackend(device={self.device!r}, mode={mode}, precision={common.DOT_PRECISION})"
