"""Loading and launching the CUDA C kernels: on a GPU through CuPy, or on the
CPU through the emulator (emulate.h) when NN_CUDA_EMULATE=1.

    MODULE = runtime.Module("conv.cu", ["conv2d_fwd<float>", ...])
    MODULE.launch("conv2d_fwd<float>", grid, block, (x, w, None, y, np.int32(N), ...))

A Module is one .cu file in this folder plus the template instantiations its
launchers use ("name expressions", as cupy.RawModule calls them). It compiles
on first launch, once per process:
  - GPU: cupy.RawModule(code=source, name_expressions=...), compiled by NVRTC
    with this folder on the include path (CuPy also caches the binary on
    disk).
  - Emulation: a small C++ file that includes emulate.h and the .cu source
    and exports one extern "C" entry point per name expression; g++ builds
    it into a shared library, cached under NN_CUDA_EMULATE_CACHE (default
    ~/.cache/nn-cuda-emulate) by a hash of every source and flag, and
    ctypes calls it. Arrays are NumPy arrays there, and kernels see their
    host addresses.
The same name expressions feed tests/test_cuda_sources.py, which compiles
every .cu file with nvcc -arch=sm_90 and warnings as errors: what CI compiles
is what CuPy compiles.

Arguments must say their C type: arrays (a pointer to the first element;
None is a null pointer) and NumPy scalars (np.int32 for `int`, np.int64 for
`long long`, np.uint32/np.uint64, np.float32/np.float64). A bare Python int
or float is refused, because its C width would be a guess.

Launch errors name the kernel. With NN_CUDA_DEBUG=1 (or `check_launches`
on) every GPU launch is followed by a device synchronize, so an illegal
address is reported by the launch that made it rather than by a later one.
"""

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np

from .. import debug

EMULATE = os.environ.get("NN_CUDA_EMULATE") == "1"
SIMULATED = EMULATE  # the name kernels/gpu_backend.py reads
HERE = os.path.dirname(os.path.abspath(__file__))
NVRTC_OPTIONS = ("--std=c++17",)
EMULATE_FLAGS = ("-std=c++20", "-O2", "-fPIC", "-shared", "-w")  # + -DNN_EMU_UCONTEXT: portable switch

if EMULATE:
    xp = np
else:  # pragma: no cover - needs a GPU
    try:
        import cupy as xp
    except ImportError:  # importable anyway (the compile check needs only the names)
        xp = None
    # NN_CUPY_NO_POOL=1 (tests/sanitize_cuda.sh): every allocation is its own
    # cudaMalloc, so compute-sanitizer sees an out-of-bounds access that the
    # memory pool would hide inside a larger pooled block.
    if xp is not None and os.environ.get("NN_CUPY_NO_POOL") == "1":
        xp.cuda.set_allocator(None)
        xp.cuda.set_pinned_memory_allocator(None)

check_launches = os.environ.get("NN_CUDA_DEBUG") == "1"
MODULES = []  # every Module created, for the compile check

# Launch recording, for benchmarks/inspect_kernel.py. While `recorder` is a
# list, every launch appends (filename, name, grid, block) to it, after the
# usual argument checks; with `record_only` also true the kernel is neither
# compiled nor run, so that the launch plan of a large shape costs nothing
# (small floating-point arguments are then set to debug.STAND_IN, the rest
# left as allocated). Off by default.
recorder = None
record_only = False


class CudaKernelError(RuntimeError):
    """A kernel failed to compile or launch, or faulted while running."""


def empty(shape, dtype):
    """An uninitialised contiguous array (NaN-poisoned in the tests)."""
    return debug.empty(xp, shape, dtype)


def address(a):
    """The raw address of array `a`'s first element (for pointer tables)."""
    return a.ctypes.data if EMULATE else a.data.ptr


_SCALARS = {np.dtype(t): c for t, c in (
    (np.int32, ctypes.c_int32), (np.int64, ctypes.c_int64), (np.uint32, ctypes.c_uint32),
    (np.uint64, ctypes.c_uint64), (np.float32, ctypes.c_float), (np.float64, ctypes.c_double))}


def _dims(v, what, name):
    v = tuple(int(e) for e in (v if isinstance(v, (tuple, list)) else (v,)))
    if not 1 <= len(v) <= 3 or min(v) < 1:
        raise CudaKernelError(f"{name}: {what} must be 1 to 3 positive ints, got {v}")
    return v + (1,) * (3 - len(v))


