"""The GAN variants train.py offers, ours against torch's own implementation.

For each variant, K full training steps (WGAN-GP: critic steps and generator
steps, the critic counter crossing cycles) from the same weights, the same
batches, noise and interpolation draws: our side runs dcgan.trainer (the
code train.py runs: train_step, WganGp), torch's side is the algorithm
written out below with torch's own pieces: torch.nn.utils.spectral_norm,
torch.autograd.grad(create_graph=True), torch.nn.LayerNorm, and ProGAN's
minibatch standard deviation transcribed literally from its TensorFlow code
(`ProGANMinibatchStdDev`). Both models come from the one builder in
dcgan/models.py (lib=nn or torch.nn), so their state_dicts match key for key
and torch's weights, spectral-norm vectors and all, load into ours.

Compared in float64, relative (||ours - ref|| / ||ref||) and within 1e-8:
every loss statistic over the K steps, every parameter, every buffer (BN
running statistics, spectral norm's weight_u / weight_v) and Adam's moments.
On numpy at 32x32 (ngf = ndf = 8, batch 8); on the simulated triton and cupy
backends at 16x16 (ngf = ndf = 4, batch 4), where the kernels run on the CPU.
"""

import numpy as np
import pytest
import torch

import nn
from dcgan.models import build_discriminator, build_generator
from dcgan.trainer import WganGp, train_step, wgan_gp_critic_step
from helpers import record_worst, rel_error

NZ, NC = 8, 1
TOL = 1e-8
LAMBDA_GP = 10.0

VARIANTS = {
    # name: (loss, D builder arguments, n_critic)
    "wgan-gp_layer": ("wgan-gp", dict(arch="dcgan", norm="layer"), 2),
    "wgan-gp_none_sn": ("wgan-gp", dict(arch="dcgan", norm="none", spectral_norm=True), 2),
    "bce_sn_mbstd": ("bce", dict(arch="dcgan", norm="batch", spectral_norm=True,
                                 minibatch_std=2), None),
    "leaky": ("bce-logits", dict(arch="leaky", norm="batch"), None),
    # fully connected layers: LayerNorm and spectral norm on a Linear under
    # WGAN-GP (BatchNorm1d and Unflatten under BCE: the code test below)
    "infogan_wgan-gp_layer_sn": ("wgan-gp", dict(arch="infogan", norm="layer", spectral_norm=True,
                                                 fc=12), 2),
}
OPTIM = {"wgan-gp": dict(lr=1e-4, betas=(0.5, 0.9)), "bce": dict(lr=2e-4, betas=(0.5, 0.999)),
         "bce-logits": dict(lr=2e-4, betas=(0.5, 0.999))}


def sizes():
    """(image size, ngf = ndf, batch, K): small where the GPU kernels are simulated."""
    if nn.get_backend() == "numpy":
        return 32, 8, 8, 6
    return 16, 4, 4, 4


class ProGANMinibatchStdDev(torch.nn.Module):
    """ProGAN's minibatch_stddev_layer (Karras et al. 2018, networks.py of
    tkarras/progressive_growing_of_gans), line for line in torch, NCHW."""

    def __init__(self, group_size=4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x):
        group_size = min(self.group_size, x.shape[0])    # tf.minimum(group_size, tf.shape(x)[0])
        s = x.shape                                       # [NCHW]
        y = x.reshape(group_size, -1, s[1], s[2], s[3])   # [GMCHW]
        y = y - y.mean(dim=0, keepdim=True)               # [GMCHW] subtract mean over group
        y = (y ** 2).mean(dim=0)                          # [MCHW] variance over group
        y = torch.sqrt(y + 1e-8)                          # [MCHW] stddev over group
        y = y.mean(dim=[1, 2, 3], keepdim=True)           # [M111] average over fmaps and pixels
        y = y.tile(group_size, 1, s[2], s[3])             # [N1HW] replicate over group and pixels
        return torch.cat([x, y], dim=1)                   # [NCHW] append as new fmap


