"""The primitive differentiable ops: each a `Function` over one backend kernel.

Each forward calls one kernel of the active backend (`B.exp`, `B.matmul`,
...: plain method calls on the contract, kernels/contract.py) on raw arrays
and keeps only what its backward needs. Each backward is written with these
same ops, on Tensors, never on raw arrays: that is what makes every op
differentiable to any order (nn/autograd.py). Masks and other piecewise-
constant factors (where x > 0, which element was the max) are computed on
raw arrays, as constants: their derivative is zero wherever it exists.

Argument checking (shapes, dtypes, devices) happens here or in
`nn.functional`, once for every backend, so kernels can trust their inputs.
"""

import numpy as np

from kernels import registry

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


def require_rank(op, name, t, ranks):
    if t.ndim not in ranks:
        want = " or ".join(f"{r}-d" for r in ranks)
        raise ValueError(f"{op}: expected {name} to be {want}, got shape {t.shape}")



def wrap(B, array):
    return Tensor(array, _backend=B)


def check_broadcast(op, *shapes):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)} "
                         "do not broadcast") from None


def unbroadcast(g, shape):
    """Sum gradient `g` (a Tensor) down to `shape`, undoing broadcasting."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                      if s == 1 and g.shape[lead + i] != 1)
    return g.sum(axes, keepdim=True).reshape(shape)


# ================================================================== glue
class _Binary(Function):
    """Shared shape logic of the broadcasting binary ops."""
    op = "?"

    @classmethod
    def forward(cls, ctx, a, b):
        B = backend_for(cls.op, a, b)
        check_broadcast(cls.op, a.shape, b.shape)
        ctx.shapes = (a.shape, b.shape)
        cls._save(ctx, a, b)
        return wrap(B, cls.kernel(B, a.data, b.data))

    @staticmethod
    def _save(ctx, a, b):
        pass


class Add(_Binary):
    op = "add"
    kernel = staticmethod(lambda B, a, b: B.add(a, b))

    @staticmethod
    def backward(ctx, g):
        return tuple(unbroadcast(g, s) if need else None
                     for s, need in zip(ctx.shapes, ctx.needs_input_grad))


class Sub(_Binary):
    op = "sub"
    kernel = staticmethod(lambda B, a, b: B.sub(a, b))

    @staticmethod
    def backward(ctx, g):
        need_a, need_b = ctx.needs_input_grad
        return (unbroadcast(g, ctx.shapes[0]) if need_a else None,
                unbroadcast(-g, ctx.shapes[1]) if need_b else None)


class Mul(_Binary):
    op = "mul"
    kernel = staticmethod(lambda B, a, b: B.mul(a, b))

    @staticmethod
    def _save(ctx, a, b):
        # d(ab)/da needs b and d(ab)/db needs a: keep only the one(s) used.
        ctx.save_for_backward(b if ctx.needs_input_grad[0] else None,
                              a if ctx.needs_input_grad[1] else None)

    @staticmethod
    def backward(ctx, g):
        b, a = ctx.saved_tensors
        return (unbroadcast(g * b, ctx.shapes[0]) if b is not None else None,
                unbroadcast(g * a, ctx.shapes[1]) if a is not None else None)


class Div(_Binary):
    op = "div"
    kernel = staticmethod(lambda B, a, b: B.div(a, b))

    @staticmethod
    def _save(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        g_over_b = g / b
        ga = unbroadcast(g_over_b, ctx.shapes[0]) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:  # d(a/b)/db = -a/b^2 = -(g/b) * (a/b)
            gb = unbroadcast(-(g_over_b * (a / b)), ctx.shapes[1])
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        B = backend_for("neg", a)
        return wrap(B, B.neg(a.data))

    @staticmethod
    def backward(ctx, g):
        return -g


def _kept_shape(in_shape, axes):
    axes = range(len(in_shape)) if axes is None else axes
    return tuple(1 if i in axes else s for i, s in enumerate(in_shape))


def _count(in_shape, axes):
    axes = range(len(in_shape)) if axes is None else axes
    n = 1
    for i in axes:
        n *= in_shape[i]
    return n


def _expand_back(g, in_shape, axes):
    """A reduction's upstream gradient broadcast back over the reduced axes."""
    return g.reshape(_kept_shape(in_shape, axes)).expand(in_shape)


