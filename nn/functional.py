"""torch.nn.functional's names and arguments, on our kernels.

Each public function checks its arguments (naming the op, what it expected and
what came) and then applies one `Function`, whose forward and backward are the
backend's kernels. The checks live here, once, so every backend gets them.
"""

from kernels.conv_geometry import conv_output_size, conv_transpose_output_size, pair

from .autograd import Function
from .ops import Mean, Mul, Sum, backend_for, wrap
from .tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


# ------------------------------------------------------------------ checks
def _require_rank(op, name, t, ranks):
    if t.ndim not in ranks:
        want = " or ".join(f"{r}-d" for r in ranks)
        raise ValueError(f"{op}: expected {name} to be {want}, got shape {t.shape}")


def _conv_args(op, x, w, b, stride, padding, dilation, groups, out_channels_dim):
    if groups != 1:
        raise NotImplementedError(f"{op}: groups={groups} is not supported (only groups=1)")
    _require_rank(op, "input (N, C, H, W)", x, (4,))
    _require_rank(op, "weight", w, (4,))
    in_dim = 1 - out_channels_dim  # which weight dim must match the input channels
    if x.shape[1] != w.shape[in_dim]:
        raise ValueError(f"{op}: input has {x.shape[1]} channels but weight of shape {w.shape} "
                         f"expects {w.shape[in_dim]}")
    if b is not None and b.shape != (w.shape[out_channels_dim],):
        raise ValueError(f"{op}: bias must have shape ({w.shape[out_channels_dim]},), "
                         f"got {b.shape}")
    stride, dilation = pair(stride, f"{op}: stride"), pair(dilation, f"{op}: dilation")
    if isinstance(padding, str):
        padding = _string_padding(op, padding, w.shape[2:], stride, dilation)
    padding = pair(padding, f"{op}: padding")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(f"{op}: stride and dilation must be >= 1 and padding >= 0, got "
                         f"stride={stride}, padding={padding}, dilation={dilation}")
    return stride, padding, dilation


