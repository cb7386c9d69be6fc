"""torch.optim.swa_utils' AveragedModel: a running average of a model's weights.

    ema = nn.optim.swa_utils.AveragedModel(
        netG, multi_avg_fn=nn.optim.swa_utils.get_ema_multi_avg_fn(0.999), use_buffers=True)
    ...after every optimizer step:
    ema.update_parameters(netG)
    samples = ema(noise)               # the averaged generator

The first update copies the model; each later one moves every averaged
tensor towards the model's, as torch does:

- EMA (get_ema_multi_avg_fn(decay)): avg <- lerp(avg, p, 1 - decay), torch's
  _foreach_lerp_, whose formula for a weight w < 0.5 is avg + w * (p - avg)
  (and p - (p - avg) * (1 - w) above); get_ema_avg_fn(decay), the one-tensor
  form, is decay * avg + (1 - decay) * p.
- SWA (neither function given, torch's default): the equal-weight mean
  avg + (p - avg) / (n + 1).

An average of a GAN's generator (Yazici et al. 2019) draws better samples
than the last iterate, which oscillates around the equilibrium. The updates
are elementwise ops on the tensors' own backend (no copy to the host); a
tensor that is not floating (BatchNorm's batch counter, with use_buffers)
takes torch's formula with its truncation, on the host where it lives.
"""

import copy
import itertools

import numpy as np

from .autograd import no_grad
from .layers import _host_counter
from .module import Module


def _check_decay(decay):
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in "
                         "[0,1] range.")


def _lerp_(avg, p, weight):
    """torch.lerp_'s formula, in place (no graph)."""
    if weight < 0.5:
        avg.add_((p - avg) * weight)
    else:
        avg.copy_(p - (p - avg) * (1 - weight))


def _is_float(t):
    return np.issubdtype(np.dtype(t.dtype), np.floating)


def _integer_update(avg, value):
    """copy_ of a float result into an integer tensor: truncation, as torch."""
    avg.data[...] = np.trunc(value)
    avg._bump_version()


def get_ema_multi_avg_fn(decay=0.999):
    """The EMA of lists of tensors: avg = decay * avg + (1 - decay) * p."""
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _num_averaged):
        with no_grad():
            for avg, p in zip(ema_param_list, current_param_list):
                if _is_float(avg):
                    _lerp_(avg, p, 1 - decay)
                else:
                    _integer_update(avg, avg.numpy() * decay + p.numpy() * (1 - decay))
    return ema_update


def get_ema_avg_fn(decay=0.999):
    """The EMA of one tensor, returned: decay * avg + (1 - decay) * p."""
    _check_decay(decay)

    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    """The equal-weight mean of one tensor, returned: avg + (p - avg) / (n + 1)."""
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


class AveragedModel(Module):
    """torch.optim.swa_utils.AveragedModel: a deep copy of `model` (on its
    backend) whose parameters (and buffers, with use_buffers=True) are the
    running average that update_parameters(model) maintains. state_dict
    keys as torch's: "module.<model's key>" and "n_averaged"."""

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("AveragedModel: only one of avg_fn and multi_avg_fn should be "
                             "provided")
        if device is not None:
            raise ValueError("AveragedModel: device is not supported; the copy lives on the "
                             "model's backend")
        self.module = copy.deepcopy(model)
        self.register_buffer("n_averaged", _host_counter())
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _tensors(self, model):
        if self.use_buffers:
            return list(itertools.chain(model.parameters(), model.buffers()))
        return list(model.parameters())

    def update_parameters(self, model):
        mine = self._tensors(self.module)
        theirs = [t.detach() for t in self._tensors(model)]
        if len(mine) != len(theirs):
            raise ValueError(f"AveragedModel.update_parameters: the model has {len(theirs)} "
                             f"tensors to average, the average {len(mine)}")
        n = int(self.n_averaged.item())
        with no_grad():
            if n == 0:
                for avg, p in zip(mine, theirs):
                    avg.copy_(p)
            elif self.multi_avg_fn is not None:
                self.multi_avg_fn(mine, theirs, n)
            else:
                fn = self.avg_fn or get_swa_avg_fn()
                for avg, p in zip(mine, theirs):
                    if _is_float(avg):
                        avg.copy_(fn(avg, p, n))
                    else:
                        _integer_update(avg, fn(avg.numpy().astype(np.float64), p.numpy(), n))
        if not self.use_buffers:
            # torch keeps the copy's buffers in sync with the model's
            for avg, b in zip(self.module.buffers(), model.buffers()):
                avg.copy_(b.detach())
        self.n_averaged.data += 1
