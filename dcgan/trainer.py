"""The training steps: pytorch/examples' DCGAN step, and WGAN-GP's critic and generator steps.

    stats = train_step(netG, netD, optG, optD, criterion, real, noise, logits=False)
    wgan = WganGp(netG, netD, optG, optD, n_critic=5, lambda_gp=10.0)
    stats = wgan.step(real, noise)         # a critic step; every n_critic-th, a G step too

train_step (--loss bce, bce-logits) is exactly pytorch/examples' loop:

(1) Update D: maximise log D(x) + log(1 - D(G(z))), with the real batch
labelled 1 and G(z), detached, labelled 0; the two backward passes
accumulate into D's gradients before one Adam step.
(2) Update G: maximise log D(G(z)) by labelling the same G(z) 1, through D.
The returned statistics are the ones the progress bar shows: Loss_D, Loss_G,
D(x) and D(G(z)) before and after the G update. With `logits=True`, D
outputs logits (for BCEWithLogitsLoss) and the D(...) statistics go through
a sigmoid so that they mean the same thing.
"""

import contextlib
import functools
from collections.abc import Mapping

import numpy as np

import nn
import nn.functional as F
from nn.losses import RangeChecks, deferred_range_checks
from nn.tensor import host_floats

# What the statistics of each loss mean, for the progress bar, log.csv and the plot.
WGAN_LEGEND = ("one iteration = one critic step (one real batch), and after every n_critic "
               "of them one generator step; "
               "W = D(x) - D(G(z)), the critic's Wasserstein estimate; "
               "GP = mean((||grad_x D(x_hat)||_2 - 1)^2) on interpolates x_hat; "
               "Loss_D = -W + lambda_gp * GP (the critic's loss); "
               "Loss_G = -D(G(z)).mean() (the generator's, at its last step)")

REAL_LABEL, FAKE_LABEL = 1.0, 0.0


class StepStats(Mapping):
    """A step's statistics, {name: float}, kept on the device until read.

    Reading a value back waits for the device, so the step itself reads
    nothing: it hands over one-element device arrays (the sum of several for
    loss_d) and its deferred BCE range checks (nn.losses.RangeChecks, one per
    loss), and the first access reads all of them in one device-to-host copy
    (nn.tensor.host_floats). A loss whose BCE saw a non-finite D output is
    reported as NaN, so the caller's divergence check sees it (a non-finite
    probability is divergence, not the range error); a finite value outside
    [0, 1] raises the range error there."""

    def __init__(self, backend, parts, checks=None, host=None, derived=None):
        """parts: {name: [device arrays]}, the value their sum (Python floats,
        as `.item()` gives); checks: {name: RangeChecks} whose non-finite
        inputs make that value NaN; host: {name: value} known already;
        derived: {name: function of the other values} (computed on the host)."""
        self._backend, self._parts, self._checks = backend, parts, checks or {}
        self._host, self._derived = dict(host or {}), dict(derived or {})
        self._values = None

    def _names(self):
        return [*self._parts, *self._derived, *(n for n in self._host if n not in self._parts)]

    def _read(self):
        names = list(self._parts)
        arrays = [a for n in names for a in self._parts[n]]
        check_arrays = [c.device_arrays() for c in self._checks.values()]
        floats = host_floats(self._backend, arrays + [a for c in check_arrays for a in c])
        values, k = {}, 0
        for n in names:
            value, *rest = floats[k:k + len(self._parts[n])]
            for v in rest:  # Python floats, summed as `a.item() + b.item()` was
                value += v
            values[n] = value
            k += len(self._parts[n])
        for n, c, mine in zip(self._checks, self._checks.values(), check_arrays):
            if c.read(floats[k:k + len(mine)]):
                values[n] = float("nan")
            k += len(mine)
        for n, fn in self._derived.items():
            values[n] = fn(values)
        for n, v in self._host.items():
            values.setdefault(n, v)
        self._values = values
        self._parts = self._checks = self._derived = self._host = None

    def __getitem__(self, name):
        if self._values is None:
            self._read()
        return self._values[name]

    def __iter__(self):
        return iter(self._values if self._values is not None else self._names())

    def __len__(self):
        return len(self._values if self._values is not None else self._names())

    def extended(self, parts=None, **host):
        """A StepStats with more device parts and host values (unread)."""
        if self._values is not None:
            return StepStats(self._backend, parts or {}, host={**self._values, **host})
        return StepStats(self._backend, {**self._parts, **(parts or {})}, self._checks,
                         {**self._host, **host}, self._derived)

    def __repr__(self):
        return f"StepStats({dict(self)})"


