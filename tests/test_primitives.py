"""The contract's array primitives, kernel by kernel, against torch float64.

These call the backend directly on raw arrays (the layer above, nn, is
tested through `helper_test_op` in test_nn_primitives.py), so that a kernel
bug is reported by the kernel's own name. Every case runs on every backend
and dtype, with fresh random inputs, on odd shapes (size-1 axes, 0-d,
sizes off any block size) and on strided views: transposes, steps,
broadcasts.
"""

import numpy as np
import pytest
import torch

import nn
from helpers import TOL, rel_error
from kernels import registry

B = lambda: nn.backend.current()  # noqa: E731


def dev(host, dtype):
    return B().to_device(np.asarray(host), dtype)


def check(ours, ref, dtype, op, tol=None):
    ours = B().to_host(ours)
    ref = np.asarray(ref)
    assert ours.shape == ref.shape, f"{op}: shape {ours.shape}, torch gives {ref.shape}"
    if ref.dtype == np.bool_ or ref.dtype.kind == "i":
        assert ours.dtype == ref.dtype, f"{op}: dtype {ours.dtype}, expected {ref.dtype}"
        assert (ours == ref).all(), f"{op}: {ours} != {ref}"
        return
    assert ours.dtype == dtype, f"{op}: dtype {ours.dtype}, expected {dtype}"
    fin = np.isfinite(ref)
    assert (np.isnan(ours) == np.isnan(ref)).all(), f"{op}: NaN pattern differs"
    assert (ours[np.isinf(ref)] == ref[np.isinf(ref)]).all(), f"{op}: inf differs"
    err = rel_error(ours[fin], ref[fin])
    tol = TOL[np.dtype(dtype)] if tol is None else tol
    assert err <= tol, f"{op} ({dtype}): relative error {err:.3e} > {tol:.0e}"


def views(rng, shape, dtype, low=-2.0, high=2.0):
    """(host float64, backend array) pairs: contiguous, transposed, stepped."""
    out = []
    h = rng.uniform(low, high, shape).astype(dtype).astype(np.float64)
    out.append((h, dev(h, dtype)))
    if len(shape) >= 2:
        big = rng.uniform(low, high, shape[::-1]).astype(dtype).astype(np.float64)
        perm = tuple(reversed(range(len(shape))))
        out.append((big.transpose(perm), B().permute(dev(big, dtype), perm)))
    if shape and shape[-1] > 0:
        wide = rng.uniform(low, high, shape[:-1] + (2 * shape[-1] + 1,))
        wide = wide.astype(dtype).astype(np.float64)
        idx = (slice(None),) * (len(shape) - 1) + (slice(1, None, 2),)
        out.append((wide[idx], B().slice(dev(wide, dtype), idx)))
    return out


SHAPES = [(), (1,), (7,), (3, 1, 5), (2, 3, 17), (33, 65)]

# The unary primitives, from the registry: name -> (torch reference, input range).
UNARY = {op.name: (getattr(torch, op.torch), *op.domain) for op in registry.UNARY}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(backend, dtype, seed, op, shape):
    ref_fn, low, high = UNARY[op]
    for h, a in views(np.random.default_rng(seed), shape, dtype, low, high):
        check(getattr(B(), op)(a), ref_fn(torch.tensor(h)).numpy(), dtype, op)


def test_unary_special_values(backend, dtype):
    h = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-30])
    a = dev(h, dtype)
    t = torch.tensor(h.astype(dtype))
    for op, (ref_fn, _, _) in UNARY.items():
        check(getattr(B(), op)(a), ref_fn(t).numpy(), dtype, op)


@pytest.mark.parametrize("p", [2.0, 3.0, 0.5, -1.0, -2.5, 0.0, 1.0, 1.5])
def test_pow_scalar(backend, dtype, seed, p):
    for h, a in views(np.random.default_rng(seed), (4, 9), dtype, -2, 2):
        if p != int(p):
            h, a = np.abs(h), B().abs(a)  # negative bases: NaN, checked below
        check(B().pow_scalar(a, p), torch.tensor(h).pow(p).numpy(), dtype, "pow_scalar")
    special = np.array([0.0, -1.0, -2.0, np.nan, np.inf, 1.0])
    check(B().pow_scalar(dev(special, dtype), p),
          torch.tensor(special.astype(dtype)).pow(p).numpy(), dtype, "pow_scalar special")


