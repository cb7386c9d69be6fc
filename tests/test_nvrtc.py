"""Every CUDA C source compiles through NVRTC exactly as a GPU run compiles
it, and every CUDA C launch of a DCGAN step fits the hardware.

A GPU run compiles each kernels/cuda/*.cu with cupy.RawModule: the source,
options and name expressions of `runtime.Module.nvrtc_request()` (the one
definition, used by runtime.py itself), plus the options CuPy adds
(benchmarks/aot.py cupy_nvrtc_options, built with CuPy's own function). This
test hands NVRTC (the nvidia-cuda-nvrtc wheel, through CuPy's NVRTC program
class: no GPU needed) exactly that for sm_90, with ptxas' -v report added,
and checks every name expression lowers to a kernel in the cubin, with at
most 255 registers and aot.SPILL_BUDGET bytes of spills. Then it records
(without running) the cupy backend's launches of one DCGAN 64x64 batch-128
training step in float32, TF32 and float64 and checks each against CUDA's
limits with its kernel's registers and static shared memory.

tests/test_cuda_sources.py compiles the same instantiations with nvcc and
warnings as errors; this one is what CuPy really runs. Without CuPy or the
NVRTC library the tests skip with the reason, unless NN_REQUIRE_NVRTC=1
(set by .ci/run), where that is a failure.
"""

import glob
import importlib
import os

import pytest

from benchmarks import aot
from kernels.cuda import runtime

SOURCES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(runtime.HERE, "*.cu")))


def _require_nvrtc():
    try:
        from cupy.cuda import nvrtc
        return nvrtc.getVersion()
    except Exception as e:  # no cupy, or no libnvrtc for it
        why = f"NVRTC through CuPy is not usable here: {type(e).__name__}: {e}"
        if os.environ.get("NN_REQUIRE_NVRTC") == "1":
            pytest.fail(f"NN_REQUIRE_NVRTC=1 but {why} (pip install -e .[test])")
        pytest.skip(why)


def _modules():
    for source in SOURCES:
        stem = source[:-3]
        if os.path.exists(os.path.join(runtime.HERE, stem + ".py")):
            importlib.import_module(f"kernels.cuda.{stem}")
    return {m.filename: m for m in runtime.MODULES}


_COMPILED = {}


def _compiled(source):
    if source not in _COMPILED:
        _COMPILED[source] = aot.nvrtc_compile(_modules()[source])
    return _COMPILED[source]


@pytest.mark.parametrize("source", SOURCES)
def test_nvrtc_compiles_every_name_expression(source):
    _require_nvrtc()
    module = _modules()[source]
    out = _compiled(source)
    # What runtime.py hands CuPy is what was compiled, and CuPy's additions
    # for a cubin on sm_90 are there.
    _, options, names = module.nvrtc_request()
    assert set(options) <= set(out["options"])
    assert "-arch=sm_90" in out["options"] and "-ftz=true" in out["options"]
    assert out["method"] == "cubin" and out["binary"][:4] == b"\x7fELF"
    assert sorted(out["lowered"]) == sorted(names)
    assert "warning" not in out["log"].lower(), out["log"]
    for expression, mangled in out["lowered"].items():
        r = out["resources"].get(mangled)
        assert r is not None, f"{expression} ({mangled}) has no ptxas report:\n{out['log']}"
        assert r["regs"] <= aot.LIMITS["regs_per_thread"], (expression, r)
        assert r["spill_stores"] + r["spill_loads"] <= aot.SPILL_BUDGET, (expression, r)
        assert r["smem"] <= aot.LIMITS["static_smem"], (expression, r)


@pytest.mark.parametrize("dtype,precision,cfg", [
    *((d, p, "dcgan") for d, p in aot.STEP_CONFIGS), ("float32", "ieee", "mnist5k")])
def test_nvrtc_step_launches_fit_the_hardware(dtype, precision, cfg):
    _require_nvrtc()
    shapes = {"dcgan": aot.DCGAN, "mnist5k": aot.MNIST5K}[cfg]
    launches = aot.step_launches(dtype, precision, shapes, backend="cupy")
    assert len(launches) > 100
    names = {L["name"] for L in launches}
    assert any(n.startswith("conv2d_fwd") for n in names) and any("adam" in n for n in names)
    bad = []
    for L in launches:
        out = _compiled(L["module"])
        r = out["resources"][out["lowered"][L["name"]]]
        threads = L["block"][0] * L["block"][1] * L["block"][2]
        problems = aot.launch_limits(L["grid"], threads, r["regs"], r["smem"], static=True)
        if problems:
            bad.append(f"{L['name']} grid {L['grid']} block {L['block']}: {'; '.join(problems)}")
    assert not bad, "\n".join(bad)
