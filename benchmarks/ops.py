"""Per-op benchmarks: every case of benchmarks/cases.py on every provider,
checked against torch before it is timed.

Providers:
  numpy, triton, cupy       our backends through the contract (kernels.get_backend)
  triton-tf32, cupy-tf32    the same backends with their GEMMs in TF32 (the
                            conv and matmul cases: both backends' matmul runs
                            on the conv GEMM core, under the same switch)
  torch                     torch eager, float32 (on a GPU: cudnn.benchmark on,
                            TF32 off); the baseline of every fp32 row
  torch-tf32                torch eager with TF32 convs and matmuls (GPU; conv
                            and matmul cases); the baseline of every tf32 row
  torch-compile             torch.compile(mode="max-autotune") of the torch
                            call (GPU; forward-style ops, where it applies)

Correctness first: each provider's outputs on fresh copies of the same inputs
are compared with the torch float32 (TF32 off) outputs by ||a - b|| / ||b||,
within 1e-4 (both sides are float32 with different summation orders; the
float64 agreement of every kernel is the test suite's job), or 5e-3 for TF32
providers (TF32 keeps 10 mantissa bits). Bool and integer outputs (compare's
mask, argmax's indices) must equal torch's exactly, dtype included; their
rel_err_vs_torch is the fraction of elements that differ. An output of the
wrong shape (or a missing output) is wrong, with error inf. Random draws are
checked by their moments. A provider that fails is reported as wrong and not
timed, and the command exits non-zero.
"""

import contextlib
import math

import numpy as np

from . import cost
from .cases import make_inputs

OURS = ("numpy", "triton", "cupy", "triton-tf32", "cupy-tf32")
TORCH = ("torch", "torch-tf32", "torch-compile")
TOL = {"fp32": 1e-4, "tf32": 5e-3}


def precision_of(provider):
    return "tf32" if provider.endswith("tf32") else "fp32"


def baseline_of(provider):
    return "torch-tf32" if precision_of(provider) == "tf32" else "torch"


@contextlib.contextmanager
def conv_precision(backend_name, precision):
    """Switch a GPU backend's GEMMs (conv and matmul share the switch) to
    `precision` for the block."""
    if backend_name == "triton":
        from kernels.triton import common as mod
        old, setter = mod.DOT_PRECISION, mod.set_precision
    elif backend_name == "cupy":
        from kernels.cuda import conv as mod
        old, setter = mod.PRECISION, mod.set_precision
    else:
        yield
        return
    setter("tf32" if precision == "tf32" else "ieee")
    try:
        yield
    finally:
        setter(old)


@contextlib.contextmanager
def torch_mode(provider, device):
    """cudnn.benchmark and the TF32 switches for a torch provider."""
    import torch
    if device != "cuda":
        yield
        return
    b = torch.backends
    old = (b.cudnn.benchmark, b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32)
    tf32 = provider == "torch-tf32"
    b.cudnn.benchmark, b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = True, tf32, tf32
    try:
        yield
    finally:
        b.cudnn.benchmark, b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = old


def applies(provider, case, device):
    """None if `provider` runs `case` here, else why not."""
    if provider.endswith("tf32") and not case.gemm:
        return "TF32 changes only the GEMMs (conv, matmul)"
    if provider in ("torch-tf32", "torch-compile") and device != "cuda":
        return "GPU only"
    if provider == "torch-compile" and not case.compilable:
        return "torch.compile does not apply (a backward or optimizer call)"
    return None


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / d if d > 0 else np.linalg.norm(a - b))


def _error(out, ref):
    """(error, exact) of one output against torch's: exact for bool and
    integer outputs (the fraction of elements that differ; another dtype is
    wrong), else the relative error; inf for another shape."""
    out, ref = np.asarray(out), np.asarray(ref)
    exact = ref.dtype.kind in "biu" or out.dtype.kind in "biu"
    if out.shape != ref.shape or (exact and out.dtype != ref.dtype):
        return math.inf, exact
    if exact:
        return (float(np.mean(out != ref)) if out.size else 0.0), True
    return _rel(out, ref), False


def check(outs, reference, tol):
    """(ok, error): every output within `tol` of torch's (exact ones equal)."""
    if len(outs) != len(reference):
        return False, math.inf
    errors = [_error(o, r) for o, r in zip(outs, reference)]
    ok = all(e == 0 if exact else e <= tol for e, exact in errors)
    return ok, float(np.max([e for e, _ in errors])) if errors else 0.0  # NaN propagates


def _moments_ok(x, op):
    x = np.asarray(x, np.float64).ravel()
    slack = 6 / np.sqrt(max(x.size, 1))  # six standard errors
    if op == "random_normal":
        return abs(x.mean()) <= slack and abs(x.std() - 1) <= 2 * slack + 0.01
    return x.min() >= -1 and x.max() < 1 and abs(x.mean()) <= slack


