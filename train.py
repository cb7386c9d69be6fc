"""Train DCGAN (Radford et al. 2015) and its variants (WGAN-GP, spectral norm, ...) on nn's kernels.

    python train.py                                   # the embedded MNIST digits, CPU recipe
    python train.py --dataset folder --dataroot ~/celeba --imageSize 64
    python train.py --resume out/checkpoint.safetensors --niter 30
    python train.py --loss wgan-gp --d-norm layer     # WGAN-GP (Gulrajani et al. 2017)
    python train.py --spectral-norm --minibatch-std   # SN (Miyato et al.), ProGAN's stddev
    python train.py --arch leaky                      # the tutorials' LeakyReLU DCGAN

The flags and defaults are pytorch/examples' dcgan/main.py, plus --backend,
--resume, --loss and --sample-every, and the variants' flags (--loss
wgan-gp, --n-critic, --lambda-gp, --beta2, --d-norm, --spectral-norm,
--minibatch-std, --arch, --nfc, --codes, --lambda-info, --ema, --lr-g,
--lr-d; `--help` says what each changes). One exception to the defaults: the
embedded dataset, mnist5k, gets a recipe measured for a 2-core CPU unless you
say otherwise: InfoGAN's networks and code (--arch infogan --nfc 512 --codes
10), minibatch stddev (--minibatch-std 4), a moving average of G (--ema
0.999), --imageSize 16 --ngf 64 --ndf 32 --batchSize 32 --lr 4e-4 --niter 40
(README, "Sample quality"); every other dataset gets pytorch/examples'
DCGAN, 64 / 64 / 64 / 64 / 25 and 2e-4.

Files under --outf: real_samples.png (once, a shuffled batch),
fake_samples_epoch_NNN.png (each epoch, from one fixed noise batch), log.csv
(one row per iteration), losses.png (each epoch), checkpoint.safetensors
(each epoch: both models, both optimizers, RNG states, arguments; written
atomically), and netG_epoch_N.safetensors / netD_epoch_N.safetensors
(weights only, torch's state_dict keys, for --netG / --netD; --keep N keeps
the last N epochs'). No file train.py reads can run code (dcgan/checkpoint.py).
A fresh run into a folder holding another run moves that run aside first
(or deletes it with --overwrite); a dry run never touches an existing run
(dcgan/outputs.py).

Exit codes: 0 done, 2 bad input (a one-line message, no traceback),
3 training diverged (the last good checkpoint is kept), 130 interrupted
(Ctrl-C; the message says how to resume).
"""

import argparse
import csv
import importlib
import itertools
import math
import os
import random
import sys
import time

# The main job's packages beyond numpy (the "train" extra): say so in one line
# instead of a ModuleNotFoundError from deep inside an import.
TRAIN_EXTRA = {"PIL": "Pillow", "tqdm": "tqdm", "matplotlib": "matplotlib"}


def _missing_train_extra():
    missing = []
    for module, package in TRAIN_EXTRA.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    return missing


if __name__ == "__main__":
    _missing = _missing_train_extra()
    if _missing:
        print(f"train.py: error: {', '.join(_missing)} not installed; install the main job's "
              "packages with: pip install -e \".[train]\"", file=sys.stderr)
        sys.exit(2)

import kernels
import nn
from dcgan import checkpoint, outputs
from dcgan.data import DATASETS, DatasetError, Loader, load_dataset
from dcgan.images import save_grid, save_loss_plot
from dcgan.models import (ARCHS, D_NORMS, FC_WIDTH, IMAGE_SIZES, build_code_head,
                          build_discriminator, build_generator, weights_init)
from dcgan.trainer import (WGAN_LEGEND, CapturedStep, CodeLoss, WganGp, generate, latent,
                           train_step)

LOSSES = ("bce", "bce-logits", "wgan-gp")
PYTORCH_DEFAULTS = dict(imageSize=64, ngf=64, ndf=64, niter=25, batchSize=64)
# The embedded digits' recipe, chosen by measurement for a 2-core CPU and ten
# minutes (README, "Sample quality"; docs/mnist5k_recipes.md): 16x16 trains
# several times more images per second than 32x32; InfoGAN's networks draw
# whole strokes where DCGAN's level off at 60% clean digits; a moving average
# of G lowers the Frechet distance; InfoGAN's code takes the clean share past
# 90%, and minibatch stddev gives back some of the diversity it costs.
# A preset value that another flag cannot use (the code with --arch dcgan,
# the groups with an odd --batchSize) is dropped, not an error.
PRESETS = {"mnist5k": dict(arch="infogan", nfc=512, codes=10, minibatch_std=4, ema=0.999,
                           imageSize=16, ngf=64, ndf=32, niter=40, batchSize=32)}
PRESET_OPTIM = {"mnist5k": {"bce": dict(lr=4e-4), "bce-logits": dict(lr=4e-4)}}
FALLBACKS = dict(dataset="mnist5k", nz=100, arch="dcgan", nfc=FC_WIDTH, codes=0, lambda_info=1.0,
                 ema=0.0, n_critic=5,
                 lambda_gp=10.0, spectral_norm=False, minibatch_std=0)
