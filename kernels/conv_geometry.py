"""Shape arithmetic shared by every convolution kernel and by nn's checks."""


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