def _init_torch(model, gen):
    """Every parameter drawn (conv and linear weights N(0, 0.02) as DCGAN's init, norm
    scales N(1, 0.1), biases N(0, 0.05)), so no affine term is trivial."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight_orig") or (name.endswith("weight") and p.ndim in (2, 4)):
                p.normal_(0.0, 0.02, generator=gen)
            elif name.endswith("weight"):
                p.normal_(1.0, 0.1, generator=gen)
            else:
                p.normal_(0.0, 0.05, generator=gen)


def _inert_biases(model):
    """Names of the biases of convolutions followed by BatchNorm2d (arch
    leaky): batch norm subtracts the batch mean, so their gradient is zero but
    for rounding (~1e-17 against ~1e-1 for the other parameters), and Adam,
    dividing by sqrt(v) + eps, turns that noise into steps of up to
    lr * |g| / eps, ~1e-10 here. torch and we round differently, so these steps agree
    in no digit: such a bias is checked to stay put on both sides instead, and
    the running mean of the batch norm after it (which holds the bias) is
    held to 1e-6."""
    layers = list(model.main)
    found = [i for i, (m, nxt) in enumerate(zip(layers, layers[1:]))
             if "Conv" in type(m).__name__ and m.bias is not None
             and type(nxt).__name__ == "BatchNorm2d"]
    return ({f"main.{i}.bias" for i in found}, {f"main.{i + 1}.running_mean" for i in found})


def _models(variant, seed):
    loss, d_kwargs, _ = VARIANTS[variant]
    size, width, _, _ = sizes()
    sigmoid = loss == "bce"
    torch.manual_seed(seed)  # torch's spectral_norm draws u and v from the global generator
    g_kwargs = {k: d_kwargs[k] for k in ("arch", "fc") if k in d_kwargs}
    tG = build_generator(torch.nn, NZ, width, NC, size, **g_kwargs)
    tD = build_discriminator(torch.nn, NC, width, size, sigmoid=sigmoid,
                             minibatch_std_layer=ProGANMinibatchStdDev, **d_kwargs)
    gen = torch.Generator().manual_seed(seed)
    _init_torch(tG, gen)
    _init_torch(tD, gen)
    tG, tD = tG.double(), tD.double()
    for m in (tG, tD):
        m.initial = {k: v.detach().clone() for k, v in m.state_dict().items()}
    oG = build_generator(nn, NZ, width, NC, size, **g_kwargs).to(np.float64)
    oD = build_discriminator(nn, NC, width, size, sigmoid=sigmoid, **d_kwargs).to(np.float64)
    oG.load_state_dict(tG.state_dict())
    oD.load_state_dict(tD.state_dict())
    assert list(oD.state_dict()) == list(tD.state_dict())
    opt = OPTIM[loss]
    t_opts = [torch.optim.Adam(m.parameters(), **opt, foreach=False) for m in (tG, tD)]
    o_opts = [nn.optim.Adam(m.parameters(), **opt) for m in (oG, oD)]
    return (tG, tD, *t_opts), (oG, oD, *o_opts)


# ------------------------------------------------------------------ torch's side, written out
def torch_wgan_gp_critic_step(G, D, optD, real, noise, alpha, lambda_gp):
    D.zero_grad()
    with torch.no_grad():
        fake = G(noise)
    d_real = D(real).mean()
    d_fake = D(fake).mean()
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    grad_x, = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    gp = ((grad_x.view(real.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()
    loss = d_fake - d_real + lambda_gp * gp
    loss.backward()
    optD.step()
    return dict(loss_d=loss.item(), wasserstein=(d_real - d_fake).item(), gp=gp.item())


def torch_wgan_gp_generator_step(G, D, optG, noise):
    G.zero_grad()
    loss = -D(G(noise)).mean()
    loss.backward()
    optG.step()
    return loss.item()


def torch_dcgan_step(G, D, optG, optD, criterion, real, noise, logits):
    """pytorch/examples' dcgan loop."""
    prob = (lambda o: torch.sigmoid(o).mean().item()) if logits else (lambda o: o.mean().item())
    b = real.shape[0]
    D.zero_grad()
    output = D(real)
    errD_real = criterion(output, torch.full((b,), 1.0, dtype=torch.float64))
    errD_real.backward()
    D_x = prob(output)
    fake = G(noise)
    output = D(fake.detach())
    errD_fake = criterion(output, torch.full((b,), 0.0, dtype=torch.float64))
    errD_fake.backward()
    D_G_z1 = prob(output)
    optD.step()
    G.zero_grad()
    output = D(fake)
    errG = criterion(output, torch.full((b,), 1.0, dtype=torch.float64))
    errG.backward()
    D_G_z2 = prob(output)
    optG.step()
    return dict(loss_d=errD_real.item() + errD_fake.item(), loss_g=errG.item(), d_x=D_x,
                d_g_z_before=D_G_z1, d_g_z_after=D_G_z2)


