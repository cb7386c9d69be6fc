"""Every CUDA C source compiles with nvcc for sm_90, warnings as errors, with
exactly the template instantiations its launcher asks CuPy for.

CuPy compiles on a GPU with NVRTC; CI has no GPU but has nvcc, so this is
where a syntax or type error in a .cu file fails CI. Each kernels/cuda/*.cu
file is compiled by a translation unit that includes it and takes the
address of every name expression the launcher registered
(`runtime.Module.name_expressions`), which instantiates those templates for
the device. The emulator's host build of the same instantiations is covered
by every other test that runs the `cupy` backend.

Without nvcc the test is skipped with its reason, unless NN_REQUIRE_NVCC=1
(set by .ci/run), where a missing nvcc is a failure.
"""

import glob
import importlib
import os
import re
import shutil
import subprocess

import pytest

from kernels.cuda import runtime

CUDA_DIR = runtime.HERE
SOURCES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(CUDA_DIR, "*.cu")))
NVCC_FLAGS = ["-arch=sm_90", "-std=c++17", "-Werror", "all-warnings", "-cubin"]


def _nvcc():
    nvcc = shutil.which("nvcc") or (os.path.exists("/usr/local/cuda/bin/nvcc")
                                    and "/usr/local/cuda/bin/nvcc")
    if not nvcc:
        if os.environ.get("NN_REQUIRE_NVCC") == "1":
            pytest.fail("NN_REQUIRE_NVCC=1 but nvcc was not found")
        pytest.skip("nvcc not found: CUDA sources not compile-checked here")
    return nvcc


def _modules():
    """Every registered Module, after importing every launcher beside a .cu file."""
    for source in SOURCES:
        stem = source[:-3]
        if os.path.exists(os.path.join(CUDA_DIR, stem + ".py")):
            importlib.import_module(f"kernels.cuda.{stem}")
    return {m.filename: m for m in runtime.MODULES}


def test_every_source_has_a_launcher():
    assert SOURCES, "no .cu files found"
    assert sorted(_modules()) == SOURCES


@pytest.mark.parametrize("source", SOURCES)
def test_source_compiles_for_sm90_without_warnings(source, tmp_path):
    nvcc = _nvcc()
    module = _modules()[source]
    tu = tmp_path / "tu.cu"
    refs = ",\n    ".join(f"(void*)&{e}" for e in module.name_expressions)
    tu.write_text(f'#include "{source}"\n\nvoid* nn_instances[] = {{\n    {refs}\n}};\n')
    cmd = [nvcc, *NVCC_FLAGS, f"-I{CUDA_DIR}", "-o", str(tmp_path / "out.cubin"), str(tu)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
    assert not proc.stderr.strip(), f"nvcc printed:\n{proc.stderr}"
    # Every instantiation really reached the cubin: one code section per
    # kernel (C++ names, so mangled _Z...), each named after its kernel.
    cubin = (tmp_path / "out.cubin").read_bytes()
    sections = set(re.findall(rb"\.text\.(_Z\w+)", cubin))
    assert len(sections) == len(module.name_expressions), (
        f"{source}: {len(sections)} kernels compiled, {len(module.name_expressions)} registered")
    for e in module.name_expressions:
        base = e.split("<")[0].split("::")[-1].encode()
        assert any(base in name for name in sections), f"{e} is missing from {source}'s cubin"
