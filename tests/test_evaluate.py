"""dcgan.evaluate: the Evaluator's figures read against the floor and the
ceiling, the command on a checkpoint and on a weights file, and bad input
(one line, exit code 2)."""

import subprocess
import sys

import numpy as np
import pytest

import nn
from dcgan import checkpoint, classifier, evaluate
from dcgan.models import build_discriminator, build_generator

ROOT = __file__.rsplit("/tests/", 1)[0]
SIZE = 16  # the smallest generator: the cheapest checkpoint


pytestmark = pytest.mark.usefixtures("numpy_backend")


@pytest.fixture(scope="module")
def evaluator():
    with nn.use_backend("numpy"):
        return evaluate.Evaluator(SIZE)


def write_checkpoint(path, nc=1, dataset="mnist5k", arch="dcgan", nz=8, ngf=4):
    """A checkpoint of untrained models, as train.py writes it."""
    nn.manual_seed(0)
    netG = build_generator(nn, nz, ngf, nc, SIZE, arch=arch)
    netD = build_discriminator(nn, nc, 4, SIZE, arch=arch)
    args = dict(dataset=dataset, nz=nz, ngf=ngf, ndf=4, nc=nc, imageSize=SIZE, arch=arch)
    checkpoint.save(str(path), args=args, epoch=1, iteration=1, netG=netG, netD=netD,
                    optG=nn.optim.Adam(netG.parameters()), optD=nn.optim.Adam(netD.parameters()),
                    fixed_noise=nn.randn(4, nz, 1, 1))
    checkpoint.save_weights(str(path.parent / "netG_epoch_1.safetensors"), netG, "netG")
    return netG


def test_scores_read_against_floor_and_ceiling(evaluator):
    floor, ceiling = evaluator.floor, evaluator.ceiling
    assert list(floor) == list(evaluate.KEYS) == list(ceiling)
    assert floor["n"] == ceiling["n"] == 1000
    # Real digits: near the reference on every figure; noise: far on every one.
    assert floor["fid"] < 0.05 * ceiling["fid"]
    assert floor["kid"] < 0.02 * ceiling["kid"] and ceiling["kid_std"] > 0
    assert floor["precision"] > 0.6 and floor["recall"] > 0.6
    assert ceiling["precision"] < 0.05 and ceiling["recall"] < 0.05
    assert floor["confident"] > 0.9
    assert ceiling["confident"] < 0.05  # outlier exposure: noise is no digit
    assert all(0.07 < v < 0.13 for v in floor["class_hist"])  # 100 of each class held out
    assert sum(ceiling["class_hist"]) == pytest.approx(1.0)


def test_score_of_one_class_shows_mode_collapse(evaluator):
    """All sevens: confident, but one class, and recall collapses."""
    _, labels = classifier.load_mnist5k_labelled()
    sevens = np.flatnonzero(labels == 7)[:300]
    f = evaluator.score(classifier.real_digits(SIZE, sevens))
    assert f["class_hist"][7] > 0.95 and f["confident"] > 0.9
    assert f["recall"] < 0.3 < f["precision"]
    assert f["fid"] > 5 * evaluator.floor["fid"]


def test_score_rejects_wrong_image_size(evaluator):
    with pytest.raises(ValueError, match=r"expected images \(N, 1, 16, 16\)"):
        evaluator.score(np.zeros((10, 1, 32, 32), np.float32))


def test_command_on_checkpoint_and_weights_file(tmp_path, capsys):
    netG = write_checkpoint(tmp_path / "checkpoint.safetensors")
    assert evaluate.main([str(tmp_path / "checkpoint.safetensors"), "--n", "64",
                          "--batch-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "nz 8, ngf 4, 1x16x16, arch dcgan; 64 samples" in out
    for row in ("generator", "floor: real train digits", "ceiling: uniform noise"):
        assert row in out
    # The weights file alone: its shape is read off the weights.
    g, info = evaluate.load_generator(str(tmp_path / "netG_epoch_1.safetensors"))
    assert (info["nz"], info["ngf"], info["nc"], info["imageSize"], info["arch"]) == \
        (8, 4, 1, 16, "dcgan")
    assert checkpoint.arrays_equal({k: v.numpy() for k, v in g.state_dict().items()},
                                   {k: v.numpy() for k, v in netG.state_dict().items()})


@pytest.mark.parametrize("arch,size", [("dcgan", 32), ("leaky", 16), ("dcgan", 64),
                                       ("infogan", 16), ("infogan", 32)])
def test_generator_shape_from_weights(arch, size):
    fc = 20 if arch == "infogan" else None
    g = build_generator(nn, 12, 6, 1, size, arch=arch, **({"fc": fc} if fc else {}))
    state = {k: v.numpy() for k, v in g.state_dict().items()}
    assert evaluate.generator_shape(state) == dict(nz=12, ngf=6, nc=1, imageSize=size,
                                                   arch=arch, fc=fc)
    netG, info = evaluate.build_from_weights(state)
    assert info["fc"] == fc and checkpoint.arrays_equal(
        state, {k: v.numpy() for k, v in netG.state_dict().items()})


def test_sample_leaves_the_library_rng_alone():
    g = build_generator(nn, 8, 4, 1, SIZE)
    nn.manual_seed(5)
    want = nn.randn(3).numpy()
    nn.manual_seed(5)
    a = evaluate.sample(g, 10, 8, seed=3, batch_size=4)
    assert np.array_equal(nn.randn(3).numpy(), want)
    assert a.shape == (10, 1, SIZE, SIZE)
    assert np.array_equal(a, evaluate.sample(g, 10, 8, seed=3, batch_size=4))


def run_cli(*argv):
    return subprocess.run([sys.executable, "-m", "dcgan.evaluate", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_missing_file_one_line_exit_2(tmp_path):
    r = run_cli(str(tmp_path / "nope.safetensors"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert r.stderr.startswith("dcgan.evaluate: error:") and "does not exist" in r.stderr


def test_bad_input_exit_2(tmp_path, capsys):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint at all")
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    write_checkpoint(rgb / "checkpoint.safetensors", nc=3, dataset="cifar10")
    fashion = tmp_path / "fashion"
    fashion.mkdir()
    write_checkpoint(fashion / "checkpoint.safetensors", dataset="fashion-mnist")
    cases = [(garbage, "garbage.safetensors"),
             (rgb / "checkpoint.safetensors", "3-channel images (dataset cifar10)"),
             (rgb / "netG_epoch_1.safetensors", "3-channel images; the digit metrics need"),
             (fashion / "checkpoint.safetensors", "trained on dataset 'fashion-mnist'")]
    for path, message in cases:
        assert evaluate.main([str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("dcgan.evaluate: error:") and message in err, err
        assert err.count("\n") == 1
    assert evaluate.main([str(fashion / "checkpoint.safetensors"), "--n", "2"]) == 2
    assert "--n must be more than 3" in capsys.readouterr().err