def _train_both(variant, seed):
    """K steps on both sides; returns (torch's models/opts, ours, losses each)."""
    loss, _, n_critic = VARIANTS[variant]
    size, _, batch, K = sizes()
    (tG, tD, tOG, tOD), (oG, oD, oOG, oOD) = ref, ours = _models(variant, seed)
    rng = np.random.default_rng(seed)
    T = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    O = lambda a: nn.tensor(a, dtype=nn.float64)  # noqa: E731
    t_losses, o_losses = [], []
    if loss == "wgan-gp":
        schedule = WganGp(oG, oD, oOG, oOD, n_critic=n_critic, lambda_gp=LAMBDA_GP)
        count = 0
        for _ in range(K):
            real = rng.uniform(-1, 1, (batch, NC, size, size))
            noise = rng.standard_normal((batch, NZ, 1, 1))
            alpha = rng.uniform(0, 1, (batch, 1, 1, 1))
            gen_noise = rng.standard_normal((batch, NZ, 1, 1))
            r = torch_wgan_gp_critic_step(tG, tD, tOD, T(real), T(noise), T(alpha), LAMBDA_GP)
            count += 1
            if count == n_critic:
                r["loss_g"] = torch_wgan_gp_generator_step(tG, tD, tOG, T(gen_noise))
                count = 0
            o = schedule.step(O(real), O(noise), alpha=O(alpha), gen_noise=O(gen_noise))
            assert (o["loss_g"] is None) == ("loss_g" not in r)
            assert o["wasserstein"] == pytest.approx(o["d_real"] - o["d_fake"])
            t_losses += [r[k] for k in sorted(r)]
            o_losses += [o[k] for k in sorted(r)]
        assert schedule.generator_steps == K // n_critic
    else:
        logits = loss == "bce-logits"
        t_crit = torch.nn.BCEWithLogitsLoss() if logits else torch.nn.BCELoss()
        o_crit = nn.BCEWithLogitsLoss() if logits else nn.BCELoss()
        for _ in range(K):
            real = rng.uniform(-1, 1, (batch, NC, size, size))
            noise = rng.standard_normal((batch, NZ, 1, 1))
            r = torch_dcgan_step(tG, tD, tOG, tOD, t_crit, T(real), T(noise), logits)
            o = train_step(oG, oD, oOG, oOD, o_crit, O(real), O(noise), logits)
            t_losses += [r[k] for k in sorted(r)]
            o_losses += [o[k] for k in sorted(r)]
    return ref, ours, np.array(t_losses), np.array(o_losses)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_training_matches_torch(backend, variant, seed):
    ref, ours, t_losses, o_losses = _train_both(variant, seed)
    assert np.isfinite(o_losses).all()
    worst = {"losses": rel_error(o_losses, t_losses)}
    assert worst["losses"] <= TOL, f"losses: relative error {worst['losses']:.2e}"
    (tG, tD, tOG, tOD), (oG, oD, oOG, oOD) = ref, ours
    for net, t_net, o_net, t_opt, o_opt in (("G", tG, oG, tOG, oOG), ("D", tD, oD, tOD, oOD)):
        t_params = dict(t_net.named_parameters())
        moments = {"exp_avg": ([], []), "exp_avg_sq": ([], [])}
        inert, inert_means = _inert_biases(t_net)
        for name, p in o_net.named_parameters():
            err = rel_error(p.numpy(), t_params[name].detach().numpy())
            if name in inert:
                start = t_net.initial[name].numpy()
                for side in (p.numpy(), t_params[name].detach().numpy()):
                    assert rel_error(side, start) <= 1e-6, f"{net}.{name} moved"
                assert err <= 1e-6, f"{net}.{name}: relative error {err:.2e}"
                worst["inert biases"] = max(worst.get("inert biases", 0.0), err)
                continue
            worst["params"] = max(worst.get("params", 0.0), err)
            assert err <= TOL, f"{net}.{name}: relative error {err:.2e}"
            t_state = t_opt.state[t_params[name]]
            assert o_opt.state[p]["step"] == int(t_state["step"].item())
            for k, (o_m, t_m) in moments.items():
                o_m.append(o_opt.state[p][k].numpy().ravel())
                t_m.append(t_state[k].numpy().ravel())
        # Adam's moments over the whole model: the bias of a convolution
        # followed by batch norm (arch leaky) has a gradient that is zero but
        # for rounding (~1e-19), whose moments agree in no digit on their own.
        for k, (o_m, t_m) in moments.items():
            err = rel_error(np.concatenate(o_m), np.concatenate(t_m))
            worst["adam"] = max(worst.get("adam", 0.0), err)
            assert err <= TOL, f"{net} Adam {k}: relative error {err:.2e}"
        t_bufs = dict(t_net.named_buffers())
        for name, b in o_net.named_buffers():
            if name.endswith("num_batches_tracked"):
                assert int(b.item()) == int(t_bufs[name].item())
                continue
            err = rel_error(b.numpy(), t_bufs[name].numpy())
            if name in inert_means:
                assert err <= 1e-6, f"{net}.{name}: relative error {err:.2e}"
                worst["inert biases"] = max(worst.get("inert biases", 0.0), err)
                continue
            worst["buffers"] = max(worst.get("buffers", 0.0), err)
            assert err <= TOL, f"{net}.{name}: relative error {err:.2e}"
    for k, v in worst.items():  # shown in the session summary (conftest)
        record_worst(f"gan {variant} {k}", np.float64, "train", v)


