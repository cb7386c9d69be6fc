"""A small digit classifier, trained with this library on the embedded digits:
the feature extractor of the sample-quality metrics (dcgan/metrics.py,
dcgan/evaluate.py). It is not Inception: its numbers compare only with each
other.

    python -m dcgan.classifier --retrain [--out PATH] [--epochs N] [--limit N]

The split: of the 5,000 embedded digits (dcgan.data.load_mnist5k_labelled,
500 per class, in file order), the held-out test set is 100 per class, the
first 100 of a permutation of that class's indices drawn from
np.random.default_rng(SPLIT_SEED); the other 4,000 train the classifier.

Input: images of any size S x S in [-1, 1], shape (N, 1, S, S), as a
generator makes them. They are resized to 28 x 28 in NumPy by `resize`: a
separable triangle filter whose support widens by the scale factor when
downscaling, the filter Pillow's BILINEAR uses (so 28 -> S in dcgan.data and
S -> 28 here are the same kind of resampling). Real digits are judged
through the same path as generated ones: first to S exactly as dcgan.data
prepares the training images (`real_digits`), then to 28 here.

Training: Adam, cross-entropy, for each image a random one of four versions
(the 28 x 28 original, or its round trip through 16, 32 or 64, so the
classifier sees the blur of every --imageSize) shifted by up to
MAX_SHIFT pixels; and outlier exposure (Hendrycks et al. 2019): each batch
also holds OUTLIERS non-digit images (smooth noise, shuffled digits) whose
target is the uniform distribution, so that "confident" means "looks like a
digit" and not merely "is an image". A fixed seed makes the run reproducible.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import nn
from dcgan import checkpoint
from dcgan.data import load_dataset, load_mnist5k_labelled

SIZE = 28                 # the classifier's input: the embedded digits' own size
NUM_CLASSES = 10
FEATURES = 128            # width of the penultimate layer: the metrics' feature space
HOLDOUT_PER_CLASS = 100
SPLIT_SEED = 13
TRAIN_SEED = 0
ROUND_TRIP_SIZES = (16, 32, 64)  # the blur of these --imageSize values is in the training data
MAX_SHIFT = 2
OUTLIERS = 32             # non-digit images per batch (outlier exposure)
OUTLIER_WEIGHT = 0.5      # Hendrycks et al. 2019's lambda
EPOCHS = 12
BATCH_SIZE = 64
LR = 2e-3
WEIGHTS = Path(__file__).resolve().parent / "weights" / "digit_classifier.safetensors"
WHICH = "classifier"      # the model name inside the weights file


# --- resizing ---------------------------------------------------------------

def resize_matrix(n_in, n_out):
    """(n_out, n_in) float64 rows of the triangle filter Pillow's BILINEAR
    applies: output pixel i is centred at (i + 0.5) * scale in input
    coordinates; its weights are max(0, 1 - |x - centre| / support) at the
    input pixel centres x, support = max(scale, 1), normalised to sum 1."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    x = np.arange(n_in) + 0.5
    w = np.maximum(0.0, 1.0 - np.abs(x[None, :] - centres[:, None]) / support)
    return w / w.sum(axis=1, keepdims=True)


def resize(images, size=SIZE):
    """float32 (N, C, H, W) -> (N, C, size, size): R_h @ image @ R_w^T per image."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"resize: expected images (N, C, H, W), got shape {images.shape}")
    _, _, h, w = images.shape
    if h == w == size:
        return images
    rh = resize_matrix(h, size).astype(np.float32)
    rw = resize_matrix(w, size).astype(np.float32)
    return np.einsum("ih,nchw,jw->ncij", rh, images, rw, optimize=True).astype(np.float32)


# --- data ---------------------------------------------------------------------

def split(labels):
    """(train indices, held-out indices), both sorted: HOLDOUT_PER_CLASS of
    each class held out by a permutation drawn from default_rng(SPLIT_SEED)."""
    rng = np.random.default_rng(SPLIT_SEED)
    held = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:HOLDOUT_PER_CLASS]
                           for c in range(NUM_CLASSES)])
    held.sort()
    train = np.setdiff1d(np.arange(len(labels)), held)
    return train, held


def real_digits(image_size, indices):
    """float32 (len(indices), 1, S, S) in [-1, 1]: embedded digits `indices`
    prepared at image_size exactly as train.py's training data."""
    return load_dataset("mnist5k", image_size=image_size).get(indices)


