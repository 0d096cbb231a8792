"""The blog's two networks, layer for layer: the U-Net colorizer and the "Ad-boss".

Layer names, kernel sizes, strides and channel counts follow the networks printed in
taizan's 2017 blog, so the blog and this file can be read side by side. Two knobs were
added for classrooms:

* ``width``: multiplies every channel count (1 = the blog, 1/4 = a CPU classroom model);
* ``in_ch``: 1 for line art alone, 4 for line + 3 hint channels (the blog's hint model,
  and the configuration whose parameter count is 18,639,619 at width 1).

The 2017 code passed ``test=True`` to every BatchNormalization; modern Chainer reads
``chainer.config.train`` instead, so evaluation is
``with chainer.using_config('train', False): y = unet(x)``.
"""
from . import compat  # noqa: F401
import chainer
import chainer.functions as F
import chainer.links as L

# (name, out channels at width 1, kernel, stride) of the encoder, top to bottom.
ENCODER = [('c0', 32, 3, 1), ('c1', 64, 4, 2), ('c2', 64, 3, 1), ('c3', 128, 4, 2),
           ('c4', 128, 3, 1), ('c5', 256, 4, 2), ('c6', 256, 3, 1), ('c7', 512, 4, 2),
           ('c8', 512, 3, 1)]
# Decoder: dc8/dc6/dc4/dc2 are 4x4 stride-2 deconvolutions that double the size; the
# others are 3x3 convolutions. Inputs marked 'skip' are concatenated with an encoder map.
DECODER = [('dc8', 512, 'deconv'), ('dc7', 256, 'conv'), ('dc6', 256, 'deconv'),
           ('dc5', 128, 'conv'), ('dc4', 128, 'deconv'), ('dc3', 64, 'conv'),
           ('dc2', 64, 'deconv'), ('dc1', 32, 'conv'), ('dc0', 3, 'conv')]
# Which encoder map is concatenated in front of each decoder layer's input.
SKIPS = {'dc8': 'e7', 'dc6': 'e6', 'dc4': 'e4', 'dc2': 'e2', 'dc0': 'e0'}
DOWNSAMPLING = 16  # four stride-2 layers: input sides must be multiples of 16


def scaled(channels, width):
    """Channel count at a width multiplier (at least 1)."""
    return max(1, int(round(channels * width)))


def check_size(x, multiple=DOWNSAMPLING):
    h, w = x.shape[2], x.shape[3]
    if h % multiple or w % multiple:
        raise ValueError(
            'The U-Net needs image sides that are multiples of %d (four stride-2 layers), '
            'got %dx%d. Pad or resize first: tutorial_lib pipelines do this for you.'
            % (multiple, h, w))


class UNET(chainer.Chain):
    """The blog's U-Net: line art (+ hints) in, 3 color channels out (linear)."""

    def __init__(self, in_ch=1, width=1.0, out_ch=3):
        super().__init__()
        self.in_ch, self.width, self.out_ch = in_ch, width, out_ch
        ch = {name: scaled(c, width) for name, c, _, _ in ENCODER}
        ch.update({name: scaled(c, width) for name, c, _ in DECODER})
        ch['dc0'] = out_ch
        with self.init_scope():
            prev = in_ch
            for name, _, k, s in ENCODER:
                setattr(self, name, L.Convolution2D(prev, ch[name], k, s, 1))
                setattr(self, 'bn' + name, L.BatchNormalization(ch[name]))
                prev = ch[name]
            enc_ch = {'e%s' % name[1:]: ch[name] for name, _, _, _ in ENCODER}
            for name, _, kind in DECODER:
                skip = SKIPS.get(name)
                # dc8's input is concat(e7, e8); prev is e8's channel count there.
                n_in = prev + (enc_ch[skip] if skip else 0)
                if kind == 'deconv':
                    link = L.Deconvolution2D(n_in, ch[name], 4, 2, 1)
                else:
                    link = L.Convolution2D(n_in, ch[name], 3, 1, 1)
                setattr(self, name, link)
                if name != 'dc0':  # the output layer is linear, no BatchNorm
                    setattr(self, 'bnd' + name[2:], L.BatchNormalization(ch[name]))
                prev = ch[name]

    def forward(self, x):
        check_size(x)
        if x.shape[1] != self.in_ch:
            raise ValueError('This U-Net takes %d input channels, got %d'
                             % (self.in_ch, x.shape[1]))
        e = {}
        h = x
        for name, _, _, _ in ENCODER:
            h = F.relu(getattr(self, 'bn' + name)(getattr(self, name)(h)))
            e['e' + name[1:]] = h
        for name, _, _ in DECODER:
            skip = SKIPS.get(name)
            if skip:
                h = F.concat([e[skip], h])
            h = getattr(self, name)(h)
            if name != 'dc0':
                h = F.relu(getattr(self, 'bnd' + name[2:])(h))
        return h


class DIS(chainer.Chain):
    """The blog's discriminator ("Ad-boss"): a color image in, 2 class scores out.

    It sees only the color picture, not the line art. Class 0 = real, 1 = generated
    (the loss functions in training.py use the same convention).
    """

    LAYERS = [('c1', 32, 4, 2), ('c2', 32, 3, 1), ('c3', 64, 4, 2), ('c4', 64, 3, 1),
              ('c5', 128, 4, 2), ('c6', 128, 3, 1), ('c7', 256, 4, 2)]

    def __init__(self, in_ch=3, width=1.0):
        super().__init__()
        self.in_ch, self.width = in_ch, width
        with self.init_scope():
            prev = in_ch
            for name, c, k, s in self.LAYERS:
                c = scaled(c, width)
                setattr(self, name, L.Convolution2D(prev, c, k, s, 1))
                setattr(self, 'bn' + name, L.BatchNormalization(c))
                prev = c
            # in_size None: the linear layer sizes itself from the first batch, so
            # the same discriminator works at 128 and 512 px.
            self.l8l = L.Linear(None, 2)

    def forward(self, x):
        h = x
        for name, _, _, _ in self.LAYERS:
            h = F.relu(getattr(self, 'bn' + name)(getattr(self, name)(h)))
        return self.l8l(h)


def count_params(link):
    """Number of scalar parameters (BatchNorm's gamma and beta count, as in the blog)."""
    return sum(p.size for p in link.params() if p.array is not None)
