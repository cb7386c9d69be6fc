"""DCGAN training step on the CPU: our `numpy` backend against torch CPU.

    python benchmarks/dcgan_step_cpu.py [--batch 128] [--repeat 3] [--out DIR]
    python benchmarks/dcgan_step_cpu.py --image-size 32 --ngf 32 --ndf 32 --nc 1 --batch 64

Same model (by default pytorch/examples' DCGAN: 64x64, nz 100, ngf = ndf = 64,
nc 3; the second line is train.py's mnist5k preset), same weights, same batch
and noise, float32, on the same number of threads.
Two measurements per provider, each the median of --repeat runs after one
warm-up:
  fwd+bwd: G(z) -> D -> BCE, then backward through D and G;
  step:    the whole training step of pytorch/examples (D on real, D on fake,
           Adam on D, then G's update through D, Adam on G).
Before timing, every provider's loss and gradients are compared with a
torch float64 reference; ours must be no less accurate than torch float32
(see the check in main), or it is not timed.

FLOPs: a conv or transposed conv costs 2 * N * C_out * OH * OW * C_in * KH * KW
for its forward (counted on the direct-conv side), and twice that for its
backward (input gradient + weight gradient); elementwise ops are ignored.
The machine's peak is measured in the same run: a 4096^3 float32 matmul in
NumPy (OpenBLAS) and in torch; the faster of the two is the peak that every
row's percentage refers to.
"""

import argparse
import copy
import datetime
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import nn  # noqa: E402
from dcgan.models import build_discriminator, build_generator  # noqa: E402



