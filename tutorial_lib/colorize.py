"""Color any sketch, any size, with or without hints: the two-stage :class:`Colorizer` and the
command ``python -m tutorial_lib.colorize sketch.png --hints hints.png -o colored.png`` (notebook 05)."""
import argparse
import os
import sys
import time

import chainer
import cv2
import numpy as np

from .infra import backend as backend_mod
from . import cli
from . import hints as hints_mod
from .images import OUTPUT_FORMATS, fit_long_side, pad_to_multiple, read_image, resize, to_rgb8
from .images import write_png
from .checkpoints import load_stage
from .lines import extract_lines
from .models import DOWNSAMPLING, decode_colors, encode_lines
from .stage2 import stage2_input

MAX_SIDE = 4096          # the largest accepted side of an input picture, in pixels
STAGE1_SIDE = 128        # long side of the picture stage 1 sees
STAGE2_SIDE = 512        # long side of the picture stage 2 sees
DEFAULT_STAGE1 = 'classroom_hints'
DEFAULT_STAGE2 = 'classroom_stage2'


def to_line_image(image, extract=False):
    """A picture (array or path) -> uint8 gray line art (H,W), 255 = paper.

    Arrays: uint8 or uint16, gray (H,W), or (H,W,1/3/4) RGB(A) (alpha composited on white).
    ``extract=True`` runs :func:`lines.extract_lines` (the blog's recipe, 3x3) instead of
    taking the gray levels: for a colored picture rather than a drawing.
    """
    if isinstance(image, (str, os.PathLike)):
        rgb = read_image(image, max_side=MAX_SIDE)   # refused from the header, not decoded
    else:
        a = np.asarray(image)
        if a.dtype == object or a.ndim not in (2, 3):
            raise ValueError('expected a picture: an (H,W) gray or (H,W,3/4) RGB(A) array or a '
                             'file path, got %s %s' % (a.dtype, a.shape))
        if a.size == 0:
            raise ValueError('the picture is empty (shape %s)' % (a.shape,))
        rgb = to_rgb8(a, 'the picture', 'uint8 (0..255) or uint16 (0..65535) pixels, gray, RGB '
                      'or RGBA; for floats in [0, 1] pass (x * 255).round().astype(np.uint8)')
    check_size(rgb.shape[:2])
    if extract:
        return extract_lines(rgb, kernel_size=3)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def check_size(shape):
    h, w = shape
    if h < 1 or w < 1:
        raise ValueError('the picture is empty (%dx%d)' % (w, h))
    if max(h, w) > MAX_SIDE:
        raise ValueError('the picture is %dx%d px; the Colorizer accepts sides up to %d px '
                         '(it works at 512 px anyway): shrink it first' % (w, h, MAX_SIDE))


def hint_image(hints, source_size, size):
    """Any accepted hints -> (hint_rgb (h,w,3), mask (h,w)) at the network ``size``.

    ``hints``: None; a list of :class:`hints.Stroke` in pixel coordinates of the original
    picture (``source_size`` = its (H,W)); an RGBA uint8 array of any size (alpha = hint),
    stretched over the picture; a (hint_rgb, mask) pair of any size; or a path to an RGBA
    PNG (:func:`hints.load_hint_png`).
    """
    h, w = size
    if hints is None:
        return np.zeros((h, w, 3), np.uint8), np.zeros((h, w), bool)
    if isinstance(hints, (str, os.PathLike)):
        hints = hints_mod.load_hint_png(hints, max_side=MAX_SIDE)
    if isinstance(hints, hints_mod.Stroke):
        hints = [hints]
    if isinstance(hints, list) and all(isinstance(s, hints_mod.Stroke) for s in hints):
        return hints_mod.rasterize(hints, (h, w), source_size)
    if isinstance(hints, tuple) and len(hints) == 2:
        rgb, mask = hints
    elif isinstance(hints, np.ndarray):
        if hints.ndim != 3 or hints.shape[2] != 4 or hints.dtype != np.uint8:
            raise ValueError('a hint image must be RGBA uint8 (H,W,4) with alpha marking the '
                             'hints, got %s %s' % (hints.dtype, hints.shape))
        rgb, mask = hints_mod.from_rgba(hints)
        hints_mod.check_not_opaque(mask, 'the RGBA hint image')
    else:
        raise ValueError('hints must be None, a list of hints.Stroke, an RGBA uint8 array, a '
                         '(hint_rgb, mask) pair or an RGBA PNG path; got %r'
                         % type(hints).__name__)
    rgb, mask = np.asarray(rgb), np.asarray(mask)
    if mask.size == 0:
        raise ValueError('the hint image is empty (shape %s)' % (mask.shape,))
    return hints_mod.resize_hints(rgb, mask, (h, w))


