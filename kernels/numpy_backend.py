"""The NumPy reference backend: every contract function, on the CPU.

This backend is the one the others are checked against, so it favours plain
formulas over cleverness; the exceptions are the kernels a DCGAN training
step spends its time in (convolution, batch norm, the activation backwards),
which have to be fast enough to train on a CPU and say why they are shaped
as they are.

Design:
- Arrays are plain `numpy.ndarray`s. NumPy 2 promotes `float32 * np.float64`
  to float64 (NEP 50), so hyperparameters are turned into Python floats, which
  never upcast, and a result that could still be promoted is cast back.
- NumPy ufuncs turn 0-d arrays into NumPy scalars (`np.add(a, b)` on 0-d
  inputs is an `np.float32`, not an `ndarray`), which `is_array` rejects.
  Elementwise and reduced results therefore go through `_arr`, which does
  both jobs: it keeps them ndarrays and casts them back to the input dtype.
- The kernels that are more than a ufunc or two live in kernels/numpy_kernels/
  (convolution, batch norm, the exact mask selections), each with the reasons
  for its layout and pass count; this class only routes to them.
- Convolution is im2col + one matrix product. `conv.windows` is the shared
  core: a zero-copy `as_strided` view of every receptive field, shape
  (N, C, KH, KW, OH, OW). The forward and the weight gradient copy it once
  into a matrix and call BLAS; the input gradient multiplies back into that
  column space and adds the columns onto the image ("col2im") with one
  strided add per kernel tap. The transposed convolution is inherited from
  `Backend`, which builds it from these three kernels.
- Speed without losing the reference's clarity: fewer passes and
  temporaries (in-place ufuncs), per-channel sums by einsum, float32 kept
  float32 (Python-float scalars), and no np.where over random masks.
- Randomness comes from one `np.random.Generator` per backend instance. Draws
  are made in float64 and then cast, so a seed gives the same numbers (up to
  rounding) in float32 and float64.
"""

import abc
import copy

import numpy as np

from . import debug, registry
from .contract import Backend
from .numpy_kernels import batchnorm, conv, masks


# The floor of BCE's gradient denominator. torch stores its 1e-12 as a C
# float, so the value it really uses is float32(1e-12) = 9.99999996e-13;
# using the same number makes clamped gradients agree to the last bit.
_BCE_EPS = float(np.float32(1e-12))


def _arr(a, dtype=None):
    """`a` as an ndarray of `dtype`: 0-d results stay arrays, never NumPy
    scalars, and a result that NumPy promoted is cast back (no copy otherwise)."""
    return np.asarray(a, dtype=dtype)


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
        return debug.empty(np, shape, dtype)  # NaN-filled while debug.poison is on

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
    # im2col + one GEMM each; kernels/numpy_kernels/conv.py says why the
    # layouts are what they are.
    def conv2d_forward(self, x, w, b, stride, padding, dilation, groups=1):
        return conv.forward(x, w, b, stride, padding, dilation, groups)

    def conv2d_backward_weight(self, dy, x, kernel_hw, stride, padding, dilation, groups=1):
        return conv.backward_weight(dy, x, kernel_hw, stride, padding, dilation, groups)

    def conv2d_backward_input(self, dy, w, input_hw, stride, padding, dilation, groups=1):
        return conv.backward_input(dy, w, input_hw, stride, padding, dilation, groups)

    def conv2d_backward_bias(self, dy):
        return conv.backward_bias(dy)

    # ------------------------------------------------------------ batch norm
    def batch_norm_train_forward(self, x, weight, bias, running_mean, running_var,
                                 momentum, eps):
        return batchnorm.train_forward(x, weight, bias, running_mean, running_var,
                                       momentum, eps)

    def batch_norm_eval_forward(self, x, weight, bias, running_mean, running_var, eps):
        return batchnorm.eval_forward(x, weight, bias, running_mean, running_var, eps)

    def batch_norm_backward(self, dy, x, weight, mean, invstd, training):
        return batchnorm.backward(dy, x, weight, mean, invstd, training)

    # ----------------------------------------------------------- activations
    def leaky_relu_forward(self, x, negative_slope):
        # max(x, s*x) for s <= 1 and min(x, s*x) for s > 1 pick exactly what
        # where(x > 0, x, s*x) picks (NaN included), and run branch-free:
        # 19x faster than np.where on a random-sign 1M-element array.
        s = float(negative_slope)
        return _arr((np.maximum if s <= 1 else np.minimum)(x, x * s))

    def leaky_relu_backward(self, dy, x, negative_slope):
        # Exactly torch's `x > 0 ? dy : dy * slope`, inf and NaN included,
        # without np.where's per-element branch (numpy_kernels/masks.py).
        return masks.scale_where_not(x > 0, dy, float(negative_slope))

    def relu_forward(self, x):
        # Against an array of zeros, not the scalar 0: NumPy's maximum is
        # vectorised for two arrays only (3x faster), and NaN still wins.
        zeros = np.zeros(x.shape, x.dtype)
        return np.maximum(x, zeros, out=zeros)

    def relu_backward(self, dy, y):
        # dy where y > 0, else +0 even for an inf or NaN dy, as torch's
        # threshold_backward; branch-free (numpy_kernels/masks.py).
        return masks.keep_where(y > 0, dy)

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
            # torch's operations in torch's order, each in place in one
            # scratch buffer (no temporaries).
            tmp = np.subtract(g, m)
            tmp *= 1 - beta1
            m += tmp  # = b1 m + (1 - b1) g, torch's lerp form
            np.multiply(g, g, out=tmp)
            tmp *= 1 - beta2
            v *= beta2
            v += tmp
            # Python floats, as torch computes the bias corrections.
            bias_correction1 = 1 - beta1 ** float(t)
            bias_correction2 = 1 - beta2 ** float(t)
            np.sqrt(v, out=tmp)
            tmp /= bias_correction2 ** 0.5
            tmp += eps  # the denominator
            np.divide(m, tmp, out=tmp)
            tmp *= lr / bias_correction1
            p -= tmp

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
