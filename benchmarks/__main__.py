"""python -m benchmarks: our kernels against torch, per op and per training step.

    python -m benchmarks                              # everything this machine runs
    python -m benchmarks --shapes mnist32 --ops conv2d_forward,batch_norm_backward
    python -m benchmarks --providers cupy,torch --no-step --out /tmp/bench
    python -m benchmarks --families unary,reduction,linalg --shapes large
    python -m benchmarks --smoke                      # seconds: CI's well-formedness check
    python -m benchmarks --priority --time-budget 300 # a short GPU session (gpu_session.sh)

On a CPU the providers are `numpy` and `torch` (same thread count); on a GPU
`triton`, `cupy`, their TF32 variants, and torch eager (TF32 off and on) and
torch.compile(mode="max-autotune"). Every provider is checked against torch
before it is timed (benchmarks/ops.py, benchmarks/step.py). Results go to
benchmarks/results/<date>_<device>.{json,md,png} unless --out says otherwise.
Exit status: 0, or 1 if any provider gave a wrong answer (it is then not
timed), or 2 for bad arguments.
"""

import argparse
import json
import os
import sys
import time


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="where torch and our backends run (auto: cuda if a GPU is present)")
    ap.add_argument("--providers", help="comma-separated subset, e.g. numpy,torch "
                                        "(default: every provider this machine runs)")
    ap.add_argument("--ops", help="comma-separated contract ops (default: all)")
    ap.add_argument("--families", help="comma-separated op families of kernels/registry.py, "
                                       "e.g. unary,elementwise,reduction,linalg,conv "
                                       "(with --ops: the ops in either)")
    ap.add_argument("--shapes", help="comma-separated shape sets: dcgan64, mnist32, large, tiny "
                                     "(default: dcgan64,mnist32,large)")
    ap.add_argument("--step", default="auto",
                    help="DCGAN step config: dcgan64, mnist32, tiny, none, or auto "
                         "(mnist32 on a CPU, dcgan64 on a GPU)")
    ap.add_argument("--no-step", action="store_true", help="skip the training-step benchmark")
    ap.add_argument("--min-time", type=float, default=None,
                    help="seconds of repeats per measurement (default 0.5; smoke 0)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="CPU threads for numpy (BLAS) and torch (default: all cores)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "results"), help="output folder")
    ap.add_argument("--tag", help="suffix for the output file names")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--priority", action="store_true",
                    help="the order for a short GPU session: the whole step for every provider "
                         "(torch.compile last), then the conv and transposed-conv ops, then the "
                         "rest; torch.compile (max-autotune) on the step only")
    ap.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                    help="start no new op case after this many seconds; what ran is written")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny shapes, one run each, small peaks; includes CPU-simulated GPU "
                         "backends (meaningless timings, but every code path runs)")
    return ap.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    # BLAS reads its thread count at import: set it before numpy is loaded.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    import kernels
    try:
        import torch
    except ImportError:  # the benchmarks time every op against torch's
        print("benchmarks: error: torch is not installed; the benchmarks compare against it: "
              "pip install torch==2.13.0 && pip install -e \".[test]\"", file=sys.stderr)
        return 2

    from . import cases, ops, report, step, timing
    torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if kernels._gpu_present() and torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        print("benchmarks: --device cuda, but torch sees no CUDA GPU", file=sys.stderr)
        return 2

    min_time = args.min_time if args.min_time is not None else (0.0 if args.smoke else 0.5)
    timer = (timing.CudaTimer(min_time=min_time, min_runs=1 if args.smoke else 5)
             if device == "cuda" else
             timing.CpuTimer(min_time=min_time, min_runs=1 if args.smoke else 3))
    shape_sets = (args.shapes.split(",") if args.shapes
                  else ["tiny"] if args.smoke else ["dcgan64", "mnist32", "large"])
    from kernels import registry
    wanted_ops = args.ops.split(",") if args.ops else []
    if args.families:
        families = args.families.split(",")
        unknown = [f for f in families if f not in registry.FAMILIES]
        if unknown:
            print(f"benchmarks: unknown families {unknown}; known: "
                  f"{', '.join(registry.FAMILIES)}", file=sys.stderr)
            return 2
        timed = [op.name for op in registry.ops_in(*families) if op.timed]
        if not timed:
            print(f"benchmarks: the families {families} have no timed ops (views and memory "
                  f"functions are not timed on their own)", file=sys.stderr)
            return 2
        wanted_ops += timed
    try:
        op_cases = cases.build(shape_sets, wanted_ops if args.ops or args.families else None)
    except ValueError as e:
        print(f"benchmarks: {e}", file=sys.stderr)
        return 2
    providers = ops.available_providers(device, args.smoke)
    if args.providers:
        wanted = args.providers.split(",")
        unknown = [p for p in wanted if p not in ops.OURS + ops.TORCH]
        missing = [p for p in wanted if p not in providers and p not in unknown]
        if unknown or missing:
            print(f"benchmarks: unknown providers {unknown}" if unknown else
                  f"benchmarks: {missing} cannot run here; available: {', '.join(providers)}",
                  file=sys.stderr)
            return 2
        providers = [p for p in providers if p in wanted or p == "torch"]  # torch: the baseline

    peaks = (timing.gpu_peaks if device == "cuda" else timing.cpu_peaks)(timer, small=args.smoke)
    print(f"device {device}; providers {', '.join(providers)}; peaks "
          + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peaks["flops"].items())
          + f", {peaks['bandwidth'] / 1e9:.1f} GB/s")

    step_cfg = None if args.no_step else (
        ("tiny" if args.smoke else "dcgan64" if device == "cuda" else "mnist32")
        if args.step == "auto" else None if args.step == "none" else args.step)
    if step_cfg is not None and step_cfg not in cases.MODEL_SETS:
        print(f"benchmarks: unknown --step {step_cfg!r}", file=sys.stderr)
        return 2
    # A TF32 step is judged against torch-tf32's own error, so it runs only
    # where torch-tf32 does (a GPU).
    step_providers = [p for p in providers
                      if ops.precision_of(p) == "fp32" or "torch-tf32" in providers]
    # Every row is appended to <stem>.rows.jsonl as soon as it exists (the
    # step's when the step ends, each op case's when it ends), so a run cut
    # short by a timeout keeps what it measured.
    meta = report.metadata(device, args.threads, argv)
    stem = report.stem_for(meta, args.out, args.tag)
    stream = _RowStream(stem + ".rows.jsonl")
    start = time.perf_counter()
    step_rows = []
    if step_cfg:
        cfg = cases.MODEL_SETS[step_cfg]
        # Under --priority torch.compile's max-autotune (minutes of tuning)
        # runs last, so that every other provider's step is saved first.
        late = ["torch-compile"] if args.priority and "torch-compile" in step_providers else []
        step_rows = step.run_step(cfg, [p for p in step_providers if p not in late], device,
                                  timer, peaks)
        stream.write("step", step_rows)
        if late:
            rows = [r for r in step.run_step(cfg, ["torch"] + late, device, timer, peaks)
                    if r["provider"] in late]
            stream.write("step", rows)
            step_rows += rows

    if args.priority:
        op_cases = priority_order(op_cases)
    runner = ops.OpRunner(device, timer, peaks)
    op_rows, not_run = [], []
    for i, case in enumerate(op_cases):
        if args.time_budget is not None and time.perf_counter() - start > args.time_budget:
            not_run = [c.label for c in op_cases[i:]]
            print(f"benchmarks: --time-budget {args.time_budget:g} s spent; "
                  f"{len(not_run)} op case(s) not run")
            break
        # --priority: no torch.compile on single ops (max-autotune tunes
        # each case for tens of seconds); torch eager is cuDNN on a GPU.
        here = [p for p in providers if not (args.priority and p == "torch-compile")]
        rows = runner.run_case(case, here, args.seed + i)
        stream.write("op", rows)
        op_rows += rows
    report.print_rows(op_rows, step_rows)

    meta["simulated_providers"] = [p for p in providers if ops.simulated(p)]
    meta["not_run"] = not_run
    files = report.write(stem, meta, peaks, op_rows, step_rows)
    print("wrote " + ", ".join(files + [stream.path]))
    wrong = [r for r in op_rows + step_rows if r["status"] == "wrong"]
    if wrong:
        print(f"benchmarks: {len(wrong)} wrong answers (not timed): "
              + ", ".join(sorted({f"{r['provider']}:{r.get('op', r.get('what'))}"
                                  for r in wrong})), file=sys.stderr)
        return 1
    return 0


# The families timed first under --priority (each conv kernel against
# cuDNN, which is what torch runs on a GPU).
PRIORITY_FAMILIES = ("conv", "conv_transpose")


def priority_order(op_cases):
    """The conv and transposed-conv cases first, the rest after, each group
    in its original order."""
    from kernels import registry

    def first(c):
        return registry.BY_NAME[c.op].family in PRIORITY_FAMILIES
    return [c for c in op_cases if first(c)] + [c for c in op_cases if not first(c)]


class _RowStream:
    """Rows appended to a JSON-lines file as they are measured, flushed to
    disk each time."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        open(path, "w").close()

    def write(self, kind, rows):
        with open(self.path, "a") as f:
            for r in rows:
                f.write(json.dumps(dict(r, kind=kind), default=float) + "\n")
            f.flush()
            os.fsync(f.fileno())


if __name__ == "__main__":
    sys.exit(main())
