"""The DCGAN Generator and Discriminator (Radford et al. 2015), for nn or torch.nn.

    G = build_generator(nn, nz=100, ngf=64, nc=3, image_size=64)
    T = build_generator(torch.nn, nz=100, ngf=64, nc=3)   # the same model in torch
    G.load_state_dict(T.state_dict())

`lib` is this library's `nn` or `torch.nn`: the two expose the same module
names and constructor arguments, so one builder makes both, with identical
state_dict keys ("main.0.weight", "main.1.running_mean", ...). That is what
the parity tests and the benchmarks compare.

At image_size 64 these are exactly pytorch/examples' dcgan models. Any power
of two from 16 to 256 works (pytorch/examples breaks there, its issues #486
and #1278): the number of stride-2 layers is log2(image_size) - 3, between
the 4x4 layer and the image. Channel widths double per layer away from the
image, capped at 8x ngf (ndf), the width pytorch/examples uses at 64.
"""

MAX_WIDTH_MULTIPLIER = 8
IMAGE_SIZES = (16, 32, 64, 128, 256)


def _widths(image_size, base):
    """Channel widths from the 4x4 layer out to the last hidden layer."""
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be a power of two from 16 to 256, got {image_size}")
    n = image_size.bit_length() - 3  # hidden layers: 4x4, 8x8, ..., image_size/2
    return [base * min(2 ** (n - 1 - i), MAX_WIDTH_MULTIPLIER) for i in range(n)]


def build_generator(lib, nz, ngf, nc, image_size=64):
    """z (N, nz, 1, 1) -> image (N, nc, image_size, image_size) in [-1, 1]."""
    widths = _widths(image_size, ngf)

    class Generator(lib.Module):
        def __init__(self):
            super().__init__()
            # z -> widths[0] x 4 x 4, then doubling the size at every layer.
            layers = [lib.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False),
                      lib.BatchNorm2d(widths[0]), lib.ReLU(True)]
            for c_in, c_out in zip(widths, widths[1:]):
                layers += [lib.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                           lib.BatchNorm2d(c_out), lib.ReLU(True)]
            layers += [lib.ConvTranspose2d(widths[-1], nc, 4, 2, 1, bias=False), lib.Tanh()]
            self.main = lib.Sequential(*layers)

        def forward(self, input):
            return self.main(input)

    return Generator()


def build_discriminator(lib, nc, ndf, image_size=64, sigmoid=True):
    """image (N, nc, image_size, image_size) -> (N,): probabilities, or logits
    with sigmoid=False (for BCEWithLogitsLoss). The forward flattens like the
    example's `output.view(-1, 1).squeeze(1)`."""
    widths = _widths(image_size, ndf)[::-1]  # from image_size/2 in to 4x4

    class Discriminator(lib.Module):
        def __init__(self):
            super().__init__()
            # No BatchNorm on the first layer, as in the paper.
            layers = [lib.Conv2d(nc, widths[0], 4, 2, 1, bias=False),
                      lib.LeakyReLU(0.2, inplace=True)]
            for c_in, c_out in zip(widths, widths[1:]):
                layers += [lib.Conv2d(c_in, c_out, 4, 2, 1, bias=False),
                           lib.BatchNorm2d(c_out), lib.LeakyReLU(0.2, inplace=True)]
            layers.append(lib.Conv2d(widths[-1], 1, 4, 1, 0, bias=False))
            if sigmoid:
                layers.append(lib.Sigmoid())
            self.main = lib.Sequential(*layers)

        def forward(self, input):
            return self.main(input).view(-1)

    return Discriminator()


def weights_init(m):
    """pytorch/examples' init, for `model.apply(weights_init)` on an nn model:
    conv weights N(0, 0.02), BatchNorm weight N(1, 0.02) and bias 0."""
    from nn import init
    name = type(m).__name__
    if name.find("Conv") != -1:
        init.normal_(m.weight, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        init.normal_(m.weight, 1.0, 0.02)
        init.zeros_(m.bias)
