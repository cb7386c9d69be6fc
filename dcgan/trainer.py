"""The training steps: pytorch/examples' DCGAN step, and WGAN-GP's critic and generator steps.

    stats = train_step(netG, netD, optG, optD, criterion, real, noise, logits=False)
    wgan = WganGp(netG, netD, optG, optD, n_critic=5, lambda_gp=10.0)
    stats = wgan.step(real, noise)         # a critic step; every n_critic-th, a G step too

train_step (--loss bce, bce-logits) is exactly pytorch/examples' loop:

(1) Update D: maximise log D(x) + log(1 - D(G(z))), with the real batch
labelled 1 and G(z), detached, labelled 0; the two backward passes
accumulate into D's gradients before one Adam step.
(2) Update G: maximise log D(G(z)) by labelling the same G(z) 1, through D.
The returned statistics are the ones the progress bar shows: Loss_D, Loss_G,
D(x) and D(G(z)) before and after the G update. With `logits=True`, D
outputs logits (for BCEWithLogitsLoss) and the D(...) statistics go through
a sigmoid so that they mean the same thing.
"""

import nn
import nn.functional as F

# What the statistics of each loss mean, for the progress bar, log.csv and the plot.
WGAN_LEGEND = ("one iteration = one critic step (one real batch), and after every n_critic "
               "of them one generator step; "
               "W = D(x) - D(G(z)), the critic's Wasserstein estimate; "
               "GP = mean((||grad_x D(x_hat)||_2 - 1)^2) on interpolates x_hat; "
               "Loss_D = -W + lambda_gp * GP (the critic's loss); "
               "Loss_G = -D(G(z)).mean() (the generator's, at its last step)")

REAL_LABEL, FAKE_LABEL = 1.0, 0.0


def _mean_probability(out, logits):
    with nn.no_grad():
        return (F.sigmoid(out) if logits else out).mean().item()


def train_step(netG, netD, optG, optD, criterion, real, noise, logits=False):
    b = real.shape[0]
    real_label = nn.full((b,), REAL_LABEL, dtype=real.dtype)
    fake_label = nn.full((b,), FAKE_LABEL, dtype=real.dtype)

    # (1) D: real batch, then a detached fake batch; one optimizer step.
    netD.zero_grad()
    out = netD(real)
    errD_real = criterion(out, real_label)
    errD_real.backward()
    d_x = _mean_probability(out, logits)

    fake = netG(noise)
    out = netD(fake.detach())
    errD_fake = criterion(out, fake_label)
    errD_fake.backward()
    d_g_z1 = _mean_probability(out, logits)
    loss_d = errD_real.item() + errD_fake.item()
    optD.step()

    # (2) G: fake labelled real, gradients through D into G.
    netG.zero_grad()
    out = netD(fake)
    errG = criterion(out, real_label)
    errG.backward()
    d_g_z2 = _mean_probability(out, logits)
    optG.step()
    return {"loss_d": loss_d, "loss_g": errG.item(), "d_x": d_x,
            "d_g_z_before": d_g_z1, "d_g_z_after": d_g_z2}


def generate(netG, noise, bn="batch"):
    """G(noise) as a NumPy array, leaving the model exactly as it was.

    bn="batch" normalises with the batch's statistics (pytorch/examples'
    sample grids, which run G in train mode); bn="eval" uses the running
    statistics. Either way the running statistics are not changed: they are
    restored after a train-mode forward (PRs #804 and #807 of pytorch/examples)."""
    if bn not in ("batch", "eval"):
        raise ValueError(f"generate: bn must be 'batch' or 'eval', got {bn!r}")
    was_training = netG.training
    saved = [(b, b._backend.astype(b.data, b.dtype)) for b in netG.buffers()]
    netG.train(bn == "batch")
    try:
        with nn.no_grad():
            return netG(noise).numpy()
    finally:
        for buf, copy in saved:
            buf._backend.copy_(buf.data, copy)
            buf._bump_version()
        netG.train(was_training)


