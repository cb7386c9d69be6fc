"""The losses: BCE and BCE-with-logits on their fused kernels, and the
compositions (mse, l1, nll, cross-entropy, pos_weight) in differentiable ops.

The fused losses' first-order backward is their kernel; when the backward is
recorded (create_graph) the same formula is written with primitives, so a
loss can be differentiated twice.
"""

import numpy as np

from .activations import Sigmoid
from .autograd import Function, is_grad_enabled
from .ops import Mean, Mul, Sum, backend_for, one_hot, require_rank as _require_rank, wrap
from .tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


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


def _check_unit_interval(op, name, t, hint=""):
    host = t.numpy()
    if host.size and not ((host >= 0) & (host <= 1)).all():
        raise ValueError(f"{op}: all elements of {name} should be between 0 and 1 "
                         f"(got min {host.min():.4g}, max {host.max():.4g}){hint}")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    op = "binary_cross_entropy"
    _loss_args(op, input, target, weight, size_average, reduce, reduction)
    # torch checks both ranges too: a bad p is a silent wrong answer, a bad
    # target a negative loss.
    _check_unit_interval(op, "input", input, "; for logits use binary_cross_entropy_with_logits")
    _check_unit_interval(op, "target", target)
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
    idx = B.reshape(target.data, tuple(1 if i == class_dim else s
                                       for i, s in enumerate(input.shape)))
    hit = one_hot(B, idx, C, class_dim, input.ndim, input.dtype)
    ignored = B.compare("eq", B.astype(idx, input.dtype),
                        B.full((), float(ignore_index), input.dtype))
    keep = B.sub(B.full((), 1.0, input.dtype), B.astype(ignored, input.dtype))
    onehot = B.mul(B.astype(hit, input.dtype), keep)
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
    from .functional import log_softmax
    return nll_loss(log_softmax(input, cd), target, weight, size_average, reduce, ignore_index,
                    reduction)

