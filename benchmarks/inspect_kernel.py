"""What one op launches, what each launch costs the GPU, and where the op
sits on the roofline: a teaching tool for the two GPU backends.

    python -m benchmarks.inspect_kernel --backend cupy --op conv2d_forward \\
        --x 128,64,32,32 --w 128,64,4,4 --stride 2 --padding 1
    python -m benchmarks.inspect_kernel --backend triton --op batch_norm_backward --x 128,128,16,16
    python -m benchmarks.inspect_kernel --backend cupy --op adam_step_ --x 128,64,4,4 128 128
    python -m benchmarks.inspect_kernel --backend cupy --op matmul --x 512,4096 --y 4096,1
    python -m benchmarks.inspect_kernel --backend triton --op exp --x 128,64,32,32
    python -m benchmarks.inspect_kernel --backend cupy --op var --x 128,64,32,32 --axis 0,2,3

The ops are every contract function kernels/registry.py marks timed, by
family (the same families as the benchmarks): conv, conv_transpose,
batch_norm, activation, loss, optimizer, glue, memory, random, and the
primitives' unary, elementwise, reduction and linalg. A new registry entry
of one of these families is inspectable with no edit here.

Shapes (comma-separated ints, as the contract's arrays; kernels/contract.py):
  --x SHAPE     the op's main input: conv2d_* the conv's input x (N, C, H, W)
                (the gradients' dy follows from x, --w and the geometry);
                conv_transpose2d_* the transposed conv's input x; batch norm,
                activations, BCE (p or logits), neg, sum/mean, add/sub/mul/div,
                the unary, elementwise and reduction primitives: the input
                (where: a); fill_, copy_, astype: the array written (copy_: dst);
                random_*: the shape drawn; matmul: a, (M, K) or (B, M, K).
                adam_step_ / sgd_step_: one shape per parameter
                (--x SHAPE [SHAPE ...]).
  --w SHAPE     conv weight: (K, C, KH, KW) for conv2d_*, (C_in, C_out, KH, KW)
                for conv_transpose2d_* (torch's layouts).
  --y SHAPE     the second operand (default: --x), broadcast: add/sub/mul/div,
                maximum/minimum, compare, where's b (the mask has the
                broadcast shape), copy_'s src. matmul: b, (K, N) or (B, K, N)
                (required).
Op flags: --stride/--padding/--dilation/--output-padding (an int or "h,w"),
--bias (conv2d_forward, conv_transpose2d_forward), --negative-slope
(leaky_relu), --reduction (BCE), --axis (sum/mean/amax/amin/var, e.g. 0,2,3;
argmax/argmin: one axis; default all), --correction (var, default 1),
--exponent (pow_scalar, default 2), --min/--max (clamp), --compare
(gt/ge/lt/le/eq, default gt), --transpose-x/--transpose-y (matmul: the
operand is a transposed view of an array stored the other way round, read
in place), --to (astype's dtype).
Common flags: --dtype float32|float64, --precision ieee|tf32 (float32
convolutions: exact FP32 or TF32 tensor cores), --time-ms T (a time you
measured: prints the achieved fraction), --run (also execute the kernels;
see 1. below).

What it prints:
1. Launch configuration: every kernel launch the op makes, in order, with
   its grid and its block (CUDA threads) or num_warps/num_stages and
   constexprs (Triton). They are recorded while the op is called once on
   random inputs of the requested shape. By default the kernels are only
   recorded, not run (the launchers still validate and allocate): a launch
   plan depends on shapes only, so a DCGAN-sized shape costs nothing even on
   the CPU emulators. --run executes them too. Under the CPU simulators
   (NN_CUDA_EMULATE=1, TRITON_INTERPRET=1; set here when no GPU is found)
   some launchers use smaller grids or larger blocks, because a simulated
   program is expensive (each module's launch_checks.Plan states that
   allowance); while the op is called (with or without --run) every plan
   is switched to its "gpu" profile, so the plan is a GPU's, and the header
   says which constants mattered.
2. Registers and shared memory per program, from an offline compile for
   sm_90 (no GPU needed): CUDA C through nvcc -cubin -Xptxas -v with the
   flags of tests/test_cuda_sources.py and exactly the recorded template
   instantiations; Triton through triton.compile for GPUTarget("cuda", 90,
   32) with the recorded specialization (in a subprocess without
   TRITON_INTERPRET), registers from Triton's bundled ptxas -v on the PTX,
   shared memory from the compiled metadata. From those, an occupancy
   estimate (programs per SM of an H100, what limits it, waves). Anything
   that cannot be determined prints "n/a" and the reason.
3. Roofline: FLOPs and compulsory bytes from benchmarks/cost.py, arithmetic
   intensity, and the peaks of the newest benchmarks/results/*.json whose
   meta.device matches this device kind and has meta.peaks ({"flops":
   {"fp32", "tf32", ...} in FLOP/s, "bandwidth" in bytes/s}), else H100 SXM
   datasheet values, labelled as such. Prints the ridge point, whether the
   op is compute- or memory-bound, the attainable FLOP/s and the time that
   implies; with --time-ms, the achieved FLOP/s and bandwidth as fractions.
"""

import argparse
import contextlib
import datetime
import glob
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # also runnable as a script
    sys.path.insert(0, ROOT)

from benchmarks import aot, cost  # noqa: E402
from kernels import debug, registry  # noqa: E402

RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")

# H100 SXM5 datasheet peaks (dense, no sparsity), used when no measured
# peaks exist for this device. FP64 is the non-tensor-core rate: our
# float64 kernels use no tensor cores.
DATASHEET = {"label": "H100 SXM datasheet",
             "flops": {"fp32": 67e12, "tf32": 495e12, "fp64": 34e12},
             "bandwidth": 3.35e12}

# sm_90 (H100) per-SM limits, for the occupancy estimate (CUDA occupancy
# calculator's rules: registers are allocated per warp in units of 256;
# each block also reserves 1 KB of shared memory).
SM90 = {"sms": 132, "regs": 65536, "reg_unit": 256, "threads": 2048, "blocks": 32,
        "smem": 228 * 1024, "smem_per_block": 227 * 1024, "smem_reserved": 1024}
TARGET_CAPABILITY = 90

# nvcc flags of tests/test_cuda_sources.py (what CI compiles), plus -Xptxas -v
# for the resource report.
NVCC_FLAGS = ["-arch=sm_90", "-std=c++17", "-Werror", "all-warnings", "-cubin", "-Xptxas", "-v"]


# ============================================================ the ops
class Case:
    """One op call on concrete inputs: how to run it and what it costs."""

    def __init__(self, summary, run, flops, nbytes, flops_note, gemm):
        self.summary = summary        # shapes and arguments, one line
        self.run = run                # calls the backend once
        self.flops = int(flops)
        self.bytes = int(nbytes)
        self.flops_note = flops_note  # how the FLOPs were counted
        self.gemm = gemm              # tensor cores apply (TF32 peak under --precision tf32)


