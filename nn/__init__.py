"""nn: a minimal autograd engine and torch-style layers on hand-written kernels.

    import nn
    x = nn.tensor(data, requires_grad=True)
    y = nn.functional.conv2d(x, w).sum(); y.backward()
    with nn.use_backend("numpy"): ...

Names follow torch: nn.Conv2d, nn.functional.batch_norm, nn.optim.Adam, ...
"""

from . import autograd, functional, init, optim
from .autograd import Function, FunctionCtx, enable_grad, is_grad_enabled, no_grad
from .backend import get_backend, manual_seed, set_backend, use_backend
from .gradcheck import GradcheckError, gradcheck
from .layers import (BatchNorm2d, BCELoss, BCEWithLogitsLoss, Conv2d, ConvTranspose2d, LeakyReLU,
                     ReLU, Sigmoid, Tanh)
from .module import Module, Sequential
from .tensor import (Parameter, Tensor, float32, float64, full, get_default_dtype, int64, ones,
                     rand, randn, set_default_dtype, tensor, zeros)

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "autograd", "BatchNorm2d", "Conv2d", "ConvTranspose2d", "Function",
    "FunctionCtx", "GradcheckError", "LeakyReLU", "Module", "Parameter", "ReLU", "Sequential",
    "Sigmoid", "Tanh", "Tensor", "enable_grad", "float32", "float64", "full", "functional",
    "get_backend", "get_default_dtype", "gradcheck", "init", "int64", "is_grad_enabled",
    "manual_seed", "no_grad", "ones", "optim", "rand", "randn", "set_backend",
    "set_default_dtype", "tensor", "use_backend", "zeros",
]
