"""Convolution on our kernels: torch.nn.functional's conv2d and conv_transpose2d.

A convolution is bilinear in (x, w), so its two gradients are convolutions
too, and theirs convolutions again: three Functions, one per conv kernel of
the contract, are closed under differentiation (below). The argument checks
(shapes, groups, padding, the output size) live here, once for every backend.
"""

import numpy as np

from kernels.conv_geometry import conv_output_size, conv_transpose_output_size, pair

from .autograd import Function
from .ops import backend_for, require_rank as _require_rank, wrap


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
    if min(w.shape) < 1:
        raise ValueError(f"{op}: weight of shape {w.shape} is empty; every dim (channels, "
                         f"kernel size) must be at least 1")
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
        from .functional import pad
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

