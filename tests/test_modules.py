"""Modules against torch.nn: the DCGAN models end to end, default initialisation,
state_dict / load_state_dict, the Module utilities, BatchNorm2d's variants, the
conv modules and the loss modules.

Each parity test builds the torch module, copies its state into ours with
`load_state_dict`, and compares forward outputs, every gradient and every
buffer. The reference is always torch in float64, fed exactly the values our
model sees (for float32: float32 weights and inputs, widened), so the float32
tolerance measures only our float32 rounding: 1e-10 relative in float64, 1e-5
in float32 (DEVELOPERS.md).
"""

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch

import nn
from dcgan.models import build_discriminator, build_generator
from torch_dcgan_init import dcgan_weights_init
from helpers import dcgan_image_size, rel_error

TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
TORCH_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}

NZ, NGF, NDF, NC, BATCH = 8, 4, 4, 3, 3


# ------------------------------------------------------------------ helpers
def _build(lib, which):
    if which == "G":
        return build_generator(lib, NZ, NGF, NC, dcgan_image_size())
    return build_discriminator(lib, NC, NDF, dcgan_image_size())


def _input_shape(which):
    size = dcgan_image_size()
    return (BATCH, NZ, 1, 1) if which == "G" else (BATCH, NC, size, size)


def _torch_reference(which, dtype, seed):
    """(torch model in `dtype`, its exact float64 copy): DCGAN's weights_init,
    then non-trivial BN biases and running statistics, so that every term of
    the BN forward and backward does work."""
    torch.manual_seed(seed % 2 ** 31)
    tm = _build(torch.nn, which).to(TORCH_DTYPE[dtype])
    dcgan_weights_init(tm, seed)
    gen = torch.Generator().manual_seed(seed % 2 ** 31 + 1)
    with torch.no_grad():
        for m in tm.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.normal_(0.0, 0.1, generator=gen)
                m.running_mean.normal_(0.0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
    return tm, copy.deepcopy(tm).double()


def _ours_from(torch_model, which, dtype):
    ours = _build(nn, which).to(dtype)
    ours.load_state_dict(torch_model.state_dict())
    return ours


def _to_np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return t.numpy() if isinstance(t, nn.Tensor) else np.asarray(t)


def _assert_close(ours, ref, tol, what):
    err = rel_error(_to_np(ours), _to_np(ref))
    assert err <= tol, f"{what}: relative error {err:.3e} > {tol:.0e}"
    return err


def _assert_buffers_match(ours, ref, tol, where=""):
    """Every buffer of `ours` against torch's, by name; None buffers must agree too."""
    t_bufs = dict(ref.named_buffers())
    o_bufs = dict(ours.named_buffers())
    assert o_bufs.keys() == t_bufs.keys(), f"{where}buffer names {list(o_bufs)} vs {list(t_bufs)}"
    for name, tb in t_bufs.items():
        ob = o_bufs[name]
        assert ob.shape == tuple(tb.shape), f"{where}{name}: shape {ob.shape} vs {tuple(tb.shape)}"
        if name.endswith("num_batches_tracked"):
            assert ob.dtype == np.int64, f"{where}{name}: dtype {ob.dtype}"
            assert int(ob.item()) == int(tb.item()), f"{where}{name}: {ob.item()} vs {tb.item()}"
        else:
            _assert_close(ob, tb, tol, f"{where}{name}")


# ------------------------------------------------------------- DCGAN models
@pytest.mark.parametrize("which", ["G", "D"])
def test_dcgan_state_dict_keys_and_names_match_torch(backend, which):
    tm, ours = _build(torch.nn, which), _build(nn, which)
    t_sd, o_sd = tm.state_dict(), ours.state_dict()
    assert list(o_sd) == list(t_sd)  # same keys, same order
    for k in t_sd:
        assert o_sd[k].shape == tuple(t_sd[k].shape), k
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in tm.named_modules()]
    assert [type(m).__name__ for m in ours.modules()] == [type(m).__name__ for m in tm.modules()]
    for (n, p), (_, tp) in zip(ours.named_parameters(), tm.named_parameters()):
        assert isinstance(p, nn.Parameter) and p.requires_grad, n
        assert p.shape == tuple(tp.shape), n


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("which", ["G", "D"])
def test_dcgan_matches_torch(backend, dtype, seed, which, mode):
    """Forward output, the input's and every parameter's gradient, and the BN
    buffers, after loading torch's state_dict."""
    tol = TOL[dtype]
    tm, ref = _torch_reference(which, dtype, seed)
    ours = _ours_from(tm, which, dtype)
    ref.train(mode == "train")
    ours.train(mode == "train")
    _assert_buffers_match(ours, ref, tol, "after load: ")

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(_input_shape(which))
    if which == "D":
        x = np.tanh(x)  # images in [-1, 1], as G makes them
    x = x.astype(dtype).astype(np.float64)
    t_x = torch.tensor(x, requires_grad=True)
    o_x = nn.tensor(x, dtype=dtype, requires_grad=True)

    t_out, o_out = ref(t_x), ours(o_x)
    assert o_out.shape == tuple(t_out.shape)
    assert o_out.dtype == dtype
    _assert_close(o_out, t_out, tol, f"{which} {mode} forward ({dtype})")
    # train mode: one update of running_mean/var, num_batches_tracked = 1;
    # eval mode: the buffers are left as loaded.
    _assert_buffers_match(ours, ref, tol, f"{mode} forward: ")

    up = rng.standard_normal(tuple(t_out.shape)).astype(dtype).astype(np.float64)
    t_out.backward(torch.tensor(up))
    o_out.backward(nn.tensor(up, dtype=dtype))
    _assert_close(o_x.grad, t_x.grad, tol, f"{which} {mode} input gradient")
    t_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None, f"{name}: no gradient"
        assert p.grad.dtype == dtype and p.grad.shape == p.shape, name
        _assert_close(p.grad, t_params[name].grad, tol, f"{which} {mode} gradient of {name}")


