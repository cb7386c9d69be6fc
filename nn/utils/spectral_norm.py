"""Spectral normalisation (Miyato et al. 2018) in torch's hook form.

    conv = nn.utils.spectral_norm(nn.Conv2d(3, 64, 4, 2, 1))

The module's weight becomes the parameter `weight_orig`; buffers `weight_u`
and `weight_v` hold the power iteration's singular vectors; a forward
pre-hook sets `module.weight = weight_orig / sigma` before every forward,
sigma = u^T W v with W the weight as a (dim, -1) matrix. In training mode
each forward first runs `n_power_iterations` steps

    v = normalize(W^T u),  u = normalize(W v),   normalize(x) = x / max(||x||, eps)

under no_grad (u and v are constants of the graph, as in torch); in eval
mode u and v are used as stored. The state_dict keys, their order and these
rules are torch's (torch/nn/utils/spectral_norm.py), so torch's weight_orig,
weight_u and weight_v load and give torch's outputs in both modes. sigma is
built from differentiable ops, so a gradient penalty through a
spectral-normalised critic is differentiated twice correctly.
"""

from ..autograd import no_grad
from ..layers import ConvTranspose2d
from ..tensor import Parameter


def _normalize(x, eps):
    return x / x.norm().clamp(min=eps)


class SpectralNorm:
    """The pre-hook: computes the normalised weight, power iteration first."""

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        if n_power_iterations < 0:
            raise ValueError(f"spectral_norm: n_power_iterations must be >= 0, got "
                             f"{n_power_iterations}")
        self.name, self.n_power_iterations, self.dim, self.eps = (
            name, int(n_power_iterations), int(dim), float(eps))

    def weight_matrix(self, weight):
        if self.dim != 0:
            rest = [d for d in range(weight.ndim) if d != self.dim]
            weight = weight.permute(self.dim, *rest)
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        w_mat = self.weight_matrix(weight)
        if do_power_iteration and self.n_power_iterations > 0:
            with no_grad():
                w = w_mat.detach()
                for _ in range(self.n_power_iterations):
                    v_new = _normalize(w.t() @ u, self.eps)
                    u_new = _normalize(w @ v_new, self.eps)
                    u, v = u_new, v_new
                # torch updates the buffers in place and uses clones of them.
                getattr(module, self.name + "_u").copy_(u)
                getattr(module, self.name + "_v").copy_(v)
        sigma = (u * (w_mat @ v)).sum()
        return weight / sigma

    def __call__(self, module, inputs):
        object.__setattr__(module, self.name,
                           self.compute_weight(module, do_power_iteration=module.training))

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        for suffix in ("_orig", "_u", "_v"):
            delattr(module, self.name + suffix)
        module.__dict__.pop(self.name, None)
        module.register_parameter(self.name, Parameter(weight.detach()))


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """torch.nn.utils.spectral_norm: dim defaults to 1 for transposed convs
    (their output channels) and 0 otherwise. Returns the module."""
    if name not in module._parameters or module._parameters[name] is None:
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
    if any(isinstance(h, SpectralNorm) and h.name == name
           for h in module._forward_pre_hooks.values()):
        raise RuntimeError(f"spectral_norm: {name!r} of this module is already spectral-normed")
    if dim is None:
        dim = 1 if isinstance(module, ConvTranspose2d) else 0
    fn = SpectralNorm(name, n_power_iterations, dim, eps)
    weight = module._parameters[name]
    B = weight._backend
    with no_grad():
        w_mat = fn.weight_matrix(weight)
        h, w = w_mat.shape
        from ..tensor import Tensor
        u = _normalize(Tensor(B.random_normal((h,), 0.0, 1.0, weight.dtype), _backend=B), fn.eps)
        v = _normalize(Tensor(B.random_normal((w,), 0.0, 1.0, weight.dtype), _backend=B), fn.eps)
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    object.__setattr__(module, name, weight.detach())
    module.register_buffer(name + "_u", u.detach())
    module.register_buffer(name + "_v", v.detach())
    fn.handle = module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo spectral_norm: `name` is a plain parameter again, holding the
    normalised weight (as torch)."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ValueError(f"remove_spectral_norm: spectral_norm of {name!r} not found in "
                     f"{type(module).__name__}")
