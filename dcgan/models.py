"""DCGAN's Generator and Discriminator (Radford et al. 2015) and variants, for nn or torch.nn.

    G = build_generator(nn, nz=100, ngf=64, nc=3, image_size=64)
    T = build_generator(torch.nn, nz=100, ngf=64, nc=3)   # the same model in torch
    G.load_state_dict(T.state_dict())

`lib` is this library's `nn` or `torch.nn`: the two expose the same module
names and constructor arguments, so one builder makes both, with identical
state_dict keys ("main.0.weight", "main.1.running_mean", ...). That is what
the parity tests and the benchmarks compare. Spectral normalisation is
reached as `lib.utils.spectral_norm` (torch.nn.utils has it too, with the
same hook form and state_dict keys); the minibatch standard deviation layer
is `lib.MinibatchStdDev` unless `minibatch_std_layer` gives another factory
(torch has none: the parity tests pass a literal ProGAN one).

At image_size 64 and the defaults these are exactly pytorch/examples' dcgan
models. Any power of two from 16 to 256 works (pytorch/examples breaks
there, its issues #486 and #1278): the number of stride-2 layers is
log2(image_size) - 3, between the 4x4 layer and the image. Channel widths
double per layer away from the image, capped at 8x ngf (ndf), the width
pytorch/examples uses at 64.

Variants (see train.py --help and the README for what each is for):

- arch="dcgan": pytorch/examples. arch="leaky", the tutorials' variant:
  LeakyReLU(0.2) instead of ReLU in the generator, every convolution (both
  models) with a bias, and D's first convolution 2*ndf wide instead of ndf
  (the other widths unchanged).
- arch="infogan": InfoGAN's MNIST networks (Chen et al. 2016, appendix
  C.1), at any of these sizes: DCGAN's layers with G's first convolution
  replaced by two fully connected layers (z -> fc -> widths[0] x 4 x 4, each
  with BatchNorm and ReLU) and D's last one by two (-> fc with BatchNorm and
  LeakyReLU(0.2) -> 1, the only bias). The fully connected layers see the
  whole image at once, which is what draws whole strokes. With InfoGAN's
  categorical code (build_code_head, train.py --codes) it is the embedded
  digits' default (README "Sample quality"). Linear layers keep their own
  init (weights_init touches convolutions and BatchNorm, as
  pytorch/examples').
- D's norm: "batch" (BatchNorm2d, pytorch/examples), "layer" (LayerNorm over
  (C, H, W) of each hidden layer, the WGAN-GP paper's recommendation), or
  "none". The first D layer has no norm in every case, as in the paper.
- spectral_norm=True: every D convolution through lib.utils.spectral_norm.
- minibatch_std=G (> 0): ProGAN's minibatch standard deviation, groups of G,
  before D's last convolution, which then takes one more input channel.
"""

MAX_WIDTH_MULTIPLIER = 8
IMAGE_SIZES = (16, 32, 64, 128, 256)
ARCHS = ("dcgan", "leaky", "infogan")
FC_WIDTH = 1024  # InfoGAN's fully connected width (arch infogan)
D_NORMS = ("batch", "layer", "none")


def _widths(image_size, base):
    """Channel widths from the 4x4 layer out to the last hidden layer."""
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be a power of two from 16 to 256, got {image_size}")
    n = image_size.bit_length() - 3  # hidden layers: 4x4, 8x8, ..., image_size/2
    return [base * min(2 ** (n - 1 - i), MAX_WIDTH_MULTIPLIER) for i in range(n)]


def _check_arch(arch):
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")


def _check_fc(fc):
    if isinstance(fc, bool) or not isinstance(fc, int) or fc < 1:
        raise ValueError(f"fc (the fully connected width of arch infogan) must be a positive "
                         f"int, got {fc!r}")


def build_generator(lib, nz, ngf, nc, image_size=64, arch="dcgan", fc=FC_WIDTH):
    """z (N, nz, 1, 1) -> image (N, nc, image_size, image_size) in [-1, 1]."""
    _check_arch(arch)
    _check_fc(fc)
    widths = _widths(image_size, ngf)
    leaky = arch == "leaky"
    bias = leaky

    def act():
        return lib.LeakyReLU(0.2, inplace=True) if leaky else lib.ReLU(True)

    class Generator(lib.Module):
        def __init__(self):
            super().__init__()
            # z -> widths[0] x 4 x 4, then doubling the size at every layer.
            if arch == "infogan":
                layers = [lib.Flatten(), lib.Linear(nz, fc, bias=False), lib.BatchNorm1d(fc),
                          act(), lib.Linear(fc, widths[0] * 16, bias=False),
                          lib.Unflatten(1, (widths[0], 4, 4)), lib.BatchNorm2d(widths[0]), act()]
            else:
                layers = [lib.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=bias),
                          lib.BatchNorm2d(widths[0]), act()]
            for c_in, c_out in zip(widths, widths[1:]):
                layers += [lib.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias),
                           lib.BatchNorm2d(c_out), act()]
            layers += [lib.ConvTranspose2d(widths[-1], nc, 4, 2, 1, bias=bias), lib.Tanh()]
            self.main = lib.Sequential(*layers)

        def forward(self, input):
            return self.main(input)

    return Generator()


