#!/usr/bin/env bash
# Everything a session with a lent GPU should run, in parts that each fit the
# device tool's 10-minute limit per command. Logs and results land under
# $OUT (default benchmarks/results/gpu_<date>/), ready to commit.
#
#   bash benchmarks/gpu_session.sh tests      # the whole suite on the real GPU backends
#   bash benchmarks/gpu_session.sh sanitize   # compute-sanitizer memcheck + racecheck
#   bash benchmarks/gpu_session.sh bench      # python -m benchmarks (ops + 64x64 step)
#
# Each part records the device (nvidia-smi), the package versions, the date
# and its command line at the top of its log.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-.}"
OUT="${OUT:-benchmarks/results/gpu_$(date -u +%Y-%m-%d)}"
mkdir -p "$OUT"
part="${1:?usage: gpu_session.sh tests|sanitize|bench}"
log="$OUT/$part.log"
{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  bash benchmarks/gpu_session.sh $part"
    echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/# /'
    python -c "import sys, numpy, torch; print('# python', sys.version.split()[0], 'numpy', numpy.__version__, 'torch', torch.__version__)"
    python -c "import triton, cupy; print('# triton', triton.__version__, 'cupy', cupy.__version__)" 2>&1
} > "$log"
run() {  # run a command, append its output to the log, keep its exit status
    "$@" 2>&1 | tee -a "$log"
    return "${PIPESTATUS[0]}"
}
case "$part" in
    # Everything, on the real GPU backends (conftest only simulates without a GPU).
    tests) NN_CUDA_DEBUG=1 run python -m pytest -q -p no:cacheprovider -ra ;;
    sanitize) run bash tests/sanitize_cuda.sh ;;
    bench) run python -m benchmarks --out "$OUT" ;;
    *) echo "unknown part $part: tests, sanitize or bench" >&2; exit 2 ;;
esac
