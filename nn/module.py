"""`Module` and `Sequential`, with torch's registration rules and state_dict keys.

Attributes that are Parameters, Modules or registered buffers are tracked in
three ordered dicts, so `state_dict` walks the tree in torch's order (a
module's own parameters, then its buffers, then its children) and produces
torch's key names ("main.1.running_mean") for the same module tree.
"""

from collections import OrderedDict, namedtuple

import numpy as np

from .autograd import no_grad
from .tensor import Parameter, Tensor, _check_dtype, float32, float64

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign attributes before Module.__init__() call")
        params, bufs, mods = self._parameters, self._buffers, self._modules
        if isinstance(value, (Parameter, Module)):
            for d in (params, bufs, mods, self.__dict__):
                d.pop(name, None)
            (params if isinstance(value, Parameter) else mods)[name] = value
        elif name in params or name in mods:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to {name!r} "
                                f"(a Parameter, a Module or None is expected)")
            (params if name in params else mods)[name] = None
        elif name in bufs:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer {name!r} "
                                f"(a Tensor or None is expected)")
            bufs[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        for d in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(d)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for d in (self._parameters, self._buffers, self._modules):
            if name in d:
                del d[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, "
                            f"got {type(param).__name__}")
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, "
                            f"got {type(tensor).__name__}")
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor
        (self._non_persistent.discard if persistent else self._non_persistent.add)(name)

    def add_module(self, name, module):
        self._modules[name] = module

    # -------------------------------------------------------------- calls
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            new = hook(self, args)
            if new is not None:
                args = new if isinstance(new, tuple) else (new,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            new = hook(self, args, out)
            if new is not None:
                out = new
        return out

    def register_forward_pre_hook(self, hook):
        """hook(module, args) runs before forward (and may return new args),
        as torch's; returns a handle whose remove() unregisters it."""
        return _HookHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook):
        """hook(module, args, output) runs after forward (and may return a new
        output)."""
        return _HookHandle(self._forward_hooks, hook)

    # ---------------------------------------------------------- traversal
    def named_modules(self, memo=None, prefix=""):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named_members(self, table, prefix, recurse):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in mods:
            for name, v in getattr(m, table).items():
                if v is None or id(v) in seen:
                    continue
                seen.add(id(v))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), v

    def named_parameters(self, prefix="", recurse=True):
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    # -------------------------------------------------------------- state
    def _state_items(self, prefix=""):
        """(key, tensor) pairs in torch's state_dict order."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                yield prefix + name, b
        for name, m in self.named_children():
            yield from m._state_items(prefix + name + ".")

    def state_dict(self, prefix="", keep_vars=False):
        return OrderedDict((k, v if keep_vars else v.detach())
                           for k, v in self._state_items(prefix))

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into this module's parameters and buffers, in place.

        Values may be nn Tensors, NumPy arrays or anything np.asarray accepts
        (a torch CPU tensor, for instance). Each keeps the destination's dtype."""
        own = OrderedDict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
            if unexpected:
                parts.append("Unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected)))
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(parts))
        with no_grad():
            for k, dst in own.items():
                if k not in state_dict:
                    continue
                v = state_dict[k]
                host = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
                if host.shape != dst.shape:
                    raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:"
                                       f" size mismatch for {k}: copying a param with shape "
                                       f"{host.shape}, the shape in the current model is "
                                       f"{dst.shape}")
                B = dst._backend
                B.copy_(dst.data, B.to_device(host, dst.dtype))
                dst._bump_version()
        return IncompatibleKeys(missing, unexpected)

    # -------------------------------------------------------------- modes
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p._backend.fill_(p.grad.data, 0.0)
                p.grad._bump_version()

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, dtype):
        """Convert floating parameters, their grads and floating buffers to `dtype`."""
        dtype = _check_dtype(dtype, "Module.to")
        for t in list(self.parameters()) + list(self.buffers()):
            if t.dtype.kind == "f":
                t.data = t._backend.astype(t.data, dtype)
                if t.grad is not None:
                    t.grad = Tensor(t._backend.astype(t.grad.data, dtype), _backend=t._backend)
        return self

    def double(self):
        return self.to(float64)

    def float(self):
        return self.to(float32)

    # --------------------------------------------------------------- repr
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({n}): " + repr(m).replace("\n", "\n  ") for n, m in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not lines else head + "\n  " + "\n  ".join(lines) + "\n)"


class _HookHandle:
    _next_id = 0

    def __init__(self, table, hook):
        self.table, self.id = table, _HookHandle._next_id
        _HookHandle._next_id += 1
        table[self.id] = hook

    def remove(self):
        self.table.pop(self.id, None)


class Sequential(Module):
    """Modules applied in order; built from arguments or an OrderedDict."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return Sequential(*mods[i]) if isinstance(i, slice) else mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        mods = list(self._modules.values())
        i = 0
        while i < len(mods):
            m = mods[i]
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            if _fusable(m, nxt):
                # BatchNorm2d then ReLU / LeakyReLU: one fused op (nothing can
                # see the intermediate: neither module has a hook).
                x = m.forward_with_activation(x, nxt.fused_as, nxt.negative_slope)
                i += 2
                continue
            x = m(x)
            i += 1
        return x


def _fusable(m, nxt):
    """True for a BatchNorm2d followed by a ReLU or LeakyReLU, exactly those
    classes (a subclass may have its own forward), without hooks."""
    return (nxt is not None and "fused_as" in type(nxt).__dict__
            and "forward_with_activation" in type(m).__dict__
            and not (m._forward_pre_hooks or m._forward_hooks or nxt._forward_pre_hooks
                     or nxt._forward_hooks))
