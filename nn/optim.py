"""torch.optim.Adam and SGD over the backends' multi-tensor update kernels.

`param_groups` and `state` follow torch's layout, and so do `state_dict` and
`load_state_dict` (parameters are referred to by their index across groups),
so optimizer checkpoints read like torch's.
"""

import warnings

import numpy as np

from .autograd import enable_grad, no_grad
from .tensor import Tensor


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = {}  # Parameter -> dict
        self.param_groups = []
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        group = dict(group)
        group["params"] = list(group["params"])
        for p in group["params"]:
            if not isinstance(p, Tensor) or not p.is_leaf:
                raise TypeError(f"{type(self).__name__}: can only optimize leaf Tensors, got "
                                f"{type(p).__name__}")
        if len({id(p) for p in group["params"]}) != len(group["params"]):
            # torch's warning, word for word. The duplicates stay in the group
            # (state_dict indexes them as torch does); each step updates a
            # parameter once, since one multi-tensor launch must not write a
            # tensor twice.
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "in future, this will cause an error; "
                          "see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one "
                             "parameter group")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p._backend.fill_(p.grad.data, 0.0)

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; `closure`, if
        given, re-evaluates the loss (with grad enabled) and its value is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, B = self._with_grads(group)
            if params:
                self._update(group, params, B)
        return loss

    def _update(self, group, params, B):
        raise NotImplementedError

    def _with_grads(self, group):
        """The group's parameters that have a gradient, and their backend."""
        params = list({id(p): p for p in group["params"] if p.grad is not None}.values())
        for p in params:
            if p.grad.shape != p.shape or p.grad.dtype != p.dtype:
                raise RuntimeError(f"{type(self).__name__}: gradient {p.grad.shape} "
                                   f"{p.grad.dtype} does not match parameter {p.shape} {p.dtype}")
            if p._backend is not params[0]._backend and p._backend.device != params[0].device:
                raise RuntimeError(f"{type(self).__name__}: parameters of one group live on "
                                   "different devices")
        return params, (params[0]._backend if params else None)

    # ------------------------------------------------------------- state
    _ARRAY_STATE = ()  # names of per-parameter state entries that are arrays
    # torch options we do not implement: a saved state asking for them is refused
    # rather than silently ignored.
    _UNSUPPORTED = ("amsgrad", "maximize")

    def state_dict(self):
        index = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.detach() if isinstance(v, Tensor) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved parameter groups "
                             "do not match this optimizer's in number or size")
        params = {i: p for saved, g in zip(groups, self.param_groups)
                  for i, p in zip(saved["params"], g["params"])}
        for saved in groups:
            for k, v in saved.items():
                if k in self._UNSUPPORTED and v:
                    raise NotImplementedError(f"{type(self).__name__}.load_state_dict: the saved "
                                              f"group has {k}={v!r}, which is not supported")
        for saved, g in zip(groups, self.param_groups):
            g.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        with no_grad():
            for i, entry in state_dict["state"].items():
                p = params[int(i)]
                B = p._backend
                loaded = {}
                for k, v in entry.items():
                    if k in self._ARRAY_STATE and v is not None:
                        host = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
                        if host.shape != p.shape:
                            raise ValueError(f"{type(self).__name__}.load_state_dict: state "
                                             f"{k!r} of parameter {i} has shape {host.shape}, "
                                             f"the parameter has {p.shape}")
                        v = Tensor(B.to_device(host, p.dtype), _backend=B)
                    elif k == "step":
                        v = int(float(v.item() if hasattr(v, "item") else v))
                    loaded[k] = v
                self.state[p] = loaded


class Adam(Optimizer):
    _ARRAY_STATE = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False):
        if amsgrad:
            raise NotImplementedError("Adam: amsgrad=True is not supported")
        if not 0.0 <= lr:
            raise ValueError(f"Adam: invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Adam: invalid epsilon value: {eps}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Adam: invalid beta parameters: {betas}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Adam: invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=False))

    def _update(self, g, params, B):
        for p in params:
            if p not in self.state:
                self.state[p] = {"step": 0,
                                 "exp_avg": Tensor(B.full(p.shape, 0.0, p.dtype), _backend=B),
                                 "exp_avg_sq": Tensor(B.full(p.shape, 0.0, p.dtype), _backend=B)}
            self.state[p]["step"] += 1
        st = [self.state[p] for p in params]
        b1, b2 = g["betas"]
        # One multi-tensor launch for the whole group.
        B.adam_step_([p.data for p in params], [p.grad.data for p in params],
                     [s["exp_avg"].data for s in st], [s["exp_avg_sq"].data for s in st],
                     [s["step"] for s in st], g["lr"], b1, b2, g["eps"], g["weight_decay"])
        _bump_versions(params, st, ("exp_avg", "exp_avg_sq"))


class SGD(Optimizer):
    _ARRAY_STATE = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        if lr < 0.0:
            raise ValueError(f"SGD: invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"SGD: invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"SGD: invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, g, params, B):
        bufs, first = [], []
        for p in params:
            st = self.state.setdefault(p, {"momentum_buffer": None})
            if g["momentum"] != 0 and st["momentum_buffer"] is None:
                st["momentum_buffer"] = Tensor(B.empty(p.shape, p.dtype), _backend=B)
                first.append(True)
            else:
                first.append(False)
            buf = st["momentum_buffer"]
            bufs.append(None if g["momentum"] == 0 or buf is None else buf.data)
        B.sgd_step_([p.data for p in params], [p.grad.data for p in params], bufs, first,
                    g["lr"], g["momentum"], g["dampening"], g["weight_decay"], g["nesterov"])
        _bump_versions(params, [self.state[p] for p in params], ("momentum_buffer",))


def _bump_versions(params, states, keys):
    """The step wrote these in place: a graph that saved them is now stale."""
    for p, st in zip(params, states):
        p._bump_version()
        for k in keys:
            if st.get(k) is not None and hasattr(st[k], "_bump_version"):
                st[k]._bump_version()


from . import swa_utils  # noqa: E402 -- torch.optim.swa_utils' place (AveragedModel, EMA)
