"""nn.optim.Adam and SGD against torch.optim, step by step.

Both sides start from the same parameters and get the same gradient every
step (drawn fresh, set by hand on `.grad`), so any difference is the update
rule's. The reference is torch in float64 on the values we see; tolerances
are 1e-10 relative in float64 and 1e-5 in float32, on every parameter and on
the optimizer state after every step.
"""

import copy

import numpy as np
import pytest
import torch

import nn
from helpers import rel_error

TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
SHAPES = [(3, 4), (5,), (2, 3, 2, 2), (4, 1)]
SKIP_PARAM = 3  # this parameter has no gradient on some steps
STEPS = 10


def _skips(step):
    """Steps on which parameter SKIP_PARAM has grad None (torch leaves it, and
    its state, alone: no step count, no moment decay, no weight decay)."""
    return step in (0, 1, 4, 7)


def _make_params(dtype, seed):
    rng = np.random.default_rng(seed)
    host = [rng.standard_normal(s).astype(dtype).astype(np.float64) for s in SHAPES]
    ours = [nn.Parameter(nn.tensor(h, dtype=dtype)) for h in host]
    ref = [torch.tensor(h, requires_grad=True) for h in host]
    return ours, ref


def _set_grads(ours, ref, rng, dtype, step):
    for i, (p, tp) in enumerate(zip(ours, ref)):
        if i == SKIP_PARAM and _skips(step):
            p.grad, tp.grad = None, None
            continue
        # Gradients of varied scale, so |g| vs sqrt(v) vs eps all matter.
        g = rng.standard_normal(p.shape) * 10.0 ** rng.uniform(-3, 1)
        g = g.astype(dtype).astype(np.float64)
        p.grad = nn.tensor(g, dtype=dtype)
        tp.grad = torch.tensor(g)


def _compare(ours, ref, opt, t_opt, tol, where, state_keys):
    for i, (p, tp) in enumerate(zip(ours, ref)):
        err = rel_error(p.numpy(), tp.detach().numpy())
        assert err <= tol, f"{where}: parameter {i}: relative error {err:.3e} > {tol:.0e}"
        t_state = t_opt.state.get(tp, {})
        o_state = opt.state.get(p, {})
        if not t_state:
            assert not o_state or all(o_state.get(k) is None for k in state_keys), \
                f"{where}: parameter {i} has state {list(o_state)}, torch has none"
            continue
        for k in state_keys:
            tv, ov = t_state[k], o_state[k]
            if tv is None:
                assert ov is None, f"{where}: parameter {i} state {k}"
                continue
            assert ov.dtype == p.dtype, f"{where}: state {k} of parameter {i} is {ov.dtype}"
            err = rel_error(ov.numpy(), tv.numpy())
            assert err <= tol, (f"{where}: state {k} of parameter {i}: relative error "
                                f"{err:.3e} > {tol:.0e}")
        if "step" in t_state:
            assert int(o_state["step"]) == int(t_state["step"].item()), \
                f"{where}: step of parameter {i}: {o_state['step']} vs {t_state['step']}"


def _run(ours, ref, opt, t_opt, dtype, seed, steps, state_keys, first_step=0):
    rng = np.random.default_rng(seed + 17 + first_step)
    for step in range(first_step, first_step + steps):
        _set_grads(ours, ref, rng, dtype, step)
        opt.step()
        t_opt.step()
        _compare(ours, ref, opt, t_opt, TOL[np.dtype(dtype)], f"step {step}", state_keys)


ADAM_STATE = ("exp_avg", "exp_avg_sq")
ADAM_CONFIGS = {
    "default": dict(),
    "dcgan": dict(lr=2e-4, betas=(0.5, 0.999)),
    "weight_decay": dict(weight_decay=0.1),
    "eps_lr": dict(lr=0.05, eps=1e-3, betas=(0.8, 0.99), weight_decay=0.01),
}


