#!/usr/bin/env bash
# On a machine with a GPU: one pass of every CUDA C kernel (the cupy backend's
# float32 and float64 op tests, which cover every kernel family) under
# compute-sanitizer's memcheck (out-of-bounds and misaligned accesses) and
# racecheck (shared-memory hazards between threads of a block). A reported
# error fails the run. NN_CUDA_DEBUG=1 synchronizes after each launch so a
# fault is attributed to the kernel that made it; NN_CUPY_NO_POOL=1 turns
# CuPy's memory pool off (kernels/cuda/runtime.py), so an access past the end
# of an array is past the end of its own allocation, where memcheck sees it,
# not inside a larger pooled block.
#
#   bash tests/sanitize_cuda.sh            # needs compute-sanitizer on PATH
set -euo pipefail
cd "$(dirname "$0")/.."
export NN_CUDA_DEBUG=1 NN_CUPY_NO_POOL=1 PYTHONPATH="${PYTHONPATH:-.}"
for tool in memcheck racecheck; do
    echo "== compute-sanitizer --tool $tool"
    compute-sanitizer --tool "$tool" --error-exitcode 99 \
        python3 -m pytest -q -x -p no:cacheprovider tests/test_ops.py tests/test_optim.py \
        -k cupy
done
