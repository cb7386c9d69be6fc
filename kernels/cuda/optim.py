"""Multi-tensor optimizer steps (torch.optim.Adam and SGD): launchers for the
CUDA C kernels of optim.cu, with the public API of kernels/triton/optim.py.

Each call is ONE launch over every tensor of the group. The launcher builds
the tensor table on the host (int64: device addresses from
runtime.address, numel, each tensor's first block, per-tensor scalars as
float64 bits), copies it to the device in one transfer (runtime.xp.asarray)
the first time it is needed (tables are cached by content: see _cached_table),
and launches a 1-D grid over the blocks of all tensors; optim.cu describes
the table and the kernels. Bias corrections are computed here in Python
floats, exactly as torch and the NumPy backend compute them.
"""


import numpy as np

from .. import launch_checks as lc
from ..optim_tables import TableCache, adam_scalars
from . import runtime

THREADS = 256  # threads per block (kThreads in optim.cu)
# Elements per block, a multiple of THREADS: 4 per thread on a GPU; larger
# under emulation, which pays per block. The updates do not depend on it.
PLAN = lc.Plan(__name__, runtime.EMULATE, gpu={"CHUNK": 1024}, simulator={"CHUNK": 8192},
               why="the emulator pays per block, not per element")
(CHUNK,) = PLAN.current("CHUNK")

_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
MODULE = runtime.Module("optim.cu", [f"{k}<{c}>" for k in ("adam_step", "sgd_step")
                                     for c in _TYPES.values()])


def _check(op, params, named_lists):
    """The C type name shared by every array of the call."""
    arrays = {}
    for name, lst in (("params", params),) + tuple(named_lists):
        if len(lst) != len(params):
            lc.fail(op, f"{name} has {len(lst)} entries for {len(params)} parameters")
        for i, a in enumerate(lst):
            if a is None:
                continue
            if a.shape != params[i].shape:
                lc.fail(op, f"{name}[{i}] has shape {a.shape}, parameter {i} has "
                            f"{params[i].shape}")
            arrays[f"{name}[{i}]"] = a
    return _TYPES[np.dtype(lc.check_arrays(op, **arrays))]


def _blocks(op, params):
    """numel per tensor, each tensor's first block, and the total block count."""
    numel = np.array([p.size for p in params], dtype=np.int64)
    nblocks = -(-numel // CHUNK)
    starts = np.concatenate([[0], np.cumsum(nblocks)[:-1]]).astype(np.int64)
    total = int(nblocks.sum())
    if total >= lc.INT32_LIMIT:
        lc.fail(op, f"{total} blocks exceed the grid's limit")
    return numel, starts, total


def _f64_bits(values):
    """float64 values -> the int64s with the same bits (table rows)."""
    return np.asarray(values, dtype=np.float64).view(np.int64)


def _device_table(rows):
    """Stack int64 rows into one (len(rows) * T,) device array: one copy."""
    host = np.ascontiguousarray(np.stack([np.asarray(r, dtype=np.int64) for r in rows]))
    return runtime.xp.asarray(host.ravel())


# Uploaded once per distinct table (kernels/optim_tables.py).
_cached_table = TableCache(_device_table)


def adam_step_(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps,
               weight_decay):
    """torch.optim.Adam (amsgrad=False) over every tensor of the lists, in place.
    steps[i] is parameter i's step count after this step (1 on the first)."""
    if not params:
        return
    op = "adam_step_"
    ctype = _check(op, params, (("grads", grads), ("exp_avgs", exp_avgs),
                                ("exp_avg_sqs", exp_avg_sqs)))
    if len(steps) != len(params):
        lc.fail(op, f"steps has {len(steps)} entries for {len(params)} parameters")
    if any(g is None or m is None or v is None
           for g, m, v in zip(grads, exp_avgs, exp_avg_sqs)):
        lc.fail(op, "every parameter needs a grad, exp_avg and exp_avg_sq")
    lr, beta1, beta2 = float(lr), float(beta1), float(beta2)
    eps, weight_decay = float(eps), float(weight_decay)
    numel, starts, total = _blocks(op, params)
    if total == 0:
        return
    per_tensor, step_size, bc2_sqrt = adam_scalars(steps, lr, beta1, beta2)
    rows = [[runtime.address(a) for a in params], [runtime.address(a) for a in grads],
            [runtime.address(a) for a in exp_avgs], [runtime.address(a) for a in exp_avg_sqs],
            numel, starts]
    if per_tensor:  # rare (parameters that joined late): a table for this call alone
        table = _device_table(rows + [_f64_bits(step_size), _f64_bits(bc2_sqrt)])
    else:
        table = _cached_table(rows)
    MODULE.launch(f"adam_step<{ctype}>", (total,), (THREADS,), (
        table, np.int32(len(params)), np.int32(CHUNK), np.float64(beta2),
        np.float64(1 - beta1), np.float64(1 - beta2), np.float64(eps),
        np.float64(weight_decay), np.int32(weight_decay != 0), np.int32(per_tensor),
        np.float64(step_size[0]), np.float64(bc2_sqrt[0])))


def sgd_step_(params, grads, momentum_buffers, first_steps, lr, momentum, dampening,
              weight_decay, nesterov):
    """torch.optim.SGD over every tensor of the lists, in place.
    momentum_buffers[i] is None when momentum == 0."""
    if not params:
        return
    op = "sgd_step_"
    lr, momentum = float(lr), float(momentum)
    dampening, weight_decay = float(dampening), float(weight_decay)
    has_momentum = momentum != 0
    bufs = list(momentum_buffers) if has_momentum else [None] * len(params)
    ctype = _check(op, params, (("grads", grads), ("momentum_buffers", bufs)))
    if any(g is None for g in grads):
        lc.fail(op, "every parameter needs a grad")
    if has_momentum and any(b is None for b in bufs):
        lc.fail(op, "momentum != 0 needs a momentum buffer for every parameter")
    if has_momentum and len(first_steps) != len(params):
        lc.fail(op, f"first_steps has {len(first_steps)} entries for {len(params)} parameters")
    numel, starts, total = _blocks(op, params)
    if total == 0:
        return
    first = [1 if f else 0 for f in first_steps] if has_momentum else [0] * len(params)
    table = _cached_table([
        [runtime.address(a) for a in params], [runtime.address(a) for a in grads],
        [runtime.address(b) if b is not None else 0 for b in bufs],
        numel, starts, first])
    MODULE.launch(f"sgd_step<{ctype}>", (total,), (THREADS,), (
        table, np.int32(len(params)), np.int32(CHUNK), np.float64(lr), np.float64(momentum),
        np.float64(1 - dampening), np.float64(weight_decay), np.int32(has_momentum),
        np.int32(bool(nesterov) and has_momentum), np.int32(weight_decay != 0)))