def _mean_probability(out, logits):
    """D's mean output as a probability: a one-element device array."""
    with nn.no_grad():
        return (F.sigmoid(out) if logits else out).mean().data


def train_step(netG, netD, optG, optD, criterion, real, noise, logits=False, info=None):
    """One iteration of pytorch/examples' loop; returns its StepStats (read
    lazily: the step makes no device-to-host copy). info: (CodeLoss, the
    batch's one-hot codes) for InfoGAN's mutual-information term, whose Q
    head optG must also update."""
    o = {}
    _discriminator_part(netG, netD, criterion, real, noise, logits, o)
    optD.step()
    _generator_part(netG, netD, criterion, logits, o, info)
    optG.step()
    return _step_stats(real._backend, o)


# The step in its parts, cut at the optimizer steps (CapturedStep captures
# each part as a graph). `o` collects what the later parts and the
# statistics need.
def _discriminator_part(netG, netD, criterion, real, noise, logits, o):
    """(1) D: real batch, then a detached fake batch (gradients accumulate)."""
    b = real.shape[0]
    o["checks_d"], o["checks_g"] = RangeChecks(), RangeChecks()
    o["real_label"] = nn.full((b,), REAL_LABEL, dtype=real.dtype)
    fake_label = nn.full((b,), FAKE_LABEL, dtype=real.dtype)
    netD.zero_grad()
    out = netD(real)
    with deferred_range_checks(o["checks_d"]):
        o["errD_real"] = criterion(out, o["real_label"])
    o["errD_real"].backward()
    o["d_x"] = _mean_probability(out, logits)
    o["fake"] = netG(noise)
    out = netD(o["fake"].detach())
    with deferred_range_checks(o["checks_d"]):
        o["errD_fake"] = criterion(out, fake_label)
    o["errD_fake"].backward()
    o["d_g_z1"] = _mean_probability(out, logits)


def _generator_part(netG, netD, criterion, logits, o, info=None):
    """(2) G: the fake batch labelled real, gradients through D into G (and,
    with InfoGAN's code, lambda * the code loss through Q and D's body)."""
    netG.zero_grad()
    if info is None:
        out = netD(o["fake"])
    else:
        code_loss, code = info
        code_loss.netQ.zero_grad()
        features = netD.features(o["fake"])
        out = netD.head(features)
        o["info"] = code_loss(features, code)
    with deferred_range_checks(o["checks_g"]):
        o["errG"] = criterion(out, o["real_label"])
    (o["errG"] if info is None else o["errG"] + code_loss.lambda_info * o["info"]).backward()
    o["d_g_z2"] = _mean_probability(out, logits)


def _step_stats(backend, o):
    parts = {"loss_d": [o["errD_real"].data, o["errD_fake"].data], "loss_g": [o["errG"].data],
             "d_x": [o["d_x"]], "d_g_z_before": [o["d_g_z1"]], "d_g_z_after": [o["d_g_z2"]]}
    if "info" in o:
        parts["loss_info"] = [o["info"].data]
    return StepStats(backend, parts, {"loss_d": o["checks_d"], "loss_g": o["checks_g"]})


# ============================================================ InfoGAN's code
class CodeLoss:
    """InfoGAN's mutual-information term for a categorical latent code (Chen
    et al. 2016): the cross-entropy of Q's prediction of the code, from D's
    features of G(z, c), against the code c that G was given. Minimising it
    (with G and Q, lambda_info times, beside G's adversarial loss) maximises a
    lower bound on the mutual information between c and G(z, c): each code
    comes to draw one kind of image, so G's samples leave the blends between
    kinds (a digit halfway from a 4 to a 9) that a continuous map of one
    Gaussian must otherwise cross. Unsupervised: no label is used."""

    def __init__(self, netQ, lambda_info=1.0):
        self.netQ, self.lambda_info = netQ, float(lambda_info)

    def __call__(self, features, code):
        return F.cross_entropy(self.netQ(features), code)  # one-hot rows: the float form