def test_interpolation_draws_come_from_the_seeded_generator():
    """alpha=None draws alpha ~ U[0, 1) of shape (N, 1, 1, 1) with nn.rand:
    the same step as passing that draw explicitly, bit for bit."""
    with nn.use_backend("numpy"):
        results = []
        for explicit in (False, True):
            torch.manual_seed(0)
            nn.manual_seed(3)
            _, (oG, oD, _, oOD) = _models("wgan-gp_none_sn", 5)
            size, _, batch, _ = sizes()
            nn.manual_seed(11)
            real = nn.rand(batch, NC, size, size, dtype=nn.float64) * 2 - 1
            noise = nn.randn(batch, NZ, 1, 1, dtype=nn.float64)
            alpha = nn.rand(batch, 1, 1, 1, dtype=nn.float64) if explicit else None
            stats = wgan_gp_critic_step(oG, oD, oOD, real, noise, LAMBDA_GP, alpha)
            results.append((stats, {k: v.numpy() for k, v in oD.state_dict().items()}))
        assert results[0][0] == results[1][0]
        for k, v in results[0][1].items():
            assert np.array_equal(v, results[1][1][k]), k


# ------------------------------------------------------------ InfoGAN's code (--codes)
def torch_infogan_step(G, D, Q, optG, optD, real, noise, code, lambda_info):
    """pytorch/examples' loop with InfoGAN's term written out in torch: G's
    loss adds lambda * cross_entropy(Q(D's features of G(z, c))), c) (torch's
    class-probability form), and optG updates Q too."""
    b = real.shape[0]
    bce = torch.nn.BCELoss()
    D.zero_grad()
    errD_real = bce(D(real), torch.ones(b, dtype=torch.float64))
    errD_real.backward()
    fake = G(noise)
    errD_fake = bce(D(fake.detach()), torch.zeros(b, dtype=torch.float64))
    errD_fake.backward()
    optD.step()
    G.zero_grad()
    Q.zero_grad()
    h = D.main[:D._head](fake)
    errG = bce(D.main[D._head:](h).view(-1), torch.ones(b, dtype=torch.float64))
    info = torch.nn.functional.cross_entropy(Q(h), code)
    (errG + lambda_info * info).backward()
    optG.step()
    return dict(loss_d=errD_real.item() + errD_fake.item(), loss_g=errG.item(),
                loss_info=info.item())


