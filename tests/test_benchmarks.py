"""The benchmark suite's smoke run: every contract op and the training step
produce well-formed rows (timings are not asserted: this is a 2-core CI
machine, and the GPU backends run simulated here)."""

import json
import math

import pytest

from benchmarks import __main__ as bench
from benchmarks import cases
from kernels import registry

# Contract ops the suite times: the registry's timed ops (the rest are views,
# memory functions, or the same kernel as a timed op; kernels/registry.py).
TIMED_OPS = registry.timed_ops()


def test_every_shape_set_covers_every_timed_op():
    for shape_set in ("tiny", "mnist32", "dcgan64"):
        assert {c.op for c in cases.build([shape_set])} == TIMED_OPS, shape_set
    # large: one shape per family, so the activations DCGAN's large layers do
    # not use (relu, sigmoid: the same kernels as leaky_relu and tanh) and the
    # bias gradient (a sum, timed in the glue family) have no large case.
    assert {c.op for c in cases.build(["large"])} >= TIMED_OPS - {
        "conv2d_backward_bias", "relu_forward", "relu_backward", "sigmoid_forward",
        "sigmoid_backward"}


def test_primitive_cases_follow_the_registry():
    """The primitive families' cases come from the registry: every op of
    those families has cases, each on the torch function the registry names,
    and inputs inside a unary op's domain."""
    tiny = cases.build(["tiny"])
    for op in registry.ops_in("unary", "elementwise", "reduction", "linalg"):
        mine = [c for c in tiny if c.op == op.name]
        assert mine and all(c.compilable for c in mine), op.name
        if op.family == "unary":
            (c,) = mine
            assert c.inputs["x"][1] == ("uniform", *op.domain)
            x = cases.make_inputs(c, 0)["x"]
            assert op.domain[0] <= x.min() and x.max() <= op.domain[1]
    assert all(c.gemm for c in tiny if c.op == "matmul" or c.conv)


def test_exact_outputs_are_compared_exactly():
    import numpy as np

    from benchmarks import ops
    mask = np.array([True, False, True])
    assert ops.check([mask], [mask.copy()], 1e-4) == (True, 0.0)
    ok, err = ops.check([~mask], [mask], 1e-4)
    assert not ok and err == 1.0
    idx = np.arange(4, dtype=np.int64)
    assert not ops.check([idx.astype(np.int32)], [idx], 1e-4)[0]  # int64 required
    assert not ops.check([idx + (idx == 3)], [idx], 1e-4)[0]       # one index off
    assert not ops.check([np.zeros(3)], [np.zeros(4)], 1e-4)[0]    # shape
    assert ops.check([np.ones(3, np.float32) * (1 + 1e-6)], [np.ones(3)], 1e-4)[0]


def _ours():
    """Our providers for the smoke run: numpy on a CPU (with cupy simulated),
    cupy and cupy-tf32 on a GPU, where numpy is not offered."""
    import kernels
    from benchmarks import ops
    device = "cuda" if kernels._gpu_present() else "cpu"
    here = ops.available_providers(device, smoke=True)
    return [p for p in ("numpy", "cupy", "cupy-tf32") if p in here]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    providers = _ours() + ["torch"]
    code = bench.main(["--smoke", "--out", str(out), "--providers", ",".join(providers)])
    files = sorted(out.iterdir())
    return code, files, json.loads(next(f for f in files if f.suffix == ".json").read_text())


def _finite_positive(*vals):
    return all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in vals)


def test_smoke_run_succeeds_and_writes_json_markdown_and_plot(smoke):
    code, files, _ = smoke
    assert code == 0
    assert sorted(f.suffix for f in files) == [".json", ".jsonl", ".md", ".png"]


def test_metadata_names_device_versions_command_and_peaks(smoke):
    meta = smoke[2]["meta"]
    for key in ("date", "device", "python", "numpy", "torch", "command", "threads"):
        assert meta[key], key
    assert meta["command"].startswith("python -m benchmarks --smoke")
    assert _finite_positive(meta["peaks"]["flops"]["fp32"], meta["peaks"]["bandwidth"])


