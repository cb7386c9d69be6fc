"""What only the GPU backends (triton, cupy) need beyond the shared op tests:
determinism, forced split paths, whole-model agreement with the NumPy backend,
train.py on each, and the real DCGAN shapes on a GPU.

The op-by-op checks against torch are the shared ones (test_ops.py and
friends, through the `backend` fixture); this file adds what only makes sense
for a GPU backend. Every test runs once per GPU backend through the
`gpu_backend` fixture. Without a GPU the kernels run on the CPU (Triton's
interpreter, the CUDA emulator), so the sizes here are small; the
`gpu`-marked tests take the real shapes.
"""

import importlib

import numpy as np
import pytest

import kernels
import nn
from dcgan.models import build_discriminator, build_generator
from dcgan.trainer import train_step
from helpers import rel_error

# The kernel-module package of each GPU backend (for knobs the contract hides).
PACKAGES = {"triton": "kernels.triton", "cupy": "kernels.cuda"}


@pytest.fixture(params=list(PACKAGES))
def gpu_backend(request):
    reason = kernels.why_unavailable(request.param)
    if reason is not None:
        pytest.skip(f"backend {request.param!r} unavailable: {reason}")
    return request.param


# Module constants that force the multi-chunk batch-norm reduction on small shapes.
FORCE_BN_SPLIT = {"triton": {"MAX_BLOCK": 8, "TARGET_PROGRAMS": 256},
                  "cupy": {"MAX_BLOCK": 32, "TARGET_PROGRAMS": 256}}


def _module(backend, family):
    return importlib.import_module(f"{PACKAGES[backend]}.{family}")


def _random(shape, seed, dtype=np.float32):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)