def test_dcgan_eval_forward_uses_running_stats(backend, seed):
    """After train-mode steps moved the running statistics, eval output is a
    function of them only: two different batches give per-sample outputs that
    do not depend on the rest of the batch, as in torch."""
    tm, ref = _torch_reference("G", np.dtype(np.float64), seed)
    ours = _ours_from(tm, "G", np.float64)
    rng = np.random.default_rng(seed)
    for _ in range(2):  # move the running statistics
        z = rng.standard_normal((BATCH, NZ, 1, 1))
        ref(torch.tensor(z))
        ours(nn.tensor(z))
    _assert_buffers_match(ours, ref, 1e-10, "after 2 train forwards: ")
    ref.eval()
    ours.eval()
    z = rng.standard_normal((BATCH, NZ, 1, 1))
    full = ours(nn.tensor(z)).numpy()
    first = ours(nn.tensor(z[:1])).numpy()
    np.testing.assert_allclose(first, full[:1], rtol=1e-12, atol=1e-14)
    _assert_close(full, ref(torch.tensor(z)), 1e-10, "eval forward after training steps")


# ------------------------------------------------------- default initialisation
def _check_uniform(values, bound, what, var_tol=0.1):
    """values ~ U(-bound, bound): inside the bounds, reaching near them, with
    the uniform's mean 0 and variance bound^2 / 3 (to var_tol relative; with
    thousands of samples the standard error is ~1-2%, so this never flakes)."""
    v = np.asarray(values, np.float64).ravel()
    n = v.size
    assert np.all(np.abs(v) <= bound * (1 + 1e-6)), f"{what}: max |v| {np.abs(v).max()} > {bound}"
    assert np.abs(v).max() >= 0.95 * bound, f"{what}: max |v| {np.abs(v).max()} << {bound}"
    sd = bound / np.sqrt(3)
    assert abs(v.mean()) <= 6 * sd / np.sqrt(n), f"{what}: mean {v.mean()}"
    assert abs(v.var() / sd ** 2 - 1) <= var_tol, f"{what}: variance {v.var()} vs {sd ** 2}"


@pytest.mark.parametrize("kind", ["Conv2d", "ConvTranspose2d"])
def test_conv_default_init_follows_torch(backend, kind):
    """kaiming_uniform_(a=sqrt(5)): U(+-1/sqrt(fan_in)) with fan_in from
    weight.shape[1] * KH * KW (for ConvTranspose2d that is out_channels, a
    torch quirk we copy); bias U(+-1/sqrt(fan_in)) with the same fan_in."""
    nn.manual_seed(1234)
    torch.manual_seed(1234)
    cin, cout, k = 16, 64, (3, 2)
    ours, tm = getattr(nn, kind)(cin, cout, k), getattr(torch.nn, kind)(cin, cout, k)
    assert ours.weight.shape == tuple(tm.weight.shape)
    assert ours.bias.shape == tuple(tm.bias.shape)
    assert ours.weight.dtype == np.float32 and ours.bias.dtype == np.float32  # torch's default
    fan_in = ours.weight.shape[1] * k[0] * k[1]
    bound = 1 / np.sqrt(fan_in)
    _check_uniform(ours.weight.numpy(), bound, f"our {kind} weight")
    # torch's weights obey the same bound: the formula is torch's.
    _check_uniform(tm.weight.detach().numpy(), bound, f"torch's {kind} weight")
    # The bias: 64 values only, so check the bounds; many channels below.
    assert np.all(np.abs(ours.bias.numpy()) <= bound)

    # Many output channels, so the bias statistics mean something.
    ours, tm = getattr(nn, kind)(6, 3000, 2), getattr(torch.nn, kind)(6, 3000, 2)
    fan_in = ours.weight.shape[1] * 4
    _check_uniform(ours.bias.numpy(), 1 / np.sqrt(fan_in), f"our {kind} bias", var_tol=0.15)
    _check_uniform(tm.bias.detach().numpy(), 1 / np.sqrt(fan_in), f"torch's {kind} bias",
                   var_tol=0.15)


