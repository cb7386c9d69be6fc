"""What one DCGAN training step asks of a GPU, counted: launches, allocations, host syncs.

A GPU step is slow for reasons visible without a GPU: a copy back to the host
waits for the device (a sync), an upload from pageable memory does too, every
launch costs a few microseconds of host time, and every allocation is memory
pool churn. The GPU backends count all of them (KernelModuleBackend.
count_traffic), and the counts are the same under the simulators
(NN_CUDA_EMULATE=1, TRITON_INTERPRET=1, set by conftest.py) as on a GPU, so
CI holds the step to a budget. The budgets are the counts reached (issue 15);
the step before that work made, at the DCGAN depth (64x64, 5 layers each):
245 launches, 310 allocations, 12 device-to-host copies and 2 uploads.

Also here: the fused BatchNorm + ReLU/LeakyReLU path the step uses
(nn.Sequential fuses the pair) gives exactly the unfused results, first and
second order.
"""

import numpy as np
import pytest

import kernels
import nn
from dcgan.models import build_discriminator, build_generator, weights_init
from dcgan.trainer import train_step
from helpers import rel_error

NZ, WIDTH, BATCH = 8, 4, 4

# Per step after the first (which allocates the gradients' storage and the
# Adam states and uploads the optimizers' tables): (image size, loss) ->
# (launches, allocations). Syncs inside the step: none, on every entry.
BUDGETS = {
    (16, "bce"): (121, 122),
    (16, "bce-logits"): (121, 122),
    (64, "bce"): (225, 242),
}
# Reading a step's statistics (the progress bar, log.csv) afterwards: one copy.
READ_COPIES = 1


def _gpu_backend(name):
    reason = kernels.why_unavailable(name)
    if reason is not None:
        pytest.skip(f"backend {name!r} unavailable: {reason}")
    return kernels.get_backend(name)


def _step_traffic(name, image, loss, steps=2):
    """The Traffic of the last of `steps` training steps, and of reading its statistics."""
    B = _gpu_backend(name)
    logits = loss == "bce-logits"
    with nn.use_backend(name):
        nn.manual_seed(1)
        G = build_generator(nn, NZ, WIDTH, 3, image)
        D = build_discriminator(nn, 3, WIDTH, image, sigmoid=not logits)
        G.apply(weights_init)
        D.apply(weights_init)
        optG, optD = (nn.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (G, D))
        criterion = nn.BCEWithLogitsLoss() if logits else nn.BCELoss()
        for _ in range(steps):
            real = nn.rand(BATCH, 3, image, image) * 2 - 1
            noise = nn.randn(BATCH, NZ, 1, 1)
            with B.count_traffic() as step:
                stats = train_step(G, D, optG, optD, criterion, real, noise, logits)
            with B.count_traffic() as read:
                values = dict(stats)
    assert all(np.isfinite(v) for v in values.values()), values
    return step, read


# The Triton interpreter is slow (seconds per step at 16x16): it runs the
# small shape; the CUDA emulator also runs the DCGAN depth.
CASES = [("cupy", 16, "bce"), ("cupy", 16, "bce-logits"), ("cupy", 64, "bce"),
         ("triton", 16, "bce")]


@pytest.mark.parametrize("name,image,loss", CASES)
def test_training_step_stays_within_its_budget(name, image, loss):
    step, read = _step_traffic(name, image, loss)
    launches, allocations = BUDGETS[(image, loss)]
    assert step.d2h == 0, f"{step.d2h} device-to-host copies inside the step (budget 0)"
    assert step.h2d == 0, f"{step.h2d} host-to-device uploads inside the step (budget 0)"
    assert len(step.launches) <= launches, (
        f"{len(step.launches)} launches per step, budget {launches}: {step.launches}")
    assert step.allocations <= allocations, (
        f"{step.allocations} allocations per step after warm-up, budget {allocations}")
    assert read.d2h == READ_COPIES and read.h2d == 0, read


def test_counting_sees_every_kind_of_traffic():
    """The counters cannot pass by seeing nothing: a known mix of each."""
    B = _gpu_backend("cupy")
    with nn.use_backend("cupy"):
        with B.count_traffic() as outer:
            x = nn.tensor(np.ones((2, 3)))           # 1 upload, 1 allocation
            with B.count_traffic() as inner:
                y = (x + x).sum()                    # 2 launches, 2 allocations
            y.item()                                 # 1 copy to the host
    assert (inner.h2d, inner.d2h, inner.allocations) == (0, 0, 2) and len(inner.launches) == 2
    assert (outer.h2d, outer.d2h, outer.allocations) == (1, 1, 3) and len(outer.launches) == 2


# ------------------------------------------- fused batch norm + activation
ACTIVATIONS = [lambda: nn.ReLU(True), lambda: nn.LeakyReLU(0.2, inplace=True),
               lambda: nn.LeakyReLU(-0.3)]


def _bn_act(fused, make_act, dtype, training, seed):
    nn.manual_seed(seed)
    bn, act = nn.BatchNorm2d(3, dtype=dtype), make_act()
    rng = np.random.default_rng(seed)
    with nn.no_grad():
        bn.weight.copy_(nn.tensor(rng.uniform(0.5, 1.5, 3), dtype=dtype))
        bn.bias.copy_(nn.tensor(rng.uniform(-0.5, 0.5, 3), dtype=dtype))
    bn.train(training)
    model = nn.Sequential(bn, act)
    return (model if fused else (lambda x: act(bn(x)))), bn, rng