def test_weight_gradient_is_bitwise_deterministic(gpu_backend, seed):
    """Split-K with a fixed-order reduction: no atomics, so runs are equal bit for bit."""
    tb = kernels.get_backend(gpu_backend)
    dy = tb.to_device(_random((2, 8, 7, 7), seed), np.float32)
    x = tb.to_device(_random((2, 5, 14, 14), seed + 1), np.float32)
    runs = [tb.to_host(tb.conv2d_backward_weight(dy, x, (4, 4), (2, 2), (1, 1), (1, 1)))
            for _ in range(3)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


@pytest.mark.parametrize("splits", [2, 3, 7])
def test_weight_gradient_split_k_matches_numpy_and_repeats(gpu_backend, seed, splits):
    """Force several split-K chunks (the small test shapes otherwise take one)."""
    conv = _module(gpu_backend, "conv")
    tb, ref = kernels.get_backend(gpu_backend), kernels.get_backend("numpy")
    dy, x = _random((2, 6, 7, 5), seed, np.float64), _random((2, 3, 15, 11), seed + 1, np.float64)
    args = ((3, 2), (2, 2), (1, 1), (1, 2))
    want = ref.conv2d_backward_weight(dy, x, *args)
    runs = [tb.to_host(conv.conv2d_backward_weight(tb.to_device(dy, np.float64),
                                                   tb.to_device(x, np.float64), *args,
                                                   splits=splits)) for _ in range(2)]
    assert rel_error(runs[0], want) <= 1e-12
    assert np.array_equal(runs[0], runs[1])


def test_batch_norm_split_reduction_path(gpu_backend, monkeypatch, seed):
    """Tiny blocks force many (channel, chunk) programs with ragged ends, the
    path real GPU shapes take; the interpreter's block sizes otherwise fit a
    whole channel in one chunk."""
    from helpers import helper_test_op
    batchnorm = _module(gpu_backend, "batchnorm")
    for knob, value in FORCE_BN_SPLIT[gpu_backend].items():
        monkeypatch.setattr(batchnorm, knob, value)
    with nn.use_backend(gpu_backend):
        for dtype in (np.float64, np.float32):
            helper_test_op([(37, 2, 5, 7), (2,), (2,)],
                           lambda F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                           dtype=dtype, seed=seed, low=1.0, high=4.0, op="batch_norm")


@pytest.mark.parametrize("logits", [False, True])
def test_dcgan_training_steps_match_the_numpy_backend(gpu_backend, seed, logits):
    """A few whole DCGAN steps (16x16 here) agree with numpy in float64."""
    def run(backend):
        with nn.use_backend(backend):
            nn.manual_seed(0)
            G = build_generator(nn, 8, 4, 1, 16).double()
            D = build_discriminator(nn, 1, 4, 16, sigmoid=not logits).double()
            G.load_state_dict(init["G"])
            D.load_state_dict(init["D"])
            optG = nn.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
            optD = nn.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
            crit = nn.BCEWithLogitsLoss() if logits else nn.BCELoss()
            rng = np.random.default_rng(seed)
            stats = []
            for _ in range(3):
                real = nn.tensor(rng.uniform(-1, 1, (4, 1, 16, 16)))
                noise = nn.tensor(rng.standard_normal((4, 8, 1, 1)))
                stats.append(train_step(G, D, optG, optD, crit, real, noise, logits))
            return stats, {k: v.numpy() for k, v in {**G.state_dict(), **{
                "D." + k: v for k, v in D.state_dict().items()}}.items()}

    with nn.use_backend("numpy"):
        nn.manual_seed(seed)
        init = {"G": build_generator(nn, 8, 4, 1, 16).state_dict(),
                "D": build_discriminator(nn, 1, 4, 16, sigmoid=not logits).state_dict()}
    s_np, w_np = run("numpy")
    s_tr, w_tr = run(gpu_backend)
    for a, b in zip(s_np, s_tr):
        for k in a:
            assert abs(a[k] - b[k]) <= 1e-9, (k, a[k], b[k])
    for k in w_np:
        assert rel_error(w_tr[k], w_np[k]) <= 1e-9, k


def test_train_py_dry_run(gpu_backend, tmp_path):
    import train
    assert train.main(["--backend", gpu_backend, "--dataset", "fake", "--dry-run", "--imageSize",
                       "16", "--ngf", "4", "--ndf", "4", "--nz", "8", "--batchSize", "8",
                       "--outf", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "checkpoint.safetensors").exists()


# ------------------------------------------------------------ real GPU shapes
# pytorch/examples' DCGAN at 64x64, batch 128: (kind, x shape, w shape, stride, padding).
DCGAN_LAYERS = [
    ("G", (128, 100, 1, 1), (100, 512, 4, 4), 1, 0),
    ("G", (128, 512, 4, 4), (512, 256, 4, 4), 2, 1),
    ("G", (128, 256, 8, 8), (256, 128, 4, 4), 2, 1),
    ("G", (128, 128, 16, 16), (128, 64, 4, 4), 2, 1),
    ("G", (128, 64, 32, 32), (64, 3, 4, 4), 2, 1),
    ("D", (128, 3, 64, 64), (64, 3, 4, 4), 2, 1),
    ("D", (128, 64, 32, 32), (128, 64, 4, 4), 2, 1),
    ("D", (128, 128, 16, 16), (256, 128, 4, 4), 2, 1),
    ("D", (128, 256, 8, 8), (512, 256, 4, 4), 2, 1),
    ("D", (128, 512, 4, 4), (1, 512, 4, 4), 1, 0),
]


@pytest.mark.gpu
@pytest.mark.parametrize("kind,x_shape,w_shape,stride,padding", DCGAN_LAYERS)
def test_dcgan_layer_shapes_on_gpu(gpu_backend, kind, x_shape, w_shape, stride, padding, seed):
    """Every DCGAN conv at its real shape: forward, dx and dw against torch in float64."""
    from helpers import helper_test_op
    with nn.use_backend(gpu_backend):
        fn = ((lambda F, x, w: F.conv_transpose2d(x, w, stride=stride, padding=padding))
              if kind == "G" else (lambda F, x, w: F.conv2d(x, w, stride=stride, padding=padding)))
        helper_test_op([x_shape, w_shape], fn, dtype=np.float32, seed=seed,
                       op="conv_transpose2d" if kind == "G" else "conv2d")


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(128, 512, 4, 4), (128, 64, 32, 32), (128, 128, 16, 16)])
def test_dcgan_batch_norm_shapes_on_gpu(gpu_backend, shape, seed):
    from helpers import helper_test_op
    C = shape[1]
    with nn.use_backend(gpu_backend):
        helper_test_op([shape, (C,), (C,)],
                       lambda F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                       dtype=np.float32, seed=seed, op="batch_norm")


# ------------------------------------------------ cupy: TF32 tensor-core convs
# Version 2 of the CUDA conv kernels runs float32 GEMMs on tensor cores in
# TF32 (10-bit mantissa): each input rounds by up to 2**-11, each product by
# about 2**-10, so against float64 the normwise error is ~3e-4 on random data.
# Stated tolerance: 2e-3. A second check removes the input rounding (float64
# on TF32-rounded inputs): what is left is fp32 summation only (<= 1e-5), which
# would fail if a fragment landed in the wrong row or column of the tile.
TF32_TOL = 2e-3
CONV_CASES = [  # (x shape, w shape, stride, padding, dilation)
    ((2, 5, 11, 9), (7, 5, 3, 2), (2, 1), (1, 0), (1, 1)),
    ((1, 3, 16, 16), (16, 3, 4, 4), (2, 2), (1, 1), (1, 1)),
    ((3, 16, 7, 7), (1, 16, 3, 3), (3, 3), (2, 1), (2, 2)),
]


