"""Writing results: a JSON file with everything, a Markdown summary and a
PNG plot, named by date and device under benchmarks/results/.

The Markdown groups the op rows by the registry's families
(kernels/registry.py: conv, conv_transpose, batch_norm, activation, loss,
optimizer, glue, memory, random, and the primitives' unary, elementwise,
reduction, linalg): per shape set, each provider's time summed over a
family's cases next to torch's on the same cases, then every row."""

import datetime
import json
import os
import platform
import re
import sys

import numpy as np


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def metadata(device, threads, argv):
    """Device, driver, package versions, date and command line."""
    import torch
    meta = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                python=platform.python_version(), numpy=np.__version__, torch=torch.__version__,
                command=" ".join(["python -m benchmarks", *argv]), threads=threads)
    meta["git_commit"] = _git_commit()
    for pkg in ("triton", "cupy"):
        try:
            meta[pkg] = __import__(pkg).__version__
        except Exception:  # not installed, or no driver for cupy: recorded as absent
            meta[pkg] = None
    if device == "cuda":  # pragma: no cover - needs a GPU
        props = torch.cuda.get_device_properties(0)
        meta.update(device=props.name, device_kind="gpu", sms=props.multi_processor_count,
                    memory_gib=round(props.total_memory / 2 ** 30, 1),
                    cuda=torch.version.cuda, driver=_driver())
    else:
        meta.update(device=f"CPU: {cpu_name()}", device_kind="cpu")
    return meta


def _git_commit():
    """The checkout's commit (with "+dirty" for uncommitted changes), or None."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def _driver():  # pragma: no cover - needs a GPU
    try:
        import subprocess
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True).stdout.strip() or None
    except OSError:
        return None


def stem_for(meta, out_dir, tag=None):
    slug = re.sub(r"[^a-z0-9]+", "-", meta["device"].lower()).strip("-")
    if meta["device_kind"] == "cpu":
        slug += f"-{meta['threads']}t"
    name = f"{meta['date'][:10]}_{slug}" + (f"_{tag}" if tag else "")
    return os.path.join(out_dir, name)


def write(stem, meta, peaks, op_rows, step_rows):
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    with open(stem + ".json", "w") as f:
        json.dump(dict(meta=dict(meta, peaks=peaks), ops=op_rows, step=step_rows), f, indent=1,
                  default=float)
    with open(stem + ".md", "w") as f:
        f.write(markdown(meta, peaks, op_rows, step_rows))
    plotted = plot(stem + ".png", meta, op_rows)
    return [stem + ".json", stem + ".md"] + ([stem + ".png"] if plotted else [])


def _ms(r):
    return f"{r['median_s'] * 1e3:.3g}"


def _spread(r):
    return f"{r['min_s'] * 1e3:.3g}–{r['max_s'] * 1e3:.3g}"


def markdown(meta, peaks, op_rows, step_rows):
    g = peaks["flops"]
    lines = [f"# Benchmarks: {meta['device']}", "",
             f"{meta['date']}; Python {meta['python']}, numpy {meta['numpy']}, torch "
             f"{meta['torch']}, triton {meta['triton']}, cupy {meta['cupy']}"
             + (f"; CUDA {meta.get('cuda')}, driver {meta.get('driver')}"
                if meta["device_kind"] == "gpu" else f"; {meta['threads']} threads") + ".", "",
             f"Command: `{meta['command']}`"
             + (f" at commit {meta['git_commit']}" if meta.get("git_commit") else "") + ".", ""]
    if meta.get("simulated_providers"):
        lines += [f"Simulated on the CPU, so their times mean nothing (a smoke run): "
                  f"{', '.join(meta['simulated_providers'])}.", ""]
    lines += [
             "Measured peaks (this run): " + ", ".join(f"{k} matmul {v / 1e9:.1f} GFLOP/s"
                                                      for k, v in g.items())
             + f", copy bandwidth {peaks['bandwidth'] / 1e9:.1f} GB/s.", "",
             "Times are medians (spread: min–max over the runs). `% roofline` is the achieved "
             "FLOP/s over what the roofline allows at the row's arithmetic intensity (for "
             "pure data movement: achieved GB/s over the copy bandwidth); the bandwidth is a copy "
             "much larger than the caches, so a working set that fits in cache can pass 100%. "
             "`vs torch` is our median over torch's for the same case and precision: above 1 "
             "is slower.", ""]
    if step_rows:
        lines += ["## DCGAN training step", "",
                  "| provider | what | config | median ms | spread ms | images/s | GFLOP/s "
                  "| % of matmul peak | vs torch | check vs float64 (loss / grads) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in step_rows:
            c, chk = r["config"], r["check_vs_float64"]
            cfg = f"{c['image']}px b{c['batch']} ngf{c['ngf']} ndf{c['ndf']} nc{c['nc']}"
            check = f"{chk['loss_rel_err']:.1e} / {chk['grad_rel_err']:.1e}"
            if r["status"] != "ok":
                lines.append(f"| {r['provider']} | {r['what']} | {cfg} | wrong: not timed | | | "
                             f"| | | {check} |")
                continue
            lines.append(f"| {r['provider']} | {r['what']} | {cfg} | {_ms(r)} | {_spread(r)} | "
                         f"{r['images_per_s']:.0f} | {r['gflops_per_s']:.1f} | "
                         f"{r['pct_of_peak']:.0f}% | {_ratio(r)} | {check} |")
        lines.append("")
    for shape_set in dict.fromkeys(r["shape_set"] for r in op_rows):
        fam = family_summary([r for r in op_rows if r["shape_set"] == shape_set])
        if fam:
            lines += [f"## Per family: {shape_set}", "",
                      "Each provider's medians summed over the family's cases that it and "
                      "its torch baseline both ran correctly, and torch's over the same cases.",
                      "", "| family | cases | provider | ours ms | torch ms | ratio |",
                      "|---|---|---|---|---|---|"]
            for f in fam:
                lines.append(f"| {f['family']} | {f['cases']} | {f['provider']} | "
                             f"{f['ours_s'] * 1e3:.3g} | {f['torch_s'] * 1e3:.3g} | "
                             f"{f['ours_s'] / f['torch_s']:.2f}x |")
            lines.append("")
    for shape_set in dict.fromkeys(r["shape_set"] for r in op_rows):
        rows = [r for r in op_rows if r["shape_set"] == shape_set]
        lines += [f"## Per op: {shape_set}", "",
                  "| op | case | provider | median ms | spread ms | GFLOP/s | GB/s | bound "
                  "| % roofline | vs torch |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if r["status"] != "ok":
                lines.append(f"| {r['op']} | {r['case']} | {r['provider']} | wrong "
                             f"(rel err {r['rel_err_vs_torch']:.1e}): not timed | | | | | | |")
                continue
            lines.append(f"| {r['op']} | {r['case']} | {r['provider']} | {_ms(r)} | "
                         f"{_spread(r)} | {r['gflops_per_s']:.3g} | {r['gb_per_s']:.3g} | "
                         f"{r['bound']} | {r['pct_of_roofline']:.0f}% | {_ratio(r)} |")
        lines.append("")
    slow = slowest(op_rows)
    if slow:
        lines += ["## Slowest relative to torch", ""]
        lines += [f"- {r['op']} ({r['shape_set']}, {r['case']}), {r['provider']}: "
                  f"{r['vs_torch']:.2f}x torch" for r in slow]
        lines.append("")
    return "\n".join(lines)


def family_of(op):
    """The registry family of a contract op ("other" for an unregistered name)."""
    from kernels import registry
    entry = registry.BY_NAME.get(op)
    return entry.family if entry is not None else "other"


def family_summary(op_rows):
    """[{family, provider, cases, ours_s, torch_s}] for our providers' rows
    that have a torch ratio, in the registry's family order: torch's time
    per row is median / vs_torch, its baseline's median on the same case."""
    from kernels import registry
    acc = {}
    for r in op_rows:
        if r["provider"].startswith("torch") or r.get("status") != "ok" or "vs_torch" not in r:
            continue
        key = (family_of(r["op"]), r["provider"])
        e = acc.setdefault(key, dict(family=key[0], provider=key[1], cases=0, ours_s=0.0,
                                     torch_s=0.0))
        e["cases"] += 1
        e["ours_s"] += r["median_s"]
        e["torch_s"] += r["median_s"] / r["vs_torch"]
    order = {f: i for i, f in enumerate(registry.FAMILIES)}
    providers = list(dict.fromkeys(r["provider"] for r in op_rows))
    return sorted((e for e in acc.values() if e["torch_s"] > 0),
                  key=lambda e: (order.get(e["family"], len(order)),
                                 providers.index(e["provider"])))


