"""Grouped and depthwise convolution, kernel by kernel, against torch float64.

groups is one more GEMM axis in every backend's conv kernels: these call the
six conv kernels (conv2d and conv_transpose2d: forward, input gradient,
weight gradient) directly, on every backend and dtype, for groups of 2, 3
and the depthwise case (groups = C_in), with odd geometry."""

import numpy as np
import pytest
import torch

import nn
from helpers import TOL, rel_error

# (N, C_in, H, W, C_out, KH, KW, groups, stride, padding, dilation)
CASES = [
    (2, 4, 7, 6, 6, 3, 2, 2, (2, 1), (1, 1), (1, 2)),
    (1, 6, 5, 5, 9, 3, 3, 3, (1, 1), (1, 1), (1, 1)),
    (2, 4, 6, 7, 4, 3, 3, 4, (1, 1), (1, 0), (1, 1)),     # depthwise
    (3, 3, 9, 8, 6, 2, 3, 3, (3, 2), (0, 1), (2, 1)),     # depthwise multiplier 2, stride 3
    (2, 8, 4, 4, 8, 4, 4, 2, (2, 2), (1, 1), (1, 1)),     # a DCGAN-style layer, 2 groups
]


def _err(ours, ref):
    return rel_error(nn.backend.current().to_host(ours), ref.detach().numpy())


@pytest.mark.parametrize("case", CASES)
def test_conv2d_groups(backend, dtype, seed, case):
    N, C, H, W, K, KH, KW, g, s, p, d = case
    B = nn.backend.current()
    rng = np.random.default_rng(seed)
    hx, hw = rng.standard_normal((N, C, H, W)), rng.standard_normal((K, C // g, KH, KW))
    hb = rng.standard_normal(K)
    hx, hw, hb = (a.astype(dtype).astype(np.float64) for a in (hx, hw, hb))
    tx, tw = torch.tensor(hx, requires_grad=True), torch.tensor(hw, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, torch.tensor(hb), s, p, d, g)
    hdy = rng.standard_normal(ty.shape).astype(dtype).astype(np.float64)
    ty.backward(torch.tensor(hdy))
    x, w, b, dy = (B.to_device(a, dtype) for a in (hx, hw, hb, hdy))
    tol = TOL[np.dtype(dtype)]
    assert _err(B.conv2d_forward(x, w, b, s, p, d, g), ty) <= tol
    assert _err(B.conv2d_backward_input(dy, w, (H, W), s, p, d, g), tx.grad) <= tol
    assert _err(B.conv2d_backward_weight(dy, x, (KH, KW), s, p, d, g), tw.grad) <= tol


@pytest.mark.parametrize("case", CASES)
def test_conv_transpose2d_groups(backend, dtype, seed, case):
    N, C, H, W, K, KH, KW, g, s, p, d = case
    B = nn.backend.current()
    rng = np.random.default_rng(seed)
    op = (s[0] - 1, 0)  # output_padding < stride
    hx, hw = rng.standard_normal((N, C, H, W)), rng.standard_normal((C, K // g, KH, KW))
    hx, hw = (a.astype(dtype).astype(np.float64) for a in (hx, hw))
    tx, tw = torch.tensor(hx, requires_grad=True), torch.tensor(hw, requires_grad=True)
    ty = torch.nn.functional.conv_transpose2d(tx, tw, None, s, p, op, g, d)
    hdy = rng.standard_normal(ty.shape).astype(dtype).astype(np.float64)
    ty.backward(torch.tensor(hdy))
    x, w, dy = (B.to_device(a, dtype) for a in (hx, hw, hdy))
    tol = TOL[np.dtype(dtype)]
    assert _err(B.conv_transpose2d_forward(x, w, None, s, p, op, d, g), ty) <= tol
    assert _err(B.conv_transpose2d_backward_input(dy, w, (H, W), s, p, d, g), tx.grad) <= tol
    assert _err(B.conv_transpose2d_backward_weight(dy, x, (KH, KW), s, p, d, g),
                tw.grad) <= tol
