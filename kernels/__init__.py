"""Compute backends behind one contract (`kernels.contract.Backend`).

    kernels.available_backends()   # the backends this machine can run
    kernels.get_backend("numpy")   # the shared instance of one backend

Asking for a backend that cannot run here raises BackendUnavailableError,
naming the reason and the backends that can.
"""

import importlib
import importlib.util
import os
import shutil

from . import debug
from .contract import Backend, contract_functions, missing_functions

# name -> (module, class). Order is preference: the best available backend first.
_REGISTRY = {
    "triton": ("kernels.triton_backend", "TritonBackend"),
    "cupy": ("kernels.cupy_backend", "CupyBackend"),
    "numpy": ("kernels.numpy_backend", "NumpyBackend"),
}
_instances = {}


class BackendError(ValueError):
    """An unknown backend name."""


class BackendUnavailableError(RuntimeError):
    """A known backend that cannot run on this machine."""


def _gpu_present():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no cupy, no driver, no device: all mean "no GPU here"
        return False


def why_unavailable(name):
    """None if backend `name` can run here, else the reason it cannot."""
    if name not in _REGISTRY:
        raise BackendError(f"unknown backend {name!r}; known backends: {', '.join(_REGISTRY)}")
    module, _ = _REGISTRY[name]
    if importlib.util.find_spec(module) is None:
        return f"backend {name!r} is not implemented in this version of kernels"
    if name == "triton":
        if importlib.util.find_spec("triton") is None:
            return "the triton package is not installed (pip install -e .[triton])"
        if os.environ.get("TRITON_INTERPRET") != "1" and not _gpu_present():
            return "no CUDA GPU found (set TRITON_INTERPRET=1 to run Triton on the CPU)"
    if name == "cupy":
        if os.environ.get("NN_CUDA_EMULATE") == "1":
            if not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")):
                return "NN_CUDA_EMULATE=1 needs a C++20 compiler (g++) and none was found"
            return None
        if importlib.util.find_spec("cupy") is None:
            return "the cupy package is not installed (pip install -e .[cupy])"
        if not _gpu_present():
            return "no CUDA GPU found (set NN_CUDA_EMULATE=1 to run the CUDA C kernels on the CPU)"
    return None


def available_backends():
    """Names of the backends that can run on this machine, best first."""
    return [n for n in _REGISTRY if why_unavailable(n) is None]


def get_backend(name):
    """The backend instance for `name`, created once per process."""
    if name in _instances:
        return _instances[name]
    reason = why_unavailable(name)
    if reason is not None:
        raise BackendUnavailableError(
            f"backend {name!r} cannot run on this machine: {reason}. "
            f"Available backends: {', '.join(available_backends())}")
    module, cls_name = _REGISTRY[name]
    cls = getattr(importlib.import_module(module), cls_name)
    missing = missing_functions(cls)
    if missing:
        raise TypeError(f"backend {name!r} does not implement the contract: "
                        f"missing {', '.join(missing)}")
    _instances[name] = cls()
    return _instances[name]


def known_backends():
    return list(_REGISTRY)


__all__ = ["Backend", "BackendError", "BackendUnavailableError", "available_backends",
           "contract_functions", "get_backend", "known_backends", "missing_functions",
           "why_unavailable"]
