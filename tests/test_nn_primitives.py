"""The primitive ops and the layers composed of them, through nn, against torch.

Each case is one line: (name, input shapes, fn(F, *inputs), helper options).
`F` is torch.nn.functional or nn.functional and `lib(F)` is torch or nn, so
one lambda runs on both. Every case runs forward and every input gradient
here, and second derivatives in test_grad2.py, on every backend and dtype.
"""

import numpy as np
import pytest
import torch

import nn
from helpers import helper_test_op, lib
from kernels import registry

POS = dict(low=0.2, high=3.0)  # inputs where log, sqrt, pow and friends are smooth


def _unary_case(op):
    """One case per unary primitive of the registry, in its smooth domain."""
    return (op.name, [(3, 17)], lambda F, x: getattr(x, op.name)(),
            dict(low=op.domain[0], high=op.domain[1]))


PRIMITIVE_CASES = [_unary_case(op) for op in registry.UNARY] + [
    ("pow", [(3, 4)], lambda F, x: x ** 3, {}),
    ("pow", [(3, 4)], lambda F, x: x ** -1.5, POS),
    ("pow", [(7,)], lambda F, x: x.pow(0.5), POS),
    ("clamp", [(6, 5)], lambda F, x: x.clamp(-0.5, 0.8), {}),
    ("clamp", [(6, 5)], lambda F, x: x.clamp(min=0.1), {}),
    ("maximum", [(4, 5), (5,)], lambda F, a, b: lib(F).maximum(a, b), {}),
    ("minimum", [(3, 1, 4), (2, 1)], lambda F, a, b: lib(F).minimum(a, b), {}),
    ("where", [(4, 5), (4, 5)], lambda F, a, b: lib(F).where(a > b, a * b, b - a), {}),
    ("where", [(3, 4), (4,)], lambda F, a, b: lib(F).where(a > 0, a, b), {}),
    ("sum", [(2, 3, 4)], lambda F, x: x.sum((0, 2), keepdim=True), {}),
    ("sum", [(2, 1, 4)], lambda F, x: x.sum(dim=()) * x, {}),            # () is every axis
    ("sum", [(3, 1, 2)], lambda F, x: x.sum((-1, -3), keepdim=True), {}),
    ("amax", [(2, 3, 5)], lambda F, x: x.amax((0, 1, 2), keepdim=True), {}),
    ("getitem", [(4, 5)], lambda F, x: x[2:2].sum() + x[1:3].sum(-1), {}),  # an empty slice
    ("var", [(1, 5)], lambda F, x: x.var(-1), {}),
    ("mean", [(2, 3, 4)], lambda F, x: x.mean(-1), {}),
    ("var", [(3, 8)], lambda F, x: x.var(1), {}),
    ("var", [(2, 3, 5)], lambda F, x: x.var((0, 2), unbiased=False, keepdim=True), {}),
    ("std", [(4, 6)], lambda F, x: x.std(0), {}),
    ("std", [(3, 7)], lambda F, x: x.std(), {}),
    ("amax", [(3, 6, 2)], lambda F, x: x.amax((0, 2)), {}),
    ("amin", [(5, 4)], lambda F, x: x.amin(-1, keepdim=True), {}),
    ("max", [(4, 9)], lambda F, x: x.max(), {}),
    ("max_dim", [(4, 9)], lambda F, x: x.max(1)[0], {}),
    ("min_dim", [(3, 5, 2)], lambda F, x: x.min(dim=1, keepdim=True).values, {}),
    ("norm", [(4, 6)], lambda F, x: x.norm(), {}),
    ("norm", [(5, 2, 3)], lambda F, x: x.reshape(5, -1).norm(2, dim=1), {}),
    ("norm", [(3, 4)], lambda F, x: x.norm(p=1, dim=0), {}),
    ("matmul", [(5, 7), (7, 3)], lambda F, a, b: a @ b, {}),
    ("matmul", [(2, 3, 4), (2, 4, 5)], lambda F, a, b: a @ b, {}),
    ("matmul", [(2, 1, 3, 4), (5, 4, 2)], lambda F, a, b: lib(F).matmul(a, b), {}),
    ("matmul", [(6,), (6, 3)], lambda F, a, b: a @ b, {}),
    ("matmul", [(4, 6), (5, 6)], lambda F, a, b: a @ b.t(), {}),         # a transposed view
    ("permute", [(2, 3, 4)], lambda F, x: x.permute(2, 0, 1) * 2.0, {}),
    ("transpose", [(3, 5)], lambda F, x: x.transpose(0, 1).exp(), {}),
    ("getitem", [(5, 6, 7)], lambda F, x: x[1:4, ::2, -3] * 3.0, {}),
    ("getitem", [(4, 5)], lambda F, x: x[None, 2, 1:5:3, None].exp(), {}),
    ("getitem", [(6, 3)], lambda F, x: x[..., 1].sum(), {}),
    ("cat", [(2, 3), (4, 3)], lambda F, a, b: lib(F).cat([a, b * 2.0, a], 0), {}),
    ("cat", [(2, 3, 1), (2, 3, 4)], lambda F, a, b: lib(F).cat([a, b], dim=-1), {}),
    ("stack", [(3, 4), (3, 4)], lambda F, a, b: lib(F).stack([a, b], 1), {}),
    ("unsqueeze_squeeze", [(3, 1, 4)], lambda F, x: x.squeeze(1).unsqueeze(0) * x.sum(), {}),
    ("flatten", [(2, 3, 4, 5)], lambda F, x: x.flatten(1, 2).exp(), {}),
    ("expand", [(3, 1)], lambda F, x: x.expand(2, 3, 4) * 1.5, {}),
    ("softmax", [(4, 7)], lambda F, x: F.softmax(x, dim=1), {}),
    ("softmax", [(2, 3, 5)], lambda F, x: F.softmax(x * 20.0, dim=0), {}),
    ("log_softmax", [(4, 7)], lambda F, x: F.log_softmax(x * 30.0, dim=-1), {}),
    ("linear", [(5, 4), (3, 4), (3,)], lambda F, x, w, b: F.linear(x, w, b), {}),
    ("linear", [(2, 6, 4), (3, 4)], lambda F, x, w: F.linear(x, w), {}),
    ("layer_norm", [(4, 3, 5), (3, 5), (3, 5)],
     lambda F, x, w, b: F.layer_norm(x, (3, 5), w, b), {}),
    ("layer_norm", [(6, 8)], lambda F, x: F.layer_norm(x, (8,)), {}),
    ("mse_loss", [(4, 5), (4, 5)], lambda F, a, b: F.mse_loss(a, b), {}),
    ("mse_loss", [(3, 2), (3, 2)], lambda F, a, b: F.mse_loss(a, b, reduction="none"), {}),
    ("l1_loss", [(4, 5), (4, 5)], lambda F, a, b: F.l1_loss(a, b, reduction="sum"), {}),
    ("bce_pos_weight", [(4, 3), (4, 3), (3,)],
     lambda F, x, t, pw: F.binary_cross_entropy_with_logits(x * 10.0, (t > 0).to(x.dtype),
                                                            pos_weight=pw.abs()),
     dict(requires_grad=[True, False, False])),
    ("pad", [(2, 3, 4, 5)], lambda F, x: F.pad(x, (1, 2, 0, 3)) * 2.0, {}),
]

