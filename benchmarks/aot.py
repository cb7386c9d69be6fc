"""Ahead-of-time compilation of the Triton kernels for a GPU that is not here.

Everything a GPU could reject at first contact, checked on a CPU machine:

1. Record the launches of one real DCGAN training step (64x64 images, batch
   128, the default model widths) on the `triton` backend, in float32
   (exact and TF32 dots) and float64, plus the kernels that step does not
   reach: every timed registry op at DCGAN-sized shapes (random draws, eval
   batch norm, BCE with logits, SGD, sums, matmul, ...), the fused batch
   norm + activation paths, the int64-index variants of the strided kernels
   and `fill_` of every dtype. Launches are recorded, not run
   (inspect_kernel.record_triton with record_only), under the launchers'
   GPU constants (inspect_kernel.gpu_plan): the plans are a GPU's, and a
   batch-128 step costs seconds, not the interpreter's hours.
2. Compile every distinct specialization with `triton.compile` for
   GPUTarget("cuda", 90, 32) in worker processes without TRITON_INTERPRET
   (Triton's own binder decides what is distinct: a job's dtypes, 16-byte
   alignment, ints equal to 1 or divisible by 16, constexprs and options).
   Registers and spills come from Triton's own ptxas run (its -v log,
   TRITON_DUMP_PTXAS_LOG), shared memory and warps from the compiled
   metadata.
3. Check every launch against the limits of the hardware (`launch_limits`).
4. The CUDA C side: `nvrtc_compile` compiles a kernels/cuda Module through
   NVRTC with exactly what a GPU run hands CuPy, plus CuPy's own options;
   the cupy backend's step is recorded the same way (`step_launches`).

Used by tests/test_triton_aot.py and tests/test_nvrtc.py (CI) and by
benchmarks/inspect_kernel.py.

    python -m benchmarks.aot     # the Triton table; NN_AOT_WORKERS=N processes (default 2)
"""

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TARGET_CAPABILITY, WARP_SIZE = 90, 32

# CUDA's launch limits (every architecture since sm_30) and sm_90's per-block
# resources. Triton's shared memory is dynamic: its launcher opts in beyond
# 48 KB (cudaFuncAttributeMaxDynamicSharedMemorySize), up to 227 KB on sm_90;
# static shared memory (CUDA C __shared__ arrays) is limited to 48 KB.
LIMITS = {"grid_x": 2 ** 31 - 1, "grid_yz": 65535, "threads": 1024,
          "regs_per_thread": 255, "regs_per_block": 65536,
          "static_smem": 48 * 1024, "dynamic_smem": 227 * 1024}

# Spill budget per specialization: bytes of spill stores + loads, as ptxas
# reports them. With Triton 3.6 (ptxas 12.8, the GPU image's) the worst is
# 28 B (float32 dot-path convs at 255 registers). Triton 3.9's ptxas 13.4
# (run with its --regAllocOptLevel=2 workaround) spills more: 24-60 B, and
# 264-284 B for the dgrad's 128x16 tile with 4 warps (G's 3-channel output
# layer). A few hundred bytes per thread stay in L1; the budget stops a tile
# change from making it worse unnoticed (table in notes/issue15_ci.md).
SPILL_BUDGET = 320

# DCGAN at 64x64 (pytorch/examples' defaults): latent 100, 64 feature maps.
DCGAN = {"batch": 128, "image": 64, "nz": 100, "ngf": 64, "ndf": 64, "nc": 3}
# train.py's default run (mnist5k's preset): InfoGAN's networks at 16x16,
# whose fully connected layers and BatchNorm1d the DCGAN step does not reach.
MNIST5K = {"batch": 32, "image": 16, "nz": 100, "ngf": 64, "ndf": 32, "nc": 1,
           "arch": "infogan", "fc": 512}

# The step's configurations: (dtype, float32 dot precision).
STEP_CONFIGS = (("float32", "ieee"), ("float32", "tf32"), ("float64", "ieee"))


# ============================================================ recording
def _backend(name="triton"):
    import kernels
    return kernels.get_backend(name)


def _kernel_modules(B):
    return [m for m in (B.conv, B.batchnorm, B.loss, B.elementwise, B.reduce, B.matmul_module,
                        B.optim) if m is not None]