def _to_unit(images_uint8):
    return images_uint8.astype(np.float32) / 127.5 - 1.0


def training_versions(indices):
    """(V, N, 1, 28, 28) float32 views of the digits `indices` the classifier trains on."""
    versions = [_to_unit(load_mnist5k_labelled()[0][indices])]
    for s in ROUND_TRIP_SIZES:
        versions.append(resize(real_digits(s, indices)))
    return np.stack(versions)


def augment(versions, rng):
    """A batch: per image a random version, shifted by up to MAX_SHIFT pixels
    (zero padding at -1, the background)."""
    v, n = versions.shape[:2]
    x = versions[rng.integers(0, v, n), np.arange(n)]
    pad = MAX_SHIFT
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-1.0)
    dy, dx = rng.integers(0, 2 * pad + 1, (2, n))
    out = np.empty_like(x)
    for k in range(n):
        out[k] = padded[k, :, dy[k]:dy[k] + SIZE, dx[k]:dx[k] + SIZE]
    return out


def outliers(versions, n, rng):
    """n non-digit images, for outlier exposure (Hendrycks et al. 2019): half
    smooth noise (uniform noise at a random r x r, r in 2..28, resized to 28,
    sharpened into strokes for half of those), half training digits with
    their pixels shuffled (a digit's ink, no digit's shape)."""
    out = np.empty((n, 1, SIZE, SIZE), np.float32)
    half = n // 2
    for k in range(half):
        r = int(rng.integers(2, SIZE + 1))
        blob = resize(rng.uniform(-1, 1, (1, 1, r, r)).astype(np.float32))[0]
        out[k] = np.tanh(4 * blob) if k % 2 else blob
    flat = versions[0, rng.integers(0, versions.shape[1], n - half)].reshape(n - half, -1)
    out[half:] = rng.permuted(flat, axis=1).reshape(n - half, 1, SIZE, SIZE)
    return out


# --- the model ----------------------------------------------------------------

class DigitClassifier(nn.Module):
    """28 x 28 -> FEATURES penultimate features -> NUM_CLASSES logits.

    Four convolutions (the last three stride 2: 28 -> 14 -> 7 -> 4) with
    batch norm and ReLU, a linear layer to the FEATURES-wide penultimate
    layer, ReLU, and the linear head; 0.2 M parameters, a few minutes of CPU
    training. `features` ends before that ReLU: the metrics use the
    penultimate layer's pre-activations. After the ReLU 63% of a real
    digit's features are 0 and every non-digit collapses near the origin,
    where one atypical held-out digit's k-NN ball took in all of the noise
    images (the ceiling's precision came out 1.0)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 4, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 64, 3, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 4 * 4, FEATURES))
        self.head = nn.Linear(FEATURES, NUM_CLASSES)

    def forward(self, x):
        return self.head(nn.functional.relu(self.features(x)))


def load_classifier(path=WEIGHTS):
    """The trained classifier in eval mode (CheckpointError if the file is bad)."""
    model = DigitClassifier()
    checkpoint.load_into(model, checkpoint.load_weights(str(path), WHICH), str(path))
    return model.eval()


def predict(model, images, batch_size=500):
    """(penultimate pre-activations float64 (N, FEATURES), class
    probabilities float64 (N, 10)) of images (N, 1, S, S) in [-1, 1], any
    S: resized to 28 first."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] != 1 or images.shape[2] != images.shape[3]:
        raise ValueError(f"digit classifier: expected images (N, 1, S, S), got shape "
                         f"{images.shape}")
    was_training = model.training
    model.eval()
    feats, probs = [], []
    try:
        with nn.no_grad():
            for i in range(0, len(images), batch_size):
                f = model.features(nn.tensor(resize(images[i:i + batch_size])))
                p = nn.functional.softmax(model.head(nn.functional.relu(f)), 1)
                feats.append(f.numpy().astype(np.float64))
                probs.append(p.numpy().astype(np.float64))
    finally:
        model.train(was_training)
    return np.concatenate(feats), np.concatenate(probs)


