"""pytorch/examples' DCGAN (dcgan/main.py, the 64x64 architecture), for torch.nn or nn.

    G = build_generator(nn, nz=100, ngf=64, nc=3)
    T = build_generator(torch.nn, nz=100, ngf=64, nc=3)   # the same model in torch
    G.load_state_dict(T.state_dict())

`lib` is this library's `nn` or `torch.nn`: the two expose the same module
names and constructor arguments, so one builder makes both, with identical
state_dict keys ("main.0.weight", "main.1.running_mean", ...). That is what
the parity tests and the benchmarks compare.
"""


def build_generator(lib, nz, ngf, nc):
    """z (N, nz, 1, 1) -> image (N, nc, 64, 64) in [-1, 1]."""

    class Generator(lib.Module):
        def __init__(self):
            super().__init__()
            self.main = lib.Sequential(
                # input is Z, going into a convolution
                lib.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
                lib.BatchNorm2d(ngf * 8),
                lib.ReLU(True),
                # state size. (ngf*8) x 4 x 4
                lib.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
                lib.BatchNorm2d(ngf * 4),
                lib.ReLU(True),
                # state size. (ngf*4) x 8 x 8
                lib.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
                lib.BatchNorm2d(ngf * 2),
                lib.ReLU(True),
                # state size. (ngf*2) x 16 x 16
                lib.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
                lib.BatchNorm2d(ngf),
                lib.ReLU(True),
                # state size. (ngf) x 32 x 32
                lib.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
                lib.Tanh(),
                # state size. (nc) x 64 x 64
            )

        def forward(self, input):
            return self.main(input)

    return Generator()


def build_discriminator(lib, nc, ndf, sigmoid=True):
    """image (N, nc, 64, 64) -> (N,): probabilities, or logits with sigmoid=False
    (for BCEWithLogitsLoss). The forward flattens like the example's
    `output.view(-1, 1).squeeze(1)`."""

    class Discriminator(lib.Module):
        def __init__(self):
            super().__init__()
            layers = [
                # input is (nc) x 64 x 64
                lib.Conv2d(nc, ndf, 4, 2, 1, bias=False),
                lib.LeakyReLU(0.2, inplace=True),
                # state size. (ndf) x 32 x 32
                lib.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
                lib.BatchNorm2d(ndf * 2),
                lib.LeakyReLU(0.2, inplace=True),
                # state size. (ndf*2) x 16 x 16
                lib.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
                lib.BatchNorm2d(ndf * 4),
                lib.LeakyReLU(0.2, inplace=True),
                # state size. (ndf*4) x 8 x 8
                lib.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
                lib.BatchNorm2d(ndf * 8),
                lib.LeakyReLU(0.2, inplace=True),
                # state size. (ndf*8) x 4 x 4
                lib.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            ]
            if sigmoid:
                layers.append(lib.Sigmoid())
            self.main = lib.Sequential(*layers)

        def forward(self, input):
            return self.main(input).view(-1)

    return Discriminator()