def one_hot_code(u, codes):
    """(N, codes) one-hot rows from uniform draws u (N, 1) in [0, 1): code k
    where k / codes <= u < (k + 1) / codes, on u's device (no copy in the
    step: the edges are uploaded once per backend, code size and dtype)."""
    lo, hi, one = _code_edges(u._backend.name, codes, np.dtype(u.dtype).name)
    return nn.where(u >= lo, one, 0.0) - nn.where(u >= hi, one, 0.0)


@functools.lru_cache(maxsize=None)
def _code_edges(backend, codes, dtype):
    with nn.use_backend(backend):
        edges = np.arange(codes + 1, dtype=np.float64) / codes
        return (nn.tensor(edges[None, :-1], dtype=dtype), nn.tensor(edges[None, 1:], dtype=dtype),
                nn.ones(1, 1, dtype=dtype))


def latent(n, nz, codes=0, dtype=None):
    """(z (n, nz, 1, 1), code (n, codes) or None) from the library's seeded
    generator, on the device: N(0, 1) noise, and with codes > 0 InfoGAN's
    categorical code (uniform) as the last `codes` entries of z, one-hot.
    Without a code this is exactly nn.randn(n, nz, 1, 1)."""
    if not codes:
        return nn.randn(n, nz, 1, 1, dtype=dtype), None
    noise = nn.randn(n, nz - codes, 1, 1, dtype=dtype)
    code = one_hot_code(nn.rand(n, 1, dtype=dtype), codes)
    return nn.cat([noise, code.view(n, codes, 1, 1)], 1), code


def host_latent(rng, n, nz, codes=0):
    """float32 z (n, nz, 1, 1) drawn by a NumPy Generator (fixed noise sets
    that leave the library's generator alone): standard normal, and with
    codes > 0 the last `codes` entries replaced by a uniform one-hot code.
    Without a code this is exactly rng.standard_normal((n, nz, 1, 1))."""
    z = rng.standard_normal((n, nz, 1, 1)).astype(np.float32)
    if codes:
        z[:, nz - codes:, 0, 0] = np.eye(codes, dtype=np.float32)[rng.integers(codes, size=n)]
    return z


def generate(netG, noise, bn="batch"):
    """G(noise) as a NumPy array, leaving the model exactly as it was.

    bn="batch" normalises with the batch's statistics (pytorch/examples'
    sample grids, which run G in train mode); bn="eval" uses the running
    statistics. Either way the running statistics are not changed: they are
    restored after a train-mode forward (PRs #804 and #807 of pytorch/examples)."""
    if bn not in ("batch", "eval"):
        raise ValueError(f"generate: bn must be 'batch' or 'eval', got {bn!r}")
    was_training = netG.training
    saved = [(b, b._backend.astype(b.data, b.dtype)) for b in netG.buffers()]
    netG.train(bn == "batch")
    try:
        with nn.no_grad():
            return netG(noise).numpy()
    finally:
        for buf, copy in saved:
            buf._backend.copy_(buf.data, copy)
            buf._bump_version()
        netG.train(was_training)


def wgan_gp_critic_step(netG, netD, optD, real, noise, lambda_gp=10.0, alpha=None):
    """One critic update of WGAN-GP (Gulrajani et al. 2017, Algorithm 1):

        loss = D(G(z)).mean() - D(x).mean() + lambda_gp * ((||grad D(x_hat)||_2 - 1)^2).mean()

    with x_hat = alpha * x + (1 - alpha) * G(z), alpha ~ U[0, 1) per sample
    (drawn with nn.rand from the library's seeded generator unless given,
    shape (N, 1, 1, 1)). G runs without a graph (train mode, so its BatchNorm
    statistics move as in any G forward); D sees x, G(z) and x_hat in that
    order (the order matters under spectral norm: each train-mode forward is
    one power iteration). The penalty's gradient is taken with
    create_graph=True, so the one backward of `loss` differentiates it again
    into D's weights. Returns the critic's statistics (a StepStats: read lazily)."""
    b = real.shape[0]
    netD.zero_grad()
    with nn.no_grad():
        fake = netG(noise)
    d_real = netD(real).mean()
    d_fake = netD(fake).mean()
    if alpha is None:
        alpha = nn.rand(b, 1, 1, 1, dtype=real.dtype)
    with nn.no_grad():
        x_hat = alpha * real + (1 - alpha) * fake
    x_hat.requires_grad_(True)
    grad_x, = nn.autograd.grad(netD(x_hat).sum(), x_hat, create_graph=True)
    gp = ((grad_x.view(b, -1).norm(2, dim=1) - 1) ** 2).mean()
    loss = d_fake - d_real + lambda_gp * gp
    loss.backward()
    optD.step()
    return StepStats(real._backend, {"loss_d": [loss.data], "gp": [gp.data],
                                     "d_real": [d_real.data], "d_fake": [d_fake.data]},
                     derived={"wasserstein": lambda v: v["d_real"] - v["d_fake"]})


