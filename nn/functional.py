"""torch.nn.functional's names and arguments, on our kernels.

Each public function checks its arguments (naming the op, what it expected and
what came) and then applies one `Function`, whose forward and backward are the
backend's kernels. The checks live here, once, so every backend gets them.
"""

import numpy as np

from kernels.conv_geometry import conv_output_size, conv_transpose_output_size, pair

from .autograd import Function, is_grad_enabled
from .ops import Mean, Mul, Sum, backend_for, wrap
from .tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


# ------------------------------------------------------------------ checks
def _require_rank(op, name, t, ranks):
    if t.ndim not in ranks:
        want = " or ".join(f"{r}-d" for r in ranks)
        raise ValueError(f"{op}: expected {name} to be {want}, got shape {t.shape}")


def _conv_args(op, x, w, b, stride, padding, dilation, groups, out_channels_dim):
    _require_rank(op, "input (N, C, H, W) or (C, H, W)", x, (4,))
    _require_rank(op, "weight", w, (4,))
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    # Input channels per group: weight dim 1 for conv2d, dim 0 / groups for
    # conv_transpose2d; output channels: dim 0, or dim 1 * groups.
    if out_channels_dim == 0:
        c_in, c_out = w.shape[1] * groups, w.shape[0]
    else:
        c_in, c_out = w.shape[0], w.shape[1] * groups
    if x.shape[1] != c_in:
        raise ValueError(f"{op}: input has {x.shape[1]} channels but weight of shape {w.shape} "
                         f"with groups={groups} expects {c_in}")
    if c_in % groups or c_out % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input channels ({c_in}) and "
                         f"the output channels ({c_out})")
    if b is not None and b.shape != (c_out,):
        raise ValueError(f"{op}: bias must have shape ({c_out},), got {b.shape}")
    stride, dilation = pair(stride, f"{op}: stride"), pair(dilation, f"{op}: dilation")
    if isinstance(padding, str):
        padding = _string_padding(op, padding, w.shape[2:], stride, dilation)
        if padding == "same":
            return stride, padding, dilation
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
        return "same"  # resolved by conv2d, which may pad asymmetrically
    raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")


def _check_output_hw(op, out_hw, x, w):
    if min(out_hw) < 1:
        raise ValueError(f"{op}: the output would be empty ({out_hw[0]}x{out_hw[1]}) for input "
                         f"{x.shape} and weight {w.shape}")


# -------------------------------------------------------------- convolution
# A convolution is bilinear in (x, w), so its two gradients are convolutions
# too, and their gradients convolutions again. Three Functions, one per
# conv kernel of the contract, are therefore closed under differentiation:
#
#   ConvForward(x, w)       y  = conv(x, w)            kernel conv2d_forward
#   ConvInputGrad(dy, w)    dx = d<conv(x, w), dy>/dx  kernel conv2d_backward_input
#   ConvWeightGrad(dy, x)   dw = d<conv(x, w), dy>/dw  kernel conv2d_backward_weight
#
# and each one's backward is built from the other two. A transposed conv is
# ConvInputGrad (its forward *is* the conv input gradient), so
# conv_transpose2d needs nothing of its own. `geom` is (stride, padding,
# dilation, groups) of the underlying direct conv.
def _crop_hw(t, hw):
    """t cropped to spatial size hw: a conv of an input gradient can yield rows
    past dy's last one (transposed conv with output_padding >= stride)."""
    if t.shape[2:] == tuple(hw):
        return t
    return t[:, :, :hw[0], :hw[1]]


class ConvForward(Function):
    @staticmethod
    def forward(ctx, x, w, b, geom):
        B = backend_for("conv2d", x, w, b)
        ctx.geom, ctx.hw = geom, (x.shape[2:], w.shape[2:])
        need_x, need_w = ctx.needs_input_grad[:2]
        # dx needs only w, dw needs only x: keep what the backward will read.
        ctx.save_for_backward(x if need_w else None, w if need_x else None)
        return wrap(B, B.conv2d_forward(x.data, w.data, None if b is None else b.data, *geom))

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        x_hw, k_hw = ctx.hw
        return (ConvInputGrad.apply(dy, w, x_hw, ctx.geom) if need_x else None,
                ConvWeightGrad.apply(dy, x, k_hw, ctx.geom) if need_w else None,
                ConvBiasGrad.apply(dy) if need_b else None, None)


