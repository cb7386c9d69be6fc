"""Every Triton kernel, compiled ahead of time for an H100 (sm_90) on a CPU.

benchmarks/aot.py records, without running them, the launches of one DCGAN
64x64 batch-128 training step in float32 (exact and TF32 dots) and float64,
plus every timed registry op at DCGAN-sized shapes, the fused batch norm +
activation paths, the int64-index variants and fill_ of every dtype, under
the launchers' GPU plans; then compiles every distinct specialization with
triton.compile for GPUTarget("cuda", 90, 32) in two worker processes. These
tests assert what a GPU would otherwise reject at first contact: a compile
error, registers over 255, more than aot.SPILL_BUDGET bytes of spills, or a
launch over CUDA's limits (grid y/z <= 65535, <= 1024 threads, registers x
threads <= 65536, shared memory within the opt-in maximum). The compiles
take about a minute of CPU per core on two cores (notes/issue15_ci.md).
"""

import os

import numpy as np
import pytest

from benchmarks import aot

pytest.importorskip("triton", reason="the Triton AOT test needs triton (the test extras)")


@pytest.fixture(scope="module")
def compiled():
    workers = int(os.environ.get("NN_AOT_WORKERS", "2"))
    return aot.run(workers=workers)


def test_every_specialization_compiles_within_limits(compiled):
    launches, results = compiled["launches"], compiled["results"]
    assert len(launches) > 500 and len(results) == len(launches)
    bad = aot.violations(launches, results)
    assert not bad, f"{len(bad)} launch(es) a GPU would reject or that spill over budget " \
                    f"({compiled['header']}):\n" + "\n".join(bad[:40])


def test_step_is_recorded_at_dcgan_shapes(compiled):
    # The step really is batch 128 at 64x64: G's last layer writes
    # (128, 3, 64, 64) = 1.5M elements and D's first conv reads them; each
    # configuration launches convolutions, batch norm, BCE and Adam.
    for dtype, precision in aot.STEP_CONFIGS:
        step = compiled["groups"][f"step {dtype} {precision}"]
        names = {L["qualname"] for L in step}
        for kernel in ("_conv2d_forward_kernel", "_conv2d_dgrad_kernel", "_conv2d_wgrad_kernel",
                       "_bn_stats_partial_kernel", "_bn_backward_dx_kernel",
                       "_bce_forward_kernel", "_adam_kernel"):
            assert kernel in names, (dtype, precision, sorted(names))
        tensors = {a["tensor"] for L in step for a in L["args"]
                   if isinstance(a, dict) and "tensor" in a}
        assert dtype in tensors
        precisions = {L["constexprs"].get("PRECISION") for L in step} - {None}
        assert precisions == ({precision} if dtype == "float32" else {"ieee"}), precisions
        programs = max(np.prod(L["grid"]) for L in step if L["qualname"] == "_act_fwd_kernel")
        assert programs * 1024 >= 128 * 3 * 64 * 64 // 4, programs


def test_every_jit_kernel_is_compiled(compiled):
    # The list comes from the modules themselves: every @triton.jit function
    # in kernels/triton/ that no other one calls is a kernel, and each must
    # have been compiled at least once (the helpers compile inside them).
    kinds = aot.jit_kernels()
    kernels = {name.rsplit(".", 1)[1] for name, kind in kinds.items() if kind == "kernel"}
    assert len(kernels) >= 20, kinds
    done = {r["kernel"] for r in compiled["results"] if isinstance(r, dict)}
    assert kernels <= done, f"never compiled: {sorted(kernels - done)}"


def test_int64_and_fill_variants_compiled(compiled):
    int64 = compiled["groups"]["int64 index"]
    assert {L["qualname"] for L in int64} >= {"_ewise_kernel", "_reduce_rows_kernel"}
    fills = compiled["groups"]["fill dtypes"]
    assert sorted({L["args"][0]["tensor"] for L in fills}) == sorted(aot.FILL_DTYPES)


def test_launch_limits_are_enforced():
    # The checker itself: each limit, just over and just within.
    assert aot.launch_limits((2 ** 31 - 1, 65535, 65535), 1024, 64, 48 * 1024) == []
    assert aot.launch_limits((1, 65536, 1), 128)
    assert aot.launch_limits((1, 1, 65536), 128)
    assert aot.launch_limits((0, 1, 1), 128)
    assert aot.launch_limits((1, 1, 1), 1025)
    assert aot.launch_limits((1, 1, 1), 256, regs=256)
    assert aot.launch_limits((1, 1, 1), 512, regs=129)      # 66048 registers per block
    assert not aot.launch_limits((1, 1, 1), 512, regs=128)  # exactly 65536
    assert aot.launch_limits((1, 1, 1), 128, smem=48 * 1024 + 1, static=True)
    assert not aot.launch_limits((1, 1, 1), 128, smem=100 * 1024)  # dynamic: opt-in
    assert aot.launch_limits((1, 1, 1), 128, smem=227 * 1024 + 1)


@pytest.mark.parametrize("dtype", aot.FILL_DTYPES)
def test_fill_every_dtype(backend, dtype):
    # fill_ carries the value's bits; widths 8 and 16 once stored `bits != 0`.
    import nn
    B = nn.backend.current()
    value = {"bool": True, "uint8": 200, "int8": -5, "int16": -300, "float16": 0.1,
             "int64": 2 ** 40 + 3}.get(dtype, 0.1 if "float" in dtype else -7)
    a = B.to_device(np.zeros((3, 1031)), dtype)  # (numpy_backend.empty cannot poison bool)
    B.fill_(a, value)
    np.testing.assert_array_equal(B.to_host(a), np.full((3, 1031), value, dtype))


