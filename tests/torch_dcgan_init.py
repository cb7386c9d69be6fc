"""pytorch/examples' DCGAN weights_init for a torch model, reproducibly seeded."""

import torch


def dcgan_weights_init(model, seed):
    """pytorch/examples' weights_init, applied to a torch model, reproducibly."""
    gen = torch.Generator().manual_seed(int(seed) % (2 ** 63))
    with torch.no_grad():
        for m in model.modules():
            name = type(m).__name__
            if "Conv" in name:
                m.weight.normal_(0.0, 0.02, generator=gen)
            elif "BatchNorm" in name:
                m.weight.normal_(1.0, 0.02, generator=gen)
                m.bias.fill_(0)
    return model