@pytest.mark.parametrize("lo,hi", [(-0.5, 0.7), (None, 0.3), (-0.2, None), (0.5, 0.5)])
def test_clamp(backend, dtype, seed, lo, hi):
    for h, a in views(np.random.default_rng(seed), (5, 13), dtype):
        h = h.copy()
        h.flat[0] = np.nan
        a2 = dev(h, dtype)
        check(B().clamp(a2, lo, hi), torch.tensor(h).clamp(lo, hi).numpy(), dtype, "clamp")
        h0 = B().to_host(a).astype(np.float64)
        check(B().clamp(a, lo, hi), torch.tensor(h0).clamp(lo, hi).numpy(), dtype, "clamp")


BROADCASTS = [((4, 5), (4, 5)), ((3, 1, 5), (1, 4, 1)), ((6,), ()), ((), (2, 3)),
              ((2, 3, 17), (17,))]


@pytest.mark.parametrize("sa,sb", BROADCASTS)
@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum(backend, dtype, seed, op, sa, sb):
    rng = np.random.default_rng(seed)
    ha = rng.uniform(-1, 1, sa).astype(dtype).astype(np.float64)
    hb = rng.uniform(-1, 1, sb).astype(dtype).astype(np.float64)
    if ha.size > 1:
        ha.flat[1] = np.nan
    ref = getattr(torch, op)(torch.tensor(ha), torch.tensor(hb)).numpy()
    check(getattr(B(), op)(dev(ha, dtype), dev(hb, dtype)), ref, dtype, op)


@pytest.mark.parametrize("sa,sb", BROADCASTS)
@pytest.mark.parametrize("op", ["gt", "ge", "lt", "le", "eq"])
def test_compare(backend, dtype, seed, op, sa, sb):
    rng = np.random.default_rng(seed)
    # Few distinct values, so that equality happens; one NaN.
    ha = rng.integers(-2, 3, sa).astype(np.float64)
    hb = rng.integers(-2, 3, sb).astype(np.float64)
    if ha.size > 1:
        ha.flat[0] = np.nan
    ref = getattr(torch, op)(torch.tensor(ha), torch.tensor(hb)).numpy()
    check(B().compare(op, dev(ha, dtype), dev(hb, dtype)), ref, dtype, op)
    # A transposed left operand.
    if len(sa) == 2:
        ht = np.ascontiguousarray(ha.T)
        at = B().permute(dev(ht, dtype), (1, 0))
        check(B().compare(op, at, dev(hb, dtype)),
              getattr(torch, op)(torch.tensor(ht.T), torch.tensor(hb)).numpy(), dtype, op)


@pytest.mark.parametrize("sm,sa,sb", [((4, 5), (4, 5), (4, 5)), ((3, 1), (1, 4), ()),
                                      ((2, 3, 17), (17,), (2, 1, 17)), ((), (3,), (3,))])
def test_where(backend, dtype, seed, sm, sa, sb):
    rng = np.random.default_rng(seed)
    m = rng.random(sm) > 0.5
    ha = rng.uniform(-1, 1, sa).astype(dtype).astype(np.float64)
    hb = rng.uniform(-1, 1, sb).astype(dtype).astype(np.float64)
    ref = torch.where(torch.tensor(m), torch.tensor(ha), torch.tensor(hb)).numpy()
    mask = B().to_device(m, np.bool_)
    check(B().where(mask, dev(ha, dtype), dev(hb, dtype)), ref, dtype, "where")


def test_compare_feeds_where(backend, dtype, seed):
    """The mask one kernel writes is the mask the next one reads."""
    rng = np.random.default_rng(seed)
    h = rng.uniform(-1, 1, (9, 11))
    a = dev(h, dtype)
    zero = dev(np.zeros(()), dtype)
    got = B().where(B().compare("gt", a, zero), a, zero)
    check(got, np.where(h.astype(dtype) > 0, h.astype(dtype), 0).astype(np.float64), dtype,
          "where(gt)")


AXES = [None, (0,), (1,), (0, 2), (2,), (0, 1, 2), ()]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("op", ["amax", "amin"])
def test_amax_amin(backend, dtype, seed, op, axis, keepdim):
    for h, a in views(np.random.default_rng(seed), (3, 4, 37), dtype):
        t = torch.tensor(h)
        if axis == ():
            ref = h.copy()
        else:
            ref = getattr(torch, op)(t, dim=axis if axis is not None else tuple(range(3)),
                                     keepdim=keepdim).numpy()
        check(getattr(B(), op)(a, axis, keepdim), ref, dtype, op)