def _string_padding(op, padding, kernel_hw, stride, dilation):
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise ValueError(f"{op}: padding='same' needs stride 1, got {stride}")
        total = [d * (k - 1) for k, d in zip(kernel_hw, dilation)]
        if any(t % 2 for t in total):
            raise NotImplementedError(f"{op}: padding='same' with an even dilated kernel "
                                      f"needs asymmetric padding, which is not supported")
        return (total[0] // 2, total[1] // 2)
    raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")


def _check_output_hw(op, out_hw, x, w):
    if min(out_hw) < 1:
        raise ValueError(f"{op}: the output would be empty ({out_hw[0]}x{out_hw[1]}) for input "
                         f"{x.shape} and weight {w.shape}")


# -------------------------------------------------------------- convolution
class _Conv(Function):
    """conv2d and conv_transpose2d share one Function: the same saved tensors
    and the same backward, over the backend kernels named `<op>_...`."""
    op = "?"

    @classmethod
    def forward(cls, ctx, x, w, b, stride, padding, dilation, *output_padding):
        B = backend_for(cls.op, x, w, b)
        ctx.geometry = (stride, padding, dilation)
        ctx.hw = (x.shape[2:], w.shape[2:])
        need_x, need_w = ctx.needs_input_grad[:2]
        # dx needs only w, dw needs only x: keep what the backward will read.
        ctx.save_for_backward(x if need_w else None, w if need_x else None)
        forward = getattr(B, cls.op + "_forward")
        return wrap(B, forward(x.data, w.data, None if b is None else b.data, stride, padding,
                               *output_padding, dilation))

    @classmethod
    def backward(cls, ctx, dy):
        B, (x, w), (x_hw, k_hw) = dy._backend, ctx.saved_tensors, ctx.hw
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        kernel = lambda name: getattr(B, f"{cls.op}_backward_{name}")  # noqa: E731
        dx = wrap(B, kernel("input")(dy.data, w.data, x_hw, *ctx.geometry)) if need_x else None
        dw = wrap(B, kernel("weight")(dy.data, x.data, k_hw, *ctx.geometry)) if need_w else None
        db = wrap(B, kernel("bias")(dy.data)) if need_b else None
        return (dx, dw, db) + (None,) * (len(ctx.needs_input_grad) - 3)


class Conv2d(_Conv):
    op = "conv2d"


class ConvTranspose2d(_Conv):
    op = "conv_transpose2d"


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    stride, padding, dilation = _conv_args("conv2d", input, weight, bias, stride, padding,
                                           dilation, groups, out_channels_dim=0)
    _check_output_hw("conv2d", conv_output_size(input.shape[2:], weight.shape[2:], stride,
                                                padding, dilation), input, weight)
    return Conv2d.apply(input, weight, bias, stride, padding, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    op = "conv_transpose2d"
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a pair, got {padding!r}")
    stride, padding, dilation = _conv_args(op, input, weight, bias, stride, padding, dilation,
                                           groups, out_channels_dim=1)
    output_padding = pair(output_padding, f"{op}: output_padding")
    for op_, s, d in zip(output_padding, stride, dilation):
        if not 0 <= op_ < max(s, d):
            raise ValueError(f"{op}: output_padding must be smaller than either stride or "
                             f"dilation, got output_padding={output_padding}, stride={stride}, "
                             f"dilation={dilation}")
    _check_output_hw(op, conv_transpose_output_size(input.shape[2:], weight.shape[2:], stride,
                                                    padding, output_padding, dilation),
                     input, weight)
    return ConvTranspose2d.apply(input, weight, bias, stride, padding, dilation, output_padding)


# --------------------------------------------------------------- batch norm
class BatchNorm(Function):
    """Batch norm over axis 1 of a 4-D input (functional reshapes 2-D and 3-D)."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        B = backend_for("batch_norm", x, weight, bias, running_mean, running_var)
        data = [None if t is None else t.data for t in (weight, bias, running_mean, running_var)]
        if training:
            y, mean, invstd = B.batch_norm_train_forward(x.data, *data, momentum, eps)
        else:
            y, mean, invstd = B.batch_norm_eval_forward(x.data, *data, eps)
        ctx.training = training
        ctx.save_for_backward(x, weight, wrap(B, mean), wrap(B, invstd))
        return wrap(B, y)

    @staticmethod
    def backward(ctx, dy):
        B = dy._backend
        x, weight, mean, invstd = ctx.saved_tensors
        dx, dw, db = B.batch_norm_backward(dy.data, x.data, None if weight is None else weight.data,
                                           mean.data, invstd.data, ctx.training)
        need = ctx.needs_input_grad
        return (wrap(B, dx) if need[0] else None, wrap(B, dw) if need[1] else None,
                wrap(B, db) if need[2] else None, None, None, None, None, None)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    op = "batch_norm"
    _require_rank(op, "input (N, C, ...)", input, (2, 3, 4))
    C = input.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t is not None and t.shape != (C,):
            raise ValueError(f"{op}: {name} must have shape ({C},) for an input with {C} "
                             f"channels, got {t.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError(f"{op}: eval mode (training=False) needs running_mean and running_var")
    if training and input.numel() // C <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, "
                         f"got input of shape {input.shape}")
    shape = input.shape
    x = input if input.ndim == 4 else input.reshape(*shape, *(1,) * (4 - input.ndim))
    y = BatchNorm.apply(x, weight, bias, running_mean, running_var, bool(training),
                        float(momentum), float(eps))
    return y if input.ndim == 4 else y.reshape(*shape)


# -------------------------------------------------------------- activations
class _Activation(Function):
    """y = f(x); the backward reads x or y, whichever `saves` names."""
    name, saves = "?", "y"

    @classmethod
    def forward(cls, ctx, x, *args):
        B = backend_for(cls.name, x)
        y = wrap(B, getattr(B, cls.name + "_forward")(x.data, *args))
        ctx.args = args
        ctx.save_for_backward(y if cls.saves == "y" else x)
        return y

    @classmethod
    def backward(cls, ctx, dy):
        B, (saved,) = dy._backend, ctx.saved_tensors
        dx = getattr(B, cls.name + "_backward")(dy.data, saved.data, *ctx.args)
        return (wrap(B, dx),) + (None,) * len(ctx.args)


class LeakyReLU(_Activation):
    name, saves = "leaky_relu", "x"


class ReLU(_Activation):
    name = "relu"


class Tanh(_Activation):
    name, saves = "tanh", "x"


class Sigmoid(_Activation):
    name, saves = "sigmoid", "x"


# `inplace` is accepted for torch compatibility; our ops never write their input.
def leaky_relu(input, negative_slope=0.01, inplace=False):
    return LeakyReLU.apply(input, float(negative_slope))


def relu(input, inplace=False):
    return ReLU.apply(input)


def tanh(input):
    return Tanh.apply(input)


def sigmoid(input):
    return Sigmoid.apply(input)


# ------------------------------------------------------------------- losses
class _BCE(Function):
    kernel = "?"

    @classmethod
    def forward(cls, ctx, x, target, reduction):
        B = backend_for(cls.kernel, x, target)
        ctx.reduction = reduction
        ctx.save_for_backward(x, target)
        return wrap(B, getattr(B, cls.kernel + "_forward")(x.data, target.data, reduction))

    @classmethod
    def backward(cls, ctx, dloss):
        B, (x, target) = dloss._backend, ctx.saved_tensors
        dx, dt = getattr(B, cls.kernel + "_backward")(dloss.data, x.data, target.data,
                                                      ctx.reduction, ctx.needs_input_grad[1])
        return (wrap(B, dx) if ctx.needs_input_grad[0] else None,
                wrap(B, dt) if ctx.needs_input_grad[1] else None, None)


class BinaryCrossEntropy(_BCE):
    kernel = "bce"


class BinaryCrossEntropyWithLogits(_BCE):
    kernel = "bce_with_logits"


def _loss_args(op, input, target, weight, size_average, reduce, reduction):
    if size_average is not None or reduce is not None:
        raise ValueError(f"{op}: size_average and reduce are deprecated in torch and not "
                         f"supported here; use reduction=")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: target must be a Tensor, got {type(target).__name__}")
    if target.shape != input.shape:
        raise ValueError(f"{op}: target shape {target.shape} must equal input shape {input.shape}")
    if weight is not None:
        backend_for(op, input, weight)  # device and dtype
        if weight.ndim > input.ndim or any(
                a not in (1, b) for a, b in zip(reversed(weight.shape), reversed(input.shape))):
            raise ValueError(f"{op}: weight of shape {weight.shape} does not broadcast to the "
                             f"input shape {input.shape}")


def _weighted(fn, input, target, weight, reduction):
    """Losses with a rescaling weight: the per-element loss times weight, then reduced."""
    if weight is None:
        return fn.apply(input, target, reduction)
    loss = Mul.apply(fn.apply(input, target, "none"), weight)
    if reduction == "none":
        return loss
    return (Mean if reduction == "mean" else Sum).apply(loss, None, False)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    op = "binary_cross_entropy"
    _loss_args(op, input, target, weight, size_average, reduce, reduction)
    host = input.numpy()  # torch checks the range too; a bad p is a silent wrong answer otherwise
    if host.size and not ((host >= 0) & (host <= 1)).all():
        raise ValueError(f"{op}: all elements of input should be between 0 and 1 "
                         f"(got min {host.min():.4g}, max {host.max():.4g}); "
                         "for logits use binary_cross_entropy_with_logits")
    return _weighted(BinaryCrossEntropy, input, target, weight, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    op = "binary_cross_entropy_with_logits"
    if pos_weight is not None:
        raise NotImplementedError(f"{op}: pos_weight is not supported")
    _loss_args(op, input, target, weight, size_average, reduce, reduction)
    return _weighted(BinaryCrossEntropyWithLogits, input, target, weight, reduction)
