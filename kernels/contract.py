"""The backend contract: every compute function a backend must provide.

A backend is a subclass of `Backend` that implements every abstract method
below under exactly these names (needle's and Chainer's way of keeping
backends interchangeable). Kernels work on raw arrays of the backend's own
array type (`numpy.ndarray` on the CPU, `cupy.ndarray` on NVIDIA GPUs), never
on autograd tensors.

Conventions shared by every function:
- Arrays are float32 or float64; masks are bool and indices int64 (the
  primitives' `compare` and `argmax`), and `to_device` stores all four.
  All floating inputs of one call share a dtype; outputs have that dtype.
- Inputs are validated by the caller (`nn.functional` checks shapes, dtypes
  and ranges and names the op in its errors). Kernels trust their arguments.
- Layouts are NCHW. Conv weights are (C_out, C_in, KH, KW); transposed conv
  weights are (C_in, C_out, KH, KW), as in torch.
- `stride`, `padding`, `dilation` and `output_padding` are (h, w) int pairs
  (normalise user ints with `kernels.conv_geometry.pair`).
- Functions return new arrays unless their name ends in `_` or their doc says
  "in place"; in-place functions return their first argument (the optimizer
  steps return None).
- `None` stands for an absent optional array (bias, affine weight, running
  statistics).

A backend need not write the transposed convolution: the default methods at
the end derive it from the three convolution kernels, because the transposed
forward *is* the conv input gradient (and so on). This is the one convolution
core the whole library shares.
"""

import abc

from . import registry
from .conv_geometry import conv_transpose_output_size


