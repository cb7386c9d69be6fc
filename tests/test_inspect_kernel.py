"""benchmarks/inspect_kernel.py: the launch table, the offline register and
shared-memory report and the roofline, on both GPU backends.

Without a GPU the ops run (or are only recorded) on the CPU simulators that
conftest.py turns on; the resources come from offline sm_90 compiles (nvcc
for the CUDA C kernels, Triton's compiler and bundled ptxas for Triton), so
these tests need no GPU. Shapes are small: the Triton compiles dominate.
"""

import json
import os
import re

import pytest

from benchmarks import inspect_kernel as ik

CONV = ["--op", "conv2d_forward", "--x", "2,4,8,8", "--w", "8,4,4,4", "--stride", "2",
        "--padding", "1"]
BN = ["--op", "batch_norm_train_forward", "--x", "4,8,6,6"]
MATMUL = ["--op", "matmul", "--x", "2,48,40", "--y", "2,40,24", "--transpose-x"]
EXP = ["--op", "exp", "--x", "4,8,6,6"]
GRID = re.compile(r"\((\d+), (\d+), (\d+)\)")


def _have_nvcc():
    return ik._nvcc() is not None


def _sections(text):
    """{1: launch lines, 2: resource lines, 3: roofline lines} of a report."""
    out, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^([123])\. ", line)
        if m:
            current = int(m.group(1))
            out[current] = []
        elif current is not None and line.strip():
            out[current].append(line)
    return out


def _launch_rows(section):
    """The numbered rows of a table: (index, the rest of the line)."""
    return [line for line in section if re.match(r"^\s+\d+\s", line)]


def _inspect(capsys, backend, args):
    assert ik.main(["--backend", backend, *args]) == 0
    return capsys.readouterr().out


def _check_report(text, backend, n_launches):
    s = _sections(text)
    assert set(s) == {1, 2, 3}, text
    launches = [r for r in _launch_rows(s[1]) if GRID.search(r)]
    assert len(launches) == n_launches, text
    for row in launches:  # every grid is three positive ints
        assert all(int(v) >= 1 for v in GRID.search(row).groups()), row
    roof = "\n".join(s[3])
    for key in ("peaks ", "ridge point", "intensity", "bound", "attainable"):
        assert key in roof, text
    assert re.search(r"(compute|memory)-bound", roof), text
    # Registers: the second column of each resource row.
    rows = _launch_rows(s[2])[:n_launches]
    assert len(rows) == n_launches, text
    return [row.split()[1] for row in rows]


@pytest.mark.parametrize("backend", ["cupy", "triton"])
def test_conv_report(backend, capsys):
    text = _inspect(capsys, backend, CONV)
    regs = _check_report(text, backend, n_launches=1)
    kernel = "conv2d_fwd_v1<float" if backend == "cupy" else "_conv2d_forward_kernel"
    assert kernel in text
    if backend == "triton":
        assert "constexprs:" in text and "BLOCK_M=" in text
    if backend == "cupy" and not _have_nvcc():
        pytest.skip("nvcc not found: CUDA register counts not checked")
    assert all(r.isdigit() and int(r) > 0 for r in regs), text


@pytest.mark.parametrize("backend", ["cupy", "triton"])
def test_batch_norm_report(backend, capsys):
    # train forward: partial statistics, finalize, normalize
    text = _inspect(capsys, backend, BN)
    regs = _check_report(text, backend, n_launches=3)
    assert "memory-bound" in text
    if backend == "cupy" and not _have_nvcc():
        pytest.skip("nvcc not found: CUDA register counts not checked")
    assert all(r.isdigit() and int(r) > 0 for r in regs), text


@pytest.mark.parametrize("backend", ["cupy", "triton"])
def test_run_executes_same_plan(backend, capsys, monkeypatch):
    # --run executes the kernels on the simulator with the same launches as
    # the plan; resources are not the point here, so skip the compiles.
    monkeypatch.setattr(ik, "cuda_resources",
                        lambda launches: ({L["name"]: "n/a: skipped" for L in launches}, None))
    monkeypatch.setattr(ik, "triton_resources",
                        lambda launches: (["n/a: skipped"] * len(launches), None))
    plan = _sections(_inspect(capsys, backend, CONV))[1]
    ran = _inspect(capsys, backend, CONV + ["--run", "--time-ms", "0.01"])
    assert "run once" in ran and "achieved" in ran
    assert _sections(ran)[1] == plan


