"""The blog's two networks, layer for layer (the U-Net colorizer and the "Ad-boss"), and the
one encoding of pixels as network arrays. Notebook 02 teaches the U-Net, notebook 03 the Ad-boss."""
import json

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np

from . import atomic
from .images import pad_to_multiple
from .infra.backend import to_cpu

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
            "The blog's networks need image sides that are multiples of %d (four stride-2 "
            'layers), '
            'got %dx%d. Pad or resize first: tutorial_lib pipelines do this for you.'
            % (multiple, h, w))


class UNET(chainer.Chain):
    """The blog's U-Net: line art (+ hints) in, 3 color channels out (linear).

    Layer names, kernels, strides and channels follow taizan's 2017 blog, so the two can be
    read side by side. Two classroom knobs: ``width`` multiplies every channel count (1 =
    the blog, 1/4 = a CPU classroom model); ``in_ch`` is 1 for line art alone, 4 for line +
    3 hint channels. The blog passed ``test=True`` to BatchNormalization; Chainer now reads
    ``chainer.config.train``: evaluate inside ``chainer.using_config('train', False)``.
    """

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

    Seven convolutions c1..c7 (4x4 stride 2 alternating with 3x3 stride 1, 32 -> 256
    channels), each followed by BatchNormalization bnc1..bnc7 -- c1 included, as in the
    blog -- and ReLU, then one Linear layer ``l8l`` to 2 classes (softmax cross-entropy).
    It sees only the color picture, not the line art. Class 0 = real, 1 = generated
    (the updaters in updaters.py use the same convention).

    ``image_size`` fixes the input size of ``l8l`` (c7 leaves a (size/16)^2 map); with
    ``None`` the Linear layer sizes itself on the first batch. The blog initialised
    ``l8l`` with ``wscale=0.02*sqrt(8*8*256)``, which in Chainer 1's Linear means a
    normal distribution of standard deviation 0.02 for a 128 px input (8x8x256 inputs);
    we use ``Normal(0.02)`` directly.
    """

    LAYERS = [('c1', 32, 4, 2), ('c2', 32, 3, 1), ('c3', 64, 4, 2), ('c4', 64, 3, 1),
              ('c5', 128, 4, 2), ('c6', 128, 3, 1), ('c7', 256, 4, 2)]

    def __init__(self, in_ch=3, width=1.0, image_size=None):
        super().__init__()
        self.in_ch, self.width, self.image_size = in_ch, width, image_size
        with self.init_scope():
            prev = in_ch
            for name, c, k, s in self.LAYERS:
                c = scaled(c, width)
                setattr(self, name, L.Convolution2D(prev, c, k, s, 1))
                setattr(self, 'bn' + name, L.BatchNormalization(c))
                prev = c
            n_in = None
            if image_size is not None:
                if image_size % DOWNSAMPLING:
                    raise ValueError('image_size must be a multiple of %d, got %d'
                                     % (DOWNSAMPLING, image_size))
                n_in = prev * (image_size // DOWNSAMPLING) ** 2
            self.l8l = L.Linear(n_in, 2, initialW=chainer.initializers.Normal(0.02))

    def forward(self, x):
        check_size(x)
        h = x
        for name, _, _, _ in self.LAYERS:
            h = F.relu(getattr(self, 'bn' + name)(getattr(self, name)(h)))
        return self.l8l(h)


def count_params(link):
    """Number of scalar parameters (BatchNorm's gamma and beta count, as in the blog)."""
    return sum(p.size for p in link.params() if p.array is not None)


# ---------------------------------------------------------------------------------------
# Normalization: the one place where pictures become network arrays and back.
#
#   line art  uint8 (N,H,W), 255 = paper      -> float32 (N,1,H,W) in [-1, 1]  (paper = +1)
#   color     uint8 (N,H,W,3) RGB              -> float32 (N,3,H,W) in [-1, 1]
#   output    float32 (N,3,H,W), any range     -> uint8 (N,H,W,3) RGB, clipped
#
# x/127.5 - 1 maps 0..255 to -1..1, so an all-zero output decodes to mid gray (128,128,128):
# a network that has learned nothing paints gray, never a color. (PaintsChainer fed raw
# OpenCV YUV 0..255 instead; there a collapsed output near 0 decodes to green -- the
# failure a later notebook shows.)
# ---------------------------------------------------------------------------------------

# A hint U-Net's three hint channels hold EMPTY where there is no hint: a value no color
# encodes to (colors lie in [-1, 1]), one full unit below black; hints.py explains the choice.
EMPTY = -2.0


def encode_lines(lines):
    """uint8 line art (N,H,W) or (H,W) -> float32 (N,1,H,W) in [-1, 1]."""
    lines = np.asarray(lines)
    if lines.ndim == 2:
        lines = lines[None]
    if lines.ndim != 3:
        raise ValueError('line art must be (N,H,W) or (H,W) uint8, got shape %s'
                         % (lines.shape,))
    return (lines.astype(np.float32) / 127.5 - 1.0)[:, None]


def encode_colors(colors):
    """uint8 RGB (N,H,W,3) or (H,W,3) -> float32 (N,3,H,W) in [-1, 1]."""
    colors = np.asarray(colors)
    if colors.ndim == 3:
        colors = colors[None]
    if colors.ndim != 4 or colors.shape[3] != 3:
        raise ValueError('colors must be RGB (N,H,W,3) or (H,W,3) uint8, got shape %s'
                         % (colors.shape,))
    return colors.astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0


def decode_colors(array):
    """float32 network output (N,3,H,W) (numpy, CuPy or Variable) -> uint8 RGB (N,H,W,3)."""
    a = to_cpu(array).astype(np.float32)
    return np.clip((a + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def colorize(model, lines, batch_size=16, extra=None):
    """Run a U-Net on uint8 line art (N,H,W) and return uint8 RGB (N,H,W,3).

    Runs in evaluation mode (BatchNorm uses its running averages, no graph is kept),
    on the model's device. Sides that are not multiples of 16 are padded with paper
    and cropped back. ``extra``: optional float32 (N,C,H,W) channels appended to the
    line (hints, later in the course); the model's ``in_ch`` must be 1 + C. A 4-channel
    hint U-Net given ``extra=None`` colors without hints (hint channels = EMPTY).
    """
    lines = np.asarray(lines)
    if lines.ndim == 2:
        lines = lines[None]
    padded, (h, w) = pad_to_multiple(lines)
    # a hint U-Net's extra channels are hints: "no hint" (EMPTY) where there is none,
    # padding included; a residual stage 2's are colors: paper white (1.0) in the padding
    hint_model = (getattr(model, 'in_ch', 1) == 4
                  and not getattr(model, 'save_meta', {}).get('residual'))
    if extra is None and hint_model:
        extra = np.full((len(padded), 3) + padded.shape[1:3], EMPTY, np.float32)
    elif extra is not None:
        extra = np.asarray(extra, np.float32)
        extra = pad_to_multiple(extra, value=EMPTY if hint_model else 1.0, axes=(2, 3))[0]
    xp = model.xp
    out = []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for i in range(0, len(padded), batch_size):
            x = encode_lines(padded[i:i + batch_size])
            if extra is not None:
                x = np.concatenate([x, extra[i:i + batch_size]], axis=1)
            y = model(xp.asarray(x))
            out.append(decode_colors(y)[:, :h, :w])
    if not out:
        return np.zeros((0,) + lines.shape[1:] + (3,), np.uint8)
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------
# Looking inside: a shape table and a drawing of the skip connections.
# ---------------------------------------------------------------------------------------

def shape_table(model, size=128):
    """Run a dummy picture through a UNET and list, layer by layer, what happens.

    Returns a list of dicts: name, kind, kernel, stride, input (C,H,W) (after any skip
    concatenation), output (C,H,W), skip (which encoder map is concatenated), params.
    """
    rows = []
    x = model.xp.zeros((1, model.in_ch, size, size), np.float32)
    check_size(x)
    e = {}
    h = chainer.Variable(x)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for name, _, k, s in ENCODER:
            link = getattr(model, name)
            y = F.relu(getattr(model, 'bn' + name)(link(h)))
            rows.append(dict(name=name, kind='conv', kernel=k, stride=s, skip='',
                             input=tuple(h.shape[1:]), output=tuple(y.shape[1:]),
                             params=count_params(link) + count_params(
                                 getattr(model, 'bn' + name))))
            e['e' + name[1:]] = y
            h = y
        for name, _, kind in DECODER:
            skip = SKIPS.get(name, '')
            if skip:
                h = F.concat([e[skip], h])
            link = getattr(model, name)
            y = link(h)
            params = count_params(link)
            if name != 'dc0':
                bn = getattr(model, 'bnd' + name[2:])
                y = F.relu(bn(y))
                params += count_params(bn)
            rows.append(dict(name=name, kind=kind, kernel=4 if kind == 'deconv' else 3,
                             stride=2 if kind == 'deconv' else 1, skip=skip,
                             input=tuple(h.shape[1:]), output=tuple(y.shape[1:]),
                             params=params))
            h = y
    return rows


def format_shape_table(rows):
    """The shape table as fixed-width text."""
    head = '%-5s %-7s %3s %3s  %-16s %-16s %-5s %10s' % (
        'layer', 'kind', 'k', 's', 'input C,H,W', 'output C,H,W', 'skip', 'params')
    lines = [head, '-' * len(head)]
    for r in rows:
        lines.append('%-5s %-7s %3d %3d  %-16s %-16s %-5s %10s' % (
            r['name'], r['kind'], r['kernel'], r['stride'],
            ','.join(map(str, r['input'])), ','.join(map(str, r['output'])),
            r['skip'] or '-', format(r['params'], ',')))
    lines.append('%-63s %10s' % ('total', format(sum(r['params'] for r in rows), ',')))
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------
# Compact weights: float16 npz on disk, float32 in memory.
# ---------------------------------------------------------------------------------------

def save_weights(link, path, meta=None):
    """Save every parameter and persistent value (BatchNorm statistics) as float16.

    Half the size of float32 (a width-1/4 U-Net is about 2.4 MB). Written to a
    temporary file and renamed, so a killed process never leaves half a file.
    ``meta``: a JSON-serialisable dict stored alongside (e.g. the model's in_ch/width).
    """
    arrays = {}
    for name, param in link.namedparams():
        if param.array is None:
            raise ValueError('parameter %s is not initialised yet' % name)
        arrays['param' + name] = to_cpu(param.array).astype(np.float16)
    for name, value in _persistents(link):
        v = np.asarray(to_cpu(value))   # BatchNorm statistics may live on the GPU
        arrays['persist' + name] = v.astype(
            np.float16 if np.issubdtype(v.dtype, np.floating) else v.dtype)
    arrays['__meta__'] = np.frombuffer(json.dumps(meta or {}).encode(), np.uint8)
    with atomic.atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            np.savez_compressed(f, **arrays)


def warm_start(dst, src):
    """Copy a trained U-Net ``src`` into ``dst`` (same layer names, same width), in place,
    on ``dst``'s device; ``dst`` may have more input channels (c0) or outputs (dc0).

    Where a weight of ``dst`` is larger, the overlap is copied; extra *input* channels are
    set to zero (they read inputs ``src`` never had, so ``dst`` computes what ``src``
    computes until training teaches it to read them) and extra *outputs* keep ``dst``'s
    own initial values. BatchNorm statistics are copied too (:func:`copy_persistents`).
    """
    theirs = dict(src.namedparams())
    for name, p in dst.namedparams():
        a, w = to_cpu(theirs[name].array), to_cpu(p.array).copy()
        if any(n > m for n, m in zip(a.shape, w.shape)) or a.ndim != w.ndim:
            raise ValueError('cannot warm-start %s %s from %s' % (name, w.shape, a.shape))
        if a.ndim > 1 and w.shape[1] > a.shape[1]:
            w[:, a.shape[1]:] = 0
        w[tuple(slice(0, n) for n in a.shape)] = a
        p.array[...] = dst.xp.asarray(w)
    copy_persistents(dst, src)
    return dst


def copy_persistents(dst, src):
    """Copy every persistent value (BatchNorm statistics) of ``src`` into the link of the
    same path in ``dst``, on ``dst``'s device: half of a warm start (weights are the other)."""
    theirs = dict(src.namedlinks())
    for path, sub in dst.namedlinks():
        for pname in sub._persistent:
            value, cur = getattr(theirs[path], pname), getattr(sub, pname)
            if hasattr(cur, 'shape') and np.ndim(cur):
                cur[...] = dst.xp.asarray(to_cpu(value))
            else:
                setattr(sub, pname, value)


def _persistents(link):
    for path, sub in link.namedlinks():
        for pname in sorted(sub._persistent):
            yield path.rstrip('/') + '/' + pname, getattr(sub, pname)


def read_meta(path):
    with np.load(path) as z:
        return json.loads(bytes(z['__meta__']).decode() or '{}')


def load_weights(link, path):
    """Load :func:`save_weights` output into ``link`` as float32 (on link's device)."""
    with np.load(path) as z:
        for name, param in link.namedparams():
            key = 'param' + name
            if key not in z:
                raise KeyError('%s has no parameter %s' % (path, name))
            a = z[key].astype(np.float32)
            if param.array is None:
                param.initialize(a.shape)
            if param.array.shape != a.shape:
                raise ValueError('%s: shape %s in file, %s in model' % (
                    name, a.shape, param.array.shape))
            param.array[...] = link.xp.asarray(a)
        for name, value in _persistents(link):
            key = 'persist' + name
            if key not in z:
                raise KeyError('%s has no value %s' % (path, name))
            a = z[key]
            owner, attr = name.rsplit('/', 1)
            sub = link if owner == '' else _sublink(link, owner)
            cur = getattr(sub, attr)
            if isinstance(cur, (int, float, np.integer, np.floating)) or np.ndim(cur) == 0:
                setattr(sub, attr, type(cur)(a) if not hasattr(cur, 'shape') else a)
            else:
                cur[...] = link.xp.asarray(a.astype(cur.dtype))
    return link


def _sublink(link, path):
    for p, sub in link.namedlinks():
        if p == path:
            return sub
    raise KeyError(path)
