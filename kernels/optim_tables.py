"""What both GPU backends' multi-tensor optimizer launchers share
(kernels/cuda/optim.py, kernels/triton/optim.py): the cache of device tables
of tensor addresses, and Adam's per-step scalars."""

import collections


class TableCache:
    """Tables already on the device, by their content: a training loop calls
    with the same addresses step after step (the same parameters and states,
    and gradients the memory pool hands out at the same places), so the
    upload, which waits for the device, happens once. A few entries: one per
    optimizer, the least recently used dropped first."""

    def __init__(self, upload, kept=8):
        self.upload, self.kept = upload, kept
        self.tables = collections.OrderedDict()

    def __call__(self, rows):
        key = tuple(tuple(int(v) for v in r) for r in rows)
        table = self.tables.pop(key, None)
        if table is None:
            table = self.upload(rows)
            while len(self.tables) >= self.kept:
                self.tables.popitem(last=False)
        self.tables[key] = table  # most recently used last
        return table


def adam_scalars(steps, lr, beta1, beta2):
    """(per_tensor, step sizes, sqrt(1 - beta2^t)): Python floats, as torch
    computes the bias corrections; one of each when every step count agrees."""
    uniq = sorted(set(int(t) for t in steps))
    ts = uniq if len(uniq) == 1 else list(steps)
    return (len(uniq) != 1, [lr / (1 - beta1 ** float(t)) for t in ts],
            [(1 - beta2 ** float(t)) ** 0.5 for t in ts])