@contextlib.contextmanager
def recording(precision="ieee", backend="triton"):
    """Record (not run) the launches of `backend` (triton or cupy) under its
    GPU plan at float32 `precision`; yields the list the launches are
    appended to. NaN-poisoning of new arrays is off meanwhile: no kernel
    runs, so nothing is left unwritten to detect, and filling every
    allocation would dominate the time."""
    from benchmarks import inspect_kernel as ik
    from kernels import debug
    B = _backend(backend)
    if backend == "triton":
        from kernels.triton import common as precision_module
        saved, recorder = precision_module.DOT_PRECISION, ik.record_triton
    else:
        from kernels.cuda import conv as precision_module
        saved, recorder = precision_module.PRECISION, ik.record_cuda
    precision_module.set_precision(precision)
    try:
        with debug.poison_outputs(False), ik.gpu_plan(_kernel_modules(B)), \
                recorder(record_only=True) as launches:
            yield launches
    finally:
        precision_module.set_precision(saved)


def step_launches(dtype, precision, cfg=DCGAN, backend="triton"):
    """The launches of one DCGAN training step (dcgan.trainer.train_step,
    BCE on D's sigmoid output, Adam on both nets) on `backend`, recorded at
    cfg's shapes. The models are built under the recorder too (their
    initialisation's launches are dropped): nothing runs, and the weights
    hold debug.STAND_IN where they are small."""
    import nn
    from dcgan.models import build_discriminator, build_generator
    from dcgan.trainer import train_step
    b, s = cfg["batch"], cfg["image"]
    with nn.use_backend(backend), recording(precision, backend) as launches:
        arch = {k: cfg[k] for k in ("arch", "fc") if k in cfg}
        G = build_generator(nn, cfg["nz"], cfg["ngf"], cfg["nc"], s, **arch).to(dtype)
        D = build_discriminator(nn, cfg["nc"], cfg["ndf"], s, **arch).to(dtype)
        optG = nn.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        optD = nn.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        real = nn.tensor(np.full((b, cfg["nc"], s, s), 0.5, dtype))
        noise = nn.tensor(np.full((b, cfg["nz"], 1, 1), 0.5, dtype))
        del launches[:]
        train_step(G, D, optG, optD, nn.BCELoss(), real, noise)
    return launches


# The inspect_kernel arguments of each registry family at DCGAN-sized
# shapes (its largest layers), for the ops the step does not reach. A new
# family fails loudly in `op_launches` until it is given shapes here.
FAMILY_ARGS = {
    "memory": ["--x", "128,64,32,32"],
    "random": ["--x", "128,100,1,1"],
    "glue": ["--x", "128,64,32,32", "--y", "1,64,1,1", "--axis", "0,2,3"],
    "unary": ["--x", "128,64,32,32"],
    "elementwise": ["--x", "128,64,32,32", "--y", "1,64,1,1", "--min", "-1", "--max", "1"],
    "reduction": ["--x", "128,64,32,32", "--axis", "0,2,3"],
    "linalg": ["--x", "128,100", "--y", "100,1024"],
    "conv": ["--x", "128,64,32,32", "--w", "128,64,4,4", "--stride", "2", "--padding", "1",
             "--bias"],
    "conv_transpose": ["--x", "128,128,8,8", "--w", "128,64,4,4", "--stride", "2",
                       "--padding", "1", "--bias"],
    "batch_norm": ["--x", "128,128,16,16"],
    "activation": ["--x", "128,64,32,32"],
    "loss": ["--x", "128"],
    "optimizer": ["--x", "128,64,4,4", "128", "128"],
}
OP_OVERRIDES = {"argmax": ["--axis", "1"], "argmin": ["--axis", "1"]}


def op_launches(dtype):
    """The launches of every timed registry op at FAMILY_ARGS' shapes."""
    from benchmarks import inspect_kernel as ik
    from kernels import registry
    B = _backend()
    with recording() as launches:
        for name in ik.OPS:
            family = registry.BY_NAME[name].family
            if family not in FAMILY_ARGS:
                raise KeyError(f"registry family {family!r} (op {name}) has no shapes in "
                               f"benchmarks/aot.py FAMILY_ARGS")
            argv = ["--backend", "triton", "--op", name, "--dtype", dtype,
                    *FAMILY_ARGS[family], *OP_OVERRIDES.get(name, [])]
            _, a = ik.parse_args(argv)
            ik.build_case(a, B, random=False).run()
    return launches


