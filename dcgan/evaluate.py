"""How good are a digit generator's samples? Figures on the digit classifier's features.

    python -m dcgan.evaluate out/checkpoint.safetensors [--n 5000] [--backend numpy]
    python -m dcgan.evaluate out/netG_epoch_7.safetensors     # shapes read off the weights

    ev = Evaluator(image_size=32)          # train.py, once
    figures = ev.score(images)             # float32 (N, 1, 32, 32) in [-1, 1] -> dict (KEYS)

For the generator's samples against the 1,000 held-out real digits (the
classifier's test split, dcgan/classifier.py) it prints: the Frechet distance
on the pre-activations of the classifier's penultimate layer (FID's formula;
biased upwards by small n, so n is printed), KID (unbiased MMD^2, cubic kernel) with its std
over subsets, precision and recall (k = 3), the share of samples labelled with
confidence >= 0.9 and the class histogram; and the same figures for 1,000 real
training digits (the floor: what real data scores, prepared exactly as
train.py's training images) and for 1,000 uniform-noise images (the ceiling).
The classifier is not Inception: these numbers compare only with each other,
at the same n.

Exit codes: 0 done, 2 bad input (one line: a missing or unreadable file, a
model that does not make 1-channel digits).
"""

import argparse
import contextlib
import sys
import time

import numpy as np

import nn
from dcgan import checkpoint, classifier, metrics
from dcgan.models import ARCHS, build_generator
from dcgan.trainer import generate, host_latent

# The datasets whose images are the classifier's digits ("mnist-like" in the
# sense that matters: the same ten classes; fashion-mnist has MNIST's format
# but not its digits).
DIGIT_DATASETS = ("mnist5k", "mnist")
REFERENCE_COUNT = classifier.HOLDOUT_PER_CLASS * classifier.NUM_CLASSES  # 1,000 held-out digits
FLOOR_COUNT = 1000
CEILING_COUNT = 1000
FLOOR_SEED, CEILING_SEED, NOISE_SEED = 1, 2, 0
# Held-out reference is 1,000 digits: subsets of 500 (half) make KID's std
# over subsets meaningful (subsets of the whole set would all be equal).
KID_SUBSET_SIZE = 500
# What score() returns, in this order.
KEYS = ("n", "fid", "kid", "kid_std", "precision", "recall", "confident", "class_hist")
KEY_HELP = {
    "n": "number of images scored (FID is biased by n: compare at equal n)",
    "fid": "Frechet distance of the classifier's penultimate pre-activations to the held-out "
           "digits'",
    "kid": "KID: unbiased MMD^2, kernel (x.y/d + 1)^3, mean over 100 subsets of 500",
    "kid_std": "KID's standard deviation over those subsets",
    "precision": "share of the images inside the held-out digits' k-NN manifold (k = 3)",
    "recall": "share of the held-out digits inside the images' k-NN manifold (k = 3)",
    "confident": "share of images whose top class probability is >= 0.9",
    "class_hist": "share of images per predicted class 0..9 (a list of 10)",
}


class EvaluateError(Exception):
    """Bad input to the evaluation (one-line message, exit code 2)."""


def _on(backend):
    return nn.use_backend(backend) if backend else contextlib.nullcontext()