def test_conv_init_in_float64(backend):
    nn.manual_seed(7)
    m = nn.Conv2d(8, 32, 3, dtype=nn.float64)
    assert m.weight.dtype == np.float64 and m.bias.dtype == np.float64
    _check_uniform(m.weight.numpy(), 1 / np.sqrt(8 * 9), "float64 Conv2d weight")


def test_init_functions(backend):
    nn.manual_seed(3)
    t = nn.Parameter(nn.zeros(200, 100, dtype=nn.float64))
    assert nn.init.normal_(t, 1.5, 0.5) is t
    v = t.numpy()
    assert abs(v.mean() - 1.5) < 0.01 and abs(v.std() - 0.5) < 0.01
    nn.init.uniform_(t, -2.0, 3.0)
    v = t.numpy()
    assert v.min() >= -2.0 and v.max() < 3.0 and abs(v.mean() - 0.5) < 0.03
    nn.init.constant_(t, 0.25)
    assert np.all(t.numpy() == 0.25)
    nn.init.zeros_(t)
    assert np.all(t.numpy() == 0)
    nn.init.ones_(t)
    assert np.all(t.numpy() == 1)
    w = nn.Parameter(nn.zeros(64, 32, 3, 3))
    nn.init.kaiming_uniform_(w)  # a=0, leaky_relu gain sqrt(2): bound sqrt(6 / fan_in)
    _check_uniform(w.numpy(), np.sqrt(6 / (32 * 9)), "kaiming_uniform_(a=0)")
    nn.init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu")
    _check_uniform(w.numpy(), np.sqrt(6 / (64 * 9)), "kaiming_uniform_(fan_out)")
    assert t.grad is None and w.grad is None  # initialisers are not recorded


def test_batchnorm_default_init_matches_torch(backend):
    ours, tm = nn.BatchNorm2d(5), torch.nn.BatchNorm2d(5)
    t_sd, o_sd = tm.state_dict(), ours.state_dict()
    assert list(o_sd) == list(t_sd) == ["weight", "bias", "running_mean", "running_var",
                                        "num_batches_tracked"]
    for k in t_sd:
        np.testing.assert_array_equal(o_sd[k].numpy(), t_sd[k].numpy(), err_msg=k)
        assert o_sd[k].dtype == t_sd[k].numpy().dtype, k  # float32 and the int64 counter
    assert (ours.eps, ours.momentum, ours.affine, ours.track_running_stats) == \
        (tm.eps, tm.momentum, tm.affine, tm.track_running_stats)


@pytest.mark.parametrize("which", ["G", "D"])
def test_manual_seed_reproduces_weights(backend, which):
    nn.manual_seed(42)
    a = _build(nn, which).state_dict()
    nn.manual_seed(42)
    b = _build(nn, which).state_dict()
    nn.manual_seed(43)
    c = _build(nn, which).state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)
    convs = [k for k in a if k.endswith("weight") and a[k].ndim == 4]
    assert convs and all(not np.array_equal(a[k].numpy(), c[k].numpy()) for k in convs)


# ------------------------------------------------------------------ state_dict
def _moved_generator(seed):
    """A float64 generator whose BN running statistics are no longer the defaults."""
    nn.manual_seed(seed)
    g = _build(nn, "G").double()
    rng = np.random.default_rng(seed)
    for _ in range(2):
        g(nn.tensor(rng.standard_normal((BATCH, NZ, 1, 1))))
    return g