# Defaults that depend on the loss (WGAN-GP: the paper's released code's
# Adam, and no batch norm in the critic) or on the architecture.
LOSS_DEFAULTS = {"wgan-gp": dict(lr=1e-4, beta1=0.5, beta2=0.9, d_norm="layer")}
DCGAN_OPTIM = dict(lr=0.0002, beta1=0.5, beta2=0.999, d_norm="batch")
ARCH_LOSS = {"dcgan": "bce", "leaky": "bce-logits", "infogan": "bce"}
MINIBATCH_STD_GROUP = 4  # --minibatch-std without a number
EVAL_SAMPLES = 1000  # the floor's count: the Frechet distance is biased by n
METRIC_FIELDS = ("step", "epoch", "n", "fid", "kid", "kid_std", "precision", "recall",
                 "confident", "class_min", "class_max") + tuple(f"class_{k}" for k in range(10))
# Arguments that fix the models' shapes: a resumed run must keep them.
ARCHITECTURE = ("dataset", "imageSize", "nz", "ngf", "ndf", "loss", "arch", "nfc", "codes", "ema",
                "d_norm",
                "spectral_norm", "minibatch_std")
# Arguments a resumed run takes from the checkpoint unless given again (the
# seed fixes the data order, so an exact resume keeps it).
RESUMED = ("manualSeed", "batchSize", "dataroot", "lr", "lr_g", "lr_d", "beta1", "beta2", "niter",
           "n_critic",
           "lambda_info",
           "lambda_gp", "eval_samples")
# What a checkpoint written before these arguments existed was trained with.
OLD_CHECKPOINT_ARGS = dict(lr_g=None, lr_d=None, arch="dcgan", nfc=FC_WIDTH, codes=0, lambda_info=1.0, ema=0.0,
                           d_norm="batch", spectral_norm=False, minibatch_std=0,
                           beta2=0.999, n_critic=5, lambda_gp=10.0, eval_samples=None)
WGAN_ONLY = ("n_critic", "lambda_gp")
LOG_FIELDS = ("step", "epoch", "batch", "loss_d", "loss_g", "d_x", "d_g_z_before",
              "d_g_z_after", "seconds")
# wgan-gp: one row per critic step; loss_g is empty on rows without a generator step.
INFO_FIELDS = ("loss_info",)  # --codes: the code's loss (Q's cross-entropy), beside loss_g
WGAN_LOG_FIELDS = ("step", "epoch", "batch", "g_iter", "loss_d", "wasserstein", "gp", "d_real",
                   "d_fake", "loss_g", "seconds")
INT_FIELDS = ("step", "epoch", "batch", "g_iter", "n")

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
  --arch infogan    InfoGAN's MNIST networks (Chen et al. 2016): G z -> FC
                    (--nfc) -> FC -> 4x4 -> ConvTranspose2d layers as
                    dcgan; D dcgan's convolutions -> FC (--nfc, BatchNorm
                    or the --d-norm) -> FC -> 1. The default on mnist5k.
  --codes K         (arch infogan, bce losses) InfoGAN's categorical code:
                    z's last K entries one-hot, a Q head on D's features
                    trained with G to recover it, G's loss + lambda_info *
                    its cross-entropy. 10 on mnist5k.
  --ema DECAY       sample (grids, quality, netG_ema_epoch_N) from a moving
                    average of G's weights. 0.999 on mnist5k.
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
                            "minibatch stddev, the LeakyReLU arch, InfoGAN), on nn's kernels.",
                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=VARIANTS_HELP)
    p.add_argument("--dataset", default=None, choices=DATASETS,
                   help="mnist5k (embedded, the default) | mnist | fashion-mnist | cifar10 | "
                        "folder | fake")
    p.add_argument("--dataroot", default=None, help="path to the dataset")
    p.add_argument("--workers", type=int, default=2,
                   help="batches prepared ahead by a background thread")
    p.add_argument("--batchSize", type=int, default=None,
                   help="input batch size (default 64; 32 for mnist5k)")
    p.add_argument("--imageSize", type=int, default=None,
                   help="height/width of the images, a power of two from 16 to 256 "
                        "(default 64; 16 for mnist5k)")
    p.add_argument("--nz", type=int, default=None, help="size of the latent z vector (default 100)")
    p.add_argument("--ngf", type=int, default=None, help="G width (default 64)")
    p.add_argument("--ndf", type=int, default=None, help="D width (default 64; 32 for mnist5k)")
    p.add_argument("--niter", type=int, default=None,
                   help="number of epochs to train for (default 25; 90 for mnist5k)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of both Adams (default 0.0002; 0.0004 for mnist5k with "
                        "bce or bce-logits; 0.0001 for wgan-gp)")
    p.add_argument("--lr-g", dest="lr_g", type=float, default=None, metavar="LR",
                   help="G's learning rate (default --lr; InfoGAN used 1e-3)")
    p.add_argument("--lr-d", dest="lr_d", type=float, default=None, metavar="LR",
                   help="D's learning rate (default --lr; InfoGAN used 2e-4)")
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
                   help="continue exactly from a checkpoint.safetensors (flags given again, "
                        "such as --lr or --niter, take effect and are reported)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="also read this project's old pickle checkpoints and weights (.pkl): "
                        "a pickle can run code when loaded, so only for files you trust; "
                        "what train.py writes is always safetensors")
    p.add_argument("--overwrite", action="store_true",
                   help="a fresh run into an --outf holding another run deletes that run's "
                        "files (without it they are moved to --outf/previous-<date>-<time>/)")
    p.add_argument("--keep", type=int, default=0, metavar="N",
                   help="keep the weights files (netG/netD_epoch_N) of the last N epochs "
                        "only (default 0: keep all)")
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
                   help="dcgan (default but on mnist5k): pytorch/examples' models; leaky: "
                        "LeakyReLU(0.2) in G too, every convolution with a bias, D's first layer "
                        "2*ndf wide, --loss bce-logits by default; infogan (the default on "
                        "mnist5k): InfoGAN's MNIST networks, two fully connected layers in "
                        "place of G's first and D's last convolution")
    p.add_argument("--nfc", type=int, default=None, metavar="N",
                   help=f"width of --arch infogan's fully connected layers (default "
                        f"{FC_WIDTH}, InfoGAN's; {PRESETS['mnist5k']['nfc']} on mnist5k)")
    p.add_argument("--codes", type=int, default=None, metavar="K",
                   help="InfoGAN's categorical latent code of K values (--arch infogan): the "
                        "last K entries of z are a uniform one-hot code, and a Q head on D's "
                        "features learns to tell it from G(z), with G (default 0, off; 10 on "
                        "mnist5k)")
    p.add_argument("--lambda-info", dest="lambda_info", type=float, default=None, metavar="L",
                   help="weight of the code's loss in G's (default 1, InfoGAN's)")
    p.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="also keep an exponential moving average of G's weights "
                        "(nn.optim.swa_utils.AveragedModel, updated after every G step): the "
                        "sample grids, the quality figures and netG_ema_epoch_N come from it "
                        "(default 0, off; 0.999 on mnist5k)")
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
                        "--batchSize must divide by it; on by default on mnist5k)")
    p.add_argument("--eval-samples", dest="eval_samples", type=int, default=None, metavar="N",
                   help="score N samples from a fixed noise set at the end of every epoch "
                        "(Frechet distance, KID, precision/recall, confident share, classes; "
                        f"dcgan/evaluate.py) on digit datasets (default {EVAL_SAMPLES}; "
                        "0 turns it off)")
    p.add_argument("--cuda-graph", dest="cuda_graph", action="store_true",
                   help="replay the training step from CUDA graphs (--backend cupy, --loss bce "
                        "or bce-logits; dcgan.trainer.CapturedStep; under NN_CUDA_EMULATE=1 "
                        "the path is rehearsed on the CPU)")
    p.add_argument("--sample-every", type=int, default=None, metavar="N",
                   help="also write a sample grid every N iterations (default: only per epoch)")
    return p.parse_args(argv)