@pytest.mark.parametrize("backend", ["cupy", "triton"])
def test_matmul_report(backend, capsys):
    # A batched product with a transposed-view operand: one launch, the
    # batch on a grid axis, counted as a GEMM (2*B*M*N*K FLOPs).
    text = _inspect(capsys, backend, MATMUL)
    regs = _check_report(text, backend, n_launches=1)
    assert "(transposed view)" in text and "2*B*M*N*K" in text
    assert f"{2 * 2 * 48 * 24 * 40 / 1e3:.3g} kFLOP" in text
    kernel = "matmul_v1<float" if backend == "cupy" else "_matmul_kernel"
    assert kernel in text
    if backend == "cupy" and not _have_nvcc():
        pytest.skip("nvcc not found: CUDA register counts not checked")
    assert all(r.isdigit() and int(r) > 0 for r in regs), text


@pytest.mark.parametrize("backend", ["cupy", "triton"])
def test_unary_report(backend, capsys):
    # A registry unary op: its inputs from the registry's domain, one
    # elementwise launch, memory-bound.
    text = _inspect(capsys, backend, EXP)
    regs = _check_report(text, backend, n_launches=1)
    assert "in [-3, 3)" in text and "memory-bound" in text
    if backend == "cupy" and not _have_nvcc():
        pytest.skip("nvcc not found: CUDA register counts not checked")
    assert all(r.isdigit() and int(r) > 0 for r in regs), text


def test_every_timed_op_is_inspectable():
    # The op table is the registry's timed ops, each with its family's builder.
    from kernels import registry
    assert set(ik.OPS) == registry.timed_ops()
    for name, builder in ik.OPS.items():
        assert builder is ik.BUILDERS[registry.BY_NAME[name].family], name


def test_missing_kernel_module_is_a_clear_error(capsys, monkeypatch):
    # A backend whose matmul module is not there (yet) is told, not a traceback.
    import kernels
    B = kernels.get_backend("triton")
    monkeypatch.setattr(B, "matmul_module", None)
    assert ik.main(["--backend", "triton", *MATMUL]) == 2
    assert "kernels/triton/matmul.py" in capsys.readouterr().err

    def unimportable(name):
        raise ModuleNotFoundError("No module named 'kernels.triton.matmul'")
    monkeypatch.setattr(kernels, "get_backend", unimportable)
    assert ik.main(["--backend", "triton", *MATMUL]) == 2
    assert "cannot be imported" in capsys.readouterr().err


def test_recording_hook_keeps_results():
    # The CUDA hook records without changing what a launch computes.
    import numpy as np

    import kernels
    from kernels.cuda import runtime
    B = kernels.get_backend("cupy")
    x = B.to_device(np.linspace(-1, 1, 300), np.float64)
    expected = B.to_host(B.relu_forward(x))
    with ik.record_cuda(record_only=False) as launches:
        got = B.to_host(B.relu_forward(x))
    assert runtime.recorder is None and not runtime.record_only
    assert np.array_equal(got, expected)
    assert [L["name"] for L in launches] == ["act_forward<double>"]


def test_gpu_plan_switches_every_launcher_to_its_gpu_constants():
    # Every launcher declares its GPU constants in a launch_checks.Plan.
    from kernels.cuda import elementwise, optim, reduce, runtime
    if not runtime.EMULATE:
        pytest.skip("on a GPU the constants already have their GPU values")
    assert elementwise.PLAN.gpu == {"MAX_BLOCKS": 132 * 16} and elementwise.MAX_BLOCKS == 8
    assert reduce.PLAN.gpu == {"TARGET_BLOCKS": 264, "MAX_BLOCKS": 132 * 32}
    assert optim.PLAN.gpu == {"CHUNK": 1024} and optim.CHUNK == 8192
    with ik.gpu_plan([elementwise, reduce, optim]) as changes:
        assert elementwise.MAX_BLOCKS == 132 * 16 and reduce.TARGET_BLOCKS == 264
        assert optim.CHUNK == 1024
        assert "elementwise.MAX_BLOCKS 8 -> 2112" in changes
    assert elementwise.MAX_BLOCKS == 8 and reduce.MAX_BLOCKS == 4 and optim.CHUNK == 8192