# Integer-target losses: (input shape, class count dim, kwargs).
CE_CASES = [((6, 5), {}), ((3, 4, 2, 2), {}), ((5,), {}), ((7, 4), dict(reduction="sum")),
            ((6, 3), dict(reduction="none")), ((8, 4), dict(ignore_index=1)),
            ((5, 3), dict(weight=True))]


def _case_id(case):
    return case[0]


@pytest.mark.parametrize("case", PRIMITIVE_CASES, ids=_case_id)
def test_primitive_op(backend, dtype, seed, case):
    name, shapes, fn, opts = case
    helper_test_op(shapes, fn, dtype=dtype, seed=seed, op=name, **opts)


def ce_fn(shape, kwargs, seed, loss="cross_entropy"):
    """A cross-entropy lambda with fixed random integer targets (and weights)."""
    rng = np.random.default_rng(seed + 7)
    C = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    targets = rng.integers(0, C, tshape)
    kw = dict(kwargs)
    weight = rng.uniform(0.5, 2, C) if kw.pop("weight", False) else None

    def fn(F, x):
        T = lib(F)
        t = (torch.tensor(targets) if T is torch else nn.tensor(targets, dtype=nn.int64))
        w = None if weight is None else (torch.tensor(weight) if T is torch
                                         else nn.tensor(weight, dtype=x.dtype))
        if loss == "nll_loss":
            return F.nll_loss(F.log_softmax(x, 0 if x.ndim == 1 else 1), t, weight=w, **kw)
        return F.cross_entropy(x, t, weight=w, **kw)
    return fn


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("shape,kwargs", CE_CASES)
def test_cross_entropy(backend, dtype, seed, shape, kwargs, loss):
    helper_test_op([shape], ce_fn(shape, kwargs, seed, loss), dtype=dtype, seed=seed, op=loss)


CE_PROB_CASES = [((5, 4), {}), ((3, 6), {"weight": True}), ((2, 3, 4), {"reduction": "sum"}),
                 ((4, 3), {"reduction": "none"}), ((6,), {})]