def _ratio(r):
    return f"{r['vs_torch']:.2f}x" if "vs_torch" in r else "–"


def slowest(op_rows, n=3):
    """The n op rows of our providers with the largest time ratio to torch."""
    ours = [r for r in op_rows if not r["provider"].startswith("torch") and "vs_torch" in r]
    return sorted(ours, key=lambda r: -r["vs_torch"])[:n]


def plot(path, meta, op_rows):
    """Our time over torch's per op (log scale): for each op, the geometric
    mean of the ratio over that op's cases in the first shape set, one bar
    per provider. False if there is nothing to plot."""
    ours = [r for r in op_rows if not r["provider"].startswith("torch") and "vs_torch" in r]
    if not ours:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shape_set = ours[0]["shape_set"]
    rows = [r for r in ours if r["shape_set"] == shape_set]
    op_names = list(dict.fromkeys(r["op"] for r in rows))
    providers = list(dict.fromkeys(r["provider"] for r in rows))
    fig, ax = plt.subplots(figsize=(7, 0.16 * len(op_names) * len(providers) + 1.4))
    height = 0.8 / len(providers)
    for j, p in enumerate(providers):
        ratios = {op: [r["vs_torch"] for r in rows if r["provider"] == p and r["op"] == op]
                  for op in op_names}
        ys = [i + j * height for i, op in enumerate(op_names) if ratios[op]]
        vals = [float(np.exp(np.mean(np.log(ratios[op])))) for op in op_names if ratios[op]]
        ax.barh(ys, vals, height=height, label=p)
    ax.set_xscale("log")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(op_names))])
    ax.set_yticklabels(op_names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("our time / torch's, geometric mean over the op's cases "
                  "(log scale; < 1: faster than torch)", fontsize=8)
    ax.set_title(f"{shape_set}, {meta['device']}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def print_rows(op_rows, step_rows, out=sys.stdout):
    for r in step_rows:
        status = f"{_ms(r)} ms ({_ratio(r)})" if r["status"] == "ok" else "WRONG, not timed"
        print(f"step  {r['provider']:14s} {r['what']:8s} {status}", file=out)
    for r in op_rows:
        status = (f"{_ms(r)} ms  {r['pct_of_roofline']:5.1f}% roofline  {_ratio(r)}"
                  if r["status"] == "ok" else f"WRONG (rel err {r['rel_err_vs_torch']:.1e})")
        print(f"{r['shape_set']:8s} {r['op']:34s} {r['provider']:14s} {status}", file=out)
