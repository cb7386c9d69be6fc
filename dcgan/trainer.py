"""One DCGAN training step, exactly pytorch/examples' loop, on nn.

    stats = train_step(netG, netD, optG, optD, criterion, real, noise, logits=False)

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