def test_state_dict_round_trip(backend, seed):
    a = _moved_generator(seed)
    nn.manual_seed(seed + 1)
    b = _build(nn, "G").double()
    result = b.load_state_dict(a.state_dict())
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k].numpy(), v.numpy(), err_msg=k)
    z = nn.tensor(np.random.default_rng(seed).standard_normal((BATCH, NZ, 1, 1)))
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(z).numpy(), b(z).numpy())
    a.train(), b.train()
    np.testing.assert_array_equal(a(z).numpy(), b(z).numpy())


def test_state_dict_values_are_detached_tensors(backend):
    g = _build(nn, "G")
    sd = g.state_dict()
    assert isinstance(sd, OrderedDict)
    own = dict(g.named_parameters())
    own.update(dict(g.named_buffers()))
    assert list(sd) == [k for k in sd if k in own] and set(sd) == set(own)
    for k, v in sd.items():
        assert isinstance(v, nn.Tensor) and not isinstance(v, nn.Parameter), k
        assert not v.requires_grad and v.grad_fn is None, k
        assert v.shape == own[k].shape and v.dtype == own[k].dtype, k
    kept = g.state_dict(keep_vars=True)
    assert all(kept[k] is own[k] for k in kept)


def test_load_state_dict_accepts_numpy_and_torch(backend, seed):
    a = _moved_generator(seed)
    host = OrderedDict((k, v.numpy()) for k, v in a.state_dict().items())
    assert host["main.1.num_batches_tracked"].dtype == np.int64
    b = _build(nn, "G").double()
    b.load_state_dict(host)
    c = _build(nn, "G").double()
    c.load_state_dict(OrderedDict((k, torch.from_numpy(v)) for k, v in host.items()))
    for k, v in host.items():
        for m in (b, c):
            got = m.state_dict()[k]
            assert got.dtype == v.dtype, k  # the destination's dtype, here the same
            np.testing.assert_array_equal(got.numpy(), v, err_msg=k)
    # Values keep the destination's dtype: float64 arrays into a float32 model.
    d = _build(nn, "G")
    d.load_state_dict(host)
    assert d.state_dict()["main.0.weight"].dtype == np.float32
    np.testing.assert_array_equal(d.state_dict()["main.0.weight"].numpy(),
                                  host["main.0.weight"].astype(np.float32))


def _edited(sd, drop=(), add=(), reshape=()):
    sd = OrderedDict((k, v.numpy() if isinstance(v, nn.Tensor) else v.detach().numpy())
                     for k, v in sd.items())
    for k in drop:
        del sd[k]
    for k in add:
        sd[k] = np.zeros(3)
    for k in reshape:
        sd[k] = np.zeros(sd[k].shape[:-1] + (sd[k].shape[-1] + 1,))
    return sd


@pytest.mark.parametrize("edit,words", [
    (dict(drop=["main.1.weight"]), ["Missing key", "main.1.weight"]),
    (dict(drop=["main.4.running_var", "main.0.weight"]),
     ["Missing key", "main.4.running_var", "main.0.weight"]),
    (dict(add=["main.99.weight"]), ["Unexpected key", "main.99.weight"]),
    (dict(drop=["main.1.bias"], add=["extra"]),
     ["Missing key", "main.1.bias", "Unexpected key", "extra"]),
])
def test_load_state_dict_strict_errors(backend, edit, words):
    g = _build(nn, "G")
    sd = _edited(g.state_dict(), **edit)
    with pytest.raises(RuntimeError) as info:
        g.load_state_dict(sd)
    msg = str(info.value)
    for w in words:
        assert w in msg, f"{w!r} not in the message: {msg}"
    with pytest.raises(RuntimeError):  # strict=True is the default, and torch's too
        _build(torch.nn, "G").load_state_dict(
            {k: torch.from_numpy(v) for k, v in sd.items()})


@pytest.mark.parametrize("edit", [
    dict(drop=["main.1.weight"]),
    dict(drop=["main.4.running_var", "main.0.weight", "main.6.weight"]),
    dict(add=["main.99.weight", "foo"]),
    dict(drop=["main.1.bias"], add=["extra"]),
    {},
])
def test_load_state_dict_non_strict_reports_keys_like_torch(backend, seed, edit):
    src = _moved_generator(seed)
    sd = _edited(src.state_dict(), **edit)
    tm = _build(torch.nn, "G").double()
    t_res = tm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    nn.manual_seed(seed + 5)
    g = _build(nn, "G").double()
    before = {k: v.numpy() for k, v in g.state_dict().items()}
    res = g.load_state_dict(sd, strict=False)
    missing, unexpected = res  # a pair, like torch's _IncompatibleKeys
    assert list(missing) == list(res.missing_keys) == list(t_res.missing_keys)
    # Unexpected keys: the same set. (Torch lists them module by module, so a
    # root-level "foo" comes before "main.99.weight"; ours keep the state_dict's
    # order. Cosmetic, so not asserted.)
    assert list(unexpected) == list(res.unexpected_keys)
    assert sorted(unexpected) == sorted(t_res.unexpected_keys)
    for k, v in g.state_dict().items():  # present keys loaded, missing ones untouched
        np.testing.assert_array_equal(v.numpy(), sd[k] if k in sd else before[k], err_msg=k)


