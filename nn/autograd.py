"""Reverse-mode autograd: `Function`, its context, the backward engine, no_grad.

Every differentiable op, built-in or user-written, is a `Function` subclass
with static `forward(ctx, ...)` and `backward(ctx, *grad_outputs)`, exactly as
`torch.autograd.Function`. Calling `.apply` runs `forward` with recording off
and, if any input needs a gradient, makes the context the graph node of the
outputs. The context keeps only what `save_for_backward` was given (Chainer's
rule: keep what the backward needs, nothing more), plus edges to the nodes
that produced the inputs.

`Tensor.backward` walks the graph in reverse topological order, sums the
gradients reaching each node, and accumulates into the `.grad` of leaf tensors.
Unless `retain_graph=True`, each node drops its saved tensors once used, so
the graph is freed and a second backward through it is a clear error.
"""

import threading

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "grad_enabled", True)


def _set_grad_enabled(on):
    _state.grad_enabled = on


class _GradMode:
    """Context manager and decorator that sets gradient recording."""

    enabled = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_grad_enabled(self.enabled)

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


class no_grad(_GradMode):
    """Ops inside record no graph (for inference and in-place updates)."""
    enabled = False


class enable_grad(_GradMode):
    enabled = True


class _Leaf:
    """Graph edge target for a leaf tensor: gradients accumulate into `.grad`."""

    __slots__ = ("tensor",)

    def __init__(self, tensor):
        self.tensor = tensor


class FunctionCtx:
    """The `ctx` of forward/backward, and the graph node of the outputs."""

    def __init__(self):
        self.needs_input_grad = ()
        self._saved = ()
        self._freed = False
        self._fn = None         # the Function subclass
        self._edges = ()        # per forward argument: (node or _Leaf, output_nr) or None
        self._n_outputs = 0
        self._output_meta = ()  # (shape, dtype) per output, to materialise missing grads

    def save_for_backward(self, *tensors):
        self._saved = tensors

    @property
    def saved_tensors(self):
        if self._freed:
            raise RuntimeError(
                f"{self._fn.__name__}: trying to backward through the graph a second time "
                "(its saved tensors were freed after the first backward). "
                "Pass retain_graph=True to the first backward if you need to.")
        return self._saved

    def _free(self):
        self._saved = ()
        self._freed = True
        for k in [k for k in vars(self) if not k.startswith("_") and k != "needs_input_grad"]:
            delattr(self, k)  # attributes set by forward, e.g. ctx.stride

    def name(self):
        return self._fn.__name__


class Function:
    """Base class of differentiable ops; subclass it and call `.apply`."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        from .tensor import Tensor
        ctx = FunctionCtx()
        ctx._fn = cls
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = is_grad_enabled() and any(ctx.needs_input_grad)
        with no_grad():
            out = cls.forward(ctx, *args, **kwargs)
        if not record:
            return out
        outputs = out if isinstance(out, tuple) else (out,)
        ctx._edges = tuple(_edge(a) if need else None
                           for a, need in zip(args, ctx.needs_input_grad))
        ctx._n_outputs = len(outputs)
        ctx._output_meta = tuple((o.shape, o.dtype) if isinstance(o, Tensor) else None
                                 for o in outputs)
        result = []
        for i, o in enumerate(outputs):
            if isinstance(o, Tensor):
                if any(o is a for a in args):  # forward returned an input: give a new handle
                    o = Tensor(o.data, _backend=o._backend)
                o.requires_grad, o.grad_fn, o._output_nr = True, ctx, i
            result.append(o)
        return tuple(result) if isinstance(out, tuple) else result[0]


def _edge(t):
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    if t._leaf_edge is None:
        t._leaf_edge = _Leaf(t)
    return (t._leaf_edge, 0)


def _topological_order(roots):
    """Graph nodes reachable from `roots`, each after every node feeding it a gradient."""
    order, visited = [], set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for e in node._edges:
                if e is not None and isinstance(e[0], FunctionCtx) and id(e[0]) not in visited:
                    stack.append((e[0], False))
    order.reverse()  # postorder reversed: consumers before producers
    return order


def run_backward(tensors, grads, retain_graph=False):
    """Backpropagate `grads` (Tensors, one per tensor) from `tensors` into leaf `.grad`s."""
    from .tensor import Tensor
    pending = {}  # id(node) -> list of summed grads, one slot per output

    def deliver(edge, g):
        target, nr = edge
        if isinstance(target, _Leaf):
            leaf = target.tensor
            if leaf.grad is None:
                leaf.grad = Tensor(leaf._backend.astype(g.data, g.dtype), _backend=leaf._backend)
            else:
                leaf.grad = Tensor(leaf._backend.add(leaf.grad.data, g.data), _backend=leaf._backend)
            return
        slots = pending.setdefault(id(target), [None] * target._n_outputs)
        slots[nr] = g if slots[nr] is None else Tensor(g._backend.add(slots[nr].data, g.data),
                                                        _backend=g._backend)

    roots = []
    for t, g in zip(tensors, grads):
        if not t.requires_grad:
            raise RuntimeError("backward: the tensor does not require grad and has no grad_fn")
        deliver(_edge(t), g)
        if t.grad_fn is not None:
            roots.append(t.grad_fn)

    with no_grad():
        for node in _topological_order(roots):
            slots = pending.pop(id(node), None)
            if slots is None:
                continue
            for i, (g, meta) in enumerate(zip(slots, node._output_meta)):
                if g is None and meta is not None:  # an unused output: its gradient is zero
                    from .tensor import zeros
                    slots[i] = zeros(meta[0], dtype=meta[1])
            if node._freed:
                node.saved_tensors  # raises the "second time" error
            grads_in = node._fn.backward(node, *slots)
            if not isinstance(grads_in, tuple):
                grads_in = (grads_in,)
            n_args = len(node._edges)
            if len(grads_in) < n_args or any(g is not None for g in grads_in[n_args:]):
                raise RuntimeError(f"{node.name()}.backward returned {len(grads_in)} gradients, "
                                   f"expected {n_args} (one per forward argument, None for "
                                   "arguments that need none)")
            for edge, g, (k, need) in zip(node._edges, grads_in,
                                          enumerate(node.needs_input_grad)):
                if edge is None or g is None:
                    continue
                if not isinstance(g, Tensor):
                    raise TypeError(f"{node.name()}.backward: gradient {k} must be a Tensor or "
                                    f"None, got {type(g).__name__}")
                want = _edge_shape(edge)
                if tuple(g.shape) != want:
                    raise RuntimeError(f"{node.name()}.backward: gradient {k} has shape "
                                       f"{tuple(g.shape)}, but its input has shape {want}")
                deliver(edge, g)
            if not retain_graph:
                node._free()


def backward(tensors, grad_tensors, retain_graph=False):
    """torch.autograd.backward: backpropagate from several outputs at once."""
    tensors = tuple(tensors) if isinstance(tensors, (tuple, list)) else (tensors,)
    grads = tuple(grad_tensors) if isinstance(grad_tensors, (tuple, list)) else (grad_tensors,)
    if len(grads) != len(tensors):
        raise ValueError(f"backward: {len(tensors)} tensors but {len(grads)} gradients")
    for t, g in zip(tensors, grads):
        if tuple(g.shape) != tuple(t.shape):
            raise RuntimeError(f"backward: gradient has shape {tuple(g.shape)}, "
                               f"expected {tuple(t.shape)}")
    run_backward(tensors, grads, retain_graph)


def _edge_shape(edge):
    target, nr = edge
    if isinstance(target, _Leaf):
        return tuple(target.tensor.shape)
    return tuple(target._output_meta[nr][0])
