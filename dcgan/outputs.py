"""The --outf folder: what belongs to a run, and the rules that keep one safe.

- A fresh run into a folder that holds another run never destroys it
  silently: the old run's files move aside into `previous-<date>-<time>/`
  (the line printed says where), or, with --overwrite, are deleted. So
  `python train.py` twice in a row just works and loses nothing.
- A dry run never touches an existing run: when the folder holds one, the
  dry run writes into its `dry-run/` subfolder instead.
- Temporary files that a killed run left behind (atomic writes in flight)
  are removed on the next start in the folder, unless their process lives.
- --keep N keeps the weights files of the last N epochs only.

Only files with the names train.py writes are ever moved or deleted; anything
else in the folder is left alone.
"""

import fnmatch
import os
import re
import time

# Every name train.py writes into --outf (checkpoint.pkl: the old format).
RUN_FILES = ("checkpoint.safetensors", "checkpoint.pkl", "log.csv", "metrics.csv", "losses.png",
             "real_samples.png", "fake_samples_epoch_*.png", "fake_samples_step_*.png",
             "netG_epoch_*", "netD_epoch_*", "netG_ema_epoch_*")
# A run is there if one of these is.
RUN_MARKERS = ("checkpoint.safetensors", "checkpoint.pkl", "log.csv")
DRY_RUN_DIR = "dry-run"
# nn.serialization.atomic_write's temporaries, and the old `<name>.tmp<pid>` ones.
TEMPORARY = re.compile(r"^\.?.+\.tmp(\d+)$")
WEIGHTS = re.compile(r"^net(?:G|D|G_ema)_epoch_(\d+)\.(safetensors|pkl)$")


class OutputError(Exception):
    """The folder cannot be used (one-line message)."""


def run_files(folder):
    """The names in `folder` that train.py wrote, sorted."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if any(fnmatch.fnmatch(n, p) for p in RUN_FILES)
                  and os.path.isfile(os.path.join(folder, n)))


def holds_run(folder):
    return any(os.path.isfile(os.path.join(folder, m)) for m in RUN_MARKERS)


def prepare(folder, fresh, dry_run, overwrite):
    """Make `folder` ready for a run and return (the folder to write in, a
    line saying what was done to an old run or None).

    fresh: a new run (not --resume), which must not mix with an old one."""
    ensure_writable(folder)
    note = None
    if dry_run and holds_run(folder):
        inner = os.path.join(folder, DRY_RUN_DIR)
        ensure_writable(inner)
        for name in run_files(inner):  # an earlier dry run's files: its own to replace
            os.remove(os.path.join(inner, name))
        return inner, (f"dry run: '{folder}' holds a run, which a dry run never touches; "
                       f"its outputs go to '{inner}'")
    if fresh and holds_run(folder):
        names = run_files(folder)
        if overwrite:
            for name in names:
                os.remove(os.path.join(folder, name))
            note = f"--overwrite: deleted the previous run's {len(names)} files in '{folder}'"
        else:
            stem = os.path.join(folder, time.strftime("previous-%Y%m%d-%H%M%S"))
            aside, k = stem, 1
            while os.path.exists(aside):  # two runs within one second
                aside, k = f"{stem}-{k}", k + 1
            os.makedirs(aside)
            for name in names:
                os.replace(os.path.join(folder, name), os.path.join(aside, name))
            note = (f"'{folder}' held another run: moved its {len(names)} files to '{aside}' "
                    "(to continue that run instead: --resume; to discard it: --overwrite)")
    remove_orphans(folder)
    return folder, note


def ensure_writable(folder):
    """Create `folder` if needed and check a file can be written in it."""
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".write-test.tmp{os.getpid()}")
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as e:
        raise OutputError(f"--outf '{folder}' is not a writable folder: "
                          f"{e.strerror or e}") from None


def _alive(pid):
    if pid == os.getpid():  # a reused pid: this process has no write in flight yet
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_orphans(folder):
    """Delete the temporary files of killed runs; return their names."""
    removed = []
    for name in os.listdir(folder):
        m = TEMPORARY.match(name)
        path = os.path.join(folder, name)
        if m and os.path.isfile(path) and not _alive(int(m.group(1))):
            os.remove(path)
            removed.append(name)
    return removed


def prune_weights(folder, keep, epoch):
    """With keep = N > 0, delete the weights files of epochs before the last N."""
    if keep <= 0:
        return
    for name in os.listdir(folder):
        m = WEIGHTS.match(name)
        if m and int(m.group(1)) <= epoch - keep:
            os.remove(os.path.join(folder, name))
