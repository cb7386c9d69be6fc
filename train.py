"""Train DCGAN (Radford et al. 2015) and its variants (WGAN-GP, spectral norm, ...) on nn's kernels.

    python train.py                                   # the embedded MNIST digits, CPU-sized
    python train.py --dataset folder --dataroot ~/celeba --imageSize 64
    python train.py --resume out/checkpoint.pkl --niter 30
    python train.py --loss wgan-gp --d-norm layer     # WGAN-GP (Gulrajani et al. 2017)
    python train.py --spectral-norm --minibatch-std   # SN (Miyato et al.), ProGAN's stddev
    python train.py --arch leaky                      # the tutorials' LeakyReLU DCGAN

The flags and defaults are pytorch/examples' dcgan/main.py, plus --backend,
--resume, --loss and --sample-every, and the variants' flags (--loss
wgan-gp, --n-critic, --lambda-gp, --beta2, --d-norm, --spectral-norm,
--minibatch-std, --arch; `--help` says what each changes). One exception to
the defaults: the embedded dataset, mnist5k, gets a CPU-sized model unless
you say otherwise (--imageSize 32 --ngf 32 --ndf 32 --niter 15, about 6
minutes on 2 cores); every other dataset gets pytorch/examples' 64 / 64 / 64 / 25.

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
from dcgan.models import (ARCHS, D_NORMS, IMAGE_SIZES, build_discriminator, build_generator,
                          weights_init)
from dcgan.trainer import WGAN_LEGEND, WganGp, generate, train_step

LOSSES = ("bce", "bce-logits", "wgan-gp")
PYTORCH_DEFAULTS = dict(imageSize=64, ngf=64, ndf=64, niter=25)
PRESETS = {"mnist5k": dict(imageSize=32, ngf=32, ndf=32, niter=15)}
FALLBACKS = dict(dataset="mnist5k", batchSize=64, nz=100, arch="dcgan", n_critic=5,
                 lambda_gp=10.0, spectral_norm=False, minibatch_std=0)
# Defaults that depend on the loss (WGAN-GP: the paper's released code's
# Adam, and no batch norm in the critic) or on the architecture.
LOSS_DEFAULTS = {"wgan-gp": dict(lr=1e-4, beta1=0.5, beta2=0.9, d_norm="layer")}
DCGAN_OPTIM = dict(lr=0.0002, beta1=0.5, beta2=0.999, d_norm="batch")
ARCH_LOSS = {"dcgan": "bce", "leaky": "bce-logits"}
MINIBATCH_STD_GROUP = 4  # --minibatch-std without a number
# Arguments that fix the models' shapes: a resumed run must keep them.
ARCHITECTURE = ("dataset", "imageSize", "nz", "ngf", "ndf", "loss", "arch", "d_norm",
                "spectral_norm", "minibatch_std")
# Arguments a resumed run takes from the checkpoint unless given again (the
# seed fixes the data order, so an exact resume keeps it).
RESUMED = ("manualSeed", "batchSize", "dataroot", "lr", "beta1", "beta2", "niter", "n_critic",
           "lambda_gp")
# What a checkpoint written before these arguments existed was trained with.
OLD_CHECKPOINT_ARGS = dict(arch="dcgan", d_norm="batch", spectral_norm=False, minibatch_std=0,
                           beta2=0.999, n_critic=5, lambda_gp=10.0)
WGAN_ONLY = ("n_critic", "lambda_gp")
LOG_FIELDS = ("step", "epoch", "batch", "loss_d", "loss_g", "d_x", "d_g_z_before",
              "d_g_z_after", "seconds")
# wgan-gp: one row per critic step; loss_g is empty on rows without a generator step.
WGAN_LOG_FIELDS = ("step", "epoch", "batch", "g_iter", "loss_d", "wasserstein", "gp", "d_real",
                   "d_fake", "loss_g", "seconds")
INT_FIELDS = ("step", "epoch", "batch", "g_iter")

VARIANTS_HELP = """\
variants (every other flag is as for DCGAN; a resumed run keeps its variant):
  DCGAN (default)   pytorch/examples' dcgan: G ConvTranspose2d+BatchNorm+ReLU,
                    D Conv2d+BatchNorm+LeakyReLU(0.2), no biases, BCELoss on
                    D's sigmoid, Adam(lr 2e-4, betas (0.5, 0.999)).
  --loss wgan-gp    D becomes a critic: no sigmoid, loss
                    D(G(z)).mean() - D(x).mean() + lambda_gp*mean((|grad D(x_hat)|-1)^2)
                    on x_hat = a*x + (1-a)*G(z), a ~ U[0,1) per image; each
                    batch is one critic step, every n_critic-th batch also a
                    generator step (loss -D(G(z)).mean()); Adam(lr 1e-4,
                    betas (0.5, 0.9)) unless --lr/--beta1/--beta2; D's norm
                    defaults to layer (batch is refused).
  --d-norm          batch | layer | none: what follows each hidden D
                    convolution but the first (which never has a norm).
  --spectral-norm   every D convolution's weight divided by its largest
                    singular value (one power iteration per forward).
  --minibatch-std   one more channel before D's last convolution: the mean
                    over features of the per-group standard deviation.
  --arch leaky      ReLU -> LeakyReLU(0.2) in G; bias=True in every conv of
                    both models; D's first conv 2*ndf wide (rest as dcgan);
                    --loss defaults to bce-logits.