class Evaluator:
    """The classifier, loaded once, and the reference statistics of the
    held-out digits at `image_size`, with the floor and the ceiling.

    score(images) takes float32 (N, 1, S, S) in [-1, 1], S = image_size, and
    returns a dict with KEYS (floats; class_hist a list of 10 floats; n an
    int). On this 2-core CPU, N = 1000 takes about 2 s (numpy backend)."""

    def __init__(self, image_size, backend=None, weights=classifier.WEIGHTS,
                 kid_subsets=metrics.KID_SUBSETS, kid_subset_size=KID_SUBSET_SIZE):
        if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
                or image_size < 1:
            raise ValueError(f"Evaluator: image_size must be a positive int, got {image_size!r}")
        self.image_size, self.backend = int(image_size), backend
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        with _on(backend):
            self.model = classifier.load_classifier(weights)
        labels = classifier.load_mnist5k_labelled()[1]
        train_idx, held_idx = classifier.split(labels)
        self.reference_features, _ = self.features(classifier.real_digits(self.image_size,
                                                                          held_idx))
        floor_idx = np.sort(np.random.default_rng(FLOOR_SEED).choice(train_idx, FLOOR_COUNT,
                                                                     replace=False))
        self.floor = self.score(classifier.real_digits(self.image_size, floor_idx))
        self.ceiling = self.score(noise_images(CEILING_COUNT, self.image_size))

    def features(self, images):
        """(penultimate features, class probabilities) of images."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[1:] != (1, self.image_size, self.image_size):
            raise ValueError(f"Evaluator.score: expected images (N, 1, {self.image_size}, "
                             f"{self.image_size}) in [-1, 1], got shape {images.shape}")
        with _on(self.backend):
            return classifier.predict(self.model, images)

    def score(self, images):
        """The figures (KEYS) of images against the held-out digits."""
        feats, probs = self.features(images)
        if len(feats) <= metrics.PR_K:
            raise ValueError(f"Evaluator.score: need more than {metrics.PR_K} images, got "
                             f"{len(feats)}")
        ref = self.reference_features
        kid, kid_std = metrics.kernel_distance(ref, feats, self.kid_subsets, self.kid_subset_size)
        precision, recall = metrics.precision_recall(ref, feats)
        return {"n": len(feats), "fid": metrics.frechet_distance(ref, feats), "kid": kid,
                "kid_std": kid_std, "precision": precision, "recall": recall,
                "confident": metrics.confident_share(probs),
                "class_hist": [float(v) for v in metrics.class_histogram(probs)]}


def noise_images(n, image_size, seed=CEILING_SEED):
    """float32 (n, 1, S, S) uniform in [-1, 1]: the ceiling's images."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (n, 1, image_size, image_size)).astype(np.float32)


# --- generators from files ----------------------------------------------------

def generator_shape(state_dict):
    """{nz, ngf, nc, imageSize, arch, fc} of a dcgan.models generator, read
    off its state_dict. The ConvTranspose2d weights are main.{i}.weight with
    4 dims, (ngf, nc, 4, 4) last, one per doubling of the size; arch dcgan
    and leaky start with one from z, (nz, w0, 4, 4), and leaky's have biases;
    arch infogan starts with two Linear weights (2 dims), (fc, nz) first.
    fc is None but for infogan."""
    weights = sorted((int(k.split(".")[1]), np.shape(v)) for k, v in state_dict.items()
                     if k.startswith("main.") and k.endswith(".weight") and np.ndim(v) in (2, 4))
    convs = [(i, shape) for i, shape in weights if len(shape) == 4]
    linears = [shape for _, shape in weights if len(shape) == 2]
    if not convs:
        raise EvaluateError("the weights hold no generator convolutions (main.N.weight)")
    last = convs[-1][1]
    if linears:
        return {"nz": linears[0][1], "ngf": last[0], "nc": last[1],
                "imageSize": 2 ** (len(convs) + 2), "arch": "infogan", "fc": linears[0][0]}
    arch = "leaky" if f"main.{convs[0][0]}.bias" in state_dict else "dcgan"
    return {"nz": convs[0][1][0], "ngf": last[0], "nc": last[1],
            "imageSize": 2 ** (len(convs) + 1), "arch": arch, "fc": None}


def build_from_weights(state, saved=None, shape=None, path="the weights"):
    """(netG holding `state`, info: nz, ngf, nc, imageSize, arch, fc, dataset,
    codes):
    the shape read off the weights, then a checkpoint's saved arguments
    (`saved`: train.py's args; its `nfc` is fc), then `shape`'s non-None
    values, each overriding the one before."""
    info = {**generator_shape(state), "dataset": None, "codes": 0}
    saved = dict(saved or {}, fc=(saved or {}).get("nfc"))
    info.update({k: saved[k] for k in info if saved.get(k) is not None})
    info.update({k: v for k, v in (shape or {}).items() if v is not None})
    if info["arch"] not in ARCHS:
        raise EvaluateError(f"'{path}': unknown generator arch {info['arch']!r}")
    netG = build_generator(nn, info["nz"], info["ngf"], info["nc"], info["imageSize"],
                           arch=info["arch"], **({"fc": info["fc"]} if info["fc"] else {}))
    checkpoint.load_into(netG, state, path)
    return netG, info


def load_generator(path, shape=None, average=True):
    """(netG in train mode, info dict: nz, ngf, nc, imageSize, arch, fc, dataset,
    weights) from a train.py checkpoint (its saved args; the average of G
    when it keeps one, unless average=False) or a netG / netG_ema weights
    file (the shape read off the weights; `shape` overrides any of them).
    info["weights"] says which: "netG" or "netG_ema"."""
    state, which, saved = checkpoint.generator_weights(path, average)
    netG, info = build_from_weights(state, saved, shape, path)
    return netG, {**info, "weights": which}


