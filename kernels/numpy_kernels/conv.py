"""Convolution as im2col + one matrix product, and its two gradients.

Arrays are NCHW at the contract (kernels/contract.py); groups split the
channel axes as (g, C/g) and give every GEMM a leading batch axis g (one 2-D
BLAS call when g = 1, the common case).

Layout, and why: the GEMM costs the same in any layout, so what differs is
the copying around it, and NumPy copies and adds row by row along the
innermost axis, paying ~5 ns a row on top of the bytes. In image order that
axis is OW, 4-16 pixels at DCGAN's shapes. So every kernel works batch-last,
(C, H, W, N): the im2col columns are (C, KH, KW, OH, OW, N) and the col2im
adds run along N. Moving the batch axis costs one transpose in and one out
(`batch_last`, `batch_first`), and still the copying is 2-4x cheaper than in
image order at DCGAN's shapes (measured; the exception is D's first layer,
one input channel, whose big output makes `batch_first` cost more than the
image-order copies it saves).
Those copies and adds are split over channels (or images) on the small
thread pool of threads.py, so that they use the cores BLAS uses.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..conv_geometry import conv_output_size
from .threads import parallel_for

# Images moved per block by `batch_last`: 8 rows fit one L1 cache set.
_BATCH_BLOCK = 8


def batch_last(x, padding=(0, 0)):
    """x (N, C, H, W) as a new (C, H + 2ph, W + 2pw, N) array, zero-padded.

    Copied _BATCH_BLOCK images at a time: the whole transpose at once reads N
    rows C*H*W elements apart, which fall into the same L1 cache set when that
    is a multiple of 4 KB (DCGAN's sizes are) and evict each other; a block
    of 8 fits, and the copy is 3x faster."""
    (ph, pw), (N, C, H, W) = padding, x.shape
    out = np.zeros((C, H + 2 * ph, W + 2 * pw, N), dtype=x.dtype) if ph or pw else \
        np.empty((C, H, W, N), dtype=x.dtype)
    interior = out[:, ph:ph + H, pw:pw + W]

    def blocks(first, last):  # blocks [first, last) of _BATCH_BLOCK images
        for n in range(first * _BATCH_BLOCK, min(last * _BATCH_BLOCK, N), _BATCH_BLOCK):
            interior[..., n:n + _BATCH_BLOCK] = x[n:n + _BATCH_BLOCK].transpose(1, 2, 3, 0)
    parallel_for(blocks, -(-N // _BATCH_BLOCK), x.size)
    return out


def batch_first(a):
    """A batch-last (C, H, W, N) array as a new NCHW one."""
    out = np.empty((a.shape[3],) + a.shape[:3], dtype=a.dtype)

    def channels(c0, c1):
        out[:, c0:c1] = a[c0:c1].transpose(3, 0, 1, 2)
    parallel_for(channels, a.shape[0], a.size)
    return out


def copy_split(view):
    """A contiguous copy of `view`, split over its first axis."""
    out = np.empty(view.shape, dtype=view.dtype)

    def part(i0, i1):
        out[i0:i1] = view[i0:i1]
    parallel_for(part, view.shape[0], view.size)
    return out


def windows(xb, kernel_hw, out_hw, stride, dilation):
    """A read-only view of every receptive field of the padded batch-last
    image xb: (C, KH, KW, OH, OW, N).

    Element [c, kh, kw, oh, ow, n] is xb[c, oh*sh + kh*dh, ow*sw + kw*dw, n],
    the input that tap (kh, kw) of output pixel (oh, ow) reads. No data is
    copied: the view only reinterprets strides.
    """
    (KH, KW), (OH, OW) = kernel_hw, out_hw
    (sh, sw), (dh, dw) = stride, dilation
    sC, sH, sW, sN = xb.strides
    return as_strided(xb, shape=(xb.shape[0], KH, KW, OH, OW, xb.shape[3]),
                      strides=(sC, sH * dh, sW * dw, sH * sh, sW * sw, sN), writeable=False)


def im2col(x, kernel_hw, out_hw, stride, padding, dilation, groups):
    """The windows copied into (g, C/g * KH * KW, OH * OW * N): one column per
    output pixel. This one copy is what lets a single BLAS call do the conv."""
    win = windows(batch_last(x, padding), kernel_hw, out_hw, stride, dilation)
    return copy_split(win).reshape(groups, -1, win[0, 0, 0].size)


def group_matmul(a, b):
    """a @ b over a leading group axis. One group is one 2-D BLAS call:
    np.matmul on stacked operands is several times slower even for a stack of
    one, and groups = 1 is the common case."""
    if a.shape[0] == 1 and b.shape[0] == 1:
        return (a[0] @ b[0])[None]
    return np.matmul(a, b)


def forward(x, w, b, stride, padding, dilation, groups):
    N, _, H, W = x.shape
    C_out, Cg, KH, KW = w.shape
    OH, OW = conv_output_size((H, W), (KH, KW), stride, padding, dilation)
    cols = im2col(x, (KH, KW), (OH, OW), stride, padding, dilation, groups)
    # (g, C_out/g, Cg*KH*KW) @ (g, Cg*KH*KW, OH*OW*N): the whole conv.
    y = group_matmul(w.reshape(groups, C_out // groups, -1), cols).reshape(C_out, -1)
    if b is not None:
        y += b[:, None]
    return batch_first(y.reshape(C_out, OH, OW, N))


def backward_weight(dy, x, kernel_hw, stride, padding, dilation, groups):
    # dw[o, c, kh, kw] = sum over n, oh, ow of dy[n, o, oh, ow] * window:
    # the forward's product with the output-pixel axis contracted instead.
    C_out = dy.shape[1]
    cols = im2col(x, kernel_hw, dy.shape[2:], stride, padding, dilation, groups)
    dy2 = batch_last(dy).reshape(groups, C_out // groups, -1)
    dw = group_matmul(dy2, cols.transpose(0, 2, 1))  # BLAS reads the transpose in place
    return dw.reshape(C_out, x.shape[1] // groups, *kernel_hw)


def backward_input(dy, w, input_hw, stride, padding, dilation, groups):
    N, C_out, OH, OW = dy.shape
    _, Cg, KH, KW = w.shape
    g, C = groups, Cg * groups
    (H, W), (sh, sw), (ph, pw), (dh, dw) = input_hw, stride, padding, dilation
    # Gradient of every column entry:
    # dcols[c, kh, kw, oh, ow, n] = sum over o of w[o, c, kh, kw] * dy[n, o, oh, ow].
    dy2 = batch_last(dy).reshape(g, C_out // g, -1)
    wt = w.reshape(g, C_out // g, Cg * KH * KW).transpose(0, 2, 1)  # a view: BLAS transposes
    dcols = group_matmul(wt, dy2).reshape(C, KH, KW, OH, OW, N)
    # col2im: each input pixel gets the sum over every window that read it,
    # so add tap (kh, kw) onto the rows/columns it read. The buffer holds the
    # padded image, and is at least as large as the taps reach: input rows
    # the conv never reads just keep their zero gradient.
    Hp = max(H + 2 * ph, dh * (KH - 1) + sh * (OH - 1) + 1)
    Wp = max(W + 2 * pw, dw * (KW - 1) + sw * (OW - 1) + 1)
    dxp = np.zeros((C, Hp, Wp, N), dtype=dy.dtype)

    def col2im(c0, c1):  # channels [c0, c1): every tap
        for kh in range(KH):
            for kw in range(KW):
                h0, w0 = kh * dh, kw * dw
                dxp[c0:c1, h0:h0 + sh * (OH - 1) + 1:sh,
                    w0:w0 + sw * (OW - 1) + 1:sw] += dcols[c0:c1, kh, kw]
    parallel_for(col2im, C, dcols.size)
    # Crop the padding: the gradient flowing into the zeros is dropped.
    return batch_first(dxp[:, ph:ph + H, pw:pw + W])


def backward_bias(dy):
    return np.einsum("ncp->c", dy.reshape(dy.shape[0], dy.shape[1], -1))
