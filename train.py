"""Train DCGAN (Radford et al. 2015) on nn's own kernels.

    python train.py                                   # the embedded MNIST digits, CPU-sized
    python train.py --dataset folder --dataroot ~/celeba --imageSize 64
    python train.py --resume out/checkpoint.pkl --niter 30

The flags and defaults are pytorch/examples' dcgan/main.py, plus --backend,
--resume, --loss and --sample-every. One exception to the defaults: the
embedded dataset, mnist5k, gets a CPU-sized model unless you say otherwise
(--imageSize 32 --ngf 32 --ndf 32 --niter 15, about 6 minutes on 2 cores);
every other dataset gets pytorch/examples' 64 / 64 / 64 / 25.

Files under --outf: real_samples.png (once), fake_samples_epoch_NNN.png
(each epoch, from one fixed noise batch), log.csv (one row per iteration),
losses.png (each epoch), checkpoint.pkl (each epoch: both models, both
optimizers, RNG states, arguments; written atomically), and
netG_epoch_N.pkl / netD_epoch_N.pkl (weights only, for --netG / --netD).

Exit codes: 0 done, 2 bad input (a one-line message, no traceback),
3 training diverged (the last good checkpoint is kept).
"""

import argparse
import csv
import itertools
import math
import os
import random
import sys
import time

import kernels
import nn
from dcgan import checkpoint
from dcgan.data import DATASETS, DatasetError, Loader, load_dataset
from dcgan.images import save_grid, save_loss_plot
from dcgan.models import IMAGE_SIZES, build_discriminator, build_generator, weights_init
from dcgan.trainer import generate, train_step

PYTORCH_DEFAULTS = dict(imageSize=64, ngf=64, ndf=64, niter=25)
PRESETS = {"mnist5k": dict(imageSize=32, ngf=32, ndf=32, niter=15)}
FALLBACKS = dict(dataset="mnist5k", batchSize=64, nz=100, lr=0.0002, beta1=0.5, loss="bce")
# Arguments that fix the models' shapes: a resumed run must keep them.
ARCHITECTURE = ("dataset", "imageSize", "nz", "ngf", "ndf", "loss")
# Arguments a resumed run takes from the checkpoint unless given again (the
# seed fixes the data order, so an exact resume keeps it).
RESUMED = ("manualSeed", "batchSize", "dataroot", "lr", "beta1", "niter")
LOG_FIELDS = ("step", "epoch", "batch", "loss_d", "loss_g", "d_x", "d_g_z_before",
              "d_g_z_after", "seconds")


class UsageError(Exception):
    """Bad input: reported in one line, exit code 2."""


