"""Image grids and the loss plot, written as PNG files.

`save_grid` lays a batch out like torchvision's `save_image(normalize=True)`
does in pytorch/examples: rows of `nrow` images with a 2-pixel border,
values mapped from [-1, 1] to 0..255. Every file is written to a temporary
name, synced and renamed (nn.serialization.atomic_write), so a crash never leaves half an image behind.
"""

import numpy as np

from nn.serialization import atomic_write


def make_grid(images, nrow=8, padding=2):
    """(N, C, H, W) floats in [-1, 1] -> (rows*H', nrow*W', 3) uint8 image."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"make_grid: expected (N, 1 or 3, H, W) images, got {images.shape}")
    n, c, h, w = images.shape
    if c == 1:
        images = np.repeat(images, 3, axis=1)
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    grid = np.zeros((3, nrows * (h + padding) + padding, ncol * (w + padding) + padding), np.uint8)
    pixels = np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, y:y + h, x:x + w] = pixels[i]
    return grid.transpose(1, 2, 0)


def save_grid(images, path, nrow=8):
    from PIL import Image
    grid = make_grid(images, nrow)
    atomic_write(path, lambda f: Image.fromarray(grid).save(f, format="PNG"))


def save_loss_plot(log_rows, path, loss="bce", lambda_gp=10.0, quality=None):
    """The losses against the iteration, from the CSV log's rows, and with
    `quality` = (metrics.csv rows, the floor's figures) a panel beside them:
    the Frechet distance per epoch against the floor, and the confident share.

    bce / bce-logits: Loss_D (BCE of D on the real and the fake batch) and
    Loss_G (BCE of D(G(z)) against "real"). wgan-gp: the critic's Wasserstein
    estimate D(x) - D(G(z)) and its gradient penalty, per critic step (every
    row), above the critic's loss and the generator's -D(G(z)) (at the rows
    that made a generator step)."""
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    steps = [r["step"] for r in log_rows]
    side = None
    if quality is not None and quality[0]:
        fig = plt.figure(figsize=(13, 4 if loss != "wgan-gp" else 6))
        grid = fig.add_gridspec(1, 2, width_ratios=(8, 5))
        main, side = grid[0].subgridspec(1 if loss != "wgan-gp" else 2, 1), grid[1]
    if loss != "wgan-gp":
        if side is None:
            fig, ax = plt.subplots(figsize=(8, 4))
        else:
            ax = fig.add_subplot(main[0])
        ax.plot(steps, [r["loss_d"] for r in log_rows], label="Loss_D = BCE(D(x), 1) + "
                "BCE(D(G(z)), 0)", linewidth=0.8)
        ax.plot(steps, [r["loss_g"] for r in log_rows], label="Loss_G = BCE(D(G(z)), 1)",
                linewidth=0.8)
        if log_rows and log_rows[0].get("loss_info") is not None:  # --codes
            ax.plot(steps, [r["loss_info"] for r in log_rows], linewidth=0.8,
                    label="code loss = CE(Q(G(z, c)), c) (InfoGAN)")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.set_title(f"GAN training losses ({loss})")
        ax.legend()
    else:
        if side is None:
            fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
        else:
            top = fig.add_subplot(main[0])
            bottom = fig.add_subplot(main[1], sharex=top)
        top.plot(steps, [r["wasserstein"] for r in log_rows],
                 label="Wasserstein estimate D(x) - D(G(z))", linewidth=0.8)
        top.plot(steps, [r["gp"] for r in log_rows],
                 label="gradient penalty mean((||grad D(x_hat)|| - 1)^2)", linewidth=0.8)
        top.set_ylabel("per critic step")
        top.set_title("WGAN-GP training")
        top.legend()
        g_rows = [r for r in log_rows if r["loss_g"] is not None]
        bottom.plot(steps, [r["loss_d"] for r in log_rows],
                    label=f"critic loss -W + {lambda_gp:g} * GP (per critic step)", linewidth=0.8)
        bottom.plot([r["step"] for r in g_rows], [r["loss_g"] for r in g_rows],
                    label="generator loss -D(G(z)) (per generator step)", linewidth=0.8)
        bottom.set_xlabel("iteration (critic step)")
        bottom.set_ylabel("loss")
        bottom.legend()
    if side is not None:
        _quality_panel(fig.add_subplot(side), *quality)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def _quality_panel(ax, rows, floor):
    """Per epoch: the Frechet distance (log scale) with the floor, and on a
    second axis the share of confident samples and the rarest class's share."""
    epochs = [r["epoch"] for r in rows]
    ax.plot(epochs, [r["fid"] for r in rows], "o-", color="C3", label="Frechet distance")
    ax.axhline(floor["fid"], color="C3", linestyle="--", linewidth=0.8,
               label=f"floor (real digits) {floor['fid']:.2f}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("Frechet distance (digit classifier features)")
    share = ax.twinx()
    share.plot(epochs, [r["confident"] for r in rows], "s-", color="C2",
               label="confident share (p >= 0.9)")
    share.plot(epochs, [r["class_min"] * 10 for r in rows], "^-", color="C0",
               label="rarest class share x 10")
    share.set_ylim(0, 1.05)
    share.set_ylabel("share")
    lines = ax.get_legend_handles_labels()
    more = share.get_legend_handles_labels()
    # the curves end low (FD) and high (shares): the middle right is free
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center right")
    ax.set_title(f"sample quality per epoch (n = {rows[-1]['n']:.0f})")