class ConvInputGrad(Function):
    @staticmethod
    def forward(ctx, dy, w, x_hw, geom):
        B = backend_for("conv_transpose2d", dy, w)
        ctx.geom, ctx.hw = geom, (dy.shape[2:], w.shape[2:])
        ctx.save_for_backward(dy if ctx.needs_input_grad[1] else None, w)
        return wrap(B, B.conv2d_backward_input(dy.data, w.data, x_hw, *geom))

    @staticmethod
    def backward(ctx, g):  # g has x's shape
        dy, w = ctx.saved_tensors
        dy_hw, k_hw = ctx.hw
        need_dy, need_w = ctx.needs_input_grad[:2]
        return (_crop_hw(ConvForward.apply(g, w, None, ctx.geom), dy_hw) if need_dy else None,
                ConvWeightGrad.apply(dy, g, k_hw, ctx.geom) if need_w else None, None, None)


class ConvWeightGrad(Function):
    @staticmethod
    def forward(ctx, dy, x, k_hw, geom):
        B = backend_for("conv2d_weight", dy, x)
        ctx.geom, ctx.hw = geom, (dy.shape[2:], x.shape[2:])
        ctx.save_for_backward(dy if ctx.needs_input_grad[1] else None,
                              x if ctx.needs_input_grad[0] else None)
        return wrap(B, B.conv2d_backward_weight(dy.data, x.data, k_hw, *geom))

    @staticmethod
    def backward(ctx, g):  # g has w's shape
        dy, x = ctx.saved_tensors
        dy_hw, x_hw = ctx.hw
        need_dy, need_x = ctx.needs_input_grad[:2]
        return (_crop_hw(ConvForward.apply(x, g, None, ctx.geom), dy_hw) if need_dy else None,
                ConvInputGrad.apply(dy, g, x_hw, ctx.geom) if need_x else None, None, None)


class ConvBiasGrad(Function):
    """db = dy summed over (N, H, W), by the contract's bias-gradient kernel."""

    @staticmethod
    def forward(ctx, dy):
        B = backend_for("conv2d", dy)
        ctx.shape = dy.shape
        return wrap(B, B.conv2d_backward_bias(dy.data))

    @staticmethod
    def backward(ctx, g):
        return g.reshape(1, -1, 1, 1).expand(ctx.shape)


def _unbatched(op, x, rank):
    """(N, C, H, W) view of an unbatched (C, H, W) input, and whether it was one."""
    if x.ndim == rank - 1:
        return x.unsqueeze(0), True
    return x, False