def _tf32_round(a):
    bits = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x1000) & 0xFFFFE000).astype(np.uint32).view(np.float32)


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("which", ["forward", "input", "weight"])
def test_cupy_tf32_conv_within_its_tolerance(case, which, seed):
    if kernels.why_unavailable("cupy") is not None:
        pytest.skip(f"backend 'cupy' unavailable: {kernels.why_unavailable('cupy')}")
    conv, cb = _module("cupy", "conv"), kernels.get_backend("cupy")
    ref = kernels.get_backend("numpy")
    x_shape, w_shape, stride, padding, dilation = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    geo = (stride, padding, dilation)
    dy = rng.standard_normal(ref.conv2d_forward(x, w, None, *geo).shape)
    run = {  # (our call on float32 device arrays, the NumPy float64 reference on given inputs)
        "forward": (lambda a, b: conv.conv2d_forward(a, b, None, *geo, version=2),
                    lambda a, b: ref.conv2d_forward(a, b, None, *geo), (x, w)),
        "input": (lambda a, b: conv.conv2d_backward_input(a, b, x_shape[2:], *geo, version=2),
                  lambda a, b: ref.conv2d_backward_input(a, b, x_shape[2:], *geo), (dy, w)),
        "weight": (lambda a, b: conv.conv2d_backward_weight(a, b, w_shape[2:], *geo, version=2),
                   lambda a, b: ref.conv2d_backward_weight(a, b, w_shape[2:], *geo), (dy, x)),
    }[which]
    ours_fn, ref_fn, (a, b) = run
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    ours = cb.to_host(ours_fn(cb.to_device(a32, np.float32), cb.to_device(b32, np.float32)))
    err = rel_error(ours, ref_fn(a32.astype(np.float64), b32.astype(np.float64)))
    assert 1e-6 < err <= TF32_TOL, f"TF32 error {err:.2e} (expected ~3e-4: tensor cores in use)"
    exact_on_tf32 = ref_fn(_tf32_round(a32).astype(np.float64), _tf32_round(b32).astype(np.float64))
    assert rel_error(ours, exact_on_tf32) <= 1e-5


def test_cupy_precision_switch_picks_the_version():
    if kernels.why_unavailable("cupy") is not None:
        pytest.skip(f"backend 'cupy' unavailable: {kernels.why_unavailable('cupy')}")
    conv = _module("cupy", "conv")
    with pytest.raises(ValueError, match="conv2d_forward: version 2 .* float32 only"):
        x = conv.runtime.xp.ones((1, 1, 3, 3))
        conv.conv2d_forward(x, x, None, (1, 1), (0, 0), (1, 1), version=2)
    with pytest.raises(ValueError, match="tf32"):
        conv.set_precision("fp16")


# ------------------------------------------------ cupy: TF32 tensor-core matmul
# matmul.cu runs the same two GEMM main loops as the convs (gemm.cuh), so the
# same stated tolerance and reason: TF32 inputs (10-bit mantissa) put the
# normwise error against float64 near 3e-4 on random data, held to TF32_TOL;
# float64 on the TF32-rounded inputs must agree to 1e-5 (fp32 summation
# only), which a fragment in the wrong row or column would fail. The cases
# cover both tiles (N > 8 and N <= 8), batches, and all four load layouts:
# each operand as given and as a transposed view (no copy, other strides).
MATMUL_TF32_CASES = [((33, 65), (65, 17)), ((70, 40), (40, 5)), ((3, 17, 24), (3, 24, 9)),
                     ((2, 9, 130), (2, 130, 70))]


@pytest.mark.parametrize("sa,sb", MATMUL_TF32_CASES)
def test_cupy_tf32_matmul_within_its_tolerance(sa, sb, seed):
    if kernels.why_unavailable("cupy") is not None:
        pytest.skip(f"backend 'cupy' unavailable: {kernels.why_unavailable('cupy')}")
    mm, cb = _module("cupy", "matmul"), kernels.get_backend("cupy")
    rng = np.random.default_rng(seed)
    a32 = rng.standard_normal(sa).astype(np.float32)
    b32 = rng.standard_normal(sb).astype(np.float32)
    want = a32.astype(np.float64) @ b32.astype(np.float64)
    exact_on_tf32 = _tf32_round(a32).astype(np.float64) @ _tf32_round(b32).astype(np.float64)
    swap = (1, 0) if len(sa) == 2 else (0, 2, 1)

    def as_given_and_transposed(h):
        return [cb.to_device(h, np.float32),
                cb.permute(cb.to_device(np.ascontiguousarray(h.transpose(swap)), np.float32),
                           swap)]

    for a in as_given_and_transposed(a32):
        for b in as_given_and_transposed(b32):
            ours = cb.to_host(mm.matmul(a, b, version=2))
            err = rel_error(ours, want)
            assert 1e-6 < err <= TF32_TOL, f"TF32 error {err:.2e} (expected ~3e-4)"
            assert rel_error(ours, exact_on_tf32) <= 1e-5