def wgan_gp_generator_step(netG, netD, optG, noise):
    """One generator update of WGAN-GP: minimise -D(G(z)).mean(). D's
    gradients this leaves behind are cleared by the next critic step.
    Returns the loss as a one-element tensor (unread: no copy to the host)."""
    netG.zero_grad()
    loss = -netD(netG(noise)).mean()
    loss.backward()
    optG.step()
    return loss


class WganGp:
    """WGAN-GP's schedule: n_critic critic steps per generator step.

    Each call of step() is one critic step on one real batch; the call that
    completes a cycle (the n_critic-th since the last generator step) then
    makes a generator step with `gen_noise` (a tensor, a function returning
    one, or None: nn.randn shaped like `noise`, drawn after the critic's
    alpha). `critic_count` (critic steps since the last generator step) is
    the state that a checkpoint keeps, so a run resumed mid-cycle finishes
    the cycle where the uninterrupted run would have."""

    def __init__(self, netG, netD, optG, optD, n_critic=5, lambda_gp=10.0, critic_count=0,
                 generator_steps=0):
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        self.netG, self.netD, self.optG, self.optD = netG, netD, optG, optD
        self.n_critic, self.lambda_gp = int(n_critic), float(lambda_gp)
        self.critic_count, self.generator_steps = int(critic_count), int(generator_steps)

    def state_dict(self):
        return {"critic_count": self.critic_count, "generator_steps": self.generator_steps}

    def step(self, real, noise, alpha=None, gen_noise=None):
        """A StepStats: the critic's statistics (loss_d, wasserstein, gp, d_real,
        d_fake), loss_g (None when this step made no generator step) and
        g_iter (generator steps so far)."""
        stats = wgan_gp_critic_step(self.netG, self.netD, self.optD, real, noise,
                                    self.lambda_gp, alpha)
        self.critic_count += 1
        loss_g = None
        if self.critic_count >= self.n_critic:
            if gen_noise is None:
                gen_noise = nn.randn(*noise.shape, dtype=noise.dtype)
            elif callable(gen_noise):
                gen_noise = gen_noise()
            loss_g = wgan_gp_generator_step(self.netG, self.netD, self.optG, gen_noise)
            self.critic_count = 0
            self.generator_steps += 1
        if loss_g is None:
            return stats.extended(loss_g=None, g_iter=self.generator_steps)
        return stats.extended({"loss_g": [loss_g.data]}, g_iter=self.generator_steps)


