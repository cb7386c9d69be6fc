"""Host-side pieces the GPU backends' launchers share: argument checks that
name the op, and the integer arithmetic of grids and splits.

Launch plans. A launcher module's tuning constants (block sizes, grid
caps, split targets) are declared once per device profile in a `Plan`:
"gpu", what a GPU runs, and "simulator", the stated allowance where a CPU
simulator (Triton's interpreter, the CUDA emulator) would be too slow with
the GPU value, each with its reason. The module's globals hold the active
profile's values (the machine's own at import); `use_profile("gpu")` gives
every plan its GPU values for a while, so the simulators run the GPU plans
(the tests of kernels/... under the GPU profile, benchmarks/aot.py and
inspect_kernel.py record them). The launchers' planning functions are then
pure functions of the shapes and the active profile.

Both the Triton launchers (kernels/triton/) and the CUDA C launchers
(kernels/cuda/) call these, so a bad argument gets the same message whichever
backend runs, and both backends split work identically (the split-K factor
of a weight gradient, for one, is a pure function of the shapes).
"""

import contextlib
import sys

import numpy as np

INT32_LIMIT = 2 ** 31  # kernels index with int32; launchers refuse larger arrays

# Split-K for the conv weight gradient: the output (K x C*KH*KW) is small and
# the reduction (N*OH*OW) long, so the reduction is cut into S chunks.
SPLITK_TARGET = 264      # programs to aim for: 2 waves of an H100's 132 SMs
SPLITK_MIN_CHUNK = 256   # reduction elements per split, at least
SPLITK_MAX = 256         # bounds the workspace (S, K, C*KH*KW)


