"""Beyond the blog: a hint U-Net that reads a bucket fill of its hints (notebook 04)."""
import chainer
import chainer.functions as F
import numpy as np

from . import fill as fill_mod
from . import hints as hints_mod
from . import models as models_mod
from .infra.backend import to_cpu
from .models import UNET

INNER_CHANNELS = 9      # line, hint RGB, hint mask, fill RGB, fill mask
GATE_BIAS = 3.0         # sigmoid(3) = 0.95: start by trusting the fill


class HintFillUNET(chainer.Chain):
    """Hint U-Net with a hint mask, a bucket-fill input and a gate.

    The blog's hint model (``models.UNET(in_ch=4)``) gets hints as three extra input channels and
    has to learn, from sparse dots, that a dot's color belongs to the whole region around it.
    At a classroom CPU budget it barely learns that. :class:`HintFillUNET` takes the same
    4-channel input -- ``[line, hint R, G, B]`` with ``hints.EMPTY`` where there is no hint,
    so every caller (Colorizer, canvas, hints curve) feeds it like the blog's model -- and
    before the U-Net runs it derives, per picture:

    * the hint colors with empty pixels set to 0 and a separate **hint mask** channel (0/1),
      instead of a sentinel value that ties "a hint is here" to its color;
    * the **bucket fill** of the hints (:func:`fill.bucket_fill`: each closed region holding
      hints takes their median color) and its mask.

    That is 1 + 3 + 1 + 3 + 1 = 9 channels for the inner U-Net (the blog's layers, unchanged
    apart from c0's input and dc0's output). The U-Net outputs colors and a fourth channel, a
    **gate**: where the fill applies, the result is ``gate * fill + (1 - gate) * colors``, with
    ``gate = sigmoid(.)``; elsewhere it is the U-Net's colors. The gate starts near 1 (its
    bias is ``GATE_BIAS``), so training starts from "trust the fill" and learns where not to
    (shading, regions that leak through a gap, a dot on the wrong side of a line).

    ``shade=True`` blends the fill *under the lines*: its color times the line art's
    lightness, as :func:`fill.paint` lays a fill down. A flat fill is too light on the
    anti-aliased pixels along every line; without shading the gate learns to distrust the
    fill there, and on thin-lined drawings by other artists (mostly such pixels) it
    distrusts the fill everywhere.

    ``use_fill=False`` (an ablation step of notebook 04, config ``model='mask'``): the hint
    mask and sentinel-free hint colors only; the fill channels stay zero, so the output is
    the U-Net's colors.
    """

    def __init__(self, in_ch=4, width=1.0, gate_bias=GATE_BIAS, shade=False, use_fill=True):
        super().__init__()
        if in_ch != 4:
            raise ValueError('HintFillUNET takes the 4-channel hint input (line + hint RGB), '
                             'got in_ch=%r' % (in_ch,))
        self.in_ch, self.width, self.shade, self.use_fill = 4, width, bool(shade), bool(use_fill)
        # added to the gate's logit when coloring, not learned, not saved: an experiment
        # knob (0 = as trained, +50 = always the fill, -50 = never)
        self.fill_trust = 0.0
        with self.init_scope():
            self.unet = UNET(in_ch=INNER_CHANNELS, width=width, out_ch=4)
        self.unet.dc0.W.array[3] = 0
        self.unet.dc0.b.array[3] = gate_bias

    @property
    def save_meta(self):
        """What :func:`checkpoints.load_unet` needs to rebuild this network."""
        return {'kind': 'hint_fill', 'shade': self.shade, 'use_fill': self.use_fill}

    def expand(self, x):
        """The 4-channel input (numpy or CuPy) -> (9-channel input, fill (N,3,H,W),
        filled (N,1,H,W)), all float32 on the input's device."""
        xc = to_cpu(x.array if isinstance(x, chainer.Variable) else x)
        if xc.ndim != 4 or xc.shape[1] != 4:
            raise ValueError('HintFillUNET takes (N,4,H,W) input [line, hint RGB], got %s'
                             % (xc.shape,))
        line = np.clip(np.rint((xc[:, 0] + 1) * 127.5), 0, 255).astype(np.uint8)
        hint_rgb, mask = hints_mod.decode(xc[:, 1:4])
        m = mask[:, None].astype(np.float32)
        n, _, h, w = xc.shape
        fill, filled = np.zeros((n, 3, h, w), np.float32), np.zeros((n, 1, h, w), np.float32)
        if self.use_fill:
            fills = [fill_mod.bucket_fill(line[i], hint_rgb[i], mask[i]) for i in range(n)]
            filled = np.stack([f[1] for f in fills])[:, None].astype(np.float32)
            fill = np.stack([f[0] for f in fills]).transpose(0, 3, 1, 2).astype(np.float32)
            fill = (fill / 127.5 - 1) * filled
        inner = np.concatenate([xc[:, :1], xc[:, 1:4] * m, m, fill, filled], axis=1)
        xp = self.xp
        return xp.asarray(inner), xp.asarray(fill), xp.asarray(filled)

    def forward(self, x):
        inner, fill, filled = self.expand(x)
        if self.shade:      # fill color x line lightness, in the [-1, 1] encoding
            line = inner[:, :1]
            fill = ((fill + 1) * (line + 1) / 2 - 1) * filled
        y = self.unet(inner)
        colors = y[:, :3]
        gate = F.sigmoid(y[:, 3:] + self.fill_trust) * filled
        gate = F.broadcast_to(gate, colors.shape)
        return gate * fill + (1 - gate) * colors

    def warm_start(self, source):
        """Start from a trained network of the same width: another ``HintFillUNET`` (every
        weight copied, whatever its ``shade``), or a blog U-Net (any in_ch, 3 outputs) copied
        into the inner U-Net: its line weights and its color outputs; the weights that read
        the new channels start at zero, so the network starts as ``source`` with the fill
        pasted over it (at the gate's starting weight)."""
        if source.width != self.width:
            raise ValueError('cannot warm-start width %g from width %g'
                             % (self.width, source.width))
        models_mod.warm_start(self.unet, source.unet if isinstance(source, HintFillUNET)
                              else source)
        return self


# config.model -> HintFillUNET options ('blog' is models.UNET(in_ch=4), not in this table)
MODELS = {'mask': dict(use_fill=False), 'fill': dict(), 'fill_shaded': dict(shade=True)}


def for_model(model, width):
    """The untrained hint U-Net a config's ``model`` names ('mask', 'fill', 'fill_shaded')."""
    if model not in MODELS:
        raise ValueError('unknown hint model %r; known: blog, %s' % (model, ', '.join(MODELS)))
    return HintFillUNET(width=width, **MODELS[model])