class OpRunner:
    """Runs the cases on one device ("cpu" or "cuda") with one timer."""

    def __init__(self, device, timer, peaks):
        self.device, self.timer, self.peaks = device, timer, peaks

    # ------------------------------------------------------------ providers
    def _ours(self, name, case, host):
        import kernels
        base = name.split("-")[0]
        be = kernels.get_backend(base)
        arrays = {k: be.to_device(v, v.dtype) for k, v in host.items()}
        thunk = case.ours(be, arrays)
        prec = precision_of(name)

        def run():
            with conv_precision(base, prec):
                return thunk()

        def to_host(outs):
            return [be.to_host(o) for o in outs]
        return run, to_host

    def _torch(self, name, case, host):
        import torch
        tensors = {k: torch.from_numpy(v.copy()).to(self.device) for k, v in host.items()}
        tensors["_device"] = self.device
        with torch_mode(name, self.device):
            thunk = case.torch_fn(tensors)
            if name == "torch-compile":
                thunk = torch.compile(thunk, mode="max-autotune")

        def run():
            with torch_mode(name, self.device):
                return thunk()

        def to_host(outs):
            return [o.detach().cpu().numpy() for o in outs]
        return run, to_host

    def prepare(self, provider, case, host):
        if provider in TORCH:
            return self._torch(provider, case, host)
        return self._ours(provider, case, host)

    # ------------------------------------------------------------------ run
    def run_case(self, case, providers, seed):
        host = make_inputs(case, seed)
        ref_run, ref_host = self._torch("torch", case, host)
        reference = ref_host(ref_run())
        rows = []
        for p in providers:
            row = dict(shape_set=case.shape_set, op=case.op, case=case.label, provider=p,
                       precision=precision_of(p), flops=case.flops, bytes=case.bytes)
            why = applies(p, case, self.device)
            if why:
                continue  # not a row: the provider does not do this op here
            run, to_host = self.prepare(p, case, host)
            outs = to_host(run())
            if case.statistical:
                ok, err = all(_moments_ok(o, case.op) for o in outs), None
            else:
                ok, err = check(outs, reference, TOL[row["precision"]])
            row["rel_err_vs_torch"] = err
            if not ok:
                row["status"] = "wrong"
                rows.append(row)
                continue
            # Fresh inputs for timing: in-place ops (optimizers, running
            # statistics) then start from the same state on every provider.
            run, _ = self.prepare(p, case, host)
            row.update(self.timer(run), status="ok")
            self._derive(row)
            rows.append(row)
        for row in rows:
            base = next((r for r in rows if r["provider"] == baseline_of(row["provider"])
                         and r.get("status") == "ok"), None)
            if row.get("status") == "ok" and base is not None:
                row["vs_torch"] = row["median_s"] / base["median_s"]
        return rows

    def _derive(self, row):
        t = row["median_s"]
        row["gflops_per_s"] = row["flops"] / t / 1e9
        row["gb_per_s"] = row["bytes"] / t / 1e9
        peak = self.peaks["flops"].get(row["precision"], self.peaks["flops"]["fp32"])
        bound, attainable = cost.roofline(row["flops"], row["bytes"], peak,
                                          self.peaks["bandwidth"])
        row["bound"] = bound
        if row["flops"] > 0:
            row["pct_of_roofline"] = 100 * (row["flops"] / t) / attainable
        else:  # pure data movement: the fraction of the measured bandwidth
            row["pct_of_roofline"] = 100 * (row["bytes"] / t) / self.peaks["bandwidth"]


def simulated(provider):
    """True for our GPU backend that runs on the CPU here (Triton's
    interpreter, the CUDA emulator): the backend itself says so by its device."""
    import kernels
    base = provider.split("-")[0]
    return base in ("triton", "cupy") and kernels.why_unavailable(base) is None \
        and kernels.get_backend(base).device == "cpu"


def available_providers(device, smoke):
    """Providers that can run here: ours where the backend is available (the
    CPU-simulated GPU backends only in smoke runs, where timings mean
    nothing), and torch's on this device."""
    import kernels
    out = []
    for name in ("numpy", "triton", "cupy"):
        if kernels.why_unavailable(name) is not None:
            continue
        if device == "cuda" and name == "numpy":
            continue
        if device == "cpu" and name != "numpy" and not (simulated(name) and smoke):
            continue
        out.append(name)
        if name != "numpy" and (device == "cuda" or smoke):
            out.append(f"{name}-tf32")
    out.append("torch")
    if device == "cuda":
        out += ["torch-tf32", "torch-compile"]
    return out
