"""train.py end to end on tiny settings: files, exact resume, bad input, divergence.

Runs `train.main(argv)` in process (fast), and a subprocess where what the
user sees matters (one line on stderr, no traceback, the exit code).
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import nn
import train
from dcgan import checkpoint
from dcgan import sample as sample_cmd
from dcgan.models import build_discriminator, build_generator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--dataset", "fake", "--imageSize", "16", "--ngf", "4", "--ndf", "4", "--nz", "8",
        "--batchSize", "32", "--manualSeed", "7", "--workers", "1"]


def run(tmp_path, *extra, outf="out"):
    return train.main(TINY + ["--outf", str(tmp_path / outf), *extra])


def load_ckpt(path):
    return checkpoint.load(str(path))


pytestmark = pytest.mark.usefixtures("numpy_backend")


def test_dry_run_writes_every_output(tmp_path):
    assert run(tmp_path, "--dry-run") == 0
    out = tmp_path / "out"
    for name in ("real_samples.png", "fake_samples_epoch_001.png", "losses.png", "log.csv",
                 "checkpoint.safetensors", "netG_epoch_1.safetensors", "netD_epoch_1.safetensors"):
        assert (out / name).stat().st_size > 0, name
    grid = Image.open(out / "fake_samples_epoch_001.png")
    assert grid.size == (8 * 18 + 2, 8 * 18 + 2)  # 64 samples of 16x16, 2-pixel borders
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0].split(",")[:5] == ["step", "epoch", "batch", "loss_d", "loss_g"]
    assert len(rows) == 2  # header + the one iteration
    ckpt = load_ckpt(out / "checkpoint.safetensors")
    assert ckpt["epoch"] == 1 and ckpt["iteration"] == 1
    assert set(ckpt) >= {"netG", "netD", "optG", "optD", "rng", "args", "fixed_noise"}
    assert ckpt["optD"]["state"][0]["step"] == 1


def test_bce_logits_dry_run(tmp_path, monkeypatch):
    built = []

    def spy(*args, **kwargs):
        built.append(kwargs["sigmoid"])
        return build_discriminator(*args, **kwargs)

    monkeypatch.setattr(train, "build_discriminator", spy)
    assert run(tmp_path, "--dry-run", "--loss", "bce-logits") == 0
    assert built == [False]  # D outputs logits
    assert load_ckpt(tmp_path / "out" / "checkpoint.safetensors")["args"]["loss"] == "bce-logits"
    row = (tmp_path / "out" / "log.csv").read_text().splitlines()[1].split(",")
    assert all(0 < float(v) < 1 for v in row[5:8])  # D(x), D(G(z)): sigmoid of the logits


@pytest.mark.parametrize("flags", [[], ["--arch", "infogan", "--nfc", "16", "--ema", "0.9",
                                       "--codes", "3"]], ids=["dcgan", "infogan_codes_ema"])
def test_two_epochs_equal_one_plus_resume_bitwise(tmp_path, flags):
    """On the numpy backend, resume continues exactly: same weights, optimizer
    states, BN buffers, moving average of G and log, bit for bit."""
    assert run(tmp_path, "--niter", "2", *flags, outf="straight") == 0
    assert run(tmp_path, "--niter", "1", *flags, outf="split") == 0
    split = tmp_path / "split"
    assert train.main(["--resume", str(split / "checkpoint.safetensors"), "--niter", "2",
                       "--outf", str(split)]) == 0
    a = load_ckpt(tmp_path / "straight" / "checkpoint.safetensors")
    b = load_ckpt(split / "checkpoint.safetensors")
    assert a["epoch"] == b["epoch"] == 2 and a["iteration"] == b["iteration"] == 16
    for key in ("netG", "netD", "optG", "optD", "fixed_noise") + (("netG_ema", "netQ") if flags
                                                                   else ()):
        assert checkpoint.arrays_equal(a[key], b[key]), key
    if flags:  # the average moved away from G, once per step
        assert int(a["netG_ema"]["n_averaged"]) == 16
        assert not checkpoint.arrays_equal(a["netG"]["main.1.weight"],
                                           a["netG_ema"]["module.main.1.weight"])
    assert a["rng"]["numpy"] == b["rng"]["numpy"]
    log_a = (tmp_path / "straight" / "log.csv").read_text().splitlines()
    log_b = (split / "log.csv").read_text().splitlines()
    seconds = log_a[0].split(",").index("seconds")

    def strip(rows):  # every column but the seconds
        return [[v for i, v in enumerate(r.split(",")) if i != seconds] for r in rows]
    assert strip(log_a) == strip(log_b) and len(log_a) == 17


def test_resume_drops_log_rows_written_after_the_checkpoint(tmp_path):
    assert run(tmp_path, "--niter", "1") == 0
    out = tmp_path / "out"
    with open(out / "log.csv", "a") as f:  # a crash mid-epoch 2 left rows behind
        f.write("9,2,1,0.1,0.2,0.3,0.4,0.5,1.0\n")
    assert train.main(["--resume", str(out / "checkpoint.safetensors"), "--niter", "2",
                       "--outf", str(out)]) == 0
    steps = [int(r.split(",")[0]) for r in (out / "log.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 17))


def test_netG_and_netD_load_weights_alone(tmp_path):
    assert run(tmp_path, "--dry-run") == 0
    out = tmp_path / "out"
    assert run(tmp_path, "--dry-run", "--netG", str(out / "netG_epoch_1.safetensors"),
               "--netD", str(out / "checkpoint.safetensors"), outf="again") == 0
    # The loaded weights were trained one more step: they differ from the file's...
    before = checkpoint.load_weights(str(out / "netG_epoch_1.safetensors"), "netG")
    after = load_ckpt(tmp_path / "again" / "checkpoint.safetensors")["netG"]
    delta = np.abs(after["main.0.weight"] - before["main.0.weight"]).max()
    assert 0 < delta < 1e-2  # ... by one Adam step, not by a fresh init


def test_divergence_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path, monkeypatch,
                                                                      capsys):
    assert run(tmp_path, "--niter", "1") == 0
    ckpt_path = tmp_path / "out" / "checkpoint.safetensors"
    good = ckpt_path.read_bytes()

    def diverging(*args, **kwargs):
        return dict(loss_d=float("nan"), loss_g=1.0, d_x=0.5, d_g_z_before=0.5, d_g_z_after=0.5)

    monkeypatch.setattr(train, "train_step", diverging)
    assert train.main(["--resume", str(ckpt_path), "--niter", "2",
                       "--outf", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "training diverged at iteration 9 (epoch 2, batch 1)" in err
    assert "last good checkpoint" in err
    assert ckpt_path.read_bytes() == good


@pytest.mark.parametrize("argv,message", [
    (["--imageSize", "48"], "--imageSize must be a power of two from 16 to 256, got 48"),
    (["--imageSize", "512"], "--imageSize must be a power of two from 16 to 256, got 512"),
    (["--dataset", "mnist"], "--dataroot"),
    (["--dataset", "cifar10", "--dataroot", "/nonexistent/x"], "/nonexistent/x"),
    (["--resume", "/nonexistent/ckpt.safetensors"], "'/nonexistent/ckpt.safetensors' does not exist"),
    (["--batchSize", "0"], "--batchSize must be positive"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, argv, message):
    assert train.main(["--outf", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("train.py: error: ") and message in err
    assert "\n" not in err and "Traceback" not in err


def test_unwritable_outf_is_a_usage_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert train.main(TINY + ["--dry-run", "--outf", str(blocker / "sub")]) == 2
    assert "is not a writable folder" in capsys.readouterr().err


def test_empty_and_corrupt_folders_are_refused(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert train.main(["--dataset", "folder", "--dataroot", str(empty),
                       "--outf", str(tmp_path / "o")]) == 2
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_text("not a png")
    assert train.main(["--dataset", "folder", "--dataroot", str(bad),
                       "--outf", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("train.py: error: ") for e in err)
    assert "a.png" in err[1]


def test_corrupt_checkpoint_and_mismatched_weights(tmp_path, capsys):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    assert run(tmp_path, "--resume", str(junk)) == 2
    assert run(tmp_path, "--dry-run") == 0
    weights = str(tmp_path / "out" / "netG_epoch_1.safetensors")
    assert run(tmp_path, "--dry-run", "--ngf", "8", "--netG", weights, outf="o2") == 2
    err = capsys.readouterr().err
    assert "is not a valid safetensors file" in err and "do not fit this model" in err


def test_resume_refuses_a_different_architecture(tmp_path, capsys):
    assert run(tmp_path, "--dry-run") == 0
    ckpt = str(tmp_path / "out" / "checkpoint.safetensors")
    assert train.main(["--resume", ckpt, "--ngf", "8", "--outf", str(tmp_path / "out")]) == 2
    assert "--ngf 8 differs from the checkpoint's 4" in capsys.readouterr().err


def test_unavailable_backend_is_a_usage_error(tmp_path, capsys, monkeypatch):
    from helpers import make_cupy_unavailable
    name = make_cupy_unavailable(monkeypatch)
    assert run(tmp_path, "--dry-run", "--backend", name) == 2
    assert f"backend '{name}' cannot run on this machine" in capsys.readouterr().err


def test_command_line_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "--imageSize", "20", "--outf",
                           str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("train.py: error: --imageSize must be a power of two from "
                                   "16 to 256, got 20")


@pytest.mark.parametrize("bn", ["batch", "eval"])
def test_sample_command_writes_a_grid_and_leaves_the_model_alone(tmp_path, bn):
    assert run(tmp_path, "--dry-run") == 0
    ckpt = tmp_path / "out" / "checkpoint.safetensors"
    before = ckpt.read_bytes()
    png = tmp_path / f"s_{bn}.png"
    assert sample_cmd.main([str(ckpt), "--n", "10", "--nrow", "5", "--bn", bn,
                            "--out", str(png)]) == 0
    assert Image.open(png).size == (5 * 18 + 2, 2 * 18 + 2)
    assert ckpt.read_bytes() == before
    weights_only = str(tmp_path / "out" / "netG_epoch_1.safetensors")
    assert sample_cmd.main([weights_only, "--out", str(png)]) == 0  # shape read off the weights
    assert sample_cmd.main([weights_only, "--nz", "8", "--ngf", "4", "--nc", "3",
                            "--imageSize", "16", "--out", str(png)]) == 0
    assert sample_cmd.main([weights_only, "--ngf", "5", "--out", str(png)]) == 2  # misfit


@pytest.mark.parametrize("size", [16, 32, 64, 128, 256])
def test_models_work_at_every_image_size(size):
    G = build_generator(nn, 4, 2, 1, size)
    D = build_discriminator(nn, 1, 2, size)
    with nn.no_grad():
        img = G(nn.randn(2, 4, 1, 1))
        assert img.shape == (2, 1, size, size)
        assert D(img).shape == (2,)


# ---------------------------------------------------------------- the GAN variants (issue 12)
VARIANT_FLAGS = {
    "dcgan": [],
    "wgan-gp_layer": ["--loss", "wgan-gp", "--d-norm", "layer"],
    "wgan-gp_none_sn": ["--loss", "wgan-gp", "--d-norm", "none", "--spectral-norm"],
    "bce_sn_mbstd": ["--spectral-norm", "--minibatch-std"],
    "leaky": ["--arch", "leaky"],
    "infogan_ema": ["--arch", "infogan", "--nfc", "12", "--ema", "0.99"],
    "infogan_codes": ["--arch", "infogan", "--nfc", "12", "--codes", "4", "--lambda-info", "0.5"],
    "infogan_wgan-gp_ema": ["--arch", "infogan", "--nfc", "12", "--loss", "wgan-gp", "--ema",
                            "0.5"],
}


@pytest.mark.parametrize("variant", list(VARIANT_FLAGS))
def test_variant_dry_run_on_every_backend(tmp_path, backend, variant):
    """One training cycle of each variant through train.py, on each backend
    (the simulated GPU backends at batch 4, and wgan-gp's cycle cut to two
    critic steps there)."""
    _dry_run(tmp_path, backend, VARIANT_FLAGS[variant])


def test_combined_variants_dry_run(tmp_path):
    """The flags combine: the leaky arch as a WGAN-GP critic with minibatch stddev."""
    _dry_run(tmp_path, "numpy", ["--arch", "leaky", "--loss", "wgan-gp", "--minibatch-std", "2"])


def _dry_run(tmp_path, backend, flags):
    wgan = "wgan-gp" in flags
    small = [] if backend == "numpy" else ["--batchSize", "4"] + (["--n-critic", "2"] if wgan
                                                                 else [])
    assert run(tmp_path, "--dry-run", "--backend", backend, *flags, *small) == 0
    out = tmp_path / "out"
    ckpt = load_ckpt(out / "checkpoint.safetensors")
    n_critic = ckpt["args"]["n_critic"]
    rows = (out / "log.csv").read_text().splitlines()
    if wgan:
        # A cycle: n_critic critic steps, the last one followed by the G step.
        assert len(rows) == 1 + n_critic and ckpt["iteration"] == n_critic
        assert rows[0].split(",")[3:6] == ["g_iter", "loss_d", "wasserstein"]
        assert [r.split(",")[-2] != "" for r in rows[1:]] == [False] * (n_critic - 1) + [True]
        assert ckpt["trainer"] == {"critic_count": 0, "generator_steps": 1}
        assert ckpt["optG"]["state"][0]["step"] == 1
        assert ckpt["optD"]["state"][0]["step"] == n_critic
    else:
        assert len(rows) == 2 and "trainer" not in ckpt
    for name in ("fake_samples_epoch_001.png", "losses.png", "netD_epoch_1.safetensors"):
        assert (out / name).stat().st_size > 0, name
    if "--spectral-norm" in flags:
        assert {"main.0.weight_orig", "main.0.weight_u", "main.0.weight_v"} <= set(ckpt["netD"])
    args = ckpt["args"]
    arch = flags[flags.index("--arch") + 1] if "--arch" in flags else "dcgan"
    if arch == "leaky":
        assert args["arch"] == "leaky" and ckpt["netD"]["main.0.weight"].shape[0] == 2 * 4
        assert "main.0.bias" in ckpt["netG"]
    if arch == "infogan":  # G: Flatten, Linear(nz, nfc), ...; D ends in Linear(nfc, 1)
        assert args["arch"] == "infogan" and ckpt["netG"]["main.1.weight"].shape == (12, 8)
        assert ckpt["netD"][f"main.{_last_linear(ckpt['netD'])}.weight"].shape == (1, 12)
    if "--codes" in flags:  # the Q head, its loss logged beside G's
        assert ckpt["netQ"]["3.weight"].shape == (4, 128)
        assert rows[0].split(",")[-1] == "loss_info" and float(rows[1].split(",")[-1]) > 0
    if "--ema" in flags:  # one average per G step: the cycle made one
        assert int(ckpt["netG_ema"]["n_averaged"]) == 1
        assert (out / "netG_ema_epoch_1.safetensors").stat().st_size > 0
    assert args["loss"] == ("wgan-gp" if wgan else "bce-logits" if arch == "leaky" else "bce")


def _last_linear(state):
    """The index of D's last layer with a 2-D weight."""
    return max(int(k.split(".")[1]) for k, v in state.items()
               if k.endswith(".weight") and np.ndim(v) == 2)


