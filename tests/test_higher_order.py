"""The higher-order engine: nn.autograd.grad, create_graph, once_differentiable,
saved-tensor versions and gradgradcheck (numerical second derivatives)."""

import numpy as np
import pytest
import torch

import nn
import nn.functional as F
from helpers import rel_error


def t64(a, requires_grad=True):
    return nn.tensor(np.asarray(a, np.float64), dtype=nn.float64, requires_grad=requires_grad)


# ---------------------------------------------------------------- nn.autograd.grad
def test_grad_returns_gradients_and_leaves_dot_grad_alone():
    x = t64([1.0, 2.0, 3.0])
    y = (x * x).sum()
    gx, = nn.autograd.grad(y, x)
    assert np.allclose(gx.numpy(), [2, 4, 6]) and x.grad is None
    assert gx.grad_fn is None and not gx.requires_grad


def test_grad_of_any_order():
    """x**4: 4x^3, 12x^2, 24x, 24, then 0 (unused)."""
    x = t64([0.5, -1.5])
    g = (x ** 4).sum()
    expect = [lambda v: 4 * v ** 3, lambda v: 12 * v ** 2, lambda v: 24 * v, lambda v: 24 + 0 * v]
    for k, want in enumerate(expect):
        g, = nn.autograd.grad(g.sum(), x, create_graph=True)
        assert np.allclose(g.numpy(), want(np.array([0.5, -1.5]))), k


def test_grad_outputs_sequences_non_leaf_inputs_and_allow_unused():
    a, b, c = t64([1.0, 2.0]), t64([3.0, -1.0]), t64([5.0])
    h = a * b                       # a non-leaf input
    y1, y2 = h.sum(), (h * a).sum()
    ga, gh, gc = nn.autograd.grad([y1, y2], [a, h, c], grad_outputs=[t64(2.0, False), None],
                                  allow_unused=True)
    # d(2 y1 + y2)/da = 2b + 2ab ; /dh = 2 + a
    assert np.allclose(ga.numpy(), 2 * np.array([3, -1]) + 2 * np.array([1, 2]) * [3, -1])
    assert np.allclose(gh.numpy(), [3.0, 4.0])
    assert gc is None
    with pytest.raises(RuntimeError, match="grad: input 0 .* was not used"):
        nn.autograd.grad((a * 2).sum(), [c])
    with pytest.raises(RuntimeError, match="does not require grad"):
        nn.autograd.grad((a * 2).sum(), [t64([1.0], False)])
    with pytest.raises(RuntimeError, match="implicitly created only for scalar"):
        nn.autograd.grad(a * 2, a)


def test_retain_graph_defaults_to_create_graph():
    x = t64([1.0, 2.0])
    y = (x.exp() * x).sum()
    nn.autograd.grad(y, x, create_graph=True)
    nn.autograd.grad(y, x)  # the graph was kept by the first call
    with pytest.raises(RuntimeError, match="second time"):
        nn.autograd.grad(y, x)


def test_grad_visits_only_what_leads_to_its_inputs():
    """grad(D(x_hat), x_hat) must not touch the generator's part of the graph."""
    calls = []

    class Spy(nn.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 1.0

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            return g

    w = t64([2.0])
    fake = Spy.apply(w * 3.0)           # "the generator"
    x_hat = fake.detach().requires_grad_()
    real = t64([1.0], False)
    y = (x_hat * real + fake).sum()
    nn.autograd.grad(y, x_hat)
    assert calls == [] and w.grad is None


def test_backward_create_graph_makes_dot_grad_differentiable():
    x = t64([1.0, 2.0])
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    gx, = nn.autograd.grad(x.grad.sum(), x)
    assert np.allclose(gx.numpy(), [6.0, 12.0])


def test_backward_inputs_accumulates_only_there():
    a, b = t64([1.0]), t64([2.0])
    (a * b).sum().backward(inputs=[a])
    assert np.allclose(a.grad.numpy(), [2.0]) and b.grad is None


def test_hessian_vector_product_matches_torch():
    rng = np.random.default_rng(0)
    h, u = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))

    def hvp(lib, x, v):
        y = (lib.tanh(x) * x).sum() + (x * x * x).sum()
        g, = lib.autograd.grad(y, x, create_graph=True)
        return lib.autograd.grad((g * v).sum(), x)[0]
    tx = torch.tensor(h, requires_grad=True)
    ox = t64(h)
    ours = hvp(nn, ox, t64(u, False)).numpy()
    ref = hvp(torch, tx, torch.tensor(u)).numpy()
    assert rel_error(ours, ref) < 1e-12


