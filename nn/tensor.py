"""`Tensor`: a backend array plus what autograd needs to know about it.

A tensor's `data` is a raw array of the backend that made it (NumPy on the
CPU, CuPy on a GPU). Ops run on the *active* backend and refuse tensors that
live on another device, with an error that says how to move them.
"""

import numpy as np

from . import backend as _backend_state
from .autograd import run_backward

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
_FLOAT_DTYPES = (float32, float64)
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

    def __init__(self, data, requires_grad=False, _backend=None):
        self._backend = _backend if _backend is not None else _backend_state.current()
        self.data = data
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.grad_fn = None      # the FunctionCtx that produced this tensor
        self._output_nr = 0      # which output of grad_fn this is
        self._leaf_edge = None   # graph edge of a leaf, made on first use

    # ------------------------------------------------------------ metadata
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return len(self.data.shape)

    @property
    def device(self):
        return self._backend.device

    @property
    def is_leaf(self):
        return self.grad_fn is None

    def dim(self):
        return self.ndim

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        grad = f", grad_fn=<{self.grad_fn.name()}>" if self.grad_fn is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        body = np.array2string(self.numpy(), separator=", ", precision=4, threshold=20)
        return f"tensor({body}, dtype={self.dtype}, backend={self._backend.name}{grad})"

    # ------------------------------------------------------- host and graph
    def numpy(self):
        """A host (NumPy) copy of the data."""
        return self._backend.to_host(self.data)

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
        """The same data, cut from the graph."""
        return Tensor(self.data, _backend=self._backend)

    def requires_grad_(self, requires_grad=True):
        if not self.is_leaf:
            raise RuntimeError("requires_grad_: only leaf tensors can change requires_grad")
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) * gradient into every leaf's `.grad`."""
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for scalar "
                                   f"outputs; this tensor has shape {self.shape}, pass gradient=")
            gradient = Tensor(self._backend.full(self.shape, 1.0, self.dtype), _backend=self._backend)
        else:
            gradient = as_tensor_like(gradient, self, "backward")
            if gradient.shape != self.shape:
                raise RuntimeError(f"backward: gradient has shape {gradient.shape}, "
                                   f"expected {self.shape}")
        run_backward((self,), (gradient,), retain_graph=retain_graph)

    # -------------------------------------------------------------- dtype
    def to(self, dtype):
        dtype = _check_dtype(dtype, "to")
        if dtype == self.dtype:
            return self
        from .ops import Cast
        return Cast.apply(self, dtype)

    def double(self):
        return self.to(float64)

    def float(self):
        return self.to(float32)

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

    def sum(self, dim=None, keepdim=False):
        from .ops import Sum
        return Sum.apply(self, _axes(dim, self.ndim, "sum"), keepdim)

    def mean(self, dim=None, keepdim=False):
        from .ops import Mean
        return Mean.apply(self, _axes(dim, self.ndim, "mean"), keepdim)

    def reshape(self, *shape):
        from .ops import Reshape
        return Reshape.apply(self, _infer_shape(shape, self.numel(), "reshape"))

    def view(self, *shape):
        return self.reshape(*shape)

    def expand(self, *shape):
        from .ops import BroadcastTo
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        shape = tuple(s if s != -1 else self.shape[i - len(shape) + self.ndim]
                      for i, s in enumerate(shape))
        return BroadcastTo.apply(self, shape)

    def flatten(self, start_dim=0):
        return self.reshape(*self.shape[:start_dim], -1)


class Parameter(Tensor):
    """A tensor that a Module registers as a learnable parameter."""

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            super().__init__(data.data, requires_grad, _backend=data._backend)
        else:
            t = tensor(data)
            super().__init__(t.data, requires_grad, _backend=t._backend)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _axes(dim, ndim, op):
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
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
    integer arrays) becomes the default dtype, float32: this library computes
    in floating point only."""
    if isinstance(data, Tensor):
        data = data.numpy()
    host = np.asarray(data)
    if dtype is not None:
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
    return Tensor(b.full(tuple(shape), fill_value, _creation_dtype(dtype, "full")),
                  requires_grad, _backend=b)


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


def as_tensor_like(x, ref, op):
    """`x` as a tensor beside `ref`: Python numbers and arrays take ref's dtype."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float, np.number, np.ndarray, list, tuple)):
        return Tensor(ref._backend.to_device(np.asarray(x), ref.dtype), _backend=ref._backend)
    raise TypeError(f"{op}: cannot combine a Tensor with {type(x).__name__}")
