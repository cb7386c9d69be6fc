"""The whole DCGAN training step, per provider: pytorch/examples' loop (D on
real, D on fake, Adam on D, then G's update through D, Adam on G), and its
forward+backward alone (G(z) -> D -> BCE -> backward through D and G).

Providers: torch (eager; on a GPU also torch-tf32 and torch-compile, which
compiles G and D with mode="max-autotune"), and our library `nn` on each
backend (numpy on the CPU; triton, cupy and their -tf32 variants on a GPU).
All start from torch's weights and see the same batch and noise, in float32.

Correctness first: each provider's loss and every gradient of one
forward+backward are compared with torch in float64 on the CPU. This
computation is ill-conditioned in float32 at DCGAN's init (torch's own
float32 gradients sit ~1e-3 from float64), so a provider passes when its
gradient error is at most twice torch float32's plus 1e-5 (TF32 providers:
twice torch-tf32's, at least 5e-3), and its loss is within 1e-5 (TF32: 1e-3).

FLOPs: a conv costs 2 * N * C_out * OH * OW * C_in * KH * KW forward (on
the direct-conv side) and twice that backward (input + weight gradients);
elementwise work is not counted. fwd+bwd = 3 (G + D); step = D real
(3 D) + G forward (G) + D fake (3 D) + G step (3 D + 2 G).
"""

import copy

import numpy as np

import nn
from dcgan.models import build_discriminator, build_generator

from .ops import conv_precision, precision_of, torch_mode