# ------------------------------------------------------------- once_differentiable
class RawSquare(nn.Function):
    """A user op whose backward computes on raw arrays."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return nn.tensor(x.numpy() ** 2, dtype=x.dtype)

    @staticmethod
    @nn.once_differentiable
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return nn.tensor(2 * x.numpy() * g.numpy(), dtype=x.dtype)


class TensorSquare(nn.Function):
    """The same op with its backward written with Tensor ops: differentiable."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * x * 2.0


def test_once_differentiable_first_order_works_second_order_raises():
    x = t64([3.0])
    g, = nn.autograd.grad(RawSquare.apply(x).sum(), x)
    assert np.allclose(g.numpy(), [6.0])
    g, = nn.autograd.grad(RawSquare.apply(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="RawSquare: trying to differentiate twice"):
        nn.autograd.grad(g.sum(), x)


def test_user_function_with_tensor_backward_is_twice_differentiable():
    x = t64([3.0, -1.0])
    g, = nn.autograd.grad(TensorSquare.apply(x).sum(), x, create_graph=True)
    gg, = nn.autograd.grad(g.sum(), x)
    assert np.allclose(gg.numpy(), [2.0, 2.0])
    assert nn.gradgradcheck(TensorSquare.apply, (t64([0.3, 1.2]),))


# -------------------------------------------------------- saved-tensor versions
def test_changing_a_saved_tensor_raises():
    w = nn.Parameter(t64([1.0, 2.0]))
    x = t64([3.0, 4.0])
    y = (w * x).sum()
    with nn.no_grad():
        w.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"Mul: one of the tensors it saved .* modified by an "
                                           r"in-place operation"):
        y.backward()


def test_unchanged_saved_tensors_and_step_after_backward_are_fine(backend):
    nn.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3)
    opt = nn.optim.Adam(conv.parameters(), lr=1e-3)
    x = nn.randn(2, 2, 5, 5)
    for _ in range(2):
        opt.zero_grad()
        conv(x).sum().backward()
        opt.step()  # after backward: nothing saved is needed any more


def test_optimizer_step_or_init_between_forward_and_backward_raises(backend):
    nn.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3)
    opt = nn.optim.SGD(conv.parameters(), lr=0.1)
    x = nn.randn(2, 2, 5, 5, requires_grad=True)
    y = conv(x).sum()
    y.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="ConvForward: one of the tensors it saved"):
        y.backward()
    y = conv(x).sum()
    nn.init.zeros_(conv.weight)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_inplace_on_tensor_requiring_grad_is_refused():
    x = t64([1.0])
    with pytest.raises(RuntimeError, match="add_: in-place change of a tensor that requires"):
        x.add_(1.0)
    with nn.no_grad():
        x.add_(1.0)
    assert x.item() == 2.0 and x._version.value == 1