def test_infogan_code_training_matches_torch(backend, seed):
    from dcgan.models import build_code_head
    from dcgan.trainer import CodeLoss, one_hot_code
    size, width, batch, K = sizes()
    codes, fc, lam = 3, 12, 0.7
    torch.manual_seed(seed)
    t = [build_generator(torch.nn, NZ, width, NC, size, arch="infogan", fc=fc),
         build_discriminator(torch.nn, NC, width, size, arch="infogan", fc=fc),
         build_code_head(torch.nn, codes, fc)]
    gen = torch.Generator().manual_seed(seed)
    for m in t:
        _init_torch(m, gen)
    t = [m.double() for m in t]
    o = [build_generator(nn, NZ, width, NC, size, arch="infogan", fc=fc).to(np.float64),
         build_discriminator(nn, NC, width, size, arch="infogan", fc=fc).to(np.float64),
         build_code_head(nn, codes, fc).to(np.float64)]
    for ours, ref in zip(o, t):
        ours.load_state_dict(ref.state_dict())
    opt = OPTIM["bce"]
    t_optG = torch.optim.Adam([*t[0].parameters(), *t[2].parameters()], **opt, foreach=False)
    t_optD = torch.optim.Adam(t[1].parameters(), **opt, foreach=False)
    o_optG = nn.optim.Adam([*o[0].parameters(), *o[2].parameters()], **opt)
    o_optD = nn.optim.Adam(o[1].parameters(), **opt)
    code_loss = CodeLoss(o[2], lam)
    rng = np.random.default_rng(seed)
    t_losses, o_losses = [], []
    for _ in range(K):
        real = rng.uniform(-1, 1, (batch, NC, size, size))
        u = rng.uniform(0, 1, (batch, 1))
        code = one_hot_code(nn.tensor(u, dtype=nn.float64), codes)
        assert (code.numpy().sum(1) == 1).all()
        assert (code.numpy().argmax(1) == np.floor(u[:, 0] * codes)).all()
        noise = rng.standard_normal((batch, NZ, 1, 1))
        noise[:, NZ - codes:, 0, 0] = code.numpy()
        r = torch_infogan_step(*t, t_optG, t_optD, torch.tensor(real), torch.tensor(noise),
                               torch.tensor(code.numpy()), lam)
        s = train_step(o[0], o[1], o_optG, o_optD, nn.BCELoss(), nn.tensor(real),
                       nn.tensor(noise), info=(code_loss, code))
        t_losses += [r[k] for k in sorted(r)]
        o_losses += [s[k] for k in sorted(r)]
    err = rel_error(np.array(o_losses), np.array(t_losses))
    assert err <= TOL, f"losses: relative error {err:.2e}"
    for name, ours, ref in zip("GDQ", o, t):
        ref_params = dict(ref.named_parameters())
        for k, p in ours.named_parameters():
            e = rel_error(p.numpy(), ref_params[k].detach().numpy())
            assert e <= TOL, f"{name}.{k}: relative error {e:.2e}"
    record_worst("gan infogan code losses", np.float64, "train", err)
