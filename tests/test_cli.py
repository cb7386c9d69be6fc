"""train.py and dcgan.sample as a demanding user (and an attacker) would use
them: honest resume flags, outputs that are never destroyed, bad input in one
line with exit code 2, Ctrl-C, the progress bar's width (issue 14)."""

import errno
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import nn
import train
from dcgan import checkpoint, outputs
from dcgan import sample as sample_cmd
from dcgan.data import Loader, load_dataset
from dcgan.images import make_grid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--dataset", "fake", "--imageSize", "16", "--ngf", "4", "--ndf", "4", "--nz", "8",
        "--batchSize", "32", "--manualSeed", "7", "--workers", "0"]
CKPT = checkpoint.CHECKPOINT_NAME


pytestmark = pytest.mark.usefixtures("numpy_backend")


def run(out, *extra):
    return train.main(TINY + ["--outf", str(out), *extra])


def snapshot(folder):
    """Every file under folder with its bytes."""
    return {os.path.relpath(os.path.join(d, n), folder): open(os.path.join(d, n), "rb").read()
            for d, _, names in os.walk(folder) for n in names}


def one_line_error(capsys, prefix="train.py: error: "):
    err = capsys.readouterr().err.strip()
    assert err.startswith(prefix) and "\n" not in err and "Traceback" not in err, err
    return err


# --- honest resume ------------------------------------------------------------