def test_amax_nan_propagates(backend, dtype):
    h = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, -1.0]])
    check(B().amax(dev(h, dtype), (1,), False), np.array([np.nan, 5.0]), dtype, "amax nan")
    check(B().amin(dev(h, dtype), None, False), np.array(np.nan), dtype, "amin nan")


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("axis", [None, 0, 1, 2])
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_argmin(backend, dtype, seed, op, axis, keepdim):
    rng = np.random.default_rng(seed)
    for h, a in views(rng, (3, 5, 70), dtype):
        ref = getattr(torch, op)(torch.tensor(h), dim=axis, keepdim=keepdim).numpy()
        check(getattr(B(), op)(a, axis, keepdim), ref, dtype, op)
    # Ties: the first occurrence, as torch on the CPU.
    ties = rng.integers(0, 2, (4, 33)).astype(np.float64)
    check(getattr(B(), op)(dev(ties, dtype), 1, False),
          getattr(np, op)(ties, axis=1).astype(np.int64), dtype, op + " ties")


@pytest.mark.parametrize("correction", [0, 1])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("axis", [None, (0,), (1,), (0, 2), (1, 2)])
def test_var(backend, dtype, seed, axis, keepdim, correction):
    rng = np.random.default_rng(seed)
    for h, a in views(rng, (3, 6, 41), dtype):
        ref = torch.var(torch.tensor(h), dim=axis, keepdim=keepdim,
                        correction=correction).numpy()
        check(B().var(a, axis, keepdim, correction), ref, dtype, "var")
    # A large mean over a small spread: a one-pass E[x^2] - E[x]^2 loses it.
    h = (1000.0 + rng.standard_normal((8, 100))).astype(dtype).astype(np.float64)
    check(B().var(dev(h, dtype), (1,), False, 1),
          torch.var(torch.tensor(h), dim=1).numpy(), dtype, "var large mean",
          tol=TOL[np.dtype(dtype)] * (10 if dtype == np.float32 else 1))


MATMUL_CASES = [((1, 1), (1, 1)), ((5, 7), (7, 3)), ((33, 65), (65, 17)), ((64, 64), (64, 64)),
                ((2, 3, 4), (2, 4, 5)), ((3, 17, 1), (3, 1, 9)), ((1, 70, 40), (1, 40, 130))]


@pytest.mark.parametrize("sa,sb", MATMUL_CASES)
def test_matmul(backend, dtype, seed, sa, sb):
    rng = np.random.default_rng(seed)
    ha = rng.uniform(-1, 1, sa).astype(dtype).astype(np.float64)
    hb = rng.uniform(-1, 1, sb).astype(dtype).astype(np.float64)
    ref = (torch.tensor(ha) @ torch.tensor(hb)).numpy()
    check(B().matmul(dev(ha, dtype), dev(hb, dtype)), ref, dtype, "matmul")
    # Transposed views of both operands: no copy is made, the strides differ.
    swap = (1, 0) if len(sa) == 2 else (0, 2, 1)
    at = B().permute(dev(np.ascontiguousarray(ha.transpose(swap)), dtype), swap)
    bt = B().permute(dev(np.ascontiguousarray(hb.transpose(swap)), dtype), swap)
    check(B().matmul(at, bt), ref, dtype, "matmul transposed")


@pytest.mark.parametrize("dst_dtype", ["float32", "float64", "int64", "bool"])
@pytest.mark.parametrize("src_dtype", ["float32", "float64", "int64", "bool"])
def test_astype(backend, seed, src_dtype, dst_dtype):
    rng = np.random.default_rng(seed)
    h = rng.integers(-3, 4, (3, 17)).astype(src_dtype)
    got = B().astype(B().to_device(h, src_dtype), np.dtype(dst_dtype))
    want = h.astype(dst_dtype)
    got = B().to_host(got)
    assert got.dtype == want.dtype and (got == want).all()


