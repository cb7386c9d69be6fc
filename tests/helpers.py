"""`helper_test_op`: one line per op test, in the style of tinygrad's test_ops.

    helper_test_op([(2, 3, 7, 9), (4, 3, 3, 3)],
                   lambda F, x, w: F.conv2d(x, w, stride=2), dtype=..., seed=...)

The lambda is called twice: with `torch.nn.functional` on float64 torch
tensors (the reference), and with `nn.functional` on our tensors of `dtype`
on the active backend. Both get identical inputs (rounded to `dtype` first,
so the reference sees exactly what we see) and the same random upstream
gradient. The forward output and every input gradient must satisfy
||ours - ref|| / ||ref|| <= tol, tol = 1e-10 for float64 and 1e-5 for float32
(DEVELOPERS.md). The worst error seen per op is kept for the session summary.
"""

import numpy as np
import torch

import nn

TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
# Second derivatives in float32: 2e-4. They are computed through a first
# derivative that was itself recorded in float32 (each of its elements off by
# ~1e-7 relative), and then combine terms that cancel: log_softmax's
# softmax * (v - sum(v * softmax)), BCE's t / p^2 - (1 - t) / (1 - p)^2. On
# inputs where they nearly cancel the relative error reaches ~1e-4 on every
# backend (numpy included); float64 keeps 1e-10.
TOL2 = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 2e-4}
WORST = {}  # (backend, op, dtype name, "fwd"/"grad") -> worst relative error seen


def rel_error(ours, ref):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    denom = np.linalg.norm(ref)
    diff = np.linalg.norm(ours - ref)
    return diff / denom if denom > 0 else diff


def record_worst(op, dtype, kind, err):
    """Keep the worst error per (active backend, op, dtype, kind) for the summary."""
    key = (nn.get_backend(), op, np.dtype(dtype).name, kind)
    WORST[key] = max(WORST.get(key, 0.0), float(err))


