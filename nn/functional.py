"""torch.nn.functional's names and arguments, on our kernels.

Each public function checks its arguments (naming the op, what it expected and
what came) and then applies `Function`s: the fused kernels' (convolution in
nn/conv.py, activations in nn/activations.py, losses in nn/losses.py, batch
norm here) or the primitives' (nn/ops.py), of which the compositions below
(softmax, layer norm, linear, norm, ...) are made. The checks live here and
there, once, so every backend gets them.
"""

import numbers

from .activations import (LeakyReLU, LeakyReLUBackward, ReLU, ReLUBackward, Sigmoid,  # noqa: F401
                          SigmoidBackward, Tanh, TanhBackward, leaky_relu, relu, sigmoid, tanh)
from .autograd import Function, is_grad_enabled
from .conv import (ConvBiasGrad, ConvForward, ConvInputGrad, ConvWeightGrad,  # noqa: F401
                   conv2d, conv_transpose2d)
from .losses import (BinaryCrossEntropy, BinaryCrossEntropyWithLogits,  # noqa: F401
                     binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                     l1_loss, mse_loss, nll_loss)
from .ops import backend_for, require_rank as _require_rank, wrap
from .tensor import Tensor


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
    _check_batch_norm_args(input, running_mean, running_var, weight, bias, training, momentum, eps)
    shape = input.shape
    x = input if input.ndim == 4 else input.reshape(*shape, *(1,) * (4 - input.ndim))
    y = BatchNorm.apply(x, weight, bias, running_mean, running_var, bool(training),
                        float(momentum), float(eps))
    return y if input.ndim == 4 else y.reshape(*shape)


def _check_batch_norm_args(input, running_mean, running_var, weight, bias, training, momentum, eps):
    """batch_norm's argument checks (batch_norm_act's too), naming the op."""
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
    if momentum is None or isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        # torch's functional refuses None too: the cumulative average needs a
        # count of the batches seen, which only the module keeps.
        raise TypeError(f"{op}: momentum must be a float, got {momentum!r}; for the cumulative "
                        f"moving average use BatchNorm2d(momentum=None), which counts the batches")
    if training and not float(eps) > 0:  # torch refuses it too: 1/sqrt(var + eps) may be inf
        raise ValueError(f"{op}: eps must be positive during training, got {eps}")
    if training and input.numel() // C <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, "
                         f"got input of shape {input.shape}")



# ------------------------------------------- batch norm with a fused activation
# act(batch_norm(x)) for act ReLU or LeakyReLU, as one kernel each way where
# the backend has the fused forms (the GPU backends: one pass over x instead
# of two, and no intermediate array), and as the two ops elsewhere. The
# results are those of the composition; Sequential uses it for a BatchNorm2d
# followed by a ReLU or LeakyReLU (nn/module.py).
FUSABLE_ACTIVATIONS = ("relu", "leaky_relu")


class BatchNormAct(Function):
    """First-order backward: the fused kernel, which recomputes the
    activation's mask from x and the saved statistics. Recorded
    (create_graph): the activation's backward (its mask is constant) feeding
    batch norm's differentiable backward, exactly what the unfused pair's
    recorded backward is, so double backward works."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps,
                activation, slope):
        B = backend_for("batch_norm", x, weight, bias, running_mean, running_var)
        data = [None if t is None else t.data for t in (weight, bias, running_mean, running_var)]
        if training:
            y, mean, invstd = B.batch_norm_act_train_forward(x.data, *data, momentum, eps,
                                                             activation, slope)
            for t in (running_mean, running_var):
                if t is not None:
                    t._bump_version()  # updated in place by the kernel
        else:
            y, mean, invstd = B.batch_norm_act_eval_forward(x.data, *data, eps, activation, slope)
        ctx.training, ctx.eps, ctx.activation, ctx.slope = training, eps, activation, slope
        ctx.save_for_backward(x, weight, bias, wrap(B, mean), wrap(B, invstd))
        return wrap(B, y)

    @staticmethod
    def backward(ctx, dy):
        x, weight, bias, mean, invstd = ctx.saved_tensors
        need = ctx.needs_input_grad
        if is_grad_enabled():
            from .autograd import no_grad
            with no_grad():  # the pre-activation, for the mask only
                z = (x - _per_channel(mean)) * _per_channel(invstd) * _per_channel(weight) \
                    + _per_channel(bias)
            if ctx.activation == "relu":
                g = ReLUBackward.apply(dy, z.relu())
            else:
                g = LeakyReLUBackward.apply(dy, z, ctx.slope)
            dx, dw, db = _batch_norm_backward_graph(g, x, weight, mean, invstd, ctx.training,
                                                    ctx.eps)
        else:
            B = dy._backend
            dx, dw, db = (wrap(B, a) for a in B.batch_norm_act_backward(
                dy.data, x.data, weight.data, bias.data, mean.data, invstd.data, ctx.training,
                ctx.activation, ctx.slope))
        return (dx if need[0] else None, dw if need[1] else None, db if need[2] else None,
                None, None, None, None, None, None, None)


def batch_norm_act(input, running_mean, running_var, weight, bias, training=False,
                   momentum=0.1, eps=1e-5, activation="relu", negative_slope=0.01):
    """activation(batch_norm(input, ...)) for a 4-D input and an affine batch
    norm (weight and bias given); activation "relu" or "leaky_relu" (with
    negative_slope). Fused where the backend can, composed elsewhere."""
    op = "batch_norm_act"
    if activation not in FUSABLE_ACTIVATIONS:
        raise ValueError(f"{op}: activation must be one of {FUSABLE_ACTIVATIONS}, got "
                         f"{activation!r}")
    if weight is None or bias is None or input.ndim != 4 or \
            not hasattr(input._backend, "batch_norm_act_train_forward"):
        y = batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
        return relu(y) if activation == "relu" else leaky_relu(y, negative_slope)
    _check_batch_norm_args(input, running_mean, running_var, weight, bias, training, momentum, eps)
    return BatchNormAct.apply(input, weight, bias, running_mean, running_var, bool(training),
                              float(momentum), float(eps), activation, float(negative_slope))


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
