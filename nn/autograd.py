"""Reverse-mode autograd of any order: `Function`, its context, the engine.

Every differentiable op, built-in or user-written, is a `Function` subclass
with static `forward(ctx, ...)` and `backward(ctx, *grad_outputs)`, exactly as
`torch.autograd.Function`. Calling `.apply` runs `forward` with recording off
and, if any input needs a gradient, makes the context the graph node of the
outputs. The context keeps only what `save_for_backward` was given (Chainer's
rule: keep what the backward needs, nothing more), plus edges to the nodes
that produced the inputs.

Higher order (Chainer's FunctionNode way). Every built-in backward is written
with differentiable ops, i.e. other `Function`s (nn/ops.py, nn/conv.py,
nn/activations.py, nn/losses.py, nn/functional.py).
The engine runs a backward pass with recording off by default, so those ops
cost what the raw kernels cost; with `create_graph=True` it runs the same
backward with recording on, so the gradients it returns carry a graph of
their own and can be differentiated again, to any order. A user Function
whose backward is written with Tensor ops gets this for free, as in torch;
one that computes on raw arrays can say so with `@once_differentiable`,
and differentiating through it a second time is then a clear error.

Saved-tensor versions. Each tensor has a version counter, bumped by every
in-place write the library makes (optimizer steps, nn.init, load_state_dict,
Tensor.copy_/zero_/..., batch norm's running statistics, assigning .data).
`save_for_backward` records the versions, and a backward that finds a saved
tensor changed raises instead of computing a wrong gradient.

The engine (`run_backward`) walks the graph in reverse topological order,
sums the gradients reaching each node, and either accumulates into the
`.grad` of leaf tensors (`Tensor.backward`) or returns the gradients of
chosen inputs (`grad`), visiting only the part of the graph that leads to
them. Unless retain_graph is true, each node drops its saved tensors once
used, so a second backward through it is a clear error.
"""

import functools
import sys
import threading

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "grad_enabled", True)


def _set_grad_enabled(on):
    _state.grad_enabled = on


class _GradMode:
    """Context manager and decorator that sets gradient recording."""

    enabled = True

    def __init__(self, enabled=None):
        if enabled is not None:
            self.enabled = bool(enabled)

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_grad_enabled(self.enabled)

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Ops inside record no graph (for inference and in-place updates)."""
    enabled = False


class enable_grad(_GradMode):
    enabled = True


class set_grad_enabled(_GradMode):
    """`with nn.set_grad_enabled(flag):` records a graph if flag is true."""

    def __init__(self, mode):
        super().__init__(mode)


class Version:
    """A tensor's version counter, shared by tensors that share storage
    (`detach()`, a Parameter made from a Tensor)."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


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
        self._saved_versions = ()
        self._freed = False
        self._fn = None         # the Function subclass
        self._edges = ()        # per forward argument: (node or _Leaf, output_nr) or None
        self._n_outputs = 0
        self._output_meta = ()  # (shape, dtype) per output, to materialise missing grads
        self._non_differentiable = ()

    def save_for_backward(self, *tensors):
        self._saved = tensors
        self._saved_versions = tuple(getattr(t, "_version", None) and t._version.value
                                     for t in tensors)

    def mark_non_differentiable(self, *outputs):
        """Outputs that carry no gradient (indices, masks), as in torch."""
        self._non_differentiable = tuple(id(o) for o in outputs)

    @property
    def saved_tensors(self):
        if self._freed:
            raise RuntimeError(
                f"{self._fn.__name__}: trying to backward through the graph a second time "
                "(its saved tensors were freed after the first backward). "
                "Pass retain_graph=True to the first backward if you need to.")
        for k, (t, v) in enumerate(zip(self._saved, self._saved_versions)):
            if t is not None and v is not None and t._version.value != v:
                raise RuntimeError(
                    f"{self._fn.__name__}: one of the tensors it saved for its backward "
                    f"(saved tensor {k}, shape {t.shape}) was modified by an in-place "
                    f"operation after the forward: it is at version {t._version.value}, the "
                    f"backward needs version {v}. Compute the gradient before changing it "
                    "(e.g. call backward() before optimizer.step()), or change a copy.")
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
        ctx._output_meta = tuple(  # None: no gradient slot (not a tensor, or marked)
            (o.shape, o.dtype) if isinstance(o, Tensor) and id(o) not in ctx._non_differentiable
            else None for o in outputs)
        result = []
        for i, o in enumerate(outputs):
            if isinstance(o, Tensor) and id(o) not in ctx._non_differentiable:
                if any(o is a for a in args):  # forward returned an input: give a new handle
                    o = Tensor(o.data, _backend=o._backend, _version=o._version)
                o.requires_grad, o.grad_fn, o._output_nr = True, ctx, i
            result.append(o)
        return tuple(result) if isinstance(out, tuple) else result[0]


