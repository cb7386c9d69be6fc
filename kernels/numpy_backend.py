"""The NumPy reference backend: every contract function, on the CPU.

This backend is the one the others are checked against, so it favours plain
formulas over cleverness; the one exception is convolution, which has to be
fast enough to train a DCGAN on a CPU.

Design:
- Arrays are plain `numpy.ndarray`s. NumPy 2 promotes `float32 * np.float64`
  to float64 (NEP 50), so hyperparameters are turned into Python floats, which
  never upcast, and a result that could still be promoted is cast back.
- NumPy ufuncs turn 0-d arrays into NumPy scalars (`np.add(a, b)` on 0-d
  inputs is an `np.float32`, not an `ndarray`), which `is_array` rejects.
  Elementwise and reduced results therefore go through `_arr`, which does
  both jobs: it keeps them ndarrays and casts them back to the input dtype.
- Convolution is im2col + one matrix product. `_windows` is the shared core:
  a zero-copy `as_strided` view of every receptive field, shape
  (N, C, KH, KW, OH, OW). The forward and the weight gradient copy it once
  into a matrix and call BLAS; the input gradient multiplies back into that
  column space and scatters the columns onto the image ("col2im") with one
  strided add per kernel tap. The transposed convolution is inherited from
  `Backend`, which builds it from these three kernels.
- Randomness comes from one `np.random.Generator` per backend instance. Draws
  are made in float64 and then cast, so a seed gives the same numbers (up to
  rounding) in float32 and float64.
"""

import abc
import copy

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import debug, registry
from .contract import Backend
from .conv_geometry import conv_output_size


# The floor of BCE's gradient denominator. torch stores its 1e-12 as a C
# float, so the value it really uses is float32(1e-12) = 9.99999996e-13;
# using the same number makes clamped gradients agree to the last bit.
_BCE_EPS = float(np.float32(1e-12))


def _arr(a, dtype=None):
    """`a` as an ndarray of `dtype`: 0-d results stay arrays, never NumPy
    scalars, and a result that NumPy promoted is cast back (no copy otherwise)."""
    return np.asarray(a, dtype=dtype)


