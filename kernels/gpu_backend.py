"""The wiring the two GPU backends share.

`triton` and `cupy` implement the contract with kernel modules of the same
shape, one per family, each exposing the same public functions:

    conv         conv2d_forward, conv2d_backward_input/_weight/_bias
    batchnorm    train_forward, eval_forward, backward (+ fused *_act forms)
    loss         bce_forward, bce_backward (logits=True/False)
    elementwise  fill_, copy_, cast, contiguous, binary, neg,
                 activation_forward/_backward, random_normal/_uniform,
                 unary, pow_scalar, clamp, compare, where
    reduce       sum, mean, amax, amin, argmax, argmin, var
    matmul       matmul
    optim        adam_step_, sgd_step_
    runtime      xp (the array module), empty, SIMULATED (True when the
                 kernels run on the CPU: Triton's interpreter, the CUDA
                 emulator)

so this class maps every contract function onto those modules once, and a
backend is a subclass that names its modules (kernels/triton_backend.py,
kernels/cupy_backend.py). The transposed convolution is the contract's
default: the same three conv kernels in other roles.

Random numbers are counter-based (Philox): the generator state is just
(seed, offset), and every draw advances offset by its element count, so
draws never share counters and a checkpointed state resumes exactly.
"""

import abc
import contextlib

import numpy as np

from . import debug, registry
from .contract import Backend


class Traffic:
    """What a block of code asked of the device, counted by
    `KernelModuleBackend.count_traffic()`: kernel launches (ours: every
    kernel is launched through the CUDA runtime module or Triton's
    launcher, so a list of their names), allocations (arrays from the
    kernels' allocator, uploads and device tables) with their bytes, and
    host transfers: device-to-host copies (`to_host`, which `.item()` and
    `.numpy()` go through: each one waits for the device) and host-to-device
    uploads (`to_device`, the optimizers' tables). The counts are the same
    under the simulators as on a GPU, which is what lets CI hold the
    training step to a budget (tests/test_step_budget.py)."""

    def __init__(self):
        self.launches, self.allocations, self.allocated_bytes = [], 0, 0
        self.d2h, self.h2d = 0, 0

    @property
    def syncs(self):
        return self.d2h + self.h2d

    def allocated(self, a):
        self.allocations += 1
        self.allocated_bytes += int(a.nbytes)
        return a

    def summary(self):
        return {"launches": len(self.launches), "allocations": self.allocations,
                "allocated_bytes": self.allocated_bytes, "d2h": self.d2h, "h2d": self.h2d}

    def __repr__(self):
        return f"Traffic({self.summary()})"