def resolve_args(args):
    """Fill the defaults that depend on the dataset or on a checkpoint.

    Flags left unset (None) take, in order: the checkpoint's value when
    resuming, the dataset's preset, then pytorch/examples' default. A resumed
    run must keep the architecture it was trained with."""
    ckpt = None
    given = {k for k in ARCHITECTURE + RESUMED if getattr(args, k) is not None}
    args.changed = []  # (flag, saved value, new value) of a resumed run
    if args.resume:
        if args.netG or args.netD:
            raise UsageError("--resume restores both models from the checkpoint; --netG/--netD "
                             "start a new run from weights instead: use one or the other")
        ckpt = checkpoint.load(args.resume, trust_pickle=args.trust_pickle)
        if ckpt["format"] != checkpoint.FORMAT:
            raise UsageError(f"--resume needs a full {checkpoint.CHECKPOINT_NAME}, "
                             f"'{args.resume}' holds weights only (use --netG/--netD for those)")
        saved = {**OLD_CHECKPOINT_ARGS, **ckpt["args"]}
        for k in ARCHITECTURE + RESUMED:
            value = getattr(args, k)
            if value is None:
                setattr(args, k, saved[k])
            elif k in RESUMED and value != saved[k]:
                args.changed.append((_flag(k), saved[k], value))
            elif k in ARCHITECTURE and value != saved[k]:
                was = (f"the checkpoint's {saved[k]}" if not isinstance(saved[k], bool) else
                       "the checkpoint, trained " + ("with" if saved[k] else "without") + " it")
                raise UsageError(f"--{_flag(k)}{'' if value is True else f' {value}'} differs "
                                 f"from {was}; a resumed run keeps the architecture it was "
                                 "trained with")
    if args.dataset is None:
        args.dataset = FALLBACKS["dataset"]
    preset = PRESETS.get(args.dataset, {})  # its arch too, which the loss default follows
    for k, v in FALLBACKS.items():
        if getattr(args, k) is None:
            setattr(args, k, preset.get(k, v))
    if args.loss is None:
        args.loss = ARCH_LOSS[args.arch]
    if "lr" in given:  # --lr sets both models' rate unless --lr-g / --lr-d say otherwise
        for k in ("lr_g", "lr_d"):
            if k not in given:
                setattr(args, k, args.lr)
    for defaults in (PRESET_OPTIM.get(args.dataset, {}).get(args.loss, {}),
                     LOSS_DEFAULTS.get(args.loss, DCGAN_OPTIM),
                     PRESETS.get(args.dataset, PYTORCH_DEFAULTS)):
        for k, v in defaults.items():
            if getattr(args, k) is None:
                setattr(args, k, v)
    for k in ("lr_g", "lr_d"):
        if getattr(args, k) is None:
            setattr(args, k, args.lr)
    if args.codes and "codes" not in given and ckpt is None and (
            args.arch != "infogan" or args.loss == "wgan-gp" or args.cuda_graph
            or args.codes >= args.nz):
        args.codes = 0  # the preset's code, which another arch, loss or --nz cannot take
    if args.minibatch_std and "minibatch_std" not in given and ckpt is None and \
            args.batchSize > 0 and args.batchSize % min(args.minibatch_std, args.batchSize):
        args.minibatch_std = 0  # the preset's groups, which another --batchSize cannot split
    _check_variant(args, given)
    if ckpt and args.niter <= ckpt["epoch"] and not args.dry_run:
        raise UsageError(f"nothing to do: the checkpoint has trained {ckpt['epoch']} epochs and "
                         f"--niter is {args.niter}; give --niter above {ckpt['epoch']} to train more")
    if args.dry_run:
        args.niter = ckpt["epoch"] + 1 if ckpt else 1
    if args.imageSize not in IMAGE_SIZES:
        raise UsageError(f"--imageSize must be a power of two from 16 to 256, got {args.imageSize}")
    for k in ("batchSize", "nz", "ngf", "ndf", "niter"):
        if getattr(args, k) < 1:
            raise UsageError(f"--{k} must be positive, got {getattr(args, k)}")
    if args.workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {args.workers}")
    if args.eval_samples is not None:
        from dcgan.evaluate import DIGIT_DATASETS
        if args.eval_samples and args.dataset not in DIGIT_DATASETS:
            raise UsageError(f"--eval-samples: the quality metrics need a digit dataset "
                             f"({' or '.join(DIGIT_DATASETS)}: their classifier knows digits), "
                             f"not {args.dataset}; use --eval-samples 0")
        if args.eval_samples < 0 or 0 < args.eval_samples <= 3:
            raise UsageError(f"--eval-samples must be 0 (off) or more than 3, got "
                             f"{args.eval_samples}")
    if args.keep < 0:
        raise UsageError(f"--keep must be 0 (keep all) or more, got {args.keep}")
    if args.sample_every is not None and args.sample_every < 1:
        raise UsageError(f"--sample-every must be a positive number of iterations, got "
                         f"{args.sample_every} (leave it out for one grid per epoch)")
    if args.manualSeed is not None and not 0 <= args.manualSeed < 2 ** 32:
        raise UsageError(f"--manualSeed must be in [0, 2**32), got {args.manualSeed}")
    _check_memory(args)
    if args.minibatch_std and args.batchSize % min(args.minibatch_std, args.batchSize):
        raise UsageError(f"--minibatch-std {args.minibatch_std}: --batchSize {args.batchSize} "
                         f"does not split into groups of {args.minibatch_std}; use a batch size "
                         f"divisible by {args.minibatch_std} or another group size")
    if args.eval_samples is None:
        from dcgan.evaluate import DIGIT_DATASETS
        args.eval_samples = EVAL_SAMPLES if args.dataset in DIGIT_DATASETS else 0
    if args.manualSeed is None:
        args.manualSeed = random.randint(1, 10000)
    return ckpt


