"""Tensor files that cannot run code: the safetensors format, read and written
with NumPy alone.

A pickle (torch.save, or this project's first checkpoints) can execute
arbitrary code while it loads, before anyone can check what it holds. A
safetensors file is plain data, and it is what torch users already exchange
weights in, so it is the one format we read and write:

    8 bytes       N, the header's length (unsigned 64-bit, little-endian)
    N bytes       a JSON object: for each tensor {"dtype": "F32",
                  "shape": [...], "data_offsets": [begin, end]}, plus an
                  optional "__metadata__" object of string -> string
    the rest      the tensors' bytes, C-contiguous, little-endian; offsets are
                  relative to this buffer, which they tile with no gaps

(https://github.com/huggingface/safetensors, "Format"). Files written here
load with `safetensors.torch.load_file` / `safetensors.numpy.load_file`, and
theirs load here; tests/test_serialization.py checks both directions.

Everything a reader gets from the file is validated before any array is
made: a file that does not follow the format raises SafetensorsError with a
one-line message that names it.
"""

import json
import os
import struct

import numpy as np

# safetensors' dtype names; NumPy has no bfloat16, so BF16 files are refused.
DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
          "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
          "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
          "BOOL": np.bool_}
NAMES = {np.dtype(t): name for name, t in DTYPES.items()}
MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's limit


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file (one-line message)."""


def atomic_write(path, write):
    """Call write(f) on a temporary file beside `path`, flush it to disk and
    rename it over `path`: a crash at any moment leaves the old file or the
    new one, never a torn one. The folder is synced too, so the rename itself
    survives a power cut."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _host(name, value):
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()  # an nn Tensor (or a torch CPU tensor)
    a = np.asarray(value)
    if a.dtype not in NAMES:
        raise SafetensorsError(f"save_file: tensor '{name}' has dtype {a.dtype}, which safetensors "
                               f"cannot store (supported: {', '.join(str(np.dtype(t)) for t in DTYPES.values())})")
    # (not ascontiguousarray: it turns a 0-d array, a step counter, into shape (1,))
    return np.require(a, a.dtype.newbyteorder("<"), "C")


def encode(tensors, metadata=None):
    """The bytes of a safetensors file holding `tensors` (name -> array)."""
    header, arrays, offset = {}, [], 0
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise SafetensorsError("save_file: metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise SafetensorsError(f"save_file: invalid tensor name {name!r}")
        a = _host(name, value)
        header[name] = {"dtype": NAMES[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        arrays.append(a)
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the tensors' bytes start 8-byte aligned
    return b"".join([struct.pack("<Q", len(text)), text] + [a.tobytes() for a in arrays])


def save_file(tensors, filename, metadata=None):
    """Write `tensors` (name -> nn Tensor or NumPy array) and optional string
    metadata to `filename` as safetensors, atomically."""
    data = encode(tensors, metadata)
    atomic_write(filename, lambda f: f.write(data))


def decode(data, filename="<bytes>"):
    """(tensors, metadata) from the bytes of a safetensors file."""
    def bad(why):
        return SafetensorsError(f"'{filename}' is not a valid safetensors file: {why}")
    if len(data) < 8:
        raise bad(f"{len(data)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(MAX_HEADER, len(data) - 8):
        raise bad(f"header length {n} does not fit in a file of {len(data)} bytes")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"the header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("__metadata__ must map strings to strings")
    buffer = memoryview(data)[8 + n:]
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"entry '{name}' must hold exactly dtype, shape and data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPES:
            raise bad(f"tensor '{name}' has dtype {dtype!r} (supported: {', '.join(DTYPES)})")
        ints = lambda xs: isinstance(xs, list) and all(type(x) is int and x >= 0 for x in xs)
        if not ints(shape) or not ints(offsets) or len(offsets) != 2:
            raise bad(f"tensor '{name}' has a malformed shape {shape!r} or data_offsets {offsets!r}")
        nbytes = int(np.prod(shape, dtype=object)) * np.dtype(DTYPES[dtype]).itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise bad(f"tensor '{name}' of shape {shape} and dtype {dtype} needs {nbytes} bytes, "
                      f"its data_offsets span {offsets[1] - offsets[0]}")
        entries.append((offsets[0], offsets[1], name, dtype, shape))
    end = 0
    for begin, stop, name, _, _ in sorted(entries):
        if begin != end:
            raise bad(f"tensor '{name}' starts at byte {begin}, expected {end} (gaps or overlaps)")
        end = stop
    if end != len(buffer):
        raise bad(f"the tensors cover {end} bytes of a {len(buffer)}-byte data buffer")
    tensors = {}
    for begin, stop, name, dtype, shape in entries:  # the header's order
        a = np.frombuffer(buffer[begin:stop], dtype=np.dtype(DTYPES[dtype]).newbyteorder("<"))
        tensors[name] = a.astype(DTYPES[dtype]).reshape(shape)  # a native-order, writable copy
    return tensors, metadata


def read(filename):
    """(tensors, metadata) of a safetensors file; OSError if it cannot be read."""
    with open(filename, "rb") as f:
        data = f.read()
    return decode(data, filename)


def load_file(filename):
    """The tensors of a safetensors file, name -> NumPy array (as
    safetensors.numpy.load_file)."""
    return read(filename)[0]
