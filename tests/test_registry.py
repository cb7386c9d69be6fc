"""The op registry (kernels/registry.py) is the one list of contract ops:
it and the contract must agree, and what derives from it must follow it."""

import numpy as np

import kernels
import nn
from benchmarks import cost
from kernels import registry
from kernels.contract import contract_functions


def test_registry_lists_every_contract_function_once():
    names = [op.name for op in registry.OPS]
    assert len(names) == len(set(names)), "an op is registered twice"
    assert sorted(names) == contract_functions()
    assert {op.family for op in registry.OPS} <= set(registry.FAMILIES)


def test_every_backend_implements_every_registered_op():
    for name in kernels.available_backends():
        B = kernels.get_backend(name)
        missing = [op.name for op in registry.OPS if not callable(getattr(B, op.name, None))]
        assert not missing, f"{name} lacks {missing}"


def test_unary_ops_reach_every_layer():
    """A registry entry alone gives the contract method, the NumPy kernel, the
    autograd Function and the Tensor method."""
    codes = [op.code for op in registry.UNARY]
    assert len(codes) == len(set(codes)), "two unary ops share a kernel code"
    B = kernels.get_backend("numpy")
    x = np.linspace(0.3, 1.7, 5)
    for op in registry.UNARY:
        assert getattr(kernels.contract.Backend, op.name).__isabstractmethod__
        assert np.allclose(getattr(B, op.name)(x), op.numpy(x))
        t = nn.tensor(x, dtype=nn.float64, requires_grad=True)
        y = getattr(t, op.name)()
        assert y.grad_fn.name() == op.name.capitalize()


def test_benchmark_costs_come_from_the_registry():
    assert cost.EW_FLOPS == registry.elementwise_flops()