class _SumMean(Function):
    """sum and mean over `axes`: the backward broadcasts the gradient back
    over the reduced axes (divided by their count, for mean)."""
    op, kernel, divide = "?", None, False

    @classmethod
    def forward(cls, ctx, a, axes, keepdim):
        B = backend_for(cls.op, a)
        ctx.in_shape, ctx.axes = a.shape, axes
        return wrap(B, cls.kernel(B, a.data, axes, keepdim))

    @classmethod
    def backward(cls, ctx, g):
        g = _expand_back(g, ctx.in_shape, ctx.axes)
        if cls.divide:
            g = g / float(_count(ctx.in_shape, ctx.axes))
        return g, None, None


class Sum(_SumMean):
    op, kernel = "sum", staticmethod(lambda B, a, axes, keepdim: B.sum(a, axes, keepdim))


class Mean(_SumMean):
    op, divide = "mean", True
    kernel = staticmethod(lambda B, a, axes, keepdim: B.mean(a, axes, keepdim))


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        B = _backend_state.current()
        ctx.in_shape = a.shape
        return wrap(B, B.reshape(a.data, shape))

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.in_shape), None


class Expand(Function):
    """Broadcast to a larger shape (a view, no copy); the backward sums."""

    @staticmethod
    def forward(ctx, a, shape):
        B = _backend_state.current()
        if len(shape) < a.ndim or any(s != t and s != 1 for s, t in
                                      zip(reversed(a.shape), reversed(shape))):
            raise ValueError(f"expand: cannot broadcast shape {a.shape} to {tuple(shape)}")
        ctx.in_shape = a.shape
        return wrap(B, B.broadcast_to(a.data, tuple(shape)))

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.in_shape), None


class Cast(Function):
    """A copy in another dtype (or the same: `contiguous`)."""

    @staticmethod
    def forward(ctx, a, dtype):
        B = _backend_state.current()
        ctx.in_dtype = a.dtype
        return wrap(B, B.astype(a.data, dtype))

    @staticmethod
    def backward(ctx, g):
        return (g if g.dtype == ctx.in_dtype else g.to(ctx.in_dtype)), None


class Permute(Function):
    @staticmethod
    def forward(ctx, a, axes):
        B = _backend_state.current()
        ctx.axes = axes
        return wrap(B, B.permute(a.data, axes))

    @staticmethod
    def backward(ctx, g):
        return g.permute(*np.argsort(ctx.axes).tolist()), None


class Slice(Function):
    """a[index] for ints and slices: a view. The backward writes the gradient
    into zeros of a's shape (`SliceBackward`), whose backward is this slice."""

    @staticmethod
    def forward(ctx, a, index):
        B = _backend_state.current()
        ctx.in_shape, ctx.index = a.shape, index
        return wrap(B, B.slice(a.data, index))

    @staticmethod
    def backward(ctx, g):
        return SliceBackward.apply(g, ctx.in_shape, ctx.index), None


class SliceBackward(Function):
    @staticmethod
    def forward(ctx, g, shape, index):
        B = _backend_state.current()
        ctx.index = index
        out = B.full(shape, 0.0, g.dtype)
        B.copy_(B.slice(out, index), g.data)
        return wrap(B, out)

    @staticmethod
    def backward(ctx, gg):
        return gg[ctx.index], None, None


class Cat(Function):
    """Concatenation along one axis: each input copied into its slice of the
    output (the strided `copy_`); the backward slices the gradient."""

    @staticmethod
    def forward(ctx, dim, *tensors):
        B = backend_for("cat", *tensors)
        shape = list(tensors[0].shape)
        shape[dim] = sum(t.shape[dim] for t in tensors)
        out = B.empty(tuple(shape), tensors[0].dtype)
        start, ctx.bounds = 0, []
        for t in tensors:
            index = (slice(None),) * dim + (slice(start, start + t.shape[dim]),)
            B.copy_(B.slice(out, index), t.data)
            ctx.bounds.append(index)
            start += t.shape[dim]
        return wrap(B, out)

    @staticmethod
    def backward(ctx, g):
        return (None,) + tuple(g[index] if need else None
                               for index, need in zip(ctx.bounds, ctx.needs_input_grad[1:]))


# ============================================================ elementwise
class Unary(Function):
    """y = f(x) for a unary primitive of kernels/registry.py: the forward is the
    backend's kernel of that name (B.exp for "exp"), the backward the entry's
    `grad(x, y, g)`, written with Tensor ops. One subclass per entry is made
    below (Exp, Log, ...), and Tensor gets a method per entry (x.exp())."""
    spec = None

    @classmethod
    def forward(cls, ctx, a):
        name = cls.spec.name
        B = backend_for(name, a)
        y = wrap(B, getattr(B, name)(a.data))
        ctx.save_for_backward(a, y)
        return y

    @classmethod
    def backward(cls, ctx, g):
        x, y = ctx.saved_tensors
        return cls.spec.grad(x, y, g)


