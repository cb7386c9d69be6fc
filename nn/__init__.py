"""nn: a minimal autograd engine and torch-style layers on hand-written kernels.

    import nn
    x = nn.tensor(data, requires_grad=True)
    y = nn.functional.conv2d(x, w).sum(); y.backward()
    with nn.use_backend("numpy"): ...

Names follow torch: nn.Conv2d, nn.functional.batch_norm, nn.optim.Adam, ...
"""

from . import autograd, functional, init, optim, serialization, utils
from .autograd import (Function, FunctionCtx, enable_grad, is_grad_enabled, no_grad,
                       once_differentiable, set_grad_enabled)
from .backend import get_backend, manual_seed, set_backend, use_backend
from .functional import cat, matmul, stack, where
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .layers import (BatchNorm1d, BatchNorm2d, BCELoss, BCEWithLogitsLoss, Conv2d,
                     ConvTranspose2d, CrossEntropyLoss, Flatten, L1Loss, LayerNorm, LeakyReLU, Linear,
                     MinibatchStdDev, MSELoss, NLLLoss, ReLU, Sigmoid, Tanh, Unflatten)
from .module import Module, Sequential
from .tensor import (Parameter, Tensor, bool_, float32, float64, full, get_default_dtype, int64,
                     ones, rand, randn, set_default_dtype, tensor, zeros)


def tanh(input):
    return functional.tanh(input)


def sigmoid(input):
    return functional.sigmoid(input)


def exp(input):
    return input.exp()


def log(input):
    return input.log()


def sqrt(input):
    return input.sqrt()


def abs(input):
    return input.abs()


def maximum(input, other):
    return input.maximum(other)


def minimum(input, other):
    return input.minimum(other)


__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d",
    "CrossEntropyLoss", "Flatten", "Function", "FunctionCtx", "GradcheckError", "L1Loss",
    "LayerNorm", "LeakyReLU", "Linear", "MinibatchStdDev", "MSELoss", "Module", "NLLLoss", "Parameter", "ReLU",
    "Sequential", "Sigmoid", "Tanh", "Tensor", "Unflatten", "abs", "autograd", "bool_", "cat",
    "enable_grad",
    "exp", "log", "sigmoid", "sqrt", "tanh",
    "float32", "float64", "full", "functional", "get_backend", "get_default_dtype", "gradcheck",
    "gradgradcheck", "init", "int64", "is_grad_enabled", "manual_seed", "matmul", "maximum",
    "minimum", "no_grad", "once_differentiable", "ones", "optim", "rand", "randn",
    "set_backend", "set_default_dtype", "set_grad_enabled", "stack", "tensor", "use_backend",
    "utils",
    "where", "zeros",
]