def test_parse_ptxas():
    log = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z1fIfEvPT_' for 'sm_90'
ptxas info    : Function properties for _Z1fIfEvPT_
    8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 8320 bytes smem
ptxas info    : Compiling entry function 'k' for 'sm_90a'
ptxas info    : Function properties for k
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 187 registers, used 1 barriers
"""
    assert ik.parse_ptxas(log) == {
        "_Z1fIfEvPT_": {"regs": 40, "smem": 8320, "stack": 8, "spill_stores": 4,
                        "spill_loads": 12},
        "k": {"regs": 187, "smem": 0, "stack": 0, "spill_stores": 0, "spill_loads": 0}}


def test_peaks_newest_matching_results_else_datasheet(tmp_path):
    peaks, label = ik.load_peaks("H100", str(tmp_path))
    assert peaks is ik.DATASHEET and "datasheet" in label
    for name, device, date, fp32 in [
            ("a.json", "NVIDIA H100 80GB HBM3", "2026-01-01T00:00:00", 50e12),
            ("b.json", "NVIDIA H100 80GB HBM3", "2026-02-01T00:00:00", 55e12),
            ("c.json", "NVIDIA A100-SXM4-80GB", "2026-03-01T00:00:00", 19e12),
            ("d.json", "CPU: AMD EPYC", "2026-04-01T00:00:00", None)]:
        meta = {"device": device, "date": date}
        if fp32:
            meta["peaks"] = {"flops": {"fp32": fp32, "tf32": 10 * fp32}, "bandwidth": 3e12}
        (tmp_path / name).write_text(json.dumps({"meta": meta, "rows": []}))
    peaks, label = ik.load_peaks("H100", str(tmp_path))
    assert peaks["flops"]["fp32"] == 55e12 and "b.json" in label


def test_cuda_resources_without_demangler(monkeypatch):
    if not _have_nvcc():
        pytest.skip("nvcc not found")
    monkeypatch.setattr(ik, "_demangler", lambda: None)
    launches = [{"module": "conv.cu", "name": n, "grid": (1, 1, 1), "block": (256, 1, 1)}
                for n in ("conv2d_wgrad_v1<float, 64>", "splitk_reduce<float>")]
    found, _ = ik.cuda_resources(launches)
    assert all(isinstance(r, dict) and r["regs"] > 0 for r in found.values()), found


def test_bad_shapes_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        ik.main(["--backend", "cupy", "--op", "conv2d_forward", "--x", "2,3,8,8",
                 "--w", "8,4,3,3"])
    assert e.value.code == 2
    assert "channels" in capsys.readouterr().err
    for args, why in ((["--op", "matmul", "--x", "4,5"], "needs --y"),
                      (["--op", "matmul", "--x", "4,5", "--y", "6,2"], "inner dimensions"),
                      (["--op", "argmax", "--x", "4,5", "--axis", "0,1"], "one --axis"),
                      (["--op", "amax", "--x", "4,5", "--axis", "2"], "--axis"),
                      (["--op", "clamp", "--x", "4,5"], "--min and/or --max")):
        with pytest.raises(SystemExit) as e:
            ik.main(["--backend", "cupy", *args])
        assert e.value.code == 2
        assert why in capsys.readouterr().err, args


def test_nvcc_flags_match_the_compile_check():
    # The resource report compiles as CI's compile check does (plus -v).
    src = open(os.path.join(os.path.dirname(__file__), "test_cuda_sources.py")).read()
    flags = re.search(r"NVCC_FLAGS = (\[.*\])", src).group(1)
    assert ik.NVCC_FLAGS[:-2] == eval(flags)  # noqa: S307 - our own source
