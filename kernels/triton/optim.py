"""Multi-tensor optimizer steps: one launch updates every parameter of a group.

A DCGAN has ~30 parameter tensors from 64 to ~2M elements; one launch per
tensor (and several per update, as an unfused optimizer does) would cost
more in launch overhead than the update itself. So each call launches ONE
kernel over all tensors, as llm.c's adamw and torch's `_foreach`/fused
optimizers do.

The tensor table. The launcher packs, per tensor i, into one small int64
array (one host-to-device copy):
    rows of device addresses (`common.address`) of param, grad, state...,
    numel, the index of the tensor's first block (an exclusive prefix sum of
    cdiv(numel, BLOCK)), and per-tensor float64 scalars stored as their bits
    (Adam's step size lr / (1 - b1^t) and sqrt(1 - b2^t), since steps[i]
    differ per parameter; SGD's first-step flag).
The grid is 1-D over all blocks of all tensors, so no program idles however
uneven the sizes are. A program finds its tensor by counting the block
starts <= its id (one vector load of the start row: T <= a few hundred), then
turns the table's addresses into typed pointers with
`tl.load(...).to(tl.pointer_type(tl.float32))`, the standard int-to-pointer
cast (under TRITON_INTERPRET=1 pointers are host addresses and the cast is a
bitcast). The element type is a constexpr (all params of a call share it).

_adam_kernel
    torch.optim.Adam (amsgrad=False) in torch's (and the NumPy backend's)
    order: g = grad + wd*p; m += (1-b1)(g - m); v = b2 v + (1-b2) g^2;
    p -= step_size * m / (sqrt(v) / sqrt(1 - b2^t) + eps). Per-tensor and
    global scalars are computed in float64 on the host, exactly as torch
    does with Python floats, and rounded to the parameter dtype in the
    kernel (what NumPy does with a Python float times a float32 array).
    sqrt and division are the correctly rounded versions (float32 tl.sqrt
    and `/` are approximate on NVIDIA GPUs).

_sgd_kernel
    torch.optim.SGD: g = grad + wd*p; with momentum buf = g on a tensor's
    first step, else momentum*buf + (1-dampening)*g; g = g + momentum*buf
    (nesterov) or buf; p -= lr*g. Momentum, nesterov and weight decay are
    constexprs, so plain SGD touches only p and grad.

BLOCK is 1024 elements per program on GPUs and 8192 under the interpreter
(which pays per program); the updates do not depend on it.

Caching. When every tensor of the call is at the same step (a training
loop), the two Adam scalars are kernel arguments and the table holds only
addresses and sizes: it is cached by content (_cached_table) and uploaded
once, not on every step. Per-tensor step counts (parameters that joined
later) get the two extra rows and an upload for that call.
Note for CUDA graphs: launch arguments are frozen in a captured graph, so a
captured step keeps the optimizer step outside it (dcgan/trainer.py).
"""


import numpy as np
import triton
import triton.language as tl

from ..launch_checks import Plan
from ..optim_tables import TableCache, adam_scalars
from . import common
from .common import address, cdiv, next_pow2, ptr, require_contiguous, xp
from .elementwise import div_ieee, sqrt_ieee

# Elements per program.
PLAN = Plan(__name__, common.INTERPRET, gpu={"BLOCK": 1024}, simulator={"BLOCK": 8192},
            why="the interpreter pays per program and per operation, not per element")
(BLOCK,) = PLAN.current("BLOCK")

# A block start no program id reaches (pads the start row to a power of 2).
_BIG = tl.constexpr(2**62)

# Adam table rows
_A_P = tl.constexpr(0)  # param addresses
_A_G = tl.constexpr(1)  # grad addresses
_A_M = tl.constexpr(2)  # exp_avg addresses
_A_V = tl.constexpr(3)  # exp_avg_sq addresses
_A_N = tl.constexpr(4)  # numel
_A_START = tl.constexpr(5)  # first block
_A_STEP = tl.constexpr(6)  # lr / (1 - beta1^t), float64 bits
_A_BC2 = tl.constexpr(7)  # sqrt(1 - beta2^t), float64 bits
# SGD table rows
_S_P = tl.constexpr(0)
_S_G = tl.constexpr(1)
_S_B = tl.constexpr(2)  # momentum buffer addresses (0 without momentum)
_S_N = tl.constexpr(3)
_S_START = tl.constexpr(4)
_S_FIRST = tl.constexpr(5)  # 1 on a parameter's first step


# =============================================================== helpers
@triton.jit
def _f64(bits):
    return tl.cast(bits, tl.int64).to(tl.float64, bitcast=True)