def model_bytes(args, nc=3):
    """An upper estimate of the memory training needs, in bytes, from the
    arguments alone (before anything is allocated): each parameter four times
    (value, gradient, Adam's two moments) and each activation of both models
    a few times (output, saved input, gradient), in float32."""
    from dcgan.models import _widths  # the models' own channel plan
    total = 0
    for base, first, last in ((args.ngf, args.nz, nc), (args.ndf, nc, 1)):
        widths = _widths(args.imageSize, base)
        chans = [first] + widths + [last]
        params = sum(a * b * 16 for a, b in zip(chans, chans[1:]))
        acts = sum(w * (4 * 2 ** i) ** 2 for i, w in enumerate(widths)) * args.batchSize
        if args.arch == "infogan":  # two fully connected layers, at most nfc + 16 w0 wide
            params += (max(first, last) + 16 * widths[0]) * args.nfc
            acts += 2 * args.nfc * args.batchSize
        total += 4 * (4 * params + 6 * acts)
    return total


def _check_memory(args):
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf: nothing to compare with
        return
    need = model_bytes(args)
    if need > available:
        raise UsageError(f"--ngf {args.ngf} --ndf {args.ndf} at --imageSize {args.imageSize} and "
                         f"--batchSize {args.batchSize} needs about {need / 2 ** 30:.0f} GiB to "
                         f"train, more than this machine's {available / 2 ** 30:.0f} GiB; use "
                         "smaller widths or batches")