def cdiv(a, b):
    return -(-a // b)


def next_pow2(n):
    return 1 << max(0, int(n) - 1).bit_length()


def clamp_pow2(n, lo, hi):
    """The power of two >= n, clamped to [lo, hi]."""
    return max(lo, min(hi, next_pow2(max(int(n), 1))))


def splitk(P, tiles, block_p):
    """(S, CHUNK) for a reduction of length P over `tiles` output tiles:
    about SPLITK_TARGET programs, no chunk under SPLITK_MIN_CHUNK, CHUNK a
    multiple of block_p."""
    S = max(1, min(cdiv(SPLITK_TARGET, tiles), P // SPLITK_MIN_CHUNK, SPLITK_MAX))
    return chunked(P, S, block_p)


def chunked(P, S, block_p):
    """(S', CHUNK): P cut into at most S chunks of a multiple of block_p, none empty."""
    chunk = max(1, cdiv(cdiv(P, S), block_p)) * block_p
    return max(1, cdiv(P, chunk)), chunk


def splitk_plan(op, P, K, R, tiles, block_p, splits=None):
    """(S, CHUNK) for a split-K weight gradient with a (S, K, R) workspace:
    the heuristic `splitk`, or `splits` forced (tests), checked for int32."""
    if splits is None:
        S, chunk = splitk(P, tiles, block_p)
    else:
        S, chunk = chunked(P, max(1, int(splits)), block_p)
    if S * K * R >= INT32_LIMIT:
        fail(op, f"split-K workspace of {S * K * R} elements; int32 indexing allows < 2**31")
    return S, chunk


def fail(op, msg):
    raise ValueError(f"{op}: {msg}")


def _is_int(e):
    return isinstance(e, (int, np.integer)) and not isinstance(e, bool)


def check_pairs(op, stride, padding, dilation):
    """((sh, sw), (ph, pw), (dh, dw)) as ints, or a ValueError naming op."""
    out = []
    for name, v, lo in (("stride", stride, 1), ("padding", padding, 0),
                        ("dilation", dilation, 1)):
        if not isinstance(v, (tuple, list)) or len(v) != 2 or not all(map(_is_int, v)):
            fail(op, f"{name} must be an (h, w) pair of ints, got {v!r}")
        if min(v) < lo:
            fail(op, f"{name} must be >= {lo}, got {tuple(v)}")
        out.append((int(v[0]), int(v[1])))
    return out


def check_hw(op, name, v):
    if (not isinstance(v, (tuple, list)) or len(v) != 2 or not all(map(_is_int, v))
            or min(v) < 1):
        fail(op, f"{name} must be an (h, w) pair of positive ints, got {v!r}")
    return int(v[0]), int(v[1])


def require_contiguous(op, *arrays):
    for a in arrays:
        if a is not None and not a.flags.c_contiguous:
            fail(op, f"expected C-contiguous arrays (got strides {a.strides})")


def check_arrays(op, **arrays):
    """The one float dtype that every non-None array shares; each must be
    C-contiguous and small enough for int32 indexing."""
    dtype = None
    for name, a in arrays.items():
        if a is None:
            continue
        if a.dtype not in (np.float32, np.float64):
            fail(op, f"{name} must be float32 or float64, got {a.dtype}")
        if dtype is not None and a.dtype != dtype:
            fail(op, f"all arrays must share one dtype, got {dtype} and {a.dtype} ({name})")
        dtype = a.dtype
        if a.size >= INT32_LIMIT:
            fail(op, f"{name} has {a.size} elements; int32 indexing allows < 2**31")
    require_contiguous(op, *arrays.values())
    return dtype


def check_ndim(op, name, a, ndim):
    if a.ndim != ndim:
        fail(op, f"{name} must be {ndim}-D, got shape {tuple(a.shape)}")


def check_size(op, name, n):
    if n >= INT32_LIMIT:
        fail(op, f"{name} has {n} elements; int32 indexing allows < 2**31")


# ------------------------------------------------------------- batch norm
# The activation a batch-norm launcher can fuse, as the kernels' code for it.
BN_ACTIVATIONS = {None: 0, "relu": 1, "leaky_relu": 2}


def bn_activation_code(activation):
    """The kernels' code for activation None, "relu" or "leaky_relu"."""
    if activation not in BN_ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected 'relu' or 'leaky_relu'")
    return BN_ACTIVATIONS[activation]


def check_batch_norm(op, x, dy=None, **per_channel):
    """(dtype, N, C, H*W) for a batch-norm launch on x (N, C, H, W): every
    array one float dtype, contiguous, int32-indexable; dy shaped like x;
    each per-channel array (weight, running_mean, ...) of shape (C,)."""
    dtype = check_arrays(op, x=x, dy=dy, **per_channel)
    check_ndim(op, "x", x, 4)
    if dy is not None and dy.shape != x.shape:
        fail(op, f"dy has shape {tuple(dy.shape)}, x has {tuple(x.shape)}")
    N, C, H, W = (int(e) for e in x.shape)
    for name, a in per_channel.items():
        if a is not None and tuple(a.shape) != (C,):
            fail(op, f"{name} must have shape ({C},) for {C} channels, got {tuple(a.shape)}")
    return dtype, N, C, H * W


# ------------------------------------------------------------- launch plans
PROFILES = ("gpu", "simulator")
PLANS = []  # every Plan, in import order


class Plan:
    """The profile-dependent constants of launcher module `module`.

    gpu: every constant's value on a GPU. simulator: the allowance, the
    subset that differs under a simulator, with `why` saying why (speed:
    the interpreter pays per program and per operation, not per element).
    The module's globals are set to the active profile's values."""

    def __init__(self, module, simulated, gpu, simulator, why):
        if not set(simulator) <= set(gpu):
            raise ValueError(f"{module}: simulator allowance for unknown constants "
                             f"{sorted(set(simulator) - set(gpu))}")
        self.module = sys.modules[module]
        self.gpu, self.simulator, self.why = dict(gpu), {**gpu, **simulator}, why
        self.allowance = dict(simulator)
        self.machine = "simulator" if simulated else "gpu"
        PLANS.append(self)
        self.apply(self.machine)

    def values(self, profile):
        if profile not in PROFILES:
            raise ValueError(f"unknown device profile {profile!r}; expected one of {PROFILES}")
        return dict(self.gpu if profile == "gpu" else self.simulator)

    def apply(self, profile):
        for name, value in self.values(profile).items():
            setattr(self.module, name, value)

    def current(self, *names):
        """The module's current values of `names` (for its own globals)."""
        return tuple(getattr(self.module, n) for n in names)

    def constants(self, profile=None):
        """{name: value} of `profile`, or the module's current values (the
        active profile, or a test's monkeypatch) when profile is None."""
        if profile is not None:
            return self.values(profile)
        return {n: getattr(self.module, n) for n in self.gpu}


@contextlib.contextmanager
def use_profile(profile, plans=None):
    """Give every plan (or those in `plans`) the constants of `profile` for
    the block; yields the list of changes as text. The values are restored
    after, including any a test had monkeypatched."""
    plans = PLANS if plans is None else plans
    saved, changes = [], []
    for p in plans:
        for name, value in p.values(profile).items():
            old = getattr(p.module, name)
            saved.append((p.module, name, old))
            if old != value:
                changes.append(f"{p.module.__name__.split('.')[-1]}.{name} {old!r} -> {value!r}")
    for p in plans:
        p.apply(profile)
    try:
        yield changes
    finally:
        for module, name, value in reversed(saved):
            setattr(module, name, value)