@pytest.mark.parametrize("strict", [True, False])
def test_load_state_dict_shape_mismatch_names_the_key(backend, strict):
    g = _build(nn, "G")
    sd = _edited(g.state_dict(), reshape=["main.3.weight"])
    with pytest.raises(RuntimeError) as info:
        g.load_state_dict(sd, strict=strict)
    msg = str(info.value)
    assert "main.3.weight" in msg and "size mismatch" in msg, msg
    assert str(tuple(sd["main.3.weight"].shape)) in msg, msg
    with pytest.raises(RuntimeError):  # torch raises in both modes too
        _build(torch.nn, "G").load_state_dict(
            {k: torch.from_numpy(v) for k, v in sd.items()}, strict=strict)


# -------------------------------------------------------------- Module utilities
def test_double_and_float_convert_parameters_buffers_and_grads(backend):
    g = _build(nn, "G")
    for p in g.parameters():
        assert p.dtype == np.float32
    z = nn.tensor(np.random.default_rng(0).standard_normal((BATCH, NZ, 1, 1)), dtype=nn.float32)
    g(z).sum().backward()
    params_before = {n: p for n, p in g.named_parameters()}
    host32 = {n: p.numpy() for n, p in g.named_parameters()}
    assert g.double() is g
    for n, p in g.named_parameters():
        assert p is params_before[n]  # converted in place: optimizers keep their references
        assert p.dtype == np.float64 and p.grad.dtype == np.float64, n
        assert isinstance(p, nn.Parameter) and p.requires_grad, n
        np.testing.assert_array_equal(p.numpy(), host32[n].astype(np.float64), err_msg=n)
    for n, b in g.named_buffers():
        want = np.int64 if n.endswith("num_batches_tracked") else np.float64
        assert b.dtype == want, n
    g(nn.tensor(z.numpy().astype(np.float64)))  # runs in float64 now
    assert g.float() is g
    for n, p in g.named_parameters():
        assert p.dtype == np.float32 and p.grad.dtype == np.float32, n
    for n, b in g.named_buffers():
        want = np.int64 if n.endswith("num_batches_tracked") else np.float32
        assert b.dtype == want, n
    assert g(z).dtype == np.float32


def test_train_eval_set_training_recursively(backend):
    d = _build(nn, "D")
    assert all(m.training for m in d.modules())
    assert d.eval() is d
    assert not any(m.training for m in d.modules())
    assert d.train() is d
    assert all(m.training for m in d.modules())
    d.train(False)
    assert not any(m.training for m in d.modules())
    assert isinstance(d.main[3], nn.BatchNorm2d)
    d.main[3].train()  # only that subtree
    assert [m.training for m in d.modules()] == [m is d.main[3] for m in d.modules()]


def test_zero_grad_clears_grads(backend):
    g = _build(nn, "G").double()
    z = nn.tensor(np.random.default_rng(1).standard_normal((BATCH, NZ, 1, 1)))
    g(z).sum().backward()
    assert all(p.grad is not None for p in g.parameters())
    g.zero_grad(set_to_none=False)
    for p in g.parameters():
        assert p.grad is not None and p.grad.shape == p.shape
        np.testing.assert_array_equal(p.grad.numpy(), 0.0)
    g(z).sum().backward()
    assert any(np.any(p.grad.numpy() != 0) for p in g.parameters())
    g.zero_grad()  # torch 2's default: set_to_none=True
    assert all(p.grad is None for p in g.parameters())


def test_gradients_accumulate_like_torch(backend, seed):
    tm, ref = _torch_reference("G", np.dtype(np.float64), seed)
    ours = _ours_from(tm, "G", np.float64)
    z = np.random.default_rng(seed).standard_normal((BATCH, NZ, 1, 1))
    for _ in range(2):
        ref(torch.tensor(z)).sum().backward()
        ours(nn.tensor(z)).sum().backward()
    t_params = dict(ref.named_parameters())
    for n, p in ours.named_parameters():
        _assert_close(p.grad, t_params[n].grad, 1e-10, f"accumulated gradient of {n}")