def _channel_axes(x):
    """Axes batch norm reduces over: all but the channel axis 1."""
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(v, x):
    """Reshape a (C,) array so that it broadcasts against x, e.g. (1, C, 1, 1)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def _windows(x, kernel_hw, out_hw, stride, padding, dilation):
    """A read-only view of every receptive field of x: (N, C, KH, KW, OH, OW).

    Element [n, c, kh, kw, oh, ow] is padded-x[n, c, oh*sh + kh*dh, ow*sw + kw*dw],
    the input that tap (kh, kw) of output pixel (oh, ow) reads. No data is
    copied (apart from the zero padding): the view only reinterprets strides.
    """
    (ph, pw), (KH, KW), (OH, OW) = padding, kernel_hw, out_hw
    (sh, sw), (dh, dw) = stride, dilation
    if ph or pw:
        # Faster than np.pad: allocate the zero frame once, copy the interior.
        N, C, H, W = x.shape
        xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
        xp[:, :, ph:ph + H, pw:pw + W] = x
        x = xp
    sN, sC, sH, sW = x.strides  # real strides, so non-contiguous x works too
    return as_strided(x, shape=(x.shape[0], x.shape[1], KH, KW, OH, OW),
                      strides=(sN, sC, sH * dh, sW * dw, sH * sh, sW * sw),
                      writeable=False)


def _im2col(x, kernel_hw, out_hw, stride, padding, dilation):
    """The windows copied into a (C*KH*KW, N*OH*OW) matrix, one column per
    output pixel. This copy is what lets a single BLAS call do the conv."""
    win = _windows(x, kernel_hw, out_hw, stride, padding, dilation)
    N, C, KH, KW, OH, OW = win.shape
    return np.ascontiguousarray(win.transpose(1, 2, 3, 0, 4, 5)).reshape(C * KH * KW,
                                                                         N * OH * OW)


def _group_matmul(a, b):
    """a @ b over a leading group axis. One group is one 2-D BLAS call:
    np.matmul on stacked operands is several times slower even for a stack of
    one, and groups = 1 is the common case."""
    if a.shape[0] == 1 and b.shape[0] == 1:
        return (a[0] @ b[0])[None]
    return np.matmul(a, b)


def _reduce(a, dtype, reduction):
    """Apply a loss reduction; mean/sum give a 0-d array (not a NumPy scalar)."""
    if reduction == "none":
        return _arr(a, dtype)
    return _arr(a.mean() if reduction == "mean" else a.sum(), dtype)


def _loss_grad_scale(dloss, n, reduction):
    """The upstream gradient as seen by each element: dloss/n for mean."""
    return dloss / n if reduction == "mean" else dloss


class NumpyBackend(Backend):
    name = "numpy"
    device = "cpu"

    def __init__(self):
        self.manual_seed(0)

    def __repr__(self):
        return "NumpyBackend(device='cpu')"

    # ---------------------------------------------------------------- memory
    def is_array(self, a):
        return isinstance(a, np.ndarray)

    def to_device(self, host, dtype):
        return np.array(host, dtype=dtype, copy=True, order="C")

    def to_host(self, a):
        return np.array(a, copy=True)  # a copy: callers may mutate it freely

    def empty(self, shape, dtype):
        # Read the flag at call time: tests switch it on and off.
        if debug.poison:
            dtype = np.dtype(dtype)
            bad = np.nan if dtype.kind == "f" else np.iinfo(dtype).min
            return np.full(shape, bad, dtype=dtype)
        return np.empty(shape, dtype=dtype)

    def full(self, shape, value, dtype):
        return np.full(shape, value, dtype=dtype)

    def fill_(self, a, value):
        a.fill(value)
        return a

    def copy_(self, dst, src):
        np.copyto(dst, src, casting="unsafe")
        return dst

    def astype(self, a, dtype):
        return a.astype(dtype, copy=True)

    # ---------------------------------------------------------------- random
    def manual_seed(self, seed):
        self._rng = np.random.Generator(np.random.PCG64(seed))

    def get_rng_state(self):
        # A deep copy: the live state dict must not change under the caller.
        return copy.deepcopy(self._rng.bit_generator.state)

    def set_rng_state(self, state):
        self._rng.bit_generator.state = copy.deepcopy(state)

    def random_normal(self, shape, mean, std, dtype):
        z = self._rng.standard_normal(shape)  # float64 whatever the dtype
        return (z * float(std) + float(mean)).astype(dtype)

    def random_uniform(self, shape, low, high, dtype):
        u = self._rng.uniform(float(low), float(high), shape).astype(dtype)
        # Rounding to float32 can turn a value just below `high` into `high`;
        # pull those back so the interval stays half-open.
        if high > low:
            top = np.asarray(high, dtype=dtype)
            u[u >= top] = np.nextafter(top, np.asarray(low, dtype=dtype))
        return u

    # ------------------------------------------------------------------ glue
    def add(self, a, b):
        return _arr(np.add(a, b))

    def sub(self, a, b):
        return _arr(np.subtract(a, b))

    def mul(self, a, b):
        return _arr(np.multiply(a, b))

    def div(self, a, b):
        return _arr(np.divide(a, b))

    def neg(self, a):
        return _arr(np.negative(a))

    def sum(self, a, axis, keepdims):
        if axis == ():
            return a.copy()  # nothing to reduce, but still a new array
        return _arr(np.sum(a, axis=axis, keepdims=keepdims), a.dtype)

    def mean(self, a, axis, keepdims):
        if axis == ():
            return a.copy()
        return _arr(np.mean(a, axis=axis, keepdims=keepdims), a.dtype)

    def reshape(self, a, shape):
        return np.reshape(a, shape)

    def broadcast_to(self, a, shape):
        return np.broadcast_to(a, shape)

    # ------------------------------------------------------------ primitives
    # One ufunc each; the unary ones come from kernels/registry.py (below the
    # class). errstate: log(0), sqrt(-1) and the like are the documented
    # inf/NaN results, not warnings.
    def pow_scalar(self, a, exponent):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return _arr(np.power(a, a.dtype.type(exponent)), a.dtype)

    def clamp(self, a, min, max):
        out = np.array(a, copy=True, order="C")
        # maximum/minimum, not np.clip: they keep NaN and accept one bound.
        if min is not None:
            np.maximum(out, a.dtype.type(min), out=out)
        if max is not None:
            np.minimum(out, a.dtype.type(max), out=out)
        return out

    def maximum(self, a, b):
        return _arr(np.maximum(a, b))

    def minimum(self, a, b):
        return _arr(np.minimum(a, b))

    def where(self, mask, a, b):
        return _arr(np.where(mask, a, b))

    _COMPARE = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less,
                "le": np.less_equal, "eq": np.equal}

    def compare(self, op, a, b):
        return _arr(self._COMPARE[op](a, b))

    def amax(self, a, axis, keepdims):
        if axis == ():
            return a.copy()
        return _arr(np.max(a, axis=axis, keepdims=keepdims))

    def amin(self, a, axis, keepdims):
        if axis == ():
            return a.copy()
        return _arr(np.min(a, axis=axis, keepdims=keepdims))

    def argmax(self, a, axis, keepdims):
        # NaN counts as the maximum, as in torch (np.argmax agrees).
        return _arr(np.argmax(a, axis=axis, keepdims=keepdims), np.int64)

    def argmin(self, a, axis, keepdims):
        return _arr(np.argmin(a, axis=axis, keepdims=keepdims), np.int64)

    def var(self, a, axis, keepdims, correction):
        if axis == ():
            axis = None if a.ndim == 0 else ()
        count = a.size if axis is None else int(np.prod([a.shape[k] for k in axis]))
        mean = np.mean(a, axis=axis, keepdims=True)
        d = a - mean
        with np.errstate(divide="ignore", invalid="ignore"):
            ss = np.sum(d * d, axis=axis, keepdims=keepdims)
            return _arr(ss / a.dtype.type(max(count - correction, 0)), a.dtype)

    def matmul(self, a, b):
        return _arr(np.matmul(a, b))

    # ----------------------------------------------------------- convolution
    # groups: the channel axes split as (g, C/g) and the GEMMs below gain a
    # leading batch axis g (np.matmul batches over it); g = 1 is one GEMM.
    def conv2d_forward(self, x, w, b, stride, padding, dilation, groups=1):
        N, _, H, W = x.shape
        C_out, Cg, KH, KW = w.shape
        g = groups
        OH, OW = conv_output_size((H, W), (KH, KW), stride, padding, dilation)
        cols = _im2col(x, (KH, KW), (OH, OW), stride, padding, dilation)
        # (g, C_out/g, Cg*KH*KW) @ (g, Cg*KH*KW, N*OH*OW): the whole conv.
        y = _group_matmul(w.reshape(g, C_out // g, -1),
                          cols.reshape(g, Cg * KH * KW, -1)).reshape(C_out, -1)
        if b is not None:
            y += b[:, None]
        return np.ascontiguousarray(y.reshape(C_out, N, OH, OW).transpose(1, 0, 2, 3))

    def conv2d_backward_weight(self, dy, x, kernel_hw, stride, padding, dilation, groups=1):
        # dw[o, c, kh, kw] = sum over n, oh, ow of dy[n, o, oh, ow] * window:
        # the forward's product with the output-pixel axis contracted instead.
        N, C_out, OH, OW = dy.shape
        g, Cg = groups, x.shape[1] // groups
        cols = _im2col(x, kernel_hw, (OH, OW), stride, padding, dilation)
        cols = cols.reshape(g, Cg * kernel_hw[0] * kernel_hw[1], -1)
        dy2 = np.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(g, C_out // g, -1)
        return _group_matmul(dy2, cols.transpose(0, 2, 1)).reshape(C_out, Cg, *kernel_hw)

    def conv2d_backward_input(self, dy, w, input_hw, stride, padding, dilation, groups=1):
        N, C_out, OH, OW = dy.shape
        _, Cg, KH, KW = w.shape
        g = groups
        C = Cg * g
        (H, W), (sh, sw), (ph, pw), (dh, dw) = input_hw, stride, padding, dilation
        # Gradient of every column entry: dcols = w^T dy, one (KH*KW*Cg, OH*OW)
        # matrix per image and group. The weight is ordered (KH, KW, Cg) so
        # that each tap's slice below is a contiguous (C, OH, OW) block when
        # g = 1: faster adds.
        wt = np.ascontiguousarray(w.reshape(g, C_out // g, Cg, KH, KW).transpose(0, 3, 4, 2, 1))
        wt = wt.reshape(g, KH * KW * Cg, C_out // g)
        if g == 1:  # one GEMM broadcast over the batch, as before groups
            dcols = wt[0] @ dy.reshape(N, C_out, OH * OW)
        else:
            dcols = wt @ dy.reshape(N, g, C_out // g, OH * OW)  # (N, g, KH*KW*Cg, OH*OW)
        dcols = dcols.reshape(N, g, KH, KW, Cg, OH, OW).transpose(0, 2, 3, 1, 4, 5, 6)
        dcols = dcols.reshape(N, KH, KW, C, OH, OW)
        # col2im: each input pixel gets the sum over every window that read
        # it, so scatter-add tap (kh, kw) onto the rows/columns it read. The
        # buffer holds the padded image, and is at least as large as the taps
        # reach: input rows the conv never reads just keep their zero gradient.
        Hp = max(H + 2 * ph, dh * (KH - 1) + sh * (OH - 1) + 1)
        Wp = max(W + 2 * pw, dw * (KW - 1) + sw * (OW - 1) + 1)
        dxp = np.zeros((N, C, Hp, Wp), dtype=dy.dtype)
        for kh in range(KH):
            for kw in range(KW):
                h0, w0 = kh * dh, kw * dw
                dxp[:, :, h0:h0 + sh * (OH - 1) + 1:sh,
                    w0:w0 + sw * (OW - 1) + 1:sw] += dcols[:, kh, kw]
        # Crop the padding: the gradient flowing into the zeros is dropped.
        return np.ascontiguousarray(dxp[:, :, ph:ph + H, pw:pw + W])

    def conv2d_backward_bias(self, dy):
        return dy.sum(axis=(0, 2, 3))

    # ------------------------------------------------------------ batch norm
    def batch_norm_train_forward(self, x, weight, bias, running_mean, running_var,
                                 momentum, eps):
        axes, momentum = _channel_axes(x), float(momentum)
        M = x.size // x.shape[1]  # elements per channel
        mean = x.mean(axis=axes)
        xc = x - _per_channel(mean, x)
        var = (xc * xc).mean(axis=axes)  # biased: divide by M
        invstd = _arr(1.0 / np.sqrt(var + float(eps)), x.dtype)
        y = xc * _per_channel(invstd, x)
        if weight is not None:
            y = y * _per_channel(weight, x)
        if bias is not None:
            y = y + _per_channel(bias, x)
        if running_mean is not None:
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
        if running_var is not None:
            # The running estimate uses the unbiased variance, as torch does.
            unbiased = var * (M / max(M - 1, 1))
            running_var[...] = (1 - momentum) * running_var + momentum * unbiased
        return y, mean, invstd

    def batch_norm_eval_forward(self, x, weight, bias, running_mean, running_var, eps):
        mean = running_mean.copy()  # a snapshot: the backward must not see later updates
        invstd = _arr(1.0 / np.sqrt(running_var + float(eps)), x.dtype)
        y = (x - _per_channel(mean, x)) * _per_channel(invstd, x)
        if weight is not None:
            y = y * _per_channel(weight, x)
        if bias is not None:
            y = y + _per_channel(bias, x)
        return _arr(y, x.dtype), mean, invstd

    def batch_norm_backward(self, dy, x, weight, mean, invstd, training):
        axes = _channel_axes(x)
        M = x.size // x.shape[1]
        xhat = (x - _per_channel(mean, x)) * _per_channel(invstd, x)
        dbias = dy.sum(axis=axes)
        dweight = (dy * xhat).sum(axis=axes)
        scale = invstd if weight is None else weight * invstd
        if training:
            # mean and var depend on every x of the channel: subtract the part
            # of dy that moves the mean and the part along xhat (the variance).
            dx = _per_channel(scale, x) * (dy - _per_channel(dbias / M, x)
                                           - xhat * _per_channel(dweight / M, x))
        else:
            dx = dy * _per_channel(scale, x)  # running stats are constants
        if weight is None:
            return dx, None, None
        return dx, dweight, dbias

    # ----------------------------------------------------------- activations
    def leaky_relu_forward(self, x, negative_slope):
        # max(x, s*x) for s <= 1 and min(x, s*x) for s > 1 pick exactly what
        # where(x > 0, x, s*x) picks (NaN included), and run branch-free:
        # 19x faster than np.where on a random-sign 1M-element array.
        s = float(negative_slope)
        return _arr((np.maximum if s <= 1 else np.minimum)(x, x * s))

    def leaky_relu_backward(self, dy, x, negative_slope):
        return _arr(np.where(x > 0, dy, dy * float(negative_slope)))

    def relu_forward(self, x):
        return _arr(np.maximum(x, 0))

    def relu_backward(self, dy, y):
        return _arr(np.where(y > 0, dy, 0), dy.dtype)

    def tanh_forward(self, x):
        return _arr(np.tanh(x))

    def tanh_backward(self, dy, x):
        # sech(x)^2 = 4e / (1 + e)^2 with e = exp(-2|x|) in (0, 1]: every digit
        # survives saturation, unlike 1 - tanh(x)^2.
        e = np.exp(-2 * np.abs(x))
        return _arr(dy * (4 * e / ((1 + e) * (1 + e))))

    def sigmoid_forward(self, x):
        # exp(-|x|) is in (0, 1], so neither branch can overflow; each branch
        # is the form that is exact on its side of zero.
        e = np.exp(-np.abs(x))
        return _arr(np.where(x >= 0, 1 / (1 + e), e / (1 + e)))

    def sigmoid_backward(self, dy, x):
        # sigmoid'(x) = e / (1 + e)^2 with e = exp(-|x|): symmetric, no cancellation.
        e = np.exp(-np.abs(x))
        return _arr(dy * (e / ((1 + e) * (1 + e))))

    # ---------------------------------------------------------------- losses
    @staticmethod
    def _clamped_logs(p):
        """(max(log p, -100), max(log(1 - p), -100)), as torch clamps them.

        log1p(-p) is more accurate than log(1 - p) for small p. p of exactly
        0 or 1 gives log(0) = -inf, which the clamp turns into -100."""
        with np.errstate(divide="ignore"):
            return np.maximum(np.log(p), -100), np.maximum(np.log1p(-p), -100)

    def bce_forward(self, p, target, reduction):
        log_p, log_1mp = self._clamped_logs(p)
        loss = -(target * log_p + (1 - target) * log_1mp)
        return _reduce(loss, p.dtype, reduction)

    def bce_backward(self, dloss, p, target, reduction, need_target_grad):
        g = _loss_grad_scale(dloss, p.size, reduction)
        # torch's floor on the denominator keeps p = 0 or 1 finite.
        dp = _arr(g * (p - target) / np.maximum(p * (1 - p), _BCE_EPS), p.dtype)
        dt = None
        if need_target_grad:
            log_p, log_1mp = self._clamped_logs(p)
            dt = _arr(g * (log_1mp - log_p), p.dtype)
        return dp, dt

    def bce_with_logits_forward(self, x, target, reduction):
        # softplus(-x) = max(-x, 0) + log1p(exp(-|x|)): exp never overflows.
        loss = (1 - target) * x + np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))
        return _reduce(loss, x.dtype, reduction)

    def bce_with_logits_backward(self, dloss, x, target, reduction, need_target_grad):
        g = _loss_grad_scale(dloss, x.size, reduction)
        dx = _arr(g * (self.sigmoid_forward(x) - target), x.dtype)
        dt = _arr(-g * x, x.dtype) if need_target_grad else None
        return dx, dt

    # ------------------------------------------------------------- optimizers
    # Every update writes into the caller's arrays (`op=` / `[...]`), never
    # rebinding a name: the optimizer holds these exact array objects.
    def adam_step_(self, params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2,
                   eps, weight_decay):
        lr, beta1, beta2 = float(lr), float(beta1), float(beta2)
        eps, weight_decay = float(eps), float(weight_decay)
        for p, g, m, v, t in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
            if weight_decay != 0:
                g = g + weight_decay * p  # a new array: the grad is not ours
            m += (1 - beta1) * (g - m)  # = b1 m + (1 - b1) g, torch's lerp form
            v *= beta2
            v += (1 - beta2) * (g * g)
            # Python floats, as torch computes the bias corrections.
            bias_correction1 = 1 - beta1 ** float(t)
            bias_correction2 = 1 - beta2 ** float(t)
            denom = np.sqrt(v) / bias_correction2 ** 0.5 + eps
            p -= (lr / bias_correction1) * (m / denom)

    def sgd_step_(self, params, grads, momentum_buffers, first_steps, lr, momentum,
                  dampening, weight_decay, nesterov):
        lr, momentum = float(lr), float(momentum)
        dampening, weight_decay = float(dampening), float(weight_decay)
        for p, g, buf, first in zip(params, grads, momentum_buffers, first_steps):
            if weight_decay != 0:
                g = g + weight_decay * p
            if momentum != 0:
                if first:
                    buf[...] = g  # torch starts the buffer at the raw gradient
                else:
                    buf *= momentum
                    buf += (1 - dampening) * g
                g = g + momentum * buf if nesterov else buf
            p -= lr * g


def _numpy_unary(op):
    def method(self, a):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return _arr(op.numpy(a), a.dtype)
    method.__name__ = method.__qualname__ = op.name
    method.__doc__ = op.doc
    return method


for _op in registry.UNARY:
    setattr(NumpyBackend, _op.name, _numpy_unary(_op))
abc.update_abstractmethods(NumpyBackend)
