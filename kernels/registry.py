"""The op registry: every function of the backend contract, declared once.

Each entry names a contract function and says what the rest of the project
needs to know about it: its family (which benchmark builder and which cost
formula apply), its FLOPs per output element (elementwise ops), whether the
benchmarks time it on its own, and the torch function it is checked and
timed against. The lists kept elsewhere are derived from this one:

    kernels/contract.py       the unary primitives' abstract methods
    kernels/numpy_backend.py  the unary primitives (from `numpy`)
    kernels/gpu_backend.py    the unary primitives' wiring to the kernels
    kernels/triton|cuda       the unary op codes of the elementwise kernels
    nn/ops.py, nn/tensor.py   the unary Functions and Tensor methods (`grad`)
    benchmarks/cost.py        EW_FLOPS
    benchmarks/cases.py       the cases of the elementwise families
    tests                     the primitive tables and the timed-op list

and tests/test_registry.py checks that the registry and the contract agree.

Adding a unary elementwise op (say `expm1`) therefore means: its kernels
(one `case` in kernels/cuda/elementwise.cu's unary switch and one branch in
kernels/triton/elementwise.py's `_unary`, under its `code`), one `Unary`
entry below, and nothing else: the contract method, the NumPy reference, the
GPU wiring, the autograd Function, the Tensor method, the tests (kernel
level, nn level, second derivatives) and the benchmark rows all follow.
"""

import dataclasses
from typing import Callable

import numpy as np

# Families, in the contract's order. A family picks the benchmark builder
# (benchmarks/cases.py) and the cost formula (benchmarks/cost.py).
FAMILIES = ("memory", "random", "glue", "unary", "elementwise", "reduction", "linalg", "view",
            "conv", "conv_transpose", "batch_norm", "activation", "loss", "optimizer")


@dataclasses.dataclass(frozen=True)
class Op:
    name: str                # the contract function
    family: str
    flops: int = None        # per output element, for the elementwise families
    timed: bool = True       # benchmarked on its own (False: a view, a memory
    #                          function, or the same kernel as a timed op)
    torch: str = ""          # the torch equivalent, for tests and benchmarks


@dataclasses.dataclass(frozen=True)
class Unary(Op):
    """A unary elementwise primitive: y = f(x), same shape and dtype."""
    doc: str = ""
    numpy: Callable = None   # the reference implementation (a NumPy ufunc)
    grad: Callable = None    # (x, y, g) -> dx, written with Tensor ops
    domain: tuple = (-2.0, 2.0)   # inputs where f is smooth (tests, benchmarks)
    code: int = 0            # the op's number in the GPU kernels' unary switch


UNARY = (
    Unary("exp", "unary", flops=1, torch="exp", code=0, doc="e**a.",
          numpy=np.exp, grad=lambda x, y, g: g * y, domain=(-3.0, 3.0)),
    Unary("log", "unary", flops=1, torch="log", code=1, doc="Natural log (-inf at 0, NaN below).",
          numpy=np.log, grad=lambda x, y, g: g / x, domain=(0.05, 4.0)),
    Unary("log1p", "unary", flops=1, torch="log1p", code=2,
          doc="log(1 + a), accurate for small |a|.",
          numpy=np.log1p, grad=lambda x, y, g: g / (x + 1.0), domain=(-0.9, 3.0)),
    Unary("sqrt", "unary", flops=1, torch="sqrt", code=3, doc="Square root, correctly rounded.",
          numpy=np.sqrt, grad=lambda x, y, g: g / (y * 2.0), domain=(0.05, 4.0)),
    Unary("rsqrt", "unary", flops=2, torch="rsqrt", code=4, doc="1 / sqrt(a) (inf at 0).",
          numpy=lambda a: 1 / np.sqrt(a), grad=lambda x, y, g: g * (y * y * y) * -0.5,
          domain=(0.05, 4.0)),
    Unary("abs", "unary", flops=1, torch="abs", code=5, doc="|a|.",
          numpy=np.abs, grad=lambda x, y, g: g * x.sign()),
    # Added through the registry alone (plus its two kernel branches), as the
    # module docstring describes: the worked example of adding an op.
    Unary("expm1", "unary", flops=1, torch="expm1", code=6,
          doc="e**a - 1, accurate for small |a|.",
          numpy=np.expm1, grad=lambda x, y, g: g * (y + 1.0), domain=(-3.0, 3.0)),
)

