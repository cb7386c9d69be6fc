"""The per-op benchmark cases: every contract op, forward and backward, at the
shapes that matter, each with its torch equivalent and its cost.

Shape sets:
  dcgan64  pytorch/examples' DCGAN at 64x64, batch 128 (nz 100, ngf = ndf = 64,
           nc 3): every conv / transposed conv, batch norm, activation, loss and
           optimizer shape the training step runs.
  mnist32  train.py's mnist5k model: 32x32, batch 64, ngf = ndf = 32, nc 1.
  large    one larger shape per op family (a 3x3 conv at 256 channels, batch
           norm over 16M elements, Adam over 16M parameters, the primitives
           over 16M elements, a 2048 x 2048 x 2048 matmul, ...).
  tiny     a 16x16 model at batch 2: the CI smoke test's set.
The model sets are read off the models themselves (dcgan.models, with forward
hooks on torch's build of them), so they follow any change to the models.

Not timed separately: conv_transpose2d_backward_bias (the same kernel as
conv2d_backward_bias), reshape, broadcast_to, permute and slice (views, no
kernel), and the memory functions (to_device, to_host, empty, full = empty +
fill_): the ops kernels/registry.py marks timed=False.

The array primitives' cases are built from the registry, family by family,
so a new registry entry gets benchmark rows with no edit here:
  unary        every registry.ops_in("unary") op on a batch-norm-sized
               activation, inputs drawn from the op's `domain`, against
               torch.<op.torch>;
  elementwise  binary ops by default (op(a, b) against torch.<op.torch>(a, b));
               pow_scalar, clamp, where and compare, whose signatures differ,
               have their own builders (_ELEMENTWISE);
  reduction    op(x, (0, 2, 3), False) against torch.<op.torch>(x, dim=(0, 2, 3))
               by default (batch-norm statistics' axes); argmax/argmin (one
               axis) and var (correction) have their own (_REDUCTION);
  linalg       op(a, b) against torch.<op.torch>(a, b) on DCGAN's products: the
               spectral-norm power iteration's W v and W^T u (a transposed
               view) for the flattened weight (C_out, C_in*KH*KW) of D's
               largest conv, and D's costliest conv as a batched GEMM (the
               weight broadcast over the batch, a stride-0 view, times the
               im2col columns of each image); large: 2048 x 2048 x 2048.

A case knows its inputs (shape and value range), how to call our backend
(`ours(backend, arrays)` returns a thunk) and torch (`torch_fn(tensors)`
returns a thunk), and its FLOPs and bytes (benchmarks/cost.py). Both thunks
return the outputs to compare, in the same order. The torch side is the op
torch itself runs in training: aten's convolution_backward, native_batch_norm
(_backward), threshold/leaky_relu/tanh/sigmoid_backward,
binary_cross_entropy(_backward), and torch.optim.Adam/SGD with foreach=True
(its multi-tensor path). BCE-with-logits has no aten backward; torch's
autograd formula (sigmoid(x) - t) * g / n is timed instead.
"""

import dataclasses
from typing import Callable

import numpy as np

from kernels import registry

from . import cost

LEAKY = 0.2
EPS, MOMENTUM = 1e-5, 0.1
ADAM = dict(lr=2e-4, betas=(0.5, 0.999), eps=1e-8, weight_decay=0.0)
SGD = dict(lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False)

MODEL_SETS = {
    "dcgan64": dict(batch=128, image=64, nz=100, ngf=64, ndf=64, nc=3),
    "mnist32": dict(batch=64, image=32, nz=100, ngf=32, ndf=32, nc=1),
    "tiny": dict(batch=2, image=16, nz=8, ngf=4, ndf=4, nc=1),
}
SHAPE_SETS = list(MODEL_SETS)[:2] + ["large", "tiny"]


@dataclasses.dataclass
class Case:
    op: str                      # the contract function, e.g. "conv2d_backward_weight"
    shape_set: str
    label: str                   # where it comes from and its shapes
    inputs: dict                 # name -> (shape, kind); kind picks the value range
    ours: Callable               # (backend, arrays) -> thunk returning outputs
    torch_fn: Callable           # (tensors) -> thunk returning outputs
    flops: int
    bytes: int
    conv: bool = False           # a conv GEMM
    gemm: bool = False           # a GEMM whose precision switch applies (conv, matmul):
    #                              the TF32 variants time it too
    compilable: bool = False     # torch.compile applies (a forward-style op)
    statistical: bool = False    # random draws: checked by their moments