def fused_bn_launches(dtype):
    """Batch norm with each fused activation, train and eval forward and
    backward, with and without bias: what nn's BN+ReLU/LeakyReLU use."""
    B = _backend()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 128, 16, 16)).astype(dtype)
    C = x.shape[1]
    w, b = np.ones(C, dtype), np.zeros(C, dtype)
    rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
    bn = B.batchnorm
    with recording() as launches:
        for act in ("relu", "leaky_relu"):
            y, mean, invstd = bn.train_forward(x, w, b, rm, rv, 0.1, 1e-5, activation=act)
            bn.eval_forward(x, w, b, rm, rv, 1e-5, activation=act)
            bn.backward(x, x, w, mean, invstd, True, bias=b, activation=act)
            bn.backward(x, x, w, mean, invstd, False, bias=b, activation=act)
    return launches


# The dtypes fill_ accepts (its kernel bitcasts any width; bool is 0/1).
FILL_DTYPES = ("float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64",
               "bool")


def fill_launches():
    B = _backend()
    with recording() as launches:
        for dt in FILL_DTYPES:
            B.elementwise.fill_(np.empty((128, 64, 32, 32), dt), 1 if dt == "bool" else 3)
    return launches


def int64_variants(launches):
    """Copies of the launches of kernels with an INT64 constexpr (the strided
    elementwise and reduction kernels switch their index arithmetic to int64
    at 2**31 elements or offsets) with INT64 set: the same specialization
    otherwise, without arrays of 2**31 elements to trigger it."""
    out = []
    for L in launches:
        if L["kwargs"].get("INT64") is False:
            out.append({**L, "kwargs": {**L["kwargs"], "INT64": True},
                        "constexprs": {**L["constexprs"], "INT64": True}})
    return out


def all_launches(cfg=DCGAN):
    """{label: launches}: the step in each configuration, then the rest."""
    groups = {}
    for dtype, precision in STEP_CONFIGS:
        groups[f"step {dtype} {precision}"] = step_launches(dtype, precision, cfg)
    groups["step float32 ieee mnist5k infogan"] = step_launches("float32", "ieee", MNIST5K)
    for dtype in ("float32", "float64"):
        groups[f"ops {dtype}"] = op_launches(dtype)
        groups[f"fused bn {dtype}"] = fused_bn_launches(dtype)
    groups["fill dtypes"] = fill_launches()
    groups["int64 index"] = int64_variants([L for g in list(groups.values()) for L in g])
    return groups


# ============================================================ compiling
def jobs_of(launches):
    """Each launch's compile job: the kernel and its arguments, as recorded."""
    return [{"module": L["module"], "qualname": L["qualname"], "args": L["args"],
             "kwargs": L["kwargs"]} for L in launches]