def accuracy(model, images, labels):
    return float((predict(model, images)[1].argmax(1) == labels).mean())


# --- training -----------------------------------------------------------------

def retrain(out=WEIGHTS, epochs=EPOCHS, limit=None, seed=TRAIN_SEED, log=print):
    """Train from scratch (fixed seed), save to `out`, return the held-out accuracy."""
    from tqdm import tqdm
    images, labels = load_mnist5k_labelled()
    train_idx, held_idx = split(labels)
    if limit is not None:  # a quick run (tests): the first `limit` of a fixed shuffle
        train_idx = np.sort(np.random.default_rng(seed).permutation(train_idx)[:limit])
    versions = training_versions(train_idx)
    y_train = labels[train_idx]
    nn.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = DigitClassifier()
    opt = nn.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    n = len(train_idx)
    steps = max(n // BATCH_SIZE, 1)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        # The learning rate falls linearly to a tenth over the run.
        for g in opt.param_groups:
            g["lr"] = LR * (1 - 0.9 * epoch / max(epochs - 1, 1))
        model.train()
        order = rng.permutation(n)
        bar = tqdm(range(steps), desc=f"classifier epoch {epoch + 1}/{epochs}",
                   dynamic_ncols=True, file=sys.stdout)
        correct = seen = 0
        for s in bar:
            idx = order[s * BATCH_SIZE:(s + 1) * BATCH_SIZE]
            b = len(idx)
            x = augment(versions[:, idx], rng)
            if OUTLIERS:
                x = np.concatenate([x, outliers(versions, OUTLIERS, rng)])
            y = nn.tensor(y_train[idx], dtype=nn.int64)
            both = model(nn.tensor(x))
            logits = both[:b]
            loss = loss_fn(logits, y)
            if OUTLIERS:
                # Outlier exposure: cross-entropy to the uniform distribution on non-digits,
                # so that the classifier is not confident on noise (the ceiling) or blobs.
                loss = loss + OUTLIER_WEIGHT * -nn.functional.log_softmax(both[b:], 1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            correct += int((logits.numpy().argmax(1) == y_train[idx]).sum())
            seen += len(idx)
            bar.set_postfix(loss=f"{loss.item():.3f}", train_acc=f"{correct / seen:.3f}")
        bar.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save_weights(str(out), model, WHICH)
    model.eval()
    held = _to_unit(images[held_idx])
    acc = accuracy(model, held, labels[held_idx])
    acc32 = accuracy(model, real_digits(32, held_idx), labels[held_idx])
    log(f"trained on {n} digits for {epochs} epochs in {time.perf_counter() - t0:.0f} s "
        f"(backend {nn.get_backend()}); wrote {out}")
    log(f"held-out accuracy: {acc:.4f} on {len(held_idx)} digits at 28x28 "
        f"({acc32:.4f} through 32x32)")
    return acc


def main(argv=None):
    p = argparse.ArgumentParser(description="The digit classifier behind dcgan.evaluate.")
    p.add_argument("--retrain", action="store_true", help="train it again from scratch")
    p.add_argument("--out", default=str(WEIGHTS), help="where to write the weights")
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs (default {EPOCHS})")
    p.add_argument("--limit", type=int, default=None,
                   help="train on only this many digits (a quick check)")
    p.add_argument("--backend", default=None, help="compute backend (default numpy on a CPU)")
    args = p.parse_args(argv)
    if not args.retrain:
        p.print_help()
        return 0
    if args.epochs < 1 or (args.limit is not None and args.limit < 1):
        print("dcgan.classifier: error: --epochs and --limit must be positive", file=sys.stderr)
        return 2
    if args.backend:
        try:
            nn.set_backend(args.backend)
        except (ValueError, RuntimeError) as e:  # kernels.BackendError / BackendUnavailableError
            print(f"dcgan.classifier: error: {e}", file=sys.stderr)
            return 2
    retrain(args.out, args.epochs, args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