@pytest.mark.parametrize("config", list(ADAM_CONFIGS))
def test_adam_matches_torch(backend, dtype, seed, config):
    kw = ADAM_CONFIGS[config]
    ours, ref = _make_params(dtype, seed)
    opt = nn.optim.Adam(ours, **kw)
    t_opt = torch.optim.Adam(ref, **kw, foreach=False)
    _run(ours, ref, opt, t_opt, dtype, seed, STEPS, ADAM_STATE)
    # The skipped parameter took fewer steps than the others.
    assert opt.state[ours[SKIP_PARAM]]["step"] == STEPS - sum(map(_skips, range(STEPS)))
    assert opt.state[ours[0]]["step"] == STEPS


SGD_CONFIGS = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "weight_decay": dict(lr=0.1, weight_decay=0.05),
    "all": dict(lr=0.02, momentum=0.5, dampening=0.1, weight_decay=0.05),
    "nesterov_wd": dict(lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.05),
}


@pytest.mark.parametrize("config", list(SGD_CONFIGS))
def test_sgd_matches_torch(backend, dtype, seed, config):
    kw = SGD_CONFIGS[config]
    ours, ref = _make_params(dtype, seed)
    opt = nn.optim.SGD(ours, **kw)
    t_opt = torch.optim.SGD(ref, **kw, foreach=False)
    _run(ours, ref, opt, t_opt, dtype, seed, STEPS,
         ("momentum_buffer",) if kw.get("momentum", 0) else ())


def test_param_groups_with_their_own_hyperparameters(backend, seed):
    ours, ref = _make_params(np.float64, seed)
    opt = nn.optim.Adam([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.01,
                                                "weight_decay": 0.2}], lr=0.003)
    t_opt = torch.optim.Adam([{"params": ref[:2]}, {"params": ref[2:], "lr": 0.01,
                                                    "weight_decay": 0.2}], lr=0.003,
                             foreach=False)
    assert [g["lr"] for g in opt.param_groups] == [0.003, 0.01]
    _run(ours, ref, opt, t_opt, np.float64, seed, 5, ADAM_STATE)


def test_optimizer_zero_grad(backend):
    ours, _ = _make_params(np.float64, 0)
    opt = nn.optim.SGD(ours, lr=0.1)
    for p in ours:
        p.grad = nn.tensor(np.ones(p.shape))
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in ours)
    opt.zero_grad()
    assert all(p.grad is None for p in ours)
    before = [p.numpy() for p in ours]
    opt.step()  # no gradients: nothing moves
    for b, p in zip(before, ours):
        np.testing.assert_array_equal(b, p.numpy())


def test_step_updates_parameters_in_place(backend):
    """Modules and other holders keep the Parameter objects: the step must
    write into them, not rebind their data to new arrays."""
    m = nn.Conv2d(2, 3, 3, dtype=nn.float64)
    data_ids = [id(p.data) for p in m.parameters()]
    opt = nn.optim.Adam(m.parameters(), lr=0.1)
    m(nn.tensor(np.ones((1, 2, 4, 4)))).sum().backward()
    before = [p.numpy() for p in m.parameters()]
    opt.step()
    assert [id(p.data) for p in m.parameters()] == data_ids
    assert all(not np.array_equal(b, p.numpy()) for b, p in zip(before, m.parameters()))