def _flag(name):
    return name.replace("_", "-") if name in ("n_critic", "lambda_gp", "d_norm", "spectral_norm",
                                              "minibatch_std", "eval_samples", "lr_g", "lr_d",
                                              "lambda_info") else name


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
    for k in ("lr", "lr_g", "lr_d"):
        if not (math.isfinite(getattr(args, k)) and getattr(args, k) > 0):
            raise UsageError(f"--{k.replace('_', '-')} must be a positive number, got "
                             f"{getattr(args, k)}")
    for k in ("beta1", "beta2"):
        if not 0 <= getattr(args, k) < 1:
            raise UsageError(f"--{k} must be in [0, 1), got {getattr(args, k)}")
    if "nfc" in given and args.arch != "infogan":
        raise UsageError(f"--nfc sets the fully connected width of --arch infogan; --arch "
                         f"{args.arch} has no fully connected layer")
    if args.nfc < 1:
        raise UsageError(f"--nfc must be positive, got {args.nfc}")
    if args.codes:
        if args.arch != "infogan":
            raise UsageError(f"--codes needs --arch infogan (its Q head reads D's fully connected "
                             f"features), not --arch {args.arch}")
        if args.codes < 2 or args.codes >= args.nz:
            raise UsageError(f"--codes must be 0 (off) or from 2 to --nz - 1 = {args.nz - 1} (the "
                             f"code is part of z), got {args.codes}")
        if wgan or args.cuda_graph:
            raise UsageError("--codes trains with --loss bce or bce-logits, eagerly; not with "
                             + ("--loss wgan-gp" if wgan else "--cuda-graph"))
    elif args.codes < 0:
        raise UsageError(f"--codes must be 0 (off) or from 2 to --nz - 1, got {args.codes}")
    if "lambda_info" in given and not args.codes:
        raise UsageError("--lambda-info weighs InfoGAN's code loss: give --codes K too")
    if not (math.isfinite(args.lambda_info) and args.lambda_info >= 0):
        raise UsageError(f"--lambda-info must be a finite number >= 0, got {args.lambda_info}")
    if not 0 <= args.ema < 1:
        raise UsageError(f"--ema must be a decay in [0, 1) (0 turns the average off), got "
                         f"{args.ema}")
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
    netG = build_generator(nn, args.nz, args.ngf, nc, args.imageSize, arch=args.arch,
                           fc=args.nfc)
    netD = build_discriminator(nn, nc, args.ndf, args.imageSize, sigmoid=args.loss == "bce",
                               arch=args.arch, norm=args.d_norm,
                               spectral_norm=args.spectral_norm,
                               minibatch_std=args.minibatch_std, fc=args.nfc)
    netG.apply(weights_init)
    netD.apply(weights_init)
    for model, which, path in ((netG, "netG", args.netG), (netD, "netD", args.netD)):
        if path:
            checkpoint.load_into(model, checkpoint.load_weights(path, which, args.trust_pickle),
                                 path)
    netQ = None
    if args.codes:
        netQ = build_code_head(nn, args.codes, args.nfc)
        netQ.apply(weights_init)
    ema = None
    if args.ema:
        ema = nn.optim.swa_utils.AveragedModel(
            netG, multi_avg_fn=nn.optim.swa_utils.get_ema_multi_avg_fn(args.ema),
            use_buffers=True)
    betas = (args.beta1, args.beta2)
    # InfoGAN's Q head learns with G (its code loss is G's too)
    optG = nn.optim.Adam(list(netG.parameters()) + (list(netQ.parameters()) if netQ else []),
                         lr=args.lr_g, betas=betas)
    optD = nn.optim.Adam(netD.parameters(), lr=args.lr_d, betas=betas)
    if ckpt is not None:
        checkpoint.load_into(netG, ckpt["netG"], args.resume)
        checkpoint.load_into(netD, ckpt["netD"], args.resume)
        for model, key, flag in ((netQ, "netQ", f"--codes {args.codes}"),
                                 (ema, "netG_ema", f"--ema {args.ema}")):
            if model is None:
                continue
            if key not in ckpt:
                raise checkpoint.CheckpointError(f"checkpoint '{args.resume}' lacks {key}, "
                                                 f"which its {flag} needs")
            checkpoint.load_into(model, ckpt[key], args.resume)
        for opt, which, lr in ((optG, "optG", args.lr_g), (optD, "optD", args.lr_d)):
            try:
                opt.load_state_dict(ckpt[which])
            except (KeyError, ValueError, TypeError) as e:
                raise checkpoint.CheckpointError(f"the {which} state in '{args.resume}' does not "
                                                 f"fit this model ({e})") from None
            # load_state_dict restores the saved hyper-parameters; the arguments
            # (the saved ones, or those given again) are what this run uses.
            for group in opt.param_groups:
                group["lr"], group["betas"] = lr, betas
    return netG, netD, optG, optD, ema, netQ


def describe_variant(args):
    """The variant in a few words, for the first line of output."""
    parts = [f"arch {args.arch}" + (f" (fc {args.nfc})" if args.arch == "infogan" else ""),
             f"loss {args.loss}"]
    if args.loss == "wgan-gp":
        parts.append(f"n_critic {args.n_critic}, lambda_gp {args.lambda_gp:g}")
    parts.append(f"D norm {args.d_norm}")
    if args.spectral_norm:
        parts.append("spectral norm")
    if args.minibatch_std:
        parts.append(f"minibatch stddev (groups of {args.minibatch_std})")
    rate = (f"lr {args.lr_g:g}" if args.lr_g == args.lr_d else
            f"lr G {args.lr_g:g} D {args.lr_d:g}")
    parts.append(f"Adam {rate} betas ({args.beta1:g}, {args.beta2:g})")
    if args.codes:
        parts.append(f"InfoGAN code of {args.codes} (lambda {args.lambda_info:g})")
    if args.ema:
        parts.append(f"EMA of G {args.ema:g}")
    return ", ".join(parts)


BAR_WIDTH = 80  # fits an 80-column terminal


def _duration(seconds):
    m, sec = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def progress(stats, wgan, rows):
    """The progress bar's figures, short enough for BAR_WIDTH columns (the
    legend is printed once at the start)."""
    if not wgan:
        return (f"D {stats['loss_d']:.2f} G {stats['loss_g']:.2f} D(x) {stats['d_x']:.2f} "
                f"D(G(z)) {stats['d_g_z_before']:.2f}/{stats['d_g_z_after']:.2f}")
    last_g = next((r["loss_g"] for r in reversed(rows) if r["loss_g"] is not None), None)
    return (f"W {stats['wasserstein']:.2f} GP {stats['gp']:.3f} D {stats['loss_d']:.2f} "
            f"G {'-' if last_g is None else f'{last_g:.2f}'}")


