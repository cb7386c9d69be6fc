"""The losses: BCE and BCE-with-logits on their fused kernels, and the
compositions (mse, l1, nll, cross-entropy, pos_weight) in differentiable ops.

The fused losses' first-order backward is their kernel; when the backward is
recorded (create_graph) the same formula is written with primitives, so a
loss can be differentiated twice.
"""

import threading

import numpy as np

from .activations import Sigmoid
from .autograd import Function, is_grad_enabled
from .ops import Mean, Mul, Sum, backend_for, one_hot, require_rank as _require_rank, wrap
from .tensor import Tensor, known_fill

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


# ------------------------------------------------ BCE's unit-interval checks
# torch checks that BCE's input and target lie in [0, 1]: a bad p is a silent
# wrong answer, a bad target a negative loss. The check reads values, so on a
# GPU backend it is a device-to-host copy that waits for the device.
#
# Called directly, binary_cross_entropy checks at once on every backend and
# raises a ValueError naming the op, as torch does (non-finite values are
# named as such, before the range). A training loop that must not wait for
# the device inside its step opens `deferred_range_checks()`: there, GPU
# backends reduce each checked tensor to its (min, max) on the device (two
# launches, no copy) and the loop reads them with the statistics at logging
# time (`RangeChecks.read`, one copy for all); the NumPy backend checks on the
# host at once, which costs nothing extra. Either way a non-finite value is
# recorded, not raised: it is the loop's divergence (train.py exits 3 with its
# divergence message), never the "did you mean logits" range error.
_open = threading.local()  # .checks: the innermost open RangeChecks of this thread


class RangeChecks:
    """The unit-interval checks recorded inside one `deferred_range_checks()` block."""

    def __init__(self):
        self._pending = []  # (op, name, hint, backend, (min, max) arrays or floats)
        self.nonfinite = []  # "op: name" of every checked tensor with NaN or inf

    def record(self, op, name, t, hint):
        B = t._backend
        if getattr(B, "asynchronous", False) and known_fill(t) is None:
            self._pending.append((op, name, hint, B, (B.amin(t.data, None, False),
                                                       B.amax(t.data, None, False))))
        else:  # on the host, or values the host knows (nn.full's labels)
            self._settle(op, name, hint, _host_extrema(t))

    def device_arrays(self):
        """The device scalars still to read, for a caller that reads them in
        one copy together with its own (see `read`)."""
        return [a for *_, B, pair in self._pending for a in pair]

    def read(self, values=None):
        """Settle every pending check: `values` are the floats of
        device_arrays() (read here if not given). Raises the range error;
        returns the list of non-finite tensors (empty when all were finite)."""
        pending, self._pending = self._pending, []
        if pending and values is None:
            from .tensor import host_floats
            values = host_floats(pending[0][3], [a for *_, pair in pending for a in pair])
        for k, (op, name, hint, _, _) in enumerate(pending):
            self._settle(op, name, hint, (values[2 * k], values[2 * k + 1]))
        return self.nonfinite

    def _settle(self, op, name, hint, extrema):
        lo, hi = extrema
        if not (np.isfinite(lo) and np.isfinite(hi)):
            self.nonfinite.append(f"{op}: {name}")
        elif lo < 0 or hi > 1:
            raise _range_error(op, name, lo, hi, hint)


class deferred_range_checks:
    """`with deferred_range_checks() as checks:` records BCE's range checks in
    `checks` (a new RangeChecks, or the one given) instead of checking at once."""

    def __init__(self, checks=None):
        self.checks = RangeChecks() if checks is None else checks

    def __enter__(self):
        self._outer, _open.checks = getattr(_open, "checks", None), self.checks
        return self.checks

    def __exit__(self, *exc):
        _open.checks = self._outer
        return False


def _host_extrema(t):
    value = known_fill(t)
    if value is not None:
        return value, value
    host = t.numpy()
    if not host.size:
        return 0.0, 0.0
    return float(host.min()), float(host.max())  # NaN propagates through both


def _range_error(op, name, lo, hi, hint):
    return ValueError(f"{op}: all elements of {name} should be between 0 and 1 "
                      f"(got min {lo:.4g}, max {hi:.4g}){hint}")


def _check_unit_interval(op, name, t, hint=""):
    checks = getattr(_open, "checks", None)
    if checks is not None:
        checks.record(op, name, t, hint)
        return
    lo, hi = _host_extrema(t)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # named first: NaN is not a range problem
        raise ValueError(f"{op}: {name} has non-finite values (min {lo}, max {hi}); all "
                         f"elements should be finite and between 0 and 1")
    if lo < 0 or hi > 1:
        raise _range_error(op, name, lo, hi, hint)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    op = "binary_cross_entropy"
    _loss_args(op, input, target, weight, size_average, reduce, reduction)
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
    onehot = _class_weighted(op, onehot, weight, cd)
    picked = -(input * onehot).sum(cd)  # each kept position's weighted -log p
    if reduction == "none":
        return picked
    if reduction == "sum":
        return picked.sum()
    return picked.sum() / onehot.sum()


def _class_weighted(op, t, weight, cd):
    """t with each class's entries (along dim cd) times weight[c]; t if no weight."""
    if weight is None:
        return t
    C = t.shape[cd]
    if weight.shape != (C,):
        raise ValueError(f"{op}: weight must have shape ({C},), got {weight.shape}")
    shape = [1] * t.ndim
    shape[cd] = C
    return t * weight.reshape(*shape)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """log_softmax over the class dim (1, or 0 for an unbatched input), then nll_loss."""
    if label_smoothing != 0.0:
        raise NotImplementedError("cross_entropy: label_smoothing is not supported")
    cd = 0 if input.ndim == 1 else 1
    from .functional import log_softmax
    if isinstance(target, Tensor) and target.dtype in (np.float32, np.float64) \
            and target.shape == input.shape:
        return _soft_cross_entropy(log_softmax(input, cd), target, weight, reduction, cd)
    return nll_loss(log_softmax(input, cd), target, weight, size_average, reduce, ignore_index,
                    reduction)


def _soft_cross_entropy(logp, target, weight, reduction, cd):
    """torch's class-probability form: a float target shaped like the input,
    loss_n = -sum_c w_c target_nc log p_nc, the mean over the batch (not over
    the weights, unlike the index form)."""
    op = "cross_entropy"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    picked = -_class_weighted(op, logp * target, weight, cd).sum(cd)
    if reduction == "none":
        return picked
    if reduction == "sum":
        return picked.sum()
    return picked.sum() / (picked.numel() if picked.ndim else 1)