class Diverged(Exception):
    """A non-finite loss: exit code 3."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Train DCGAN on nn's kernels.")
    p.add_argument("--dataset", default=None, choices=DATASETS,
                   help="mnist5k (embedded, the default) | mnist | fashion-mnist | cifar10 | "
                        "folder | fake")
    p.add_argument("--dataroot", default=None, help="path to the dataset")
    p.add_argument("--workers", type=int, default=2,
                   help="batches prepared ahead by a background thread")
    p.add_argument("--batchSize", type=int, default=None, help="input batch size (default 64)")
    p.add_argument("--imageSize", type=int, default=None,
                   help="height/width of the images, a power of two from 16 to 256 "
                        "(default 64; 32 for mnist5k)")
    p.add_argument("--nz", type=int, default=None, help="size of the latent z vector (default 100)")
    p.add_argument("--ngf", type=int, default=None, help="G width (default 64; 32 for mnist5k)")
    p.add_argument("--ndf", type=int, default=None, help="D width (default 64; 32 for mnist5k)")
    p.add_argument("--niter", type=int, default=None,
                   help="number of epochs to train for (default 25; 15 for mnist5k)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 0.0002)")
    p.add_argument("--beta1", type=float, default=None, help="beta1 for adam (default 0.5)")
    p.add_argument("--dry-run", action="store_true", help="check a single training cycle works")
    p.add_argument("--netG", default="", help="path to netG weights (to continue training)")
    p.add_argument("--netD", default="", help="path to netD weights (to continue training)")
    p.add_argument("--outf", default="out", help="folder to output images and checkpoints")
    p.add_argument("--manualSeed", type=int, help="manual seed")
    p.add_argument("--backend", choices=kernels.known_backends(), default=None,
                   help="compute backend (default: the best one this machine runs)")
    p.add_argument("--resume", default="", metavar="CHECKPOINT",
                   help="continue exactly from a checkpoint.pkl")
    p.add_argument("--loss", choices=("bce", "bce-logits"), default=None,
                   help="bce (default): D ends in Sigmoid; bce-logits: D outputs logits")
    p.add_argument("--sample-every", type=int, default=0, metavar="N",
                   help="also write a sample grid every N iterations (0: only per epoch)")
    return p.parse_args(argv)


def resolve_args(args):
    """Fill the defaults that depend on the dataset or on a checkpoint.

    Flags left unset (None) take, in order: the checkpoint's value when
    resuming, the dataset's preset, then pytorch/examples' default. A resumed
    run must keep the architecture it was trained with."""
    ckpt = None
    if args.resume:
        ckpt = checkpoint.load(args.resume)
        if ckpt["format"] != checkpoint.FORMAT:
            raise UsageError(f"--resume needs a full checkpoint.pkl, '{args.resume}' holds "
                             "weights only (use --netG/--netD for those)")
        saved = ckpt["args"]
        for k in ARCHITECTURE + RESUMED:
            given = getattr(args, k)
            if given is None:
                setattr(args, k, saved[k])
            elif k in ARCHITECTURE and given != saved[k]:
                raise UsageError(f"--{k} {given} differs from the checkpoint's {saved[k]}; "
                                 "a resumed run keeps the architecture it was trained with")
    for k, v in FALLBACKS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    for k, v in PRESETS.get(args.dataset, PYTORCH_DEFAULTS).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.dry_run:
        args.niter = ckpt["epoch"] + 1 if ckpt else 1
    if args.imageSize not in IMAGE_SIZES:
        raise UsageError(f"--imageSize must be a power of two from 16 to 256, got {args.imageSize}")
    for k in ("batchSize", "nz", "ngf", "ndf", "niter"):
        if getattr(args, k) < 1:
            raise UsageError(f"--{k} must be positive, got {getattr(args, k)}")
    if args.manualSeed is None:
        args.manualSeed = random.randint(1, 10000)
    return ckpt


def select_backend(name):
    try:
        if name is not None:
            nn.set_backend(name)
        return nn.get_backend()
    except (kernels.BackendError, kernels.BackendUnavailableError) as e:
        raise UsageError(str(e)) from None


class CsvLog:
    """log.csv, one row per iteration. On resume, rows past the checkpoint's
    iteration (written after it, before a crash) are dropped first."""

    def __init__(self, path, keep_until=None):
        self.path = path
        self.rows = []
        if keep_until is not None and os.path.exists(path):
            with open(path, newline="") as f:
                self.rows = [self._parse(r) for r in csv.DictReader(f)
                             if int(r["step"]) <= keep_until]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, LOG_FIELDS)
            w.writeheader()
            w.writerows(self.rows)
        self._file = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._file, LOG_FIELDS)

    @staticmethod
    def _parse(r):
        return {k: (int(v) if k in ("step", "epoch", "batch") else float(v)) for k, v in r.items()}

    def append(self, row):
        self.rows.append(row)
        self._writer.writerow(row)
        self._file.flush()

    def close(self):
        self._file.close()


def build_models(args, nc, ckpt):
    logits = args.loss == "bce-logits"
    netG = build_generator(nn, args.nz, args.ngf, nc, args.imageSize)
    netD = build_discriminator(nn, nc, args.ndf, args.imageSize, sigmoid=not logits)
    netG.apply(weights_init)
    netD.apply(weights_init)
    for model, which, path in ((netG, "netG", args.netG), (netD, "netD", args.netD)):
        if path:
            checkpoint.load_into(model, checkpoint.load_weights(path, which), path)
    optG = nn.optim.Adam(netG.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    optD = nn.optim.Adam(netD.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    if ckpt is not None:
        checkpoint.load_into(netG, ckpt["netG"], args.resume)
        checkpoint.load_into(netD, ckpt["netD"], args.resume)
        optG.load_state_dict(ckpt["optG"])
        optD.load_state_dict(ckpt["optD"])
    return netG, netD, optG, optD


def train(args, ckpt):
    try:
        os.makedirs(args.outf, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create --outf '{args.outf}': {e.strerror}") from None
    backend = select_backend(args.backend)
    nn.manual_seed(args.manualSeed)
    dataset = load_dataset(args.dataset, args.dataroot, args.imageSize, seed=args.manualSeed)
    loader = Loader(dataset, args.batchSize, seed=args.manualSeed, prefetch=args.workers)
    args.nc = dataset.nc  # saved with the arguments: the sampler rebuilds G from them
    netG, netD, optG, optD = build_models(args, dataset.nc, ckpt)
    criterion = nn.BCEWithLogitsLoss() if args.loss == "bce-logits" else nn.BCELoss()
    logits = args.loss == "bce-logits"

    if ckpt is None:
        fixed_noise = nn.randn(64, args.nz, 1, 1)
        start_epoch, step = 0, 0
    else:
        fixed_noise = nn.tensor(ckpt["fixed_noise"])
        start_epoch, step = ckpt["epoch"], ckpt["iteration"]
        checkpoint.restore_rng_states(ckpt["rng"])
    print(f"Random Seed: {args.manualSeed} | backend {backend} | dataset {args.dataset} "
          f"({len(dataset)} images, {dataset.nc}x{args.imageSize}x{args.imageSize}) | "
          f"epochs {start_epoch + 1}..{args.niter}")
    if not os.path.exists(os.path.join(args.outf, "real_samples.png")):
        save_grid(dataset.get(range(min(64, len(dataset)))),
                  os.path.join(args.outf, "real_samples.png"))

    from tqdm import tqdm
    log = CsvLog(os.path.join(args.outf, "log.csv"), keep_until=step if ckpt else None)
    ckpt_path = os.path.join(args.outf, "checkpoint.pkl")
    images, t_start = 0, time.perf_counter()
    try:
        for epoch in range(start_epoch, args.niter):
            batches = 1 if args.dry_run else loader.batches_per_epoch
            bar = tqdm(itertools.islice(loader.epoch(epoch), batches), total=batches,
                       desc=f"epoch {epoch + 1}/{args.niter}", dynamic_ncols=True,
                       file=sys.stdout)
            for i, real in bar:
                real = nn.tensor(real)
                noise = nn.randn(real.shape[0], args.nz, 1, 1)
                stats = train_step(netG, netD, optG, optD, criterion, real, noise, logits)
                step += 1
                images += real.shape[0]
                if not (math.isfinite(stats["loss_d"]) and math.isfinite(stats["loss_g"])):
                    raise Diverged(
                        f"training diverged at iteration {step} (epoch {epoch + 1}, batch "
                        f"{i + 1}): Loss_D={stats['loss_d']}, Loss_G={stats['loss_g']}; "
                        + (f"the last good checkpoint is {ckpt_path}" if os.path.exists(ckpt_path)
                           else "no checkpoint had been written yet"))
                log.append(dict(step=step, epoch=epoch + 1, batch=i + 1,
                                seconds=round(time.perf_counter() - t_start, 3), **stats))
                bar.set_postfix({"Loss_D": f"{stats['loss_d']:.3f}",
                                 "Loss_G": f"{stats['loss_g']:.3f}",
                                 "D(x)": f"{stats['d_x']:.3f}",
                                 "D(G(z)) before G step": f"{stats['d_g_z_before']:.3f}",
                                 "after": f"{stats['d_g_z_after']:.3f}"})
                if args.sample_every and step % args.sample_every == 0:
                    save_grid(generate(netG, fixed_noise),
                              os.path.join(args.outf, f"fake_samples_step_{step:06d}.png"))
            bar.close()
            save_grid(generate(netG, fixed_noise),
                      os.path.join(args.outf, f"fake_samples_epoch_{epoch + 1:03d}.png"))
            save_loss_plot(log.rows, os.path.join(args.outf, "losses.png"))
            checkpoint.save_weights(os.path.join(args.outf, f"netG_epoch_{epoch + 1}.pkl"), netG, "netG")
            checkpoint.save_weights(os.path.join(args.outf, f"netD_epoch_{epoch + 1}.pkl"), netD, "netD")
            checkpoint.save(ckpt_path, args=vars(args), epoch=epoch + 1, iteration=step, netG=netG,
                            netD=netD, optG=optG, optD=optD, fixed_noise=fixed_noise)
    finally:
        log.close()
    elapsed = time.perf_counter() - t_start
    print(f"done: {step} iterations, {images} images in {elapsed:.1f} s "
          f"({images / max(elapsed, 1e-9):.1f} images/s on {backend}); "
          f"samples, log.csv, losses.png and checkpoint.pkl are in {os.path.abspath(args.outf)}")


def main(argv=None):
    args = parse_args(argv)
    try:
        ckpt = resolve_args(args)
        train(args, ckpt)
    except (UsageError, DatasetError, checkpoint.CheckpointError) as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    except Diverged as e:
        print(f"train.py: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