def compile_jobs(jobs, workers=2, timeout=900):
    """(results, header): for each job its resources dict ({"regs",
    "spill_stores", "spill_loads", "stack", "smem", "num_warps",
    "num_stages", "key", "seconds"}) or an 'n/a: ...' string, compiled in
    `workers` processes. Each worker binds every job (cheap) and compiles
    the distinct specializations whose index is its own modulo `workers`,
    so no specialization is compiled twice."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton >= 3.9 warns when unset
    payload = [json.dumps({"jobs": jobs, "worker": i, "workers": workers}) for i in range(workers)]
    procs = [subprocess.Popen([sys.executable, "-c", "from benchmarks.aot import worker; worker()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=ROOT) for _ in range(workers)]
    replies = []
    for p, text in zip(procs, payload):
        out, err = p.communicate(text, timeout=timeout)
        if p.returncode != 0:
            why = (err.strip().splitlines() or ["no output"])[-1]
            return [f"n/a: the offline Triton compile failed: {why}"] * len(jobs), None
        replies.append(json.loads(out.strip().splitlines()[-1]))
    merged = {}
    for r in replies:
        merged.update(r["results"])
    keys = replies[0]["keys"]
    # A key that is an error text failed to bind; every other was compiled
    # by exactly one worker.
    results = [k if k.startswith("n/a") else merged.get(k, "n/a: no worker compiled it")
               for k in keys]
    return results, replies[0]["header"]


_PTXAS_ENTRY = re.compile(r"Compiling entry function '([^']+)'")
_PTXAS_PROPS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_PTXAS_USED = re.compile(r"Used (\d+) registers")
_PTXAS_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas(log):
    """{function: {"regs", "smem", "stack", "spill_stores", "spill_loads"}}
    from a ptxas -v log (nvcc -Xptxas -v prints the same lines)."""
    out, current = {}, None
    for line in log.splitlines():
        m = _PTXAS_ENTRY.search(line)
        if m:
            current = out.setdefault(m.group(1), {"smem": 0})
            continue
        if current is None:
            continue
        m = _PTXAS_PROPS.search(line)
        if m:
            current.update(stack=int(m.group(1)), spill_stores=int(m.group(2)),
                           spill_loads=int(m.group(3)))
        m = _PTXAS_USED.search(line)
        if m:
            current["regs"] = int(m.group(1))
            s = _PTXAS_SMEM.search(line)
            current["smem"] = int(s.group(1)) if s else 0
    return out


def _error_text(e):
    text = str(e).strip()
    return f"n/a: {type(e).__name__}: {text.splitlines()[0][:300]}" if text else \
        f"n/a: {type(e).__name__}"


def worker():
    """Subprocess entry: bind the jobs on stdin, compile this worker's share
    of the distinct specializations for sm_90, print JSON {"keys": [key per
    job], "results": {key: resources or 'n/a: ...'}, "header"}."""
    import importlib
    import importlib.util
    import time
    if importlib.util.find_spec("cupy") is None:
        # kernels/triton/common.py imports cupy when TRITON_INTERPRET is off;
        # compiling needs only the kernel definitions, never an array.
        sys.modules["cupy"] = types.ModuleType("cupy")
    os.environ["TRITON_DUMP_PTXAS_LOG"] = "1"   # Triton's own ptxas -v log, printed
    os.environ["TRITON_ALWAYS_COMPILE"] = "1"   # never a cache hit (no log then)

    import torch
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.compiler.compiler import make_backend
    from triton.runtime.jit import JITFunction, create_function_from_signature

    request = json.load(sys.stdin)
    target = GPUTarget("cuda", TARGET_CAPABILITY, WARP_SIZE)
    backend = make_backend(target)

    def rebuild(v):
        if isinstance(v, dict) and "unsupported" in v:
            raise TypeError(f"an argument of type {v['unsupported']} ({v['repr']}) was not "
                            f"recorded in a form this tool can rebuild")
        if isinstance(v, dict) and "tensor" in v:
            t = torch.empty(64, dtype=getattr(torch, v["tensor"]))
            return t if v["aligned"] else t[1:]  # off 16-byte alignment, as recorded
        return v

    # Bind every job as JITFunction.run does before compiling; the key is
    # what Triton's cache would key on.
    keys, sources = [], {}
    for job in request["jobs"]:
        try:
            fn = getattr(importlib.import_module(job["module"]), job["qualname"])
            if not isinstance(fn, JITFunction):
                raise RuntimeError(f"{job['qualname']} is {type(fn).__name__}, not a JITFunction")
            args = [rebuild(v) for v in job["args"]]
            kwargs = {k: rebuild(v) for k, v in job["kwargs"].items()}
            kwargs["debug"] = kwargs.get("debug", fn.debug) or triton.knobs.runtime.debug
            binder = create_function_from_signature(fn.signature, fn.params, backend)
            bound, specialization, options = binder(*args, **kwargs)
            options, signature, constexprs, attrs = fn._pack_args(backend, kwargs, bound,
                                                                  specialization, options)
            key = json.dumps([job["module"], job["qualname"], signature,
                              sorted((str(k), repr(v)) for k, v in constexprs.items()),
                              sorted((str(k), repr(v)) for k, v in attrs.items()),
                              sorted((k, repr(v)) for k, v in options.__dict__.items())])
            sources.setdefault(key, (fn, signature, constexprs, attrs, options))
        except Exception as e:  # one job's failure must not hide the others
            key = _error_text(e)
        keys.append(key)

    results = {}
    mine = sorted(sources)[request["worker"]::request["workers"]]
    for key in mine:
        fn, signature, constexprs, attrs, options = sources[key]
        start = time.perf_counter()
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log):
                kernel = triton.compile(ASTSource(fn, signature, constexprs, attrs),
                                        target=target, options=options.__dict__)
            md = kernel.metadata
            found = parse_ptxas(log.getvalue()).get(md.name)
            if found is None or "regs" not in found:
                raise RuntimeError("Triton's ptxas -v log had no register count for "
                                   f"{md.name}")
            # Triton's shared memory is dynamic (ptxas reports 0 static); its
            # size is the compiler's, in the metadata.
            found.update(smem=int(md.shared), num_warps=int(md.num_warps),
                         num_stages=int(md.num_stages), kernel=fn.__name__,
                         spec=hashlib.sha1(key.encode()).hexdigest()[:12],
                         seconds=round(time.perf_counter() - start, 3))
            results[key] = found
        except Exception as e:
            results[key] = _error_text(e)
    from triton.backends.nvidia.compiler import get_ptxas
    version = subprocess.run([get_ptxas(TARGET_CAPABILITY).path, "--version"],
                             capture_output=True, text=True).stdout
    release = re.search(r"release ([\d.]+)", version)
    header = (f"triton {triton.__version__} compile for GPUTarget('cuda', {TARGET_CAPABILITY}, "
              f"{WARP_SIZE}); registers and spills from its bundled ptxas "
              f"{release.group(1) if release else '?'} -v; shared memory from the compiled "
              f"metadata")
    print(json.dumps({"keys": keys, "results": results, "header": header}))


# ============================================================ checks
def launch_limits(grid, threads, regs=None, smem=None, static=False):
    """The hardware limits this launch breaks, as text (empty: none)."""
    bad = []
    gx, gy, gz = (tuple(grid) + (1, 1))[:3]
    if not 1 <= gx <= LIMITS["grid_x"]:
        bad.append(f"grid x {gx} outside [1, {LIMITS['grid_x']}]")
    for name, g in (("y", gy), ("z", gz)):
        if not 1 <= g <= LIMITS["grid_yz"]:
            bad.append(f"grid {name} {g} outside [1, {LIMITS['grid_yz']}]")
    if not 1 <= threads <= LIMITS["threads"]:
        bad.append(f"{threads} threads per block (at most {LIMITS['threads']})")
    if regs is not None:
        if regs > LIMITS["regs_per_thread"]:
            bad.append(f"{regs} registers per thread (at most {LIMITS['regs_per_thread']})")
        if regs * threads > LIMITS["regs_per_block"]:
            bad.append(f"{regs} registers x {threads} threads = {regs * threads} per block "
                       f"(at most {LIMITS['regs_per_block']})")
    if smem is not None:
        limit = LIMITS["static_smem" if static else "dynamic_smem"]
        if smem > limit:
            bad.append(f"{smem} B of {'static' if static else 'dynamic'} shared memory "
                       f"(at most {limit})")
    return bad


def jit_kernels():
    """{module.qualname: kind} of every @triton.jit function in
    kernels/triton/, found by inspecting the modules (in a process without
    TRITON_INTERPRET they are JITFunctions; under it, InterpretedFunctions):
    "kernel" for one no other jit function calls (a launch entry point),
    "helper" for one called from another's source."""
    import importlib
    import pkgutil
    from triton.runtime.jit import KernelInterface
    import kernels.triton as package
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, obj in vars(module).items():
            # Defined here, not imported from a sibling module.
            if isinstance(obj, KernelInterface) and obj.fn.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    sources = {k: _source(v) for k, v in found.items()}
    kinds = {}
    for k in found:
        short = k.rsplit(".", 1)[1]
        called = any(re.search(rf"\b{re.escape(short)}\s*\(", src)
                     for other, src in sources.items() if other != k)
        kinds[k] = "helper" if called else "kernel"
    return kinds