BAR_LEGEND = {False: "bar: D = Loss_D, G = Loss_G, D(x), D(G(z)) before/after the G step",
              True: "bar: W = Wasserstein estimate, GP = gradient penalty, D = critic loss, "
                    "G = generator loss"}


class RunClock:
    """Images per second and the time left for the whole run."""

    def __init__(self, total_iterations):
        self.total, self.done, self.start = total_iterations, 0, time.perf_counter()

    def tick(self):
        self.done += 1

    def eta(self):
        elapsed = time.perf_counter() - self.start
        return elapsed / max(self.done, 1) * (self.total - self.done)


def epoch_summary(epoch, niter, rows, seconds, images, clock, wgan):
    """One line per epoch (80 columns): its time, speed and mean figures, and
    the run's ETA."""
    keys = ("loss_d", "wasserstein", "gp") if wgan else ("loss_d", "loss_g", "d_x", "d_g_z_before")
    names = {"loss_d": "D", "loss_g": "G", "d_x": "D(x)", "d_g_z_before": "D(G(z))",
             "wasserstein": "W", "gp": "GP"}
    means = " ".join(f"{names[k]} {sum(r[k] for r in rows) / len(rows):.2f}" for k in keys)
    left = f" ETA {_duration(clock.eta())}" if epoch < niter else ""
    return (f"epoch {epoch}/{niter} {seconds:.1f} s {images / max(seconds, 1e-9):.0f} img/s "
            f"mean {means}{left}")


class Quality:
    """The sample-quality figures at the end of every epoch (digit datasets):
    `n` samples of a fixed noise set, drawn apart from the training RNG, so
    that evaluating never changes the run, scored by dcgan.evaluate and
    logged to metrics.csv."""

    def __init__(self, args, outf, keep_until):
        from dcgan import evaluate
        self.n, self.nz, self.codes, self.evaluate = args.eval_samples, args.nz, args.codes, evaluate
        with checkpoint.rng_preserved():  # building the classifier draws initial weights
            self.evaluator = evaluate.Evaluator(args.imageSize)
        self.log = CsvLog(os.path.join(outf, "metrics.csv"), keep_until, METRIC_FIELDS)

    def score(self, netG, epoch, step):
        with checkpoint.rng_preserved():
            f = self.evaluator.score(self.evaluate.sample(netG, self.n, self.nz,
                                                          codes=self.codes))
        hist = f.pop("class_hist")
        row = dict(step=step, epoch=epoch, **f, class_min=min(hist), class_max=max(hist),
                   **{f"class_{k}": v for k, v in enumerate(hist)})
        self.log.append(row)
        return row

    def summary(self, row):
        """One line (80 columns) of the epoch's figures against the floor."""
        floor = self.evaluator.floor
        return (f"  quality n {row['n']}: FD {row['fid']:.2f} (floor {floor['fid']:.2f}) "
                f"conf {row['confident']:.2f} classes {100 * row['class_min']:.0f}-"
                f"{100 * row['class_max']:.0f}% P {row['precision']:.2f} R {row['recall']:.2f}")

    def close(self):
        self.log.close()


class Interrupted(Exception):
    """Ctrl-C: exit code 130, with how to resume."""


def resume_command(args, ckpt_path):
    """The command line that continues this run from its checkpoint."""
    parts = ["python train.py", f"--resume {ckpt_path}"]
    if os.path.normpath(args.outf) != os.path.normpath(os.path.dirname(ckpt_path) or "."):
        parts.append(f"--outf {args.outf}")
    if args.backend:
        parts.append(f"--backend {args.backend}")
    return " ".join(parts)


def _write(what, path, ckpt_path, write):
    """Run write(); a failure (a full disk) is one line that names the file
    and says the previous checkpoint is intact (every write is atomic)."""
    try:
        write()
    except OSError as e:
        kept = (f"the previous checkpoint {ckpt_path} is intact" if os.path.exists(ckpt_path)
                else "no checkpoint had been written yet")
        raise UsageError(f"cannot write {what} '{path}': {e.strerror or e}; {kept}") from None


def check_finite(netG, netD, step, epoch, ckpt_path):
    """Weights and BatchNorm running statistics that went non-finite (which a
    finite loss can hide for a while) stop the run before they are saved."""
    for name, model in (("netG", netG), ("netD", netD)):
        bad = checkpoint.non_finite(model.state_dict())
        if bad:
            raise Diverged(f"training diverged by iteration {step} (epoch {epoch}): non-finite "
                           f"{name} {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}; "
                           + (f"the last good checkpoint is {ckpt_path}"
                              if os.path.exists(ckpt_path) else "no checkpoint was written"))