class Colorizer:
    """Stage 1 (128 px, line + hints) and optionally stage 2 (512 px), for any picture.

    ``stage1``/``stage2``: U-Nets (``models.UNET``) or anything
    :func:`checkpoints.resolve_checkpoint` accepts (a shipped checkpoint name, a run folder, a
    gen.npz path). Stage 1 may have ``in_ch=1`` (no hints possible) or 4. ``device``: None
    (``TUTORIAL_DEVICE`` or auto), 'cpu', 'gpu' or 'auto'.

    After every :meth:`colorize` call, ``last_timing`` holds the milliseconds of its parts
    (prepare, stage1, stage2, finish, total) and ``last_ms`` the total.

    What happens to a picture (H x W, any aspect ratio):

    1. it becomes line art: uint8 gray / RGB / RGBA (transparent pixels on white paper) or
       16-bit, or a file path read with :func:`images.read_image`; colors become gray by
       luminance (``extract=True`` instead runs the blog's OpenCV line extraction on it);
    2. **stage 1** sees it with its long side at 128 px (aspect kept, area resampling), padded
       at the bottom/right with white paper to multiples of 16; the hints are drawn at that
       size (strokes given in the ORIGINAL picture's pixel coordinates; hint images of any size
       are stretched over the picture without losing a dot, see :func:`hints.resize_hints`);
       padding carries no hints;
    3. **stage 2** (when loaded and asked for) sees the line with its long side at 512 px and
       the stage-1 colors upsampled (bicubic) to the same size, padded likewise;
    4. the padding is cropped away and the result resized to the original H x W.

    Pictures larger than :data:`MAX_SIDE` px on a side are refused (ValueError): they would
    be shrunk to 512 px anyway, and a mistaken 40,000 px scan should fail fast.

        col = Colorizer.from_checkpoints()          # classroom_hints + classroom_stage2
        rgb = col.colorize('sketch.png', hints=[Stroke([(40, 60)], '#8b4513', radius=3)])
    """

    def __init__(self, stage1, stage2=None, device=None, stage1_side=STAGE1_SIDE,
                 stage2_side=STAGE2_SIDE):
        self.backend = backend_mod.resolve(device) if device else backend_mod.current()
        # a checkpoint must be of its stage's kind: a stage 2 as stage 1 colors nothing
        # (all black), a stage 1 as stage 2 ignores the colors it refines (see check_stage)
        self.stage1 = load_stage(stage1, 1, self.backend)
        self.stage2 = None if stage2 is None else load_stage(stage2, 2, self.backend)
        for m in (self.stage1, self.stage2):
            if m is not None:
                m.to_device(self.backend.chainer_device)
        if self.stage1.in_ch not in (1, 4):
            raise ValueError('stage 1 must take 1 (line) or 4 (line + hints) channels, got %d'
                             % self.stage1.in_ch)
        if self.stage2 is not None and self.stage2.in_ch != 4:
            raise ValueError('stage 2 must take 4 channels (line + stage-1 colors), got %d'
                             % self.stage2.in_ch)
        self.stage1_side, self.stage2_side = int(stage1_side), int(stage2_side)
        self.last_timing = {}

    @classmethod
    def from_checkpoints(cls, stage1=DEFAULT_STAGE1, stage2=DEFAULT_STAGE2, device=None,
                         **kw):
        """Load by name (shipped checkpoints) or path; ``stage2=None``: stage 1 only."""
        return cls(stage1, stage2, device, **kw)

    @property
    def accepts_hints(self):
        return self.stage1.in_ch == 4

    @property
    def last_ms(self):
        return self.last_timing.get('total')

    def describe(self):
        return 'stage 1: U-Net in_ch=%d width %g at %d px; stage 2: %s; device: %s' % (
            self.stage1.in_ch, self.stage1.width, self.stage1_side,
            'U-Net width %g at %d px' % (self.stage2.width, self.stage2_side)
            if self.stage2 is not None else 'none', backend_mod.describe())

    def stage1_input(self, line, hints=None):
        """The stage-1 network input for line art (H,W): float32 (1,C,h',w') padded to
        multiples of 16, and the unpadded (h, w). What :meth:`colorize` feeds stage 1."""
        size = fit_long_side(line.shape, self.stage1_side)
        small = resize(line, size)
        x = pad_to_multiple(encode_lines(small), DOWNSAMPLING, 1.0, axes=(-2, -1))[0]
        rgb, mask = hint_image(hints, line.shape, size)
        if self.stage1.in_ch == 1:
            if mask.any():
                raise ValueError('this stage-1 U-Net takes no hints (in_ch=1): load a hint '
                                 'U-Net such as classroom_hints, or pass hints=None')
            return x, size
        channels = pad_to_multiple(hints_mod.encode(rgb, mask), DOWNSAMPLING, hints_mod.EMPTY,
                                   axes=(-2, -1))[0]
        return np.concatenate([x, channels[None]], axis=1), size

    def _run(self, model, x, size):
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            y = model(self.backend.xp.asarray(x))
        return decode_colors(y)[0, :size[0], :size[1]]

    def colorize(self, image, hints=None, stage2=True, extract=False):
        """Color ``image`` -> uint8 RGB (H,W,3) at the input's own size.

        ``hints``: see :func:`hint_image` (None = let the network choose); ``stage2``:
        refine at 512 px when a stage 2 is loaded (False = stage 1 upsampled);
        ``extract``: see :func:`to_line_image`.
        """
        t0 = time.perf_counter()
        line = to_line_image(image, extract)
        H, W = line.shape
        x, size1 = self.stage1_input(line, hints)
        t1 = time.perf_counter()
        low = self._run(self.stage1, x, size1)
        t2 = time.perf_counter()
        if stage2 and self.stage2 is not None:
            size2 = fit_long_side((H, W), self.stage2_side)
            big = resize(line, size2)
            x2 = pad_to_multiple(stage2_input(big, low), DOWNSAMPLING, 1.0, axes=(-2, -1))[0]
            out = self._run(self.stage2, x2[None], size2)
        else:
            out = low
        t3 = time.perf_counter()
        out = resize(out, (H, W))
        t4 = time.perf_counter()
        self.last_timing = dict(prepare=(t1 - t0) * 1e3, stage1=(t2 - t1) * 1e3,
                                stage2=(t3 - t2) * 1e3, finish=(t4 - t3) * 1e3,
                                total=(t4 - t0) * 1e3)
        return np.ascontiguousarray(out)