def conv_flops(torch_model, x):
    """Forward FLOPs of every conv in `torch_model` on input x, and its output."""
    import torch
    total = 0

    def count(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        big, small = (out, inp[0]) if isinstance(mod, torch.nn.Conv2d) else (inp[0], out)
        total += 2 * big.shape[0] * big.shape[1] * big.shape[2] * big.shape[3] * small.shape[1] * k

    hooks = [m.register_forward_hook(count) for m in torch_model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        out = torch_model(x)
    for h in hooks:
        h.remove()
    return total, out


class Provider:
    """One library's G, D, loss and optimizers, driven by the same step code."""

    def __init__(self, tensor, G, D, loss, opt, context):
        self.tensor, self.G, self.D, self.loss, self.context = tensor, G, D, loss, context
        self.optG = opt(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optD = opt(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def fwd_bwd(self, noise, ones):
        with self.context():
            self.G.zero_grad()
            self.D.zero_grad()
            err = self.loss(self.D(self.G(noise)), ones)
            err.backward()
            return err

    def step(self, real, noise, ones, zeros):
        with self.context():
            self.D.zero_grad()
            self.loss(self.D(real), ones).backward()
            fake = self.G(noise)
            self.loss(self.D(fake.detach()), zeros).backward()
            self.optD.step()
            self.G.zero_grad()
            self.loss(self.D(fake), ones).backward()
            self.optG.step()

    def grads(self):
        return np.concatenate([np.asarray(_host(q.grad), np.float64).ravel()
                               for q in list(self.G.parameters()) + list(self.D.parameters())])


def _host(t):
    """A NumPy copy of a torch tensor or an nn tensor."""
    import torch
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def _make(provider, cfg, tG, tD, device):
    import torch
    if provider.startswith("torch"):
        G, D = copy.deepcopy(tG).to(device), copy.deepcopy(tD).to(device)
        if provider == "torch-compile":
            G, D = torch.compile(G, mode="max-autotune"), torch.compile(D, mode="max-autotune")
        return Provider(lambda a: torch.from_numpy(a).to(device), G, D, torch.nn.BCELoss(),
                        torch.optim.Adam, lambda: torch_mode(provider, device))
    base = provider.split("-")[0]

    class context:  # the backend (and conv precision) for every call
        def __enter__(self):
            # BCE's range checks deferred, as train.py's step defers them: checked at
            # once they copy the input to the host, a sync the training step never makes.
            self.stack = [nn.use_backend(base), conv_precision(base, precision_of(provider)),
                          nn.losses.deferred_range_checks()]
            for c in self.stack:
                c.__enter__()

        def __exit__(self, *exc):
            for c in reversed(self.stack):
                c.__exit__(*exc)

    with nn.use_backend(base):
        G = build_generator(nn, cfg["nz"], cfg["ngf"], cfg["nc"], cfg["image"])
        D = build_discriminator(nn, cfg["nc"], cfg["ndf"], cfg["image"])
        G.load_state_dict({k: v.numpy() for k, v in tG.state_dict().items()})
        D.load_state_dict({k: v.numpy() for k, v in tD.state_dict().items()})
        return Provider(nn.tensor, G, D, nn.BCELoss(), nn.optim.Adam, context)


def run_step(cfg, providers, device, timer, peaks):
    """Rows for the fwd+bwd and the whole step of every provider (check first)."""
    import torch
    torch.manual_seed(0)
    tG = build_generator(torch.nn, cfg["nz"], cfg["ngf"], cfg["nc"], cfg["image"])
    tD = build_discriminator(torch.nn, cfg["nc"], cfg["ndf"], cfg["image"])
    rng = np.random.default_rng(0)
    B, img = cfg["batch"], cfg["image"]
    real = rng.uniform(-1, 1, (B, cfg["nc"], img, img)).astype(np.float32)
    noise = rng.standard_normal((B, cfg["nz"], 1, 1)).astype(np.float32)
    ones, zeros = np.ones(B, np.float32), np.zeros(B, np.float32)

    ref = Provider(lambda a: torch.tensor(a, dtype=torch.float64), copy.deepcopy(tG).double(),
                   copy.deepcopy(tD).double(), torch.nn.BCELoss(), torch.optim.Adam,
                   lambda: torch_mode("torch", "cpu"))
    ref_loss = float(ref.fwd_bwd(ref.tensor(noise), ref.tensor(ones)).item())
    ref_grads = ref.grads()

    fG, fake = conv_flops(tG, torch.from_numpy(noise))
    fD, _ = conv_flops(tD, fake)
    flops = {"fwd+bwd": 3 * (fG + fD), "step": 9 * fD + 3 * fG}

    built, checks = {}, {}
    for p in providers:
        prov = built[p] = _make(p, cfg, tG, tD, device)
        loss = float(_host(prov.fwd_bwd(prov.tensor(noise), prov.tensor(ones))))
        checks[p] = dict(loss_rel_err=abs(loss - ref_loss) / abs(ref_loss),
                         grad_rel_err=float(np.linalg.norm(prov.grads() - ref_grads)
                                            / np.linalg.norm(ref_grads)))
    rows = []
    for p in providers:
        tf32 = precision_of(p) == "tf32"
        base = checks.get("torch-tf32" if tf32 else "torch", checks.get("torch"))
        budget = max(2 * base["grad_rel_err"] + 1e-5, 5e-3 if tf32 else 0)
        ok = (checks[p]["grad_rel_err"] <= budget
              and checks[p]["loss_rel_err"] <= (1e-3 if tf32 else 1e-5))
        prov = built[p]
        args = [prov.tensor(a) for a in (real, noise, ones, zeros)]
        for what, fn in (("fwd+bwd", lambda: prov.fwd_bwd(args[1], args[2])),
                         ("step", lambda: prov.step(*args))):
            row = dict(provider=p, what=what, precision=precision_of(p), batch=B,
                       flops=flops[what], check_vs_float64=checks[p], config=dict(cfg))
            if not ok:
                rows.append(dict(row, status="wrong"))
                continue
            row.update(timer(fn), status="ok")
            t = row["median_s"]
            peak = peaks["flops"].get(row["precision"], peaks["flops"]["fp32"])
            row.update(images_per_s=B / t, gflops_per_s=flops[what] / t / 1e9,
                       pct_of_peak=100 * flops[what] / t / peak)
            rows.append(row)
    for row in rows:
        base = next((r for r in rows if r["what"] == row["what"] and r.get("status") == "ok"
                     and r["provider"] == ("torch-tf32" if row["precision"] == "tf32"
                                           else "torch")), None)
        if row.get("status") == "ok" and base is not None:
            row["vs_torch"] = row["median_s"] / base["median_s"]
    return rows