def test_variant_defaults(tmp_path):
    """wgan-gp takes Adam(1e-4, (0.5, 0.9)) and layer norm unless told;
    given values win; leaky defaults to bce-logits."""
    def resolved(*argv):
        args = train.parse_args(["--outf", str(tmp_path), *argv])
        train.resolve_args(args)
        return args
    a = resolved("--loss", "wgan-gp")
    assert (a.lr, a.beta1, a.beta2, a.d_norm, a.n_critic, a.lambda_gp) == (
        1e-4, 0.5, 0.9, "layer", 5, 10.0)
    a = resolved("--loss", "wgan-gp", "--lr", "3e-4", "--beta1", "0", "--beta2", "0.99",
                 "--d-norm", "none")
    assert (a.lr, a.beta1, a.beta2, a.d_norm) == (3e-4, 0.0, 0.99, "none")
    a = resolved()  # the embedded digits' recipe
    assert (a.loss, a.arch, a.nfc, a.codes, a.ema, a.lr_g, a.lr_d, a.beta1, a.beta2, a.d_norm,
            a.spectral_norm, a.minibatch_std) == ("bce", "infogan", 512, 10, 0.999, 4e-4, 4e-4,
                                                  0.5, 0.999, "batch", False, 4)
    assert resolved("--batchSize", "30").minibatch_std == 0  # 30 does not split into 4s
    assert resolved("--batchSize", "30", "--minibatch-std", "3").minibatch_std == 3
    a = resolved("--lr", "3e-4")  # --lr sets both rates
    assert (a.lr, a.lr_g, a.lr_d) == (3e-4, 3e-4, 3e-4)
    a = resolved("--lr", "3e-4", "--lr-d", "1e-4")
    assert (a.lr_g, a.lr_d) == (3e-4, 1e-4)
    assert (a.imageSize, a.ngf, a.ndf, a.batchSize, a.niter) == (16, 64, 32, 32, 40)
    # the preset's code needs the infogan arch and a BCE loss: another choice drops it
    assert resolved("--arch", "dcgan").codes == resolved("--loss", "wgan-gp").codes == 0
    assert resolved().codes == 10
    a = resolved("--arch", "dcgan", "--ema", "0")  # the preset's other values stay
    assert (a.arch, a.loss, a.ema, a.imageSize, a.ngf, a.lr_g) == ("dcgan", "bce", 0, 16, 64, 4e-4)
    a = resolved("--dataset", "fake")  # pytorch/examples' everywhere else
    assert (a.lr, a.imageSize, a.ngf, a.ndf, a.batchSize, a.niter) == (2e-4, 64, 64, 64, 64, 25)
    assert (a.arch, a.nfc, a.ema) == ("dcgan", 1024, 0)
    assert resolved("--dataset", "fake", "--arch", "infogan", "--nfc", "64").nfc == 64
    assert resolved("--loss", "wgan-gp").lr == 1e-4
    assert resolved("--arch", "leaky").loss == "bce-logits"
    assert resolved("--arch", "leaky", "--loss", "bce").loss == "bce"
    assert resolved("--minibatch-std").minibatch_std == 4