def test_closure_is_called_and_its_loss_returned(backend):
    p = nn.Parameter(nn.tensor(np.array([1.0, -2.0])))
    opt = nn.optim.SGD([p], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 5.0
    np.testing.assert_array_equal(p.numpy(), [0.0, 0.0])  # p - 0.5 * 2p


# ------------------------------------------------------------ state dicts
@pytest.mark.parametrize("kind,kw", [
    ("Adam", dict(lr=2e-3, betas=(0.5, 0.999), weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05)),
])
def test_state_dict_round_trip(backend, seed, kind, kw):
    """3 steps, save, a new optimizer over a copy of the parameters loads the
    state, then 3 more steps on both: identical, bit for bit."""
    ours, ref = _make_params(np.float64, seed)
    opt = getattr(nn.optim, kind)(ours, **kw)
    t_opt = getattr(torch.optim, kind)(ref, **kw, foreach=False)
    state_keys = ADAM_STATE if kind == "Adam" else (
        ("momentum_buffer",) if kw.get("momentum") else ())
    _run(ours, ref, opt, t_opt, np.float64, seed, 3, state_keys)

    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    copies = [nn.Parameter(nn.tensor(p.numpy())) for p in ours]
    # Different hyperparameters on purpose: load_state_dict restores the saved ones.
    opt2 = getattr(nn.optim, kind)(copies, lr=0.5)
    opt2.load_state_dict(sd)
    for g, g2 in zip(opt.param_groups, opt2.param_groups):
        assert {k: v for k, v in g.items() if k != "params"} == \
            {k: v for k, v in g2.items() if k != "params"}
        assert all(a is b for a, b in zip(g2["params"], copies))

    rng = np.random.default_rng(seed + 99)
    for step in range(3, 6):
        _set_grads(ours, ref, rng, np.float64, step)
        for p, c in zip(ours, copies):
            c.grad = None if p.grad is None else nn.tensor(p.grad.numpy())
        opt.step()
        opt2.step()
        t_opt.step()
        for i, (p, c) in enumerate(zip(ours, copies)):
            np.testing.assert_array_equal(c.numpy(), p.numpy(), err_msg=f"step {step} param {i}")
            for k in state_keys:
                np.testing.assert_array_equal(opt2.state[c][k].numpy(), opt.state[p][k].numpy(),
                                              err_msg=f"step {step} param {i} {k}")
        # ... and both still follow torch.
        _compare(ours, ref, opt, t_opt, 1e-10, f"step {step}", state_keys)


def test_loaded_state_is_not_shared_with_the_source(backend, seed):
    ours, _ = _make_params(np.float64, seed)
    opt = nn.optim.Adam(ours)
    for p in ours:
        p.grad = nn.tensor(np.ones(p.shape))
    opt.step()
    copies = [nn.Parameter(nn.tensor(p.numpy())) for p in ours]
    opt2 = nn.optim.Adam(copies)
    opt2.load_state_dict(opt.state_dict())
    saved = opt2.state[copies[0]]["exp_avg"].numpy()
    opt.step()  # moves opt's moments ...
    np.testing.assert_array_equal(opt2.state[copies[0]]["exp_avg"].numpy(), saved)  # ... not opt2's


def test_adam_state_dict_layout(backend, seed):
    ours, ref = _make_params(np.float64, seed)
    opt = nn.optim.Adam(ours, lr=2e-4, betas=(0.5, 0.999))
    _set_grads(ours, ref, np.random.default_rng(seed), np.float64, 0)  # SKIP_PARAM: no grad
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    (group,) = sd["param_groups"]
    assert group["params"] == list(range(len(ours)))
    assert group["lr"] == 2e-4 and tuple(group["betas"]) == (0.5, 0.999)
    assert group["eps"] == 1e-8 and group["weight_decay"] == 0
    assert sorted(sd["state"]) == [i for i in range(len(ours)) if i != SKIP_PARAM]
    for i, st in sd["state"].items():
        assert set(st) == {"step", "exp_avg", "exp_avg_sq"}
        assert int(st["step"]) == 1
        for k in ADAM_STATE:
            assert isinstance(st[k], nn.Tensor) and st[k].shape == ours[i].shape


def test_adam_loads_torch_state_dict_and_continues_like_torch(backend, seed):
    """torch's Adam state_dict (torch tensors, a tensor step, torch's extra
    group keys) loads into ours, which then continues exactly as torch does."""
    _, ref = _make_params(np.float64, seed)
    kw = dict(lr=2e-3, betas=(0.5, 0.999), weight_decay=0.01)
    t_opt = torch.optim.Adam(ref, **kw, foreach=False)
    rng = np.random.default_rng(seed)
    scratch = [nn.Parameter(nn.tensor(np.zeros(s))) for s in SHAPES]
    for step in range(3):  # torch alone
        _set_grads(scratch, ref, rng, np.float64, step)
        t_opt.step()
    t_sd = t_opt.state_dict()
    assert isinstance(t_sd["state"][0]["step"], torch.Tensor)
    ours = [nn.Parameter(nn.tensor(tp.detach().numpy())) for tp in ref]  # torch's values
    opt = nn.optim.Adam(ours, lr=0.1)
    opt.load_state_dict(t_sd)
    assert opt.param_groups[0]["lr"] == 2e-3 and tuple(opt.param_groups[0]["betas"]) == (0.5, 0.999)
    assert opt.state[ours[0]]["step"] == 3
    _compare(ours, ref, opt, t_opt, 0.0, "after loading", ADAM_STATE)
    _run(ours, ref, opt, t_opt, np.float64, seed, 4, ADAM_STATE, first_step=3)


def test_torch_adam_loads_our_state_dict(backend, seed):
    """The other way: our state_dict, with arrays made torch tensors, loads
    into torch.optim.Adam, which then continues exactly as we do."""
    ours, ref = _make_params(np.float64, seed)
    kw = dict(lr=1e-3, betas=(0.9, 0.99))
    opt = nn.optim.Adam(ours, **kw)
    t_scratch = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    rng = np.random.default_rng(seed)
    for step in range(3):
        _set_grads(ours, t_scratch, rng, np.float64, step)
        opt.step()
    sd = opt.state_dict()
    t_sd = {"param_groups": copy.deepcopy(sd["param_groups"]),
            "state": {i: {"step": torch.tensor(float(st["step"])),
                          "exp_avg": torch.tensor(st["exp_avg"].numpy()),
                          "exp_avg_sq": torch.tensor(st["exp_avg_sq"].numpy())}
                      for i, st in sd["state"].items()}}
    with torch.no_grad():
        for p, tp in zip(ours, ref):
            tp.copy_(torch.tensor(p.numpy()))
    t_opt = torch.optim.Adam(ref, lr=0.5, foreach=False)
    t_opt.load_state_dict(t_sd)
    _run(ours, ref, opt, t_opt, np.float64, seed, 4, ADAM_STATE, first_step=3)


def test_load_state_dict_rejects_mismatched_groups(backend):
    ours, _ = _make_params(np.float64, 0)
    sd = nn.optim.Adam(ours[:2]).state_dict()
    with pytest.raises(ValueError):
        nn.optim.Adam(ours).load_state_dict(sd)


# -------------------------------------------------------------- bad arguments
BAD_ARGS = [
    ("Adam", dict(lr=-1e-3)),
    ("Adam", dict(betas=(1.0, 0.999))),
    ("Adam", dict(betas=(0.9, 1.0))),
    ("Adam", dict(betas=(-0.1, 0.999))),
    ("Adam", dict(betas=(0.9, -0.5))),
    ("Adam", dict(eps=-1e-8)),
    ("Adam", dict(weight_decay=-0.1)),
    ("SGD", dict(lr=-0.1)),
    ("SGD", dict(lr=0.1, momentum=-0.9)),
    ("SGD", dict(lr=0.1, weight_decay=-1e-4)),
    ("SGD", dict(lr=0.1, nesterov=True)),                               # no momentum
    ("SGD", dict(lr=0.1, nesterov=True, momentum=0.9, dampening=0.5)),  # dampening
]


@pytest.mark.parametrize("kind,kw", BAD_ARGS, ids=[f"{k}-{kw}" for k, kw in BAD_ARGS])
def test_invalid_arguments_raise_value_error(backend, kind, kw):
    with pytest.raises(ValueError):
        getattr(torch.optim, kind)([torch.zeros(2, requires_grad=True)], **kw)  # as torch
    with pytest.raises(ValueError):
        getattr(nn.optim, kind)([nn.Parameter(nn.zeros(2))], **kw)


def test_empty_parameter_list_raises(backend):
    with pytest.raises(ValueError):
        nn.optim.Adam([])
    with pytest.raises(ValueError):
        nn.optim.SGD([], lr=0.1)


def test_same_parameter_in_two_groups_raises(backend):
    p = nn.Parameter(nn.zeros(2))
    with pytest.raises(ValueError):
        nn.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