# ------------------------------------------------------------------ gradgradcheck
GRADGRAD_CASES = [
    ("conv2d", [(1, 2, 4, 4), (2, 2, 3, 3)], lambda x, w: F.conv2d(x, w, stride=2, padding=1)),
    ("conv_transpose2d", [(1, 2, 2, 3), (2, 1, 3, 2)],
     lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=1)),
    ("batch_norm", [(3, 2, 2, 2), (2,)], lambda x, w: F.batch_norm(x, None, None, w,
                                                                    training=True)),
    ("leaky_relu", [(5,)], lambda x: F.leaky_relu(x * x - 0.5, 0.2)),
    ("tanh", [(5,)], F.tanh),
    ("sigmoid", [(5,)], F.sigmoid),
    ("bce", [(4,)], lambda p: F.binary_cross_entropy(p * 0.4 + 0.3, p * 0 + 0.25)),
    ("bce_with_logits", [(4,)], lambda x: F.binary_cross_entropy_with_logits(x, x * 0 + 0.7)),
    ("matmul", [(2, 3), (3, 2)], lambda a, b: a @ b),
    ("norm", [(2, 3)], lambda x: x.norm(dim=1)),
    ("softmax", [(2, 3)], lambda x: F.softmax(x, 1)),
    ("layer_norm", [(2, 4)], lambda x: F.layer_norm(x, (4,))),
    ("var", [(3, 4)], lambda x: x.var(0)),
]


def _full_jacobian_is_cheap():
    """Full-mode gradgradcheck builds the whole second-order Jacobian by
    finite differences: hundreds of forward passes. That is cheap on numpy
    and on a GPU, but minutes under the GPU simulators, where the directional
    (fast-mode) check runs instead; the analytic second derivatives are
    compared with torch element by element on every backend in test_grad2.py."""
    B = nn.backend.current()
    return B.name == "numpy" or B.device == "cuda"


@pytest.mark.parametrize("name,shapes,fn", GRADGRAD_CASES, ids=[c[0] for c in GRADGRAD_CASES])
def test_gradgradcheck_passes(backend, seed, name, shapes, fn):
    rng = np.random.default_rng(seed)
    inputs = [t64(rng.uniform(0.2, 1.0, s)) for s in shapes]
    assert nn.gradgradcheck(fn, inputs, fast_mode=True)
    if _full_jacobian_is_cheap():
        assert nn.gradgradcheck(fn, inputs, fast_mode=False)


def test_gradgradcheck_non_contiguous_grad_outputs(backend, seed):
    rng = np.random.default_rng(seed)
    assert nn.gradgradcheck(lambda x: x.exp() * x, [t64(rng.uniform(-1, 1, (3, 4)))],
                            gen_non_contig_grad_outputs=True)


class DetachedWeightConv(nn.Function):
    """conv2d whose input gradient uses a detached weight: right first
    derivative, wrong second derivative (the dependence on w is lost)."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return F.conv2d(x, w)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        with nn.enable_grad():
            xx = x.detach().requires_grad_()
            ww = w.detach().requires_grad_()
            y = F.conv2d(xx, ww)
            gx, gw = nn.autograd.grad(y, (xx, ww), g, create_graph=True)
        return F.conv_transpose2d(g, w.detach()), gw


def test_gradgradcheck_catches_a_wrong_second_derivative(seed):
    """gradgradcheck's own logic (numpy: it does not depend on the backend)."""
    rng = np.random.default_rng(seed)
    x, w = t64(rng.uniform(-1, 1, (1, 2, 4, 4))), t64(rng.uniform(-1, 1, (2, 2, 2, 2)))
    assert nn.gradcheck(DetachedWeightConv.apply, (x, w))  # first order is right
    with pytest.raises(nn.GradcheckError, match="Jacobian mismatch"):
        nn.gradgradcheck(DetachedWeightConv.apply, (x, w))
    assert not nn.gradgradcheck(DetachedWeightConv.apply, (x, w), raise_exception=False,
                                fast_mode=True)


@pytest.mark.parametrize("case", __import__("test_nn_primitives").PRIMITIVE_CASES,
                         ids=lambda c: c[0])
def test_gradgradcheck_every_primitive(backend, seed, case):
    """Fast mode (one random direction) over the whole primitive table."""
    name, shapes, fn, opts = case
    rng = np.random.default_rng(seed)
    needs = opts.get("requires_grad", True)
    needs = [needs] * len(shapes) if isinstance(needs, bool) else needs
    inputs = [t64(rng.uniform(opts.get("low", -2.0), opts.get("high", 2.0), s), g)
              for s, g in zip(shapes, needs)]
    assert nn.gradgradcheck(lambda *xs: fn(F, *xs), inputs, fast_mode=True)