def train(args, ckpt):
    try:
        outf, note = outputs.prepare(args.outf, fresh=ckpt is None, dry_run=args.dry_run,
                                     overwrite=args.overwrite)
    except outputs.OutputError as e:
        raise UsageError(str(e)) from None
    backend = select_backend(args.backend)
    nn.manual_seed(args.manualSeed)
    dataset = load_dataset(args.dataset, args.dataroot, args.imageSize, seed=args.manualSeed)
    loader = Loader(dataset, args.batchSize, seed=args.manualSeed, prefetch=args.workers)
    args.nc = dataset.nc  # saved with the arguments: the sampler rebuilds G from them
    netG, netD, optG, optD, ema, netQ = build_models(args, dataset.nc, ckpt)
    code_loss = CodeLoss(netQ, args.lambda_info) if netQ is not None else None
    sampler = ema.module if ema is not None else netG  # what the grids and figures show
    wgan = args.loss == "wgan-gp"
    if wgan:
        # The critic counter is the only state the schedule has; a run resumed
        # mid-cycle (an epoch whose batches do not divide by n_critic) goes on
        # with the same cycle.
        saved = (ckpt or {}).get("trainer", {})
        schedule = WganGp(netG, netD, optG, optD, args.n_critic, args.lambda_gp,
                          critic_count=min(saved.get("critic_count", 0), args.n_critic - 1),
                          generator_steps=saved.get("generator_steps", 0))

        if args.cuda_graph:
            raise UsageError("--cuda-graph captures the bce/bce-logits step; --loss wgan-gp runs "
                             "eagerly")

        def iteration(real):
            noise = nn.randn(real.shape[0], args.nz, 1, 1)
            return schedule.step(real, noise)  # alpha, then G's noise, drawn inside
    else:
        criterion = nn.BCEWithLogitsLoss() if args.loss == "bce-logits" else nn.BCELoss()
        logits = args.loss == "bce-logits"

        def iteration(real):
            noise, code = latent(real.shape[0], args.nz, args.codes)
            return train_step(netG, netD, optG, optD, criterion, real, noise, logits,
                              info=(code_loss, code) if code_loss else None)

        if args.cuda_graph:
            if backend != "cupy":
                raise UsageError(f"--cuda-graph needs --backend cupy, not {backend}")
            captured = CapturedStep(netG, netD, optG, optD, criterion,
                                    (args.batchSize, dataset.nc, args.imageSize, args.imageSize),
                                    (args.batchSize, args.nz, 1, 1), logits=logits)

            def iteration(real):  # noqa: F811 -- the captured step replaces the eager one
                noise = nn.randn(real.shape[0], args.nz, 1, 1)
                return captured(real, noise)

    if ckpt is None:
        fixed_noise = latent(64, args.nz, args.codes)[0]
        start_epoch, step = 0, 0
    else:
        fixed_noise = nn.tensor(ckpt["fixed_noise"])
        start_epoch, step = ckpt["epoch"], ckpt["iteration"]
        checkpoint.restore_rng_states(ckpt["rng"])
    if note:
        print(note)
    print(f"Random Seed: {args.manualSeed} | backend {backend} | dataset {args.dataset} "
          f"({len(dataset)} images, {dataset.nc}x{args.imageSize}x{args.imageSize}) | "
          f"epochs {start_epoch + 1}..{args.niter} | {describe_variant(args)}")
    for flag, was, now in args.changed:
        print(f"resume: --{flag} {was} -> {now}")
    if wgan:
        print(f"wgan-gp: {WGAN_LEGEND.replace('n_critic', str(args.n_critic))}"
              .replace("lambda_gp", f"{args.lambda_gp:g}"))
    print(BAR_LEGEND[wgan])
    ckpt_path = os.path.join(outf, checkpoint.CHECKPOINT_NAME)
    if not os.path.exists(os.path.join(outf, "real_samples.png")):
        # the first batch of the first epoch, as pytorch/examples shows it
        _write("an image", os.path.join(outf, "real_samples.png"), ckpt_path,
               lambda: save_grid(dataset.get(loader.order(0)[:64]),
                                 os.path.join(outf, "real_samples.png")))

    from tqdm import tqdm
    log = CsvLog(os.path.join(outf, "log.csv"), keep_until=step if ckpt else None,
                 fields=WGAN_LOG_FIELDS if wgan else LOG_FIELDS + INFO_FIELDS * bool(netQ))
    quality = None
    if args.eval_samples:
        quality = Quality(args, outf, keep_until=step if ckpt else None)
        print(f"quality: {args.eval_samples} samples scored per epoch (metrics.csv); floor "
              f"(real digits) FD {quality.evaluator.floor['fid']:.2f}, ceiling (noise) FD "
              f"{quality.evaluator.ceiling['fid']:.1f}")
    else:
        print("quality: off (--eval-samples 0, or a dataset that is not digits: the metrics' "
              "classifier knows digits only)")
    epochs = range(start_epoch, args.niter)
    batches_of = {e: loader.batches_per_epoch for e in epochs}
    if args.dry_run:  # one cycle: a step, or for wgan-gp the critic steps up to a G step
        batches_of = {e: min(loader.batches_per_epoch,
                             args.n_critic - schedule.critic_count if wgan else 1) for e in epochs}
    clock = RunClock(sum(batches_of.values()))
    first_step, images, t_start = step, 0, time.perf_counter()
    epoch, i = start_epoch, -1
    # the epoch the checkpoint in outf holds, for the Ctrl-C message
    saved_epoch = ckpt["epoch"] if ckpt and os.path.exists(ckpt_path) else None
    try:
        for epoch in epochs:
            batches, t_epoch, rows_before = batches_of[epoch], time.perf_counter(), len(log.rows)
            # The figures go in {desc} after the bar: tqdm's {postfix} adds a ", ".
            bar = tqdm(itertools.islice(loader.epoch(epoch), batches), total=batches,
                       ncols=BAR_WIDTH, file=sys.stdout, bar_format=(
                           f"[{epoch + 1}/{args.niter}] {{percentage:3.0f}}%|{{bar}}| {{desc}}"))
            for i, real in bar:
                real = nn.tensor(real)
                g_steps = schedule.generator_steps if wgan else None
                stats = iteration(real)
                # the average moves after every G step (wgan-gp: one in n_critic)
                if ema is not None and (not wgan or schedule.generator_steps != g_steps):
                    ema.update_parameters(netG)
                step += 1
                images += real.shape[0]
                clock.tick()
                if not (math.isfinite(stats["loss_d"]) and
                        (stats["loss_g"] is None or math.isfinite(stats["loss_g"]))):
                    raise Diverged(
                        f"training diverged at iteration {step} (epoch {epoch + 1}, batch "
                        f"{i + 1}): Loss_D={stats['loss_d']}, Loss_G={stats['loss_g']}; "
                        + (f"the last good checkpoint is {ckpt_path}" if os.path.exists(ckpt_path)
                           else "no checkpoint had been written yet"))
                log.append(dict(step=step, epoch=epoch + 1, batch=i + 1,
                                seconds=round(time.perf_counter() - t_start, 3), **stats))
                rate = images / max(time.perf_counter() - t_start, 1e-9)
                bar.set_description_str(f"{progress(stats, wgan, log.rows)} {rate:.0f} img/s "
                                        f"ETA {_duration(clock.eta())}", refresh=False)
                if args.sample_every and step % args.sample_every == 0:
                    path = os.path.join(outf, f"fake_samples_step_{step:06d}.png")
                    _write("an image", path, ckpt_path,
                           lambda: save_grid(generate(sampler, fixed_noise), path))
            bar.close()
            i, seconds = -1, time.perf_counter() - t_epoch
            check_finite(netG, netD, step, epoch + 1, ckpt_path)
            figures = quality.score(sampler, epoch + 1, step) if quality else None
            save_epoch(args, outf, epoch + 1, step, netG, netD, optG, optD, fixed_noise,
                       schedule.state_dict() if wgan else None, log, quality, ema, netQ)
            saved_epoch = epoch + 1
            rows = log.rows[rows_before:]
            print(epoch_summary(epoch + 1, args.niter, rows, seconds,
                                len(rows) * args.batchSize, clock, wgan))
            if figures:
                print(quality.summary(figures))
    except KeyboardInterrupt:
        where = f"epoch {epoch + 1}, iteration {step}"
        if saved_epoch is None and os.path.exists(ckpt_path):
            # Ctrl-C between the first checkpoint's rename and the line that
            # records it: that checkpoint is this epoch's (a fresh run's folder
            # holds no other, outputs.prepare moved any old run aside).
            saved_epoch = epoch + 1
        if saved_epoch is not None:
            raise Interrupted(f"interrupted at {where}; resume with: "
                              f"{resume_command(args, ckpt_path)} (continues after epoch "
                              f"{saved_epoch})") from None
        raise Interrupted(f"interrupted at {where}, before the first checkpoint; nothing to "
                          "resume, start again") from None
    finally:
        log.close()
        if quality:
            quality.close()
    elapsed = time.perf_counter() - t_start
    run = step - first_step
    total = f" ({step} in total)" if ckpt else ""
    print(f"done: epochs {start_epoch + 1}..{args.niter}, {_plural(run, 'iteration')}{total}, "
          f"{images} images in {elapsed:.1f} s ({images / max(elapsed, 1e-9):.1f} images/s on "
          f"{backend}); samples, log.csv, losses.png and {checkpoint.CHECKPOINT_NAME} are in "
          f"{os.path.abspath(outf)}")