OPS = (
    # memory: not timed separately (full = empty + fill_)
    Op("is_array", "memory", timed=False), Op("to_device", "memory", timed=False),
    Op("to_host", "memory", timed=False), Op("empty", "memory", timed=False),
    Op("full", "memory", timed=False), Op("fill_", "memory", torch="fill_"),
    Op("copy_", "memory", flops=0, torch="copy_"), Op("astype", "memory", flops=0, torch="to"),
    # random
    Op("manual_seed", "random", timed=False), Op("get_rng_state", "random", timed=False),
    Op("set_rng_state", "random", timed=False),
    Op("random_normal", "random", flops=30, torch="normal_"),
    Op("random_uniform", "random", flops=20, torch="uniform_"),
    # glue
    Op("add", "glue", flops=1, torch="add"), Op("sub", "glue", flops=1, torch="sub"),
    Op("mul", "glue", flops=1, torch="mul"), Op("div", "glue", flops=1, torch="div"),
    Op("neg", "glue", flops=1, torch="neg"),
    Op("sum", "glue", torch="sum"), Op("mean", "glue", torch="mean"),
    Op("reshape", "view", timed=False), Op("broadcast_to", "view", timed=False),
    # primitives
    *UNARY,
    Op("pow_scalar", "elementwise", flops=1, torch="pow"),
    Op("clamp", "elementwise", flops=2, torch="clamp"),
    Op("maximum", "elementwise", flops=1, torch="maximum"),
    Op("minimum", "elementwise", flops=1, torch="minimum"),
    Op("where", "elementwise", flops=1, torch="where"),
    Op("compare", "elementwise", flops=1, torch="gt"),
    Op("amax", "reduction", torch="amax"), Op("amin", "reduction", torch="amin"),
    Op("argmax", "reduction", torch="argmax"), Op("argmin", "reduction", torch="argmin"),
    Op("var", "reduction", torch="var"),
    Op("matmul", "linalg", torch="matmul"),
    Op("permute", "view", timed=False), Op("slice", "view", timed=False),
    # convolution (the transposed ones derive from these three in the contract)
    Op("conv2d_forward", "conv", torch="conv2d"),
    Op("conv2d_backward_input", "conv", torch="convolution_backward"),
    Op("conv2d_backward_weight", "conv", torch="convolution_backward"),
    Op("conv2d_backward_bias", "conv", torch="sum"),
    Op("conv_transpose2d_forward", "conv_transpose", torch="conv_transpose2d"),
    Op("conv_transpose2d_backward_input", "conv_transpose", torch="convolution_backward"),
    Op("conv_transpose2d_backward_weight", "conv_transpose", torch="convolution_backward"),
    Op("conv_transpose2d_backward_bias", "conv_transpose", timed=False),  # = conv's
    # batch norm
    Op("batch_norm_train_forward", "batch_norm", torch="native_batch_norm"),
    Op("batch_norm_eval_forward", "batch_norm", torch="native_batch_norm"),
    Op("batch_norm_backward", "batch_norm", torch="native_batch_norm_backward"),
    # activations
    Op("leaky_relu_forward", "activation", flops=2, torch="leaky_relu"),
    Op("leaky_relu_backward", "activation", flops=2, torch="leaky_relu_backward"),
    Op("relu_forward", "activation", flops=1, torch="relu"),
    Op("relu_backward", "activation", flops=1, torch="threshold_backward"),
    Op("tanh_forward", "activation", flops=6, torch="tanh"),
    Op("tanh_backward", "activation", flops=8, torch="tanh_backward"),
    Op("sigmoid_forward", "activation", flops=4, torch="sigmoid"),
    Op("sigmoid_backward", "activation", flops=6, torch="sigmoid_backward"),
    # losses
    Op("bce_forward", "loss", flops=8, torch="binary_cross_entropy"),
    Op("bce_backward", "loss", flops=8, torch="binary_cross_entropy_backward"),
    Op("bce_with_logits_forward", "loss", flops=8, torch="binary_cross_entropy_with_logits"),
    Op("bce_with_logits_backward", "loss", flops=6, torch="(sigmoid(x) - t) * g / n"),
    # optimizers
    Op("adam_step_", "optimizer", torch="Adam(foreach=True)"),
    Op("sgd_step_", "optimizer", torch="SGD(foreach=True)"),
)

BY_NAME = {op.name: op for op in OPS}


def ops_in(*families):
    """The registry entries of these families, in registry order."""
    return [op for op in OPS if op.family in families]


def timed_ops():
    """Names of the contract functions the benchmarks time on their own."""
    return {op.name for op in OPS if op.timed}


def elementwise_flops():
    """FLOPs per output element of every op that has a count."""
    return {op.name: op.flops for op in OPS if op.flops is not None}
