"""The activations on their fused kernels: leaky_relu, relu, tanh, sigmoid.

Each is a forward Function and a backward Function over the fused forward and
backward kernels; the backward Function's own backward is again written with
them, so both stay fused at first order and differentiate to any order.
"""

from .autograd import Function
from .ops import backend_for, wrap


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, slope):
        B = backend_for("leaky_relu", x)
        ctx.slope = slope
        ctx.save_for_backward(x)
        return wrap(B, B.leaky_relu_forward(x.data, slope))

    @staticmethod
    def backward(ctx, dy):
        x, = ctx.saved_tensors
        return LeakyReLUBackward.apply(dy, x, ctx.slope), None


class LeakyReLUBackward(Function):
    """dx = dy * (x > 0 ? 1 : slope): linear in dy; flat in x almost everywhere."""

    @staticmethod
    def forward(ctx, dy, x, slope):
        B = backend_for("leaky_relu", dy, x)
        ctx.slope = slope
        ctx.save_for_backward(x)
        return wrap(B, B.leaky_relu_backward(dy.data, x.data, slope))

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return LeakyReLUBackward.apply(g, x, ctx.slope), None, None


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        B = backend_for("relu", x)
        y = wrap(B, B.relu_forward(x.data))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        y, = ctx.saved_tensors
        return ReLUBackward.apply(dy, y.detach())


class ReLUBackward(Function):
    """dx = dy where y > 0, else 0."""

    @staticmethod
    def forward(ctx, dy, y):
        B = backend_for("relu", dy, y)
        ctx.save_for_backward(y)
        return wrap(B, B.relu_backward(dy.data, y.data))

    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        return ReLUBackward.apply(g, y), None


class _Smooth(Function):
    """y = f(x) for tanh and sigmoid: the fused forward kernel; the backward
    is `Backward`, a Function over the fused backward kernel."""
    name, kernel, Backward = "?", None, None

    @classmethod
    def forward(cls, ctx, x):
        B = backend_for(cls.name, x)
        ctx.save_for_backward(x)
        return wrap(B, cls.kernel(B, x.data))

    @classmethod
    def backward(cls, ctx, dy):
        x, = ctx.saved_tensors
        return cls.Backward.apply(dy, x)


class _SmoothBackward(Function):
    """dx = dy * f'(x), the fused backward kernel. Linear in dy; its
    derivative in x is dy * f''(x) = dy * f'(x) * curvature(x), with
    curvature = f''/f' written with Tensor ops."""
    name, kernel, curvature = "?", None, None

    @classmethod
    def forward(cls, ctx, dy, x):
        B = backend_for(cls.name, dy, x)
        ctx.save_for_backward(dy, x)
        return wrap(B, cls.kernel(B, dy.data, x.data))

    @classmethod
    def backward(cls, ctx, g):
        dy, x = ctx.saved_tensors
        need_dy, need_x = ctx.needs_input_grad
        return (cls.apply(g, x) if need_dy else None,
                cls.apply(g * dy, x) * cls.curvature(x) if need_x else None)


class TanhBackward(_SmoothBackward):
    """sech^2(x)' = -2 tanh(x) sech^2(x)."""
    name = "tanh"
    kernel = staticmethod(lambda B, dy, x: B.tanh_backward(dy, x))
    curvature = staticmethod(lambda x: Tanh.apply(x) * -2.0)


class SigmoidBackward(_SmoothBackward):
    """s' = s (1 - s); s'' = s' (1 - 2 s)."""
    name = "sigmoid"
    kernel = staticmethod(lambda B, dy, x: B.sigmoid_backward(dy, x))
    curvature = staticmethod(lambda x: 1.0 - 2.0 * Sigmoid.apply(x))


class Tanh(_Smooth):
    name, Backward = "tanh", TanhBackward
    kernel = staticmethod(lambda B, x: B.tanh_forward(x))


class Sigmoid(_Smooth):
    name, Backward = "sigmoid", SigmoidBackward
    kernel = staticmethod(lambda B, x: B.sigmoid_forward(x))


# `inplace` is accepted for torch compatibility; our ops never write their input.
def leaky_relu(input, negative_slope=0.01, inplace=False):
    return LeakyReLU.apply(input, float(negative_slope))


def relu(input, inplace=False):
    return ReLU.apply(input)


def tanh(input):
    return Tanh.apply(input)


def sigmoid(input):
    return Sigmoid.apply(input)

