"""Bad input gets a clear error naming the op, what it expected and what came."""

import numpy as np
import pytest

import nn
import nn.functional as F


def t(*shape, dtype=nn.float32):
    return nn.tensor(np.random.default_rng(0).uniform(0.1, 0.9, shape), dtype=dtype)


@pytest.mark.parametrize("call,error,pattern", [
    (lambda: F.conv2d(t(2, 3, 8, 8), t(4, 2, 3, 3)), ValueError,
     r"conv2d: input has 3 channels but weight of shape \(4, 2, 3, 3\) with groups=1 "
     r"expects 2"),
    (lambda: F.conv2d(t(8, 8), t(4, 3, 3, 3)), ValueError,
     r"conv2d: expected input \(N, C, H, W\) or \(C, H, W\) to be 4-d, got shape \(8, 8\)"),
    (lambda: F.conv2d(t(2, 3, 8, 8), t(4, 3, 3)), ValueError, r"conv2d: expected weight to be 4-d"),
    (lambda: F.conv2d(t(2, 3, 8, 8), t(4, 3, 3, 3), t(5)), ValueError,
     r"conv2d: bias must have shape \(4,\), got \(5,\)"),
    (lambda: F.conv2d(t(2, 4, 8, 8), t(3, 2, 3, 3), groups=2), ValueError,
     r"conv2d: groups=2 must divide the input channels \(4\) and the output channels \(3\)"),
    (lambda: F.conv2d(t(2, 4, 8, 8), t(4, 2, 3, 3), groups=0), ValueError,
     r"conv2d: groups must be a positive int, got 0"),
    (lambda: F.conv2d(t(1, 1, 2, 2), t(1, 1, 3, 3)), ValueError, r"conv2d: the output would be empty"),
    (lambda: F.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), stride=0), ValueError, r"conv2d: stride and dilation"),
    (lambda: F.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), stride=(1, 2, 3)), TypeError,
     r"conv2d: stride must be an int or a pair"),
    (lambda: F.conv_transpose2d(t(2, 3, 4, 4), t(4, 5, 4, 4)), ValueError,
     r"conv_transpose2d: input has 3 channels but weight of shape \(4, 5, 4, 4\) with "
     r"groups=1 expects 4"),
    (lambda: F.conv_transpose2d(t(2, 3, 4, 4), t(3, 5, 4, 4), stride=2, output_padding=2),
     ValueError, r"conv_transpose2d: output_padding must be smaller than either stride or dilation"),
    (lambda: F.conv2d(t(2, 3, 8, 8), t(4, 3, 3, 3, dtype=nn.float64)), TypeError,
     r"conv2d: dtype mismatch, got float32 and float64"),
    (lambda: F.batch_norm(t(4, 3, 2, 2), t(2), t(2), training=False), ValueError,
     r"batch_norm: running_mean must have shape \(3,\)"),
    (lambda: F.batch_norm(t(4, 3, 2, 2), None, None, training=False), ValueError,
     r"batch_norm: eval mode .* needs running_mean"),
    (lambda: F.batch_norm(t(1, 3), None, None, training=True), ValueError,
     r"batch_norm: expected more than 1 value per channel when training"),
    (lambda: nn.BatchNorm2d(3)(t(4, 3)), ValueError, r"BatchNorm2d: expected 4D input"),
    (lambda: F.binary_cross_entropy(t(4) * 3.0, t(4)), ValueError,
     r"binary_cross_entropy: all elements of input should be between 0 and 1"),
    (lambda: F.binary_cross_entropy(t(4), t(5)), ValueError,
     r"binary_cross_entropy: target shape \(5,\) must equal input shape \(4,\)"),
    (lambda: F.binary_cross_entropy_with_logits(t(4), t(4), reduction="avg"), ValueError,
     r"binary_cross_entropy_with_logits: reduction must be one of"),
    (lambda: t(2, 3) + t(4, 5), ValueError, r"add: shapes \(2, 3\) and \(4, 5\) do not broadcast"),
    (lambda: t(2, 3).reshape(4, 2), ValueError, r"reshape: shape \(4, 2\) is invalid for a tensor of 6"),
    (lambda: t(2, 3).sum(dim=2), IndexError, r"sum: dim 2 is out of range for a 2-d tensor"),
    (lambda: nn.tensor([1.0], dtype=np.float16), TypeError,
     r"tensor: dtype must be float32 or float64, got"),
    (lambda: nn.tensor(["a"]), TypeError, r"tensor: cannot make a tensor from data of dtype"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError,
     r"Conv2d: groups=4 must be a positive int dividing in_channels \(4\) and out_channels "
     r"\(6\)"),
    (lambda: nn.optim.Adam([nn.Parameter(t(2))], lr=-1), ValueError, r"Adam: invalid learning rate"),
    (lambda: F.binary_cross_entropy(t(4), t(4) * 3.0), ValueError,
     r"binary_cross_entropy: all elements of target should be between 0 and 1"),
    (lambda: F.batch_norm(t(4, 3), None, None, training=True, eps=0.0), ValueError,
     r"batch_norm: eps must be positive during training, got 0.0"),
    (lambda: F.batch_norm(t(4, 3), None, None, training=True, eps=-1e-5), ValueError,
     r"batch_norm: eps must be positive during training"),
    (lambda: nn.Conv2d(3, 4, 0), ValueError, r"Conv2d: kernel_size must be positive, got \(0, 0\)"),
    (lambda: nn.ConvTranspose2d(3, 4, (2, -1)), ValueError,
     r"ConvTranspose2d: kernel_size must be positive, got \(2, -1\)"),
    (lambda: F.conv2d(t(1, 3, 5, 5), t(0, 3, 3, 3)), ValueError,
     r"conv2d: weight of shape \(0, 3, 3, 3\) is empty"),
])
def test_bad_input_raises_a_clear_error(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'; known backends: triton, cupy, numpy"):
        nn.set_backend("tpu")
    with pytest.raises(ValueError, match="unknown backend"):
        with nn.use_backend("tpu"):
            pass
    assert nn.get_backend() == "numpy"


def test_unavailable_backend_says_why_and_lists_the_available_ones(monkeypatch):
    import kernels
    from helpers import make_cupy_unavailable
    name = make_cupy_unavailable(monkeypatch)
    with pytest.raises(kernels.BackendUnavailableError,
                       match=rf"backend '{name}' cannot run on this machine: .*Available backends: "):
        nn.set_backend(name)


def test_load_state_dict_names_the_bad_key():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    sd = m.state_dict()
    sd["0.weight"] = np.zeros((2, 1, 2, 2))
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight"):
        m.load_state_dict(sd)
    del sd["0.weight"]
    sd["extra"] = np.zeros(1)
    with pytest.raises(RuntimeError, match=r"Missing key\(s\) in state_dict: '0.weight'"):
        m.load_state_dict(sd)


def test_optimizer_state_asking_for_unsupported_options_is_refused():
    import torch
    tp = torch.nn.Parameter(torch.ones(2))
    saved = torch.optim.Adam([tp], maximize=True).state_dict()
    opt = nn.optim.Adam([nn.Parameter(t(2))])
    with pytest.raises(NotImplementedError, match=r"Adam.load_state_dict: .*maximize=True"):
        opt.load_state_dict(saved)


def test_conv2d_module_has_torch_attributes():
    m = nn.Conv2d(1, 1, 1)
    assert m.output_padding == (0, 0) and m.stride == (1, 1) and m.padding == (0, 0)


# ------------------------------------------------------------- issue 14 items
def test_functional_batch_norm_refuses_momentum_none_naming_the_op():
    # torch's functional refuses it too (TypeError): the cumulative average
    # needs the count of batches, which only the module keeps.
    with pytest.raises(TypeError, match=r"batch_norm: momentum must be a float, got None; "
                                        r"for the cumulative moving average use "
                                        r"BatchNorm2d\(momentum=None\)"):
        F.batch_norm(t(4, 3, 2, 2), t(3), t(3), training=True, momentum=None)


@pytest.mark.parametrize("name", ["numpy", "cupy"])
def test_batch_norm2d_momentum_none_is_torchs_cumulative_average(name, seed):
    import torch
    from kernels import why_unavailable
    if why_unavailable(name):
        pytest.skip(f"backend {name!r} unavailable: {why_unavailable(name)}")
    rng = np.random.default_rng(seed)
    ref = torch.nn.BatchNorm2d(3, momentum=None).double()
    with nn.use_backend(name):
        ours = nn.BatchNorm2d(3, momentum=None, dtype=nn.float64)
        for step in range(4):
            x = rng.uniform(-2.0, 3.0, (5, 3, 4, 3)) * rng.uniform(0.5, 2.0, (1, 3, 1, 1))
            y, t_y = ours(nn.tensor(x)), ref(torch.tensor(x))
            assert np.abs(y.numpy() - t_y.detach().numpy()).max() < 1e-12
            for buf in ("running_mean", "running_var"):
                got, want = getattr(ours, buf).numpy(), getattr(ref, buf).numpy()
                err = np.linalg.norm(got - want) / np.linalg.norm(want)
                assert err < 1e-12, f"step {step}: {buf} relative error {err:.2e}"
            assert int(ours.state_dict()["num_batches_tracked"].item()) == step + 1
        # Loading torch's counter continues its average.
        ours.load_state_dict(ref.state_dict())
        x = rng.standard_normal((5, 3, 4, 3))
        ours(nn.tensor(x)), ref(torch.tensor(x))
        assert np.abs(ours.running_mean.numpy() - ref.running_mean.numpy()).max() < 1e-12


def test_batch_norm_counter_is_counted_on_the_host_not_by_a_kernel():
    # `num_batches_tracked += 1` on a device array is a CuPy-generated kernel
    # (not ours) in every training forward; the counter lives on the host.
    import kernels
    B = kernels.get_backend("cupy")
    with nn.use_backend("cupy"):
        bn = nn.BatchNorm2d(3)
        x = nn.randn(4, 3, 2, 2)
        with B.count_traffic() as traffic:
            bn(x)
    assert bn.num_batches_tracked._backend.name == "numpy"
    assert int(bn.num_batches_tracked.item()) == 1
    assert traffic.d2h == traffic.h2d == 0
    assert all(name.startswith("bn_") for name in traffic.launches), traffic.launches


def test_duplicate_parameter_gives_torchs_warning_and_one_update():
    import torch
    p = nn.Parameter(t(3, dtype=nn.float64))
    with pytest.warns(UserWarning, match=r"optimizer contains a parameter group with duplicate "
                                         r"parameters; in future, this will cause an error"):
        opt = nn.optim.Adam([p, p], lr=0.1)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        torch.optim.Adam([torch.nn.Parameter(torch.ones(2))] * 2)
    once = nn.Parameter(nn.tensor(p.numpy()))
    ref = nn.optim.Adam([once], lr=0.1)
    for q, o in ((p, opt), (once, ref)):
        (q * q).sum().backward()
        o.step()
    assert np.array_equal(p.numpy(), once.numpy())  # updated once, not twice (nor raced)


@pytest.mark.parametrize("name", ["numpy", "cupy"])
def test_bce_names_non_finite_input_before_the_range(name):
    from kernels import why_unavailable
    if why_unavailable(name):
        pytest.skip(f"backend {name!r} unavailable: {why_unavailable(name)}")
    with nn.use_backend(name):
        p = nn.tensor([0.2, float("nan"), 0.7])
        with pytest.raises(ValueError, match=r"binary_cross_entropy: input has non-finite values"):
            F.binary_cross_entropy(p, nn.ones(3))
        with pytest.raises(ValueError, match=r"binary_cross_entropy: input has non-finite values"):
            F.binary_cross_entropy(nn.tensor([0.5, float("inf")]), nn.ones(2))
        # Deferred (a training step): non-finite is recorded, not raised...
        with nn.losses.deferred_range_checks() as checks:
            F.binary_cross_entropy(p, nn.ones(3))
        assert checks.read() == ["binary_cross_entropy: input"]
        # ... and a finite value outside [0, 1] is still the range error, read
        # at logging time on a GPU backend, at once on NumPy.
        with pytest.raises(ValueError, match=r"binary_cross_entropy: all elements of input "
                                             r"should be between 0 and 1 \(got min 0.2, max 1.5\)"):
            with nn.losses.deferred_range_checks() as checks:
                F.binary_cross_entropy(nn.tensor([0.2, 1.5]), nn.ones(2))
            checks.read()


@pytest.mark.parametrize("name", ["numpy", "cupy"])
def test_bce_training_with_non_finite_d_output_is_divergence(tmp_path, monkeypatch, capsys, name):
    """--loss bce: a NaN D output exits 3 with train.py's divergence message,
    never the "did you mean logits" range error (issue 14)."""
    import train
    from kernels import why_unavailable
    if why_unavailable(name):
        pytest.skip(f"backend {name!r} unavailable: {why_unavailable(name)}")
    build = train.build_models

    def nan_d(args, nc, ckpt):
        models = build(args, nc, ckpt)  # netG, netD, optG, optD, ...
        with nn.no_grad():
            models[1].main[-2].weight.fill_(float("nan"))  # the last conv: D(x) = sigmoid(NaN)
        return models

    monkeypatch.setattr(train, "build_models", nan_d)
    argv = ["--dataset", "fake", "--imageSize", "16", "--ngf", "4", "--ndf", "4", "--nz", "8",
            "--batchSize", "8", "--manualSeed", "7", "--workers", "1", "--dry-run",
            "--backend", name, "--outf", str(tmp_path / "out")]
    assert train.main(argv) == 3
    err = capsys.readouterr().err
    assert "training diverged at iteration 1" in err
    assert "logits" not in err and "between 0 and 1" not in err