def once_differentiable(backward):
    """Decorator for a `Function.backward` that computes on raw arrays.

    It runs with recording off; when the engine records the backward pass
    (create_graph=True) and something would need the gradient of its
    result, the result is tied to a node whose own backward raises, so a
    second-order gradient through it is an error rather than a silent zero."""

    @functools.wraps(backward)
    def wrapper(ctx, *grad_outputs):
        with no_grad():
            grads = backward(ctx, *grad_outputs)
        if not is_grad_enabled():
            return grads
        single = not isinstance(grads, tuple)
        grads = (grads,) if single else grads
        from .tensor import Tensor
        sources = [g for g in grad_outputs if isinstance(g, Tensor)]
        sources += [t for t in ctx._saved if isinstance(t, Tensor)]
        if not any(t.requires_grad for t in sources):
            return grads[0] if single else grads
        name = ctx.name()
        out = tuple(_OnceDifferentiableError.apply(g, name, *sources)
                    if isinstance(g, Tensor) else g for g in grads)
        return out[0] if single else out

    return wrapper


class _OnceDifferentiableError(Function):
    """Passes a gradient through; its own backward says why it cannot."""

    @staticmethod
    def forward(ctx, g, name, *sources):
        from .tensor import Tensor
        ctx.fn_name = name
        return Tensor(g.data, _backend=g._backend)

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(
            f"{ctx.fn_name}: trying to differentiate twice a Function whose backward is marked "
            "@once_differentiable; write its backward with differentiable Tensor ops to get "
            "higher-order gradients")


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


def _nodes_leading_to(order, targets):
    """ids of the nodes in `order` from which an edge in `targets` (a set of
    (id(node or leaf), output_nr)) can be reached: the only ones `grad` runs."""
    needed = set()
    for node in reversed(order):  # producers first
        if any(e is not None and ((id(e[0]), e[1]) in targets or id(e[0]) in needed)
               for e in node._edges):
            needed.add(id(node))
    return needed


def _add(a, b, create_graph):
    """a + b for gradients: recorded when the backward pass is."""
    if create_graph:
        return a + b
    from .tensor import Tensor
    return Tensor(a._backend.add(a.data, b.data), _backend=a._backend)