@pytest.mark.parametrize("argv,message", [
    (["--loss", "wgan-gp", "--d-norm", "batch"],
     "--d-norm batch cannot be used with --loss wgan-gp"),
    (["--n-critic", "3"], "--n-critic applies to --loss wgan-gp only, not --loss bce"),
    (["--arch", "leaky", "--lambda-gp", "5"],
     "--lambda-gp applies to --loss wgan-gp only, not --loss bce-logits"),
    (["--loss", "wgan-gp", "--n-critic", "0"], "--n-critic must be positive, got 0"),
    (["--loss", "wgan-gp", "--lambda-gp", "-1"], "--lambda-gp must be a finite number >= 0"),
    (["--loss", "wgan-gp", "--lambda-gp", "inf"], "--lambda-gp must be a finite number >= 0"),
    (["--beta2", "1"], "--beta2 must be in [0, 1), got 1.0"),
    (["--beta1", "-0.5"], "--beta1 must be in [0, 1), got -0.5"),
    (["--lr", "0"], "--lr must be a positive number, got 0.0"),
    (["--minibatch-std", "0"], "--minibatch-std needs a positive group size, got 0"),
    (["--minibatch-std", "3"], "--batchSize 32 does not split into groups of 3"),
    (["--minibatch-std", "5", "--batchSize", "12"], "--batchSize 12 does not split into groups"),
    (["--arch", "resnet"], "argument --arch: invalid choice: 'resnet'"),
    (["--arch", "dcgan", "--nfc", "256"],
     "--nfc sets the fully connected width of --arch infogan; --arch dcgan has no"),
    (["--nfc", "0"], "--nfc must be positive, got 0"),
    (["--ema", "1"], "--ema must be a decay in [0, 1) (0 turns the average off), got 1.0"),
    (["--arch", "dcgan", "--codes", "10"], "--codes needs --arch infogan"),
    (["--codes", "1"], "--codes must be 0 (off) or from 2 to --nz - 1 = 99"),
    (["--codes", "100"], "--codes must be 0 (off) or from 2 to --nz - 1 = 99 (the code is part"),
    (["--codes", "-1"], "--codes must be 0 (off) or from 2 to --nz - 1"),
    (["--loss", "wgan-gp", "--codes", "10"],
     "--codes trains with --loss bce or bce-logits, eagerly; not with --loss wgan-gp"),
    (["--dataset", "fake", "--lambda-info", "2"], "--lambda-info weighs InfoGAN's code loss"),
    (["--lambda-info", "nan"], "--lambda-info must be a finite number >= 0"),
    (["--lr-g", "0"], "--lr-g must be a positive number, got 0.0"),
    (["--lr-d", "inf"], "--lr-d must be a positive number, got inf"),
    (["--ema", "-0.5"], "--ema must be a decay in [0, 1)"),
    (["--d-norm", "group"], "argument --d-norm: invalid choice: 'group'"),
    (["--loss", "hinge"], "argument --loss: invalid choice: 'hinge'"),
    (["--n-critic", "x"], "argument --n-critic: invalid int value: 'x'"),
    (["--minibatch-std", "two"], "argument --minibatch-std: invalid int value: 'two'"),
])
def test_variant_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, argv, message):
    assert train.main(["--outf", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("train.py: error: ") and message in err, err
    assert "\n" not in err and "Traceback" not in err


def test_argparse_errors_are_one_line_in_a_subprocess(tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "--arch", "nope", "--outf",
                           str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "usage" not in proc.stderr
    assert proc.stderr.startswith("train.py: error: argument --arch: invalid choice: 'nope'")


def test_resume_refuses_another_variant(tmp_path, capsys):
    assert run(tmp_path, "--dry-run", "--loss", "wgan-gp", "--n-critic", "2") == 0
    ckpt = str(tmp_path / "out" / "checkpoint.safetensors")
    assert train.main(["--resume", ckpt, "--spectral-norm", "--outf", str(tmp_path / "out")]) == 2
    assert train.main(["--resume", ckpt, "--d-norm", "none", "--outf", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "--spectral-norm differs from the checkpoint, trained without it" in err[0]
    assert "--d-norm none differs from the checkpoint's layer" in err[1]


def test_wgan_gp_spectral_norm_two_epochs_equal_one_plus_resume_bitwise(tmp_path):
    """8 batches an epoch, n_critic 5: epoch 1 ends mid-cycle (3 critic steps
    into the second cycle), so the resumed run must carry the critic counter;
    the spectral-norm vectors are buffers and travel in the checkpoint."""
    flags = ["--loss", "wgan-gp", "--d-norm", "none", "--spectral-norm"]
    assert run(tmp_path, "--niter", "2", *flags, outf="straight") == 0
    assert run(tmp_path, "--niter", "1", *flags, outf="split") == 0
    split = tmp_path / "split"
    mid = load_ckpt(split / "checkpoint.safetensors")
    assert mid["trainer"] == {"critic_count": 3, "generator_steps": 1}
    assert train.main(["--resume", str(split / "checkpoint.safetensors"), "--niter", "2",
                       "--outf", str(split)]) == 0
    a = load_ckpt(tmp_path / "straight" / "checkpoint.safetensors")
    b = load_ckpt(split / "checkpoint.safetensors")
    assert a["epoch"] == b["epoch"] == 2 and a["iteration"] == b["iteration"] == 16
    assert a["trainer"] == b["trainer"] == {"critic_count": 1, "generator_steps": 3}
    for key in ("netG", "netD", "optG", "optD", "fixed_noise"):
        assert checkpoint.arrays_equal(a[key], b[key]), key
    assert "main.2.weight_u" in a["netD"]
    assert not np.array_equal(a["netD"]["main.2.weight_u"], mid["netD"]["main.2.weight_u"])
    assert a["rng"]["numpy"] == b["rng"]["numpy"]
    log_a = (tmp_path / "straight" / "log.csv").read_text().splitlines()
    log_b = (split / "log.csv").read_text().splitlines()
    seconds = log_a[0].split(",").index("seconds")

    def strip(rows):  # every column but the seconds
        return [[v for i, v in enumerate(r.split(",")) if i != seconds] for r in rows]
    assert strip(log_a) == strip(log_b) and len(log_a) == 17
    g_rows = [int(r.split(",")[0]) for r in log_a[1:] if r.split(",")[-2] != ""]
    assert g_rows == [5, 10, 15]


def test_old_pickle_checkpoint_is_refused_unless_trusted_and_resumes_as_it_was(tmp_path, capsys):
    """A checkpoint.pkl of the first format (a pickle, its arguments from
    before the variant flags) is refused without --trust-pickle; with it, it
    resumes as the DCGAN it was and the run continues in safetensors."""
    assert run(tmp_path, "--niter", "1") == 0
    ckpt = load_ckpt(tmp_path / "out" / "checkpoint.safetensors")
    for k in ("arch", "d_norm", "spectral_norm", "minibatch_std", "beta2", "n_critic",
              "lambda_gp"):
        del ckpt["args"][k]
    ckpt["version"] = 1
    old = tmp_path / "old" / "checkpoint.pkl"
    old.parent.mkdir()
    old.write_bytes(pickle.dumps(ckpt))
    argv = ["--resume", str(old), "--niter", "2", "--outf", str(tmp_path / "old")]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert "is a pickle" in err and "--trust-pickle" in err and "\n" not in err.strip()
    assert train.main(argv + ["--trust-pickle"]) == 0
    args = load_ckpt(tmp_path / "old" / "checkpoint.safetensors")["args"]
    assert (args["arch"], args["d_norm"], args["beta2"]) == ("dcgan", "batch", 0.999)


def test_sample_command_rebuilds_the_leaky_generator(tmp_path):
    assert run(tmp_path, "--dry-run", "--arch", "leaky") == 0
    png = tmp_path / "s.png"
    assert sample_cmd.main([str(tmp_path / "out" / "checkpoint.safetensors"), "--n", "4",
                            "--out", str(png)]) == 0
    weights = str(tmp_path / "out" / "netG_epoch_1.safetensors")
    shape = ["--nz", "8", "--ngf", "4", "--nc", "3", "--imageSize", "16", "--out", str(png)]
    assert sample_cmd.main([weights, "--arch", "dcgan", *shape]) == 2  # no fit for leaky weights
    assert sample_cmd.main([weights, *shape]) == 0  # leaky read off the weights' biases
    assert sample_cmd.main([weights, "--arch", "leaky", *shape]) == 0


def test_help_documents_every_variant_flag():
    proc = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0
    for flag in ("--loss", "wgan-gp", "--n-critic", "--lambda-gp", "--beta2", "--d-norm",
                 "--spectral-norm", "--minibatch-std", "--arch", "leaky", "infogan", "--nfc",
                 "--ema", "--codes", "--lambda-info", "--lr-g", "--lr-d"):
        assert flag in proc.stdout, flag
