"""Write a grid of samples from a trained generator.

    python -m dcgan.sample out/checkpoint.safetensors --n 64 --out samples.png [--bn eval]

CHECKPOINT is train.py's checkpoint.safetensors (the model's shape and
--arch come from the arguments it holds), or a netG_epoch_N.safetensors
weights file (or any safetensors file of a dcgan.models generator's
state_dict, torch's included), whose shape and arch are read off the
weights (dcgan.evaluate.build_from_weights). The shape flags override
either. Weights that hold NaN or infinity are refused: they would only draw
a grey or black grid.
A checkpoint of a run with --ema is sampled through its moving average of G
(--no-ema: the last G).
--bn batch (the default) normalises with the statistics of the sampled
batch, as pytorch/examples' grids do; --bn eval uses the running statistics,
as a deployed model would (pytorch/examples PRs #804 and #807).
"""

import argparse
import os
import sys

import nn
from dcgan import checkpoint
from dcgan.evaluate import EvaluateError, build_from_weights
from dcgan.images import save_grid
from dcgan.models import ARCHS
from dcgan.trainer import generate, latent


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m dcgan.sample", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="checkpoint.safetensors or netG_epoch_N.safetensors")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--nrow", type=int, default=8, help="samples per grid row")
    p.add_argument("--out", default="samples.png", help="the PNG to write")
    p.add_argument("--bn", choices=("batch", "eval"), default="batch",
                   help="BatchNorm statistics: the sampled batch's, or the running ones")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise")
    p.add_argument("--backend", default=None, help="compute backend")
    for flag in ("nz", "ngf", "nc", "imageSize"):
        p.add_argument(f"--{flag}", type=int, default=None,
                       help="model shape (default: read off the weights)")
    p.add_argument("--arch", choices=ARCHS, default=None,
                   help="generator architecture (default: read off the weights)")
    p.add_argument("--no-ema", dest="average", action="store_false",
                   help="sample the checkpoint's last G, not its moving average (train.py --ema)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="also read this project's old pickle files (they can run code: only "
                        "for files you trust)")
    args = p.parse_args(argv)
    try:
        if args.n < 1 or args.nrow < 1:
            raise checkpoint.CheckpointError(f"--n and --nrow must be positive, got --n {args.n} "
                                             f"--nrow {args.nrow}")
        folder = os.path.dirname(os.path.abspath(args.out))
        if os.path.isdir(args.out):
            raise checkpoint.CheckpointError(f"--out '{args.out}' is a folder; give a file name "
                                             "such as samples.png")
        if not os.path.isdir(folder):
            raise checkpoint.CheckpointError(f"--out '{args.out}': the folder '{folder}' does "
                                             "not exist")
        if args.backend:
            nn.set_backend(args.backend)
        weights, which, saved = checkpoint.generator_weights(args.checkpoint, args.average,
                                                             args.trust_pickle)
        bad = checkpoint.non_finite(weights)
        if bad:
            raise checkpoint.CheckpointError(
                f"'{args.checkpoint}' holds non-finite generator weights ({', '.join(bad[:3])}"
                f"{' ...' if len(bad) > 3 else ''}): the run that wrote it diverged")
        flags = {"nz": args.nz, "ngf": args.ngf, "nc": args.nc, "imageSize": args.imageSize,
                 "arch": args.arch}
        netG, shape = build_from_weights(weights, saved, flags, args.checkpoint)
        nn.manual_seed(args.seed)
        noise = latent(args.n, shape["nz"], shape["codes"])[0]  # with InfoGAN's code, if any
        save_grid(generate(netG, noise, bn=args.bn), args.out, nrow=args.nrow)
    except (checkpoint.CheckpointError, EvaluateError, ValueError, RuntimeError) as e:
        print(f"dcgan.sample: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"dcgan.sample: error: cannot write '{args.out}': {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"wrote {args.n} samples of {'the moving average of G' if which == 'netG_ema' else 'G'} "
          f"({args.bn} BatchNorm statistics) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