def test_resume_flags_take_effect_and_are_reported(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out, "--niter", "1") == 0
    capsys.readouterr()
    assert train.main(["--resume", str(out / CKPT), "--niter", "2", "--lr", "1e-4",
                       "--beta1", "0.3", "--outf", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "resume: --lr 0.0002 -> 0.0001" in printed and "resume: --beta1 0.5 -> 0.3" in printed
    assert "resume: --niter 1 -> 2" in printed
    ck = checkpoint.load(str(out / CKPT))
    for which in ("optG", "optD"):
        group = ck[which]["param_groups"][0]
        assert group["lr"] == 1e-4 and group["betas"] == (0.3, 0.999), which
    assert ck["args"]["lr"] == 1e-4 and ck["args"]["beta1"] == 0.3


def test_resume_with_netG_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out, "--dry-run") == 0
    capsys.readouterr()
    assert train.main(["--resume", str(out / CKPT), "--netG", str(out / "netG_epoch_1.safetensors"),
                       "--outf", str(out)]) == 2
    assert "use one or the other" in one_line_error(capsys)


@pytest.mark.parametrize("niter", [None, "1"])
def test_resume_with_nothing_to_do_writes_nothing(tmp_path, capsys, niter):
    out = tmp_path / "out"
    assert run(out, "--niter", "1") == 0
    before = snapshot(out)
    capsys.readouterr()
    argv = ["--resume", str(out / CKPT), "--outf", str(out)] + (["--niter", niter] if niter else [])
    assert train.main(argv) == 2
    assert "nothing to do" in one_line_error(capsys)
    assert snapshot(out) == before


def test_resumed_dry_run_never_touches_the_run(tmp_path):
    out = tmp_path / "out"
    assert run(out, "--niter", "1") == 0
    before = snapshot(out)
    assert train.main(["--resume", str(out / CKPT), "--niter", "3", "--dry-run",
                       "--outf", str(out)]) == 0
    after = snapshot(out)
    assert {k: v for k, v in after.items() if not k.startswith("dry-run")} == before
    assert checkpoint.load(str(out / "dry-run" / CKPT))["epoch"] == 2
    # and the real run resumes where it was
    assert checkpoint.load(str(out / CKPT))["iteration"] == 8


def test_a_fresh_run_moves_the_old_run_aside_and_twice_in_a_row_works(tmp_path, capsys):
    out = tmp_path / "out"
    (tmp_path / "out").mkdir()
    (out / "notes.txt").write_text("mine")
    assert run(out, "--niter", "1", "--manualSeed", "1") == 0
    first = snapshot(out)
    capsys.readouterr()
    assert run(out, "--niter", "1", "--manualSeed", "2") == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "held another run" in line and "--resume" in line and "--overwrite" in line
    aside = [d for d in os.listdir(out) if d.startswith("previous-")]
    assert len(aside) == 1
    assert snapshot(out / aside[0]) == {k: v for k, v in first.items() if k != "notes.txt"}
    assert (out / "notes.txt").read_text() == "mine"  # not ours: left alone
    assert checkpoint.load(str(out / CKPT))["args"]["manualSeed"] == 2


def test_overwrite_deletes_the_old_run(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out, "--niter", "2") == 0
    assert run(out, "--niter", "1", "--overwrite") == 0
    assert "--overwrite: deleted" in capsys.readouterr().out
    assert not any(n.startswith("previous-") for n in os.listdir(out))
    assert not (out / "netG_epoch_2.safetensors").exists()


def test_keep_keeps_the_last_weights_only(tmp_path):
    out = tmp_path / "out"
    assert run(out, "--niter", "3", "--keep", "1") == 0
    names = sorted(n for n in os.listdir(out) if n.startswith("net"))
    assert names == ["netD_epoch_3.safetensors", "netG_epoch_3.safetensors"]


def test_orphaned_temporaries_are_removed_on_start(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    orphans = [f".{CKPT}.tmp{dead}", f"checkpoint.pkl.tmp{dead}"]
    for name in orphans:
        (out / name).write_bytes(b"torn")
    live = out / f".log.csv.tmp{os.getppid()}"  # a live process's write in flight
    live.write_bytes(b"busy")
    assert run(out, "--dry-run") == 0
    assert not any((out / n).exists() for n in orphans) and live.exists()


# --- divergence -------------------------------------------------------------------

def test_non_finite_batch_norm_statistics_stop_the_run(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    real_step = train.train_step

    def poisoning(netG, netD, *args, **kwargs):
        stats = real_step(netG, netD, *args, **kwargs)
        bn = next(m for m in netG.modules() if isinstance(m, nn.BatchNorm2d))
        bn.running_var.fill_(float("inf"))  # the losses stay finite
        return stats

    monkeypatch.setattr(train, "train_step", poisoning)
    assert run(out, "--niter", "1") == 3
    err = capsys.readouterr().err
    assert "non-finite netG" in err and "running_var" in err
    assert not (out / CKPT).exists()


def test_sample_refuses_non_finite_weights(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out, "--dry-run") == 0
    weights = checkpoint.load_weights(str(out / "netG_epoch_1.safetensors"), "netG")
    weights["main.0.weight"][0, 0, 0, 0] = np.nan
    from nn.serialization import save_file
    save_file(weights, tmp_path / "nan.safetensors")
    png = tmp_path / "s.png"
    assert sample_cmd.main([str(tmp_path / "nan.safetensors"), "--nz", "8", "--ngf", "4",
                            "--nc", "3", "--imageSize", "16", "--out", str(png)]) == 2
    assert "non-finite generator weights" in one_line_error(capsys, "dcgan.sample: error: ")
    assert not png.exists()


# --- bad input: one line, exit code 2 ----------------------------------------------

@pytest.mark.parametrize("argv,message", [
    (["--lr", "nan"], "--lr must be a positive number, got nan"),
    (["--lr", "inf"], "--lr must be a positive number, got inf"),
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--beta1", "nan"], "--beta1 must be in [0, 1), got nan"),
    (["--beta1", "1.5"], "--beta1 must be in [0, 1)"),
    (["--workers", "-1"], "--workers must be 0 or more"),
    (["--manualSeed", "-1"], "--manualSeed must be in [0, 2**32)"),
    (["--ngf", "200000"], "more than this machine's"),
    (["--sample-every", "0"], "--sample-every must be a positive number"),
    (["--sample-every", "-3"], "--sample-every must be a positive number"),
    (["--keep", "-1"], "--keep must be 0"),
    (["--dataset", "mnist5k", "--eval-samples", "-1"], "--eval-samples must be 0 (off) or more than 3"),
    (["--dataset", "mnist5k", "--eval-samples", "2"], "--eval-samples must be 0 (off) or more than 3"),
    (["--outf", "/proc/self/no-such-dir"], "is not a writable folder"),
])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    argv = argv if "--outf" in argv else argv + ["--outf", str(tmp_path / "o")]
    assert train.main(TINY + argv) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "o").exists() or not os.listdir(tmp_path / "o")


def test_a_full_disk_names_the_file_and_keeps_the_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert run(out, "--niter", "1") == 0
    good = (out / CKPT).read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint, "save_file", full)
    capsys.readouterr()
    assert train.main(["--resume", str(out / CKPT), "--niter", "2", "--outf", str(out)]) == 2
    err = one_line_error(capsys)
    assert "No space left on device" in err and "netG_epoch_2.safetensors" in err
    assert f"the previous checkpoint {out / CKPT} is intact" in err
    assert (out / CKPT).read_bytes() == good


@pytest.mark.parametrize("extra,message", [
    (["--nrow", "0"], "--nrow must be positive"),
    (["--n", "0"], "--n and --nrow must be positive"),
    (["--out", "{tmp}/missing/s.png"], "does not exist"),
    (["--out", "{tmp}"], "is a folder"),
])
def test_sample_bad_input(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert run(out, "--dry-run") == 0
    capsys.readouterr()
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    assert sample_cmd.main([str(out / CKPT), *extra]) == 2
    assert message in one_line_error(capsys, "dcgan.sample: error: ")


def test_sample_help_names_the_module():
    proc = subprocess.run([sys.executable, "-m", "dcgan.sample", "--help"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m dcgan.sample")


def test_missing_train_extra_is_one_line(tmp_path):
    """A bare `pip install -e .` has no Pillow: say which extra to install."""
    code = ("import sys, runpy; sys.modules['PIL'] = None; "
            "sys.argv = ['train.py', '--help']; runpy.run_path('train.py', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert err.startswith("train.py: error: Pillow") and "\n" not in err
    assert err.endswith('not installed; install the main job\'s packages with: '
                        'pip install -e ".[train]"')


# --- Ctrl-C -----------------------------------------------------------------------

def test_ctrl_c_stops_cleanly_with_the_resume_command(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    real_step, calls = train.train_step, []

    def interrupted_in_epoch_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 11:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train, "train_step", interrupted_in_epoch_2)
    assert run(out, "--niter", "3") == 130
    err = capsys.readouterr().err.strip()
    assert err == (f"train.py: interrupted at epoch 2, iteration 10; resume with: "
                   f"python train.py --resume {out / CKPT} (continues after epoch 1)")
    monkeypatch.setattr(train, "train_step", real_step)
    assert train.main(["--resume", str(out / CKPT), "--outf", str(out)]) == 0
    assert checkpoint.load(str(out / CKPT))["epoch"] == 3


def test_ctrl_c_in_a_subprocess_exits_130_without_a_traceback(tmp_path):
    import signal
    import time
    # A shell's background job (CI run with `&`) ignores SIGINT, and a child
    # inherits that: Python then never installs its Ctrl-C handler. A
    # terminal's Ctrl-C reaches a process with the default disposition.
    proc = subprocess.Popen([sys.executable, "train.py", *TINY, "--niter", "1000",
                             "--outf", str(tmp_path / "o")], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not (tmp_path / "o" / CKPT).exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "resume with: python train.py --resume" in err


# --- what the user sees -------------------------------------------------------------

def test_progress_bar_fits_80_columns_with_speed_eta_and_epoch_summaries(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out, "--niter", "2") == 0
    printed = capsys.readouterr().out
    frames = [f for line in printed.splitlines() for f in line.split("\r") if f.strip()]
    bars = [f for f in frames if f.startswith("[")]
    assert bars and max(len(f) for f in bars) <= 80
    assert bars[-1].startswith("[2/2] 100%")
    assert "img/s" in bars[-1] and "ETA" in bars[-1] and "D(x)" in bars[-1]
    summaries = [f for f in frames if f.startswith("epoch ")]
    assert len(summaries) == 2 and max(len(f) for f in summaries) <= 80
    assert "ETA" in summaries[0] and "img/s" in summaries[1]
    done = [f for f in frames if f.startswith("done:")][0]
    assert "16 iterations" in done


def test_wide_figures_still_fit_80_columns():
    stats = dict(loss_d=12.3456, loss_g=23.4567, d_x=0.9999, d_g_z_before=0.0001,
                 d_g_z_after=0.5)
    from tqdm import tqdm
    text = f"{train.progress(stats, False, [])} 12345 img/s ETA 1:23:45"
    line = tqdm.format_meter(50, 78, 3.0, ncols=train.BAR_WIDTH, bar_format=(
        "[25/25] {percentage:3.0f}%|{bar}| {desc}"), prefix=text)
    assert len(line) <= 80 and "D(x)" in line


def test_resume_summary_counts_this_run(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out, "--dry-run") == 0
    assert re.search(r"done: epochs 1\.\.1, 1 iteration, 32 images", capsys.readouterr().out)
    assert run(out, "--niter", "1", "--overwrite") == 0
    capsys.readouterr()
    assert train.main(["--resume", str(out / CKPT), "--niter", "2", "--outf", str(out)]) == 0
    assert "done: epochs 2..2, 8 iterations (16 in total), 256 images" in capsys.readouterr().out


def test_real_samples_show_a_shuffled_batch(tmp_path):
    out = tmp_path / "out"
    assert run(out, "--dry-run") == 0
    ds = load_dataset("fake", image_size=16, seed=7)
    shown = np.asarray(Image.open(out / "real_samples.png"))
    first_batch = make_grid(ds.get(Loader(ds, 32, seed=7).order(0)[:64]))
    assert np.array_equal(shown, first_batch)


def test_every_file_a_run_writes_is_known_to_the_run_folder_rule(tmp_path):
    """outputs.RUN_FILES must name everything train.py writes, or a fresh run
    would leave part of an old run behind when it moves the run aside."""
    out = tmp_path / "out"
    assert run(out, "--niter", "1", "--sample-every", "4", "--ema", "0.9") == 0
    written = sorted(n for n in os.listdir(out) if os.path.isfile(out / n))
    assert "fake_samples_step_000004.png" in written and "netG_ema_epoch_1.safetensors" in written
    assert outputs.run_files(out) == written


def test_outputs_module_only_touches_its_own_names(tmp_path):
    (tmp_path / "log.csv").write_text("x")
    (tmp_path / "data.csv").write_text("mine")
    assert outputs.run_files(tmp_path) == ["log.csv"]


# --- the per-epoch quality figures (issue 13) ------------------------------------

DIGITS = ["--dataset", "mnist5k", "--imageSize", "16", "--ngf", "4", "--ndf", "4", "--nz", "8",
          "--batchSize", "500", "--manualSeed", "3", "--workers", "0", "--eval-samples", "40"]


@pytest.fixture
def one_evaluator(monkeypatch):
    """One Evaluator per image size for the whole test (building one scores
    3,000 digits); test_quality_leaves_the_training_rng_alone builds its own."""
    import functools
    from dcgan import evaluate
    monkeypatch.setattr(evaluate, "Evaluator", functools.lru_cache(evaluate.Evaluator))


def test_quality_leaves_the_training_rng_alone():
    from types import SimpleNamespace
    from dcgan.models import build_generator
    import tempfile
    nn.manual_seed(5)
    netG = build_generator(nn, 8, 4, 1, 16)
    before = checkpoint.rng_states()
    with tempfile.TemporaryDirectory() as tmp:
        q = train.Quality(SimpleNamespace(eval_samples=20, nz=8, codes=0, imageSize=16), tmp,
                          None)
        row = q.score(netG, 1, 10)
        q.close()
    assert checkpoint.rng_states() == before
    assert row["n"] == 20 and 0 <= row["confident"] <= 1 and row["fid"] > 0


def test_quality_figures_each_epoch_and_an_exact_resume(tmp_path, capsys, one_evaluator):
    """Evaluating draws nothing from the training RNG: two epochs straight equal
    one plus a resumed one, bit for bit, with the figures logged per epoch."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train.main(DIGITS + ["--niter", "2", "--outf", str(straight)]) == 0
    printed = capsys.readouterr().out
    assert "quality: 40 samples scored per epoch" in printed
    lines = [l for l in printed.splitlines() if l.startswith("  quality n 40: FD ")]
    assert len(lines) == 2 and all(len(l) <= 80 for l in lines)
    assert train.main(DIGITS + ["--niter", "1", "--outf", str(split)]) == 0
    assert train.main(["--resume", str(split / CKPT), "--niter", "2", "--outf", str(split)]) == 0
    a, b = checkpoint.load(str(straight / CKPT)), checkpoint.load(str(split / CKPT))
    assert checkpoint.arrays_equal(a["netG"], b["netG"])
    assert (straight / "metrics.csv").read_text() == (split / "metrics.csv").read_text()
    written = sorted(n for n in os.listdir(split) if os.path.isfile(split / n))
    assert "metrics.csv" in written and outputs.run_files(split) == written
    rows = (split / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,n,fid,kid") and len(rows) == 3


def test_quality_needs_a_digit_dataset(tmp_path, capsys):
    assert run(tmp_path / "o", "--dry-run") == 0
    assert "quality: off" in capsys.readouterr().out
    assert not (tmp_path / "o" / "metrics.csv").exists()
    assert run(tmp_path / "o", "--eval-samples", "100") == 2
    assert "need a digit dataset" in one_line_error(capsys)


# --- --cuda-graph (issue 15) --------------------------------------------------------

def test_cuda_graph_flag_gives_the_eager_run(tmp_path):
    """Under the emulator the captured step is rehearsed (dcgan.trainer.CapturedStep):
    the same weights as the eager step, bit for bit."""
    with nn.use_backend("cupy"):
        argv = TINY + ["--backend", "cupy", "--niter", "1", "--batchSize", "64"]
        assert train.main(argv + ["--outf", str(tmp_path / "eager")]) == 0
        assert train.main(argv + ["--cuda-graph", "--outf", str(tmp_path / "graph")]) == 0
    a = checkpoint.load(str(tmp_path / "eager" / CKPT))
    b = checkpoint.load(str(tmp_path / "graph" / CKPT))
    assert checkpoint.arrays_equal(a["netG"], b["netG"]) and checkpoint.arrays_equal(a["optD"], b["optD"])


@pytest.mark.parametrize("extra,message", [
    (["--backend", "numpy"], "--cuda-graph needs --backend cupy, not numpy"),
    (["--backend", "cupy", "--loss", "wgan-gp"], "--loss wgan-gp runs eagerly"),
])
def test_cuda_graph_bad_combinations(tmp_path, capsys, extra, message):
    assert run(tmp_path / "o", "--dry-run", "--cuda-graph", *extra) == 2
    assert message in one_line_error(capsys)


def test_benchmarks_without_torch_say_what_to_install():
    code = ("import sys, runpy; sys.modules['torch'] = None; "
            "sys.argv = ['benchmarks', '--smoke']; runpy.run_module('benchmarks', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("benchmarks: error: torch is not installed") and "\n" not in err
