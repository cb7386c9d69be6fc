"""The CUDA-graph path of the training step (dcgan.trainer.CapturedStep), on the CPU.

No GPU here, so the graphs are the rehearsal (RehearsedGraphs): each replay
re-runs the captured segment and checks what a real graph relies on (no host
transfer inside, the same kernels in the same order, buffers that do not
move). What these tests hold: the captured path gives exactly the eager
step's results (statistics, weights, BatchNorm buffers and counters), and a
segment that would break a graph is refused with a message saying why.
"""

import numpy as np
import pytest

import kernels
import nn
from dcgan.models import build_discriminator, build_generator, weights_init
from dcgan.trainer import CapturedStep, RehearsedGraphs, train_step

BACKEND = "cupy"  # the backend whose kernels CUDA graphs capture (CuPy's stream)
NZ, NC, SIZE, BATCH = 8, 1, 16, 4


@pytest.fixture(autouse=True)
def cupy_backend():
    reason = kernels.why_unavailable(BACKEND)
    if reason is not None:
        pytest.skip(f"backend {BACKEND!r} unavailable: {reason}")
    with nn.use_backend(BACKEND):
        yield


def _models(seed, momentum=0.1):
    nn.manual_seed(seed)
    G = build_generator(nn, NZ, 4, NC, SIZE)
    D = build_discriminator(nn, NC, 4, SIZE)
    G.apply(weights_init)
    D.apply(weights_init)
    for m in list(G.modules()) + list(D.modules()):
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = momentum
    opts = [nn.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999)) for net in (G, D)]
    return G, D, *opts


def _batches(seed, n):
    rng = np.random.default_rng(seed)
    return [(rng.uniform(-1, 1, (BATCH, NC, SIZE, SIZE)).astype(np.float32),
             rng.standard_normal((BATCH, NZ, 1, 1)).astype(np.float32)) for _ in range(n)]


def _state(G, D):
    return {f"{w}.{k}": v.numpy() for w, net in (("G", G), ("D", D))
            for k, v in net.state_dict().items()}


@pytest.mark.parametrize("warmup", [1, 2])
def test_captured_step_gives_the_eager_steps_results(seed, warmup):
    batches = _batches(seed, 4)
    G, D, optG, optD = _models(seed)
    eager = [dict(train_step(G, D, optG, optD, nn.BCELoss(), nn.tensor(r), nn.tensor(z)))
             for r, z in batches]
    cG, cD, coptG, coptD = _models(seed)
    step = CapturedStep(cG, cD, coptG, coptD, nn.BCELoss(), (BATCH, NC, SIZE, SIZE),
                        (BATCH, NZ, 1, 1), warmup=warmup, graphs=RehearsedGraphs(
                            nn.backend.current()))
    captured = [dict(step(nn.tensor(r), nn.tensor(z))) for r, z in batches]
    assert step._replays is not None  # the last steps were replays
    assert captured == eager
    want, got = _state(G, D), _state(cG, cD)
    assert list(got) == list(want)
    for k in want:
        assert np.array_equal(got[k], want[k]), k  # weights, running stats, batch counters


def test_a_segment_that_copies_to_the_host_is_refused(seed):
    G, D, optG, optD = _models(seed)

    class ReadingLoss(nn.BCELoss):
        def forward(self, input, target):
            input.sum().item()  # a host sync: a graph cannot hold one
            return super().forward(input, target)

    step = CapturedStep(G, D, optG, optD, ReadingLoss(), (BATCH, NC, SIZE, SIZE),
                        (BATCH, NZ, 1, 1), warmup=1, graphs=RehearsedGraphs(nn.backend.current()))
    (r, z), = _batches(seed, 1)
    step(nn.tensor(r), nn.tensor(z))  # eager: fine
    with pytest.raises(RuntimeError, match=r"CapturedStep: the captured segment copies between "
                                           r"host and device \(2 to the host"):  # D's two losses
        step(nn.tensor(r), nn.tensor(z))


def test_a_replay_with_other_kernels_is_refused(seed):
    G, D, optG, optD = _models(seed)
    calls = []

    class ChangingLoss(nn.BCELoss):
        def forward(self, input, target):
            calls.append(1)
            # Losses 1-3: the eager step; 4-6: the capture; 7-: the replays,
            # with one more kernel than was captured.
            if len(calls) > 6:
                input = input * 1.0
            return super().forward(input, target)

    step = CapturedStep(G, D, optG, optD, ChangingLoss(), (BATCH, NC, SIZE, SIZE),
                        (BATCH, NZ, 1, 1), warmup=1, graphs=RehearsedGraphs(nn.backend.current()))
    (r, z), = _batches(seed, 1)
    step(nn.tensor(r), nn.tensor(z))
    with pytest.raises(RuntimeError, match="launched other kernels than the captured segment"):
        step(nn.tensor(r), nn.tensor(z))


def test_cumulative_batch_norm_is_refused(seed):
    G, D, optG, optD = _models(seed, momentum=None)
    with pytest.raises(ValueError, match=r"CapturedStep: BatchNorm2d\(momentum=None\)"):
        CapturedStep(G, D, optG, optD, nn.BCELoss(), (BATCH, NC, SIZE, SIZE), (BATCH, NZ, 1, 1))
