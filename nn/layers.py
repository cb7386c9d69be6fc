"""The layers: torch's constructor arguments, default initialisation and state_dict keys."""

import math

import numpy as np

from kernels.conv_geometry import pair

from . import functional as F
from . import init
from .backend import current
from .module import Module
from .tensor import Parameter, Tensor, _creation_dtype


def _empty_parameter(shape, dtype):
    B = current()
    return Parameter(Tensor(B.empty(tuple(shape), _creation_dtype(dtype, "Parameter")), _backend=B))


class _ConvNd(Module):
    """Shared by Conv2d and ConvTranspose2d: arguments, parameters and torch's init."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, padding_mode, weight_shape, dtype):
        super().__init__()
        name = type(self).__name__
        if not isinstance(groups, int) or groups < 1 or in_channels % groups or \
                out_channels % groups:
            raise ValueError(f"{name}: groups={groups!r} must be a positive int dividing "
                             f"in_channels ({in_channels}) and out_channels ({out_channels})")
        if padding_mode != "zeros":
            raise NotImplementedError(f"{name}: padding_mode={padding_mode!r} is not supported "
                                      "(only 'zeros')")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"{name}: in_channels and out_channels must be positive, got "
                             f"{in_channels} and {out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, f"{name}: kernel_size")
        if min(self.kernel_size) < 1:
            raise ValueError(f"{name}: kernel_size must be positive, got {self.kernel_size}")
        self.stride, self.dilation = pair(stride, f"{name}: stride"), pair(dilation, f"{name}: dilation")
        self.padding = padding if isinstance(padding, str) else pair(padding, f"{name}: padding")
        self.groups, self.padding_mode = groups, padding_mode
        self.output_padding = (0, 0)  # as torch's _ConvNd; ConvTranspose2d sets its own
        self.weight = _empty_parameter(weight_shape(self.kernel_size), dtype)
        self.bias = _empty_parameter((out_channels,), dtype) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        # torch's default: kaiming_uniform_(a=sqrt(5)), bias U(-1/sqrt(fan_in), +1/sqrt(fan_in)).
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        return s + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, lambda k: (out_channels, in_channels // groups, *k),
                         dtype)

    def forward(self, input):
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class ConvTranspose2d(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, lambda k: (in_channels, out_channels // groups, *k),
                         dtype)
        self.output_padding = pair(output_padding, "ConvTranspose2d: output_padding")

    def forward(self, input):
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)


def _host_counter():
    import kernels
    return Tensor(np.zeros((), np.int64), _backend=kernels.get_backend("numpy"))


class BatchNorm2d(Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        B = current()
        dtype = _creation_dtype(dtype, "BatchNorm2d")
        if affine:
            self.weight = _empty_parameter((num_features,), dtype)
            self.bias = _empty_parameter((num_features,), dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(B.full((num_features,), 0.0, dtype), _backend=B))
            self.register_buffer("running_var", Tensor(B.full((num_features,), 1.0, dtype), _backend=B))
            # Counted on the host (a NumPy-backend tensor, whatever the
            # module's backend): `+= 1` on a device array would launch a
            # kernel that is not ours in every training forward, and
            # momentum=None would have to read it back. It is a buffer all
            # the same, so state_dict, load_state_dict and buffers() see it
            # with torch's key and dtype.
            self.register_buffer("num_batches_tracked", _host_counter())
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.fill_(0)
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, input):
        return F.batch_norm(*self._arguments(input))

    def forward_with_activation(self, input, activation, negative_slope=0.0):
        """activation(self(input)), fused where the backend can (nn.Sequential
        calls this for a BatchNorm2d followed by a ReLU or LeakyReLU)."""
        return F.batch_norm_act(*self._arguments(input), activation=activation,
                                negative_slope=negative_slope)

    _ranks, _expected = (4,), "4D input (N, C, H, W)"

    def _arguments(self, input):
        """batch_norm's arguments for this call (counting the batch in training)."""
        if input.ndim not in self._ranks:
            raise ValueError(f"{type(self).__name__}: expected {self._expected}, got shape "
                             f"{input.shape}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            counter = self.num_batches_tracked
            counter.data += 1  # a host array: no launch, no copy
            if self.momentum is None:  # cumulative moving average, as torch
                factor = 1.0 / float(counter.data)
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return (input, self.running_mean if track else None, self.running_var if track else None,
                self.weight, self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(BatchNorm2d):
    """torch.nn.BatchNorm1d: per channel over N (and L) of an (N, C) or
    (N, C, L) input; the same op, state and fusion as BatchNorm2d's, on a
    4-D view (N, C, L, 1)."""

    _ranks, _expected = (2, 3), "2D or 3D input (N, C) or (N, C, L)"

    def forward_with_activation(self, input, activation, negative_slope=0.0):
        x, *rest = self._arguments(input)
        y = F.batch_norm_act(x.reshape(*x.shape, *(1,) * (4 - x.ndim)), *rest,
                             activation=activation, negative_slope=negative_slope)
        return y.reshape(*input.shape)


class LeakyReLU(Module):
    fused_as = "leaky_relu"  # what nn.Sequential fuses into a preceding BatchNorm2d

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ReLU(Module):
    fused_as = "relu"  # what nn.Sequential fuses into a preceding BatchNorm2d
    negative_slope = 0.0

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input)


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class _WeightedLoss(Module):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        if size_average is not None or reduce is not None:
            raise ValueError(f"{type(self).__name__}: size_average and reduce are deprecated; "
                             "use reduction=")
        self.register_buffer("weight", weight)
        self.reduction = reduction


class BCELoss(_WeightedLoss):
    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(weight, size_average, reduce, reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class CrossEntropyLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_WeightedLoss):
    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_WeightedLoss):
    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class Linear(Module):
    """y = x W^T + b, torch's init: kaiming_uniform_(a=sqrt(5)) for W,
    U(-1/sqrt(in), 1/sqrt(in)) for b; state_dict keys weight, bias."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear: in_features and out_features must be positive, got "
                             f"{in_features} and {out_features}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty_parameter((out_features, in_features), dtype)
        self.bias = _empty_parameter((out_features,), dtype) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
            tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        self.weight = _empty_parameter(shape, dtype) if elementwise_affine else None
        self.bias = _empty_parameter(shape, dtype) if elementwise_affine and bias else None
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """torch.nn.Unflatten: dim `dim` split into `unflattened_size`."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class MinibatchStdDev(Module):
    """ProGAN's minibatch standard deviation (Karras et al. 2018): the batch is
    split into groups of min(group_size, N) (sample n in group n mod M, as
    ProGAN's reshape to (G, M, C, H, W)); each feature's standard deviation
    over its group (biased, 1e-8 inside the square root) is averaged over
    channels and pixels, and the result is appended as one more channel."""

    def __init__(self, group_size=4):
        super().__init__()
        if not isinstance(group_size, int) or group_size < 1:
            raise ValueError(f"MinibatchStdDev: group_size must be a positive int, got "
                             f"{group_size!r}")
        self.group_size = group_size

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"MinibatchStdDev: expected a 4-D input (N, C, H, W), got shape "
                             f"{x.shape}")
        N, C, H, W = x.shape
        G = min(self.group_size, N)
        if N % G:
            raise ValueError(f"MinibatchStdDev: a batch of {N} does not split into groups of "
                             f"{G}; use a batch size divisible by {G} or another group_size")
        M = N // G
        y = x.reshape(G, M, C, H, W)
        y = y - y.mean(0, keepdim=True)
        y = ((y * y).mean(0) + 1e-8).sqrt()             # (M, C, H, W)
        y = y.mean((1, 2, 3)).reshape(1, M, 1, 1, 1)     # (1, M, 1, 1, 1)
        y = y.expand(G, M, 1, H, W).reshape(N, 1, H, W)
        from .functional import cat
        return cat([x, y], 1)

    def extra_repr(self):
        return f"group_size={self.group_size}"