UNARY_FUNCTIONS = {spec.name: type(spec.name.capitalize(), (Unary,), {"spec": spec})
                   for spec in registry.UNARY}
Exp, Log, Log1p, Sqrt, Rsqrt, Abs = (UNARY_FUNCTIONS[n] for n in
                                     ("exp", "log", "log1p", "sqrt", "rsqrt", "abs"))


def _sign(B, a):
    """sign(a) as a raw array of a's dtype: +1, -1 or 0 (0 at NaN)."""
    zero = B.full((), 0.0, a.dtype)
    pos = B.astype(B.compare("gt", a, zero), a.dtype)
    neg = B.astype(B.compare("lt", a, zero), a.dtype)
    return B.sub(pos, neg)


class Pow(Function):
    """a ** p for a Python number p."""

    @staticmethod
    def forward(ctx, a, p):
        B = backend_for("pow", a)
        ctx.p = p
        ctx.save_for_backward(a)
        return wrap(B, B.pow_scalar(a.data, p))

    @staticmethod
    def backward(ctx, g):
        a, = ctx.saved_tensors
        if ctx.p == 0:
            return g * 0.0, None
        return g * (a ** (ctx.p - 1)) * float(ctx.p), None


class Clamp(Function):
    @staticmethod
    def forward(ctx, a, lo, hi):
        B = backend_for("clamp", a)
        ctx.save_for_backward(a)
        ctx.bounds = (lo, hi)
        return wrap(B, B.clamp(a.data, lo, hi))

    @staticmethod
    def backward(ctx, g):  # 1 inside [lo, hi] (bounds included, as torch), else 0
        a, = ctx.saved_tensors
        B, (lo, hi) = a._backend, ctx.bounds
        if lo is not None:
            g = where(wrap(B, B.compare("ge", a.data, B.full((), lo, a.dtype))), g, 0.0)
        if hi is not None:
            g = where(wrap(B, B.compare("le", a.data, B.full((), hi, a.dtype))), g, 0.0)
        return g, None, None


class _MaxMin(Function):
    """maximum/minimum: the gradient goes to the larger (smaller) input, split
    in half on ties, as torch."""
    op, winner, loser = "?", "?", "?"

    @classmethod
    def forward(cls, ctx, a, b):
        B = backend_for(cls.op, a, b)
        check_broadcast(cls.op, a.shape, b.shape)
        ctx.save_for_backward(a, b)
        kernel = B.maximum if cls.op == "maximum" else B.minimum
        return wrap(B, kernel(a.data, b.data))

    @classmethod
    def backward(cls, ctx, g):
        a, b = ctx.saved_tensors
        B = a._backend
        # weight of a: 1 where a wins, 1/2 on ties, 0 where b wins (and at NaN).
        half_ties = B.mul(B.astype(B.compare("eq", a.data, b.data), a.dtype),
                          B.full((), 0.5, a.dtype))
        wa = B.add(B.astype(B.compare(cls.winner, a.data, b.data), a.dtype), half_ties)
        wb = B.add(B.astype(B.compare(cls.loser, a.data, b.data), a.dtype), half_ties)
        need_a, need_b = ctx.needs_input_grad
        return (unbroadcast(g * wrap(B, wa), a.shape) if need_a else None,
                unbroadcast(g * wrap(B, wb), b.shape) if need_b else None)


class Maximum(_MaxMin):
    op, winner, loser = "maximum", "gt", "lt"


class Minimum(_MaxMin):
    op, winner, loser = "minimum", "lt", "gt"


class Where(Function):
    @staticmethod
    def forward(ctx, mask, a, b):
        B = backend_for("where", a, b)
        if mask.dtype != np.bool_:
            raise TypeError(f"where: condition must be a bool tensor, got {mask.dtype}")
        check_broadcast("where", mask.shape, a.shape, b.shape)
        ctx.shapes = (a.shape, b.shape)
        ctx.save_for_backward(mask)
        return wrap(B, B.where(mask.data, a.data, b.data))

    @staticmethod
    def backward(ctx, g):
        mask, = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[1:]
        return (None,
                unbroadcast(where(mask, g, 0.0), ctx.shapes[0]) if need_a else None,
                unbroadcast(where(mask, 0.0, g), ctx.shapes[1]) if need_b else None)


def where(mask, a, b):
    """nn.where(condition, a, b); a or b may be Python numbers."""
    from .tensor import as_tensor_like
    ref = a if isinstance(a, Tensor) else b
    if not isinstance(ref, Tensor):
        raise TypeError("where: at least one of a and b must be a Tensor")
    return Where.apply(mask, as_tensor_like(a, ref, "where"), as_tensor_like(b, ref, "where"))