def build_discriminator(lib, nc, ndf, image_size=64, sigmoid=True, arch="dcgan", norm="batch",
                        spectral_norm=False, minibatch_std=0, minibatch_std_layer=None,
                        fc=FC_WIDTH):
    """image (N, nc, image_size, image_size) -> (N,): probabilities, or logits
    (scores, for WGAN-GP) with sigmoid=False. The forward flattens like the
    example's `output.view(-1, 1).squeeze(1)`."""
    _check_arch(arch)
    _check_fc(fc)
    if norm not in D_NORMS:
        raise ValueError(f"norm must be one of {', '.join(D_NORMS)}, got {norm!r}")
    if minibatch_std < 0:
        raise ValueError(f"minibatch_std must be 0 (off) or a group size, got {minibatch_std}")
    widths = _widths(image_size, ndf)[::-1]  # from image_size/2 in to 4x4
    leaky = arch == "leaky"
    if leaky:
        widths[0] = 2 * ndf
    bias = leaky
    sn = lib.utils.spectral_norm if spectral_norm else (lambda m: m)
    mbstd = minibatch_std_layer or (lambda g: lib.MinibatchStdDev(g))

    def norm_layer(c, size=None):
        if norm == "batch":
            return [lib.BatchNorm2d(c) if size else lib.BatchNorm1d(c)]
        if norm == "layer":
            return [lib.LayerNorm([c, size, size] if size else [c])]
        return []

    class Discriminator(lib.Module):
        def __init__(self):
            super().__init__()
            # No normalisation on the first layer, as in the paper.
            layers = [sn(lib.Conv2d(nc, widths[0], 4, 2, 1, bias=bias)),
                      lib.LeakyReLU(0.2, inplace=True)]
            size = image_size // 2
            for c_in, c_out in zip(widths, widths[1:]):
                size //= 2
                layers += [sn(lib.Conv2d(c_in, c_out, 4, 2, 1, bias=bias)),
                           *norm_layer(c_out, size), lib.LeakyReLU(0.2, inplace=True)]
            c_last = widths[-1]
            if minibatch_std:
                layers.append(mbstd(minibatch_std))
                c_last += 1
            if arch == "infogan":
                layers += [lib.Flatten(), sn(lib.Linear(c_last * 16, fc, bias=False)),
                           *norm_layer(fc), lib.LeakyReLU(0.2, inplace=True),
                           sn(lib.Linear(fc, 1))]
            else:
                layers.append(sn(lib.Conv2d(c_last, 1, 4, 1, 0, bias=bias)))
            # arch infogan: where the output layer starts (features() ends)
            self._head = len(layers) - 1 if arch == "infogan" else None
            if sigmoid:
                layers.append(lib.Sigmoid())
            self.main = lib.Sequential(*layers)

        def forward(self, input):
            return self.main(input).view(-1)

        def features(self, input):
            """arch infogan: the last hidden layer's activations (N, fc), which
            InfoGAN's Q head (build_code_head) reads too; head(features(x))
            is forward(x)."""
            if self._head is None:
                raise ValueError("features: only arch infogan's D has a fully connected "
                                 "hidden layer for a code head to read")
            return self.main[:self._head](input)

        def head(self, features):
            return self.main[self._head:](features).view(-1)

    return Discriminator()


CODE_HEAD_WIDTH = 128  # InfoGAN's Q: FC 128 with BatchNorm and LeakyReLU, then the logits


def build_code_head(lib, codes, fc=FC_WIDTH):
    """InfoGAN's Q network for a categorical latent code of `codes` values: D's
    features (N, fc) -> (N, codes) logits of q(c | x). It shares D's body
    (D.features) and trains with G (Chen et al. 2016, appendix C.1)."""
    if isinstance(codes, bool) or not isinstance(codes, int) or codes < 2:
        raise ValueError(f"build_code_head: codes must be an int >= 2, got {codes!r}")
    _check_fc(fc)
    return lib.Sequential(lib.Linear(fc, CODE_HEAD_WIDTH, bias=False),
                          lib.BatchNorm1d(CODE_HEAD_WIDTH), lib.LeakyReLU(0.2, inplace=True),
                          lib.Linear(CODE_HEAD_WIDTH, codes))


def weights_init(m):
    """pytorch/examples' init, for `model.apply(weights_init)` on an nn model:
    conv weights N(0, 0.02), BatchNorm weight N(1, 0.02) and bias 0. A
    spectral-normalised convolution's weight is its `weight_orig` parameter.
    Conv biases (arch leaky) and LayerNorm keep their layers' own init, as in
    pytorch/examples (which only touches these two kinds of weight)."""
    from nn import init
    name = type(m).__name__
    if name.find("Conv") != -1:
        init.normal_(m.weight_orig if hasattr(m, "weight_orig") else m.weight, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        init.normal_(m.weight, 1.0, 0.02)
        init.zeros_(m.bias)