class KernelModuleBackend(Backend):
    conv = batchnorm = loss = elementwise = reduce = matmul_module = optim = runtime = None
    # Kernels run asynchronously to the host: reading a value back waits for
    # the device, so nn defers the checks it can (nn.losses.deferred_range_checks).
    asynchronous = True

    def __init__(self):
        self.xp = self.runtime.xp
        self.device = "cpu" if self.runtime.SIMULATED else "cuda"
        self._traffic = []  # the active count_traffic() blocks
        self.manual_seed(0)

    # --------------------------------------------------------------- traffic
    @contextlib.contextmanager
    def count_traffic(self):
        """`with B.count_traffic() as t: ...` counts what the block asks of the
        device (a `Traffic`). Kernels still run; counting blocks may nest
        (an outer block counts everything the inner one does)."""
        traffic = Traffic()
        allocate, upload_table = debug.empty, self.optim._device_table

        def counted_empty(xp, shape, dtype):
            return traffic.allocated(allocate(xp, shape, dtype))

        def counted_table(rows):
            traffic.h2d += 1
            return traffic.allocated(upload_table(rows))

        debug.empty, self.optim._device_table = counted_empty, counted_table
        self._traffic.append(traffic)
        try:
            with self._count_launches(traffic.launches):
                yield traffic
        finally:
            debug.empty, self.optim._device_table = allocate, upload_table
            self._traffic.remove(traffic)

    @abc.abstractmethod
    def _count_launches(self, names):
        """A context in which every kernel launch appends its name to `names`."""

    # ---------------------------------------------------------------- memory
    def is_array(self, a):
        return isinstance(a, self.xp.ndarray)

    def to_device(self, host, dtype):
        a = self.xp.array(np.asarray(host), dtype=dtype, order="C")
        for t in self._traffic:
            t.h2d += 1
            t.allocated(a)
        return a

    def to_host(self, a):
        for t in self._traffic:
            t.d2h += 1
        return np.array(a, copy=True) if self.runtime.SIMULATED else self.xp.asnumpy(a)

    def empty(self, shape, dtype):
        return self.runtime.empty(shape, dtype)

    def full(self, shape, value, dtype):
        return self.elementwise.fill_(self.runtime.empty(shape, dtype), value)

    def fill_(self, a, value):
        return self.elementwise.fill_(a, value)

    def copy_(self, dst, src):
        return self.elementwise.copy_(dst, src)

    def astype(self, a, dtype):
        return self.elementwise.cast(a, dtype)

    # ---------------------------------------------------------------- random
    def manual_seed(self, seed):
        self._rng = {"seed": int(seed) & 0x7FFFFFFF, "offset": 0}

    def get_rng_state(self):
        return dict(self._rng)

    def set_rng_state(self, state):
        self._rng = {"seed": int(state["seed"]), "offset": int(state["offset"])}

    def _advance(self, shape):
        n = int(np.prod(shape, dtype=np.int64))
        offset = self._rng["offset"]
        self._rng["offset"] += n
        return self._rng["seed"], offset

    def random_normal(self, shape, mean, std, dtype):
        seed, offset = self._advance(shape)
        return self.elementwise.random_normal(tuple(shape), mean, std, dtype, seed, offset)

    def random_uniform(self, shape, low, high, dtype):
        seed, offset = self._advance(shape)
        return self.elementwise.random_uniform(tuple(shape), low, high, dtype, seed, offset)

    # ------------------------------------------------------------------ glue
    def add(self, a, b):
        return self.elementwise.binary("add", a, b)

    def sub(self, a, b):
        return self.elementwise.binary("sub", a, b)

    def mul(self, a, b):
        return self.elementwise.binary("mul", a, b)

    def div(self, a, b):
        return self.elementwise.binary("div", a, b)

    def neg(self, a):
        return self.elementwise.neg(a)

    def sum(self, a, axis, keepdims):
        return self.reduce.sum(a, axis, keepdims)

    def mean(self, a, axis, keepdims):
        return self.reduce.mean(a, axis, keepdims)

    def reshape(self, a, shape):
        if not a.flags.c_contiguous:
            a = self.elementwise.contiguous(a)
        return a.reshape(shape)

    def broadcast_to(self, a, shape):
        return self.xp.broadcast_to(a, tuple(shape))

    # ------------------------------------------------------------ primitives
    # exp, log, ... : the registry's unary primitives, wired below the class.
    def pow_scalar(self, a, exponent):
        return self.elementwise.pow_scalar(a, exponent)

    def clamp(self, a, min, max):
        return self.elementwise.clamp(a, min, max)

    def maximum(self, a, b):
        return self.elementwise.binary("maximum", a, b)

    def minimum(self, a, b):
        return self.elementwise.binary("minimum", a, b)

    def where(self, mask, a, b):
        return self.elementwise.where(mask, a, b)

    def compare(self, op, a, b):
        return self.elementwise.compare(op, a, b)

    def amax(self, a, axis, keepdims):
        return self.reduce.amax(a, axis, keepdims)

    def amin(self, a, axis, keepdims):
        return self.reduce.amin(a, axis, keepdims)

    def argmax(self, a, axis, keepdims):
        return self.reduce.argmax(a, axis, keepdims)

    def argmin(self, a, axis, keepdims):
        return self.reduce.argmin(a, axis, keepdims)

    def var(self, a, axis, keepdims, correction):
        return self.reduce.var(a, axis, keepdims, correction)

    def matmul(self, a, b):
        return self.matmul_module.matmul(a, b)

    # ----------------------------------------------------------- convolution
    # The fused kernels index contiguous NCHW memory; views (a broadcast
    # gradient from sum(), a transposed weight) are copied once here.
    def _c(self, a):
        return a if a is None or a.flags.c_contiguous else self.elementwise.contiguous(a)

    def conv2d_forward(self, x, w, b, stride, padding, dilation, groups=1):
        return self.conv.conv2d_forward(self._c(x), self._c(w), self._c(b), stride, padding,
                                        dilation, groups)

    def conv2d_backward_input(self, dy, w, input_hw, stride, padding, dilation, groups=1):
        return self.conv.conv2d_backward_input(self._c(dy), self._c(w), input_hw, stride,
                                               padding, dilation, groups)

    def conv2d_backward_weight(self, dy, x, kernel_hw, stride, padding, dilation, groups=1):
        return self.conv.conv2d_backward_weight(self._c(dy), self._c(x), kernel_hw, stride,
                                                padding, dilation, groups)

    def conv2d_backward_bias(self, dy):
        return self.conv.conv2d_backward_bias(self._c(dy))

    # ------------------------------------------------------------ batch norm
    def batch_norm_train_forward(self, x, weight, bias, running_mean, running_var, momentum, eps):
        return self.batchnorm.train_forward(self._c(x), weight, bias, running_mean,
                                            running_var, momentum, eps)

    def batch_norm_eval_forward(self, x, weight, bias, running_mean, running_var, eps):
        return self.batchnorm.eval_forward(self._c(x), weight, bias, running_mean, running_var,
                                           eps)

    def batch_norm_backward(self, dy, x, weight, mean, invstd, training):
        return self.batchnorm.backward(self._c(dy), self._c(x), weight, mean, invstd, training)

    # Batch norm with a fused ReLU / LeakyReLU: act(batch_norm(x)) in one pass
    # each way (the batchnorm modules' activation= forms, tested against the
    # unfused pair in tests/test_gpu_backends.py). Not in the contract: nn
    # uses them where a backend has them (nn.functional.batch_norm_act) and
    # composes the two ops elsewhere.
    def batch_norm_act_train_forward(self, x, weight, bias, running_mean, running_var, momentum,
                                     eps, activation, negative_slope):
        return self.batchnorm.train_forward(self._c(x), weight, bias, running_mean, running_var,
                                            momentum, eps, activation=activation,
                                            negative_slope=negative_slope)

    def batch_norm_act_eval_forward(self, x, weight, bias, running_mean, running_var, eps,
                                    activation, negative_slope):
        return self.batchnorm.eval_forward(self._c(x), weight, bias, running_mean, running_var,
                                           eps, activation=activation,
                                           negative_slope=negative_slope)

    def batch_norm_act_backward(self, dy, x, weight, bias, mean, invstd, training, activation,
                                negative_slope):
        return self.batchnorm.backward(self._c(dy), self._c(x), weight, mean, invstd, training,
                                       bias=bias, activation=activation,
                                       negative_slope=negative_slope)

    # ----------------------------------------------------------- activations
    def leaky_relu_forward(self, x, negative_slope):
        return self.elementwise.activation_forward("leaky_relu", x, negative_slope)

    def leaky_relu_backward(self, dy, x, negative_slope):
        return self.elementwise.activation_backward("leaky_relu", dy, x, negative_slope)

    def relu_forward(self, x):
        return self.elementwise.activation_forward("relu", x)

    def relu_backward(self, dy, y):
        return self.elementwise.activation_backward("relu", dy, y)

    def tanh_forward(self, x):
        return self.elementwise.activation_forward("tanh", x)

    def tanh_backward(self, dy, x):
        return self.elementwise.activation_backward("tanh", dy, x)

    def sigmoid_forward(self, x):
        return self.elementwise.activation_forward("sigmoid", x)

    def sigmoid_backward(self, dy, x):
        return self.elementwise.activation_backward("sigmoid", dy, x)

    # ---------------------------------------------------------------- losses
    def bce_forward(self, p, target, reduction):
        return self.loss.bce_forward(self._c(p), self._c(target), reduction, logits=False)

    def bce_backward(self, dloss, p, target, reduction, need_target_grad):
        return self.loss.bce_backward(self._c(dloss), self._c(p), self._c(target), reduction,
                                      need_target_grad, logits=False)

    def bce_with_logits_forward(self, x, target, reduction):
        return self.loss.bce_forward(self._c(x), self._c(target), reduction, logits=True)

    def bce_with_logits_backward(self, dloss, x, target, reduction, need_target_grad):
        return self.loss.bce_backward(self._c(dloss), self._c(x), self._c(target), reduction,
                                      need_target_grad, logits=True)

    # ------------------------------------------------------------- optimizers
    def adam_step_(self, params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps,
                   weight_decay):
        self.optim.adam_step_(params, [self._c(g) for g in grads], exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2,
                              eps, weight_decay)

    def sgd_step_(self, params, grads, momentum_buffers, first_steps, lr, momentum, dampening,
                  weight_decay, nesterov):
        self.optim.sgd_step_(params, [self._c(g) for g in grads], momentum_buffers, first_steps, lr, momentum,
                             dampening, weight_decay, nesterov)


def _gpu_unary(op):
    def method(self, a):
        return self.elementwise.unary(op.name, a)
    method.__name__ = method.__qualname__ = op.name
    method.__doc__ = op.doc
    return method


for _op in registry.UNARY:
    setattr(KernelModuleBackend, _op.name, _gpu_unary(_op))
abc.update_abstractmethods(KernelModuleBackend)