# ================================================================ CUDA graphs
class CapturedStep:
    """train_step replayed from CUDA graphs (for `train.py --cuda-graph`).

        step = CapturedStep(netG, netD, optG, optD, criterion, batch_shape, noise_shape)
        stats = step(real, noise)           # same arguments and StepStats as train_step

    The step is two graphs with the two optimizer steps between them, as
    eager launches: (1) D's forward and backward on the real and the
    detached fake batch (with G's forward), optD.step(); (2) the G update's
    forward and backward through D, optG.step(). The optimizer steps stay
    outside because their bias corrections are launch arguments that change
    every step, which a graph would freeze. Everything the graphs touch is
    static: the batch and noise are copied into buffers made once; the
    parameters, the Adam states and the gradients (nn keeps a parameter's
    gradient storage from step to step on GPU backends) stay where they are;
    the step reads nothing back (tests/test_step_budget.py holds it to 0
    copies) and the optimizer table is uploaded once.

    The first `warmup` calls run eagerly (the memory pool, the table cache and
    the gradient storage settle); the next one captures and replays. What
    the host would have done during a replay is done by this class: each
    BatchNorm's batch counter advances as in the captured forward. A
    StepStats refers to the graphs' output buffers, so it is read (one copy)
    before the next replay overwrites them.

    `graphs` makes the graphs: `cuda_graphs(backend)` on a GPU (CuPy stream
    capture, cupy backend), `RehearsedGraphs` under the simulators, which
    re-runs each segment instead and checks what a graph relies on (no host
    transfer inside, the same kernels in the same order, the same static
    buffers), so CI tests the path that a GPU switches on."""

    def __init__(self, netG, netD, optG, optD, criterion, batch_shape, noise_shape, dtype=None,
                 logits=False, warmup=2, graphs=None):
        bns = [m for net in (netG, netD) for m in net.modules() if type(m).__name__ ==
               "BatchNorm2d" and m.track_running_stats]
        if any(m.momentum is None for m in bns):
            raise ValueError("CapturedStep: BatchNorm2d(momentum=None) changes its factor "
                             "every step, which a captured graph would freeze")
        self.nets, self.opts = (netG, netD), (optG, optD)
        self.criterion, self.logits, self.warmup = criterion, logits, int(warmup)
        self.real = nn.zeros(*batch_shape, dtype=dtype)
        self.noise = nn.zeros(*noise_shape, dtype=dtype)
        self.backend = self.real._backend
        self.graphs = graphs if graphs is not None else default_graphs(self.backend)
        if self.warmup < 1:
            raise ValueError(f"CapturedStep: warmup must be >= 1 (an eager step measures what "
                             f"a replay leaves the host to do), got {warmup}")
        self._bns, self._replays, self._calls, self._last = bns, None, 0, None

    def __call__(self, real, noise):
        if self._last is not None:
            self._last["loss_d"]  # read before the buffers it refers to are overwritten
        with self.graphs.stream():  # everything of the step on the graphs' stream
            self.real.copy_(real)
            self.noise.copy_(noise)
            self._calls += 1
            if self._calls <= self.warmup:
                before = [int(m.num_batches_tracked.item()) for m in self._bns]
                stats = self._eager()
                self._bn_steps = [int(m.num_batches_tracked.item()) - c for m, c in
                                  zip(self._bns, before)]
            else:
                if self._replays is None:
                    self._capture()
                stats = self._replay()
        self.graphs.join()  # later work on the caller's stream waits for the step
        self._last = stats
        return stats

    # The parts of train_step, on the static buffers; the graphs capture these.
    def _d_part(self):
        netG, netD = self.nets
        self._out = {}
        _discriminator_part(netG, netD, self.criterion, self.real, self.noise, self.logits,
                            self._out)

    def _g_part(self):
        netG, netD = self.nets
        _generator_part(netG, netD, self.criterion, self.logits, self._out)

    def _stats(self):
        # Its own copies of the check lists: each replay refills the same arrays.
        o = dict(self._out, checks_d=_copy_checks(self._out["checks_d"]),
                 checks_g=_copy_checks(self._out["checks_g"]))
        return _step_stats(self.backend, o)

    def _eager(self):
        optG, optD = self.opts
        self._d_part()
        optD.step()
        self._g_part()
        optG.step()
        return self._stats()

    def _capture(self):
        # Capturing may run the segments (a warm-up in the graphs' memory
        # pool, the rehearsal's recording run): that is not a training step,
        # so the buffers it moves (BatchNorm's running statistics and batch
        # counters) are put back, in place, where the graphs refer to them.
        saved = [(b, b._backend.astype(b.data, b.dtype)) for net in self.nets
                 for b in net.buffers()]
        d_graph = self.graphs.capture(self._d_part)
        g_graph = self.graphs.capture(self._g_part)
        for buf, copy in saved:
            buf._backend.copy_(buf.data, copy)
            buf._bump_version()
        self._replays = (d_graph, g_graph)

    def _replay(self):
        optG, optD = self.opts
        d_graph, g_graph = self._replays
        d_graph()
        optD.step()
        g_graph()
        optG.step()
        # The host's part of the captured forwards: the batch counters advance
        # as they did in an eager step.
        for m, k in zip(self._bns, self._bn_steps):
            m.num_batches_tracked.data += k
        return self._stats()