"""


class UsageError(Exception):
    """Bad input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors (an unknown choice, a non-number) raised as
    a UsageError: one line on stderr and exit code 2, like every other bad
    input, instead of the usage block."""

    def error(self, message):
        raise UsageError(message)


class Diverged(Exception):
    """A non-finite loss: exit code 3."""


def parse_args(argv=None):
    p = _Parser(description="Train DCGAN, or one of its variants (WGAN-GP, spectral norm, "
                            "minibatch stddev, the LeakyReLU arch), on nn's kernels.",
                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=VARIANTS_HELP)
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
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of both Adams (default 0.0002; 0.0001 for wgan-gp)")
    p.add_argument("--beta1", type=float, default=None, help="beta1 for adam (default 0.5)")
    p.add_argument("--beta2", type=float, default=None,
                   help="beta2 for adam (default 0.999; 0.9 for wgan-gp)")
    p.add_argument("--dry-run", action="store_true", help="check a single training cycle works")
    p.add_argument("--netG", default="", help="path to netG weights (to continue training)")
    p.add_argument("--netD", default="", help="path to netD weights (to continue training)")
    p.add_argument("--outf", default="out", help="folder to output images and checkpoints")
    p.add_argument("--manualSeed", type=int, help="manual seed")
    p.add_argument("--backend", choices=kernels.known_backends(), default=None,
                   help="compute backend (default: the best one this machine runs)")
    p.add_argument("--resume", default="", metavar="CHECKPOINT",
                   help="continue exactly from a checkpoint.pkl")
    p.add_argument("--loss", choices=LOSSES, default=None,
                   help="bce (default for --arch dcgan): D ends in Sigmoid, BCELoss; bce-logits "
                        "(default for --arch leaky): D outputs logits, BCEWithLogitsLoss; "
                        "wgan-gp: D is a critic outputting a score, trained with the gradient "
                        "penalty, n_critic critic steps per generator step")
    p.add_argument("--n-critic", dest="n_critic", type=int, default=None, metavar="N",
                   help="wgan-gp: critic steps (one real batch each) per generator step "
                        "(default 5)")
    p.add_argument("--lambda-gp", dest="lambda_gp", type=float, default=None, metavar="L",
                   help="wgan-gp: weight of the gradient penalty (default 10)")
    p.add_argument("--arch", choices=ARCHS, default=None,
                   help="dcgan (default): pytorch/examples' models; leaky: LeakyReLU(0.2) in G "
                        "too, every convolution with a bias, D's first layer 2*ndf wide, "
                        "--loss bce-logits by default")
    p.add_argument("--d-norm", dest="d_norm", choices=D_NORMS, default=None,
                   help="normalisation of D's hidden layers: batch (BatchNorm2d; the default, "
                        "refused by wgan-gp), layer (LayerNorm over (C, H, W); the default for "
                        "wgan-gp) or none")
    p.add_argument("--spectral-norm", dest="spectral_norm", action="store_true", default=None,
                   help="spectral normalisation of every D convolution "
                        "(nn.utils.spectral_norm, one power iteration per forward)")
    p.add_argument("--minibatch-std", dest="minibatch_std", type=int, nargs="?",
                   const=MINIBATCH_STD_GROUP, default=None, metavar="GROUP",
                   help="ProGAN's minibatch standard deviation before D's last convolution, "
                        f"over groups of GROUP images (default {MINIBATCH_STD_GROUP}; "
                        "--batchSize must divide by it)")
    p.add_argument("--sample-every", type=int, default=0, metavar="N",
                   help="also write a sample grid every N iterations (0: only per epoch)")
    return p.parse_args(argv)


def resolve_args(args):
    """Fill the defaults that depend on the dataset or on a checkpoint.

    Flags left unset (None) take, in order: the checkpoint's value when
    resuming, the dataset's preset, then pytorch/examples' default. A resumed
    run must keep the architecture it was trained with."""
    ckpt = None
    given = {k for k in ARCHITECTURE + RESUMED if getattr(args, k) is not None}
    if args.resume:
        ckpt = checkpoint.load(args.resume)
        if ckpt["format"] != checkpoint.FORMAT:
            raise UsageError(f"--resume needs a full checkpoint.pkl, '{args.resume}' holds "
                             "weights only (use --netG/--netD for those)")
        saved = {**OLD_CHECKPOINT_ARGS, **ckpt["args"]}
        for k in ARCHITECTURE + RESUMED:
            value = getattr(args, k)
            if value is None:
                setattr(args, k, saved[k])
            elif k in ARCHITECTURE and value != saved[k]:
                was = (f"the checkpoint's {saved[k]}" if not isinstance(saved[k], bool) else
                       "the checkpoint, trained " + ("with" if saved[k] else "without") + " it")
                raise UsageError(f"--{_flag(k)}{'' if value is True else f' {value}'} differs "
                                 f"from {was}; a resumed run keeps the architecture it was "
                                 "trained with")
    for k, v in FALLBACKS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.loss is None:
        args.loss = ARCH_LOSS[args.arch]
    for k, v in LOSS_DEFAULTS.get(args.loss, DCGAN_OPTIM).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    _check_variant(args, given)
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
    if args.minibatch_std and args.batchSize % min(args.minibatch_std, args.batchSize):
        raise UsageError(f"--minibatch-std {args.minibatch_std}: --batchSize {args.batchSize} "
                         f"does not split into groups of {args.minibatch_std}; use a batch size "
                         f"divisible by {args.minibatch_std} or another group size")
    if args.manualSeed is None:
        args.manualSeed = random.randint(1, 10000)
    return ckpt


def _flag(name):
    return name.replace("_", "-") if name in ("n_critic", "lambda_gp", "d_norm", "spectral_norm",
                                              "minibatch_std") else name


def _check_variant(args, given):
    """The variant's flags: bad values and combinations that make no sense."""
    wgan = args.loss == "wgan-gp"
    if wgan and args.d_norm == "batch":
        raise UsageError("--d-norm batch cannot be used with --loss wgan-gp: the gradient penalty "
                         "is per image and batch norm makes each critic output depend on the "
                         "whole batch; use --d-norm layer (the default for wgan-gp) or none")
    for k in WGAN_ONLY:
        if k in given and not wgan:
            raise UsageError(f"--{_flag(k)} applies to --loss wgan-gp only, not --loss "
                             f"{args.loss}")
    if args.n_critic < 1:
        raise UsageError(f"--n-critic must be positive, got {args.n_critic}")
    if not (math.isfinite(args.lambda_gp) and args.lambda_gp >= 0):
        raise UsageError(f"--lambda-gp must be a finite number >= 0, got {args.lambda_gp}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError(f"--lr must be a positive number, got {args.lr}")
    for k in ("beta1", "beta2"):
        if not 0 <= getattr(args, k) < 1:
            raise UsageError(f"--{k} must be in [0, 1), got {getattr(args, k)}")
    if args.minibatch_std < 0 or ("minibatch_std" in given and args.minibatch_std < 1):
        raise UsageError(f"--minibatch-std needs a positive group size, got {args.minibatch_std}")


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

    def __init__(self, path, keep_until=None, fields=LOG_FIELDS):
        self.path, self.fields = path, fields
        self.rows = []
        if keep_until is not None and os.path.exists(path):
            with open(path, newline="") as f:
                self.rows = [self._parse(r) for r in csv.DictReader(f)
                             if int(r["step"]) <= keep_until]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fields)
            w.writeheader()
            w.writerows(self.rows)
        self._file = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fields)

    @staticmethod
    def _parse(r):
        """A row back as written: ints, floats, and None for an empty cell
        (loss_g of a critic-only wgan-gp step)."""
        return {k: (None if v == "" else int(v) if k in INT_FIELDS else float(v))
                for k, v in r.items()}

    def append(self, row):
        self.rows.append(row)
        self._writer.writerow(row)
        self._file.flush()

    def close(self):
        self._file.close()