class Backend(abc.ABC):
    """Abstract base class: the list of functions a backend must implement."""

    name: str = "?"  # "numpy", "triton", "cupy"
    device: str = "?"  # "cpu" or "cuda": tensors on the same device mix freely

    # ---------------------------------------------------------------- memory
    @abc.abstractmethod
    def is_array(self, a):
        """True if `a` is an array this backend computes on."""

    @abc.abstractmethod
    def to_device(self, host, dtype):
        """Copy the NumPy array `host` into a new backend array of `dtype`."""

    @abc.abstractmethod
    def to_host(self, a):
        """A NumPy copy of backend array `a`."""

    @abc.abstractmethod
    def empty(self, shape, dtype):
        """An uninitialised array. Filled with NaN while `kernels.debug.poison`
        is on, so that elements a kernel forgets to write fail the tests."""

    @abc.abstractmethod
    def full(self, shape, value, dtype):
        """A new array of `shape` filled with `value`."""

    @abc.abstractmethod
    def fill_(self, a, value):
        """Set every element of `a` to `value`, in place."""

    @abc.abstractmethod
    def copy_(self, dst, src):
        """Copy `src` into `dst`, in place, converting to dst's dtype. `src`
        broadcasts to dst's shape; `dst` may be a strided view (a slice of a
        larger array), which is how concatenation and the slice backward
        write into their outputs."""

    @abc.abstractmethod
    def astype(self, a, dtype):
        """A contiguous copy of `a` converted to `dtype`: float32, float64,
        int64 or bool (bool -> 0/1; nonzero -> True)."""

    # ---------------------------------------------------------------- random
    @abc.abstractmethod
    def manual_seed(self, seed):
        """Seed this backend's generator; every draw below comes from it."""

    @abc.abstractmethod
    def get_rng_state(self):
        """The generator state, as a picklable object."""

    @abc.abstractmethod
    def set_rng_state(self, state):
        """Restore a state returned by `get_rng_state`."""

    @abc.abstractmethod
    def random_normal(self, shape, mean, std, dtype):
        """Samples of N(mean, std**2)."""

    @abc.abstractmethod
    def random_uniform(self, shape, low, high, dtype):
        """Samples of U[low, high)."""

    # ------------------------------------------------------------------ glue
    @abc.abstractmethod
    def add(self, a, b):
        """a + b, with NumPy broadcasting. Same for sub, mul, div."""

    @abc.abstractmethod
    def sub(self, a, b):
        """a - b, broadcasting."""

    @abc.abstractmethod
    def mul(self, a, b):
        """a * b, broadcasting."""

    @abc.abstractmethod
    def div(self, a, b):
        """a / b, broadcasting."""

    @abc.abstractmethod
    def neg(self, a):
        """-a."""

    @abc.abstractmethod
    def sum(self, a, axis, keepdims):
        """Sum over `axis` (a tuple of non-negative ints; () sums nothing,
        None sums everything)."""

    @abc.abstractmethod
    def mean(self, a, axis, keepdims):
        """Mean over `axis`, as in `sum`."""

    @abc.abstractmethod
    def reshape(self, a, shape):
        """`a` with a new shape of the same size; a view when `a` is contiguous."""

    @abc.abstractmethod
    def broadcast_to(self, a, shape):
        """`a` broadcast to `shape` (a read-only view is fine)."""

    # ------------------------------------------------------------ primitives
    # The array primitives every op above the fused kernels is composed of
    # (nn/ops.py writes each backward out of them, which is what makes every
    # op differentiable to any order). Inputs may be any strided view
    # (transposes, slices, broadcasts); outputs are new contiguous arrays.
    # Floating inputs share one dtype (float32 or float64) and NaN propagates
    # as in NumPy. Masks are bool arrays; indices are int64.
    # The unary ones (exp, log, log1p, sqrt, rsqrt, abs, ...) are declared in
    # kernels/registry.py (UNARY) and made abstract methods below the class:
    # backend.exp(a) etc., each with its registry doc.

    @abc.abstractmethod
    def pow_scalar(self, a, exponent):
        """a ** exponent for a Python float exponent, as NumPy's power:
        a ** 0 = 1 (NaN included), negative a with a non-integer exponent
        gives NaN, 0 ** negative gives inf."""

    @abc.abstractmethod
    def clamp(self, a, min, max):
        """min(max(a, min), max); either bound a Python float or None. NaN
        stays NaN."""

    @abc.abstractmethod
    def maximum(self, a, b):
        """Elementwise max, broadcasting; NaN if either is NaN."""

    @abc.abstractmethod
    def minimum(self, a, b):
        """Elementwise min, broadcasting; NaN if either is NaN."""

    @abc.abstractmethod
    def where(self, mask, a, b):
        """a where mask else b; the bool mask, a and b broadcast together."""

    @abc.abstractmethod
    def compare(self, op, a, b):
        """The bool mask a <op> b, broadcasting; op is one of "gt", "ge",
        "lt", "le", "eq" (comparisons with NaN are False)."""

    @abc.abstractmethod
    def amax(self, a, axis, keepdims):
        """Max over `axis` (as in `sum`); NaN if any reduced element is."""

    @abc.abstractmethod
    def amin(self, a, axis, keepdims):
        """Min over `axis`; NaN if any reduced element is."""

    @abc.abstractmethod
    def argmax(self, a, axis, keepdims):
        """int64 index of the first maximum along one axis (an int), or of
        the flattened array (axis None; keepdims then gives all-1 dims)."""

    @abc.abstractmethod
    def argmin(self, a, axis, keepdims):
        """int64 index of the first minimum, as `argmax`."""

    @abc.abstractmethod
    def var(self, a, axis, keepdims, correction):
        """Variance over `axis` (as in `sum`): the mean squared deviation
        from the mean, divided by count - correction instead of count
        (correction=1 is the unbiased estimate). Two-pass, so a large mean
        does not cancel the digits of a small variance."""

    @abc.abstractmethod
    def matmul(self, a, b):
        """a @ b for (M, K) @ (K, N) -> (M, N) or (B, M, K) @ (B, K, N) ->
        (B, M, N). Any strides (a transposed view costs no copy). float32
        is exact IEEE fp32 unless the backend's TF32 switch is on."""

    # Views: metadata only, no kernel. The GPU array types (CuPy, NumPy
    # under the interpreter) share NumPy's view semantics, so one
    # implementation serves every backend.
    def permute(self, a, axes):
        """a with its axes reordered (a view)."""
        return a.transpose(tuple(axes))

    def slice(self, a, index):
        """a[index] for a tuple of ints and slices (steps >= 1): a view."""
        return a[tuple(index)]

    # ----------------------------------------------------------- convolution
    # x: (N, C_in, H, W); w: (C_out, C_in/groups, KH, KW); y, dy: (N, C_out, OH, OW)
    # with OH = (H + 2*ph - dh*(KH-1) - 1) // sh + 1, and likewise OW.
    # groups (torch's meaning) splits the channels into independent convs:
    # output channels [k*C_out/g, (k+1)*C_out/g) read only input channels
    # [k*C_in/g, (k+1)*C_in/g). groups = C_in is a depthwise conv. It is one
    # more (batch) axis of the same GEMM, not another algorithm.
    @abc.abstractmethod
    def conv2d_forward(self, x, w, b, stride, padding, dilation, groups=1):
        """y = conv2d(x, w) + b. `b` is (C_out,) or None."""

    @abc.abstractmethod
    def conv2d_backward_input(self, dy, w, input_hw, stride, padding, dilation, groups=1):
        """dx, shape (N, C_in, *input_hw): the gradient of conv2d w.r.t. x.
        `input_hw` is needed because several input sizes give one output size."""

    @abc.abstractmethod
    def conv2d_backward_weight(self, dy, x, kernel_hw, stride, padding, dilation, groups=1):
        """dw, shape (C_out, C_in/groups, *kernel_hw): the gradient w.r.t. w."""

    @abc.abstractmethod
    def conv2d_backward_bias(self, dy):
        """db, shape (C_out,): dy summed over N, OH and OW."""

    # ------------------------------------------------------------ batch norm
    # x, y, dy: (N, C, H, W) (nn reshapes (N, C) and (N, C, L) inputs to 4-D);
    # every per-channel array is (C,).
    @abc.abstractmethod
    def batch_norm_train_forward(self, x, weight, bias, running_mean, running_var,
                                 momentum, eps):
        """Normalise with the batch statistics (biased variance).

        Returns (y, save_mean, save_invstd), invstd = 1/sqrt(var + eps).
        If running_mean/running_var are given, update them in place as torch
        does: r = (1 - momentum) * r + momentum * stat, using the unbiased
        variance for running_var."""

    @abc.abstractmethod
    def batch_norm_eval_forward(self, x, weight, bias, running_mean, running_var, eps):
        """Normalise with the running statistics.

        Returns (y, mean, invstd) like the training forward: new arrays
        holding running_mean and 1/sqrt(running_var + eps), which the
        backward needs and which must not change if the running statistics
        are updated before it runs."""

    @abc.abstractmethod
    def batch_norm_backward(self, dy, x, weight, mean, invstd, training):
        """Returns (dx, dweight, dbias); dweight and dbias are None if weight is.

        training=True: mean/invstd are the saved batch statistics, and dx
        carries the terms through them. training=False: mean/invstd come from
        the running statistics and are constants."""

    # ----------------------------------------------------------- activations
    @abc.abstractmethod
    def leaky_relu_forward(self, x, negative_slope):
        """y = x if x > 0 else negative_slope * x."""

    @abc.abstractmethod
    def leaky_relu_backward(self, dy, x, negative_slope):
        """dx from the input x (the slope may be negative, so y cannot tell)."""

    @abc.abstractmethod
    def relu_forward(self, x):
        """y = max(x, 0)."""

    @abc.abstractmethod
    def relu_backward(self, dy, y):
        """dx = dy where y > 0, else 0 (torch's choice at 0)."""

    @abc.abstractmethod
    def tanh_forward(self, x):
        """y = tanh(x)."""

    @abc.abstractmethod
    def tanh_backward(self, dy, x):
        """dx = dy * sech(x)**2 = dy * 4e / (1 + e)**2 with e = exp(-2|x|).

        From the input, not as torch's 1 - y**2: once tanh saturates, y
        rounds near 1 and 1 - y**2 keeps few correct digits (float32 loses
        ~1e-3 relative accuracy by |x| = 5); the exp form keeps them all."""

    @abc.abstractmethod
    def sigmoid_forward(self, x):
        """y = 1 / (1 + exp(-x)), without overflow for large |x|."""

    @abc.abstractmethod
    def sigmoid_backward(self, dy, x):
        """dx = dy * e / (1 + e)**2 with e = exp(-|x|): from the input, for the
        reason given in tanh_backward."""

    # ---------------------------------------------------------------- losses
    # reduction is "mean", "sum" or "none". The loss is a 0-d array (never a
    # NumPy scalar) for mean/sum, and has the input's shape for none; dloss has
    # the loss's shape.
    @abc.abstractmethod
    def bce_forward(self, p, target, reduction):
        """Binary cross-entropy on probabilities p in [0, 1], as torch:
        -(t * max(log p, -100) + (1 - t) * max(log1p(-p), -100))."""

    @abc.abstractmethod
    def bce_backward(self, dloss, p, target, reduction, need_target_grad):
        """Returns (dp, dtarget). dp = dloss * (p - t) / max(p (1 - p), eps)
        as torch, whose eps is the float32 rounding of 1e-12; dtarget =
        dloss * (max(log1p(-p), -100) - max(log p, -100)), or None when not
        needed. Both divided by numel for "mean". (dtarget is the derivative
        of the clamped loss we compute: at p = 0 or 1 it is +-100, where torch
        gives +-inf from the unclamped logs.)"""

    @abc.abstractmethod
    def bce_with_logits_forward(self, x, target, reduction):
        """(1 - t) * x + softplus(-x), stable for |x| of 100 and more."""

    @abc.abstractmethod
    def bce_with_logits_backward(self, dloss, x, target, reduction, need_target_grad):
        """Returns (dx, dtarget): dx = dloss * (sigmoid(x) - t),
        dtarget = -dloss * x (or None). Divided by numel for "mean"."""

    # ------------------------------------------------------------- optimizers
    # Multi-tensor updates: one call updates every parameter of a group, in
    # place. Lists are parallel; steps[i] is parameter i's step count *after*
    # this step (1 on the first).
    @abc.abstractmethod
    def adam_step_(self, params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2,
                   eps, weight_decay):
        """torch.optim.Adam (amsgrad=False): g = grad + weight_decay * p;
        m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""

    @abc.abstractmethod
    def sgd_step_(self, params, grads, momentum_buffers, first_steps, lr, momentum,
                  dampening, weight_decay, nesterov):
        """torch.optim.SGD: g = grad + weight_decay * p; with momentum,
        buf = g on a parameter's first step (first_steps[i]) else
        momentum * buf + (1 - dampening) * g; g = g + momentum * buf if
        nesterov else buf; p -= lr * g. momentum_buffers[i] is None when
        momentum == 0, else a preallocated array updated in place."""

    # ------------------------------------------- derived: transposed conv
    # x: (N, C_in, H, W); w: (C_in, C_out/groups, KH, KW); y: (N, C_out, OH, OW) with
    # OH = (H - 1)*sh - 2*ph + dh*(KH - 1) + oph + 1. A transposed conv is the
    # input gradient of the conv that maps y-shaped images to x-shaped ones,
    # so its three kernels are conv's three kernels in other roles.
    def conv_transpose2d_forward(self, x, w, b, stride, padding, output_padding, dilation,
                                 groups=1):
        """y = conv_transpose2d(x, w) + b."""
        out_hw = conv_transpose_output_size(x.shape[2:], w.shape[2:], stride, padding,
                                            output_padding, dilation)
        y = self.conv2d_backward_input(x, w, out_hw, stride, padding, dilation, groups)
        if b is not None:
            y = self.add(y, self.reshape(b, (1, -1, 1, 1)))
        return y

    def conv_transpose2d_backward_input(self, dy, w, input_hw, stride, padding, dilation,
                                        groups=1):
        """dx = conv2d(dy, w): the transposed conv's input gradient.

        When output_padding >= stride (allowed if dilation > stride), that
        conv yields rows past the input's last one; no input pixel exists
        there, so they are cropped."""
        dx = self.conv2d_forward(dy, w, None, stride, padding, dilation, groups)
        if tuple(dx.shape[2:]) != tuple(input_hw):
            dx = self.astype(dx[:, :, :input_hw[0], :input_hw[1]], dx.dtype)
        return dx

    def conv_transpose2d_backward_weight(self, dy, x, kernel_hw, stride, padding, dilation,
                                         groups=1):
        """dw, shape (C_in, C_out/groups, KH, KW): conv's weight gradient with
        the roles of image and gradient swapped."""
        return self.conv2d_backward_weight(x, dy, kernel_hw, stride, padding, dilation, groups)

    def conv_transpose2d_backward_bias(self, dy):
        return self.conv2d_backward_bias(dy)


def _unary_method(op):
    def method(self, a):
        raise NotImplementedError
    method.__name__ = method.__qualname__ = op.name
    method.__doc__ = f"{op.doc} Unary primitive: a new contiguous array of a's shape and dtype."
    return abc.abstractmethod(method)


for _op in registry.UNARY:
    setattr(Backend, _op.name, _unary_method(_op))
abc.update_abstractmethods(Backend)


def contract_functions():
    """Names of every function in the contract, abstract and derived."""
    return sorted(n for n, v in vars(Backend).items()
                  if callable(v) and not n.startswith("_"))


def missing_functions(backend_cls):
    """Contract functions `backend_cls` leaves unimplemented."""
    return sorted(getattr(backend_cls, "__abstractmethods__", ()))
