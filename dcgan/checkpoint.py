"""Checkpoints: atomic pickles of NumPy arrays, readable without torch.

A checkpoint is a dict: the format tag, the arguments, the next epoch and
the global iteration, both models' state_dicts, both optimizers'
state_dicts, every backend's RNG state and the fixed noise, and, for a
training schedule that has state of its own (WGAN-GP's critic counter), a
"trainer" dict; a checkpoint without one (every DCGAN run, and those written
before it existed) loads as a schedule at its start. Model state_dicts hold
parameters and buffers alike, so spectral norm's weight_orig, weight_u and
weight_v travel with them. Every array is a host NumPy copy, so a checkpoint
written on one backend loads on any other.

Writes go to a temporary file in the same folder, are flushed to disk, and
then renamed over the target: a crash at any moment leaves either the old
file or the new one, never a torn one.
"""

import os
import pickle

import numpy as np

import kernels
import nn

FORMAT = "dcgan-nn-checkpoint"
VERSION = 1


class CheckpointError(Exception):
    """A checkpoint or weights file that cannot be used (one-line message)."""


def to_host(obj):
    """A copy of `obj` with every nn Tensor replaced by a NumPy array."""
    if isinstance(obj, nn.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return type(obj)((k, to_host(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_host(v) for v in obj)
    return obj


def atomic_pickle(obj, path):
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def rng_states():
    """The generator state of every backend created in this process."""
    return {name: b.get_rng_state() for name, b in kernels._instances.items()}


def restore_rng_states(states):
    for name, state in states.items():
        if name in kernels._instances:
            kernels._instances[name].set_rng_state(state)


def save(path, *, args, epoch, iteration, netG, netD, optG, optD, fixed_noise, trainer=None):
    ckpt = {
        "format": FORMAT, "version": VERSION, "args": dict(args), "epoch": epoch,
        "iteration": iteration, "netG": to_host(netG.state_dict()),
        "netD": to_host(netD.state_dict()), "optG": to_host(optG.state_dict()),
        "optD": to_host(optD.state_dict()), "rng": rng_states(),
        "fixed_noise": to_host(fixed_noise),
    }
    if trainer is not None:
        ckpt["trainer"] = dict(trainer)
    atomic_pickle(ckpt, path)


def load(path):
    """A checkpoint dict, or CheckpointError saying what is wrong with the file."""
    try:
        with open(path, "rb") as f:
            ckpt = pickle.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint '{path}' does not exist") from None
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as e:
        raise CheckpointError(f"checkpoint '{path}' is unreadable or corrupt ({e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") not in (FORMAT, FORMAT + "-weights"):
        raise CheckpointError(f"'{path}' is not a checkpoint written by train.py")
    return ckpt


def save_weights(path, model, which):
    """Model weights alone, as pytorch/examples' netG_epoch_N.pth files."""
    atomic_pickle({"format": FORMAT + "-weights", "version": VERSION, "which": which,
                   "state_dict": to_host(model.state_dict())}, path)


def load_weights(path, which):
    """The state_dict of model `which` ("netG" or "netD") from a weights file
    or from a full checkpoint."""
    ckpt = load(path)
    if ckpt["format"] == FORMAT:
        return ckpt[which]
    if ckpt.get("which") != which:
        raise CheckpointError(f"'{path}' holds {ckpt.get('which')} weights, not {which}")
    return ckpt["state_dict"]


def load_into(model, state_dict, path):
    """load_state_dict, with errors that name the file."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        first = str(e).replace("\n", " ").replace("\t", "")
        raise CheckpointError(f"weights in '{path}' do not fit this model: {first}") from None


def arrays_equal(a, b):
    """Bitwise equality of two state_dict-like trees (for tests and checks)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(arrays_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(arrays_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return a == b