def build_models(args, nc, ckpt):
    netG = build_generator(nn, args.nz, args.ngf, nc, args.imageSize, arch=args.arch)
    netD = build_discriminator(nn, nc, args.ndf, args.imageSize, sigmoid=args.loss == "bce",
                               arch=args.arch, norm=args.d_norm,
                               spectral_norm=args.spectral_norm,
                               minibatch_std=args.minibatch_std)
    netG.apply(weights_init)
    netD.apply(weights_init)
    for model, which, path in ((netG, "netG", args.netG), (netD, "netD", args.netD)):
        if path:
            checkpoint.load_into(model, checkpoint.load_weights(path, which), path)
    betas = (args.beta1, args.beta2)
    optG = nn.optim.Adam(netG.parameters(), lr=args.lr, betas=betas)
    optD = nn.optim.Adam(netD.parameters(), lr=args.lr, betas=betas)
    if ckpt is not None:
        checkpoint.load_into(netG, ckpt["netG"], args.resume)
        checkpoint.load_into(netD, ckpt["netD"], args.resume)
        optG.load_state_dict(ckpt["optG"])
        optD.load_state_dict(ckpt["optD"])
    return netG, netD, optG, optD


def describe_variant(args):
    """The variant in a few words, for the first line of output."""
    parts = [f"arch {args.arch}", f"loss {args.loss}"]
    if args.loss == "wgan-gp":
        parts.append(f"n_critic {args.n_critic}, lambda_gp {args.lambda_gp:g}")
    parts.append(f"D norm {args.d_norm}")
    if args.spectral_norm:
        parts.append("spectral norm")
    if args.minibatch_std:
        parts.append(f"minibatch stddev (groups of {args.minibatch_std})")
    parts.append(f"Adam lr {args.lr:g} betas ({args.beta1:g}, {args.beta2:g})")
    return ", ".join(parts)