def test_apply_visits_every_module_like_torch(backend):
    visited, t_visited = [], []
    d = _build(nn, "D")
    assert d.apply(lambda m: visited.append(m)) is d
    _build(torch.nn, "D").apply(lambda m: t_visited.append(type(m).__name__))
    assert [type(m).__name__ for m in visited] == t_visited  # children first, then self
    assert len({id(m) for m in visited}) == len(visited) == len(list(d.modules()))
    # The DCGAN weights_init, through apply, reaches every conv and BN.
    nn.manual_seed(0)

    def weights_init(m):
        name = type(m).__name__
        if "Conv" in name:
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif "BatchNorm" in name:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

    d.apply(weights_init)
    for n, p in d.named_parameters():
        if p.ndim == 4:
            assert 0.01 < p.numpy().std() < 0.03, n
        elif n.endswith("weight"):
            assert np.all(np.abs(p.numpy() - 1) < 0.2), n


def test_sequential_indexing_and_len(backend):
    g = _build(nn, "G")
    want = 14 if dcgan_image_size() == 64 else 8
    assert len(g.main) == want == len(_build(torch.nn, "G").main)
    assert isinstance(g.main[0], nn.ConvTranspose2d) and isinstance(g.main[-1], nn.Tanh)
    head = g.main[:3]
    assert isinstance(head, nn.Sequential) and len(head) == 3
    assert [type(m).__name__ for m in g.main] == [
        type(m).__name__ for m in _build(torch.nn, "G").main]


# -------------------------------------------------------------- BatchNorm2d
BN_CONFIGS = [
    dict(),
    dict(momentum=0.3, eps=1e-3),
    dict(momentum=None),
    dict(track_running_stats=False),
    dict(affine=False),
    dict(momentum=None, affine=False),
    dict(affine=False, track_running_stats=False),
]


def _bn_id(kw):
    return ",".join(f"{k}={v}" for k, v in kw.items()) or "default"


BN_KINDS = {  # module: the input's shape around C
    "BatchNorm2d": lambda C: (4, C, 5, 6),
    "BatchNorm1d": lambda C: (5, C),
    "BatchNorm1d-NCL": lambda C: (3, C, 7),
}


@pytest.mark.parametrize("kind", list(BN_KINDS))
@pytest.mark.parametrize("kw", BN_CONFIGS, ids=_bn_id)
def test_batchnorm_variants_match_torch(backend, dtype, seed, kw, kind):
    """Three train-mode calls then one eval-mode call: output, the gradients of
    the input, weight and bias, and the buffers after every call."""
    tol, C, module = TOL[dtype], 3, kind.split("-")[0]
    shape = BN_KINDS[kind](C)
    tm = getattr(torch.nn, module)(C, **kw).to(TORCH_DTYPE[dtype])
    gen = torch.Generator().manual_seed(seed % 2 ** 31)
    if tm.affine:
        with torch.no_grad():
            tm.weight.uniform_(0.5, 1.5, generator=gen)
            tm.bias.normal_(0, 0.5, generator=gen)
    ref = copy.deepcopy(tm).double()
    ours = getattr(nn, module)(C, **kw, dtype=dtype)
    assert list(ours.state_dict()) == list(tm.state_dict())
    ours.load_state_dict(tm.state_dict())
    for name in ("running_mean", "running_var", "num_batches_tracked", "weight", "bias"):
        assert (getattr(ours, name) is None) == (getattr(ref, name) is None), name

    rng = np.random.default_rng(seed)
    for call, training in enumerate([True, True, True, False]):
        ref.train(training)
        ours.train(training)
        where = f"call {call} ({'train' if training else 'eval'}): "
        scale = rng.uniform(0.5, 2.0, (1, C, *(1,) * (len(shape) - 2)))
        x = rng.uniform(1.0, 4.0, shape) * scale
        x = x.astype(dtype).astype(np.float64)
        t_x = torch.tensor(x, requires_grad=True)
        o_x = nn.tensor(x, dtype=dtype, requires_grad=True)
        t_y, o_y = ref(t_x), ours(o_x)
        assert o_y.dtype == dtype
        _assert_close(o_y, t_y, tol, where + "output")
        _assert_buffers_match(ours, ref, tol, where)
        up = rng.standard_normal(x.shape).astype(dtype).astype(np.float64)
        t_y.backward(torch.tensor(up))
        o_y.backward(nn.tensor(up, dtype=dtype))
        _assert_close(o_x.grad, t_x.grad, tol, where + "input gradient")
        if ref.affine:
            _assert_close(ours.weight.grad, ref.weight.grad, tol, where + "weight gradient")
            _assert_close(ours.bias.grad, ref.bias.grad, tol, where + "bias gradient")
            ours.zero_grad()
            ref.zero_grad()


