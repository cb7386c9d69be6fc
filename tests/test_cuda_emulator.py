"""The CUDA emulator (kernels/cuda/emulate.h) behaves as the GPU would where
our kernels depend on it, and reports what it cannot run.

The `cupy` backend's op tests on a CPU are only as good as the emulator, so
its execution model is tested directly: barriers, warp shuffles, the
tensor-core tile layout and TF32 rounding, argument passing, and the errors
for a deadlocked barrier, a bad block size and an untyped argument.
"""

import os

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(os.environ.get("NN_CUDA_EMULATE") != "1",
                                reason="tests the CPU emulator; NN_CUDA_EMULATE is not 1")

from kernels.cuda import runtime  # noqa: E402

CHECKS = runtime.Module(os.path.join(os.path.dirname(__file__), "cuda", "emulator_checks.cu"),
                        ["reverse64", "divergent_barrier", "shuffles", "mma_tile",
                         "scale<float>", "scale<double>"], register=False)


def test_barrier_orders_shared_memory(seed):
    x = np.random.default_rng(seed).standard_normal(64).astype(np.float32)
    y = np.full(64, np.nan, np.float32)
    CHECKS.launch("reverse64", 1, 64, (x, y, np.int32(1)))
    assert np.array_equal(y, x[::-1])


def test_missing_barrier_gives_a_wrong_answer(seed):
    """Each thread runs to its next barrier before the next starts: reads of
    shared memory that no barrier orders see unwritten values."""
    x = np.random.default_rng(seed).standard_normal(64).astype(np.float32)
    y = np.full(64, np.nan, np.float32)
    CHECKS.launch("reverse64", 1, 64, (x, y, np.int32(0)))
    assert not np.array_equal(y, x[::-1])


def test_divergent_barrier_is_reported_as_a_deadlock():
    y = np.zeros(64, np.float32)
    with pytest.raises(runtime.CudaKernelError, match="divergent_barrier.*deadlock"):
        CHECKS.launch("divergent_barrier", 1, 64, (y,))


def test_warp_shuffles_match_their_definitions(seed):
    x = np.random.default_rng(seed).standard_normal(64)
    xor5, total, down3 = (np.full(64, np.nan) for _ in range(3))
    CHECKS.launch("shuffles", 1, 64, (x, xor5, total, down3))
    lanes = np.arange(64)
    assert np.array_equal(xor5, x[(lanes // 32) * 32 + ((lanes % 32) ^ 5)])
    src = lanes + 3
    want = np.where(lanes % 32 + 3 < 32, x[np.minimum(src, 63)], x)
    assert np.array_equal(down3, want)
    for w in range(2):
        assert np.allclose(total[w * 32:(w + 1) * 32], x[w * 32:(w + 1) * 32].sum(), rtol=1e-14)
        assert len(set(total[w * 32:(w + 1) * 32])) == 1  # same order on every lane


def _tf32(a):
    """Round float32 values to TF32 (10 mantissa bits), nearest, ties away from zero."""
    bits = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x1000) & 0xFFFFE000).astype(np.uint32).view(np.float32)


def test_tensor_core_tile_layout_and_tf32_rounding(seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((16, 8)).astype(np.float32)
    b = rng.standard_normal((8, 8)).astype(np.float32)
    c = rng.standard_normal((16, 8)).astype(np.float32)
    d = np.full((16, 8), np.nan, np.float32)
    CHECKS.launch("mma_tile", 1, 32, (a, b, c, d))
    want = _tf32(a).astype(np.float64) @ _tf32(b).astype(np.float64) + c
    assert np.abs(d - want).max() <= 1e-5 * np.abs(want).max()
    exact = a.astype(np.float64) @ b + c
    assert np.abs(d - exact).max() > 0  # TF32 really drops mantissa bits


@pytest.mark.parametrize("dtype,expr", [(np.float32, "scale<float>"), (np.float64, "scale<double>")])
def test_typed_scalars_and_templates(dtype, expr, seed):
    y = np.random.default_rng(seed).standard_normal(1000).astype(dtype)
    want = y * dtype(0.1)
    CHECKS.launch(expr, 4, 256, (y, np.int32(1000), np.float64(0.1)))
    assert np.array_equal(y, want)


def test_errors_name_the_kernel():
    y = np.zeros(4, np.float32)
    with pytest.raises(runtime.CudaKernelError, match=r"scale<float>.*block size 2048"):
        CHECKS.launch("scale<float>", 1, 2048, (y, np.int32(4), np.float64(1)))
    with pytest.raises(runtime.CudaKernelError, match=r"scale<float>: argument 1 is int"):
        CHECKS.launch("scale<float>", 1, 32, (y, 4, np.float64(1)))
    with pytest.raises(runtime.CudaKernelError, match="not one of this module's name"):
        CHECKS.launch("scale<int>", 1, 32, (y,))