def test_cupy_matmul_precision_switch_picks_the_version(monkeypatch, seed):
    """conv's PRECISION (NN_CUPY_PRECISION, set_precision) is matmul's too."""
    if kernels.why_unavailable("cupy") is not None:
        pytest.skip(f"backend 'cupy' unavailable: {kernels.why_unavailable('cupy')}")
    conv, mm, cb = _module("cupy", "conv"), _module("cupy", "matmul"), kernels.get_backend("cupy")
    a = cb.to_device(_random((20, 30), seed), np.float32)
    b = cb.to_device(_random((30, 12), seed + 1), np.float32)
    runs = {}
    for precision, version in (("tf32", 2), ("ieee", 1)):
        monkeypatch.setattr(conv, "PRECISION", precision)
        runs[version] = cb.to_host(cb.matmul(a, b))
        assert np.array_equal(runs[version], cb.to_host(mm.matmul(a, b, version=version)))
    assert not np.array_equal(runs[1], runs[2])  # the two versions really differ
    with pytest.raises(ValueError, match="matmul: version 2 .* float32 only"):
        x = mm.runtime.xp.ones((2, 2))
        mm.matmul(x, x, version=2)
    with pytest.raises(ValueError, match="matmul: inner dimensions differ"):
        mm.matmul(a, a)


# ------------------------------------- fused batch norm + activation (both GPU backends)
@pytest.mark.parametrize("activation,slope", [("relu", 0.0), ("leaky_relu", 0.2),
                                              ("leaky_relu", -0.3)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3, 7, 9), (37, 2, 1, 1), (1, 1, 2, 3)])
def test_fused_batch_norm_activation_matches_bn_then_activation(gpu_backend, activation, slope,
                                                                training, shape, dtype, seed):
    """batchnorm.train/eval_forward(..., activation=...) and backward(..., activation=...)
    against torch float64's batch_norm followed by the activation, through
    autograd with a random upstream gradient: the output, dx, dweight, dbias,
    and the running statistics the training forward updates."""
    import torch
    import torch.nn.functional as F
    bn, gb = _module(gpu_backend, "batchnorm"), kernels.get_backend(gpu_backend)
    rng = np.random.default_rng(seed)
    C = shape[1]
    x, dy = rng.uniform(-2, 2, shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    w, b = rng.uniform(0.5, 1.5, C).astype(dtype), rng.uniform(-0.5, 0.5, C).astype(dtype)
    rm, rv = rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2, C).astype(dtype)
    dev = lambda a: gb.to_device(a, dtype)  # noqa: E731
    d_rm, d_rv = dev(rm), dev(rv)
    if training:
        y, mean, invstd = bn.train_forward(dev(x), dev(w), dev(b), d_rm, d_rv, 0.1, 1e-5,
                                           activation=activation, negative_slope=slope)
    else:
        y, mean, invstd = bn.eval_forward(dev(x), dev(w), dev(b), d_rm, d_rv, 1e-5,
                                          activation=activation, negative_slope=slope)
    got = bn.backward(dev(dy), dev(x), dev(w), mean, invstd, training, bias=dev(b),
                      activation=activation, negative_slope=slope)

    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in "xwb")
         for k, v in dict(x=x, w=w, b=b).items()}
    t_rm, t_rv = torch.tensor(rm, dtype=torch.float64), torch.tensor(rv, dtype=torch.float64)
    z = F.batch_norm(t["x"], t_rm, t_rv, t["w"], t["b"], training, 0.1, 1e-5)
    want_y = F.relu(z) if activation == "relu" else F.leaky_relu(z, slope)
    want_y.backward(torch.tensor(dy, dtype=torch.float64))

    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert rel_error(gb.to_host(y), want_y.detach().numpy()) <= tol
    for name, ours, key in zip(("dx", "dweight", "dbias"), got, "xwb"):
        assert rel_error(gb.to_host(ours), t[key].grad.numpy()) <= tol, name
    assert rel_error(gb.to_host(d_rm), t_rm.numpy()) <= tol
    assert rel_error(gb.to_host(d_rv), t_rv.numpy()) <= tol