def ce_probs_fn(shape, kwargs, seed):
    """A cross-entropy lambda with fixed random class-probability targets
    (torch's float form; InfoGAN's code loss uses it with one-hot rows)."""
    rng = np.random.default_rng(seed + 11)
    C = shape[0] if len(shape) == 1 else shape[1]
    probs = rng.dirichlet(np.ones(C), int(np.prod(shape)) // C)
    probs = (probs.reshape(shape) if len(shape) < 3 else
             np.moveaxis(probs.reshape(shape[0], *shape[2:], C), -1, 1))
    kw = dict(kwargs)
    weight = rng.uniform(0.5, 2, C) if kw.pop("weight", False) else None

    def fn(F, x):
        T = lib(F)
        t = torch.tensor(probs) if T is torch else nn.tensor(probs, dtype=x.dtype)
        w = None if weight is None else (torch.tensor(weight) if T is torch
                                         else nn.tensor(weight, dtype=x.dtype))
        return F.cross_entropy(x, t, weight=w, **kw)
    return fn


@pytest.mark.parametrize("shape,kwargs", CE_PROB_CASES)
def test_cross_entropy_with_class_probabilities(backend, dtype, seed, shape, kwargs):
    helper_test_op([shape], ce_probs_fn(shape, kwargs, seed), dtype=dtype, seed=seed,
                   op="cross_entropy")


def test_cross_entropy_bad_targets(backend):
    x = nn.tensor(np.zeros((3, 4)), dtype=nn.float64)
    with pytest.raises(IndexError, match="cross_entropy|nll_loss: target 4 is out of bounds"):
        nn.functional.cross_entropy(x, nn.tensor([0, 4, 1], dtype=nn.int64))
    with pytest.raises(TypeError, match="nll_loss: target must be an integer"):
        nn.functional.cross_entropy(x, nn.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"nll_loss: target shape \(2,\) does not match"):
        nn.functional.cross_entropy(x, nn.tensor([0, 1], dtype=nn.int64))
    probs = nn.tensor(np.full((3, 4), 0.25), dtype=nn.float64)
    with pytest.raises(ValueError, match=r"cross_entropy: weight must have shape \(4,\), got"):
        nn.functional.cross_entropy(x, probs, weight=nn.tensor(np.ones(3), dtype=nn.float64))
    with pytest.raises(ValueError, match="cross_entropy: reduction must be one of"):
        nn.functional.cross_entropy(x, probs, reduction="avg")


def test_max_dim_returns_values_and_indices(backend, dtype, seed):
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((4, 7)).astype(dtype)
    values, indices = nn.tensor(h).max(1)
    assert indices.dtype == np.int64
    assert (indices.numpy() == h.argmax(1)).all()
    assert (values.numpy() == h.max(1)).all()
    r = nn.tensor(h).min(dim=0, keepdim=True)
    assert r.values.shape == (1, 7) and (r.indices.numpy() == h.argmin(0)[None]).all()
    assert nn.tensor(h).argmax().item() == h.argmax()


def test_comparisons_give_masks(backend, dtype):
    a = nn.tensor(np.array([1.0, 2.0, np.nan, 4.0]), dtype=dtype)
    assert (a > 1.5).dtype == np.bool_
    assert (a > 1.5).tolist() == [False, True, False, True]
    assert (a <= 2.0).tolist() == [True, True, False, False]
    assert (a == 2.0).tolist() == [False, True, False, False]
    assert (a != 2.0).tolist() == [True, False, True, True]
    assert (a >= a).tolist() == [True, True, False, True]


def test_index_errors(backend):
    x = nn.tensor(np.zeros((3, 4)))
    with pytest.raises(IndexError, match="index: 3 is out of range for dim 0 of size 3"):
        x[3]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(ValueError, match="slice steps must be >= 1"):
        x[::-1]
    with pytest.raises(TypeError, match="only ints, slices, None"):
        x[[0, 1]]
    assert x[1:1].shape == (0, 4)


def test_shape_errors(backend):
    a, b = nn.tensor(np.zeros((3, 4))), nn.tensor(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"matmul: shapes \(3, 4\) and \(5, 2\) cannot be"):
        a @ b
    with pytest.raises(ValueError, match="cat: tensor 1 has shape"):
        nn.cat([a, b])
    with pytest.raises(ValueError, match="permute: dims"):
        a.permute(0, 0)
    with pytest.raises(ValueError, match=r"linear: input of shape \(3, 4\) does not end in"):
        nn.functional.linear(a, b)
    with pytest.raises(ValueError, match="layer_norm: input of shape"):
        nn.functional.layer_norm(a, (3,))
    with pytest.raises(IndexError, match="var: dim 2 is out of range"):
        a.var(2)


def test_modules_match_torch_init_and_keys(backend):
    nn.manual_seed(0)
    lin, ln = nn.Linear(6, 3), nn.LayerNorm((2, 3))
    assert list(lin.state_dict()) == list(torch.nn.Linear(6, 3).state_dict())
    assert list(ln.state_dict()) == list(torch.nn.LayerNorm((2, 3)).state_dict())
    bound = 1 / np.sqrt(6)
    assert np.abs(lin.weight.numpy()).max() <= bound and np.abs(lin.bias.numpy()).max() <= bound
    assert (ln.weight.numpy() == 1).all() and (ln.bias.numpy() == 0).all()
    x = nn.randn(4, 2, 3)
    assert nn.Flatten()(x).shape == (4, 6)
    assert lin(nn.randn(5, 6)).shape == (5, 3)
    assert nn.LayerNorm(3, elementwise_affine=False)(x).shape == (4, 2, 3)
