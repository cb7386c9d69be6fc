"""Backend selection and the contract itself."""

import os
import subprocess
import sys

import numpy as np
import pytest

import kernels
import nn
from kernels.contract import Backend


def test_every_available_backend_implements_the_whole_contract():
    for name in kernels.available_backends():
        b = kernels.get_backend(name)
        assert isinstance(b, Backend)
        assert not kernels.missing_functions(type(b))
        for fn in kernels.contract_functions():
            assert callable(getattr(b, fn)), f"{name} lacks {fn}"


def test_an_incomplete_backend_is_reported_by_name():
    class Partial(Backend):
        def is_array(self, a):
            return True

    missing = kernels.missing_functions(Partial)
    assert "conv2d_forward" in missing and "adam_step_" in missing and "is_array" not in missing
    with pytest.raises(TypeError):
        Partial()


def test_numpy_is_always_available_and_is_the_cpu_default():
    assert "numpy" in kernels.available_backends()
    assert nn.get_backend() == "numpy"


def test_use_backend_is_a_context_manager_that_restores(backend):
    before = nn.get_backend()
    with nn.use_backend("numpy") as b:
        assert nn.get_backend() == "numpy" and b.name == "numpy"
        x = nn.ones(2)
        assert x.device == "cpu" and isinstance(x.data, np.ndarray)
    assert nn.get_backend() == before


def test_set_backend(backend):
    nn.set_backend(backend)
    try:
        assert nn.get_backend() == backend
    finally:
        nn.set_backend("numpy")


def test_environment_variable_picks_the_default():
    code = "import nn; print(nn.get_backend())"
    env = dict(os.environ, NN_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)), check=True)
    assert out.stdout.strip() == "numpy"
    env["NN_BACKEND"] = "nope"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode != 0 and "unknown backend 'nope'" in out.stderr


def test_manual_seed_makes_draws_repeatable():
    nn.manual_seed(1234)
    a = nn.randn(5).numpy()
    nn.manual_seed(1234)
    b = nn.randn(5).numpy()
    nn.manual_seed(4321)
    c = nn.randn(5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_rng_state_round_trips():
    b = kernels.get_backend("numpy")
    state = b.get_rng_state()
    x = b.random_uniform((4,), 0.0, 1.0, np.float64)
    b.set_rng_state(state)
    np.testing.assert_array_equal(b.random_uniform((4,), 0.0, 1.0, np.float64), x)


def test_poisoned_empty_is_nan():
    b = kernels.get_backend("numpy")
    with kernels.debug.poison_outputs():
        assert np.isnan(b.empty((3,), np.float32)).all()