def wgan_gp_critic_step(netG, netD, optD, real, noise, lambda_gp=10.0, alpha=None):
    """One critic update of WGAN-GP (Gulrajani et al. 2017, Algorithm 1):

        loss = D(G(z)).mean() - D(x).mean() + lambda_gp * ((||grad D(x_hat)||_2 - 1)^2).mean()

    with x_hat = alpha * x + (1 - alpha) * G(z), alpha ~ U[0, 1) per sample
    (drawn with nn.rand from the library's seeded generator unless given,
    shape (N, 1, 1, 1)). G runs without a graph (train mode, so its BatchNorm
    statistics move as in any G forward); D sees x, G(z) and x_hat in that
    order (the order matters under spectral norm: each train-mode forward is
    one power iteration). The penalty's gradient is taken with
    create_graph=True, so the one backward of `loss` differentiates it again
    into D's weights. Returns the critic's statistics."""
    b = real.shape[0]
    netD.zero_grad()
    with nn.no_grad():
        fake = netG(noise)
    d_real = netD(real).mean()
    d_fake = netD(fake).mean()
    if alpha is None:
        alpha = nn.rand(b, 1, 1, 1, dtype=real.dtype)
    with nn.no_grad():
        x_hat = alpha * real + (1 - alpha) * fake
    x_hat.requires_grad_(True)
    grad_x, = nn.autograd.grad(netD(x_hat).sum(), x_hat, create_graph=True)
    gp = ((grad_x.view(b, -1).norm(2, dim=1) - 1) ** 2).mean()
    loss = d_fake - d_real + lambda_gp * gp
    loss.backward()
    optD.step()
    d_real, d_fake = d_real.item(), d_fake.item()
    return {"loss_d": loss.item(), "wasserstein": d_real - d_fake, "gp": gp.item(),
            "d_real": d_real, "d_fake": d_fake}


def wgan_gp_generator_step(netG, netD, optG, noise):
    """One generator update of WGAN-GP: minimise -D(G(z)).mean(). D's
    gradients this leaves behind are cleared by the next critic step."""
    netG.zero_grad()
    loss = -netD(netG(noise)).mean()
    loss.backward()
    optG.step()
    return loss.item()


class WganGp:
    """WGAN-GP's schedule: n_critic critic steps per generator step.

    Each call of step() is one critic step on one real batch; the call that
    completes a cycle (the n_critic-th since the last generator step) then
    makes a generator step with `gen_noise` (a tensor, a function returning
    one, or None: nn.randn shaped like `noise`, drawn after the critic's
    alpha). `critic_count` (critic steps since the last generator step) is
    the state that a checkpoint keeps, so a run resumed mid-cycle finishes
    the cycle where the uninterrupted run would have."""

    def __init__(self, netG, netD, optG, optD, n_critic=5, lambda_gp=10.0, critic_count=0,
                 generator_steps=0):
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        self.netG, self.netD, self.optG, self.optD = netG, netD, optG, optD
        self.n_critic, self.lambda_gp = int(n_critic), float(lambda_gp)
        self.critic_count, self.generator_steps = int(critic_count), int(generator_steps)

    def state_dict(self):
        return {"critic_count": self.critic_count, "generator_steps": self.generator_steps}

    def step(self, real, noise, alpha=None, gen_noise=None):
        """A dict: the critic's statistics (loss_d, wasserstein, gp, d_real,
        d_fake), loss_g (None when this step made no generator step) and
        g_iter (generator steps so far)."""
        stats = wgan_gp_critic_step(self.netG, self.netD, self.optD, real, noise,
                                    self.lambda_gp, alpha)
        self.critic_count += 1
        stats["loss_g"] = None
        if self.critic_count >= self.n_critic:
            if gen_noise is None:
                gen_noise = nn.randn(*noise.shape, dtype=noise.dtype)
            elif callable(gen_noise):
                gen_noise = gen_noise()
            stats["loss_g"] = wgan_gp_generator_step(self.netG, self.netD, self.optG, gen_noise)
            self.critic_count = 0
            self.generator_steps += 1
        stats["g_iter"] = self.generator_steps
        return stats
