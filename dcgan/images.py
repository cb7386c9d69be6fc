"""Image grids and the loss plot, written as PNG files.

`save_grid` lays a batch out like torchvision's `save_image(normalize=True)`
does in pytorch/examples: rows of `nrow` images with a 2-pixel border,
values mapped from [-1, 1] to 0..255. Every file is written to a temporary
name and renamed, so a crash never leaves half an image behind.
"""

import os

import numpy as np


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


def _atomic(path, write):
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_grid(images, path, nrow=8):
    from PIL import Image
    grid = make_grid(images, nrow)
    _atomic(path, lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"))


def save_loss_plot(log_rows, path):
    """Loss_D and Loss_G against the iteration, from the CSV log's rows."""
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    steps = [r["step"] for r in log_rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(steps, [r["loss_d"] for r in log_rows], label="Loss_D", linewidth=0.8)
    ax.plot(steps, [r["loss_g"] for r in log_rows], label="Loss_G", linewidth=0.8)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title("DCGAN training losses")
    ax.legend()
    fig.tight_layout()
    _atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