def _copy_checks(checks):
    """A RangeChecks with the same entries (the captured ones are replayed)."""
    c = RangeChecks()
    c._pending, c.nonfinite = list(checks._pending), list(checks.nonfinite)
    return c


def default_graphs(backend):
    """The graph maker for `backend`: CUDA graphs on a GPU, the rehearsal under
    the simulators."""
    if getattr(backend, "device", "cpu") == "cuda":
        return cuda_graphs(backend)
    return RehearsedGraphs(backend)


class RehearsedGraphs:
    """Graphs for the simulators: capture() runs the segment once, recording
    its kernels and the buffers it must keep (every parameter's, gradient's
    and optimizer state's array); each replay runs it again and checks that a
    real graph would have been right: no device-to-host or host-to-device
    copy inside, the same kernel sequence, and the same static buffers."""

    def __init__(self, backend):
        self.backend = backend

    def stream(self):
        return contextlib.nullcontext()

    def join(self):
        pass

    def capture(self, segment):
        traffic, statics = self._run(segment)
        launches = list(traffic.launches)

        def replay():
            # A graph runs no host code: the host's state (BatchNorm's batch
            # counters) is left as it was, for CapturedStep to advance.
            host = [(m.num_batches_tracked, int(m.num_batches_tracked.item()))
                    for m in segment.__self__._bns]
            t, s = self._run(segment)
            for counter, value in host:
                counter.fill_(value)
            if t.launches != launches:
                raise RuntimeError("CapturedStep: a replay launched other kernels than the "
                                   "captured segment (a graph would replay the captured ones)")
            if s != statics:
                raise RuntimeError("CapturedStep: a buffer the graph refers to moved between "
                                   "capture and replay")
        return replay

    def _run(self, segment):
        with self.backend.count_traffic() as traffic:
            segment()
        if traffic.d2h or traffic.h2d:
            raise RuntimeError(f"CapturedStep: the captured segment copies between host and "
                               f"device ({traffic.d2h} to the host, {traffic.h2d} to the "
                               f"device); a graph cannot")
        return traffic, _static_addresses(segment.__self__)


def _static_addresses(step):
    """The addresses a captured graph bakes in that must not move: every
    parameter, its gradient, the optimizers' states, the input buffers."""
    address = step.backend.runtime.address
    arrays = [step.real.data, step.noise.data]
    for net in step.nets:
        for p in net.parameters():
            arrays.append(p.data)
            if p.grad is not None:
                arrays.append(p.grad.data)
    for opt in step.opts:
        for state in opt.state.values():
            arrays += [v.data for v in state.values() if hasattr(v, "data")]
    return [address(a) for a in arrays]


def cuda_graphs(backend):  # pragma: no cover - needs a GPU
    """CUDA graphs through CuPy's stream capture (the cupy backend: its kernels
    launch on CuPy's current stream; Triton's launch on torch's)."""
    if backend.name != "cupy":
        raise ValueError(f"CapturedStep: CUDA graphs need the cupy backend (its kernels run on "
                         f"CuPy's stream), not {backend.name!r}")
    return _CupyGraphs()


class _CupyGraphs:  # pragma: no cover - needs a GPU
    """Capture on a side stream with a private memory pool, so that memory the
    graphs use for their temporaries is never handed to other code (as
    torch.cuda.graph's private pool). Everything runs on that stream; the
    segments were warmed up eagerly first, so the pool holds their blocks."""

    def __init__(self):
        import cupy
        self.cupy = cupy
        self._stream = cupy.cuda.Stream(non_blocking=True)
        self.pool = cupy.cuda.MemoryPool()

    def stream(self):
        """The side stream as the current one: the eager parts of the step (the
        input copies, the optimizer steps) are ordered with the replays."""
        return self._stream

    def join(self):
        # The caller's stream waits for the step (no host wait): reading the
        # statistics later, on that stream, sees them.
        self.cupy.cuda.get_current_stream().wait_event(self._stream.record())

    def capture(self, segment):
        cp = self.cupy
        self._stream.synchronize()
        with cp.cuda.using_allocator(self.pool.malloc):
            segment()  # warm-up in the private pool: its blocks exist before capture
            self._stream.synchronize()
            self._stream.begin_capture()
            try:
                segment()
            finally:
                graph = self._stream.end_capture()
        stream = self._stream

        def replay():
            graph.launch(stream)
        return replay