def test_op_rows_are_well_formed_and_cover_every_op(smoke):
    rows = smoke[2]["ops"]
    assert {r["op"] for r in rows} == TIMED_OPS
    for r in rows:
        assert r["status"] == "ok", r
        assert _finite_positive(r["median_s"], r["min_s"], r["max_s"], r["bytes"]), r
        assert r["min_s"] <= r["median_s"] <= r["max_s"]
        assert r["flops"] >= 0 and r["bound"] in ("compute", "memory")
        assert 0 <= r["pct_of_roofline"] and math.isfinite(r["gb_per_s"])
        if r["precision"] == "fp32":  # every fp32 row has torch's time beside it
            assert _finite_positive(r["vs_torch"]), r
    for provider in [p for p in _ours() if not p.endswith("tf32")] + ["torch"]:
        assert {r["op"] for r in rows if r["provider"] == provider} == TIMED_OPS
    assert {r["op"] for r in rows if r["provider"] == "cupy-tf32"} == {
        c.op for c in cases.build(["tiny"]) if c.gemm}


def test_step_rows_cover_both_measurements_per_provider(smoke):
    rows = smoke[2]["step"]
    fp32 = [p for p in _ours() if not p.endswith("tf32")] + ["torch"]
    # TF32 steps run only beside torch-tf32 (a GPU).
    assert {(r["provider"], r["what"]) for r in rows if r["precision"] == "fp32"} == {
        (p, w) for p in fp32 for w in ("fwd+bwd", "step")}
    for r in rows:
        assert r["status"] == "ok" and _finite_positive(r["median_s"], r["images_per_s"],
                                                        r["flops"], r["vs_torch"]), r


def test_bad_arguments_are_usage_errors(tmp_path, capsys):
    assert bench.main(["--smoke", "--ops", "conv3d", "--out", str(tmp_path)]) == 2
    assert "unknown op(s) conv3d" in capsys.readouterr().err
    assert bench.main(["--smoke", "--providers", "tpu", "--out", str(tmp_path)]) == 2
    assert "unknown providers ['tpu']" in capsys.readouterr().err


def test_streamed_rows_match_the_report(smoke):
    # <stem>.rows.jsonl holds every row, written as measured: the step's
    # first, then the op cases, the same rows as the final JSON.
    _, files, data = smoke
    lines = [json.loads(x) for x in next(f for f in files if f.suffix == ".jsonl").read_text()
             .splitlines()]
    kinds = [r.pop("kind") for r in lines]
    assert kinds == ["step"] * len(data["step"]) + ["op"] * len(data["ops"])
    assert lines == json.loads(json.dumps(data["step"] + data["ops"]))


def test_priority_order_puts_convolutions_first():
    from kernels import registry
    ordered = bench.priority_order(cases.build(["tiny"]))
    families = [registry.BY_NAME[c.op].family in bench.PRIORITY_FAMILIES for c in ordered]
    assert families == sorted(families, reverse=True) and any(families) and not all(families)


def test_gpu_session_dry_run(tmp_path):
    # The GPU session script, rehearsed under the simulators (DRY_RUN=1):
    # every part runs its real command on a small selection, logs its
    # header, and saves its results; the bench streams rows in priority order.
    import os
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, DRY_RUN="1", OUT=str(tmp_path))
    proc = subprocess.run(["bash", os.path.join(root, "benchmarks", "gpu_session.sh")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    status = dict(line.split() for line in (tmp_path / "status.txt").read_text().splitlines())
    assert status == {"tests": "0", "sanitize": "0", "bench": "0"}
    for part in status:
        log = (tmp_path / f"{part}.log").read_text()
        for key in ("# 20", "# command: ", "# commit ", "# device", "# python ", "# numpy ",
                    "# torch ", f"# {part} exit status 0"):
            assert key in log, (part, key, log[:2000])
    assert "passed" in (tmp_path / "tests.log").read_text()
    rows = [json.loads(x) for x in next(tmp_path.glob("*.rows.jsonl")).read_text().splitlines()]
    kinds = [r["kind"] for r in rows]
    assert kinds[0] == "step" and kinds[-1] == "op" and sorted(kinds, reverse=True) == kinds
    ops_order = [r["op"] for r in rows if r["kind"] == "op"]
    assert ops_order.index("conv2d_forward") < ops_order.index("add")