def check_output_path(out, inputs=()):
    """The lowercase extension of a writable output path, or ValueError before any work:
    an unknown extension, a folder, the path of an input (the sketch would be lost), a
    folder that cannot be written to."""
    out = os.fspath(out)
    if os.path.isdir(out):
        raise ValueError('the output %s is a folder; give a file name such as %s'
                         % (out, os.path.join(out, 'colored.png')))
    ext = os.path.splitext(out)[1].lower()
    if ext not in OUTPUT_FORMATS:
        raise ValueError('cannot write %s: the output must end in %s' % (
            out, ', '.join(OUTPUT_FORMATS)))
    for path in inputs:
        if path is not None and os.path.exists(path) and os.path.exists(out) \
                and os.path.samefile(path, out):
            raise ValueError('the output %s is the input %s: it would be overwritten; '
                             'choose another -o' % (out, path))
    folder = os.path.dirname(os.path.abspath(out))
    existing = folder
    while not os.path.isdir(existing):          # the folder is made when missing
        if os.path.exists(existing):
            raise ValueError('cannot write %s: %s is a file, not a folder' % (out, existing))
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError('cannot write %s: no permission to write in %s' % (out, existing))
    return ext


@cli.command
def main(argv=None):
    p = argparse.ArgumentParser(
        prog='python -m tutorial_lib.colorize',
        description='Color a sketch (PNG/JPEG/WebP, any size up to %d px a side) with the '
                    "course's two-stage colorizer." % MAX_SIDE)
    p.add_argument('sketch', help='the line drawing (or, with --extract, a colored picture)')
    p.add_argument('--hints', help='RGBA PNG of hints (alpha = hint), any size: stretched '
                                   'over the sketch')
    p.add_argument('-o', '--out', help='output PNG, JPEG or WebP, by its extension '
                                       '(default: <sketch>_colored.png)')
    p.add_argument('--no-stage2', action='store_true', help='stage 1 only (upsampled)')
    p.add_argument('--stage1', default=DEFAULT_STAGE1,
                   help='stage-1 checkpoint name or path (default %(default)s)')
    p.add_argument('--stage2', default=DEFAULT_STAGE2,
                   help='stage-2 checkpoint name or path (default %(default)s)')
    p.add_argument('--extract', action='store_true',
                   help='extract lines from a colored picture first (the blog\'s recipe)')
    p.add_argument('--device', choices=['cpu', 'gpu', 'auto'], default=None)
    args = p.parse_args(argv)
    out = args.out or os.path.splitext(args.sketch)[0] + '_colored.png'
    # everything that can be checked is checked before the networks load and run
    check_output_path(out, (args.sketch, args.hints))
    line = to_line_image(args.sketch, args.extract)
    hint_input = None
    if args.hints:
        hint_input = hints_mod.load_hint_png(args.hints, max_side=MAX_SIDE)
    col = Colorizer.from_checkpoints(args.stage1, None if args.no_stage2 else args.stage2,
                                     device=args.device)
    print('Device:', backend_mod.describe())
    rgb = col.colorize(line, hints=hint_input, stage2=not args.no_stage2)
    try:
        write_png(out, rgb)
    except OSError as e:     # e.g. the disk filled up: name the output, not the temp file
        raise OSError(e.errno, e.strerror, out) from None
    print('Wrote %s (%dx%d, %.0f ms)' % (out, rgb.shape[1], rgb.shape[0], col.last_ms))
    return 0


if __name__ == '__main__':
    sys.exit(main())
