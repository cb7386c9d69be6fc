"""`Tensor`: a backend array plus what autograd needs to know about it.

A tensor's `data` is a raw array of the backend that made it (NumPy on the
CPU, CuPy on a GPU). Ops run on the *active* backend and refuse tensors that
live on another device, with an error that says how to move them.
"""

import copy
import math
import operator

import numpy as np

from kernels import registry as _registry

from . import backend as _backend_state
from .autograd import Version

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)
_FLOAT_DTYPES = (float32, float64)
_ALL_DTYPES = (float32, float64, int64, bool_)
_default_dtype = float32


def set_default_dtype(dtype):
    global _default_dtype
    _default_dtype = _check_dtype(dtype, "set_default_dtype")


def get_default_dtype():
    return _default_dtype


def _check_dtype(dtype, op):
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d not in _FLOAT_DTYPES:
        raise TypeError(f"{op}: dtype must be float32 or float64, got {dtype!r}")
    return d


class Tensor:
    """An n-d array on a backend, with autograd bookkeeping."""

    def __init__(self, data, requires_grad=False, _backend=None, _version=None):
        self._backend = _backend if _backend is not None else _backend_state.current()
        self._version = _version if _version is not None else Version()
        self._data = data
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.grad_fn = None      # the FunctionCtx that produced this tensor
        self._output_nr = 0      # which output of grad_fn this is
        self._leaf_edge = None   # graph edge of a leaf, made on first use

    __hash__ = object.__hash__  # identity, as torch: == is elementwise below

    def __deepcopy__(self, memo):
        """A copy of the array on the same backend (torch's semantics: a
        deep-copied module stays on its device); leaves only, as torch."""
        if self.grad_fn is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol")
        new = object.__new__(type(self))
        memo[id(self)] = new
        Tensor.__init__(new, self._backend.astype(self.data, self.dtype), self.requires_grad,
                        _backend=self._backend)
        if self.grad is not None:
            new.grad = copy.deepcopy(self.grad, memo)
        for k, v in self.__dict__.items():  # a subclass's own attributes
            if k not in new.__dict__:
                setattr(new, k, copy.deepcopy(v, memo))
        return new

    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, array):
        """Replacing the data is an in-place change: saved copies are stale."""
        self._data = array
        self._version.value += 1

    def _bump_version(self):
        self._version.value += 1
        return self

    # ------------------------------------------------------------ metadata
    @property
    def shape(self):
        return tuple(self._data.shape)

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self):
        return len(self._data.shape)

    @property
    def device(self):
        return self._backend.device

    @property
    def is_leaf(self):
        return self.grad_fn is None

    def dim(self):
        return self.ndim

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[_dim(dim, self.ndim, "size")]

    def numel(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def is_contiguous(self):
        return bool(self._data.flags.c_contiguous)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        grad = f", grad_fn=<{self.grad_fn.name()}>" if self.grad_fn is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        body = np.array2string(self.numpy(), separator=", ", precision=4, threshold=20)
        return f"tensor({body}, dtype={self.dtype}, backend={self._backend.name}{grad})"

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"bool: the truth value of a tensor with {self.numel()} elements "
                               "is ambiguous; use .all() or .any() on its numpy()")
        return bool(self.item())

    # ------------------------------------------------------- host and graph
    def numpy(self):
        """A host (NumPy) copy of the data."""
        return self._backend.to_host(self._data)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python number, "
                             f"this one has shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same data, cut from the graph (and sharing its version counter)."""
        return Tensor(self._data, _backend=self._backend, _version=self._version)

    def requires_grad_(self, requires_grad=True):
        if not self.is_leaf:
            raise RuntimeError("requires_grad_: only leaf tensors can change requires_grad; "
                               "use .detach().requires_grad_() for a new leaf")
        if requires_grad and self.dtype.kind != "f":
            raise RuntimeError(f"requires_grad_: only floating tensors can require gradients, "
                               f"this one is {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) * gradient into every leaf's `.grad`
        (or only into `inputs`'). create_graph=True records the backward
        pass, so the gradients can be differentiated again; retain_graph
        defaults to create_graph."""
        from .autograd import backward
        backward((self,), None if gradient is None else (gradient,), retain_graph,
                 create_graph, inputs)

    # -------------------------------------------------------------- dtype
    def to(self, dtype):
        dtype = np.dtype(dtype)
        if dtype not in _ALL_DTYPES:
            raise TypeError(f"to: dtype must be one of float32, float64, int64, bool; got "
                            f"{dtype}")
        if dtype == self.dtype:
            return self
        if dtype.kind != "f" or self.dtype.kind != "f":  # no gradient through it
            return Tensor(self._backend.astype(self._data, dtype), _backend=self._backend)
        from .ops import Cast
        return Cast.apply(self, dtype)

    def double(self):
        return self.to(float64)

    def float(self):
        return self.to(float32)

    def long(self):
        return self.to(int64)

    def bool(self):
        return self.to(bool_)

    def contiguous(self):
        """Self if contiguous, else a contiguous copy (differentiable)."""
        if self.is_contiguous():
            return self
        from .ops import Cast
        return Cast.apply(self, self.dtype)

    def clone(self):
        from .ops import Cast
        return Cast.apply(self, self.dtype)

    # ------------------------------------------------------- in-place writes
    # Not recorded in the graph: refused on tensors that require grad while
    # recording (torch refuses them on leaves; we have no in-place autograd).
    def _inplace(self, op):
        from .autograd import is_grad_enabled
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError(f"{op}: in-place change of a tensor that requires grad; do it "
                               "under nn.no_grad(), or use the out-of-place op")
        return self._backend

    def copy_(self, src):
        B = self._inplace("copy_")
        src = as_tensor_like(src, self, "copy_")
        if src.shape != self.shape:
            src = src.expand(self.shape)
        B.copy_(self._data, src.data)
        return self._bump_version()

    def fill_(self, value):
        B = self._inplace("fill_")
        B.fill_(self._data, float(value))
        return self._bump_version()

    def zero_(self):
        return self.fill_(0.0)

    def _update_(self, op, fn, other):
        """self = fn(self, other), written into self's storage."""
        from .autograd import no_grad
        self._inplace(op)
        with no_grad():
            new = fn(self.detach(), other)
        return self.copy_(new) if new.shape == self.shape else _shape_error(op, self, new)

    def add_(self, other):
        return self._update_("add_", operator.add, other)

    def sub_(self, other):
        return self._update_("sub_", operator.sub, other)

    def mul_(self, other):
        return self._update_("mul_", operator.mul, other)

    def div_(self, other):
        return self._update_("div_", operator.truediv, other)

    # ----------------------------------------------------------- operators
    def __add__(self, other):
        from .ops import Add
        return Add.apply(self, as_tensor_like(other, self, "add"))

    def __radd__(self, other):
        from .ops import Add
        return Add.apply(as_tensor_like(other, self, "add"), self)

    def __sub__(self, other):
        from .ops import Sub
        return Sub.apply(self, as_tensor_like(other, self, "sub"))

    def __rsub__(self, other):
        from .ops import Sub
        return Sub.apply(as_tensor_like(other, self, "sub"), self)

    def __mul__(self, other):
        from .ops import Mul
        return Mul.apply(self, as_tensor_like(other, self, "mul"))

    def __rmul__(self, other):
        from .ops import Mul
        return Mul.apply(as_tensor_like(other, self, "mul"), self)

    def __truediv__(self, other):
        from .ops import Div
        return Div.apply(self, as_tensor_like(other, self, "div"))

    def __rtruediv__(self, other):
        from .ops import Div
        return Div.apply(as_tensor_like(other, self, "div"), self)

    def __neg__(self):
        from .ops import Neg
        return Neg.apply(self)

    def __pow__(self, exponent):
        from .ops import Pow
        if isinstance(exponent, Tensor):  # x ** y = exp(y log x), for x > 0
            return (exponent * self.log()).exp()
        if not isinstance(exponent, (int, float, np.number)) or isinstance(exponent, bool):
            raise TypeError(f"pow: exponent must be a number or a Tensor, got "
                            f"{type(exponent).__name__}")
        return Pow.apply(self, float(exponent))

    def __rpow__(self, base):  # b ** x = exp(x log b)
        return (self * float(np.log(base))).exp()

    def __matmul__(self, other):
        from .functional import matmul
        return matmul(self, other)

    def __rmatmul__(self, other):
        from .functional import matmul
        return matmul(as_tensor_like(other, self, "matmul"), self)

    # comparisons: bool tensors, no gradient
    def _compare(self, op, other):
        from .ops import compare
        return compare(op, self, as_tensor_like(other, self, op))

    def __gt__(self, other):
        return self._compare("gt", other)

    def __ge__(self, other):
        return self._compare("ge", other)

    def __lt__(self, other):
        return self._compare("lt", other)

    def __le__(self, other):
        return self._compare("le", other)

    def __eq__(self, other):
        return self._compare("eq", other)

    def __ne__(self, other):  # not (a == b): True where either is NaN, as torch
        B, eq = self._backend, self._compare("eq", other)
        return Tensor(B.compare("eq", B.astype(eq.data, self.dtype), B.full((), 0.0, self.dtype)),
                      _backend=B)

    # ------------------------------------------------------- elementwise math
    # exp, log, log1p, sqrt, rsqrt, abs, ...: one method per unary primitive
    # of kernels/registry.py, made below the class (nn/ops.py's Unary).

    def sign(self):
        """-1, 0 or +1 (0 at NaN): piecewise constant, so no gradient."""
        from .ops import _sign
        return Tensor(_sign(self._backend, self._data), _backend=self._backend)

    def pow(self, exponent):
        return self ** exponent

    def clamp(self, min=None, max=None):
        from .ops import Clamp
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return Clamp.apply(self, None if min is None else float(min),
                           None if max is None else float(max))

    clip = clamp

    def maximum(self, other):
        from .ops import Maximum
        return Maximum.apply(self, as_tensor_like(other, self, "maximum"))

    def minimum(self, other):
        from .ops import Minimum
        return Minimum.apply(self, as_tensor_like(other, self, "minimum"))

    def tanh(self):
        from .functional import tanh
        return tanh(self)

    def sigmoid(self):
        from .functional import sigmoid
        return sigmoid(self)

    def relu(self):
        from .functional import relu
        return relu(self)

    def softmax(self, dim):
        from .functional import softmax
        return softmax(self, dim)

    def log_softmax(self, dim):
        from .functional import log_softmax
        return log_softmax(self, dim)

    # ------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim=False):
        from .ops import Sum
        return Sum.apply(self, _axes(dim, self.ndim, "sum"), keepdim)

    def mean(self, dim=None, keepdim=False):
        from .ops import Mean
        return Mean.apply(self, _axes(dim, self.ndim, "mean"), keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        from .ops import Var
        return Var.apply(self, _axes(dim, self.ndim, "var"), keepdim,
                         _correction("var", unbiased, correction))

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def amax(self, dim=None, keepdim=False):
        from .ops import Amax
        return Amax.apply(self, _axes(dim, self.ndim, "amax"), keepdim)

    def amin(self, dim=None, keepdim=False):
        from .ops import Amin
        return Amin.apply(self, _axes(dim, self.ndim, "amin"), keepdim)

    def max(self, dim=None, keepdim=False):
        """max() is the largest element; max(dim) is (values, indices), as torch;
        max(other) is the elementwise maximum."""
        return self._extremum("max", dim, keepdim, True)

    def min(self, dim=None, keepdim=False):
        return self._extremum("min", dim, keepdim, False)

    def _extremum(self, op, dim, keepdim, largest):
        from .ops import MaxMinDim
        if isinstance(dim, Tensor):
            return self.maximum(dim) if largest else self.minimum(dim)
        if dim is None:
            return self.amax() if largest else self.amin()
        values, indices = MaxMinDim.apply(self, _dim(dim, self.ndim, op), keepdim, largest)
        return ValuesIndices(values, indices)

    def argmax(self, dim=None, keepdim=False):
        from .ops import argmax
        return argmax(self, None if dim is None else _dim(dim, self.ndim, "argmax"), keepdim)

    def argmin(self, dim=None, keepdim=False):
        from .ops import argmax
        return argmax(self, None if dim is None else _dim(dim, self.ndim, "argmin"), keepdim,
                      largest=False)

    def norm(self, p=2, dim=None, keepdim=False):
        from .functional import norm
        return norm(self, p, dim, keepdim)

    # ---------------------------------------------------------------- shape
    def reshape(self, *shape):
        from .ops import Reshape
        shape = _infer_shape(shape, self.numel(), "reshape")
        return self if shape == self.shape else Reshape.apply(self, shape)

    def view(self, *shape):
        return self.reshape(*shape)

    def expand(self, *shape):
        from .ops import Expand
        shape = _shape_arg(shape)
        lead = len(shape) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: the new shape {tuple(shape)} has fewer dims than "
                             f"the tensor's {self.shape}")
        shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s
                      for i, s in enumerate(shape))
        return self if shape == self.shape else Expand.apply(self, shape)

    def expand_as(self, other):
        return self.expand(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        s, e = _dim(start_dim, self.ndim, "flatten"), _dim(end_dim, self.ndim, "flatten")
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        return self.reshape(*self.shape[:s], -1, *self.shape[e + 1:])

    def unflatten(self, dim, sizes):
        """Dim `dim` split into `sizes` (one of them may be -1), as torch."""
        d = _dim(dim, self.ndim, "unflatten")
        sizes = tuple(sizes)
        if not sizes:
            raise ValueError("unflatten: sizes must name at least one dim")
        known = math.prod(s for s in sizes if s != -1)
        if sizes.count(-1) > 1 or (sizes.count(-1) == 0 and known != self.shape[d]) or \
                (sizes.count(-1) == 1 and (known == 0 or self.shape[d] % known)):
            raise ValueError(f"unflatten: sizes {sizes} do not multiply to dim {dim}'s "
                             f"size {self.shape[d]} (of shape {self.shape})")
        return self.reshape(*self.shape[:d], *sizes, *self.shape[d + 1:])

    def permute(self, *dims):
        from .ops import Permute
        dims = _shape_arg(dims)
        if len(dims) != self.ndim:
            raise ValueError(f"permute: got {len(dims)} dims for a {self.ndim}-d tensor")
        dims = tuple(_dim(d, self.ndim, "permute") for d in dims)
        if sorted(dims) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of 0..{self.ndim - 1}")
        return self if dims == tuple(range(self.ndim)) else Permute.apply(self, dims)

    def transpose(self, dim0, dim1):
        axes = list(range(self.ndim))
        d0, d1 = _dim(dim0, self.ndim, "transpose"), _dim(dim1, self.ndim, "transpose")
        axes[d0], axes[d1] = axes[d1], axes[d0]
        return self.permute(*axes)

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor of at most 2 dims, got shape {self.shape}")
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        if self.ndim < 2:
            raise ValueError(f"mT: needs at least 2 dims, got shape {self.shape}")
        return self.transpose(-2, -1)

    def unsqueeze(self, dim):
        d = _dim(dim, self.ndim + 1, "unsqueeze")
        return self.reshape(*self.shape[:d], 1, *self.shape[d:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(*[s for s in self.shape if s != 1])
        dims = {_dim(d, self.ndim, "squeeze") for d in ((dim,) if isinstance(dim, int) else dim)}
        return self.reshape(*[s for i, s in enumerate(self.shape)
                              if not (i in dims and s == 1)])

    def __getitem__(self, index):
        from .ops import Slice
        basic, new_axes = _basic_index(index, self.shape)
        out = Slice.apply(self, basic) if basic else self
        for axis in new_axes:
            out = out.unsqueeze(axis)
        return out


def _unary_method(name):
    def method(self):
        from .ops import UNARY_FUNCTIONS
        return UNARY_FUNCTIONS[name].apply(self)
    method.__name__ = method.__qualname__ = name
    return method


for _spec in _registry.UNARY:
    setattr(Tensor, _spec.name, _unary_method(_spec.name))


class ValuesIndices(tuple):
    """(values, indices), as torch.return_types.max: unpack it or use the names."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _shape_error(op, a, b):
    raise RuntimeError(f"{op}: the result has shape {b.shape}, which does not fit the "
                       f"tensor's {a.shape}")


def _dim(d, ndim, op):
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {type(d).__name__}")
    n = max(ndim, 1)
    if not -n <= d < n:
        raise IndexError(f"{op}: dim {d} is out of range for a {ndim}-d tensor "
                         f"(expected in [{-n}, {n - 1}])")
    return int(d) % n


def _correction(op, unbiased, correction):
    if unbiased is not None and correction is not None:
        raise ValueError(f"{op}: give unbiased or correction, not both")
    if correction is not None:
        return int(correction)
    return 0 if unbiased is False else 1


def _basic_index(index, shape):
    """(tuple of ints/slices over every dim, dims where None adds an axis)."""
    index = index if isinstance(index, tuple) else (index,)
    if sum(i is Ellipsis for i in index) > 1:
        raise IndexError("index: only one Ellipsis (...) is allowed")
    n_real = sum(1 for i in index if i is not None and i is not Ellipsis)
    if n_real > len(shape):
        raise IndexError(f"index: too many indices ({n_real}) for a tensor of {len(shape)} dims")
    if Ellipsis in index:
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (len(shape) - n_real) + index[k + 1:]
    basic, new_axes, dim, out_dim = [], [], 0, 0
    for i in index:
        if i is None:
            new_axes.append(out_dim)
            out_dim += 1
            continue
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer, slice)):
            raise TypeError(f"index: only ints, slices, None and ... are supported, got "
                            f"{type(i).__name__}")
        if isinstance(i, slice):
            if i.step is not None and i.step < 1:
                raise ValueError(f"index: slice steps must be >= 1, got {i.step}")
            out_dim += 1
        else:
            if not -shape[dim] <= i < shape[dim]:
                raise IndexError(f"index: {i} is out of range for dim {dim} of size "
                                 f"{shape[dim]}")
            i = int(i) % shape[dim]
        basic.append(i)
        dim += 1
    basic += [slice(None)] * (len(shape) - dim)
    if all(isinstance(i, slice) and i == slice(None) for i in basic):
        basic = []
    return tuple(basic), new_axes


class Parameter(Tensor):
    """A tensor that a Module registers as a learnable parameter."""

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            super().__init__(data.data, requires_grad, _backend=data._backend,
                             _version=data._version)
        else:
            t = tensor(data)
            super().__init__(t.data, requires_grad, _backend=t._backend)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _axes(dim, ndim, op):
    """Sorted non-negative axes, or None for all. As torch, dim=() (an empty
    list of dims) also reduces over every axis."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    if not dims:
        return None
    out = []
    for d in dims:
        if not -ndim <= d < max(ndim, 1):
            raise IndexError(f"{op}: dim {d} is out of range for a {ndim}-d tensor")
        out.append(d % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim} repeats an axis")
    return tuple(sorted(out))


def _infer_shape(shape, numel, op):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    if sum(s == -1 for s in shape) > 1:
        raise ValueError(f"{op}: only one dimension can be -1, got {shape}")
    known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
    if -1 in shape:
        if known == 0 or numel % known:
            raise ValueError(f"{op}: shape {shape} is invalid for a tensor of {numel} elements")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    if int(np.prod(shape, dtype=np.int64)) != numel:
        raise ValueError(f"{op}: shape {shape} is invalid for a tensor of {numel} elements")
    return tuple(int(s) for s in shape)


# ---------------------------------------------------------------- creation
def tensor(data, requires_grad=False, dtype=None):
    """A new leaf tensor on the active backend, from data of any array-like kind.

    Floating NumPy data keeps its dtype; other data (Python numbers, lists,
    integer arrays) becomes the default dtype, float32, unless dtype says
    int64 or bool (class labels, masks: tensors that carry no gradient)."""
    if isinstance(data, Tensor):
        data = data.numpy()
    host = np.asarray(data)
    if dtype is not None and np.dtype(dtype) in (int64, bool_):
        if requires_grad:
            raise RuntimeError(f"tensor: only floating tensors can require gradients, "
                               f"not {np.dtype(dtype)}")
        dtype = np.dtype(dtype)
    elif dtype is not None:
        dtype = _check_dtype(dtype, "tensor")
    elif isinstance(data, (np.ndarray, np.generic)) and host.dtype in _FLOAT_DTYPES:
        dtype = host.dtype  # as torch.from_numpy; Python lists and numbers take the default
    elif host.dtype.kind in "biuf":
        dtype = _default_dtype
    else:
        raise TypeError(f"tensor: cannot make a tensor from data of dtype {host.dtype}")
    b = _backend_state.current()
    return Tensor(b.to_device(host, dtype), requires_grad=requires_grad, _backend=b)


def _creation_dtype(dtype, op):
    return _default_dtype if dtype is None else _check_dtype(dtype, op)


def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def full(shape, fill_value, dtype=None, requires_grad=False):
    b = _backend_state.current()
    t = Tensor(b.full(tuple(shape), fill_value, _creation_dtype(dtype, "full")),
               requires_grad, _backend=b)
    # What the host knows of the values until the next in-place change (see
    # known_fill): a check of them (BCE's range check) need not read them back.
    t._filled = (float(fill_value), t._version.value)
    return t


def known_fill(t):
    """The value every element of `t` holds, if `full` made it and nothing
    has written into it since; else None."""
    filled = getattr(t, "_filled", None)
    if filled is None or filled[1] != t._version.value:
        return None
    return filled[0]


def zeros(*shape, dtype=None, requires_grad=False):
    return full(_shape_arg(shape), 0.0, dtype, requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    return full(_shape_arg(shape), 1.0, dtype, requires_grad)


def randn(*shape, dtype=None, requires_grad=False):
    b = _backend_state.current()
    return Tensor(b.random_normal(_shape_arg(shape), 0.0, 1.0, _creation_dtype(dtype, "randn")),
                  requires_grad, _backend=b)


def rand(*shape, dtype=None, requires_grad=False):
    b = _backend_state.current()
    return Tensor(b.random_uniform(_shape_arg(shape), 0.0, 1.0, _creation_dtype(dtype, "rand")),
                  requires_grad, _backend=b)


def host_floats(backend, arrays):
    """Python floats of one-element `backend` arrays, read back in ONE
    device-to-host copy (each copy waits for the device): the arrays are
    gathered into one float64 array on the device first."""
    arrays = list(arrays)
    if len(arrays) <= 1:
        return [float(backend.to_host(a).reshape(())) for a in arrays]
    gathered = backend.empty((len(arrays),), float64)
    for i, a in enumerate(arrays):
        backend.copy_(gathered[i:i + 1], backend.reshape(a, (1,)))
    return [float(v) for v in backend.to_host(gathered)]


def as_tensor_like(x, ref, op):
    """`x` as a tensor beside `ref`: Python numbers and arrays take ref's dtype."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, int, float, np.number)):  # one fill, no host-to-device copy
        return Tensor(ref._backend.full((), x, ref.dtype), _backend=ref._backend)
    if isinstance(x, (np.ndarray, list, tuple)):
        return Tensor(ref._backend.to_device(np.asarray(x), ref.dtype), _backend=ref._backend)
    raise TypeError(f"{op}: cannot combine a Tensor with {type(x).__name__}")
