"""nn.serialization (our safetensors reader and writer) against the reference
implementation and torch, in both directions; malformed files; and the
checkpoint loader's refusal of anything that could run code."""

import os
import pickle
import struct

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch

import nn
from dcgan import checkpoint
from dcgan.models import build_discriminator, build_generator
from nn.serialization import SafetensorsError, load_file, read, save_file

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8,
          np.bool_]


def random_tensors(rng):
    out = {}
    for k, dt in enumerate(DTYPES):
        shape = [(3, 5), (1,), (), (2, 0, 4), (7, 1, 3)][k % 5]
        a = rng.standard_normal(shape) * 100
        out[f"t{k}.{np.dtype(dt).name}"] = np.asarray(a).astype(dt)
    out["strided"] = rng.standard_normal((6, 8))[::2, 1::3]  # not contiguous
    return out


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), k


def test_ours_read_by_the_reference_and_theirs_read_by_us(tmp_path):
    tensors = random_tensors(np.random.default_rng(1))
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    save_file(tensors, ours, {"note": "written by nn"})
    assert_same(safetensors.numpy.load_file(ours),
                {k: v for k, v in tensors.items()})
    safetensors.numpy.save_file({k: np.require(v, requirements="C") for k, v in tensors.items()},
                                theirs, metadata={"a": "b"})
    got, meta = read(theirs)
    assert meta == {"a": "b"}
    assert_same(got, tensors)
    with safetensors.safe_open(ours, "np") as f:
        assert f.metadata() == {"note": "written by nn"}


def test_torch_round_trip_both_directions(tmp_path):
    g = torch.Generator().manual_seed(2)
    tensors = {"w": torch.randn(4, 3, 2, 2, generator=g, dtype=torch.float64),
               "b": torch.randn(3, generator=g), "n": torch.tensor(17),
               "mask": torch.rand(5, generator=g) > 0.5}
    path = tmp_path / "t.safetensors"
    safetensors.torch.save_file(tensors, path)
    got = load_file(path)
    assert_same(got, {k: v.numpy() for k, v in tensors.items()})
    save_file(got, path)
    back = safetensors.torch.load_file(path)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k


def test_loaded_arrays_are_writable_copies(tmp_path):
    save_file({"a": np.arange(4.0)}, tmp_path / "a.safetensors")
    a = load_file(tmp_path / "a.safetensors")["a"]
    a[0] = 5.0  # np.frombuffer over the file's bytes would be read-only
    assert a[0] == 5.0