def conv_flops(torch_model, x):
    """Forward FLOPs of every conv in `torch_model` on input x (shapes from hooks)."""
    total = 0

    def count(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        # Count on the direct-conv side: for a transposed conv that is the input.
        big, small = (out, inp[0]) if isinstance(mod, torch.nn.Conv2d) else (inp[0], out)
        total += 2 * big.shape[0] * big.shape[1] * big.shape[2] * big.shape[3] * small.shape[1] * k

    hooks = [m.register_forward_hook(count) for m in torch_model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        out = torch_model(x)
    for h in hooks:
        h.remove()
    return total, out


def median_time(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def matmul_peak(lib, n=4096, repeat=3):
    if lib == "numpy":
        a = np.random.rand(n, n).astype(np.float32)
        f = lambda: a @ a  # noqa: E731
    else:
        a = torch.rand(n, n)
        f = lambda: a @ a  # noqa: E731
    t, _, _ = median_time(f, repeat)
    return 2 * n ** 3 / t


class Provider:
    """One library's models, optimizers and loss, driven by the same step code."""

    def __init__(self, lib, tensor, G, D, loss, opt):
        self.lib, self.tensor, self.G, self.D, self.loss = lib, tensor, G, D, loss
        self.optG = opt(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optD = opt(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def fwd_bwd(self, noise, ones):
        self.G.zero_grad()
        self.D.zero_grad()
        err = self.loss(self.D(self.G(noise)), ones)
        err.backward()
        return err

    def step(self, real, noise, ones, zeros):
        self.D.zero_grad()
        self.loss(self.D(real), ones).backward()
        fake = self.G(noise)
        self.loss(self.D(fake.detach()), zeros).backward()
        self.optD.step()
        self.G.zero_grad()
        self.loss(self.D(fake), ones).backward()
        self.optG.step()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--nz", type=int, default=100)
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--ndf", type=int, default=64)
    ap.add_argument("--nc", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    threads = os.cpu_count()
    torch.set_num_threads(threads)

    torch.manual_seed(0)
    NZ, NC, IMAGE = args.nz, args.nc, args.image_size
    tG = build_generator(torch.nn, NZ, args.ngf, NC, IMAGE)
    tD = build_discriminator(torch.nn, NC, args.ndf, IMAGE)
    oG = build_generator(nn, NZ, args.ngf, NC, IMAGE)
    oD = build_discriminator(nn, NC, args.ndf, IMAGE)
    oG.load_state_dict(tG.state_dict())
    oD.load_state_dict(tD.state_dict())
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (args.batch, NC, IMAGE, IMAGE)).astype(np.float32)
    noise = rng.standard_normal((args.batch, NZ, 1, 1)).astype(np.float32)
    ones, zeros = np.ones(args.batch, np.float32), np.zeros(args.batch, np.float32)

    providers = {
        "torch": Provider(torch, torch.tensor, tG, tD, torch.nn.BCELoss(), torch.optim.Adam),
        "nn-numpy": Provider(nn, nn.tensor, oG, oD, nn.BCELoss(), nn.optim.Adam),
    }
    inputs = {name: [p.tensor(a) for a in (real, noise, ones, zeros)]
              for name, p in providers.items()}

    # Correctness first, against a float64 torch reference. This fwd+bwd is
    # ill-conditioned in float32 (torch's own float32 gradients are ~1e-3 off
    # float64 at the default init), so a provider passes if its error is no
    # worse than twice torch float32's, plus 1e-5.
    ref = Provider(torch, lambda a: torch.tensor(a, dtype=torch.float64),
                   copy.deepcopy(tG).double(), copy.deepcopy(tD).double(), torch.nn.BCELoss(),
                   torch.optim.Adam)
    checked = dict(providers, reference=ref)
    losses, grads = {}, {}
    for n, p in checked.items():
        noise_t, ones_t = p.tensor(noise), p.tensor(ones)
        losses[n] = float(p.fwd_bwd(noise_t, ones_t).item())
        grads[n] = np.concatenate([np.asarray(q.grad.numpy(), np.float64).ravel()
                                   for q in list(p.G.parameters()) + list(p.D.parameters())])
    check = {n: dict(loss_rel_err=abs(losses[n] - losses["reference"]) / abs(losses["reference"]),
                     grad_rel_err=float(np.linalg.norm(grads[n] - grads["reference"])
                                        / np.linalg.norm(grads["reference"])))
             for n in providers}
    for n, c in check.items():
        print(f"check {n}: vs torch float64: loss rel err {c['loss_rel_err']:.2e}, "
              f"all-gradient rel err {c['grad_rel_err']:.2e}")
    budget = 2 * check["torch"]["grad_rel_err"] + 1e-5
    if not (check["nn-numpy"]["grad_rel_err"] <= budget and check["nn-numpy"]["loss_rel_err"] <= 1e-5):
        sys.exit("benchmark: nn-numpy is less accurate than torch float32; not timing it")

    # FLOPs of one G forward and one D forward, from the conv shapes.
    fG, fake = conv_flops(tG, torch.tensor(noise))
    fD, _ = conv_flops(tD, fake)
    flops = {
        # G fwd + D fwd, then D bwd (dx and dw) + G bwd (dx and dw): 3x the forward.
        "fwd+bwd": 3 * (fG + fD),
        # D real (fwd+bwd), D fake (fwd + bwd), G fwd; G step: D fwd+bwd, G bwd.
        "step": 3 * fD + fG + 3 * fD + 3 * fD + 2 * fG,
    }
    peaks = {"numpy": matmul_peak("numpy"), "torch": matmul_peak("torch")}

    rows = []
    for name, p in providers.items():
        real_t, noise_t, ones_t, zeros_t = inputs[name]
        for what, fn in (("fwd+bwd", lambda: p.fwd_bwd(noise_t, ones_t)),
                         ("step", lambda: p.step(real_t, noise_t, ones_t, zeros_t))):
            med, lo, hi = median_time(fn, args.repeat)
            peak = max(peaks.values())
            rows.append(dict(provider=name, what=what, batch=args.batch, median_s=med, min_s=lo,
                             max_s=hi, images_per_s=args.batch / med, gflop=flops[what] / 1e9,
                             gflops_per_s=flops[what] / med / 1e9,
                             pct_of_matmul_peak=100 * flops[what] / med / peak))
            print(f"{name:9s} {what:8s} median {med * 1e3:8.1f} ms (min {lo * 1e3:.1f}, "
                  f"max {hi * 1e3:.1f}) {flops[what] / med / 1e9:6.1f} GFLOP/s")
    for r in rows:
        ref = next(x for x in rows if x["provider"] == "torch" and x["what"] == r["what"])
        r["time_vs_torch"] = r["median_s"] / ref["median_s"]

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    meta = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                device=f"CPU: {cpu}", threads=threads, numpy=np.__version__,
                torch=torch.__version__, python=platform.python_version(), dtype="float32",
                command="python " + " ".join(sys.argv), check_vs_float64=check,
                matmul_peak_gflops={k: v / 1e9 for k, v in peaks.items()})
    os.makedirs(args.out, exist_ok=True)
    config = f"{IMAGE}px_ngf{args.ngf}_ndf{args.ndf}_nc{NC}_b{args.batch}"
    meta["config"] = dict(image_size=IMAGE, nz=NZ, ngf=args.ngf, ndf=args.ndf, nc=NC,
                          batch=args.batch)
    stem = os.path.join(args.out, f"dcgan_step_cpu_{config}_{meta['date'][:10]}")
    with open(stem + ".json", "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write(f"# DCGAN {IMAGE}x{IMAGE} (nz {NZ}, ngf {args.ngf}, ndf {args.ndf}, nc {NC}), "
                f"batch {args.batch}, float32, CPU\n\n")
        f.write(f"{meta['date']}, {meta['device']}, {threads} threads, numpy {np.__version__}, "
                f"torch {torch.__version__}, Python {meta['python']}.\n\n"
                f"Command: `{meta['command']}`\n\n"
                "Correctness check before timing, against torch float64 (fwd+bwd, all "
                "gradients): " + ", ".join(f"{n} loss {c['loss_rel_err']:.1e} / gradients "
                                           f"{c['grad_rel_err']:.1e}" for n, c in check.items())
                + ".\n"
                f"Measured float32 matmul (4096^3): numpy {peaks['numpy'] / 1e9:.1f} GFLOP/s, "
                f"torch {peaks['torch'] / 1e9:.1f} GFLOP/s; the faster is the peak below.\n\n"
                "| provider | what | median ms | min–max ms | images/s | GFLOP | GFLOP/s "
                "| % of matmul peak | time vs torch |\n|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['provider']} | {r['what']} | {r['median_s'] * 1e3:.0f} | "
                    f"{r['min_s'] * 1e3:.0f}–{r['max_s'] * 1e3:.0f} | {r['images_per_s']:.0f} | "
                    f"{r['gflop']:.1f} | "
                    f"{r['gflops_per_s']:.1f} | {r['pct_of_matmul_peak']:.0f}% | "
                    f"{r['time_vs_torch']:.2f}x |\n")
    print(f"wrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
