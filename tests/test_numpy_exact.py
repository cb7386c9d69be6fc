"""The NumPy backend's fast paths against torch, beyond the parity tests.

- ReLU / LeakyReLU backwards bit for bit with inf and NaN upstream gradients
  (a multiply by a 0/1 mask would turn inf * 0 into NaN where torch gives 0),
  and the one documented difference (a NaN ReLU output).
- The batch-last convolution (kernels/numpy_kernels/conv.py) on odd shapes:
  batches that are not a multiple of its 8-image blocks, groups, dilation,
  non-contiguous inputs; and its thread-split copies equal to the one-thread
  result bit for bit.
- The few-pass batch norm: float64 parity, float32 accuracy when the mean is
  large (the variance is two-pass), the running statistics as torch updates
  them, H*W = 1.
- float32 stays float32 through every one of these kernels.
"""

import os
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kernels
from kernels.numpy_kernels import threads

B = kernels.get_backend("numpy")
TOL = {np.float64: 1e-10, np.float32: 1e-5}
SPECIALS = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e38, -3.5])


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def upstream_with_specials(rng, shape, dtype):
    """A random gradient with inf, -inf, NaN and signed zeros sprinkled on
    both sides of the activation's mask."""
    g = rng.standard_normal(shape)
    flat = g.reshape(-1)
    where = rng.choice(flat.size, size=flat.size // 3, replace=False)
    flat[where] = rng.choice(SPECIALS, size=where.size)
    return g.astype(dtype)


def assert_same_bits(ours, ref):
    """Equal values, NaN where NaN, and the same sign of zero."""
    ref = ref.numpy()
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert np.array_equal(ours[ok], ref[ok])
    assert np.array_equal(np.signbit(ours[ok]), np.signbit(ref[ok]))


# ------------------------------------------------------------- activations
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [0.2, 0.01, 0.0, -0.5, 1.7])
def test_leaky_relu_backward_is_torchs_with_inf_and_nan(dtype, slope):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 5, 7, 9)).astype(dtype)
    x.reshape(-1)[:4] = [0.0, -0.0, np.nan, -np.inf]  # the mask's edge cases
    dy = upstream_with_specials(rng, x.shape, dtype)
    ours = B.leaky_relu_backward(dy, x, slope)
    ref = torch.ops.aten.leaky_relu_backward(torch.from_numpy(dy), torch.from_numpy(x),
                                             slope, False)
    assert_same_bits(ours, ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_is_torchs_with_inf_and_nan_upstream(dtype):
    rng = np.random.default_rng(8)
    y = np.maximum(rng.standard_normal((4, 6, 5, 3)), 0).astype(dtype)
    y.reshape(-1)[:2] = [0.0, -0.0]
    dy = upstream_with_specials(rng, y.shape, dtype)
    ours = B.relu_backward(dy, y)
    ref = torch.ops.aten.threshold_backward(torch.from_numpy(dy), torch.from_numpy(y), 0)
    assert_same_bits(ours, ref)
    # Where y == 0 an inf or NaN dy gives +0, not NaN (what a 0/1 multiply gives).
    zero = y == 0
    assert np.all(ours[zero] == 0) and not np.any(np.signbit(ours[zero]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mask_kernels_keep_shape_for_0d_and_strided(dtype):
    x = np.array(-1.0, dtype)
    for out in (B.relu_backward(np.array(np.inf, dtype), x),
                B.leaky_relu_backward(np.array(np.inf, dtype), x, 0.0)):
        assert out.shape == () and out.dtype == dtype and isinstance(out, np.ndarray)
    assert B.relu_backward(np.array(np.inf, dtype), x) == 0
    assert np.isnan(B.leaky_relu_backward(np.array(np.inf, dtype), x, 0.0))  # torch: inf * 0
    t = np.arange(-6.0, 6.0, dtype=dtype).reshape(3, 4).T  # a transposed view
    assert np.array_equal(B.relu_backward(t, t), np.where(t > 0, t, 0))
    assert np.array_equal(B.leaky_relu_backward(t, t, 0.5), np.where(t > 0, t, t * dtype(0.5)))


def test_relu_backward_nan_output_the_documented_difference():
    """The contract says dy where y > 0, else 0; torch's threshold_backward
    tests y <= 0 instead, so at a NaN output (a NaN input) torch passes dy
    and we give 0. Everything else is equal (the test above)."""
    y = np.array([np.nan, 1.0, 0.0])
    dy = np.array([5.0, 6.0, 7.0])
    assert np.array_equal(B.relu_backward(dy, y), [0.0, 6.0, 0.0])
    ref = torch.ops.aten.threshold_backward(torch.from_numpy(dy), torch.from_numpy(y), 0)
    assert np.array_equal(ref.numpy(), [5.0, 6.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_forward_keeps_nan_and_dtype(dtype):
    x = np.array([np.nan, -np.inf, -1.0, -0.0, 0.0, 2.0, np.inf], dtype)
    y = B.relu_forward(x)
    assert y.dtype == dtype
    assert np.array_equal(y, torch.relu(torch.from_numpy(x)).numpy(), equal_nan=True)


# ------------------------------------------------------------- convolution
# (x shape, w shape, stride, padding, dilation, groups): batches of 1, 3, 8,
# 13 and 17 images (the batch-last copy moves 8 at a time), odd sizes.
CONVS = [
    ((13, 3, 11, 9), (5, 3, 3, 2), (2, 1), (1, 0), (1, 1), 1),
    ((1, 4, 7, 7), (6, 2, 3, 3), (1, 1), (2, 2), (2, 2), 2),
    ((17, 2, 8, 10), (3, 2, 4, 4), (2, 2), (1, 1), (1, 1), 1),
    ((8, 6, 5, 6), (6, 1, 2, 3), (3, 2), (0, 1), (1, 2), 6),
    ((3, 5, 4, 4), (7, 5, 4, 4), (1, 1), (0, 0), (1, 1), 1),
]


def conv_case(case, dtype, seed, contiguous=True):
    xs, ws, stride, padding, dilation, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    if not contiguous:  # the same values through a transposed view
        x = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    tx, tw, tb = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w, b))
    ty = F.conv2d(tx, tw, tb, stride, padding, dilation, groups)
    dy = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(dy, dtype=torch.float64))
    ref = dict(y=ty.detach().numpy(), dx=tx.grad.numpy(), dw=tw.grad.numpy(), db=tb.grad.numpy())
    return x, w, b, dy, ref


def run_conv(case, x, w, b, dy):
    _, ws, stride, padding, dilation, groups = case
    return dict(
        y=B.conv2d_forward(x, w, b, stride, padding, dilation, groups),
        dx=B.conv2d_backward_input(dy, w, x.shape[2:], stride, padding, dilation, groups),
        dw=B.conv2d_backward_weight(dy, x, ws[2:], stride, padding, dilation, groups),
        db=B.conv2d_backward_bias(dy))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONVS)
@pytest.mark.parametrize("contiguous", [True, False])
def test_conv_batch_last_matches_torch(case, dtype, contiguous):
    x, w, b, dy, ref = conv_case(case, dtype, 11, contiguous)
    ours = run_conv(case, x, w, b, dy)
    for k, v in ours.items():
        assert v.dtype == dtype and v.shape == ref[k].shape and v.flags.c_contiguous, k
        assert rel(v, ref[k]) < TOL[dtype], (k, rel(v, ref[k]))


@pytest.mark.parametrize("case", CONVS[:3])
def test_conv_thread_split_equals_one_thread(case, monkeypatch):
    """The copies and col2im adds split over threads write disjoint parts,
    so the result is the one-thread result bit for bit."""
    x, w, b, dy, _ = conv_case(case, np.float32, 12)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    one = run_conv(case, x, w, b, dy)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    monkeypatch.setattr(threads, "_MIN_ELEMENTS", 1)  # split even these small passes
    split = run_conv(case, x, w, b, dy)
    for k in one:
        assert np.array_equal(one[k], split[k]), k


def test_parallel_for_covers_the_range_once_and_reraises(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    seen = np.zeros(10, int)

    def mark(a, b):
        seen[a:b] += 1
    threads.parallel_for(mark, 10, elements=1 << 30)
    assert np.all(seen == 1)

    def boom(a, b):
        if a > 0:
            raise ValueError("from a worker")
    with pytest.raises(ValueError, match="from a worker"):
        threads.parallel_for(boom, 10, elements=1 << 30)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_parallel_for_works_in_a_forked_child(monkeypatch):
    """A child inherits the pool object but not its threads: it must make
    its own rather than wait forever on threads that do not exist."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    threads.parallel_for(lambda a, b: None, 4, elements=1 << 30)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the split ran both halves
        seen = []
        threads.parallel_for(lambda a, b: seen.append((a, b)), 4, elements=1 << 30)
        os._exit(0 if sorted(seen) == [(0, 2), (2, 4)] else 1)
    for _ in range(200):  # 20 s: a child stuck on the parent's threads never exits
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("parallel_for hung in a forked child")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# -------------------------------------------------------------- batch norm
def torch_batch_norm(x, w, b, dy, training, running=None):
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tw = None if w is None else torch.tensor(w, dtype=torch.float64, requires_grad=True)
    tb = None if b is None else torch.tensor(b, dtype=torch.float64, requires_grad=True)
    rm, rv = (None, None) if running is None else (
        torch.tensor(r, dtype=torch.float64) for r in running)
    y = F.batch_norm(tx, rm, rv, tw, tb, training, 0.1, 1e-5)
    y.backward(torch.tensor(dy, dtype=torch.float64))
    grads = [None if t is None else t.grad.numpy() for t in (tx, tw, tb)]
    stats = None if rm is None else (rm.numpy(), rv.numpy())
    return y.detach().numpy(), grads, stats


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 3, 7, 9), (6, 4, 1, 1), (1, 2, 3, 5)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(dtype, shape, affine, training):
    rng = np.random.default_rng(13)
    C = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = (rng.random(C) + 0.5).astype(dtype) if affine else None
    b = rng.standard_normal(C).astype(dtype) if affine else None
    running = [rng.standard_normal(C).astype(dtype), (rng.random(C) + 0.5).astype(dtype)]
    ref_y, ref_grads, ref_stats = torch_batch_norm(x, w, b, dy, training, running)
    rm, rv = (r.copy() for r in running)
    if training:
        y, mean, invstd = B.batch_norm_train_forward(x, w, b, rm, rv, 0.1, 1e-5)
        for ours, ref in zip((rm, rv), ref_stats):
            assert ours.dtype == dtype and rel(ours, ref) < TOL[dtype]
    else:
        y, mean, invstd = B.batch_norm_eval_forward(x, w, b, rm, rv, 1e-5)
    grads = B.batch_norm_backward(dy, x, w, mean, invstd, training)
    assert y.dtype == dtype and y.shape == shape and rel(y, ref_y) < TOL[dtype]
    for ours, ref in zip(grads, ref_grads):
        if ref is None:
            assert ours is None
            continue
        assert ours.dtype == dtype and ours.shape == ref.shape
        assert rel(ours, ref) < TOL[dtype]


def test_batch_norm_float32_large_mean_keeps_the_variance():
    """x = 1000 + N(0, 0.01): E[x^2] - mean^2 would cancel every digit of
    the variance in float32; the two-pass form is as good as torch's own
    float32 (both are limited by x itself: float32 spacing near 1000 is
    6e-5, 0.6% of the std)."""
    rng = np.random.default_rng(14)
    x = (1000 + 0.01 * rng.standard_normal((8, 3, 6, 6))).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    ref_y, (ref_dx, _, _), _ = torch_batch_norm(x, None, None, dy, True)
    tx = torch.tensor(x, requires_grad=True)
    t32 = F.batch_norm(tx, None, None, training=True)
    t32.backward(torch.from_numpy(dy))
    y, mean, invstd = B.batch_norm_train_forward(x, None, None, None, None, 0.1, 1e-5)
    dx, _, _ = B.batch_norm_backward(dy, x, None, mean, invstd, True)
    assert rel(y, ref_y) < 2 * rel(t32.detach().numpy(), ref_y) + 1e-5
    assert rel(dx, ref_dx) < 2 * rel(tx.grad.numpy(), ref_dx) + 1e-5


def test_batch_norm_eval_does_not_alias_the_running_stats():
    rm, rv = np.zeros(3), np.ones(3)
    x = np.random.default_rng(15).standard_normal((2, 3, 2, 2))
    _, mean, invstd = B.batch_norm_eval_forward(x, None, None, rm, rv, 1e-5)
    rm += 1
    rv += 1
    assert np.all(mean == 0) and np.allclose(invstd, 1 / np.sqrt(1 + 1e-5))