def helper_test_op(shapes, fn, *, dtype, seed, vals=None, low=-2.0, high=2.0,
                   requires_grad=True, op=None, tol=None):
    """Compare `fn` on nn and on torch, forward and every input gradient.

    shapes: input shapes, drawn U[low, high) from a generator seeded by `seed`;
    vals: explicit float64 arrays instead (then shapes is ignored);
    requires_grad: a bool, or one bool per input.
    Returns (our outputs, torch outputs) as NumPy arrays for extra checks."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    tol = TOL[dtype] if tol is None else tol
    op = op or getattr(fn, "__name__", "op")
    host = [np.asarray(v, np.float64) for v in vals] if vals is not None else [
        rng.uniform(low, high, s) for s in shapes]
    host = [h.astype(dtype).astype(np.float64) for h in host]  # what both sides see
    needs = [requires_grad] * len(host) if isinstance(requires_grad, bool) else list(requires_grad)

    t_in = [torch.tensor(h, dtype=torch.float64, requires_grad=g) for h, g in zip(host, needs)]
    o_in = [nn.tensor(h, dtype=dtype, requires_grad=g) for h, g in zip(host, needs)]
    t_out, o_out = fn(torch.nn.functional, *t_in), fn(nn.functional, *o_in)
    t_outs = t_out if isinstance(t_out, tuple) else (t_out,)
    o_outs = o_out if isinstance(o_out, tuple) else (o_out,)

    for t, o in zip(t_outs, o_outs):
        assert o.shape == tuple(t.shape), f"{op}: shape {o.shape}, torch gives {tuple(t.shape)}"
        assert o.dtype == dtype, f"{op}: output dtype {o.dtype}, expected {dtype}"
        ours = o.numpy()
        assert np.isfinite(ours).all() or not np.isfinite(t.detach().numpy()).all(), \
            f"{op}: non-finite output (unwritten elements are NaN-poisoned)"
        err = rel_error(ours, t.detach().numpy())
        record_worst(op, dtype, "fwd", err)
        assert err <= tol, f"{op} forward ({dtype}): relative error {err:.3e} > {tol:.0e}"

    if not any(needs):
        return [o.numpy() for o in o_outs], [t.detach().numpy() for t in t_outs]

    # One random upstream gradient per output, through sum(out * g).
    ups = [rng.standard_normal(t.shape).astype(dtype).astype(np.float64) for t in t_outs]
    t_total = sum((t * torch.tensor(u)).sum() for t, u in zip(t_outs, ups))
    t_total.backward()
    nn.autograd.backward(o_outs, [nn.tensor(u, dtype=dtype) for u in ups])
    for k, (t, o) in enumerate(zip(t_in, o_in)):
        if not needs[k]:
            continue
        assert o.grad is not None, f"{op}: input {k} got no gradient"
        assert o.grad.dtype == dtype, f"{op}: gradient {k} has dtype {o.grad.dtype}"
        ref = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
        err = rel_error(o.grad.numpy(), ref)
        record_worst(op, dtype, "grad", err)
        assert err <= tol, (f"{op} gradient of input {k} ({dtype}): relative error "
                            f"{err:.3e} > {tol:.0e}")
    return [o.numpy() for o in o_outs], [t.detach().numpy() for t in t_outs]


def dcgan_image_size():
    """64x64, pytorch/examples' size; 16x16 when a GPU backend runs on the CPU
    (Triton's interpreter, the CUDA emulator), where 64x64 models take
    minutes per test and check nothing more about module logic (the op tests
    cover the kernels' odd shapes, the gpu-marked tests the real ones)."""
    return 16 if nn.get_backend() != "numpy" and nn.backend.current().device == "cpu" else 64


def make_cupy_unavailable(monkeypatch):
    """Make this machine look GPU-less with the CUDA emulator off, so the
    `cupy` backend is unavailable whatever the machine has: the error paths
    for an unavailable backend are then tested everywhere, never skipped."""
    import kernels
    monkeypatch.delenv("NN_CUDA_EMULATE", raising=False)
    monkeypatch.setattr(kernels, "_gpu_present", lambda: False)
    monkeypatch.setattr(kernels, "_instances",
                        {k: v for k, v in kernels._instances.items() if k != "cupy"})
    assert kernels.why_unavailable("cupy") is not None
    return "cupy"


def lib(F):
    """The library beside a functional module: torch for torch.nn.functional,
    nn for nn.functional (for torch.cat / nn.cat and friends in one lambda)."""
    return torch if F is torch.nn.functional else nn


def _grads_or_zeros(grads, like):
    return [np.zeros(t.shape) if g is None else
            (g.detach().numpy(force=True) if isinstance(g, torch.Tensor) else g.numpy())
            for g, t in zip(grads, like)]


def helper_test_grad2(shapes, fn, *, dtype, seed, vals=None, low=-2.0, high=2.0,
                      requires_grad=True, op=None, tol=None):
    """Second derivatives of `fn` against torch float64, by double backward.

    With inputs x, a random upstream gradient v (one per output) and random
    directions u (one per differentiable input):
        g  = grad(fn(x), x, v, create_graph=True)      (first order, recorded)
        s  = sum_i <g_i, u_i>
        h  = grad(s, (x, v))                           (second order)
    h's x-part is the Hessian-vector product H(v) u and its v-part is J u
    (the double-backward trick's Jacobian-vector product). Both sides do
    exactly this; g must match torch's within TOL and h within TOL2 (1e-10
    float64; 1e-5 and 2e-4 float32), or within `tol` for both if given."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    tol2 = TOL2[dtype] if tol is None else tol
    tol = TOL[dtype] if tol is None else tol
    op = op or getattr(fn, "__name__", "op")
    host = [np.asarray(v, np.float64) for v in vals] if vals is not None else [
        rng.uniform(low, high, s) for s in shapes]
    host = [h.astype(dtype).astype(np.float64) for h in host]
    needs = [requires_grad] * len(host) if isinstance(requires_grad, bool) else list(requires_grad)

    t_in = [torch.tensor(h, dtype=torch.float64, requires_grad=g) for h, g in zip(host, needs)]
    o_in = [nn.tensor(h, dtype=dtype, requires_grad=g) for h, g in zip(host, needs)]
    t_out, o_out = fn(torch.nn.functional, *t_in), fn(nn.functional, *o_in)
    t_outs = t_out if isinstance(t_out, tuple) else (t_out,)
    o_outs = o_out if isinstance(o_out, tuple) else (o_out,)
    t_x = [t for t, g in zip(t_in, needs) if g]
    o_x = [o for o, g in zip(o_in, needs) if g]

    vs = [rng.standard_normal(t.shape).astype(dtype).astype(np.float64) for t in t_outs]
    us = [rng.standard_normal(t.shape).astype(dtype).astype(np.float64) for t in t_x]
    t_v = [torch.tensor(v, requires_grad=True) for v in vs]
    o_v = [nn.tensor(v, dtype=dtype, requires_grad=True) for v in vs]

    t_g = torch.autograd.grad(t_outs, t_x, t_v, create_graph=True, allow_unused=True)
    o_g = nn.autograd.grad(o_outs, o_x, o_v, create_graph=True, allow_unused=True)
    for k, (a, b) in enumerate(zip(_grads_or_zeros(o_g, o_x), _grads_or_zeros(t_g, t_x))):
        err = rel_error(a, b)
        record_worst(op, dtype, "grad", err)
        assert err <= tol, f"{op} first derivative {k} ({dtype}): relative error {err:.3e}"

    def contract(gs, wrap_u):
        total = None
        for g, u in zip(gs, us):
            if g is None:
                continue
            term = (g * wrap_u(u)).sum()
            total = term if total is None else total + term
        return total

    t_s = contract(t_g, torch.tensor)
    o_s = contract(o_g, lambda u: nn.tensor(u, dtype=dtype))
    if t_s is None or not t_s.requires_grad:
        assert o_s is None or not o_s.requires_grad, f"{op}: torch's gradient is constant"
        return
    t_h = torch.autograd.grad(t_s, t_x + t_v, allow_unused=True)
    o_h = nn.autograd.grad(o_s, o_x + o_v, allow_unused=True)
    names = [f"d2/dx{k}" for k in range(len(t_x))] + [f"d2/dv{k}" for k in range(len(t_v))]
    for name, a, b in zip(names, _grads_or_zeros(o_h, o_x + o_v),
                          _grads_or_zeros(t_h, t_x + t_v)):
        err = rel_error(a, b)
        record_worst(op, dtype, "grad2", err)
        assert np.isfinite(a).all() or not np.isfinite(b).all(), f"{op} {name}: non-finite"
        assert err <= tol2, f"{op} {name} ({dtype}): relative error {err:.3e} > {tol2:.0e}"