def compare(op, a, b):
    """The bool tensor a <op> b (no gradient)."""
    B = backend_for(op, a, b)
    check_broadcast(op, a.shape, b.shape)
    return wrap(B, B.compare(op, a.data, b.data))


# ============================================================= reductions
class _Extremum(Function):
    """amax/amin over a set of axes: the gradient is shared equally by the
    elements equal to the result, as torch's amax."""
    op = "?"

    @classmethod
    def forward(cls, ctx, a, axes, keepdim):
        B = backend_for(cls.op, a)
        kernel = B.amax if cls.op == "amax" else B.amin
        y = kernel(a.data, axes, keepdim)
        ctx.in_shape, ctx.axes = a.shape, axes
        ctx.save_for_backward(a, wrap(B, y))
        return wrap(B, y)

    @classmethod
    def backward(cls, ctx, g):
        a, y = ctx.saved_tensors
        B = a._backend
        kept = B.reshape(y.data, _kept_shape(ctx.in_shape, ctx.axes))
        hit = B.astype(B.compare("eq", a.data, kept), a.dtype)
        share = B.div(hit, B.sum(hit, ctx.axes, True))
        return _expand_back(g, ctx.in_shape, ctx.axes) * wrap(B, share), None, None


class Amax(_Extremum):
    op = "amax"


class Amin(_Extremum):
    op = "amin"


class MaxMinDim(Function):
    """max/min along one dim, returning (values, indices) as torch: the
    gradient goes to the element the index names."""

    @staticmethod
    def forward(ctx, a, dim, keepdim, largest):
        B = backend_for("max" if largest else "min", a)
        idx = (B.argmax if largest else B.argmin)(a.data, dim, True)
        values = (B.amax if largest else B.amin)(a.data, (dim,), True)
        ctx.in_shape, ctx.dim, ctx.idx = a.shape, dim, idx
        if not keepdim:
            shape = tuple(s for i, s in enumerate(a.shape) if i != dim)
            values, idx = B.reshape(values, shape), B.reshape(idx, shape)
        indices = wrap(B, idx)
        ctx.mark_non_differentiable(indices)
        return wrap(B, values), indices

    @staticmethod
    def backward(ctx, g, _):
        B = g._backend
        onehot = one_hot(B, ctx.idx, ctx.in_shape[ctx.dim], ctx.dim, len(ctx.in_shape), g.dtype)
        kept = _kept_shape(ctx.in_shape, (ctx.dim,))
        return where(wrap(B, onehot), g.reshape(kept), 0.0), None, None, None


def one_hot(B, idx, n, axis, ndim, dtype):
    """The bool mask (k == idx) along `axis` of an ndim-d array with n entries
    there: idx (int64) has size 1 on that axis and broadcasts over it. The
    comparison runs in `dtype`, exact for indices below 2**24 in float32."""
    along = [1] * ndim
    along[axis] = n
    iota = B.to_device(np.arange(n, dtype=np.float64).reshape(along), dtype)
    return B.compare("eq", iota, B.astype(idx, dtype))


class Var(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdim, correction):
        B = backend_for("var", a)
        ctx.in_shape, ctx.axes, ctx.correction = a.shape, axes, correction
        ctx.save_for_backward(a)
        return wrap(B, B.var(a.data, axes, keepdim, correction))

    @staticmethod
    def backward(ctx, g):  # 2 (x - mean) / (count - correction)
        a, = ctx.saved_tensors
        axes = ctx.axes if ctx.axes is not None else tuple(range(a.ndim))
        centered = a - a.mean(axes, keepdim=True)
        scale = 2.0 / max(_count(ctx.in_shape, ctx.axes) - ctx.correction, 0)
        return _expand_back(g, ctx.in_shape, ctx.axes) * centered * scale, None, None, None


def argmax(a, dim=None, keepdim=False, largest=True):
    B = backend_for("argmax" if largest else "argmin", a)
    return wrap(B, (B.argmax if largest else B.argmin)(a.data, dim, keepdim))


# ========================================================== linear algebra
class Matmul(Function):
    """(M, K) @ (K, N) or (B, M, K) @ (B, K, N); the backward is two more
    matmuls of transposed views (no copies)."""

    @staticmethod
    def forward(ctx, a, b):
        B = backend_for("matmul", a, b)
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(b if need_a else None, a if need_b else None)
        return wrap(B, B.matmul(a.data, b.data))

    @staticmethod
    def backward(ctx, g):
        b, a = ctx.saved_tensors
        return (g @ b.mT if b is not None else None,
                a.mT @ g if a is not None else None)
