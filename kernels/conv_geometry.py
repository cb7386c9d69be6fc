"""Shape arithmetic shared by every convolution kernel and by nn's checks."""

import math

from .launch_checks import (INT32_LIMIT, _is_int, check_arrays, check_hw, check_ndim, check_pairs,
                            fail)


def pair(v, name="argument"):
    """An int or an (h, w) pair -> an (h, w) tuple of ints."""
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(
            isinstance(e, int) and not isinstance(e, bool) for e in v):
        return (int(v[0]), int(v[1]))
    raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")


def conv_output_size(in_hw, kernel_hw, stride, padding, dilation):
    """(OH, OW) of conv2d: (H + 2p - d(K - 1) - 1) // s + 1."""
    return tuple((h + 2 * p - d * (k - 1) - 1) // s + 1
                 for h, k, s, p, d in zip(in_hw, kernel_hw, stride, padding, dilation))


def conv_transpose_output_size(in_hw, kernel_hw, stride, padding, output_padding, dilation):
    """(OH, OW) of conv_transpose2d: (H - 1)s - 2p + d(K - 1) + op + 1."""
    return tuple((h - 1) * s - 2 * p + d * (k - 1) + op + 1
                 for h, k, s, p, op, d in zip(in_hw, kernel_hw, stride, padding,
                                              output_padding, dilation))


# ----------------------------------------------- the GPU launchers' conv checks
# Both GPU backends' conv launchers (kernels/triton/conv.py, kernels/cuda/conv.py)
# validate their arrays the same way and hand their kernels the same fifteen
# integers, in this order.
class ConvShape(tuple):
    """(N, C, H, W, K, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw): x (N, C, H, W),
    w (K, C/groups, KH, KW), y (N, K, OH, OW), stride, padding, dilation.
    C and K are always the total channel counts; groups travels beside."""

    def __new__(cls, *dims):
        return super().__new__(cls, (int(d) for d in dims))

    N, C, H, W, K, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw = (
        property(lambda self, i=i: self[i]) for i in range(15))


def check_groups(op, C, K, groups):
    """groups as an int that divides both channel counts, or a ValueError."""
    if not _is_int(groups) or groups < 1:
        fail(op, f"groups must be a positive int, got {groups!r}")
    if C % groups or K % groups:
        fail(op, f"groups={groups} must divide both the input channels ({C}) and the "
                 f"output channels ({K})")
    return int(groups)


def check_forward(op, x, w, b, stride, padding, dilation, groups=1):
    """(dtype, ConvShape) for y = conv2d(x, w) + b, or a ValueError naming op."""
    check_ndim(op, "x", x, 4)
    check_ndim(op, "w", w, 4)
    dtype = check_arrays(op, x=x, w=w, b=b)
    (sh, sw), (ph, pw), (dh, dw) = check_pairs(op, stride, padding, dilation)
    N, C, H, W = x.shape
    K, Cw, KH, KW = w.shape
    if Cw * groups != C:
        fail(op, f"w has {Cw} input channels per group ({groups} groups) but x has {C} "
                 f"(x {tuple(x.shape)}, w {tuple(w.shape)})")
    check_groups(op, C, K, groups)
    if b is not None and tuple(b.shape) != (K,):
        fail(op, f"b must have shape ({K},), got {tuple(b.shape)}")
    OH, OW = conv_output_size((H, W), (KH, KW), (sh, sw), (ph, pw), (dh, dw))
    if OH < 1 or OW < 1:
        fail(op, f"output would be {OH}x{OW}: the kernel {KH}x{KW} with dilation {(dh, dw)} "
                 f"is larger than the input {H}x{W} with padding {(ph, pw)}")
    if N * K * OH * OW >= INT32_LIMIT:
        fail(op, f"output has {N * K * OH * OW} elements; int32 indexing allows < 2**31")
    return dtype, ConvShape(N, C, H, W, K, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw)


def check_backward_input(op, dy, w, input_hw, stride, padding, dilation, groups=1):
    """(dtype, ConvShape) for dx = conv2d's input gradient, of shape (N, C, *input_hw)."""
    check_ndim(op, "dy", dy, 4)
    check_ndim(op, "w", w, 4)
    dtype = check_arrays(op, dy=dy, w=w)
    (sh, sw), (ph, pw), (dh, dw) = check_pairs(op, stride, padding, dilation)
    H, W = check_hw(op, "input_hw", input_hw)
    N, K, OH, OW = dy.shape
    Kw, Cg, KH, KW = w.shape
    C = Cg * groups
    check_groups(op, C, K, groups)
    if Kw != K:
        fail(op, f"w has {Kw} output channels but dy has {K} (dy {tuple(dy.shape)}, "
                 f"w {tuple(w.shape)})")
    if N * C * H * W >= INT32_LIMIT:
        fail(op, f"dx has {N * C * H * W} elements; int32 indexing allows < 2**31")
    return dtype, ConvShape(N, C, H, W, K, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw)


def check_backward_weight(op, dy, x, kernel_hw, stride, padding, dilation, groups=1):
    """(dtype, ConvShape) for dw = conv2d's weight gradient, of shape (K, C/groups, *kernel_hw).
    OH, OW are dy's (they may be smaller than x gives)."""
    check_ndim(op, "dy", dy, 4)
    check_ndim(op, "x", x, 4)
    dtype = check_arrays(op, dy=dy, x=x)
    (sh, sw), (ph, pw), (dh, dw) = check_pairs(op, stride, padding, dilation)
    KH, KW = check_hw(op, "kernel_hw", kernel_hw)
    N, K, OH, OW = dy.shape
    Nx, C, H, W = x.shape
    if Nx != N:
        fail(op, f"dy has batch {N} but x has {Nx} (dy {tuple(dy.shape)}, x {tuple(x.shape)})")
    check_groups(op, C, K, groups)
    if K * C * KH * KW >= INT32_LIMIT:
        fail(op, f"dw has {K * C * KH * KW} elements; int32 indexing allows < 2**31")
    return dtype, ConvShape(N, C, H, W, K, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw)


def phase_taps(s):
    """(gh, gw, inv_h, inv_w) for the input gradient by stride phase: phase
    (qh, qw)'s taps solve kh*dh = qh + ph (mod sh), which needs g = gcd(dh, sh)
    and the inverse of dh/g modulo sh/g (0 when sh/g = 1); likewise for w."""
    gh, gw = math.gcd(s.dh, s.sh), math.gcd(s.dw, s.sw)
    return gh, gw, pow(s.dh // gh, -1, s.sh // gh), pow(s.dw // gw, -1, s.sw // gw)
