"""torch.nn.init's in-place initialisers, drawing from the backend's seeded generator."""

import math

from .autograd import no_grad


def _fill_from(tensor, array):
    with no_grad():
        tensor._backend.copy_(tensor.data, array)
    return tensor._bump_version()


def normal_(tensor, mean=0.0, std=1.0):
    B = tensor._backend
    return _fill_from(tensor, B.random_normal(tensor.shape, float(mean), float(std), tensor.dtype))


def uniform_(tensor, a=0.0, b=1.0):
    B = tensor._backend
    return _fill_from(tensor, B.random_uniform(tensor.shape, float(a), float(b), tensor.dtype))


def constant_(tensor, val):
    with no_grad():
        tensor._backend.fill_(tensor.data, float(val))
    return tensor._bump_version()


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def calculate_gain(nonlinearity, param=None):
    """torch's recommended gains."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                        "conv_transpose2d", "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError("fan in and fan out need a tensor with at least 2 dimensions, "
                         f"got shape {tensor.shape}")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_uniform_: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return uniform_(tensor, -bound, bound)