@triton.jit
def _locate(table, T, START_ROW: tl.constexpr, TP: tl.constexpr):
    """(tensor index, block index within it) of this program."""
    pid = tl.program_id(0).to(tl.int64)
    idx = tl.arange(0, TP)
    starts = tl.load(table + START_ROW * T + idx, mask=idx < T, other=_BIG)
    t = tl.sum((starts <= pid).to(tl.int32), axis=0) - 1
    blk = pid - tl.load(table + START_ROW * T + t)
    return t, blk


@triton.jit
def _typed(addr, IS_F64: tl.constexpr):
    if IS_F64:
        return addr.to(tl.pointer_type(tl.float64))
    else:
        return addr.to(tl.pointer_type(tl.float32))


# =============================================================== kernels
@triton.jit
def _adam_kernel(table, T, beta2_bits, omb1_bits, omb2_bits, eps_bits, wd_bits,
                 step_size_bits, bc2_sqrt_bits, HAS_WD: tl.constexpr,
                 PER_TENSOR_STEPS: tl.constexpr, IS_F64: tl.constexpr, TP: tl.constexpr,
                 BLOCK: tl.constexpr):
    t, blk = _locate(table, T, _A_START, TP)
    n = tl.load(table + _A_N * T + t)
    p_ptr = _typed(tl.load(table + _A_P * T + t), IS_F64)
    g_ptr = _typed(tl.load(table + _A_G * T + t), IS_F64)
    m_ptr = _typed(tl.load(table + _A_M * T + t), IS_F64)
    v_ptr = _typed(tl.load(table + _A_V * T + t), IS_F64)
    offs = blk * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    p = tl.load(p_ptr + offs, mask=mask)
    g = tl.load(g_ptr + offs, mask=mask)
    m = tl.load(m_ptr + offs, mask=mask)
    v = tl.load(v_ptr + offs, mask=mask)
    dt: tl.constexpr = p.dtype
    if PER_TENSOR_STEPS:
        step_size = _f64(tl.load(table + _A_STEP * T + t)).to(dt)  # lr / (1 - b1^t)
        bc2_sqrt = _f64(tl.load(table + _A_BC2 * T + t)).to(dt)  # sqrt(1 - b2^t)
    else:  # every tensor at the same step: the scalars are arguments
        step_size = _f64(step_size_bits).to(dt)
        bc2_sqrt = _f64(bc2_sqrt_bits).to(dt)
    beta2 = _f64(beta2_bits).to(dt)
    one_minus_b1 = _f64(omb1_bits).to(dt)
    one_minus_b2 = _f64(omb2_bits).to(dt)
    eps = _f64(eps_bits).to(dt)
    if HAS_WD:
        g = g + _f64(wd_bits).to(dt) * p
    m = m + one_minus_b1 * (g - m)
    v = v * beta2
    v = v + one_minus_b2 * (g * g)
    denom = div_ieee(sqrt_ieee(v), bc2_sqrt) + eps
    p = p - step_size * div_ieee(m, denom)
    tl.store(m_ptr + offs, m, mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)
    tl.store(p_ptr + offs, p, mask=mask)


@triton.jit
def _sgd_kernel(table, T, lr_bits, momentum_bits, omd_bits, wd_bits,
                HAS_MOMENTUM: tl.constexpr, NESTEROV: tl.constexpr, HAS_WD: tl.constexpr,
                IS_F64: tl.constexpr, TP: tl.constexpr, BLOCK: tl.constexpr):
    t, blk = _locate(table, T, _S_START, TP)
    n = tl.load(table + _S_N * T + t)
    p_ptr = _typed(tl.load(table + _S_P * T + t), IS_F64)
    g_ptr = _typed(tl.load(table + _S_G * T + t), IS_F64)
    offs = blk * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    p = tl.load(p_ptr + offs, mask=mask)
    g = tl.load(g_ptr + offs, mask=mask)
    dt: tl.constexpr = p.dtype
    if HAS_WD:
        g = g + _f64(wd_bits).to(dt) * p
    if HAS_MOMENTUM:
        b_ptr = _typed(tl.load(table + _S_B * T + t), IS_F64)
        first = tl.load(table + _S_FIRST * T + t)
        momentum = _f64(momentum_bits).to(dt)
        buf = tl.load(b_ptr + offs, mask=mask)
        # On the first step the buffer is uninitialised: `where` discards it.
        buf = tl.where(first != 0, g, buf * momentum + _f64(omd_bits).to(dt) * g)
        tl.store(b_ptr + offs, buf, mask=mask)
        if NESTEROV:
            g = g + momentum * buf
        else:
            g = buf
    p = p - _f64(lr_bits).to(dt) * g
    tl.store(p_ptr + offs, p, mask=mask)