def run_backward(tensors, grads, retain_graph=False, create_graph=False, inputs=None):
    """Backpropagate `grads` (Tensors, one per tensor) from `tensors`.

    inputs=None: accumulate into the `.grad` of every leaf reached.
    inputs given: return their gradients (None where none arrived) and
    leave every `.grad` alone, running only the nodes that lead to them."""
    from .tensor import Tensor, zeros
    pending = {}  # id(node) -> list of summed grads, one slot per output
    targets = None if inputs is None else {(id(e[0]), e[1]): k
                                           for k, e in enumerate(_edge(t) for t in inputs)}
    captured = [None] * (0 if inputs is None else len(inputs))

    def capture(key, g):
        k = targets[key]
        captured[k] = g if captured[k] is None else _add(captured[k], g, create_graph)

    def deliver(edge, g):
        target, nr = edge
        if isinstance(target, _Leaf):
            if targets is not None:
                if (id(target), 0) in targets:
                    capture((id(target), 0), g)
                return
            _accumulate_grad(target.tensor, g, create_graph)
            return
        slots = pending.setdefault(id(target), [None] * target._n_outputs)
        slots[nr] = g if slots[nr] is None else _add(slots[nr], g, create_graph)

    roots = []
    for t, g in zip(tensors, grads):
        if not t.requires_grad:
            raise RuntimeError("backward: a tensor does not require grad and has no grad_fn "
                               "(was it computed under no_grad, or from inputs that do not "
                               "require grad?)")
        deliver(_edge(t), g)
        if t.grad_fn is not None:
            roots.append(t.grad_fn)

    order = _topological_order(roots)
    needed = None if targets is None else _nodes_leading_to(order, set(targets))
    with _GradMode(create_graph):
        for node in order:
            slots = pending.pop(id(node), None)
            if slots is None:
                continue
            if targets is not None:
                for nr, g in enumerate(slots):
                    if g is not None and (id(node), nr) in targets:
                        capture((id(node), nr), g)
                if id(node) not in needed:
                    continue
            for i, (g, meta) in enumerate(zip(slots, node._output_meta)):
                if g is None and meta is not None:  # an unused output: its gradient is zero
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
            for edge, g, k in zip(node._edges, grads_in, range(n_args)):
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
    return captured


def _accumulate_grad(leaf, g, create_graph):
    """leaf.grad += g, as torch: a tensor of its own the first time; with
    create_graph the sum is recorded, so the .grad can be differentiated.

    On an asynchronous (GPU) backend the gradient's memory is the leaf's
    from one step to the next: the first gradient is copied into the storage
    the leaf's previous .grad had, and later ones are added into it in place,
    whenever nothing but the leaf still refers to it (torch's AccumulateGrad
    makes the same reference-count test). So the optimizer's table of
    addresses never changes (it is uploaded once) and a training step is
    capturable as a CUDA graph. The NumPy backend allocates, as torch does."""
    from .tensor import Tensor
    B = leaf._backend
    if create_graph:
        leaf.grad = g if leaf.grad is None else leaf.grad + g
    elif leaf.grad is None:
        storage = _reusable_grad_storage(leaf, g)
        if storage is None:
            leaf.grad = Tensor(B.astype(g.data, g.dtype), _backend=B)  # own, contiguous storage
        else:
            B.copy_(storage, g.data)
            leaf.grad = Tensor(storage, _backend=B)
    elif getattr(B, "add_", None) is not None and _only_the_leaf_holds(leaf, leaf.grad):
        B.add_(leaf.grad.data, g.data)
        leaf.grad._bump_version()
    else:
        leaf.grad = Tensor(B.add(leaf.grad.data, g.data), _backend=B)


def _ref_counts(grad):
    return sys.getrefcount(grad), sys.getrefcount(grad._data)


def _only_the_leaf_holds(leaf, grad):
    """True if `grad` and its array are referenced by leaf.grad alone (and
    the leaf's kept storage: see _reusable_grad_storage). The counts of a
    tensor that only an attribute holds, measured below, account for the
    interpreter's own references."""
    if grad.grad_fn is not None or grad.requires_grad:  # a create_graph gradient: a graph's
        return False
    counts = _ref_counts(grad)
    kept = leaf.__dict__.get("_grad_storage") is grad._data
    return (grad._data.base is None and counts[0] <= _GRAD_REFS
            and counts[1] <= _DATA_REFS + kept)


def _storage_refs(holder):
    storage = holder.__dict__.get("_grad_storage")
    return sys.getrefcount(storage)