def _source(obj):
    import inspect
    return inspect.getsource(obj.fn)


# ============================================================ the whole check
def run(workers=2, cfg=DCGAN):
    """Record everything (all_launches), compile the distinct specializations;
    returns {"groups", "launches", "results" (one per launch), "header"}."""
    groups = all_launches(cfg)
    launches = [L for g in groups.values() for L in g]
    jobs = jobs_of(launches)
    unique = sorted({json.dumps(j, sort_keys=True) for j in jobs})
    results, header = compile_jobs([json.loads(j) for j in unique], workers=workers)
    by_job = dict(zip(unique, results))
    per_launch = [by_job[json.dumps(j, sort_keys=True)] for j in jobs]
    return {"groups": groups, "launches": launches, "results": per_launch, "header": header}


def violations(launches, results):
    """Text for every launch that failed to compile or breaks a limit or the
    spill budget."""
    bad = []
    for L, r in zip(launches, results):
        where = f"{L['qualname']} grid {L['grid']} {L['constexprs']}"
        if isinstance(r, str):
            bad.append(f"{where}: {r}")
            continue
        problems = launch_limits(L["grid"], WARP_SIZE * r["num_warps"], r["regs"], r["smem"])
        spills = r["spill_stores"] + r["spill_loads"]
        if spills > SPILL_BUDGET:
            problems.append(f"{spills} B of spills (budget {SPILL_BUDGET} B)")
        if problems:
            bad.append(f"{where}: " + "; ".join(problems))
    return bad