def _shape(text):
    try:
        dims = tuple(int(v) for v in text.split(",") if v.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"a shape is comma-separated ints, got {text!r}")
    if any(d < 0 for d in dims):
        raise argparse.ArgumentTypeError(f"negative dimension in {text!r}")
    return dims


def _pair(text):
    v = _shape(text)
    if len(v) == 1:
        return (v[0], v[0])
    if len(v) != 2:
        raise argparse.ArgumentTypeError(f"expected an int or h,w, got {text!r}")
    return v


def _fmt(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


class UsageError(ValueError):
    """Bad shapes or flags for the chosen op: printed as an argparse error."""


def _one_x(a, ndim=None):
    if len(a.x) != 1:
        raise UsageError(f"{a.op} takes one --x shape, got {len(a.x)}")
    x = a.x[0]
    if ndim is not None and len(x) != ndim:
        raise UsageError(f"{a.op}: --x must have {ndim} dimensions, got {_fmt(x)}")
    return x


def _conv_case(a, B, arr):
    from kernels.conv_geometry import conv_output_size, conv_transpose_output_size
    x = _one_x(a, 4)
    if a.w is None or len(a.w) != 4:
        raise UsageError(f"{a.op} needs --w with 4 dimensions")
    w, s, p, d = a.w, a.stride, a.padding, a.dilation
    N = x[0]
    geo = f"stride {_fmt(s)}, padding {_fmt(p)}, dilation {_fmt(d)}"
    if a.op.startswith("conv2d"):
        K, C, KH, KW = w
        if x[1] != C:
            raise UsageError(f"x has {x[1]} channels, w expects C = {C}")
        y = (N, K) + conv_output_size(x[2:], (KH, KW), s, p, d)
        if min(y) <= 0:
            raise UsageError(f"the output {_fmt(y)} is empty")
        flops = cost.conv_gemm_flops(x, w, y)
        note = "GEMM work 2*N*K*OH*OW*C*KH*KW (benchmarks/cost.py)"
        bias = arr((K,)) if a.bias and a.op == "conv2d_forward" else None
        X, Wt, Y = arr(x), arr(w), arr(y)
        if a.op == "conv2d_forward":
            run = lambda: B.conv2d_forward(X, Wt, bias, s, p, d)  # noqa: E731
            io = [x, w, y] + ([(K,)] if bias is not None else [])
            summary = f"x {_fmt(x)}, w {_fmt(w)}{', bias' if bias is not None else ''}, {geo} -> y {_fmt(y)}"
        elif a.op == "conv2d_backward_input":
            run = lambda: B.conv2d_backward_input(Y, Wt, x[2:], s, p, d)  # noqa: E731
            io = [y, w, x]
            summary = f"dy {_fmt(y)}, w {_fmt(w)}, {geo} -> dx {_fmt(x)}"
        elif a.op == "conv2d_backward_weight":
            run = lambda: B.conv2d_backward_weight(Y, X, (KH, KW), s, p, d)  # noqa: E731
            io = [y, x, w]
            summary = f"dy {_fmt(y)}, x {_fmt(x)}, {geo} -> dw {_fmt(w)}"
        else:  # conv2d_backward_bias: a reduction, not a GEMM
            run = lambda: B.conv2d_backward_bias(Y)  # noqa: E731
            flops, nbytes = cost.reduction(y, (K,), a.dtype)
            return Case(f"dy {_fmt(y)} -> db ({K},)", run, flops, nbytes,
                        "one add per element of dy", gemm=False)
        return Case(summary, run, flops, cost.nbytes(io, a.dtype), note, gemm=True)

    # Transposed conv: x (N, C_in, H, W), w (C_in, C_out, KH, KW). Counted on
    # its direct-conv side (cost.py): the conv from y-shaped images to x.
    Cin, Cout, KH, KW = w
    if x[1] != Cin:
        raise UsageError(f"x has {x[1]} channels, w expects C_in = {Cin}")
    op_ = a.output_padding
    y = (N, Cout) + conv_transpose_output_size(x[2:], (KH, KW), s, p, op_, d)
    if min(y) <= 0:
        raise UsageError(f"the output {_fmt(y)} is empty")
    flops = cost.conv_gemm_flops(y, w, x)
    note = "GEMM work of the direct conv it transposes, 2*N*C_in*H*W*C_out*KH*KW (cost.py)"
    X, Wt, Y = arr(x), arr(w), arr(y)
    geo += f", output_padding {_fmt(op_)}"
    if a.op == "conv_transpose2d_forward":
        bias = arr((Cout,)) if a.bias else None
        run = lambda: B.conv_transpose2d_forward(X, Wt, bias, s, p, op_, d)  # noqa: E731
        io = [x, w, y] + ([(Cout,)] if bias is not None else [])
        summary = f"x {_fmt(x)}, w {_fmt(w)}{', bias' if bias is not None else ''}, {geo} -> y {_fmt(y)}"
    elif a.op == "conv_transpose2d_backward_input":
        run = lambda: B.conv_transpose2d_backward_input(Y, Wt, x[2:], s, p, d)  # noqa: E731
        io = [y, w, x]
        summary = f"dy {_fmt(y)}, w {_fmt(w)}, {geo} -> dx {_fmt(x)}"
    else:
        run = lambda: B.conv_transpose2d_backward_weight(Y, X, (KH, KW), s, p, d)  # noqa: E731
        io = [y, x, w]
        summary = f"dy {_fmt(y)}, x {_fmt(x)}, {geo} -> dw {_fmt(w)}"
    return Case(summary, run, flops, cost.nbytes(io, a.dtype), note, gemm=True)


def _bn_case(a, B, arr):
    x = _one_x(a, 4)
    C = x[1]
    X = arr(x)
    weight, bias = arr((C,)), arr((C,))
    flops, nbytes = cost.batch_norm(a.op, x, a.dtype)
    note = "per element: train forward 7, eval forward 4, backward 9 (cost.py)"
    if a.op == "batch_norm_train_forward":
        rm, rv = arr((C,)), arr((C,), positive=True)
        run = lambda: B.batch_norm_train_forward(X, weight, bias, rm, rv, 0.1, 1e-5)  # noqa: E731
        summary = f"x {_fmt(x)}, affine, running stats (momentum 0.1, eps 1e-5) -> y {_fmt(x)}"
    elif a.op == "batch_norm_eval_forward":
        rm, rv = arr((C,)), arr((C,), positive=True)
        run = lambda: B.batch_norm_eval_forward(X, weight, bias, rm, rv, 1e-5)  # noqa: E731
        summary = f"x {_fmt(x)}, affine, running stats (eps 1e-5) -> y {_fmt(x)}"
    else:
        dy, mean, invstd = arr(x), arr((C,)), arr((C,), positive=True)
        run = lambda: B.batch_norm_backward(dy, X, weight, mean, invstd, True)  # noqa: E731
        summary = f"dy {_fmt(x)}, x {_fmt(x)}, affine, training -> dx {_fmt(x)}, dweight, dbias ({C},)"
    return Case(summary, run, flops, nbytes, note, gemm=False)


def _activation_case(a, B, arr):
    x = _one_x(a)
    name, direction = a.op.rsplit("_", 1)
    X, dY = arr(x), arr(x)
    extra = (a.negative_slope,) if name == "leaky_relu" else ()
    if direction == "forward":
        run = lambda: getattr(B, a.op)(X, *extra)  # noqa: E731
        flops, nbytes = cost.elementwise(a.op, x, 1, 1, a.dtype)
        summary = f"x {_fmt(x)} -> y"
    else:
        run = lambda: getattr(B, a.op)(dY, X, *extra)  # noqa: E731
        flops, nbytes = cost.elementwise(a.op, x, 2, 1, a.dtype)
        summary = f"dy {_fmt(x)}, {'y' if name == 'relu' else 'x'} {_fmt(x)} -> dx"
    if extra:
        summary += f", negative_slope {a.negative_slope}"
    return Case(summary, run, flops, nbytes,
                f"{cost.EW_FLOPS.get(a.op, 1)} per element (cost.EW_FLOPS)", gemm=False)


def _bce_case(a, B, arr):
    x = _one_x(a)
    red = a.reduction
    logits = "with_logits" in a.op
    P = arr(x) if logits else arr(x, unit=True)
    T = arr(x, unit=True)
    loss_shape = x if red == "none" else ()
    n = int(np.prod(x, dtype=np.int64))
    flops = cost.EW_FLOPS.get(a.op, 1) * n
    what = "logits" if logits else "p"
    if a.op.endswith("forward"):
        run = lambda: getattr(B, a.op)(P, T, red)  # noqa: E731
        io = [x, x, loss_shape]
        summary = f"{what} {_fmt(x)}, target {_fmt(x)}, reduction {red!r} -> loss {_fmt(loss_shape)}"
    else:
        dL = arr(loss_shape)
        run = lambda: getattr(B, a.op)(dL, P, T, red, False)  # noqa: E731
        io = [loss_shape, x, x, x]
        summary = (f"dloss {_fmt(loss_shape)}, {what} {_fmt(x)}, target {_fmt(x)}, "
                   f"reduction {red!r} -> d{what} {_fmt(x)} (no target grad)")
    return Case(summary, run, flops, cost.nbytes(io, a.dtype),
                f"{cost.EW_FLOPS.get(a.op, 1)} per element (cost.EW_FLOPS)", gemm=False)


def _optim_case(a, B, arr):
    shapes = list(a.x)
    numels = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    params, grads = [arr(s) for s in shapes], [arr(s) for s in shapes]
    desc = ", ".join(_fmt(s) for s in shapes)
    if a.op == "adam_step_":
        m, v = [arr(s) for s in shapes], [arr(s, positive=True) for s in shapes]
        run = lambda: B.adam_step_(params, grads, m, v, [1] * len(shapes), 2e-4, 0.5, 0.999,  # noqa: E731
                                   1e-8, 0.0)
        flops, nbytes = cost.adam(numels, a.dtype)
        summary = f"{len(shapes)} parameter(s) {desc}; lr 2e-4, betas (0.5, 0.999), step 1"
        note = "~12 per element (cost.adam)"
    else:
        bufs = [arr(s) for s in shapes]
        run = lambda: B.sgd_step_(params, grads, bufs, [False] * len(shapes), 0.01, 0.9,  # noqa: E731
                                  0.0, 0.0, False)
        flops, nbytes = cost.sgd(numels, a.dtype)
        summary = f"{len(shapes)} parameter(s) {desc}; lr 0.01, momentum 0.9"
        note = "~5 per element (cost.sgd)"
    return Case(summary, run, flops, nbytes, note, gemm=False)


def _axes(a, x):
    """(axis, reduced shape) of --axis for an input of shape x: None (all)
    or a tuple of distinct axes in range."""
    if a.axis is None:
        return None, ()
    axis = tuple(a.axis)
    if any(not 0 <= ax < len(x) for ax in axis) or len(set(axis)) != len(axis):
        raise UsageError(f"--axis {axis}: distinct axes in [0, {len(x)}) expected for "
                         f"{len(x)} dimensions")
    return axis, tuple(d for i, d in enumerate(x) if i not in axis)


def _glue_case(a, B, arr):
    x = _one_x(a)
    X = arr(x)
    if a.op in ("sum", "mean"):
        axis, out = _axes(a, x)
        run = lambda: getattr(B, a.op)(X, axis, False)  # noqa: E731
        flops, nbytes = cost.reduction(x, out, a.dtype)
        return Case(f"x {_fmt(x)}, axis {axis} -> {_fmt(out)}", run, flops, nbytes,
                    "one add per input element (cost.reduction)", gemm=False)
    if a.op == "neg":
        run = lambda: B.neg(X)  # noqa: E731
        flops, nbytes = cost.elementwise("neg", x, 1, 1, a.dtype)
        return Case(f"x {_fmt(x)} -> -x", run, flops, nbytes, "1 per element", gemm=False)
    y = a.y or x
    try:
        out = np.broadcast_shapes(x, y)
    except ValueError:
        raise UsageError(f"--x {_fmt(x)} and --y {_fmt(y)} do not broadcast")
    Y = arr(y)
    run = lambda: getattr(B, a.op)(X, Y)  # noqa: E731
    n = int(np.prod(out, dtype=np.int64))
    return Case(f"a {_fmt(x)}, b {_fmt(y)} -> {_fmt(out)}", run, n * cost.EW_FLOPS.get(a.op, 1),
                cost.nbytes([x, y, out], a.dtype), "1 per output element", gemm=False)


def _ew_note(op):
    return f"{cost.EW_FLOPS.get(op, 1)} per output element (the registry's flops)"


def _broadcast(x, y):
    try:
        return tuple(np.broadcast_shapes(x, y))
    except ValueError:
        raise UsageError(f"--x {_fmt(x)} and --y {_fmt(y)} do not broadcast")


def _unary_case(a, B, arr):
    x = _one_x(a)
    lo, hi = registry.BY_NAME[a.op].domain
    X = arr(x, domain=(lo, hi))
    run = lambda: getattr(B, a.op)(X)  # noqa: E731
    flops, nbytes = cost.elementwise(a.op, x, 1, 1, a.dtype)
    return Case(f"x {_fmt(x)} in [{lo:g}, {hi:g}) (the registry's domain) -> {a.op}(x)", run,
                flops, nbytes, _ew_note(a.op), gemm=False)


def _elementwise_case(a, B, arr):
    """pow_scalar, clamp, where, compare; any other op of the family is
    binary, op(x, y), as maximum and minimum."""
    x = _one_x(a)
    if a.op == "pow_scalar":
        X = arr(x, positive=not float(a.exponent).is_integer())
        run = lambda: B.pow_scalar(X, a.exponent)  # noqa: E731
        flops, nbytes = cost.elementwise(a.op, x, 1, 1, a.dtype)
        return Case(f"x {_fmt(x)} ** {a.exponent:g}", run, flops, nbytes, _ew_note(a.op),
                    gemm=False)
    if a.op == "clamp":
        if a.min is None and a.max is None:
            raise UsageError("clamp needs --min and/or --max")
        X = arr(x)
        run = lambda: B.clamp(X, a.min, a.max)  # noqa: E731
        flops, nbytes = cost.elementwise(a.op, x, 1, 1, a.dtype)
        return Case(f"x {_fmt(x)} clamped to [{a.min}, {a.max}]", run, flops, nbytes,
                    _ew_note(a.op), gemm=False)
    y = a.y or x
    out = _broadcast(x, y)
    X, Y = arr(x), arr(y)
    if a.op == "where":
        mask = arr(out, mask=True)
        run = lambda: B.where(mask, X, Y)  # noqa: E731
        flops, nbytes = cost.elementwise_io(a.op, out, [(out, np.bool_), (x, a.dtype),
                                                        (y, a.dtype)], [(out, a.dtype)])
        return Case(f"mask {_fmt(out)} (bool), a {_fmt(x)}, b {_fmt(y)} -> {_fmt(out)}", run,
                    flops, nbytes, _ew_note(a.op), gemm=False)
    if a.op == "compare":
        run = lambda: B.compare(a.compare, X, Y)  # noqa: E731
        flops, nbytes = cost.elementwise_io(a.op, out, [(x, a.dtype), (y, a.dtype)],
                                            [(out, np.bool_)])
        return Case(f"a {_fmt(x)} {a.compare} b {_fmt(y)} -> bool {_fmt(out)}", run, flops,
                    nbytes, _ew_note(a.op), gemm=False)
    run = lambda: getattr(B, a.op)(X, Y)  # noqa: E731
    return Case(f"a {_fmt(x)}, b {_fmt(y)} -> {_fmt(out)}", run,
                cost.elementwise(a.op, out, 0, 0, a.dtype)[0],
                cost.nbytes([x, y, out], a.dtype), _ew_note(a.op), gemm=False)


def _reduction_case(a, B, arr):
    """argmax/argmin (one axis or the flattened array, int64 out), var
    (--correction); any other op of the family is op(x, axis, keepdims)."""
    x = _one_x(a)
    X = arr(x)
    note = f"{cost.REDUCTION_FLOPS.get(a.op, 1)} per input element (cost.REDUCTION_FLOPS)"
    if a.op in ("argmax", "argmin"):
        if a.axis is not None and len(a.axis) != 1:
            raise UsageError(f"{a.op} takes one --axis (an int), or none for the flattened array")
        axis, out = _axes(a, x)
        axis = None if axis is None else axis[0]
        run = lambda: getattr(B, a.op)(X, axis, False)  # noqa: E731
        flops, nbytes = cost.reduction(x, out, a.dtype, a.op, np.int64)
        return Case(f"x {_fmt(x)}, axis {axis} -> int64 {_fmt(out)}", run, flops, nbytes, note,
                    gemm=False)
    axis, out = _axes(a, x)
    if a.op == "var":
        run = lambda: B.var(X, axis, False, a.correction)  # noqa: E731
        extra = f", correction {a.correction}"
    else:
        run = lambda: getattr(B, a.op)(X, axis, False)  # noqa: E731
        extra = ""
    flops, nbytes = cost.reduction(x, out, a.dtype, a.op)
    return Case(f"x {_fmt(x)}, axis {axis}{extra} -> {_fmt(out)}", run, flops, nbytes, note,
                gemm=False)


def _matmul_case(a, B, arr):
    x = _one_x(a)
    y = a.y
    if y is None:
        raise UsageError(f"{a.op} needs --y: --x M,K --y K,N, or --x B,M,K --y B,K,N")
    if len(x) not in (2, 3) or len(y) != len(x):
        raise UsageError(f"{a.op}: --x and --y must both be 2-D or both 3-D, got {_fmt(x)} "
                         f"and {_fmt(y)}")
    if x[-1] != y[-2]:
        raise UsageError(f"{a.op}: inner dimensions differ: {_fmt(x)} @ {_fmt(y)}")
    if len(x) == 3 and x[0] != y[0]:
        raise UsageError(f"{a.op}: batch sizes differ: {_fmt(x)} @ {_fmt(y)}")

    def operand(shape, transposed):
        if not transposed:
            return arr(shape)
        n = len(shape)
        stored = arr(shape[:-2] + (shape[-1], shape[-2]))
        return B.permute(stored, tuple(range(n - 2)) + (n - 1, n - 2))

    X, Y = operand(x, a.transpose_x), operand(y, a.transpose_y)
    batch = x[0] if len(x) == 3 else 1
    (M, K), N = x[-2:], y[-1]
    out = x[:-1] + (N,)
    run = lambda: getattr(B, a.op)(X, Y)  # noqa: E731
    flops, nbytes = cost.matmul(M, K, N, batch, a.dtype)
    tx = " (transposed view)" if a.transpose_x else ""
    ty = " (transposed view)" if a.transpose_y else ""
    return Case(f"a {_fmt(x)}{tx} @ b {_fmt(y)}{ty} -> c {_fmt(out)}", run, flops, nbytes,
                "2*B*M*N*K (cost.matmul)", gemm=True)


def _memory_case(a, B, arr):
    x = _one_x(a)
    X = arr(x)
    if a.op == "fill_":
        run = lambda: B.fill_(X, 0.5)  # noqa: E731
        return Case(f"x {_fmt(x)} <- 0.5 (in place)", run, 0, cost.nbytes([x], a.dtype),
                    "none: data movement", gemm=False)
    if a.op == "copy_":
        y = a.y or x
        if _broadcast(x, y) != tuple(x):
            raise UsageError(f"copy_: src --y {_fmt(y)} must broadcast to dst --x {_fmt(x)}")
        Y = arr(y)
        run = lambda: B.copy_(X, Y)  # noqa: E731
        return Case(f"dst {_fmt(x)} <- src {_fmt(y)} (in place)", run, 0,
                    cost.nbytes([x, y], a.dtype), "none: data movement", gemm=False)
    if a.op == "astype":
        to = np.dtype(a.to or ("float64" if a.dtype == np.float32 else "float32"))
        run = lambda: B.astype(X, to)  # noqa: E731
        return Case(f"x {_fmt(x)} {a.dtype.name} -> {to.name}", run, 0,
                    cost.nbytes([x], a.dtype) + cost.nbytes([x], to), "none: data movement",
                    gemm=False)
    raise UsageError(f"{a.op}: no inspect builder for this memory function")


def _random_case(a, B, arr):
    x = _one_x(a)
    if a.op == "random_normal":
        run = lambda: B.random_normal(x, 0.0, 1.0, a.dtype)  # noqa: E731
        what = "N(0, 1)"
    else:
        run = lambda: B.random_uniform(x, -1.0, 1.0, a.dtype)  # noqa: E731
        what = "U[-1, 1)"
    flops, nbytes = cost.elementwise(a.op, x, 0, 1, a.dtype)
    return Case(f"{_fmt(x)} samples of {what}", run, flops, nbytes,
                f"{cost.EW_FLOPS.get(a.op, 1)} per sample (Philox rounds and transform)",
                gemm=False)


# The case builder of each registry family; OPS (op name -> builder) is every
# timed op of these families, in the registry's order.
BUILDERS = {"memory": _memory_case, "random": _random_case, "glue": _glue_case,
            "unary": _unary_case, "elementwise": _elementwise_case,
            "reduction": _reduction_case, "linalg": _matmul_case, "conv": _conv_case,
            "conv_transpose": _conv_case, "batch_norm": _bn_case,
            "activation": _activation_case, "loss": _bce_case, "optimizer": _optim_case}
OPS = {op.name: BUILDERS[op.family] for op in registry.OPS
       if op.timed and op.family in BUILDERS}


def build_case(a, B, random=True):
    """The Case for the parsed arguments `a` on backend instance `B`. With
    random=False every array holds one valid value (cheap at large shapes;
    enough when the kernels are recorded, not run)."""
    rng = np.random.default_rng(0)

    def arr(shape, positive=False, unit=False, domain=None, mask=False):
        # Values only matter with --run: keep them where every op is defined
        # (variances and invstd positive, probabilities inside (0, 1), a
        # unary op's inputs in its registry domain).
        if not random:
            value = (True if mask else 0.5 * (domain[0] + domain[1]) if domain is not None
                     else 0.5)
            return B.to_device(np.full(shape, value), np.bool_ if mask else a.dtype)
        if mask:
            return B.to_device(rng.random(size=shape) < 0.5, np.bool_)
        if domain is not None:
            host = rng.uniform(*domain, size=shape)
        elif unit:
            host = rng.uniform(0.05, 0.95, size=shape)
        else:
            host = rng.standard_normal(size=shape)
            if positive:
                host = np.abs(host) + 0.5
        return B.to_device(host, a.dtype)

    return OPS[a.op](a, B, arr)


# ============================================================ recording
@contextlib.contextmanager
def record_cuda(record_only):
    """Launches of the CUDA C backend, through runtime.py's recording hook:
    a list of dicts, each appended as its launch happens."""
    from kernels.cuda import runtime
    launches = []

    class Appender:  # runtime.py appends (filename, name, grid, block) tuples
        def append(self, launch):
            filename, name, grid, block = launch
            launches.append({"module": filename, "name": name, "grid": grid, "block": block})

    saved = runtime.recorder, runtime.record_only
    runtime.recorder, runtime.record_only = Appender(), bool(record_only)
    try:
        yield launches
    finally:
        runtime.recorder, runtime.record_only = saved


def _serialize_arg(v):
    """A Triton kernel argument as JSON: what its specialization depends on."""
    if hasattr(v, "data_ptr") and hasattr(v, "dtype"):  # a torch view of an array
        # Triton specializes pointers on 16-byte alignment (tt.divisibility).
        return {"tensor": str(v.dtype).replace("torch.", ""), "aligned": v.data_ptr() % 16 == 0}
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    # Recorded all the same (the launch must go on); its compile job reports n/a.
    return {"unsupported": type(v).__name__, "repr": repr(v)[:80]}


@contextlib.contextmanager
def record_triton(record_only):
    """Launches of Triton kernels: `kernel[grid](*args, **kwargs)` goes through
    KernelInterface.__getitem__ for both JITFunction (GPU) and
    InterpretedFunction (TRITON_INTERPRET=1), so wrapping it there sees every
    launch with its grid, arguments, constexprs and options."""
    from triton.runtime.jit import KernelInterface
    launches = []
    original = KernelInterface.__getitem__

    def getitem(self, grid):
        def launch(*args, **kwargs):
            fn = self.fn
            params = list(inspect.signature(fn).parameters.values())
            bound = dict(zip([p.name for p in params], args))
            bound.update(kwargs)
            g = grid(bound) if callable(grid) else grid
            g = tuple(int(e) for e in g) + (1,) * (3 - len(g))
            constexpr = {p.name for p in params if "constexpr" in str(p.annotation)}
            launches.append({
                "module": fn.__module__, "qualname": fn.__qualname__, "grid": g,
                "constexprs": {k: _serialize_arg(v) for k, v in bound.items() if k in constexpr},
                "args": [_serialize_arg(v) for v in args],
                "kwargs": {k: _serialize_arg(v) for k, v in kwargs.items()},
            })
            if not record_only:
                return original(self, grid)(*args, **kwargs)
            debug.stand_in(list(args) + list(kwargs.values()))
        return launch

    KernelInterface.__getitem__ = getitem
    try:
        yield launches
    finally:
        KernelInterface.__getitem__ = original


@contextlib.contextmanager
def gpu_plan(modules):
    """Temporarily give the launchers of `modules` their GPU constants (a
    launcher whose constants depend on the device declares them in a
    launch_checks.Plan; the others have none); yields what changed, as text."""
    from kernels import launch_checks
    planned = [p for p in launch_checks.PLANS if p.module in modules]
    with launch_checks.use_profile("gpu", planned) as changes:
        yield changes


# ============================================================ offline resources
# ptxas -v's report, parsed in one place (benchmarks/aot.py).
parse_ptxas = aot.parse_ptxas


def _nvcc():
    return shutil.which("nvcc") or next(
        (p for p in ("/usr/local/cuda/bin/nvcc",) if os.path.exists(p)), None)


def _demangler():
    for name in ("cu++filt", "c++filt"):
        path = shutil.which(name) or (os.path.exists(f"/usr/local/cuda/bin/{name}")
                                      and f"/usr/local/cuda/bin/{name}")
        if path:
            return path
    return None


def _kernel_expression(demangled):
    """'void f<float, 64>(float const*, ...)' -> 'f<float,64>' (spaces dropped),
    comparable with a name expression."""
    text = demangled.strip()
    if text.startswith("void "):
        text = text[5:]
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "(" and depth == 0:
            text = text[:i]
            break
    return text.replace(" ", "")


def cuda_resources(launches):
    """{kernel name expression: resources dict, or a string saying why n/a}.
    One nvcc run per .cu file, instantiating exactly the recorded kernels."""
    from kernels.cuda import runtime
    result, header = {}, None
    by_module = {}
    for L in launches:
        by_module.setdefault(L["module"], [])
        if L["name"] not in by_module[L["module"]]:
            by_module[L["module"]].append(L["name"])
    nvcc = _nvcc()
    if nvcc is None:
        return {n: "n/a: nvcc not found (install the CUDA toolkit to compile offline)"
                for names in by_module.values() for n in names}, None
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    release = re.search(r"release ([\d.]+)", version)
    header = (f"nvcc {release.group(1) if release else '?'} {' '.join(NVCC_FLAGS)} "
              f"(CuPy compiles the same source with NVRTC on a GPU: counts may differ slightly)")
    demangle = _demangler()
    for filename, names in by_module.items():
        with tempfile.TemporaryDirectory() as tmp:
            tu = os.path.join(tmp, "tu.cu")
            refs = ",\n    ".join(f"(void*)&{e}" for e in names)
            with open(tu, "w") as f:
                f.write(f'#include "{filename}"\n\nvoid* nn_instances[] = {{\n    {refs}\n}};\n')
            cmd = [nvcc, *NVCC_FLAGS, f"-I{runtime.HERE}", "-o", os.path.join(tmp, "out.cubin"), tu]
            proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            for n in names:
                result[n] = f"n/a: nvcc failed on {filename}: {proc.stderr.strip()[-300:]}"
            continue
        found = parse_ptxas(proc.stdout + proc.stderr)
        mangled = list(found)
        readable = {}
        if demangle and mangled:
            out = subprocess.run([demangle], input="\n".join(mangled), capture_output=True,
                                 text=True).stdout.splitlines()
            readable = {_kernel_expression(d): m for m, d in zip(mangled, out)}
        for n in names:
            key = n.replace(" ", "")
            if key in readable:
                result[n] = found[readable[key]]
                continue
            # No demangler: a kernel whose base name is unique among this
            # file's recorded ones can still be found by that name fragment.
            base = n.split("<")[0]
            same_base = [e for e in names if e.split("<")[0] == base]
            hits = [m for m in mangled if f"{len(base)}{base}" in m]
            if len(same_base) == 1 and len(hits) == 1:
                result[n] = found[hits[0]]
            else:
                result[n] = ("n/a: could not match the kernel to nvcc's mangled names "
                             "(no c++filt / cu++filt to demangle them)")
    return result, header


def triton_jobs(launches):
    """The compile job of each launch (one per distinct specialization)."""
    return aot.jobs_of(launches)


def triton_resources(launches):
    """[resources dict or 'n/a: ...' string] per launch, compiled offline for
    sm_90 by benchmarks/aot.py's workers (processes that import the kernels
    without TRITON_INTERPRET: under it @triton.jit gives interpreter objects,
    which Triton's compiler cannot take)."""
    jobs = triton_jobs(launches)
    unique = []
    for j in jobs:
        if j not in unique:
            unique.append(j)
    results, header = aot.compile_jobs(unique, workers=1)
    by_job = {json.dumps(j, sort_keys=True): r for j, r in zip(unique, results)}
    return [by_job[json.dumps(j, sort_keys=True)] for j in jobs], header


def occupancy(threads, regs, smem):
    """(programs resident per SM, what limits it) on an H100, or (0, why)."""
    warps = -(-threads // 32)
    per_warp = -(-regs * 32 // SM90["reg_unit"]) * SM90["reg_unit"]
    if smem > SM90["smem_per_block"]:
        return 0, f"{smem} B of shared memory exceed the 227 KB per block"
    limits = {
        "threads": SM90["threads"] // threads,
        "registers": (SM90["regs"] // per_warp) // warps if regs else SM90["blocks"],
        "shared memory": (SM90["smem"] // (smem + SM90["smem_reserved"])) if smem else SM90["blocks"],
        "blocks/SM": SM90["blocks"],
    }
    limiter = min(limits, key=lambda k: limits[k])
    return limits[limiter], limiter


# ============================================================ roofline
def _same_device(a, b):
    a, b = a.lower(), b.lower()
    if a in b or b in a:
        return True
    model = re.compile(r"\b[a-z]\d{2,4}\b")  # h100, a100, l40 ...
    ma, mb = model.findall(a), model.findall(b)
    return bool(ma) and ma[:1] == mb[:1]


def load_peaks(device_kind, results_dir=RESULTS_DIR):
    """(peaks, label): the newest results JSON for this device kind with
    meta.peaks, or the datasheet."""
    best = None
    for path in glob.glob(os.path.join(results_dir, "*.json")):
        try:
            with open(path) as f:
                meta = json.load(f).get("meta", {})
        except (OSError, ValueError, AttributeError):
            continue
        peaks = meta.get("peaks") if isinstance(meta, dict) else None
        if not isinstance(peaks, dict) or not _same_device(str(meta.get("device", "")), device_kind):
            continue
        if not isinstance(peaks.get("flops"), dict) or not peaks.get("bandwidth"):
            continue
        when = str(meta.get("date") or datetime.datetime.fromtimestamp(
            os.path.getmtime(path), datetime.timezone.utc).isoformat())
        if best is None or when > best[0]:
            best = (when, path, meta, peaks)
    if best is None:
        return DATASHEET, DATASHEET["label"]
    when, path, meta, peaks = best
    label = (f"measured: {os.path.relpath(path, ROOT)} ({meta.get('device')}, {when[:10]})")
    return {"flops": peaks["flops"], "bandwidth": float(peaks["bandwidth"])}, label


def _si(v, unit):
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}{unit}"
    return f"{v:.3g} {unit}"


def roofline_lines(case, peaks, label, dtype, precision, time_ms):
    # Which compute roof: tensor cores only serve float32 GEMMs under tf32;
    # everything else runs on the FP32 (or FP64) pipes.
    if np.dtype(dtype) == np.float64:
        kind, why = "fp64", "float64"
    elif case.gemm and precision == "tf32":
        kind, why = "tf32", "float32 GEMM, --precision tf32"
    else:
        kind, why = "fp32", "float32" + ("" if case.gemm else ", not a GEMM")
    flops_peak = peaks["flops"].get(kind)
    source = label
    if flops_peak is None:  # e.g. measured peaks without an fp64 entry
        flops_peak = DATASHEET["flops"][kind]
        source = f"{label}; {kind.upper()} from the {DATASHEET['label']}"
    flops_peak, bw = float(flops_peak), float(peaks["bandwidth"])
    lines = [f"peaks        {kind.upper()} {_si(flops_peak, 'FLOP/s')} ({why}), memory "
             f"{_si(bw, 'B/s')}  [{source}]",
             f"FLOPs        {_si(case.flops, 'FLOP')}  ({case.flops_note})",
             f"bytes        {_si(case.bytes, 'B')}  (compulsory: each input read once, each "
             f"output written once; real kernels move more)"]
    ridge = flops_peak / bw
    if case.bytes == 0 or case.flops == 0:
        lines.append("intensity    n/a: the op moves no bytes or does no FLOPs at this shape")
        return lines
    bound, attainable = cost.roofline(case.flops, case.bytes, flops_peak, bw)
    side = ">=" if bound == "compute" else "<"
    lines += [f"intensity    {case.flops / case.bytes:.2f} FLOP/B",
              f"ridge point  {ridge:.1f} FLOP/B  (peak FLOP/s / peak B/s)",
              f"bound        {bound}-bound (intensity {side} ridge point)"]
    t_min = max(case.flops / flops_peak, case.bytes / bw)
    lines.append(f"attainable   {_si(attainable, 'FLOP/s')} = {100 * attainable / flops_peak:.1f}% "
                 f"of peak FLOP/s; time >= {t_min * 1e6:.3g} us")
    if time_ms is not None:
        t = time_ms * 1e-3
        achieved, bytes_s = case.flops / t, case.bytes / t
        lines.append(f"achieved     {_si(achieved, 'FLOP/s')} in {time_ms:g} ms = "
                     f"{100 * achieved / attainable:.1f}% of attainable, "
                     f"{100 * achieved / flops_peak:.1f}% of peak FLOP/s; "
                     f"{_si(bytes_s, 'B/s')} = {100 * bytes_s / bw:.1f}% of peak bandwidth")
    return lines


# ============================================================ printing
def _table(rows, indent="  "):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def _triton_option(L, name):
    """(value, text) of a Triton launch option, Triton's default when the
    launcher does not pass it."""
    from triton.backends.nvidia.compiler import CUDAOptions
    if name in L["kwargs"]:
        return L["kwargs"][name], str(L["kwargs"][name])
    value = getattr(CUDAOptions(), name)
    return value, f"{value} (default)"


def report(a, B, case, launches, plan_changes, elapsed):
    lines = []
    simulated = B.runtime.SIMULATED
    kind = "CUDA C, kernels/cuda/*.cu" if a.backend == "cupy" else "Triton, kernels/triton/*.py"
    lines.append(f"{a.op} on the {a.backend} backend ({kind}), {np.dtype(a.dtype).name}, "
                 f"precision {a.precision}")
    lines.append(f"  {case.summary}")
    sim = {"cupy": "the CUDA emulator (NN_CUDA_EMULATE=1)",
           "triton": "Triton's interpreter (TRITON_INTERPRET=1)"}[a.backend]
    where = f"no GPU here: {sim}" if simulated else f"GPU: {_device_name() or '?'}"
    how = (f"kernels recorded and run once ({elapsed:.2f} s wall time with compilation: not a "
           f"measurement)" if a.run else "kernels recorded, not run (--run runs them)")
    lines.append(f"  {where}; {how}")
    if plan_changes:
        # Only the modules that launched something: the others' constants
        # cannot have shaped this plan.
        launched = {L["module"].split(".")[-1].replace(".cu", "") for L in launches}
        relevant = [c for c in plan_changes if c.split(".")[0] in launched]
        if relevant:
            lines.append("  launcher constants that differ on the simulator, set to their GPU "
                         "values here: " + ", ".join(relevant))

    lines.append("")
    lines.append(f"1. Launch configuration ({len(launches)} launch{'es' if len(launches) != 1 else ''}, "
                 f"in order)")
    if not launches:
        lines.append("  (no kernel launched at this shape)")
    elif a.backend == "cupy":
        rows = [("#", "kernel", "grid", "block", "programs", "threads/program")]
        for i, L in enumerate(launches, 1):
            programs = int(np.prod(L["grid"]))
            rows.append((i, L["name"], _fmt(L["grid"]), _fmt(L["block"]), programs,
                         int(np.prod(L["block"]))))
        lines += _table(rows)
    else:
        rows = [("#", "kernel", "grid", "programs", "warps", "stages")]
        for i, L in enumerate(launches, 1):
            rows.append((i, L["qualname"], _fmt(L["grid"]), int(np.prod(L["grid"])),
                         _triton_option(L, "num_warps")[1], _triton_option(L, "num_stages")[1]))
        lines += _table(rows)
        lines.append("  constexprs:")
        for i, L in enumerate(launches, 1):
            cx = ", ".join(f"{k}={v!r}" for k, v in L["constexprs"].items())
            lines.append(f"  {i:>2}  {cx or '(none)'}")

    lines.append("")
    lines.append("2. Registers and shared memory per program (offline, sm_90)")
    if launches:
        if a.backend == "cupy":
            res_by_name, header = cuda_resources(launches)
            resources = [res_by_name[L["name"]] for L in launches]
            threads = [int(np.prod(L["block"])) for L in launches]
        else:
            resources, header = triton_resources(launches)
            threads = []
            for L, r in zip(launches, resources):
                nw = r["num_warps"] if isinstance(r, dict) else _triton_option(L, "num_warps")[0]
                threads.append(32 * int(nw))
        if header:
            lines.append(f"  {header}")
        rows = [("#", "regs/thread", "spill st/ld B", "stack B", "smem/program", "threads",
                 "resident/SM (est.)", "waves on 132 SMs")]
        notes = []
        for i, (L, r, t) in enumerate(zip(launches, resources, threads), 1):
            if isinstance(r, str):
                rows.append((i, "n/a", "n/a", "n/a", "n/a", t, "n/a", "n/a"))
                notes.append(f"  {i:>2}  {r}")
                continue
            resident, limiter = occupancy(t, r["regs"], r["smem"])
            programs = int(np.prod(L["grid"]))
            waves = f"{programs / (resident * SM90['sms']):.2f}" if resident else "n/a"
            smem = f"{r['smem']} B" + (" (dynamic)" if a.backend == "triton" else " (static)")
            rows.append((i, r["regs"], f"{r.get('spill_stores', '?')}/{r.get('spill_loads', '?')}",
                         r.get("stack", "?"), smem, t, f"{resident} ({limiter})", waves))
        lines += _table(rows)
        lines += notes
        lines.append("  resident/SM: H100 limits of 64K registers (per-warp units of 256), 2048 "
                     "threads, 32 blocks, 228 KB shared memory (+1 KB per block); waves = "
                     "programs / (resident x 132)")
    else:
        lines.append("  (nothing launched)")

    lines.append("")
    lines.append("3. Roofline")
    peaks, label = load_peaks(a.device_kind)
    lines += ["  " + s for s in roofline_lines(case, peaks, label, a.dtype, a.precision, a.time_ms)]
    return "\n".join(lines)


# ============================================================ main
def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.inspect_kernel",
        description="Print the kernel launches of one op, their registers and shared memory "
                    "(offline sm_90 compile) and the op's roofline position.",
        epilog=__doc__[__doc__.index("Shapes ("):],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["cupy", "triton"], required=True)
    p.add_argument("--op", choices=sorted(OPS), required=True, metavar="OP",
                   help="a contract op: " + ", ".join(sorted(OPS)))
    p.add_argument("--x", type=_shape, nargs="+", required=True, metavar="SHAPE",
                   help="the op's main input shape (optimizers: one per parameter)")
    p.add_argument("--w", type=_shape, metavar="SHAPE", help="conv weight shape")
    p.add_argument("--y", type=_shape, metavar="SHAPE",
                   help="second operand (add/sub/mul/div, maximum/minimum, compare, where's b, "
                        "copy_'s src; matmul's b)")
    p.add_argument("--stride", type=_pair, default=(1, 1))
    p.add_argument("--padding", type=_pair, default=(0, 0))
    p.add_argument("--dilation", type=_pair, default=(1, 1))
    p.add_argument("--output-padding", type=_pair, default=(0, 0))
    p.add_argument("--bias", action="store_true", help="conv forward ops: add a bias")
    p.add_argument("--negative-slope", type=float, default=0.2)
    p.add_argument("--reduction", choices=["mean", "sum", "none"], default="mean")
    p.add_argument("--axis", type=_shape, help="reduction axes, e.g. 0,2,3 (default: all); "
                                               "argmax/argmin: one axis")
    p.add_argument("--correction", type=int, default=1, help="var: divide by count - correction")
    p.add_argument("--exponent", type=float, default=2.0, help="pow_scalar's exponent")
    p.add_argument("--min", type=float, help="clamp's lower bound (default: none)")
    p.add_argument("--max", type=float, help="clamp's upper bound (default: none)")
    p.add_argument("--compare", choices=["gt", "ge", "lt", "le", "eq"],
                   default=registry.BY_NAME["compare"].torch, help="compare's comparison")
    p.add_argument("--transpose-x", action="store_true",
                   help="matmul: a is a transposed view (stored with its last two axes swapped)")
    p.add_argument("--transpose-y", action="store_true", help="matmul: b is a transposed view")
    p.add_argument("--to", choices=["float32", "float64", "int64", "bool"],
                   help="astype's target dtype (default: the other float dtype)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--precision", choices=["ieee", "tf32"], default="ieee",
                   help="float32 convolutions: exact FP32 (ieee) or TF32 tensor cores")
    p.add_argument("--time-ms", type=float, help="a measured time of the op, for the "
                                                 "achieved fraction of the roofline")
    p.add_argument("--device-kind", default=None,
                   help="whose peaks to use from benchmarks/results (default: this GPU's name, "
                        "or H100 without one)")
    p.add_argument("--run", action="store_true",
                   help="also execute the kernels (slow for large shapes on the CPU simulators)")
    a = p.parse_args(argv)
    a.dtype = np.dtype(a.dtype)
    if a.time_ms is not None and a.time_ms <= 0:
        p.error("--time-ms must be positive")
    return p, a


# The kernel module behind each family whose module may be missing while it
# is being written: (backend attribute, public function, source file).
_FAMILY_MODULES = {"linalg": ("matmul_module", "matmul", {"cupy": "kernels/cuda/matmul.py",
                                                         "triton": "kernels/triton/matmul.py"})}


def missing_kernel(a, B):
    """Why backend B cannot run op a.op yet (its kernel module absent or
    without the function), or None."""
    family = registry.BY_NAME[a.op].family
    if family not in _FAMILY_MODULES:
        return None
    attr, fn, files = _FAMILY_MODULES[family]
    module = getattr(B, attr, None)
    if module is None or not callable(getattr(module, fn, None)):
        return (f"the {a.backend} backend has no {fn} kernel yet ({files[a.backend]} is "
                f"missing or does not define {fn}()): nothing to inspect for {a.op}")
    return None


def _device_name():
    try:
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # no cupy, no driver, no device
        return None


def main(argv=None):
    parser, a = parse_args(argv)
    import kernels
    # Without a GPU, run the GPU backends on the CPU simulators, as the tests
    # do (before the backends are first imported: they read these once).
    if not kernels._gpu_present():
        os.environ.setdefault("TRITON_INTERPRET", "1")
        os.environ.setdefault("NN_CUDA_EMULATE", "1")
    try:
        B = kernels.get_backend(a.backend)
    except kernels.BackendUnavailableError as e:
        print(f"inspect_kernel: {e}", file=sys.stderr)
        return 2
    except ImportError as e:  # a kernel module missing or broken (work in progress)
        print(f"inspect_kernel: the {a.backend} backend cannot be imported: "
              f"{type(e).__name__}: {e}", file=sys.stderr)
        return 2
    why = missing_kernel(a, B)
    if why:
        print(f"inspect_kernel: {why}", file=sys.stderr)
        return 2
    if a.device_kind is None:
        a.device_kind = (None if B.runtime.SIMULATED else _device_name()) or "H100"
    if a.backend == "cupy":
        from kernels.cuda import conv as precision_module
    else:
        from kernels.triton import common as precision_module
    saved_precision = (precision_module.PRECISION if a.backend == "cupy"
                       else precision_module.DOT_PRECISION)
    precision_module.set_precision(a.precision)
    try:
        try:
            case = build_case(a, B)
        except UsageError as e:
            parser.error(str(e))
        modules = [m for m in (B.conv, B.batchnorm, B.loss, B.elementwise, B.reduce,
                               B.matmul_module, B.optim) if m is not None]
        recorder = record_cuda if a.backend == "cupy" else record_triton
        # On a simulator, give the launchers the constants they have on a GPU
        # (also under --run: no result depends on them, only the simulator's
        # speed), so that the plan and the compiled kernels are a GPU's.
        plan = gpu_plan(modules) if B.runtime.SIMULATED else contextlib.nullcontext([])
        start = time.perf_counter()
        try:
            with plan as changes, recorder(record_only=not a.run) as launches:
                case.run()
        except NotImplementedError as e:
            print(f"inspect_kernel: {a.op} is not implemented on the {a.backend} backend yet"
                  + (f": {e}" if str(e) else ""), file=sys.stderr)
            return 2
        elapsed = time.perf_counter() - start
        print(report(a, B, case, launches, changes, elapsed))
    finally:
        precision_module.set_precision(saved_precision)
    return 0


if __name__ == "__main__":
    sys.exit(main())
