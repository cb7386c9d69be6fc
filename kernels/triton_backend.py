"""The `triton` backend: every contract function as hand-written Triton kernels.

The kernels live in kernels/triton/, one file per family (conv, batch norm,
losses, elementwise, reductions, optimizers); this class only wires them to
the contract's names. Arrays are CuPy arrays on a GPU and NumPy arrays under
TRITON_INTERPRET=1 (see kernels/triton/common.py), and every output is
allocated by `common.empty`, NaN-poisoned in the tests.

The transposed convolution is the contract's default: the same three conv
kernels in other roles.
"""

import numpy as np

from .contract import Backend
from .triton import batchnorm, common, conv, elementwise, loss, optim, reduce


class TritonBackend(Backend):
    name = "triton"

    def __init__(self):
        self.device = "cpu" if common.INTERPRET else "cuda"
        self.xp = common.xp
        self.manual_seed(0)

    def __repr__(self):
        mode = "interpreter" if common.INTERPRET else "gpu"
        return f"TritonBackend(device={self.device!r}, mode={mode}, precision={common.DOT_PRECISION})"

    # ---------------------------------------------------------------- memory
    def is_array(self, a):
        return isinstance(a, self.xp.ndarray)

    def to_device(self, host, dtype):
        return self.xp.array(np.asarray(host), dtype=dtype, order="C")

    def to_host(self, a):
        return np.array(a, copy=True) if common.INTERPRET else self.xp.asnumpy(a)

    def empty(self, shape, dtype):
        return common.empty(shape, dtype)

    def full(self, shape, value, dtype):
        return elementwise.fill_(common.empty(shape, dtype), value)

    def fill_(self, a, value):
        return elementwise.fill_(a, value)

    def copy_(self, dst, src):
        return elementwise.copy_(dst, src)

    def astype(self, a, dtype):
        return elementwise.cast(a, dtype)

    # ---------------------------------------------------------------- random
    # Philox counters: the state is (seed, offset); each draw advances offset.
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
        return elementwise.random_normal(tuple(shape), mean, std, dtype, seed, offset)

    def random_uniform(self, shape, low, high, dtype):
        seed, offset = self._advance(shape)
        return elementwise.random_uniform(tuple(shape), low, high, dtype, seed, offset)

    # ------------------------------------------------------------------ glue
    def add(self, a, b):
        return elementwise.binary("add", a, b)

    def sub(self, a, b):
        return elementwise.binary("sub", a, b)

    def mul(self, a, b):
        return elementwise.binary("mul", a, b)

    def div(self, a, b):
        return elementwise.binary("div", a, b)

    def neg(self, a):
        return elementwise.neg(a)

    def sum(self, a, axis, keepdims):
        return reduce.sum(a, axis, keepdims)

    def mean(self, a, axis, keepdims):
        return reduce.mean(a, axis, keepdims)

    def reshape(self, a, shape):
        if not a.flags.c_contiguous:
            a = elementwise.contiguous(a)
        return a.reshape(shape)

    def broadcast_to(self, a, shape):
        return self.xp.broadcast_to(a, tuple(shape))

    # ----------------------------------------------------------- convolution
    def conv2d_forward(self, x, w, b, stride, padding, dilation):
        return conv.conv2d_forward(x, w, b, stride, padding, dilation)

    def conv2d_backward_input(self, dy, w, input_hw, stride, padding, dilation):
        return conv.conv2d_backward_input(dy, w, input_hw, stride, padding, dilation)

    def conv2d_backward_weight(self, dy, x, kernel_hw, stride, padding, dilation):
        return conv.conv2d_backward_weight(dy, x, kernel_hw, stride, padding, dilation)

    def conv2d_backward_bias(self, dy):
        return conv.conv2d_backward_bias(dy)

    # ------------------------------------------------------------ batch norm
    def batch_norm_train_forward(self, x, weight, bias, running_mean, running_var, momentum, eps):
        return batchnorm.train_forward(x, weight, bias, running_mean, running_var, momentum, eps)

    def batch_norm_eval_forward(self, x, weight, bias, running_mean, running_var, eps):
        return batchnorm.eval_forward(x, weight, bias, running_mean, running_var, eps)

    def batch_norm_backward(self, dy, x, weight, mean, invstd, training):
        return batchnorm.backward(dy, x, weight, mean, invstd, training)

    # ----------------------------------------------------------- activations
    def leaky_relu_forward(self, x, negative_slope):
        return elementwise.activation_forward("leaky_relu", x, negative_slope)

    def leaky_relu_backward(self, dy, x, negative_slope):
        return elementwise.activation_backward("leaky_relu", dy, x, negative_slope)

    def relu_forward(self, x):
        return elementwise.activation_forward("relu", x)

    def relu_backward(self, dy, y):
        return elementwise.activation_backward("relu", dy, y)

    def tanh_forward(self, x):
        return elementwise.activation_forward("tanh", x)

    def tanh_backward(self, dy, x):
        return elementwise.activation_backward("tanh", dy, x)

    def sigmoid_forward(self, x):
        return elementwise.activation_forward("sigmoid", x)

    def sigmoid_backward(self, dy, x):
        return elementwise.activation_backward("sigmoid", dy, x)

    # ---------------------------------------------------------------- losses
    def bce_forward(self, p, target, reduction):
        return loss.bce_forward(p, target, reduction, logits=False)

    def bce_backward(self, dloss, p, target, reduction, need_target_grad):
        return loss.bce_backward(dloss, p, target, reduction, need_target_grad, logits=False)

    def bce_with_logits_forward(self, x, target, reduction):
        return loss.bce_forward(x, target, reduction, logits=True)

    def bce_with_logits_backward(self, dloss, x, target, reduction, need_target_grad):
        return loss.bce_backward(dloss, x, target, reduction, need_target_grad, logits=True)

    # ------------------------------------------------------------- optimizers
    def adam_step_(self, params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps,
                   weight_decay):
        optim.adam_step_(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps,
                         weight_decay)

    def sgd_step_(self, params, grads, momentum_buffers, first_steps, lr, momentum, dampening,
                  weight_decay, nesterov):
        optim.sgd_step_(params, grads, momentum_buffers, first_steps, lr, momentum, dampening,
                        weight_decay, nesterov)