# ------------------------------------------------ the GPU plans, on the simulators
# CI's other tests run the simulators' allowance (launch_checks.Plan: larger
# blocks, fewer programs); here the same kernels run the GPU plans
# (use_profile("gpu")) at small odd shapes that still take the plans'
# multi-program, split-reduction and small-tile paths, against the numpy
# backend in float64.
def _gpu_plan_ops(B, rng):
    x = rng.standard_normal((3, 5, 37, 29))
    w = rng.standard_normal((7, 5, 3, 3))
    dy = rng.standard_normal((3, 7, 18, 14))
    long_rows = rng.standard_normal((3, 9001))  # 3 rows: R is split at 264 programs
    return {
        "add": lambda: B.add(B.to_device(x, np.float64), B.to_device(x[:, :1], np.float64)),
        "sum rows": lambda: B.sum(B.to_device(long_rows, np.float64), (1,), False),
        "sum NCHW": lambda: B.sum(B.to_device(x, np.float64), (0, 2, 3), False),
        "conv fwd": lambda: B.conv2d_forward(B.to_device(x, np.float64),
                                             B.to_device(w, np.float64), None, (2, 2), (1, 1),
                                             (1, 1)),
        "conv wgrad": lambda: B.conv2d_backward_weight(B.to_device(dy, np.float64),
                                                       B.to_device(x, np.float64), (3, 3),
                                                       (2, 2), (1, 1), (1, 1)),
        "bn train": lambda: B.batch_norm_train_forward(
            B.to_device(x, np.float64), B.to_device(np.ones(5), np.float64),
            B.to_device(np.zeros(5), np.float64), B.to_device(np.zeros(5), np.float64),
            B.to_device(np.ones(5), np.float64), 0.1, 1e-5)[0],
    }


@pytest.mark.parametrize("name", ["triton", "cupy"])
def test_simulators_run_the_gpu_plans(name):
    import kernels
    from kernels import launch_checks
    reason = kernels.why_unavailable(name)
    if reason is not None:
        pytest.skip(f"backend {name!r} unavailable: {reason}")
    B, ref = kernels.get_backend(name), kernels.get_backend("numpy")
    expected = {k: np.asarray(f()) for k, f in _gpu_plan_ops(ref, np.random.default_rng(7)).items()}
    with launch_checks.use_profile("gpu") as changes:
        if B.runtime.SIMULATED:
            assert changes, "no launch plan differs on the simulator: nothing tested here"
        got = {k: B.to_host(f()) for k, f in _gpu_plan_ops(B, np.random.default_rng(7)).items()}
    for k in expected:
        err = np.linalg.norm(got[k] - expected[k]) / np.linalg.norm(expected[k])
        assert err < 1e-12, (name, k, err)


def test_cuda_reduce_plan_is_a_function_of_shape_and_profile():
    # kernels/cuda/reduce.py's plan(outer, R, inner, profile): 3 rows of
    # 100000 get a block each (rows over 2048 long), 1024 elements per
    # iteration, at least 4 iterations per chunk: R splits into
    # min(ceil(TARGET_BLOCKS / 3), 100000 // 4096) chunks.
    from kernels import launch_checks as lc
    from kernels.cuda import reduce
    gpu, sim = (reduce.plan(3, 100_000, 1, profile=p) for p in ("gpu", "simulator"))
    assert gpu["n_chunks"] == lc.chunked(100_000, 24, 1024)[0] == 20 and gpu["grid"] == (3, 20)
    assert sim["n_chunks"] == lc.chunked(100_000, 3, 1024)[0] == 3
    with lc.use_profile("gpu"):
        assert reduce.plan(3, 100_000, 1) == gpu
    # Short rows: a warp each, 8 per 256-thread block, no split.
    assert reduce.plan(8192, 64, 1, profile="gpu")["grid"] == (1024, 1)


def test_triton_reduce_plan_is_a_function_of_shape_and_profile():
    # kernels/triton/reduce.py's plan for 3 rows of 100000: on a GPU 1024-wide
    # blocks, 2 rows per program (a 2048-accumulator tile), 2 programs, so R
    # splits into min(264 / 2, 100000 // (4 * 1024)) = 24 wanted chunks of a
    # multiple of 1024: 20 of 5120. The simulator's allowance (8192-wide
    # blocks, 8 programs) wants min(4, 3) = 3: 3 chunks of 40960.
    from kernels import launch_checks as lc
    from kernels.triton import reduce
    gpu, sim = (reduce.plan(3, 100_000, 1, profile=p) for p in ("gpu", "simulator"))
    assert (gpu["BLOCK_R"], gpu["BLOCK_O"], gpu["programs"]) == (1024, 2, 2)
    assert (gpu["n_chunks"], gpu["chunk"], gpu["grid"]) == (20, 5120, (2, 20))
    assert (sim["BLOCK_R"], sim["n_chunks"], sim["chunk"]) == (8192, 3, 40960)
    with lc.use_profile("gpu"):
        assert reduce.plan(3, 100_000, 1) == gpu
    assert reduce.plan(3, 100_000, 1) == (sim if reduce.PLAN.machine == "simulator" else gpu)


def test_triton_batch_norm_split_is_a_function_of_shape_and_profile():
    # DCGAN's BN over (128, 64, 32, 32): M = 131072 per channel, 64 channels,
    # 1024 programs wanted: 16 chunks per channel of 8 steps of 1024 (GPU);
    # the simulator's 4096-wide blocks take 2 steps per chunk.
    from kernels.triton import batchnorm
    assert batchnorm._split(128 * 32 * 32, 64, profile="gpu") == (1024, 8192, 16)
    assert batchnorm._split(128 * 32 * 32, 64, profile="simulator") == (4096, 8192, 16)