# ============================================================= launchers
def _f64_bits(values):
    """float64 values -> the int64s with the same bits (table rows, arguments)."""
    return np.asarray(values, dtype=np.float64).view(np.int64)


def _arg(value):
    return int(_f64_bits(float(value)))


def _check(op, params, *lists):
    dtype = params[0].dtype
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{op}: parameters must be float32 or float64, got {dtype}")
    for arrays in (params,) + lists:
        for a in arrays:
            if a is None:
                continue
            if a.dtype != dtype:
                raise ValueError(f"{op}: every array of one call must be {dtype}, got {a.dtype}")
            require_contiguous(op, a)
    return dtype == np.float64


def _blocks(params):
    """numel per tensor, each tensor's first block, and the total block count."""
    numel = np.array([p.size for p in params], dtype=np.int64)
    nblocks = cdiv(numel, BLOCK)
    starts = np.concatenate([[0], np.cumsum(nblocks)[:-1]]).astype(np.int64)
    return numel, starts, int(nblocks.sum())


def _device_table(rows):
    """Stack int64 rows into one (len(rows) * T,) device array: one copy."""
    host = np.ascontiguousarray(np.stack([np.asarray(r, dtype=np.int64) for r in rows]))
    return xp.asarray(host.ravel())


# Uploaded once per distinct table (kernels/optim_tables.py).
_cached_table = TableCache(_device_table)


def adam_step_(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps,
               weight_decay):
    """torch.optim.Adam (amsgrad=False) over every tensor of the lists, in place.
    steps[i] is parameter i's step count after this step (1 on the first)."""
    if not params:
        return
    is_f64 = _check("adam_step_", params, grads, exp_avgs, exp_avg_sqs)
    lr, beta1, beta2 = float(lr), float(beta1), float(beta2)
    eps, weight_decay = float(eps), float(weight_decay)
    numel, starts, total = _blocks(params)
    if total == 0:
        return
    per_tensor, step_size, bc2_sqrt = adam_scalars(steps, lr, beta1, beta2)
    rows = [[address(a) for a in params], [address(a) for a in grads],
            [address(a) for a in exp_avgs], [address(a) for a in exp_avg_sqs], numel, starts]
    if per_tensor:  # rare (parameters that joined late): a table for this call alone
        table = _device_table(rows + [_f64_bits(step_size), _f64_bits(bc2_sqrt)])
    else:
        table = _cached_table(rows)
    T = len(params)
    _adam_kernel[(total,)](
        ptr(table), T, _arg(beta2), _arg(1 - beta1), _arg(1 - beta2), _arg(eps),
        _arg(weight_decay), _arg(step_size[0]), _arg(bc2_sqrt[0]), HAS_WD=weight_decay != 0,
        PER_TENSOR_STEPS=per_tensor, IS_F64=is_f64, TP=next_pow2(T), BLOCK=BLOCK)


def sgd_step_(params, grads, momentum_buffers, first_steps, lr, momentum, dampening,
              weight_decay, nesterov):
    """torch.optim.SGD over every tensor of the lists, in place.
    momentum_buffers[i] is None when momentum == 0."""
    if not params:
        return
    lr, momentum = float(lr), float(momentum)
    dampening, weight_decay = float(dampening), float(weight_decay)
    has_momentum = momentum != 0
    bufs = list(momentum_buffers) if has_momentum else [None] * len(params)
    if has_momentum and any(b is None for b in bufs):
        raise ValueError("sgd_step_: momentum != 0 needs a momentum buffer for every parameter")
    is_f64 = _check("sgd_step_", params, grads, bufs)
    numel, starts, total = _blocks(params)
    if total == 0:
        return
    table = _cached_table([
        [address(a) for a in params], [address(a) for a in grads],
        [address(b) if b is not None else 0 for b in bufs],
        numel, starts, [1 if f else 0 for f in first_steps]])
    T = len(params)
    _sgd_kernel[(total,)](
        ptr(table), T, _arg(lr), _arg(momentum), _arg(1 - dampening), _arg(weight_decay),
        HAS_MOMENTUM=has_momentum, NESTEROV=bool(nesterov) and has_momentum,
        HAS_WD=weight_decay != 0, IS_F64=is_f64, TP=next_pow2(T), BLOCK=BLOCK)
