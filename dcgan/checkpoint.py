"""Checkpoints and weights files: safetensors plus JSON, never pickle.

A pickle runs code while it loads, so a crafted checkpoint could take over
the machine before anything checks it. Every file train.py writes is a
safetensors file (nn/serialization.py), which is plain data:

- `checkpoint.safetensors` (train.py, each epoch): the tensors of both
  models' state_dicts under "netG." and "netD." (torch's keys after the
  prefix; with --ema, the average's under "netG_ema.", AveragedModel's
  "module.<key>" and "n_averaged"), both optimizers' state tensors under "optG." / "optD.", and the
  fixed noise; its metadata holds the format tag and, as JSON, everything
  else: the arguments, the next epoch and the global iteration, both
  optimizers' hyper-parameters, every backend's RNG state and, for a
  training schedule with state of its own (WGAN-GP's critic counter), a
  "trainer" dict. In that JSON a tensor appears as {"__tensor__": name}.
- `netG_epoch_N.safetensors` / `netD_epoch_N.safetensors` (weights only):
  exactly a state_dict, torch's keys, so `safetensors.torch.load_file` gives
  a dict that torch's DCGAN loads with `load_state_dict`, and a file that
  `safetensors.torch.save_file(model.state_dict(), ...)` wrote loads with
  --netG / --netD. The metadata says which model it is.

Every array is a host NumPy copy, so a file written on one backend loads on
any other. Writes are atomic (nn.serialization.atomic_write): a crash at any
moment leaves the old file or the new one.

Pickle checkpoints (this project's first format, `checkpoint.pkl`, and torch
.pth files) are refused with a message saying why; `trust_pickle=True`
(train.py and dcgan.sample --trust-pickle) reads this project's old pickles,
for files whose origin the user vouches for, so they can be converted.
"""

import contextlib
import json
import pickle

import numpy as np

import kernels
import nn
from nn.serialization import SafetensorsError, read, save_file

FORMAT = "dcgan-nn-checkpoint"
WEIGHTS_FORMAT = FORMAT + "-weights"
VERSION = 2
CHECKPOINT_NAME = "checkpoint.safetensors"
REQUIRED = ("args", "epoch", "iteration", "netG", "netD", "optG", "optD", "rng", "fixed_noise")
PICKLE_MAGIC, ZIP_MAGIC = b"\x80", b"PK\x03\x04"


class CheckpointError(Exception):
    """A checkpoint or weights file that cannot be used (one-line message)."""


# --- a tree of dicts, lists, numbers and arrays <-> JSON plus named tensors ---