def test_batchnorm_rejects_inputs_of_the_wrong_rank(backend):
    with pytest.raises(ValueError, match="BatchNorm2d: expected 4D"):
        nn.BatchNorm2d(3)(nn.zeros(2, 3))
    with pytest.raises(ValueError,
                       match=r"BatchNorm1d: expected 2D or 3D .* got shape \(2, 3, 1, 1\)"):
        nn.BatchNorm1d(3)(nn.zeros(2, 3, 1, 1))


@pytest.mark.parametrize("act", ["ReLU", "LeakyReLU"])
def test_batchnorm1d_fused_with_its_activation_matches_torch(backend, dtype, seed, act):
    """nn.Sequential fuses BatchNorm1d + ReLU/LeakyReLU (through the 4-D op):
    output and gradients against torch's pair, in train mode."""
    tol, C = TOL[dtype], 6
    args = (0.2,) if act == "LeakyReLU" else ()
    ref = torch.nn.Sequential(torch.nn.BatchNorm1d(C), getattr(torch.nn, act)(*args)).double()
    ours = nn.Sequential(nn.BatchNorm1d(C, dtype=dtype), getattr(nn, act)(*args))
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        ref[0].weight.uniform_(0.5, 1.5)
        ref[0].bias.normal_(0, 0.5)
    ours.load_state_dict(ref.state_dict())
    x = rng.standard_normal((7, C)).astype(dtype).astype(np.float64)
    up = rng.standard_normal((7, C)).astype(dtype).astype(np.float64)
    t_x = torch.tensor(x, requires_grad=True)
    o_x = nn.tensor(x, dtype=dtype, requires_grad=True)
    t_y, o_y = ref(t_x), ours(o_x)
    _assert_close(o_y, t_y, tol, "output")
    t_y.backward(torch.tensor(up))
    o_y.backward(nn.tensor(up, dtype=dtype))
    _assert_close(o_x.grad, t_x.grad, tol, "input gradient")
    _assert_close(ours[0].weight.grad, ref[0].weight.grad, tol, "weight gradient")
    _assert_buffers_match(ours, ref, tol, "")


@pytest.mark.parametrize("dim,sizes,shape", [(1, (2, 3, 4), (5, 24)), (-1, (-1, 2), (3, 4, 6)),
                                             (0, (1, 2), (2, 3))])
def test_unflatten_matches_torch(backend, dim, sizes, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    ours = nn.Unflatten(dim, sizes)(nn.tensor(x))
    ref = torch.nn.Unflatten(dim, sizes)(torch.tensor(x))
    assert ours.shape == tuple(ref.shape)
    assert (ours.numpy() == ref.numpy()).all()
    assert repr(nn.Unflatten(dim, sizes)) == repr(torch.nn.Unflatten(dim, sizes))


@pytest.mark.parametrize("sizes,words", [
    ((5, 5), r"sizes \(5, 5\) do not multiply to dim 1's size 24"),
    ((-1, -1), "sizes .* do not multiply"),
    ((), "sizes must name at least one")])
def test_unflatten_bad_sizes(backend, sizes, words):
    with pytest.raises(ValueError, match="unflatten: " + words):
        nn.Unflatten(1, sizes)(nn.zeros(2, 24))


# ---------------------------------------------------------------- conv modules
CONV_MODULE_CASES = [
    ("Conv2d", (3, 5, 3), dict(stride=2, padding=1)),
    ("Conv2d", (2, 4, (3, 2)), dict(stride=(2, 1), padding=(1, 0), dilation=(2, 1))),
    ("Conv2d", (3, 4, 3), dict(padding="same")),
    ("Conv2d", (3, 2, 1), dict()),
    ("ConvTranspose2d", (3, 5, 4), dict(stride=2, padding=1)),
    ("ConvTranspose2d", (2, 3, 3), dict(stride=3, padding=1, output_padding=2)),
    ("ConvTranspose2d", (2, 3, (3, 2)), dict(stride=2, padding=(1, 0), output_padding=1,
                                             dilation=2)),
    ("ConvTranspose2d", (4, 2, 2), dict()),
]


@pytest.mark.parametrize("kind,args,kw", CONV_MODULE_CASES)
def test_conv_modules_with_bias_match_torch(backend, dtype, seed, kind, args, kw):
    tol = TOL[dtype]
    torch.manual_seed(seed % 2 ** 31)
    tm = getattr(torch.nn, kind)(*args, **kw, bias=True).to(TORCH_DTYPE[dtype])
    ref = copy.deepcopy(tm).double()
    ours = getattr(nn, kind)(*args, **kw, bias=True, dtype=dtype)
    attrs = ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation"]
    for attr in attrs + (["output_padding"] if kind == "ConvTranspose2d" else []):
        if hasattr(tm, attr):
            assert tuple(np.atleast_1d(getattr(ours, attr))) == \
                tuple(np.atleast_1d(getattr(tm, attr))), attr
    assert list(ours.state_dict()) == list(tm.state_dict()) == ["weight", "bias"]
    ours.load_state_dict(tm.state_dict())

    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (2, args[0], 7, 6)).astype(dtype).astype(np.float64)
    t_x, o_x = torch.tensor(x, requires_grad=True), nn.tensor(x, dtype=dtype, requires_grad=True)
    t_y, o_y = ref(t_x), ours(o_x)
    assert o_y.shape == tuple(t_y.shape) and o_y.dtype == dtype
    _assert_close(o_y, t_y, tol, f"{kind} output")
    up = rng.standard_normal(tuple(t_y.shape)).astype(dtype).astype(np.float64)
    t_y.backward(torch.tensor(up))
    o_y.backward(nn.tensor(up, dtype=dtype))
    _assert_close(o_x.grad, t_x.grad, tol, f"{kind} input gradient")
    _assert_close(ours.weight.grad, ref.weight.grad, tol, f"{kind} weight gradient")
    _assert_close(ours.bias.grad, ref.bias.grad, tol, f"{kind} bias gradient")