@pytest.mark.parametrize("make_act", ACTIVATIONS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", ["cupy", "triton", "numpy"])
def test_sequential_fuses_batch_norm_and_activation_with_identical_results(
        name, make_act, training, dtype, seed):
    if name != "numpy":
        _gpu_backend(name)
    with nn.use_backend(name) as B:
        got = []
        for fused in (True, False):
            model, bn, rng = _bn_act(fused, make_act, dtype, training, seed)
            x = nn.tensor(rng.uniform(-2, 2, (5, 3, 7, 9)), dtype=dtype, requires_grad=True)
            dy = nn.tensor(rng.standard_normal((5, 3, 7, 9)), dtype=dtype)
            counted = B.count_traffic() if hasattr(B, "count_traffic") else None
            if counted is not None:
                with counted as traffic:
                    y = model(x)
                fused_kernel = not any(n.startswith("act_") or n.startswith("_act_")
                                       for n in traffic.launches)
                assert fused_kernel == fused, traffic.launches
            else:
                y = model(x)
            y.backward(dy)
            got.append([a.numpy() for a in (y, x.grad, bn.weight.grad, bn.bias.grad,
                                            bn.running_mean, bn.running_var)])
        for what, a, b in zip(("y", "dx", "dweight", "dbias", "running_mean", "running_var"),
                              *got):
            assert np.array_equal(a, b), f"{what}: fused and unfused differ"


@pytest.mark.parametrize("make_act", ACTIVATIONS)
@pytest.mark.parametrize("name", ["cupy", "numpy"])
def test_fused_batch_norm_activation_double_backward_matches_unfused(name, make_act, seed):
    """create_graph through the fused op: its recorded backward is the
    composition's, so second derivatives agree (WGAN-GP's penalty needs them)."""
    if name != "numpy":
        _gpu_backend(name)
    with nn.use_backend(name):
        got = []
        for fused in (True, False):
            model, bn, rng = _bn_act(fused, make_act, nn.float64, True, seed)
            x = nn.tensor(rng.uniform(-2, 2, (4, 3, 3, 5)), dtype=nn.float64, requires_grad=True)
            v = nn.tensor(rng.standard_normal((4, 3, 3, 5)), dtype=nn.float64)
            y = model(x)
            gx, = nn.autograd.grad((y * y).sum(), x, create_graph=True)
            (gx * v).sum().backward()
            got.append([a.numpy() for a in (gx, x.grad, bn.weight.grad, bn.bias.grad)])
        for what, a, b in zip(("grad", "dx of grad", "dweight of grad", "dbias of grad"), *got):
            assert rel_error(a, b) <= 1e-12, what


def test_wgan_gp_steps_make_no_host_copy():
    """The critic step (with its create_graph penalty) and the generator step
    read nothing back either; their statistics are read afterwards in one copy."""
    from dcgan.trainer import WganGp
    B = _gpu_backend("cupy")
    with nn.use_backend("cupy"):
        nn.manual_seed(2)
        G = build_generator(nn, NZ, WIDTH, 1, 16)
        D = build_discriminator(nn, 1, WIDTH, 16, sigmoid=False, norm="layer")
        optG, optD = (nn.optim.Adam(m.parameters(), lr=1e-4, betas=(0.0, 0.9)) for m in (G, D))
        schedule = WganGp(G, D, optG, optD, n_critic=2)
        for step in range(4):  # critic-only steps and critic + generator steps
            real, noise = nn.rand(BATCH, 1, 16, 16) * 2 - 1, nn.randn(BATCH, NZ, 1, 1)
            with B.count_traffic() as traffic:
                stats = schedule.step(real, noise)
            with B.count_traffic() as read:
                values = dict(stats)
            if step >= 2:  # after each optimizer's first step (its table's upload)
                assert traffic.d2h == traffic.h2d == 0, (step, traffic)
            assert read.d2h == 1 and read.h2d == 0, read
            assert (values["loss_g"] is None) == (step % 2 == 0), values
            assert values["wasserstein"] == values["d_real"] - values["d_fake"]


def test_gradient_storage_is_kept_but_never_overwritten_under_a_holder():
    """On a GPU backend a parameter's gradient stays at one address from step
    to step (so the optimizer table is uploaded once), but a gradient somebody
    still holds is never written into."""
    B = _gpu_backend("cupy")
    with nn.use_backend("cupy"):
        w = nn.Parameter(nn.tensor(np.ones(3)))
        address = lambda: B.runtime.address(w.grad.data)  # noqa: E731
        (w * 2.0).sum().backward()
        first = address()
        (w * 3.0).sum().backward()                  # accumulated in place
        assert address() == first and np.array_equal(w.grad.numpy(), [5.0] * 3)
        w.grad = None
        (w * 2.0).sum().backward()                  # the storage again
        assert address() == first and np.array_equal(w.grad.numpy(), [2.0] * 3)
        held = w.grad
        w.grad = None
        (w * 7.0).sum().backward()                  # held: new storage
        assert np.array_equal(held.numpy(), [2.0] * 3) and address() != first
        again = w.grad
        (w * 1.0).sum().backward()                  # held: a new sum, not in place
        assert np.array_equal(again.numpy(), [7.0] * 3)
        assert np.array_equal(w.grad.numpy(), [8.0] * 3)