def _encode(obj, name, tensors):
    """JSON for `obj`, with each array stored in `tensors` under its path."""
    if isinstance(obj, nn.Tensor):
        obj = obj.numpy()
    if isinstance(obj, np.ndarray):
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, f"{name}.{k}", tensors) for k, v in obj.items()}
        # optimizer state is keyed by parameter index: keep the int keys
        return {"__items__": [[k, _encode(v, f"{name}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{name}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{name}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"checkpoint: cannot store {type(obj).__name__} at '{name}'")


def _decode(obj, tensors):
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {k: _decode(v, tensors) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


# --- writing ---------------------------------------------------------------

def rng_states():
    """The generator state of every backend created in this process."""
    return {name: b.get_rng_state() for name, b in kernels._instances.items()}


def restore_rng_states(states):
    for name, state in states.items():
        if name in kernels._instances:
            kernels._instances[name].set_rng_state(state)


@contextlib.contextmanager
def rng_preserved():
    """Run a block without moving any backend's generator: what it draws (a
    model built only to be loaded, say) leaves the training stream as it was."""
    states = rng_states()
    try:
        yield
    finally:
        restore_rng_states(states)


def save(path, *, args, epoch, iteration, netG, netD, optG, optD, fixed_noise, trainer=None,
         netG_ema=None, netQ=None):
    """The whole training state, atomically, as one safetensors file
    (netG_ema: train.py --ema's AveragedModel, under "netG_ema."; netQ:
    InfoGAN's code head, --codes, under "netQ.")."""
    tree = {"args": dict(args), "epoch": epoch, "iteration": iteration,
            "netG": netG.state_dict(), "netD": netD.state_dict(),
            "optG": optG.state_dict(), "optD": optD.state_dict(), "rng": rng_states(),
            "fixed_noise": fixed_noise}
    if trainer is not None:
        tree["trainer"] = dict(trainer)
    if netG_ema is not None:
        tree["netG_ema"] = netG_ema.state_dict()
    if netQ is not None:
        tree["netQ"] = netQ.state_dict()
    tensors = {}
    state = {k: _encode(v, k, tensors) for k, v in tree.items()}
    save_file(tensors, path, {"format": FORMAT, "version": str(VERSION),
                              "state": json.dumps(state)})


def save_weights(path, model, which, codes=0):
    """A model's state_dict alone (torch's keys), atomically, as safetensors;
    a generator trained with InfoGAN's code says its size (`codes`), which
    sampling needs and the weights cannot show."""
    meta = {"format": WEIGHTS_FORMAT, "version": str(VERSION), "which": which}
    if codes:
        meta["codes"] = str(int(codes))
    save_file(model.state_dict(), path, meta)


# --- reading ---------------------------------------------------------------

def load(path, trust_pickle=False):
    """A checkpoint dict ({"format": FORMAT, ...}) or a weights dict
    ({"format": WEIGHTS_FORMAT, "which": ..., "state_dict": ...}), or a
    CheckpointError that says what is wrong with the file."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except FileNotFoundError:
        raise CheckpointError(f"'{path}' does not exist") from None
    except OSError as e:
        raise CheckpointError(f"cannot read '{path}': {e.strerror or e}") from None
    if head.startswith(ZIP_MAGIC):
        raise CheckpointError(
            f"'{path}' is a torch.save archive, whose pickles can run code when loaded, so it is "
            "refused; save the weights with safetensors.torch.save_file(model.state_dict(), "
            "'netG.safetensors') and load that")
    # A safetensors file's 9th byte opens its JSON header; its first byte, the
    # header length's low byte, may well be 0x80, a pickle's first byte.
    if head.startswith(PICKLE_MAGIC) and head[8:9] != b"{":
        if not trust_pickle:
            raise CheckpointError(
                f"'{path}' is a pickle (train.py's format before safetensors, or another "
                "program's); a pickle can run code when loaded, so it is refused. If you trust "
                "where it came from, add --trust-pickle to load it once: train.py then writes "
                f"{CHECKPOINT_NAME}")
        return _load_pickle(path)
    try:
        tensors, meta = read(path)
    except SafetensorsError as e:
        raise CheckpointError(str(e)) from None
    except OSError as e:
        raise CheckpointError(f"cannot read '{path}': {e.strerror or e}") from None
    kind = meta.get("format")
    if kind == FORMAT:
        return _checkpoint(path, tensors, meta)
    if kind in (WEIGHTS_FORMAT, None):  # None: a plain state_dict, e.g. from safetensors.torch
        try:
            codes = int(meta.get("codes", 0))
        except ValueError:
            raise CheckpointError(f"'{path}' has a damaged codes entry "
                                  f"({meta.get('codes')!r})") from None
        return {"format": WEIGHTS_FORMAT, "which": meta.get("which"), "state_dict": tensors,
                "codes": codes}
    raise CheckpointError(f"'{path}' is a safetensors file of another program (format "
                          f"{kind!r}), not a checkpoint or weights written by train.py")


def _checkpoint(path, tensors, meta):
    try:
        state = json.loads(meta["state"])
        ckpt = _decode(state, tensors)
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"checkpoint '{path}' has a damaged state record "
                              f"({type(e).__name__}: {e})") from None
    return _validated(path, {"format": FORMAT, **ckpt})


def _validated(path, ckpt):
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint '{path}' lacks {', '.join(missing)}: it is damaged "
                              "or was not written by train.py")
    return ckpt


def _load_pickle(path):
    """This project's old pickle checkpoints and weights (trusted by the user)."""
    try:
        with open(path, "rb") as f:
            ckpt = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as e:
        raise CheckpointError(f"'{path}' is unreadable or corrupt ({e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") not in (FORMAT, WEIGHTS_FORMAT):
        raise CheckpointError(f"'{path}' is not a checkpoint written by train.py")
    return _validated(path, ckpt) if ckpt["format"] == FORMAT else ckpt


def load_weights(path, which, trust_pickle=False):
    """The state_dict of model `which` ("netG", "netD", ...) from a weights
    file or from a full checkpoint."""
    ckpt = load(path, trust_pickle)
    if ckpt["format"] == FORMAT:
        if which not in ckpt:
            raise CheckpointError(f"checkpoint '{path}' holds no {which}")
        return ckpt[which]
    if ckpt.get("which") not in (None, which):
        raise CheckpointError(f"'{path}' holds {ckpt.get('which')} weights, not {which}")
    return ckpt["state_dict"]


def generator_weights(path, average=True, trust_pickle=False):
    """(G's state_dict, "netG" or "netG_ema", what the file says of how G was
    trained) from a checkpoint (its average when it keeps one and `average`;
    train.py's args) or from a netG / netG_ema weights file (its "codes", the
    InfoGAN code size that sampling needs and the weights cannot show)."""
    ckpt = load(path, trust_pickle)
    if ckpt["format"] == FORMAT:
        if average and "netG_ema" in ckpt:  # AveragedModel's keys: module.<key>, n_averaged
            return {k[len("module."):]: v for k, v in ckpt["netG_ema"].items()
                    if k.startswith("module.")}, "netG_ema", ckpt["args"]
        return ckpt["netG"], "netG", ckpt["args"]
    if ckpt.get("which") not in (None, "netG", "netG_ema"):
        raise CheckpointError(f"'{path}' holds {ckpt.get('which')} weights, not a generator's")
    return ckpt["state_dict"], ckpt.get("which") or "netG", {"codes": ckpt.get("codes", 0)}


def load_into(model, state_dict, path):
    """load_state_dict, with errors that name the file."""
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, ValueError) as e:
        first = str(e).replace("\n", " ").replace("\t", "")
        raise CheckpointError(f"weights in '{path}' do not fit this model: {first}") from None


def non_finite(state_dict):
    """The names of the entries of a state_dict that hold NaN or infinity."""
    return [k for k, v in state_dict.items()
            if np.issubdtype(np.asarray(v).dtype, np.floating) and not np.isfinite(v).all()]


def arrays_equal(a, b):
    """Bitwise equality of two state_dict-like trees (for tests and checks)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(arrays_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(arrays_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return a == b