def test_conv_module_unsupported_args_raise(backend):
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(4, 4, 3, groups=3)
    with pytest.raises(NotImplementedError, match="padding_mode"):
        nn.Conv2d(4, 4, 3, padding_mode="reflect")


# ---------------------------------------------------------------- loss modules
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kind", ["BCELoss", "BCEWithLogitsLoss"])
def test_bce_loss_modules_match_torch(backend, dtype, seed, kind, reduction, weighted):
    tol = TOL[dtype]
    rng = np.random.default_rng(seed)
    if kind == "BCELoss":
        x = rng.uniform(1e-4, 1 - 1e-4, (4, 3))
    else:
        x = rng.uniform(-8, 8, (4, 3))
    t = rng.uniform(size=(4, 3))
    t[0] = t[0] > 0.5  # some hard labels, as a GAN uses
    x, t = (a.astype(dtype).astype(np.float64) for a in (x, t))
    w = rng.uniform(0.2, 2.0, (3,)).astype(dtype).astype(np.float64) if weighted else None

    t_loss = getattr(torch.nn, kind)(weight=None if w is None else torch.tensor(w),
                                     reduction=reduction)
    o_loss = getattr(nn, kind)(weight=None if w is None else nn.tensor(w, dtype=dtype),
                               reduction=reduction)
    assert list(o_loss.state_dict()) == list(t_loss.state_dict())
    assert o_loss.reduction == reduction
    t_x, o_x = torch.tensor(x, requires_grad=True), nn.tensor(x, dtype=dtype, requires_grad=True)
    t_t, o_t = torch.tensor(t, requires_grad=True), nn.tensor(t, dtype=dtype, requires_grad=True)
    t_l, o_l = t_loss(t_x, t_t), o_loss(o_x, o_t)
    assert o_l.shape == tuple(t_l.shape) and o_l.dtype == dtype
    _assert_close(o_l, t_l, tol, f"{kind}({reduction}) loss")
    up = rng.standard_normal(tuple(t_l.shape)).astype(dtype).astype(np.float64)
    t_l.backward(torch.tensor(up))
    o_l.backward(nn.tensor(up, dtype=dtype))
    _assert_close(o_x.grad, t_x.grad, tol, f"{kind}({reduction}) input gradient")
    _assert_close(o_t.grad, t_t.grad, tol, f"{kind}({reduction}) target gradient")


def test_loss_module_rejects_bad_args(backend):
    with pytest.raises(ValueError):
        nn.BCELoss(size_average=True)
    with pytest.raises(ValueError, match="reduction"):
        nn.BCELoss(reduction="avg")(nn.full((2,), 0.5), nn.full((2,), 1.0))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.BCELoss()(nn.full((2,), 1.5), nn.full((2,), 1.0))