def check_digit_model(path, info):
    """EvaluateError unless the generator makes 1-channel images of a digit dataset."""
    if info["nc"] != 1:
        raise EvaluateError(f"'{path}' is a generator of {info['nc']}-channel images"
                            + (f" (dataset {info['dataset']})" if info["dataset"] else "")
                            + "; the digit metrics need a 1-channel model trained on "
                            + " or ".join(DIGIT_DATASETS))
    if info["dataset"] is not None and info["dataset"] not in DIGIT_DATASETS:
        raise EvaluateError(f"'{path}' was trained on dataset {info['dataset']!r}; the digit "
                            f"metrics need a model trained on {' or '.join(DIGIT_DATASETS)}")


def sample(netG, n, nz, seed=NOISE_SEED, batch_size=500, bn="batch", codes=0):
    """float32 (n, nc, S, S) from G, in batches, from noise drawn by
    np.random.default_rng(seed) (with InfoGAN's code of `codes` values, a
    uniform one: dcgan.trainer.host_latent): the library's own generator
    (which training draws from) is left untouched."""
    noise = host_latent(np.random.default_rng(seed), n, nz, codes)
    return np.concatenate([generate(netG, nn.tensor(noise[i:i + batch_size]), bn=bn)
                           for i in range(0, n, batch_size)])


# --- the command --------------------------------------------------------------

def format_table(rows):
    """The printed table: one line per (name, figures)."""
    head = (f"{'':26s} {'n':>5s} {'FD':>9s} {'KID':>9s} {'+-std':>8s} {'prec':>6s} "
            f"{'recall':>6s} {'conf':>6s}  classes 0..9 (%)")
    lines = [head]
    for name, f in rows:
        hist = " ".join(f"{100 * v:4.1f}" for v in f["class_hist"])
        lines.append(f"{name:26s} {f['n']:5d} {f['fid']:9.4g} {f['kid']:9.4g} "
                     f"{f['kid_std']:8.3g} {f['precision']:6.3f} {f['recall']:6.3f} "
                     f"{f['confident']:6.3f}  {hist}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="train.py's checkpoint, or a netG_epoch_N weights file")
    p.add_argument("--n", type=int, default=5000, help="samples to score (default 5000)")
    p.add_argument("--batch-size", type=int, default=500,
                   help="generator batch (the BatchNorm statistics' batch with --bn batch)")
    p.add_argument("--bn", choices=("batch", "eval"), default="batch",
                   help="generator BatchNorm statistics: the batch's (as train.py's grids) "
                        "or the running ones")
    p.add_argument("--seed", type=int, default=NOISE_SEED, help="seed of the noise")
    p.add_argument("--backend", default=None, help="compute backend")
    p.add_argument("--no-ema", dest="average", action="store_false",
                   help="score the checkpoint's last G, not its moving average (train.py --ema)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        if args.n <= metrics.PR_K or args.batch_size < 1:
            raise EvaluateError(f"--n must be more than {metrics.PR_K} and --batch-size "
                                f"positive, got {args.n} and {args.batch_size}")
        if args.backend:
            nn.set_backend(args.backend)
        netG, info = load_generator(args.checkpoint, average=args.average)
        check_digit_model(args.checkpoint, info)
        images = sample(netG, args.n, info["nz"], args.seed, args.batch_size, args.bn,
                        info["codes"])
        ev = Evaluator(info["imageSize"])
        figures = ev.score(images)
    except (EvaluateError, checkpoint.CheckpointError, ValueError, RuntimeError) as e:
        print(f"dcgan.evaluate: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.checkpoint}: generator nz {info['nz']}, ngf {info['ngf']}, "
          f"{info['nc']}x{info['imageSize']}x{info['imageSize']}, arch {info['arch']}"
          f"{' (the moving average of G)' if info['weights'] == 'netG_ema' else ''}; "
          f"{args.n} samples (seed {args.seed}, BatchNorm {args.bn} statistics, batches of "
          f"{args.batch_size}), backend {nn.get_backend()}")
    print(f"against the {REFERENCE_COUNT} held-out real digits, on the digit classifier's "
          f"{classifier.FEATURES} penultimate pre-activations (not Inception: compare these "
          "numbers only with each other, at equal n; FD and KID: lower is better)")
    print(format_table([("generator", figures),
                        ("floor: real train digits", ev.floor),
                        ("ceiling: uniform noise", ev.ceiling)]))
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
