"""`gradcheck`: analytic gradients against central differences, in float64.

The same contract as `torch.autograd.gradcheck`: an element passes when
|analytic - numerical| <= atol + rtol * |numerical|. The check:
  1. copies every input to a float64 leaf (the check is always float64);
  2. slow mode: builds the full Jacobian both ways, one backward per output
     element and two forwards per input element;
     fast mode: compares one random projection u^T J v (torch's and Chainer's
     directional check), one backward and two forwards per input;
  3. runs the backward a second time and requires the same gradients up to
     `nondet_tol` (reentrancy: a backward that depends on hidden state fails).
A failure reports the input, the worst element, and both values.
"""

import numpy as np

from .autograd import no_grad
from .tensor import Tensor, float64, tensor


class GradcheckError(RuntimeError):
    pass


def _outputs(fn, inputs):
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    outs = [o for o in outs if isinstance(o, Tensor)]
    for o in outs:
        if o.dtype != float64:
            raise GradcheckError(f"gradcheck: fn returned a {o.dtype} output; the check runs in "
                                 "float64, so every parameter fn uses must be float64 too")
    return outs


def _flat_outputs(fn, inputs):
    with no_grad():
        return np.concatenate([o.numpy().ravel() for o in _outputs(fn, inputs)])


def _vjp(fn, inputs, checked, out_vectors):
    """J^T v: gradients of sum(out * v) w.r.t. each checked input (flat float64)."""
    for i in checked:
        inputs[i].grad = None
    outs = _outputs(fn, inputs)
    pairs = [(o, v) for o, v in zip(outs, out_vectors) if o.requires_grad]
    if not pairs:
        raise GradcheckError("gradcheck: no output requires grad")
    total = None
    for o, v in pairs:
        term = (o * tensor(v.reshape(o.shape), dtype=float64)).sum()
        total = term if total is None else total + term
    total.backward()
    return [np.zeros(inputs[i].numel()) if inputs[i].grad is None
            else inputs[i].grad.numpy().ravel().astype(np.float64) for i in checked]


def _numerical_directional(fn, inputs, i, direction, eps):
    """(f(x + eps d) - f(x - eps d)) / 2 eps, flattened, for input i along d."""
    x = inputs[i]
    base = x.numpy()
    B = x._backend
    values = []
    for sign in (1, -1):
        x.data = B.to_device(base + sign * eps * direction.reshape(base.shape), float64)
        values.append(_flat_outputs(fn, inputs))
    x.data = B.to_device(base, float64)
    return (values[0] - values[1]) / (2 * eps)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, nondet_tol=0.0,
              raise_exception=True, fast_mode=False):
    """True if fn's analytic gradients match finite differences at `inputs`."""
    inputs = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
    inputs = [tensor(x.numpy(), requires_grad=x.requires_grad, dtype=float64)
              if isinstance(x, Tensor) else x for x in inputs]
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input tensor has requires_grad=True")

    def fail(msg):
        if raise_exception:
            raise GradcheckError(msg)
        return False

    out_sizes = [o.numel() for o in _outputs(fn, inputs)]
    rng = np.random.default_rng(0)
    if fast_mode:
        # u^T J v for one random unit direction v per input and one random u.
        u = [rng.standard_normal(n) for n in out_sizes]
        u_flat = np.concatenate(u)
        analytic_vjp = _vjp(fn, inputs, checked, u)
        for k, i in enumerate(checked):
            v = rng.standard_normal(inputs[i].numel())
            v /= np.linalg.norm(v) or 1.0
            numerical = float(u_flat @ _numerical_directional(fn, inputs, i, v, eps))
            analytic = float(analytic_vjp[k] @ v)
            if not abs(analytic - numerical) <= atol + rtol * abs(numerical):
                return fail(f"gradcheck (fast mode): input {i}: the projection u^T J v differs: "
                            f"analytic {analytic!r}, numerical {numerical!r}")
        first = analytic_vjp
        again = _vjp(fn, inputs, checked, u)
    else:
        n_out = sum(out_sizes)
        analytic = [np.empty((n_out, inputs[i].numel())) for i in checked]
        for row, onehot in enumerate(np.eye(n_out)):  # one backward per output element
            rows = _vjp(fn, inputs, checked, np.split(onehot, np.cumsum(out_sizes)[:-1]))
            for k in range(len(checked)):
                analytic[k][row] = rows[k]
        for k, i in enumerate(checked):
            x = inputs[i]
            numerical = np.stack([_numerical_directional(fn, inputs, i, e, eps)
                                  for e in np.eye(x.numel())], axis=1)  # (n_out, n_in)
            a = analytic[k]
            err = np.abs(a - numerical) - (atol + rtol * np.abs(numerical))
            if err.size and not (err <= 0).all():
                r, c = np.unravel_index(np.nanargmax(np.where(np.isnan(err), np.inf, err)),
                                        err.shape)
                where = np.unravel_index(c, x.shape)
                return fail(f"gradcheck: Jacobian mismatch for input {i} (shape {x.shape}) at "
                            f"element {tuple(int(w) for w in where)}, output element {int(r)}: "
                            f"analytic {a[r, c]!r}, numerical {numerical[r, c]!r} "
                            f"(atol={atol}, rtol={rtol})")
        probe = [rng.standard_normal(n) for n in out_sizes]
        first = _vjp(fn, inputs, checked, probe)
        again = _vjp(fn, inputs, checked, probe)
    for k, i in enumerate(checked):
        diff = np.abs(first[k] - again[k])
        if diff.size and not diff.max() <= nondet_tol:
            j = int(diff.argmax())
            return fail(f"gradcheck: backward is not reentrant for input {i}: two backward passes "
                        f"differ at element {j}: {first[k][j]!r} vs {again[k][j]!r} "
                        f"(nondet_tol={nondet_tol})")
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True, fast_mode=False,
                  nondet_tol=0.0):
    """True if fn's second derivatives match finite differences, as torch's
    gradgradcheck: `gradcheck` of the map (inputs, v) -> grad(fn(inputs),
    inputs, v, create_graph=True), so the numerical side differentiates the
    analytic first derivatives and the analytic side runs the double backward.
    grad_outputs v default to random float64 tensors requiring grad, one per
    output; gen_non_contig_grad_outputs hands fn's backward non-contiguous
    views of them."""
    from . import autograd
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    if grad_outputs is None:
        with no_grad():
            outs = _outputs(fn, [tensor(x.numpy(), dtype=float64) if isinstance(x, Tensor) else x
                                 for x in inputs])
        rng = np.random.default_rng(1)
        grad_outputs = tuple(tensor(rng.uniform(-1, 1, o.shape), dtype=float64,
                                    requires_grad=True) for o in outs)
    else:
        grad_outputs = tuple(grad_outputs) if isinstance(grad_outputs, (tuple, list)) \
            else (grad_outputs,)
    n_out = len(grad_outputs)

    def first_derivatives(*args):
        xs, vs = args[:-n_out], args[-n_out:]
        if gen_non_contig_grad_outputs:
            vs = tuple(_non_contiguous(v) for v in vs)
        with autograd.enable_grad():  # the numerical side calls this under no_grad
            outs = _outputs(fn, xs)
            diff = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
            grads = autograd.grad(outs, diff, vs, create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_derivatives, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     nondet_tol=nondet_tol, raise_exception=raise_exception,
                     fast_mode=fast_mode)


def _non_contiguous(v):
    """The values of v in a view with stride 2 along its last dim (differentiable)."""
    if v.ndim == 0:
        return v
    return v.unsqueeze(-1).expand(*v.shape, 2).contiguous()[..., 0]