def test_copy_into_strided_destination(backend, dtype, seed):
    """copy_ writes through a slice of a larger array: what cat and the slice
    backward are made of. Untouched elements keep their values."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-1, 1, (4, 9, 6))
    big = dev(base, dtype)
    idx = (slice(1, 4), slice(2, 9, 3), slice(None, None, 2))
    src_h = rng.uniform(-1, 1, (3, 3, 3))
    B().copy_(B().slice(big, idx), dev(src_h, dtype))
    want = base.astype(dtype).astype(np.float64)
    want[idx] = src_h.astype(dtype)
    check(big, want, dtype, "copy_ strided dst")
    # A transposed destination, broadcast source.
    big2 = dev(base[0], dtype)
    row = rng.uniform(-1, 1, (9,))
    B().copy_(B().permute(big2, (1, 0)), dev(row[None, :], dtype).reshape(1, 9))
    want2 = np.broadcast_to(row.astype(dtype)[:, None], (9, 6)).astype(np.float64)
    check(big2, want2, dtype, "copy_ transposed dst")


def test_pow_scalar_signed_zero_and_infinity(backend, dtype):
    """NumPy's (C99's) special cases at -0 and -inf: (-0)**-1 = -inf,
    (-inf)**3 = -inf, (-inf)**1.5 = inf, (-inf)**-2.5 = 0; (-inf)**0.5 is
    sqrt(-inf) = NaN."""
    h = np.array([-0.0, -np.inf, 0.0, np.inf, -3.0])
    for p in [2.0, 3.0, -1.0, -2.5, 0.0, 1.0, 1.5, 0.5]:
        check(B().pow_scalar(dev(h, dtype), p), torch.tensor(h.astype(dtype)).pow(p).numpy(),
              dtype, f"pow_scalar -0/-inf p={p}")


def test_astype_special_values(backend, dtype):
    """NaN and inf are nonzero (-> True), -0 is zero (-> False); float ->
    int64 truncates toward zero."""
    h = np.array([0.0, -0.0, 0.5, -2.7, np.inf, -np.inf, np.nan, 2.5])
    got = B().to_host(B().astype(dev(h, dtype), np.dtype(np.bool_)))
    assert got.dtype == np.bool_ and (got == h.astype(dtype).astype(np.bool_)).all()
    fin = h[np.isfinite(h)]
    got = B().to_host(B().astype(dev(fin, dtype), np.dtype(np.int64)))
    assert got.dtype == np.int64 and (got == fin.astype(dtype).astype(np.int64)).all()


def test_copy_converts_into_strided_destination(backend, dtype, seed):
    """copy_ casts while it scatters: an int64 or bool source into a stepped
    slice of a float array."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-1, 1, (5, 8))
    for src_dtype in (np.int64, np.bool_):
        big = dev(base, dtype)
        src = rng.integers(-3, 4, (3, 4)).astype(src_dtype)
        B().copy_(B().slice(big, (slice(0, 5, 2), slice(1, 8, 2))), B().to_device(src, src_dtype))
        want = base.astype(dtype).astype(np.float64)
        want[0:5:2, 1:8:2] = src
        check(big, want, dtype, f"copy_ {np.dtype(src_dtype).name} into strided dst")


def test_reductions_long_axis(backend, dtype, seed):
    """Axes long enough for the GPU backends to split them into chunks (each
    writes a partial result, a second pass reduces the partials): the first
    occurrence and a NaN must survive the second pass, and var's two passes
    must compose with it."""
    rng = np.random.default_rng(seed)
    ties = rng.integers(-3, 4, (2, 70001)).astype(np.float64)
    nan = ties.copy()
    nan[1, 50001] = np.nan
    for h in (ties, nan):
        a = dev(h, dtype)
        for op in ("argmax", "argmin"):
            check(getattr(B(), op)(a, 1, False), getattr(np, op)(h, axis=1), dtype, op + " long")
            check(getattr(B(), op)(B().permute(a, (1, 0)), 0, False), getattr(np, op)(h, axis=1),
                  dtype, op + " long columns")
            check(getattr(B(), op)(a, None, False), np.array(getattr(np, op)(h)), dtype,
                  op + " long flat")
        check(B().amax(a, (1,), False), torch.amax(torch.tensor(h), dim=1).numpy(), dtype,
              "amax long")
        check(B().amin(a, None, False), torch.amin(torch.tensor(h)).numpy(), dtype, "amin long")
    h = (3.0 + rng.standard_normal((2, 70001))).astype(dtype).astype(np.float64)
    check(B().var(dev(h, dtype), (1,), False, 1), torch.var(torch.tensor(h), dim=1).numpy(),
          dtype, "var long")
