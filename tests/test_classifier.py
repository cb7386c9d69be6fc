"""The digit classifier: the committed weights' held-out accuracy, its split,
its NumPy resize (against Pillow's BILINEAR), and the retraining command."""

import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from dcgan import checkpoint, classifier
from dcgan.data import load_mnist5k_labelled

ROOT = __file__.rsplit("/tests/", 1)[0]


pytestmark = pytest.mark.usefixtures("numpy_backend")


@pytest.fixture(scope="module")
def digits():
    images, labels = load_mnist5k_labelled()
    return images, labels, classifier.split(labels)


def test_split_is_fixed_and_balanced(digits):
    _, labels, (train, held) = digits
    assert len(held) == 1000 and len(train) == 4000
    assert not np.intersect1d(train, held).size
    np.testing.assert_array_equal(np.bincount(labels[held]), [100] * 10)
    # The committed weights were trained on this exact split: a change of
    # SPLIT_SEED or of the rule would leak test digits into training.
    assert zlib.crc32(held.astype(np.int64).tobytes()) == HELD_CRC
    np.testing.assert_array_equal(held[:5], [0, 9, 13, 16, 27])


HELD_CRC = 4281595175  # of the held-out indices the committed weights were trained without


@pytest.mark.parametrize("image_size", [None, 16, 32, 64])
def test_committed_weights_reach_97_percent_held_out(digits, image_size):
    """At 28 x 28 as stored, and through each generator size the way train.py
    prepares its data (28 -> S by dcgan.data, S -> 28 by classifier.resize)."""
    images, labels, (_, held) = digits
    model = classifier.load_classifier()
    x = (images[held].astype(np.float32) / 127.5 - 1 if image_size is None
         else classifier.real_digits(image_size, held))
    assert classifier.accuracy(model, x, labels[held]) >= 0.97


def test_committed_weights_are_not_confident_on_non_digits(seed):
    """Outlier exposure: noise and shuffled digits get no confident class."""
    rng = np.random.default_rng(seed)
    model = classifier.load_classifier()
    noise = rng.uniform(-1, 1, (200, 1, 32, 32)).astype(np.float32)
    digits = classifier.real_digits(32, rng.choice(5000, 200, replace=False))
    shuffled = rng.permuted(digits.reshape(200, -1), axis=1).reshape(digits.shape)
    for x in (noise, shuffled):
        assert (classifier.predict(model, x)[1].max(1) >= 0.9).mean() < 0.05
    assert (classifier.predict(model, digits)[1].max(1) >= 0.9).mean() > 0.9


def test_committed_weights_are_safetensors():
    with open(classifier.WEIGHTS, "rb") as f:
        head = f.read(9)
    assert head[8:9] == b"{"  # an 8-byte header length, then the JSON header
    state = checkpoint.load_weights(str(classifier.WEIGHTS), classifier.WHICH)
    assert state.keys() == classifier.DigitClassifier().state_dict().keys()


@pytest.mark.parametrize("n_in,n_out", [(28, 32), (28, 16), (28, 64), (32, 28), (64, 28),
                                        (16, 28), (13, 28), (28, 28)])
def test_resize_matches_pillow_bilinear(seed, n_in, n_out):
    x = np.random.default_rng(seed).uniform(-1, 1, (n_in, n_in)).astype(np.float32)
    want = np.asarray(Image.fromarray(x, mode="F").resize((n_out, n_out), Image.BILINEAR))
    got = classifier.resize(x[None, None], n_out)[0, 0]
    assert np.abs(got - want).max() < 1e-6


def test_predict_outputs_and_bad_shape(seed):
    model = classifier.DigitClassifier()
    x = np.random.default_rng(seed).uniform(-1, 1, (7, 1, 16, 16)).astype(np.float32)
    feats, probs = classifier.predict(model, x, batch_size=3)
    assert feats.shape == (7, classifier.FEATURES) and probs.shape == (7, 10)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    assert model.training  # predict leaves the mode as it found it
    with pytest.raises(ValueError, match=r"digit classifier: expected images \(N, 1, S, S\)"):
        classifier.predict(model, np.zeros((2, 3, 16, 16), np.float32))


def test_retrain_command_tiny_run(tmp_path):
    out = tmp_path / "w" / "c.safetensors"
    r = subprocess.run([sys.executable, "-m", "dcgan.classifier", "--retrain", "--out", str(out),
                        "--epochs", "1", "--limit", "200"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "trained on 200 digits for 1 epochs" in r.stdout
    acc = float(r.stdout.split("held-out accuracy: ")[1].split()[0])
    assert 0.1 < acc <= 1.0  # one epoch on 200 digits: better than chance
    model = classifier.load_classifier(out)
    assert not model.training


def test_retrain_rejects_bad_flags(capsys):
    assert classifier.main(["--retrain", "--epochs", "0"]) == 2
    assert classifier.main(["--retrain", "--backend", "nope"]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err