class Module:
    """One .cu file and the instantiations its launchers use."""

    def __init__(self, filename, name_expressions, register=True):
        """`filename` is relative to this folder (or absolute, for test kernels
        that pass register=False to stay out of MODULES and the compile check)."""
        self.path = os.path.join(HERE, filename)
        self.filename = os.path.basename(self.path)
        self.name_expressions = list(name_expressions)
        self._index = {e: i for i, e in enumerate(self.name_expressions)}
        self._compiled = None
        if register:
            MODULES.append(self)

    def source(self):
        with open(self.path) as f:
            return f.read()

    def nvrtc_request(self):
        """(source, options, name expressions): what a GPU build hands
        cupy.RawModule, which adds its own options and runs NVRTC. The one
        definition of it: tests/test_nvrtc.py compiles exactly this."""
        return self.source(), NVRTC_OPTIONS + (f"-I{HERE}",), tuple(self.name_expressions)

    def launch(self, name, grid, block, args):
        if name not in self._index:
            raise CudaKernelError(f"{self.filename}: {name!r} is not one of this module's "
                                  f"name expressions")
        grid, block = _dims(grid, "grid", name), _dims(block, "block", name)
        for k, a in enumerate(args):
            if isinstance(a, np.generic) and a.dtype in _SCALARS:
                continue
            if a is None or (hasattr(a, "shape") and not isinstance(a, np.generic)):
                continue
            raise CudaKernelError(f"{name}: argument {k} is {type(a).__name__}; pass an array, "
                                  f"None or a NumPy scalar of the C type (np.int32, ...)")
        if recorder is not None:
            recorder.append((self.filename, name, grid, block))
            if record_only:
                debug.stand_in(args)  # see kernels/debug.py
                return
        if self._compiled is None:
            self._compiled = (self._build_emulated if EMULATE else self._build_gpu)()
        self._compiled(name, grid, block, args)

    # ---------------------------------------------------------------- GPU
    def _build_gpu(self):  # pragma: no cover - needs a GPU
        if xp is None:
            raise CudaKernelError(f"{self.filename}: CuPy is not installed (pip install -e "
                                  f".[cupy]); NN_CUDA_EMULATE=1 runs the kernels on the CPU")
        try:
            source, options, names = self.nvrtc_request()
            module = xp.RawModule(code=source, options=options, name_expressions=names)
            module.compile()
        except Exception as e:
            raise CudaKernelError(f"{self.filename} failed to compile with NVRTC: {e}") from e
        functions = {}

        def run(name, grid, block, args):
            fn = functions.get(name)
            if fn is None:
                fn = functions[name] = module.get_function(name)
            args = tuple(np.uint64(0) if a is None else a for a in args)
            try:
                fn(grid, block, args)
                if check_launches:
                    xp.cuda.get_current_stream().synchronize()
            except Exception as e:
                raise CudaKernelError(f"CUDA kernel {name} ({self.filename}) failed: grid "
                                      f"{grid}, block {block}: {e}") from e
        return run

    # --------------------------------------------------------- emulation
    def emulation_source(self):
        """The C++ translation unit the emulator compiles for this module."""
        lines = ['#include "emulate.h"', f'#include "{self.path}"', "",
                 'extern "C" const char* nn_emu_error() { return emu::error.c_str(); }']
        for i, e in enumerate(self.name_expressions):
            lines.append(f'extern "C" int nn_emu_launch_{i}(const unsigned* dims, void** args) '
                         f'{{ return emu::launch(&{e}, dims, args); }}')
        return "\n".join(lines) + "\n"

    def _build_emulated(self):
        library = ctypes.CDLL(_compile_emulated(self))
        library.nn_emu_error.restype = ctypes.c_char_p
        entries = [getattr(library, f"nn_emu_launch_{i}")
                   for i in range(len(self.name_expressions))]

        def run(name, grid, block, args):
            keep = []  # the ctypes values must outlive the call
            pointers = (ctypes.c_void_p * max(1, len(args)))()
            for k, a in enumerate(args):
                if a is None:
                    v = ctypes.c_void_p(0)
                elif isinstance(a, np.generic):
                    v = _SCALARS[a.dtype](a.item())
                else:
                    if not isinstance(a, np.ndarray):
                        raise CudaKernelError(f"{name}: argument {k} is {type(a).__name__}, "
                                              f"not a NumPy array (emulation)")
                    v = ctypes.c_void_p(a.ctypes.data)
                keep.append(v)
                pointers[k] = ctypes.cast(ctypes.pointer(v), ctypes.c_void_p)
            dims = (ctypes.c_uint * 6)(*grid, *block)
            if entries[self._index[name]](dims, pointers) != 0:
                raise CudaKernelError(f"CUDA kernel {name} ({self.filename}) failed under "
                                      f"emulation: grid {grid}, block {block}: "
                                      f"{library.nn_emu_error().decode()}")
        return run


def _compile_emulated(module):
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        raise CudaKernelError("NN_CUDA_EMULATE=1 needs a C++20 compiler (g++), none found")
    tu = module.emulation_source()
    digest = hashlib.sha256()
    for part in (tu, cxx, " ".join(EMULATE_FLAGS)):
        digest.update(part.encode())
    # The module's source and every header it may include.
    paths = [module.path] + [os.path.join(HERE, n) for n in sorted(os.listdir(HERE))
                             if n.endswith((".cuh", ".h"))]
    for path in paths:
        with open(path, "rb") as f:
            digest.update(path.encode() + f.read())
    cache = os.environ.get("NN_CUDA_EMULATE_CACHE",
                           os.path.join(os.path.expanduser("~"), ".cache", "nn-cuda-emulate"))
    os.makedirs(cache, exist_ok=True)
    stem = os.path.splitext(module.filename)[0]
    target = os.path.join(cache, f"{stem}-{digest.hexdigest()[:16]}.so")
    if os.path.exists(target):
        return target
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        src = os.path.join(tmp, f"{stem}_emulated.cpp")
        with open(src, "w") as f:
            f.write(tu)
        out = os.path.join(tmp, "lib.so")
        cmd = [cxx, *EMULATE_FLAGS, f"-I{HERE}", src, "-o", out]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CudaKernelError(f"{module.filename} failed to compile for emulation "
                                  f"({' '.join(cmd)}):\n{proc.stderr[-4000:]}")
        os.replace(out, target)  # atomic: concurrent processes never see half a file
    return target