def save_epoch(args, outf, epoch, step, netG, netD, optG, optD, fixed_noise, trainer, log,
               quality=None, ema=None, netQ=None):
    """Everything written at the end of an epoch; the checkpoint goes last, so
    a resumed run never finds a checkpoint newer than its other files."""
    ckpt_path = os.path.join(outf, checkpoint.CHECKPOINT_NAME)
    grid = os.path.join(outf, f"fake_samples_epoch_{epoch:03d}.png")
    sampler = ema.module if ema is not None else netG
    _write("an image", grid, ckpt_path, lambda: save_grid(generate(sampler, fixed_noise), grid))
    plot = os.path.join(outf, "losses.png")
    _write("the loss plot", plot, ckpt_path,
           lambda: save_loss_plot(log.rows, plot, loss=args.loss, lambda_gp=args.lambda_gp,
                                  quality=quality and (quality.log.rows, quality.evaluator.floor)))
    models = [(netG, "netG"), (netD, "netD")] + ([(ema.module, "netG_ema")] if ema else [])
    for model, which in models:
        path = os.path.join(outf, f"{which}_epoch_{epoch}.safetensors")
        _write("weights", path, ckpt_path, lambda: checkpoint.save_weights(
            path, model, which, codes=args.codes if which != "netD" else 0))
    saved = {k: v for k, v in vars(args).items() if k not in ("changed",)}
    _write("the checkpoint", ckpt_path, ckpt_path, lambda: checkpoint.save(
        ckpt_path, args=saved, epoch=epoch, iteration=step, netG=netG, netD=netD, optG=optG,
        optD=optD, fixed_noise=fixed_noise, trainer=trainer, netG_ema=ema, netQ=netQ))
    outputs.prune_weights(outf, args.keep, epoch)


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
    except Interrupted as e:
        print(f"\ntrain.py: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # before training started: nothing to resume
        print("\ntrain.py: interrupted before training started", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
