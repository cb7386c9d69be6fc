"""nn.optim.swa_utils.AveragedModel against torch.optim.swa_utils, update by update.

A small model (BatchNorm and all) is trained a few Adam steps on both sides
from the same weights; after each step both averages are updated, and every
averaged parameter and buffer is compared (float64, relative error, 1e-12),
for torch's three ways of averaging (EMA over lists, EMA per tensor, SWA's
equal-weight mean) with and without the buffers.
"""

import numpy as np
import pytest
import torch

import nn
from dcgan.models import build_generator
from helpers import rel_error

SWA = nn.optim.swa_utils
AVERAGES = {
    "ema_multi": lambda m: dict(multi_avg_fn=m.get_ema_multi_avg_fn(0.9)),
    "ema_single": lambda m: dict(avg_fn=m.get_ema_avg_fn(0.8)),
    "swa": lambda m: dict(),
}


def _mlp(lib):
    """A model with parameters and BatchNorm buffers (running statistics and
    the integer batch counter), small enough for the simulated backends."""
    # (no bias before the BatchNorm: its gradient is 0 but for rounding, which
    # Adam would blow up into steps that agree in no digit)
    return lib.Sequential(lib.Linear(6, 7, bias=False), lib.BatchNorm1d(7), lib.ReLU(),
                          lib.Linear(7, 3))


@pytest.mark.parametrize("use_buffers", [False, True])
@pytest.mark.parametrize("average", list(AVERAGES))
def test_averaged_model_matches_torch(backend, seed, average, use_buffers):
    torch.manual_seed(seed % 2 ** 31)
    t_g, o_g = _mlp(torch.nn).double(), _mlp(nn).to(np.float64)
    o_g.load_state_dict(t_g.state_dict())
    t_avg = torch.optim.swa_utils.AveragedModel(t_g, use_buffers=use_buffers,
                                                **AVERAGES[average](torch.optim.swa_utils))
    o_avg = SWA.AveragedModel(o_g, use_buffers=use_buffers, **AVERAGES[average](SWA))
    assert list(o_avg.state_dict()) == list(t_avg.state_dict())
    t_opt = torch.optim.Adam(t_g.parameters(), lr=0.05, foreach=False)
    o_opt = nn.optim.Adam(o_g.parameters(), lr=0.05)
    rng = np.random.default_rng(seed)
    for step in range(4):
        z = rng.standard_normal((5, 6))
        up = rng.standard_normal((5, 3))
        for g, opt, T in ((t_g, t_opt, torch.tensor), (o_g, o_opt, nn.tensor)):
            opt.zero_grad()
            (g(T(z)) * T(up)).sum().backward()
            opt.step()
        t_avg.update_parameters(t_g)
        o_avg.update_parameters(o_g)
        ref = t_avg.state_dict()
        for name, value in o_avg.state_dict().items():
            want = ref[name].numpy()
            if not np.issubdtype(want.dtype, np.floating):
                assert int(value.item()) == int(want), f"step {step}: {name}"
                continue
            err = rel_error(value.numpy(), want)
            assert err <= 1e-12, f"step {step}: {name}: relative error {err:.2e}"
    # the average is a model: its forward is the averaged generator's
    z = rng.standard_normal((3, 6))
    t_avg.eval()
    o_avg.eval()
    with torch.no_grad():
        want = t_avg(torch.tensor(z)).numpy()
    assert rel_error(o_avg(nn.tensor(z)).numpy(), want) <= 1e-12


def test_averaged_model_state_dict_round_trip_and_errors(backend):
    g = build_generator(nn, 6, 4, 1, 16)
    avg = SWA.AveragedModel(g, multi_avg_fn=SWA.get_ema_multi_avg_fn(0.5))
    avg.update_parameters(g)
    other = SWA.AveragedModel(build_generator(nn, 6, 4, 1, 16))
    other.load_state_dict(avg.state_dict())
    assert int(other.n_averaged.item()) == 1
    with pytest.raises(ValueError, match="Invalid decay value 1.5"):
        SWA.get_ema_multi_avg_fn(1.5)
    with pytest.raises(ValueError, match="only one of avg_fn and multi_avg_fn"):
        SWA.AveragedModel(g, avg_fn=SWA.get_ema_avg_fn(), multi_avg_fn=SWA.get_ema_multi_avg_fn())
    with pytest.raises(ValueError, match="the model has .* tensors to average"):
        avg.update_parameters(build_generator(nn, 6, 4, 1, 32))