def make_inputs(case, seed):
    """Host arrays for a case's inputs: float32, or bool for kind "mask";
    kind ("uniform", lo, hi) draws from [lo, hi) (a unary op's domain)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (shape, kind) in case.inputs.items():
        if kind == "mask":
            out[name] = rng.random(shape) < 0.5
            continue
        if isinstance(kind, tuple) and kind[0] == "uniform":
            a = rng.uniform(kind[1], kind[2], shape)
        elif kind == "prob":
            a = rng.uniform(0.02, 0.98, shape)
        elif kind == "target":
            a = rng.integers(0, 2, shape).astype(np.float64)
        elif kind == "positive":
            a = rng.uniform(0.5, 2.0, shape)
        else:
            a = rng.standard_normal(shape)
        out[name] = a.astype(np.float32)
    return out


# ------------------------------------------------------------- layer discovery
def model_layers(cfg):
    """The layers of the DCGAN G and D for config `cfg`, with their shapes:
    a list of dicts (net, kind, x, y, w, stride, padding, slope)."""
    import torch

    from dcgan.models import build_discriminator, build_generator
    G = build_generator(torch.nn, cfg["nz"], cfg["ngf"], cfg["nc"], cfg["image"])
    D = build_discriminator(torch.nn, cfg["nc"], cfg["ndf"], cfg["image"])
    layers = []

    def hook(net):
        def record(mod, inp, out):
            entry = dict(net=net, kind=type(mod).__name__, x=tuple(inp[0].shape),
                         y=tuple(out.shape))
            if hasattr(mod, "weight") and mod.weight is not None:
                entry["w"] = tuple(mod.weight.shape)
            for k in ("stride", "padding"):
                if hasattr(mod, k):
                    entry[k] = tuple(getattr(mod, k))
            if hasattr(mod, "negative_slope"):
                entry["slope"] = mod.negative_slope
            layers.append(entry)
        return record

    for net, model in (("G", G), ("D", D)):
        for m in model.modules():
            if not list(m.children()):
                m.register_forward_hook(hook(net))
    with torch.no_grad():
        fake = G(torch.randn(cfg["batch"], cfg["nz"], 1, 1))
        D(fake)
    params = {"G": [tuple(p.shape) for p in G.parameters()],
              "D": [tuple(p.shape) for p in D.parameters()]}
    return layers, params


# -------------------------------------------------------------- case builders
def _shape_str(s):
    return "x".join(map(str, s))


def conv_cases(set_name, name, x, w, y, stride, padding, transposed, with_bias=False):
    """Forward, input and weight gradients of one conv (or transposed conv) layer."""
    import torch
    import torch.nn.functional as F
    aten = torch.ops.aten
    dil = (1, 1)
    # The direct-conv side: for a transposed conv, y is the "input" image.
    flops = cost.conv_gemm_flops(y, w, x) if transposed else cost.conv_gemm_flops(x, w, y)
    geo = f"k{w[2]}x{w[3]} s{stride[0]} p{padding[0]}"
    tag = f"{name} {_shape_str(x)} -> {_shape_str(y)} {geo}"
    if transposed:
        # x (N, Cin, H, W), w (Cin, Cout, KH, KW), y (N, Cout, OH, OW).
        out_pad = tuple(o - ((i - 1) * s - 2 * p + (k - 1) + 1)
                        for o, i, s, p, k in zip(y[2:], x[2:], stride, padding, w[2:]))
        cases = [
            ("conv_transpose2d_forward", {"x": (x, "normal"), "w": (w, "normal")},
             lambda be, a: lambda: (be.conv_transpose2d_forward(a["x"], a["w"], None, stride,
                                                                padding, out_pad, dil),),
             lambda t: lambda: (F.conv_transpose2d(t["x"], t["w"], None, stride, padding,
                                                   out_pad, 1, dil),), [x, w, y], True),
            ("conv_transpose2d_backward_input", {"dy": (y, "normal"), "w": (w, "normal")},
             lambda be, a: lambda: (be.conv_transpose2d_backward_input(a["dy"], a["w"], x[2:],
                                                                       stride, padding, dil),),
             lambda t: lambda: (aten.convolution_backward(
                 t["dy"], t["_x"], t["w"], None, stride, padding, dil, True, out_pad, 1,
                 [True, False, False])[0],), [y, w, x], False),
            ("conv_transpose2d_backward_weight", {"dy": (y, "normal"), "x": (x, "normal")},
             lambda be, a: lambda: (be.conv_transpose2d_backward_weight(a["dy"], a["x"], w[2:],
                                                                        stride, padding, dil),),
             lambda t: lambda: (aten.convolution_backward(
                 t["dy"], t["x"], t["_w"], None, stride, padding, dil, True, out_pad, 1,
                 [False, True, False])[1],), [y, x, w], False),
        ]
    else:
        cases = [
            ("conv2d_forward", {"x": (x, "normal"), "w": (w, "normal")},
             lambda be, a: lambda: (be.conv2d_forward(a["x"], a["w"], None, stride, padding,
                                                      dil),),
             lambda t: lambda: (F.conv2d(t["x"], t["w"], None, stride, padding, dil),),
             [x, w, y], True),
            ("conv2d_backward_input", {"dy": (y, "normal"), "w": (w, "normal")},
             lambda be, a: lambda: (be.conv2d_backward_input(a["dy"], a["w"], x[2:], stride,
                                                             padding, dil),),
             lambda t: lambda: (aten.convolution_backward(
                 t["dy"], t["_x"], t["w"], None, stride, padding, dil, False, (0, 0), 1,
                 [True, False, False])[0],), [y, w, x], False),
            ("conv2d_backward_weight", {"dy": (y, "normal"), "x": (x, "normal")},
             lambda be, a: lambda: (be.conv2d_backward_weight(a["dy"], a["x"], w[2:], stride,
                                                              padding, dil),),
             lambda t: lambda: (aten.convolution_backward(
                 t["dy"], t["x"], t["_w"], None, stride, padding, dil, False, (0, 0), 1,
                 [False, True, False])[1],), [y, x, w], False),
        ]
    out = []
    for op, inputs, ours, torch_fn, traffic, compilable in cases:
        out.append(Case(op, set_name, tag, {**inputs, **_shape_only(op, x, w)}, ours, torch_fn,
                        flops, cost.nbytes(traffic, np.float32), conv=True, gemm=True,
                        compilable=compilable))
    if with_bias and not transposed:
        out.append(Case("conv2d_backward_bias", set_name, f"{name} dy {_shape_str(y)}",
                        {"dy": (y, "normal")},
                        lambda be, a: lambda: (be.conv2d_backward_bias(a["dy"]),),
                        lambda t: lambda: (t["dy"].sum((0, 2, 3)),),
                        *cost.reduction(y, (y[1],), np.float32)))
    return out


def _shape_only(op, x, w):
    """Shape-only operands ("_x", "_w") that aten.convolution_backward wants
    (it reads their shapes, not their values)."""
    if op.endswith("backward_input"):
        return {"_x": (x, "normal")}
    if op.endswith("backward_weight"):
        return {"_w": (w, "normal")}
    return {}


def batch_norm_cases(set_name, name, shape):
    import torch
    aten = torch.ops.aten
    C = shape[1]
    per_channel = {"w": ((C,), "positive"), "b": ((C,), "normal"),
                   "rm": ((C,), "normal"), "rv": ((C,), "positive")}
    tag = f"{name} {_shape_str(shape)}"

    def ours_train(be, a):
        return lambda: be.batch_norm_train_forward(a["x"], a["w"], a["b"], a["rm"], a["rv"],
                                                   MOMENTUM, EPS)

    def torch_train(t):
        return lambda: aten.native_batch_norm(t["x"], t["w"], t["b"], t["rm"], t["rv"], True,
                                              MOMENTUM, EPS)

    def ours_eval(be, a):
        return lambda: be.batch_norm_eval_forward(a["x"], a["w"], a["b"], a["rm"], a["rv"],
                                                  EPS)[:1]

    def torch_eval(t):
        return lambda: aten.native_batch_norm(t["x"], t["w"], t["b"], t["rm"], t["rv"], False,
                                              MOMENTUM, EPS)[:1]

    def ours_bwd(be, a):
        mean, invstd = be.batch_norm_train_forward(a["x"], a["w"], a["b"], None, None,
                                                   MOMENTUM, EPS)[1:]
        return lambda: be.batch_norm_backward(a["dy"], a["x"], a["w"], mean, invstd, True)

    def torch_bwd(t):
        _, mean, invstd = aten.native_batch_norm(t["x"], t["w"], t["b"], None, None, True,
                                                 MOMENTUM, EPS)
        return lambda: aten.native_batch_norm_backward(t["dy"], t["x"], t["w"], None, None,
                                                       mean, invstd, True, EPS,
                                                       [True, True, True])

    return [
        Case("batch_norm_train_forward", set_name, tag, {"x": (shape, "normal"), **per_channel},
             ours_train, torch_train, *cost.batch_norm("batch_norm_train_forward", shape,
                                                       np.float32), compilable=True),
        Case("batch_norm_eval_forward", set_name, tag, {"x": (shape, "normal"), **per_channel},
             ours_eval, torch_eval, *cost.batch_norm("batch_norm_eval_forward", shape,
                                                     np.float32), compilable=True),
        Case("batch_norm_backward", set_name, tag,
             {"x": (shape, "normal"), "dy": (shape, "normal"), **per_channel}, ours_bwd,
             torch_bwd, *cost.batch_norm("batch_norm_backward", shape, np.float32)),
    ]


def activation_cases(set_name, name, kind, shape, slope=LEAKY):
    import torch
    import torch.nn.functional as F
    aten = torch.ops.aten
    tag = f"{name} {_shape_str(shape)}"
    fwd = {
        "relu": (lambda be, a: lambda: (be.relu_forward(a["x"]),),
                 lambda t: lambda: (torch.relu(t["x"]),)),
        "leaky_relu": (lambda be, a: lambda: (be.leaky_relu_forward(a["x"], slope),),
                       lambda t: lambda: (F.leaky_relu(t["x"], slope),)),
        "tanh": (lambda be, a: lambda: (be.tanh_forward(a["x"]),),
                 lambda t: lambda: (torch.tanh(t["x"]),)),
        "sigmoid": (lambda be, a: lambda: (be.sigmoid_forward(a["x"]),),
                    lambda t: lambda: (torch.sigmoid(t["x"]),)),
    }[kind]
    # Backward: ours takes what the contract says (y for relu, x otherwise);
    # torch's aten ops take y for relu/tanh/sigmoid and x for leaky_relu.
    bwd = {
        "relu": (lambda be, a: lambda: (be.relu_backward(a["dy"], be.relu_forward(a["x"])),),
                 lambda t: lambda: (aten.threshold_backward(t["dy"], torch.relu(t["x"]), 0),)),
        "leaky_relu": (lambda be, a: lambda: (be.leaky_relu_backward(a["dy"], a["x"], slope),),
                       lambda t: lambda: (aten.leaky_relu_backward(t["dy"], t["x"], slope,
                                                                   False),)),
        "tanh": (lambda be, a: lambda: (be.tanh_backward(a["dy"], a["x"]),),
                 lambda t: lambda: (aten.tanh_backward(t["dy"], torch.tanh(t["x"])),)),
        "sigmoid": (lambda be, a: lambda: (be.sigmoid_backward(a["dy"], a["x"]),),
                    lambda t: lambda: (aten.sigmoid_backward(t["dy"], torch.sigmoid(t["x"])),)),
    }[kind]
    # relu/tanh/sigmoid backward recompute the saved output inside the timed
    # call on both sides, so the two sides do the same work.
    return [
        Case(f"{kind}_forward", set_name, tag, {"x": (shape, "normal")}, *fwd,
             *cost.elementwise(f"{kind}_forward", shape, 1, 1, np.float32), compilable=True),
        Case(f"{kind}_backward", set_name, tag, {"x": (shape, "normal"), "dy": (shape, "normal")},
             *bwd, *cost.elementwise(f"{kind}_backward", shape, 2, 1, np.float32)),
    ]


def loss_cases(set_name, shape):
    import torch
    import torch.nn.functional as F
    aten = torch.ops.aten
    n = int(np.prod(shape))
    tag = f"{_shape_str(shape)}, mean"
    g = {"g": ((), "positive")}
    return [
        Case("bce_forward", set_name, tag, {"p": (shape, "prob"), "t": (shape, "target")},
             lambda be, a: lambda: (be.bce_forward(a["p"], a["t"], "mean"),),
             lambda t: lambda: (F.binary_cross_entropy(t["p"], t["t"]),),
             *cost.elementwise("bce_forward", shape, 2, 0, np.float32), compilable=True),
        Case("bce_backward", set_name, tag, {"p": (shape, "prob"), "t": (shape, "target"), **g},
             lambda be, a: lambda: be.bce_backward(a["g"], a["p"], a["t"], "mean", False)[:1],
             lambda t: lambda: (aten.binary_cross_entropy_backward(t["g"], t["p"], t["t"], None,
                                                                   1),),
             *cost.elementwise("bce_backward", shape, 2, 1, np.float32)),
        Case("bce_with_logits_forward", set_name, tag,
             {"x": (shape, "normal"), "t": (shape, "target")},
             lambda be, a: lambda: (be.bce_with_logits_forward(a["x"], a["t"], "mean"),),
             lambda t: lambda: (F.binary_cross_entropy_with_logits(t["x"], t["t"]),),
             *cost.elementwise("bce_with_logits_forward", shape, 2, 0, np.float32),
             compilable=True),
        Case("bce_with_logits_backward", set_name, tag,
             {"x": (shape, "normal"), "t": (shape, "target"), **g},
             lambda be, a: lambda: be.bce_with_logits_backward(a["g"], a["x"], a["t"], "mean",
                                                               False)[:1],
             lambda t: lambda: (((torch.sigmoid(t["x"]) - t["t"]) * (t["g"] / n)),),
             *cost.elementwise("bce_with_logits_backward", shape, 2, 1, np.float32)),
    ]


def optimizer_cases(set_name, name, shapes):
    import torch
    numels = [int(np.prod(s)) for s in shapes]
    tag = f"{name}: {len(shapes)} tensors, {sum(numels) / 1e6:.2f}M parameters"
    inputs = {}
    for i, s in enumerate(shapes):
        inputs.update({f"p{i}": (s, "normal"), f"g{i}": (s, "normal"), f"m{i}": (s, "normal"),
                       f"v{i}": (s, "positive")})
    k = len(shapes)

    def ours_adam(be, a):
        ps, gs = [a[f"p{i}"] for i in range(k)], [a[f"g{i}"] for i in range(k)]
        ms, vs = [a[f"m{i}"] for i in range(k)], [a[f"v{i}"] for i in range(k)]

        def step():
            be.adam_step_(ps, gs, ms, vs, [3] * k, ADAM["lr"], *ADAM["betas"], ADAM["eps"],
                          ADAM["weight_decay"])
            return tuple(ps)
        return step

    def torch_adam(t):
        ps = [torch.nn.Parameter(t[f"p{i}"]) for i in range(k)]
        opt = torch.optim.Adam(ps, foreach=True, **ADAM)
        for i, p in enumerate(ps):
            p.grad = t[f"g{i}"]
            opt.state[p] = {"step": torch.tensor(2.0), "exp_avg": t[f"m{i}"],
                            "exp_avg_sq": t[f"v{i}"]}

        def step():
            opt.step()
            return tuple(p.data for p in ps)
        return step

    def ours_sgd(be, a):
        ps, gs = [a[f"p{i}"] for i in range(k)], [a[f"g{i}"] for i in range(k)]
        bufs = [a[f"m{i}"] for i in range(k)]

        def step():
            be.sgd_step_(ps, gs, bufs, [False] * k, SGD["lr"], SGD["momentum"], SGD["dampening"],
                         SGD["weight_decay"], SGD["nesterov"])
            return tuple(ps)
        return step

    def torch_sgd(t):
        ps = [torch.nn.Parameter(t[f"p{i}"]) for i in range(k)]
        opt = torch.optim.SGD(ps, foreach=True, **SGD)
        for i, p in enumerate(ps):
            p.grad = t[f"g{i}"]
            opt.state[p] = {"momentum_buffer": t[f"m{i}"]}

        def step():
            opt.step()
            return tuple(p.data for p in ps)
        return step

    return [Case("adam_step_", set_name, tag, inputs, ours_adam, torch_adam,
                 *cost.adam(numels, np.float32)),
            Case("sgd_step_", set_name, tag, inputs, ours_sgd, torch_sgd,
                 *cost.sgd(numels, np.float32))]


def glue_cases(set_name, shape, noise_shape):
    import torch
    C = shape[1]
    tag = _shape_str(shape)
    reduced = (C,)
    return [
        Case("add", set_name, f"{tag} + bias (1, {C}, 1, 1)",
             {"x": (shape, "normal"), "b": ((1, C, 1, 1), "normal")},
             lambda be, a: lambda: (be.add(a["x"], a["b"]),),
             lambda t: lambda: (t["x"] + t["b"],),
             *cost.elementwise("add", shape, 1, 1, np.float32)),
        Case("mul", set_name, tag, {"x": (shape, "normal"), "y": (shape, "normal")},
             lambda be, a: lambda: (be.mul(a["x"], a["y"]),),
             lambda t: lambda: (t["x"] * t["y"],),
             *cost.elementwise("mul", shape, 2, 1, np.float32)),
        Case("sub", set_name, tag, {"x": (shape, "normal"), "y": (shape, "normal")},
             lambda be, a: lambda: (be.sub(a["x"], a["y"]),),
             lambda t: lambda: (t["x"] - t["y"],),
             *cost.elementwise("sub", shape, 2, 1, np.float32)),
        Case("div", set_name, tag, {"x": (shape, "normal"), "y": (shape, "positive")},
             lambda be, a: lambda: (be.div(a["x"], a["y"]),),
             lambda t: lambda: (t["x"] / t["y"],),
             *cost.elementwise("div", shape, 2, 1, np.float32)),
        Case("neg", set_name, tag, {"x": (shape, "normal")},
             lambda be, a: lambda: (be.neg(a["x"]),),
             lambda t: lambda: (-t["x"],),
             *cost.elementwise("neg", shape, 1, 1, np.float32)),
        Case("copy_", set_name, tag, {"x": (shape, "normal"), "y": (shape, "normal")},
             lambda be, a: lambda: (be.copy_(a["y"], a["x"]),),
             lambda t: lambda: (t["y"].copy_(t["x"]),),
             *cost.elementwise("copy_", shape, 1, 1, np.float32)),
        Case("fill_", set_name, tag, {"x": (shape, "normal")},
             lambda be, a: lambda: (be.fill_(a["x"], 0.5),),
             lambda t: lambda: (t["x"].fill_(0.5),),
             0, cost.nbytes([shape], np.float32)),
        Case("sum", set_name, f"{tag} over (0, 2, 3)", {"x": (shape, "normal")},
             lambda be, a: lambda: (be.sum(a["x"], (0, 2, 3), False),),
             lambda t: lambda: (t["x"].sum((0, 2, 3)),),
             *cost.reduction(shape, reduced, np.float32)),
        Case("mean", set_name, f"{tag} over all", {"x": (shape, "normal")},
             lambda be, a: lambda: (be.mean(a["x"], None, False),),
             lambda t: lambda: (t["x"].mean(),),
             *cost.reduction(shape, (), np.float32)),
        Case("astype", set_name, f"{tag} float32 -> float64", {"x": (shape, "normal")},
             lambda be, a: lambda: (be.astype(a["x"], np.float64),),
             lambda t: lambda: (t["x"].to(torch.float64),),
             0, cost.nbytes([shape], np.float32) + cost.nbytes([shape], np.float64)),
        Case("random_normal", set_name, f"noise {_shape_str(noise_shape)}", {},
             lambda be, a: lambda: (be.random_normal(noise_shape, 0.0, 1.0, np.float32),),
             lambda t: lambda: (torch.randn(noise_shape, device=t["_device"]),),
             *cost.elementwise("random_normal", noise_shape, 0, 1, np.float32),
             statistical=True),
        Case("random_uniform", set_name, f"{_shape_str(noise_shape)}", {},
             lambda be, a: lambda: (be.random_uniform(noise_shape, -1.0, 1.0, np.float32),),
             lambda t: lambda: (torch.rand(noise_shape, device=t["_device"]) * 2 - 1,),
             *cost.elementwise("random_uniform", noise_shape, 0, 1, np.float32),
             statistical=True),
    ]


# ------------------------------------------------- the primitives, by family
# Each builder returns the cases of one registry op; the family loops below
# (primitive_cases) call them for every timed op the registry lists.
F32 = np.float32


def _torch(name):
    import torch
    return getattr(torch, name)


def _unary(set_name, op, tag, shape):
    lo, hi = op.domain
    tf = _torch(op.torch)
    return [Case(op.name, set_name, f"{tag}, x in [{lo:g}, {hi:g})",
                 {"x": (shape, ("uniform", lo, hi))},
                 lambda be, a: lambda: (getattr(be, op.name)(a["x"]),),
                 lambda t: lambda: (tf(t["x"]),),
                 *cost.elementwise(op.name, shape, 1, 1, F32), compilable=True)]


def _binary(set_name, op, tag, shape):
    """The default elementwise case: op(a, b), two same-shape float operands."""
    tf = _torch(op.torch)
    return [Case(op.name, set_name, f"{tag}, two operands", {"a": (shape, "normal"),
                                                             "b": (shape, "normal")},
                 lambda be, a: lambda: (getattr(be, op.name)(a["a"], a["b"]),),
                 lambda t: lambda: (tf(t["a"], t["b"]),),
                 *cost.elementwise(op.name, shape, 2, 1, F32), compilable=True)]


def _pow_scalar(set_name, op, tag, shape):
    # x ** 2 (squares: variances, norms, penalties; the kernels' x*x path)
    # and a general exponent on positive inputs (their pow path).
    tf = _torch(op.torch)
    out = []
    for p, kind in ((2.0, "normal"), (0.75, "positive")):
        out.append(Case(op.name, set_name, f"{tag} ** {p:g}", {"x": (shape, kind)},
                        lambda be, a, p=p: lambda: (be.pow_scalar(a["x"], p),),
                        lambda t, p=p: lambda: (tf(t["x"], p),),
                        *cost.elementwise(op.name, shape, 1, 1, F32), compilable=True))
    return out


def _clamp(set_name, op, tag, shape):
    lo, hi = -0.5, 0.5
    tf = _torch(op.torch)
    return [Case(op.name, set_name, f"{tag} to [{lo:g}, {hi:g}]", {"x": (shape, "normal")},
                 lambda be, a: lambda: (be.clamp(a["x"], lo, hi),),
                 lambda t: lambda: (tf(t["x"], lo, hi),),
                 *cost.elementwise(op.name, shape, 1, 1, F32), compilable=True)]


def _where(set_name, op, tag, shape):
    tf = _torch(op.torch)
    return [Case(op.name, set_name, f"{tag}, bool mask", {"mask": (shape, "mask"),
                                                          "a": (shape, "normal"),
                                                          "b": (shape, "normal")},
                 lambda be, a: lambda: (be.where(a["mask"], a["a"], a["b"]),),
                 lambda t: lambda: (tf(t["mask"], t["a"], t["b"]),),
                 *cost.elementwise_io(op.name, shape, [(shape, np.bool_), (shape, F32),
                                                       (shape, F32)], [(shape, F32)]),
                 compilable=True)]


def _compare(set_name, op, tag, shape):
    # The comparison timed is the registry's torch name (torch.gt: "gt").
    tf = _torch(op.torch)
    return [Case(op.name, set_name, f"{tag}, a {op.torch} b -> bool",
                 {"a": (shape, "normal"), "b": (shape, "normal")},
                 lambda be, a: lambda: (be.compare(op.torch, a["a"], a["b"]),),
                 lambda t: lambda: (tf(t["a"], t["b"]),),
                 *cost.elementwise_io(op.name, shape, [(shape, F32)] * 2, [(shape, np.bool_)]),
                 compilable=True)]


_ELEMENTWISE = {"pow_scalar": _pow_scalar, "clamp": _clamp, "where": _where,
                "compare": _compare}

STAT_AXES = (0, 2, 3)  # batch norm's statistics: per channel of (N, C, H, W)


def _reduce(set_name, op, tag, shape):
    """The default reduction case: op(x, (0, 2, 3), False), per channel."""
    tf = _torch(op.torch)
    out_shape = (shape[1],)
    return [Case(op.name, set_name, f"{tag} over {STAT_AXES}", {"x": (shape, "normal")},
                 lambda be, a: lambda: (getattr(be, op.name)(a["x"], STAT_AXES, False),),
                 lambda t: lambda: (tf(t["x"], dim=STAT_AXES),),
                 *cost.reduction(shape, out_shape, F32, op.name), compilable=True)]


def _arg_reduce(set_name, op, tag, shape):
    # One axis: the channel of each pixel (int64 indices, compared exactly).
    tf = _torch(op.torch)
    out_shape = shape[:1] + shape[2:]
    return [Case(op.name, set_name, f"{tag} over axis 1 -> int64", {"x": (shape, "normal")},
                 lambda be, a: lambda: (getattr(be, op.name)(a["x"], 1, False),),
                 lambda t: lambda: (tf(t["x"], dim=1),),
                 *cost.reduction(shape, out_shape, F32, op.name, np.int64), compilable=True)]


def _var(set_name, op, tag, shape):
    # correction=1: the unbiased estimate batch norm's running variance keeps.
    tf = _torch(op.torch)
    out_shape = (shape[1],)
    return [Case(op.name, set_name, f"{tag} over {STAT_AXES}, correction 1",
                 {"x": (shape, "normal")},
                 lambda be, a: lambda: (be.var(a["x"], STAT_AXES, False, 1),),
                 lambda t: lambda: (tf(t["x"], dim=STAT_AXES, correction=1),),
                 *cost.reduction(shape, out_shape, F32, op.name), compilable=True)]


_REDUCTION = {"argmax": _arg_reduce, "argmin": _arg_reduce, "var": _var}


def _product(set_name, op, label, a_shape, b_shape, view=None, batch=1):
    """One matmul-style case: a (stored a_shape, then seen through `view`:
    "T" a transposed view, "broadcast" a stride-0 batch of `batch`) @ b."""
    tf = _torch(op.torch)
    if view == "T":
        (K, M), N = a_shape, b_shape[-1]
    else:
        (M, K), N = a_shape[-2:], b_shape[-1]

    def see(x, be=None):
        if view == "T":
            return be.permute(x, (1, 0)) if be else x.permute(1, 0)
        if view == "broadcast":
            return be.broadcast_to(x, (batch, M, K)) if be else x.expand(batch, M, K)
        return x

    def ours(be, a):
        A = see(a["a"], be)
        return lambda: (getattr(be, op.name)(A, a["b"]),)

    def torch_fn(t):
        A = see(t["a"])
        return lambda: (tf(A, t["b"]),)

    return Case(op.name, set_name, label, {"a": (a_shape, "normal"), "b": (b_shape, "normal")},
                ours, torch_fn,
                *cost.matmul(M, K, N, batch, F32, shared=("a",) if view == "broadcast" else ()),
                gemm=True, compilable=True)


def _linalg(set_name, op, products):
    return [_product(set_name, op, *p) for p in products]


def dcgan_products(layers):
    """DCGAN's matrix products, from D's convolutions: (label, a_shape,
    b_shape, view, batch) for the spectral-norm power iteration on the
    largest weight, W v and W^T u (W the weight flattened to (C_out,
    C_in*KH*KW)), and the costliest conv as a batched GEMM per image,
    W (broadcast) @ cols (N, C_in*KH*KW, OH*OW) -> (N, C_out, OH*OW), its
    output already NCHW; of equal-FLOP layers, the one that moves least."""
    convs = [L for L in layers if L["net"] == "D" and L["kind"] == "Conv2d"]

    def flat(L):
        K, C, KH, KW = L["w"]
        return K, C * KH * KW

    sn = max(convs, key=lambda L: int(np.prod(L["w"])))
    Ko, R = flat(sn)
    where = f"D conv w {_shape_str(sn['w'])}"

    def gemm_cost(L):
        K, R = flat(L)
        N, P = L["y"][0], L["y"][2] * L["y"][3]
        flops, nbytes = cost.matmul(K, R, P, N, F32, shared=("a",))
        return (flops, -nbytes)

    g = max(convs, key=gemm_cost)
    Kg, Rg = flat(g)
    N, P = g["y"][0], g["y"][2] * g["y"][3]
    return [
        (f"spectral norm W v: {where} as ({Ko}, {R}) @ ({R}, 1)", (Ko, R), (R, 1), None, 1),
        (f"spectral norm W^T u: {where}, transposed view ({R}, {Ko}) @ ({Ko}, 1)",
         (Ko, R), (Ko, 1), "T", 1),
        (f"D conv {_shape_str(g['x'])} -> {_shape_str(g['y'])} as GEMM: w ({Kg}, {Rg}) "
         f"broadcast @ cols ({N}, {Rg}, {P})", (Kg, Rg), (N, Rg, P), "broadcast", N),
    ]


def primitive_cases(set_name, tag, shape, products):
    """Every timed op of the primitive families, from the registry: the
    elementwise and reduction families on `shape` (N, C, H, W) (described by
    `tag`), linalg on `products` (see dcgan_products)."""
    cases = []
    for op in registry.ops_in("unary", "elementwise", "reduction", "linalg"):
        if not op.timed:
            continue
        if op.family == "unary":
            cases += _unary(set_name, op, tag, shape)
        elif op.family == "elementwise":
            cases += _ELEMENTWISE.get(op.name, _binary)(set_name, op, tag, shape)
        elif op.family == "reduction":
            cases += _REDUCTION.get(op.name, _reduce)(set_name, op, tag, shape)
        else:
            cases += _linalg(set_name, op, products)
    return cases


def model_cases(set_name):
    cfg = MODEL_SETS[set_name]
    layers, params = model_layers(cfg)
    cases, seen, bns = [], set(), []
    first_conv = True
    counters = {}
    for L in layers:
        net, kind = L["net"], L["kind"]
        counters[(net, kind)] = counters.get((net, kind), 0) + 1
        name = f"{net}.{kind.replace('2d', '').lower()}{counters[(net, kind)]}"
        if kind == "BatchNorm2d":
            bns.append((L["y"], name))
        key = (kind, L["x"], L.get("w"), L.get("stride"), L.get("padding"), L.get("slope"))
        if key in seen:
            continue
        seen.add(key)
        if kind in ("Conv2d", "ConvTranspose2d"):
            cases += conv_cases(set_name, name, L["x"], L["w"], L["y"], L["stride"], L["padding"],
                                transposed=kind == "ConvTranspose2d",
                                with_bias=first_conv and kind == "Conv2d")
            first_conv = first_conv and kind != "Conv2d"
        elif kind == "BatchNorm2d":
            cases += batch_norm_cases(set_name, name, L["x"])
        elif kind == "ReLU":
            cases += activation_cases(set_name, name, "relu", L["x"])
        elif kind == "LeakyReLU":
            cases += activation_cases(set_name, name, "leaky_relu", L["x"], L["slope"])
        elif kind == "Tanh":
            cases += activation_cases(set_name, name, "tanh", L["x"])
        elif kind == "Sigmoid":
            cases += activation_cases(set_name, name, "sigmoid", L["x"])
    cases += loss_cases(set_name, (cfg["batch"],))
    cases += optimizer_cases(set_name, "G", params["G"])
    cases += optimizer_cases(set_name, "D", params["D"])
    biggest, where = max(bns, key=lambda b: int(np.prod(b[0])))
    cases += glue_cases(set_name, biggest, (cfg["batch"], cfg["nz"], 1, 1))
    cases += primitive_cases(set_name, f"{where}-sized {_shape_str(biggest)}", biggest,
                             dcgan_products(layers))
    return cases


def large_cases():
    s = "large"
    x, big = (32, 256, 32, 32), (64, 256, 32, 32)
    return (conv_cases(s, "conv3x3", x, (256, 256, 3, 3), x, (1, 1), (1, 1), False)
            + conv_cases(s, "convT4x4", x, (256, 128, 4, 4), (32, 128, 64, 64), (2, 2), (1, 1),
                         True)
            + batch_norm_cases(s, "bn", big)
            + activation_cases(s, "act", "leaky_relu", big)
            + activation_cases(s, "act", "tanh", big)
            + loss_cases(s, (1 << 20,))
            + optimizer_cases(s, "16M", [(4096, 2048), (4096, 2048)])
            + glue_cases(s, big, (4096, 1024))
            + primitive_cases(s, _shape_str(big), big,
                              [("2048 x 2048 @ 2048 x 2048", (2048, 2048), (2048, 2048), None, 1)]))


def build(shape_sets, ops=None):
    """Every case of the named shape sets, optionally only the named ops."""
    cases = []
    for name in shape_sets:
        if name not in SHAPE_SETS:
            raise ValueError(f"unknown shape set {name!r}; known: {', '.join(SHAPE_SETS)}")
        cases += large_cases() if name == "large" else model_cases(name)
    if ops:
        known = {c.op for c in cases}
        unknown = sorted(set(ops) - known)
        if unknown:
            raise ValueError(f"unknown op(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known))}")
        cases = [c for c in cases if c.op in ops]
    return cases