def progress(stats, wgan, rows):
    """The progress bar's figures, named for what they mean."""
    if not wgan:
        return {"Loss_D": f"{stats['loss_d']:.3f}", "Loss_G": f"{stats['loss_g']:.3f}",
                "D(x)": f"{stats['d_x']:.3f}",
                "D(G(z)) before G step": f"{stats['d_g_z_before']:.3f}",
                "after": f"{stats['d_g_z_after']:.3f}"}
    last_g = next((r["loss_g"] for r in reversed(rows) if r["loss_g"] is not None), None)
    return {"W(D(x)-D(G(z)))": f"{stats['wasserstein']:.3f}", "GP": f"{stats['gp']:.3f}",
            "Loss_D(critic)": f"{stats['loss_d']:.3f}",
            "Loss_G(-D(G(z)))": "-" if last_g is None else f"{last_g:.3f}",
            "G steps": stats["g_iter"]}


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
    wgan = args.loss == "wgan-gp"
    if wgan:
        # The critic counter is the only state the schedule has; a run resumed
        # mid-cycle (an epoch whose batches do not divide by n_critic) goes on
        # with the same cycle.
        saved = (ckpt or {}).get("trainer", {})
        schedule = WganGp(netG, netD, optG, optD, args.n_critic, args.lambda_gp,
                          critic_count=min(saved.get("critic_count", 0), args.n_critic - 1),
                          generator_steps=saved.get("generator_steps", 0))

        def iteration(real):
            noise = nn.randn(real.shape[0], args.nz, 1, 1)
            return schedule.step(real, noise)  # alpha, then G's noise, drawn inside
    else:
        criterion = nn.BCEWithLogitsLoss() if args.loss == "bce-logits" else nn.BCELoss()
        logits = args.loss == "bce-logits"

        def iteration(real):
            noise = nn.randn(real.shape[0], args.nz, 1, 1)
            return train_step(netG, netD, optG, optD, criterion, real, noise, logits)

    if ckpt is None:
        fixed_noise = nn.randn(64, args.nz, 1, 1)
        start_epoch, step = 0, 0
    else:
        fixed_noise = nn.tensor(ckpt["fixed_noise"])
        start_epoch, step = ckpt["epoch"], ckpt["iteration"]
        checkpoint.restore_rng_states(ckpt["rng"])
    print(f"Random Seed: {args.manualSeed} | backend {backend} | dataset {args.dataset} "
          f"({len(dataset)} images, {dataset.nc}x{args.imageSize}x{args.imageSize}) | "
          f"epochs {start_epoch + 1}..{args.niter} | {describe_variant(args)}")
    if wgan:
        print(f"wgan-gp: {WGAN_LEGEND.replace('n_critic', str(args.n_critic))}"
              .replace("lambda_gp", f"{args.lambda_gp:g}"))
    if not os.path.exists(os.path.join(args.outf, "real_samples.png")):
        save_grid(dataset.get(range(min(64, len(dataset)))),
                  os.path.join(args.outf, "real_samples.png"))

    from tqdm import tqdm
    log = CsvLog(os.path.join(args.outf, "log.csv"), keep_until=step if ckpt else None,
                 fields=WGAN_LOG_FIELDS if wgan else LOG_FIELDS)
    ckpt_path = os.path.join(args.outf, "checkpoint.pkl")
    images, t_start = 0, time.perf_counter()
    try:
        for epoch in range(start_epoch, args.niter):
            batches = loader.batches_per_epoch
            if args.dry_run:  # one cycle: a step, or for wgan-gp the critic steps up to a G step
                batches = min(batches, args.n_critic - schedule.critic_count if wgan else 1)
            bar = tqdm(itertools.islice(loader.epoch(epoch), batches), total=batches,
                       desc=f"epoch {epoch + 1}/{args.niter}", dynamic_ncols=True,
                       file=sys.stdout)
            for i, real in bar:
                real = nn.tensor(real)
                stats = iteration(real)
                step += 1
                images += real.shape[0]
                if not (math.isfinite(stats["loss_d"]) and
                        (stats["loss_g"] is None or math.isfinite(stats["loss_g"]))):
                    raise Diverged(
                        f"training diverged at iteration {step} (epoch {epoch + 1}, batch "
                        f"{i + 1}): Loss_D={stats['loss_d']}, Loss_G={stats['loss_g']}; "
                        + (f"the last good checkpoint is {ckpt_path}" if os.path.exists(ckpt_path)
                           else "no checkpoint had been written yet"))
                log.append(dict(step=step, epoch=epoch + 1, batch=i + 1,
                                seconds=round(time.perf_counter() - t_start, 3), **stats))
                bar.set_postfix(progress(stats, wgan, log.rows))
                if args.sample_every and step % args.sample_every == 0:
                    save_grid(generate(netG, fixed_noise),
                              os.path.join(args.outf, f"fake_samples_step_{step:06d}.png"))
            bar.close()
            save_grid(generate(netG, fixed_noise),
                      os.path.join(args.outf, f"fake_samples_epoch_{epoch + 1:03d}.png"))
            save_loss_plot(log.rows, os.path.join(args.outf, "losses.png"),
                           loss=args.loss, lambda_gp=args.lambda_gp)
            checkpoint.save_weights(os.path.join(args.outf, f"netG_epoch_{epoch + 1}.pkl"), netG, "netG")
            checkpoint.save_weights(os.path.join(args.outf, f"netD_epoch_{epoch + 1}.pkl"), netD, "netD")
            checkpoint.save(ckpt_path, args=vars(args), epoch=epoch + 1, iteration=step, netG=netG,
                            netD=netD, optG=optG, optD=optD, fixed_noise=fixed_noise,
                            trainer=schedule.state_dict() if wgan else None)
    finally:
        log.close()
    elapsed = time.perf_counter() - t_start
    print(f"done: {step} iterations, {images} images in {elapsed:.1f} s "
          f"({images / max(elapsed, 1e-9):.1f} images/s on {backend}); "
          f"samples, log.csv, losses.png and checkpoint.pkl are in {os.path.abspath(args.outf)}")


def main(argv=None):
    try:
        args = parse_args(argv)
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
