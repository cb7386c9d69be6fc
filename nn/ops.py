"""The built-in differentiable ops, each a `Function` over backend kernels.

Each forward calls the active backend's kernel on raw arrays and keeps only
what its backward needs; each backward calls the matching backward kernel.
Argument checking (shapes, dtypes, devices) happens here or in
`nn.functional`, once for every backend, so kernels can trust their inputs.
"""

from . import backend as _backend_state
from .autograd import Function
from .tensor import Tensor


def backend_for(op, *tensors):
    """The active backend, after checking that `tensors` live on its device and
    share one floating dtype. `None` entries (absent optionals) are skipped."""
    B = _backend_state.current()
    dtype = None
    for t in tensors:
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected a Tensor, got {type(t).__name__}")
        if not B.is_array(t.data):
            raise RuntimeError(
                f"{op}: a tensor lives on backend {t._backend.name!r} ({t.device}), but the "
                f"active backend {B.name!r} computes on {B.device}; create it under the "
                f"active backend or copy it with nn.tensor(t.numpy())")
        if t.dtype.kind != "f":
            raise TypeError(f"{op}: expected a float32 or float64 tensor, got {t.dtype}")
        if dtype is None:
            dtype = t.dtype
        elif t.dtype != dtype:
            raise TypeError(f"{op}: dtype mismatch, got {dtype} and {t.dtype}; "
                            "convert one with .float() or .double()")
    return B


def wrap(B, array):
    return Tensor(array, _backend=B)


def unbroadcast(B, g, shape):
    """Sum gradient `g` down to `shape`, undoing NumPy broadcasting."""
    if tuple(g.shape) == tuple(shape):
        return g
    lead = len(g.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                      if s == 1 and g.shape[lead + i] != 1)
    return B.reshape(B.sum(g, axes, True), tuple(shape))


def _check_broadcast(op, a, b):
    for x, y in zip(reversed(a.shape), reversed(b.shape)):
        if x != y and x != 1 and y != 1:
            raise ValueError(f"{op}: shapes {a.shape} and {b.shape} do not broadcast")


class _Binary(Function):
    """Shared shape logic of the broadcasting binary ops."""
    op = "?"

    @classmethod
    def _kernel(cls, B):
        return getattr(B, cls.op)

    @classmethod
    def forward(cls, ctx, a, b):
        B = backend_for(cls.op, a, b)
        _check_broadcast(cls.op, a, b)
        ctx.shapes = (a.shape, b.shape)
        cls._save(ctx, a, b)
        return wrap(B, cls._kernel(B)(a.data, b.data))

    @staticmethod
    def _save(ctx, a, b):
        pass


class Add(_Binary):
    op = "add"

    @staticmethod
    def backward(ctx, g):
        B = g._backend
        return tuple(wrap(B, unbroadcast(B, g.data, s)) if need else None
                     for s, need in zip(ctx.shapes, ctx.needs_input_grad))


class Sub(_Binary):
    op = "sub"

    @staticmethod
    def backward(ctx, g):
        B = g._backend
        ga = wrap(B, unbroadcast(B, g.data, ctx.shapes[0])) if ctx.needs_input_grad[0] else None
        gb = (wrap(B, unbroadcast(B, B.neg(g.data), ctx.shapes[1]))
              if ctx.needs_input_grad[1] else None)
        return ga, gb


class Mul(_Binary):
    op = "mul"

    @staticmethod
    def _save(ctx, a, b):
        # d(ab)/da needs b and d(ab)/db needs a: keep only the one(s) used.
        ctx.save_for_backward(b if ctx.needs_input_grad[0] else None,
                              a if ctx.needs_input_grad[1] else None)

    @staticmethod
    def backward(ctx, g):
        B = g._backend
        b, a = ctx.saved_tensors
        ga = wrap(B, unbroadcast(B, B.mul(g.data, b.data), ctx.shapes[0])) if b is not None else None
        gb = wrap(B, unbroadcast(B, B.mul(g.data, a.data), ctx.shapes[1])) if a is not None else None
        return ga, gb


class Div(_Binary):
    op = "div"

    @staticmethod
    def _save(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)

    @staticmethod
    def backward(ctx, g):
        B = g._backend
        a, b = ctx.saved_tensors
        g_over_b = B.div(g.data, b.data)
        ga = wrap(B, unbroadcast(B, g_over_b, ctx.shapes[0])) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:  # d(a/b)/db = -a/b^2 = -(g/b) * (a/b)
            gb = wrap(B, unbroadcast(B, B.neg(B.mul(g_over_b, B.div(a.data, b.data))),
                                     ctx.shapes[1]))
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        B = backend_for("neg", a)
        return wrap(B, B.neg(a.data))

    @staticmethod
    def backward(ctx, g):
        return wrap(g._backend, g._backend.neg(g.data))


class _Reduce(Function):
    op = "?"

    @classmethod
    def forward(cls, ctx, a, axes, keepdim):
        B = backend_for(cls.op, a)
        ctx.in_shape, ctx.axes = a.shape, axes
        return wrap(B, getattr(B, cls.op)(a.data, axes, keepdim))

    @classmethod
    def backward(cls, ctx, g):
        B = g._backend
        axes = range(len(ctx.in_shape)) if ctx.axes is None else ctx.axes
        kept = tuple(1 if i in axes else s for i, s in enumerate(ctx.in_shape))
        grad = B.broadcast_to(B.reshape(g.data, kept), ctx.in_shape)
        if cls.op == "mean":
            count = 1
            for i in axes:
                count *= ctx.in_shape[i]
            grad = B.div(grad, B.full((), float(count), g.dtype))
        else:
            grad = B.add(grad, B.full((), 0.0, g.dtype))  # materialise the broadcast view
        return wrap(B, grad), None, None


class Sum(_Reduce):
    op = "sum"


class Mean(_Reduce):
    op = "mean"


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        B = backend_for("reshape", a)
        ctx.in_shape = a.shape
        return wrap(B, B.reshape(a.data, shape))

    @staticmethod
    def backward(ctx, g):
        return wrap(g._backend, g._backend.reshape(g.data, ctx.in_shape)), None


class BroadcastTo(Function):
    @staticmethod
    def forward(ctx, a, shape):
        B = backend_for("expand", a)
        if len(shape) < a.ndim or any(s != t and s != 1 for s, t in
                                      zip(reversed(a.shape), reversed(shape))):
            raise ValueError(f"expand: cannot broadcast shape {a.shape} to {tuple(shape)}")
        ctx.in_shape = a.shape
        return wrap(B, B.broadcast_to(a.data, tuple(shape)))

    @staticmethod
    def backward(ctx, g):
        return wrap(g._backend, unbroadcast(g._backend, g.data, ctx.in_shape)), None


class Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        B = backend_for("to", a)
        ctx.in_dtype = a.dtype
        return wrap(B, B.astype(a.data, dtype))

    @staticmethod
    def backward(ctx, g):
        return wrap(g._backend, g._backend.astype(g.data, ctx.in_dtype)), None
