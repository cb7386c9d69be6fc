"""The GAN-family layers against torch: spectral norm (torch's own
torch.nn.utils.spectral_norm) and ProGAN's minibatch standard deviation
(written literally after Karras et al.'s code), forward, gradients and
second derivatives, on every backend."""

import numpy as np
import pytest
import torch

import nn
from helpers import TOL, helper_test_grad2, helper_test_op, rel_error


def _pair(kind, dtype):
    """A torch module with spectral norm and ours, holding torch's state."""
    torch.manual_seed(0)
    if kind == "conv":
        t = torch.nn.Conv2d(3, 5, 3, padding=1)
        o = nn.Conv2d(3, 5, 3, padding=1)
    else:
        t = torch.nn.ConvTranspose2d(3, 4, 4, 2, 1, bias=False)
        o = nn.ConvTranspose2d(3, 4, 4, 2, 1, bias=False)
    t = torch.nn.utils.spectral_norm(t.double())
    o = nn.utils.spectral_norm(o.to(dtype))
    o.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    return t, o


@pytest.mark.parametrize("kind", ["conv", "conv_transpose"])
def test_spectral_norm_loads_torch_state_and_matches_in_both_modes(backend, dtype, seed, kind):
    t, o = _pair(kind, dtype)
    assert list(o.state_dict()) == list(t.state_dict())
    rng = np.random.default_rng(seed)
    tol = TOL[np.dtype(dtype)]
    for mode in ("train", "train", "eval", "train"):
        t.train(mode == "train")
        o.train(mode == "train")
        x = rng.uniform(-1, 1, (2, 3, 5, 5)).astype(dtype).astype(np.float64)
        ty, oy = t(torch.tensor(x)), o(nn.tensor(x, dtype=dtype))
        assert rel_error(oy.numpy(), ty.detach().numpy()) <= tol, mode
        for k in ("weight_u", "weight_v"):  # one power iteration per training forward
            assert rel_error(getattr(o, k).numpy(), getattr(t, k).numpy()) <= tol, (mode, k)


def test_spectral_norm_gradients_and_penalty_match_torch(backend, dtype, seed):
    """d/dW of a loss through the normalised weight, and of a gradient penalty."""
    t, o = _pair("conv", dtype)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (2, 3, 5, 5)).astype(dtype).astype(np.float64)
    tx, ox = torch.tensor(x, requires_grad=True), nn.tensor(x, dtype=dtype, requires_grad=True)
    for lib, m, xx in ((torch, t, tx), (nn, o, ox)):
        y = m(xx)
        gx, = lib.autograd.grad((y * y).sum(), xx, create_graph=True)
        ((gx.reshape(2, -1).norm(2, dim=1) - 1) ** 2).mean().backward()
    tol = TOL[np.dtype(dtype)] * (10 if dtype == np.float32 else 1)
    assert rel_error(o.weight_orig.grad.numpy(), t.weight_orig.grad.numpy()) <= tol
    assert rel_error(o.bias.grad.numpy(), t.bias.grad.numpy()) <= tol


def test_remove_spectral_norm(backend):
    t, o = _pair("conv", np.float64)
    t(torch.zeros(1, 3, 4, 4, dtype=torch.float64))
    o(nn.zeros(1, 3, 4, 4, dtype=nn.float64))
    torch.nn.utils.remove_spectral_norm(t)
    nn.utils.remove_spectral_norm(o)
    assert list(o.state_dict()) == list(t.state_dict()) == ["bias", "weight"]
    assert rel_error(o.weight.numpy(), t.weight.detach().numpy()) <= 1e-12
    with pytest.raises(ValueError, match="remove_spectral_norm: spectral_norm of 'weight' not"):
        nn.utils.remove_spectral_norm(o)
    with pytest.raises(ValueError, match="spectral_norm: Conv2d has no parameter 'kernel'"):
        nn.utils.spectral_norm(o, name="kernel")


def progan_minibatch_stddev(x, group_size=4):
    """Karras et al.'s minibatch_stddev_layer (ProGAN networks.py), in torch."""
    G = min(group_size, x.shape[0])
    s = x.shape
    y = x.reshape(G, -1, s[1], s[2], s[3])
    y = y - y.mean(0, keepdim=True)
    y = (y * y).mean(0)
    y = torch.sqrt(y + 1e-8)
    y = y.mean((1, 2, 3), keepdim=True)
    y = y.repeat(G, 1, s[2], s[3])
    return torch.cat([x, y], 1)


@pytest.mark.parametrize("shape,group", [((8, 3, 4, 4), 4), ((6, 2, 3, 5), 3), ((2, 1, 2, 2), 4),
                                         ((5, 2, 3, 3), 1)])
def test_minibatch_stddev_matches_progan(backend, dtype, seed, shape, group):
    def fn(F, x):
        return (progan_minibatch_stddev(x, group) if F is torch.nn.functional
                else nn.MinibatchStdDev(group)(x))
    helper_test_op([shape], fn, dtype=dtype, seed=seed, op="minibatch_stddev")
    if min(group, shape[0]) != 2:
        # With two samples per group the std is sqrt(d^2/4 + 1e-8) ~ |d|/2,
        # linear in d = x1 - x2: its second derivative is ~1e-9 of the first
        # (torch's and ours both), so a relative comparison would measure
        # only rounding. Groups of 3 and 4 have a real second derivative.
        helper_test_grad2([shape], fn, dtype=dtype, seed=seed, op="minibatch_stddev")


def test_minibatch_stddev_refuses_a_batch_that_does_not_split(backend):
    with pytest.raises(ValueError, match="MinibatchStdDev: a batch of 6 does not split into "
                                         "groups of 4"):
        nn.MinibatchStdDev(4)(nn.zeros(6, 2, 3, 3))
    with pytest.raises(ValueError, match="group_size must be a positive int"):
        nn.MinibatchStdDev(0)