def _same_padding(x, kernel_hw, dilation):
    """torch's padding='same' for any kernel: total d*(k-1) per dim, the odd
    extra pixel on the bottom/right. Returns (symmetric padding, input padded
    by the asymmetric remainder)."""
    total = [d * (k - 1) for k, d in zip(kernel_hw, dilation)]
    sym = (total[0] // 2, total[1] // 2)
    extra = (total[0] - 2 * sym[0], total[1] - 2 * sym[1])
    if any(extra):
        x = pad(x, (0, extra[1], 0, extra[0]))
    return sym, x


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    op = "conv2d"
    x, unbatched = _unbatched(op, input, 4)
    stride, padding, dilation = _conv_args(op, x, weight, bias, stride, padding, dilation,
                                           groups, out_channels_dim=0)
    if padding == "same":
        padding, x = _same_padding(x, weight.shape[2:], dilation)
    _check_output_hw(op, conv_output_size(x.shape[2:], weight.shape[2:], stride, padding,
                                          dilation), x, weight)
    y = ConvForward.apply(x, weight, bias, (stride, padding, dilation, groups))
    return y[0] if unbatched else y


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    op = "conv_transpose2d"
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a pair, got {padding!r}")
    x, unbatched = _unbatched(op, input, 4)
    stride, padding, dilation = _conv_args(op, x, weight, bias, stride, padding, dilation,
                                           groups, out_channels_dim=1)
    output_padding = pair(output_padding, f"{op}: output_padding")
    for op_, s, d in zip(output_padding, stride, dilation):
        if not 0 <= op_ < max(s, d):
            raise ValueError(f"{op}: output_padding must be smaller than either stride or "
                             f"dilation, got output_padding={output_padding}, stride={stride}, "
                             f"dilation={dilation}")
    out_hw = conv_transpose_output_size(x.shape[2:], weight.shape[2:], stride, padding,
                                        output_padding, dilation)
    _check_output_hw(op, out_hw, x, weight)
    y = ConvInputGrad.apply(x, weight, out_hw, (stride, padding, dilation, groups))
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y[0] if unbatched else y


# --------------------------------------------------------------- batch norm
_BN_AXES = (0, 2, 3)


class BatchNorm(Function):
    """Batch norm over axis 1 of a 4-D input (functional reshapes 2-D and 3-D).

    First-order backward: the fused kernel. When the backward is recorded
    (create_graph), the same gradient is written with differentiable ops,
    the batch statistics recomputed from x so that their dependence on x is
    in the graph (training mode); eval mode's statistics are constants."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        B = backend_for("batch_norm", x, weight, bias, running_mean, running_var)
        data = [None if t is None else t.data for t in (weight, bias, running_mean, running_var)]
        if training:
            y, mean, invstd = B.batch_norm_train_forward(x.data, *data, momentum, eps)
            for t in (running_mean, running_var):
                if t is not None:
                    t._bump_version()  # updated in place by the kernel
        else:
            y, mean, invstd = B.batch_norm_eval_forward(x.data, *data, eps)
        ctx.training, ctx.eps = training, eps
        ctx.save_for_backward(x, weight, wrap(B, mean), wrap(B, invstd))
        return wrap(B, y)

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, invstd = ctx.saved_tensors
        need = ctx.needs_input_grad
        if is_grad_enabled():
            dx, dw, db = _batch_norm_backward_graph(dy, x, weight, mean, invstd, ctx.training,
                                                    ctx.eps)
        else:
            B = dy._backend
            dx, dw, db = (None if a is None else wrap(B, a) for a in B.batch_norm_backward(
                dy.data, x.data, None if weight is None else weight.data, mean.data,
                invstd.data, ctx.training))
        return (dx if need[0] else None, dw if need[1] else None, db if need[2] else None,
                None, None, None, None, None)


def _per_channel(v):
    return v.reshape(1, -1, 1, 1)


def _batch_norm_backward_graph(dy, x, weight, mean, invstd, training, eps):
    """(dx, dweight, dbias) of batch norm, written with differentiable ops."""
    if training:
        mean = x.mean(_BN_AXES, keepdim=True)
        xc = x - mean
        invstd = ((xc * xc).mean(_BN_AXES, keepdim=True) + eps).rsqrt()
    else:
        xc, invstd = x - _per_channel(mean), _per_channel(invstd)
    xhat = xc * invstd
    db = dy.sum(_BN_AXES)
    dw = (dy * xhat).sum(_BN_AXES)
    scale = invstd if weight is None else invstd * _per_channel(weight)
    if training:
        # mean and var depend on every x of the channel: subtract the part of
        # dy that moves the mean and the part along xhat (the variance).
        dx = scale * (dy - dy.mean(_BN_AXES, keepdim=True)
                      - xhat * (dy * xhat).mean(_BN_AXES, keepdim=True))
    else:
        dx = dy * scale
    return dx, (dw if weight is not None else None), (db if weight is not None else None)


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
# Each activation is a forward Function and a backward Function over the
# fused kernels; the backward Function's own backward is again written with
# them, so both stay fused at first order and differentiate to any order.
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


# ------------------------------------------------------------------- losses
def _loss_scale(dloss, like, reduction):
    """The upstream gradient as each element sees it (dloss / n for mean)."""
    if reduction == "none":
        return dloss
    g = dloss.expand(like.shape)
    return g / float(like.numel()) if reduction == "mean" else g


class BinaryCrossEntropy(Function):
    """First-order backward: the fused kernel. Recorded (create_graph): the
    same formula as the kernel's, -(t - p) / max(p (1 - p), eps) and the
    clamped logs for the target, in differentiable ops."""

    @staticmethod
    def forward(ctx, p, target, reduction):
        B = backend_for("binary_cross_entropy", p, target)
        ctx.reduction = reduction
        ctx.save_for_backward(p, target)
        return wrap(B, B.bce_forward(p.data, target.data, reduction))

    @staticmethod
    def backward(ctx, dloss):
        p, t = ctx.saved_tensors
        need_p, need_t = ctx.needs_input_grad[:2]
        if is_grad_enabled():
            g = _loss_scale(dloss, p, ctx.reduction)
            dp = g * (p - t) / (p * (1.0 - p)).clamp(min=_BCE_EPS) if need_p else None
            dt = (g * ((-p).log1p().clamp(min=-100.0) - p.log().clamp(min=-100.0))
                  if need_t else None)
            return dp, dt, None
        B = dloss._backend
        dp, dt = B.bce_backward(dloss.data, p.data, t.data, ctx.reduction, need_t)
        return (wrap(B, dp) if need_p else None, wrap(B, dt) if need_t else None, None)


class BinaryCrossEntropyWithLogits(Function):
    @staticmethod
    def forward(ctx, x, target, reduction):
        B = backend_for("binary_cross_entropy_with_logits", x, target)
        ctx.reduction = reduction
        ctx.save_for_backward(x, target)
        return wrap(B, B.bce_with_logits_forward(x.data, target.data, reduction))

    @staticmethod
    def backward(ctx, dloss):
        x, t = ctx.saved_tensors
        need_x, need_t = ctx.needs_input_grad[:2]
        if is_grad_enabled():
            g = _loss_scale(dloss, x, ctx.reduction)
            return (g * (Sigmoid.apply(x) - t) if need_x else None,
                    -(g * x) if need_t else None, None)
        B = dloss._backend
        dx, dt = B.bce_with_logits_backward(dloss.data, x.data, t.data, ctx.reduction, need_t)
        return (wrap(B, dx) if need_x else None, wrap(B, dt) if need_t else None, None)


# The floor of BCE's gradient denominator: torch's 1e-12 stored as a C float.
_BCE_EPS = float(np.float32(1e-12))


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
    _loss_args(op, input, target, weight, size_average, reduce, reduction)
    if pos_weight is None:
        return _weighted(BinaryCrossEntropyWithLogits, input, target, weight, reduction)
    backend_for(op, input, pos_weight)
    if pos_weight.ndim > input.ndim or any(
            a not in (1, b) for a, b in zip(reversed(pos_weight.shape), reversed(input.shape))):
        raise ValueError(f"{op}: pos_weight of shape {pos_weight.shape} does not broadcast to "
                         f"the input shape {input.shape}")
    # torch's formula: (1 - t) x + (1 + (pw - 1) t) softplus(-x), with the
    # stable softplus(-x) = log1p(exp(-|x|)) + max(-x, 0).
    softplus_neg = (-input.abs()).exp().log1p() + (-input).clamp(min=0.0)
    loss = (1.0 - target) * input + (1.0 + (pos_weight - 1.0) * target) * softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    _loss_args("mse_loss", input, target, None, size_average, reduce, reduction)
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    _loss_args("l1_loss", input, target, None, size_average, reduce, reduction)
    return _reduce((input - target).abs(), reduction)


def _class_targets(op, input, target, ignore_index):
    """Integer targets (N,) or (N, d1, ...) for an input (N, C, d1, ...) or
    (C,): a one-hot float mask of the input's shape (all zero where the
    target is ignore_index), and the class dim."""
    if not isinstance(target, Tensor) or target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must be an integer (int64) tensor of class indices, "
                        f"got {getattr(target, 'dtype', type(target).__name__)}; for class "
                        "probabilities use the float form")
    class_dim = 0 if input.ndim == 1 else 1
    want = input.shape[:class_dim] + input.shape[class_dim + 1:]
    if target.shape != want:
        raise ValueError(f"{op}: target shape {target.shape} does not match input "
                         f"{input.shape} (expected {want})")
    B = input._backend
    t = target.numpy()  # the bounds check reads the targets once
    C = input.shape[class_dim]
    kept = t != ignore_index
    bad = t[kept][(t[kept] < 0) | (t[kept] >= C)]
    if bad.size:
        raise IndexError(f"{op}: target {int(bad[0])} is out of bounds for {C} classes")
    # onehot[n, c, ...] = (c == target[n, ...]) and the target is kept.
    along = [1] * input.ndim
    along[class_dim] = C
    iota = B.to_device(np.arange(C, dtype=np.float64).reshape(along), input.dtype)
    t_f = B.reshape(B.astype(target.data, input.dtype), tuple(
        1 if i == class_dim else s for i, s in enumerate(input.shape)))
    ignored = B.astype(B.compare("eq", t_f, B.full((), float(ignore_index), input.dtype)),
                       input.dtype)
    keep = B.sub(B.full((), 1.0, input.dtype), ignored)
    onehot = B.mul(B.astype(B.compare("eq", iota, t_f), input.dtype), keep)
    return Tensor(onehot, _backend=B), class_dim


def nll_loss(input, target, weight=None, size_average=None, reduce=None, ignore_index=-100,
             reduction="mean"):
    """-input[n, target[n]], weighted; mean divides by the summed weights of
    the kept targets, as torch."""
    op = "nll_loss"
    if size_average is not None or reduce is not None:
        raise ValueError(f"{op}: size_average and reduce are deprecated; use reduction=")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    _require_rank(op, "input (N, C, ...) or (C,)", input, (1, 2, 3, 4))
    onehot, cd = _class_targets(op, input, target, ignore_index)
    if weight is not None:
        C = input.shape[cd]
        if weight.shape != (C,):
            raise ValueError(f"{op}: weight must have shape ({C},), got {weight.shape}")
        shape = [1] * input.ndim
        shape[cd] = C
        onehot = onehot * weight.reshape(*shape)
    picked = -(input * onehot).sum(cd)  # each kept position's weighted -log p
    if reduction == "none":
        return picked
    if reduction == "sum":
        return picked.sum()
    return picked.sum() / onehot.sum()


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """log_softmax over the class dim (1, or 0 for an unbatched input), then nll_loss."""
    if label_smoothing != 0.0:
        raise NotImplementedError("cross_entropy: label_smoothing is not supported")
    cd = 0 if input.ndim == 1 else 1
    return nll_loss(log_softmax(input, cd), target, weight, size_average, reduce, ignore_index,
                    reduction)


def log_softmax(input, dim, dtype=None):
    """x - logsumexp(x): the max is subtracted first (a constant: it cancels
    in the value and in every derivative), so nothing overflows."""
    shifted = input - input.detach().amax(dim, keepdim=True)
    return shifted - shifted.exp().sum(dim, keepdim=True).log()


def softmax(input, dim, dtype=None):
    shifted = input - input.detach().amax(dim, keepdim=True)
    e = shifted.exp()
    return e / e.sum(dim, keepdim=True)


def linear(input, weight, bias=None):
    """y = x W^T + b for x (..., in_features), W (out_features, in_features)."""
    op = "linear"
    _require_rank(op, "weight (out_features, in_features)", weight, (2,))
    if input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"{op}: input of shape {input.shape} does not end in "
                         f"in_features = {weight.shape[1]} (weight {weight.shape})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{op}: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    lead = input.shape[:-1]
    y = matmul(input.reshape(-1, weight.shape[1]), weight.t())
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, weight.shape[0])


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    op = "layer_norm"
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if input.shape[input.ndim - k:] != shape or k == 0:
        raise ValueError(f"{op}: input of shape {input.shape} does not end in normalized_shape "
                         f"{shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ValueError(f"{op}: {name} must have shape {shape}, got {t.shape}")
    axes = tuple(range(input.ndim - k, input.ndim))
    xc = input - input.mean(axes, keepdim=True)
    y = xc * ((xc * xc).mean(axes, keepdim=True) + float(eps)).rsqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


class Norm(Function):
    """The 2-norm over `axes`; its gradient x / ||x|| is 0 where the norm is 0
    (torch's choice: a subgradient, instead of 0/0)."""

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        B = backend_for("norm", x)
        y = B.sqrt(B.sum(B.mul(x.data, x.data), axes, True))
        ctx.kept = tuple(y.shape)
        if not keepdim:
            y = B.reshape(y, tuple(s for i, s in enumerate(x.shape)
                                   if axes is not None and i not in axes))
        out = wrap(B, y)
        ctx.save_for_backward(x, out)  # the output itself, so its own graph is used
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        y, g = out.reshape(ctx.kept), g.reshape(ctx.kept)
        zero = y == 0.0
        scale = where(zero, 0.0, g / where(zero, 1.0, y))
        return x * scale, None, None


def norm(input, p=2, dim=None, keepdim=False):
    """torch.norm / Tensor.norm for p in 2 ('fro'), 1, inf, -inf or any other
    positive number, over dim (None: every element)."""
    from .tensor import _axes
    axes = _axes(dim, input.ndim, "norm")
    if p in (2, 2.0, "fro"):
        return Norm.apply(input, axes, keepdim)
    if p in (float("inf"), "inf"):
        return input.abs().amax(dim, keepdim)
    if p in (float("-inf"), "-inf"):
        return input.abs().amin(dim, keepdim)
    if p == 1:
        return input.abs().sum(dim, keepdim)
    if not isinstance(p, (int, float)) or p <= 0:
        raise ValueError(f"norm: p must be a positive number, 'fro', inf or -inf, got {p!r}")
    return (input.abs() ** float(p)).sum(dim, keepdim) ** (1.0 / p)


def matmul(a, b):
    """torch.matmul: 1-D operands are promoted and the added dim removed;
    batch dims broadcast; the kernel sees 2-D or 3-D operands."""
    from .ops import Matmul
    op = "matmul"
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim == 0:
            raise ValueError(f"{op}: both arguments must be at least 1-d, got shape {t.shape}")
    backend_for(op, a, b)
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be multiplied "
                         f"({a2.shape[-1]} != {b2.shape[-2]})")
    if a2.ndim == 2 and b2.ndim == 2:
        out = Matmul.apply(a2, b2)
    else:
        from .ops import check_broadcast
        batch = check_broadcast(op, a2.shape[:-2], b2.shape[:-2])
        M, K, N = a2.shape[-2], a2.shape[-1], b2.shape[-1]
        a3 = a2.expand(*batch, M, K).reshape(-1, M, K)
        b3 = b2.expand(*batch, K, N).reshape(-1, K, N)
        out = Matmul.apply(a3, b3).reshape(*batch, M, N)
    if a.ndim == 1:
        out = out.squeeze(-2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    return out


def pad(input, pad, mode="constant", value=0.0):
    """torch.nn.functional.pad, constant mode with value 0: pad is (left, right,
    top, bottom, ...) from the last dim backwards; non-negative."""
    from .ops import SliceBackward
    if mode != "constant" or value != 0.0:
        raise NotImplementedError(f"pad: only mode='constant' with value 0 is supported, got "
                                  f"mode={mode!r}, value={value!r}")
    if len(pad) % 2 or len(pad) // 2 > input.ndim or any(p < 0 for p in pad):
        raise ValueError(f"pad: expected an even number of non-negative sizes, at most 2 per "
                         f"dim of the {input.ndim}-d input, got {tuple(pad)}")
    shape, index = list(input.shape), [slice(None)] * input.ndim
    for k in range(len(pad) // 2):
        d = input.ndim - 1 - k
        lo, hi = pad[2 * k], pad[2 * k + 1]
        index[d] = slice(lo, lo + shape[d])
        shape[d] += lo + hi
    return SliceBackward.apply(input, tuple(shape), tuple(index))


def where(condition, input, other):
    from .ops import where as _where
    return _where(condition, input, other)


def cat(tensors, dim=0):
    from .ops import Cat
    from .tensor import _dim
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    ref = tensors[0]
    d = _dim(dim, ref.ndim, "cat")
    for k, t in enumerate(tensors):
        if t.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref.shape))
                                     if i != d):
            raise ValueError(f"cat: tensor {k} has shape {t.shape}, which does not match "
                             f"{ref.shape} outside dim {d}")
    if len(tensors) == 1:
        return tensors[0]
    return Cat.apply(d, *tensors)


def stack(tensors, dim=0):
    from .tensor import _dim
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have one shape, got {sorted(shapes)}")
    d = _dim(dim, tensors[0].ndim + 1, "stack")
    return cat([t.unsqueeze(d) for t in tensors], d)