def _file(header, data=b""):
    text = header if isinstance(header, bytes) else __import__("json").dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize("content,why", [
    (b"\x01\x02", "shorter than the 8-byte header length"),
    (struct.pack("<Q", 10 ** 9) + b"{}", "does not fit"),
    (_file(b"{not json"), "not JSON"),
    (_file(b"[1, 2]"), "not a JSON object"),
    (_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4),
     "cover 8 bytes of a 4-byte"),
    (_file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
     "needs 12 bytes"),
    (_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
     "starts at byte 4, expected 0"),
    (_file({"a": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}, b"\0" * 2),
     "dtype 'BF16'"),
    (_file({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
     "malformed shape"),
    (_file({"a": {"dtype": "F32", "shape": [1]}}, b"\0" * 4), "exactly dtype, shape"),
    (_file({"__metadata__": {"k": 1}}), "strings to strings"),
])
def test_malformed_files_are_refused_with_the_reason(tmp_path, content, why):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(SafetensorsError, match="bad.safetensors") as e:
        load_file(path)
    assert why in str(e.value) and "\n" not in str(e.value)


def test_unsupported_dtype_and_name_are_refused_on_save(tmp_path):
    with pytest.raises(SafetensorsError, match="complex128"):
        save_file({"z": np.zeros(2, np.complex128)}, tmp_path / "z.safetensors")
    with pytest.raises(SafetensorsError, match="invalid tensor name"):
        save_file({"__metadata__": np.zeros(2)}, tmp_path / "z.safetensors")
    assert not any(tmp_path.iterdir())  # nothing half-written


class _Payload:
    """Unpickling this runs code: it creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("what", ["checkpoint", "weights"])
def test_a_crafted_pickle_is_refused_before_it_can_run(tmp_path, what):
    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint.pkl"
    path.write_bytes(pickle.dumps({"format": checkpoint.FORMAT, "x": _Payload(str(marker))}))
    with pytest.raises(checkpoint.CheckpointError, match="is a pickle") as e:
        if what == "checkpoint":
            checkpoint.load(str(path))
        else:
            checkpoint.load_weights(str(path), "netG")
    assert "--trust-pickle" in str(e.value)
    assert not marker.exists()


def test_a_torch_save_archive_is_refused(tmp_path):
    path = tmp_path / "netG.pth"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(checkpoint.CheckpointError, match="torch.save archive"):
        checkpoint.load(str(path))


def test_another_programs_safetensors_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.safetensors"
    save_file({"a": np.zeros(1)}, path, {"format": "pt"})
    with pytest.raises(checkpoint.CheckpointError, match="another program"):
        checkpoint.load(str(path))


def test_a_checkpoint_missing_a_key_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_file({}, path, {"format": checkpoint.FORMAT, "state": '{"args": {}, "epoch": 1}'})
    with pytest.raises(checkpoint.CheckpointError, match="lacks iteration, netG"):
        checkpoint.load(str(path))


def _torch_dcgan(nc=1, nz=8, ngf=4, ndf=4, size=16):
    """pytorch/examples' models at a small size, built with torch's own layers."""
    G = build_generator(torch.nn, nz, ngf, nc, size)
    D = build_discriminator(torch.nn, nc, ndf, size)
    return G, D


def test_torch_dcgan_weights_load_with_netG_netD_and_ours_load_into_torch(tmp_path):
    import train
    G, D = _torch_dcgan()
    torch.manual_seed(3)
    with torch.no_grad():
        for p in list(G.parameters()) + list(D.parameters()):
            p.normal_()
    safetensors.torch.save_file(G.state_dict(), tmp_path / "G.safetensors")
    safetensors.torch.save_file(D.state_dict(), tmp_path / "D.safetensors")
    argv = ["--dataset", "fake", "--imageSize", "16", "--ngf", "4", "--ndf", "4", "--nz", "8",
            "--batchSize", "8", "--manualSeed", "1", "--workers", "0", "--dry-run",
            "--outf", str(tmp_path / "out")]
    with nn.use_backend("numpy"):
        # the fake dataset has 3 channels
        G3, D3 = _torch_dcgan(nc=3)
        with torch.no_grad():
            for p in list(G3.parameters()) + list(D3.parameters()):
                p.normal_()
        safetensors.torch.save_file(G3.state_dict(), tmp_path / "G3.safetensors")
        safetensors.torch.save_file(D3.state_dict(), tmp_path / "D3.safetensors")
        assert train.main(argv + ["--netG", str(tmp_path / "G3.safetensors"),
                                  "--netD", str(tmp_path / "D3.safetensors")]) == 0
    # our weights files (after one step) load into torch's models, strictly
    G3.load_state_dict(safetensors.torch.load_file(tmp_path / "out" / "netG_epoch_1.safetensors"))
    D3.load_state_dict(safetensors.torch.load_file(tmp_path / "out" / "netD_epoch_1.safetensors"))
    # and ours loaded with torch's keys are what we trained
    ours = checkpoint.load_weights(str(tmp_path / "out" / "netG_epoch_1.safetensors"), "netG")
    for k, v in G3.state_dict().items():
        assert np.array_equal(ours[k], v.numpy()), k


def test_checkpoint_tree_round_trips(tmp_path):
    with nn.use_backend("numpy"):
        nn.manual_seed(0)
        G = build_generator(nn, 8, 4, 1, 16)
        D = build_discriminator(nn, 1, 4, 16)
        optG = nn.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.9))
        optD = nn.optim.Adam(D.parameters())
        loss = D(G(nn.randn(2, 8, 1, 1))).mean()
        loss.backward()
        optG.step()
        optD.step()
        path = str(tmp_path / "c.safetensors")
        checkpoint.save(path, args={"lr": 1e-3, "nested": {"a": [1, 2.5, None]}}, epoch=3,
                        iteration=40, netG=G, netD=D, optG=optG, optD=optD,
                        fixed_noise=nn.randn(4, 8, 1, 1), trainer={"critic_count": 2})
        ck = checkpoint.load(path)
        assert ck["epoch"] == 3 and ck["iteration"] == 40 and ck["trainer"] == {"critic_count": 2}
        assert ck["args"]["nested"] == {"a": [1, 2.5, None]}
        assert ck["optG"]["param_groups"][0]["betas"] == (0.5, 0.9)
        assert checkpoint.arrays_equal(ck["netG"], {k: v.numpy() for k, v in G.state_dict().items()})
        state = optD.state_dict()["state"]
        assert ck["optD"]["state"].keys() == state.keys()
        assert all(isinstance(k, int) for k in ck["optD"]["state"])
        assert ck["rng"] == checkpoint.rng_states()
    assert not [n for n in os.listdir(tmp_path) if ".tmp" in n]


def test_a_header_length_starting_with_0x80_is_not_taken_for_a_pickle(tmp_path):
    """A pickle's first byte is 0x80; so is a safetensors file's whose header
    length is 128 mod 256: the JSON brace after the length tells them apart."""
    path = tmp_path / "w.safetensors"
    for pad in range(300):
        save_file({"w": np.ones(3, np.float32)}, path,
                  {"format": checkpoint.WEIGHTS_FORMAT, "which": "netG", "pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert np.array_equal(checkpoint.load_weights(str(path), "netG")["w"], np.ones(3))