def _baseline_refs():
    """The reference counts _only_the_leaf_holds and _reusable_grad_storage
    see for objects that nothing else holds, on this interpreter."""
    import numpy as np

    class Holder:
        pass
    holder, grad = Holder(), Holder()
    grad._data = np.empty(1)
    holder.grad, holder._grad_storage = grad, np.empty(1)
    del grad
    return (*_leaf_probe(holder.grad), _storage_refs(holder))


def _leaf_probe(grad):  # the call depth of _only_the_leaf_holds
    return _ref_counts(grad)


def _reusable_grad_storage(leaf, g):
    """The storage of the leaf's previous gradient, if the backend is
    asynchronous, it fits and nothing refers to it any more; else None (and
    the leaf remembers the storage of the gradient about to be made)."""
    B = leaf._backend
    if not getattr(B, "asynchronous", False) or getattr(B, "add_", None) is None:
        return None
    unshared = _storage_refs(leaf) <= _STORAGE_REFS  # counted before a local name holds it
    storage = leaf.__dict__.get("_grad_storage")
    if (storage is None or storage.shape != tuple(g.shape) or storage.dtype != g.dtype
            or not unshared):
        storage = B.empty(tuple(g.shape), g.dtype)
        leaf._grad_storage = storage
    return storage


_GRAD_REFS, _DATA_REFS, _STORAGE_REFS = _baseline_refs()


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _grad_tensors(op, outputs, grad_outputs):
    """The upstream gradient of each output: given, or 1 for a scalar."""
    from .tensor import Tensor, as_tensor_like
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    grad_outputs = _as_tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"{op}: {len(outputs)} outputs but {len(grad_outputs)} gradients")
    grads = []
    for t, g in zip(outputs, grad_outputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: outputs must be Tensors, got {type(t).__name__}")
        if g is None:
            if t.numel() != 1:
                raise RuntimeError(f"{op}: grad can be implicitly created only for scalar "
                                   f"outputs; this output has shape {t.shape}, pass its gradient")
            g = Tensor(t._backend.full(t.shape, 1.0, t.dtype), _backend=t._backend)
        else:
            g = as_tensor_like(g, t, op)
        if tuple(g.shape) != tuple(t.shape):
            raise RuntimeError(f"{op}: gradient has shape {tuple(g.shape)}, expected "
                               f"{tuple(t.shape)}")
        grads.append(g)
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """torch.autograd.backward: accumulate into leaves' .grad from several outputs."""
    tensors = _as_tuple(tensors)
    grads = _grad_tensors("backward", tensors, grad_tensors)
    retain_graph = create_graph if retain_graph is None else retain_graph
    if inputs is None:
        run_backward(tensors, grads, retain_graph, create_graph)
        return
    inputs = _as_tuple(inputs)
    got = run_backward(tensors, grads, retain_graph, create_graph, inputs=inputs)
    for t, g in zip(inputs, got):
        if g is not None:
            _accumulate_grad(t, g, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """torch.autograd.grad: the gradients of `outputs` w.r.t. `inputs`, returned
    as a tuple (no .grad is touched). With create_graph=True they carry a graph
    and can be differentiated again. retain_graph defaults to create_graph."""
    from .tensor import Tensor
    outputs, inputs = _as_tuple(outputs), _as_tuple(inputs)
    for k, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: inputs must be Tensors, got {type(t).__name__} at {k}")
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {k} (shape {t.shape}) does not require grad; "
                               "set requires_grad=True on it before the forward pass")
    grads = _grad_tensors("grad", outputs, grad_outputs)
    retain_graph = create_graph if retain_graph is None else retain_graph
    got = run_backward(outputs, grads, retain_graph, create_graph, inputs=inputs)
    for k, g in enumerate(got):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {k} (shape {inputs[k].shape}) was not used to "
                               "compute the outputs; pass allow_unused=True to get None for it")
        if g is not None and not create_graph:
            got[k] = g.detach()
    return tuple(got)


def _edge_shape(edge):
    target, nr = edge
    if isinstance(target, _Leaf):
        return tuple(target.tensor.shape)
    return tuple(target._output_meta[nr][0])