def table(launches, results):
    """Markdown rows per kernel: specializations, registers, spills, shared
    memory, warps, largest grid, compile seconds."""
    per = {}
    for L, r in zip(launches, results):
        if isinstance(r, str):
            continue
        e = per.setdefault(L["qualname"], {"keys": {}, "grid": (0, 0, 0)})
        e["keys"][r["spec"]] = r
        e["grid"] = max(e["grid"], tuple(L["grid"]), key=lambda g: g[0] * g[1] * g[2])
    rows = ["| kernel | specializations | regs | spill B (st+ld) | shared mem B | warps | "
            "largest grid | compile s |", "|---|---|---|---|---|---|---|---|"]
    for name, e in sorted(per.items()):
        rs = list(e["keys"].values())

        def span(f):
            lo, hi = min(map(f, rs)), max(map(f, rs))
            return f"{lo}" if lo == hi else f"{lo}-{hi}"
        rows.append(f"| {name} | {len(rs)} | {span(lambda r: r['regs'])} | "
                    f"{span(lambda r: r['spill_stores'] + r['spill_loads'])} | "
                    f"{span(lambda r: r['smem'])} | {span(lambda r: r['num_warps'])} | "
                    f"{e['grid']} | {sum(r['seconds'] for r in rs):.1f} |")
    return rows


if __name__ == "__main__":
    import time
    sys.path.insert(0, ROOT)
    import kernels
    if not kernels._gpu_present():
        os.environ.setdefault("TRITON_INTERPRET", "1")
        os.environ.setdefault("NN_CUDA_EMULATE", "1")
    start = time.perf_counter()
    out = run(workers=int(os.environ.get("NN_AOT_WORKERS", "2")))
    print(out["header"])
    print({k: len(v) for k, v in out["groups"].items()})
    print("\n".join(table(out["launches"], out["results"])))
    bad = violations(out["launches"], out["results"])
    print(f"{len(bad)} violation(s)" + "".join(f"\n  {b}" for b in bad[:50]))
    print(f"{time.perf_counter() - start:.1f} s")


# ============================================================ CUDA C through NVRTC
def cupy_nvrtc_options(options, capability=TARGET_CAPABILITY):
    """The options cupy.RawModule hands NVRTC for our `options` on a GPU of
    `capability`, built by CuPy's own function where it has one: CuPy's
    include paths and default standard (core.assemble_cupy_compiler_options),
    then what cupy/cuda/compiler.py appends (CuPy 13-14): -ftz=true; -arch=
    sm_XX, a cubin, where NVRTC knows the arch and CUPY_COMPILE_WITH_PTX is
    off (else compute_XX, PTX); --device-as-default-execution-space; --pch
    with CUPY_NVRTC_USE_PCH on NVRTC >= 12.8. Returns (options, method)."""
    from cupy._core import core
    from cupy.cuda import compiler
    out = core.assemble_cupy_compiler_options(tuple(options)) + ("-ftz=true",)
    if not compiler._use_ptx and capability <= int(compiler._get_max_compute_capability()):
        out, method = out + (f"-arch=sm_{capability}",), "cubin"
    else:
        out, method = out + (f"-arch=compute_{capability}",), "ptx"
    out += ("--device-as-default-execution-space",)
    major, minor = compiler._get_nvrtc_version()
    if (major >= 13 or (major, minor) >= (12, 8)) and compiler._use_pch:
        out += ("--pch",)
    return out, method


def nvrtc_compile(module, capability=TARGET_CAPABILITY, verbose_ptxas=True):
    """Compile kernels/cuda Module `module` through NVRTC as a GPU run would
    (module.nvrtc_request(), CuPy's options, CuPy's NVRTC program class);
    returns {"options", "method", "binary", "lowered": {name expression:
    mangled name}, "resources": {mangled name: ptxas -v resources}, "log"}.
    With verbose_ptxas (cubins only) ptxas' -v report is asked for too:
    it changes no code, only what the log says."""
    from cupy.cuda import compiler
    source, ours, names = module.nvrtc_request()
    options, method = cupy_nvrtc_options(ours, capability)
    extra = ("--ptxas-options=-v",) if verbose_ptxas and method == "cubin" else ()
    log = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:  # CuPy names the program after a temp file
        path = os.path.join(tmp, "kern.cu")
        with open(path, "w") as f:
            f.write(source)
        program = compiler._NVRTCProgram(source, path, name_expressions=names, method=method)
        binary, lowered = program.compile(options + extra, log)
    text = log.getvalue()
    return {"options": options, "method": method, "binary": binary, "lowered": lowered,
            "resources": parse_ptxas(text), "log": text}
