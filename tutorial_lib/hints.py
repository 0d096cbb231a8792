"""Color hints: dots on the line art that tell the network which colors to use, as 3 extra
input channels; simulated for training, sampled from the truth, drawn by users. Notebook 04."""
import dataclasses
import os
import re

import cv2
import numpy as np

from . import atomic
from . import imageheader
from .models import EMPTY, decode_colors, encode_colors, encode_lines

MAX_RADIUS = 1e6          # the largest Stroke radius accepted, in source pixels
MAX_HINT_SIDE = 4096      # load_hint_png refuses larger hint images (from the header)
EMPTY_THRESHOLD = -1.5    # halfway between black (-1) and EMPTY: decode's decision line
PAPER_LEVEL = 235         # a true pixel whose channels are all >= this is paper
INK_THRESHOLD = 128       # a line-art pixel darker than this is ink


# ------------------------------------------------------------------------------ encoding
def _check_color(image, name='color'):
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError('%s must be a uint8 (H,W,3) RGB image, got %s %s'
                         % (name, image.dtype, image.shape))
    return image


def _check_hint_image(hint_rgb, mask):
    hint_rgb, mask = _check_color(hint_rgb, 'hint_rgb'), np.asarray(mask)
    if mask.shape != hint_rgb.shape[:2]:
        raise ValueError('mask must be (H,W) = %s like the hint image, got %s'
                         % (hint_rgb.shape[:2], mask.shape))
    return hint_rgb, mask.astype(bool)


def empty(h, w):
    """Hint channels (3,h,w) float32 with no hint anywhere."""
    return np.full((3, h, w), EMPTY, np.float32)


def encode(hint_rgb, mask):
    """uint8 (H,W,3) colors + bool (H,W) mask -> float32 (3,H,W) network channels.

    Where a hint exists, the channels hold its color as :func:`models.encode_colors` encodes
    it (``rgb / 127.5 - 1``): exactly the numbers the network is asked to *output* there,
    so "copy the hint" is the simplest thing it can learn. Elsewhere all three hold
    ``EMPTY = -2``: with only three channels "no hint" must be a number no color uses (0 is
    mid gray, -1 is black, and a premultiplied ``alpha * (rgb + 1) / 2`` makes black look
    like nothing). -2 sits one unit below black, so :func:`decode` separates the two at
    -1.5. PaintsChainer made the same kind of choice in OpenCV YUV: an empty pixel there
    is ``(Y, U, V) = (-512, 128, 128)``, a luminance no real color has.
    """
    hint_rgb, mask = _check_hint_image(hint_rgb, mask)
    out = empty(*mask.shape)
    out[:, mask] = encode_colors(hint_rgb)[0][:, mask]
    return out


def encode_batch(hint_rgb, mask):
    """(N,H,W,3) colors + (N,H,W) masks -> float32 (N,3,H,W) hint channels."""
    return np.stack([encode(r, m) for r, m in zip(hint_rgb, mask)]) if len(mask) \
        else np.zeros((0, 3) + np.asarray(mask).shape[1:], np.float32)


def decode(channels):
    """(3,H,W) or (N,3,H,W) channels -> (uint8 (...,H,W,3) colors, bool (...,H,W) mask).

    A pixel is a hint when all three channels are above -1.5; colors of empty pixels are 0.
    """
    c = np.asarray(channels, np.float32)
    if c.ndim not in (3, 4) or c.shape[-3] != 3:
        raise ValueError('hint channels must be (3,H,W) or (N,3,H,W), got %s' % (c.shape,))
    batch = c if c.ndim == 4 else c[None]
    mask = (batch > EMPTY_THRESHOLD).all(axis=1)
    rgb = decode_colors(batch)
    rgb[~mask] = 0
    return (rgb, mask) if c.ndim == 4 else (rgb[0], mask[0])


def make_input(line, hint_channels=None):
    """Stack line art and hint channels into the hint U-Net's float32 (N,4,H,W) input.

    ``line``: uint8 (H,W), (N,H,W) or (N,1,H,W), encoded by :func:`models.encode_lines`; a
    float array is taken as already normalized to [-1, 1]. ``hint_channels``: (3,H,W) or
    (N,3,H,W) from :func:`encode` / :func:`simulate_batch`; None means no hints.
    """
    line = np.asarray(line)
    x = line[:, 0] if line.ndim == 4 and line.shape[1] == 1 else line
    if x.ndim not in (2, 3):
        raise ValueError('line must be (H,W), (N,H,W) or (N,1,H,W), got %s' % (line.shape,))
    if line.dtype == np.uint8:
        x = encode_lines(x)
    else:
        x = x.astype(np.float32)
        x = x[None, None] if x.ndim == 2 else x[:, None]
    n, _, h, w = x.shape
    hints = np.broadcast_to(empty(h, w), (n, 3, h, w)) if hint_channels is None else \
        np.asarray(hint_channels, np.float32)
    if hints.ndim == 3:
        hints = hints[None]
    if hints.shape != (n, 3, h, w):
        raise ValueError('hint channels %s do not match the line batch: expected (%d,3,%d,%d)'
                         % (hints.shape, n, h, w))
    return np.concatenate([x, hints], axis=1)


# ------------------------------------------------------------------ training-time hints
@dataclasses.dataclass
class HintConfig:
    """How :func:`simulate` invents hints from a training picture's true colors.

    The shares follow PaintsChainer's training recipe: many samples without any hint (so the
    network still colors on its own), some with a few dots, the rest with many.
    """
    p_none: float = 0.4                 # share of samples with no hints at all
    p_few: float = 0.3                  # share with ``few`` dots; the rest get ``many``
    few: tuple = (2, 15)                # inclusive range of the dot count
    many: tuple = (16, 120)
    dot_size: tuple = (1, 3)            # side of the square dot in pixels, inclusive
    noise_sigma: float = 8.0            # Gaussian color noise, uint8 units (users are sloppy)
    avoid_ink: bool = False             # place no dot on ink pixels (needs the line image)
    ink_threshold: int = INK_THRESHOLD  # line pixels darker than this are ink
    # 'uniform' (the textbook): positions uniform, a dot's color = mean under it.
    # 'informative' (beyond the blog): most dots where a user clicks -- on colored pixels
    # clear of the lines -- each a single color taken at its center and drawn only on the
    # pixels of that color nearby, so a dot never mixes ink and fill (see simulate).
    placement: str = 'uniform'
    p_colored: float = 0.75             # informative: share of dots on colored, off-ink pixels
    p_paper: float = 0.10               # ... on paper; the rest anywhere (uniform, mean color)
    paper_level: int = PAPER_LEVEL      # a true pixel is paper when all channels >= this

    def __post_init__(self):
        if not (0 <= self.p_none and 0 <= self.p_few and self.p_none + self.p_few <= 1):
            raise ValueError('p_none and p_few must be >= 0 with p_none + p_few <= 1')
        for name in ('few', 'many', 'dot_size'):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi or (name == 'dot_size' and lo < 1):
                raise ValueError('%s must be an inclusive range (lo, hi) with 0 <= lo <= hi '
                                 '(dot_size: lo >= 1), got %r' % (name, (lo, hi)))
        if self.noise_sigma < 0:
            raise ValueError('noise_sigma must be >= 0, got %r' % self.noise_sigma)
        if self.placement not in ('uniform', 'informative'):
            raise ValueError("placement must be 'uniform' or 'informative', got %r"
                             % (self.placement,))
        if not (0 <= self.p_colored and 0 <= self.p_paper
                and self.p_colored + self.p_paper <= 1):
            raise ValueError('p_colored and p_paper must be >= 0 with a sum <= 1')


# Named recipes, so a training config can say which one it used (configs.HintTrainConfig).
# 'sparse' is the textbook setting above: 1-3 px dots, 40% of samples without any. Measured
# here, it teaches a classroom-width U-Net nothing in a CPU budget: 3000 iterations (warm
# started from classroom_l2) gave the same test PSNR with 0 and with 100 hints, and even
# the whole true picture given as hints moved it by 0.1 dB. Sparse 1-px dots are a weak,
# rare signal, and learning to spread them over a region takes a GPU-scale number of
# steps. 'classroom' gives the network more to learn from -- bigger dots, more of them,
# fewer samples without -- and is what the shipped hint U-Nets were trained with.
# 'informative' is what the fill-reading hint U-Net (hint_unet.py) trains with: 15% of
# samples without hints, up to 128 dots, 1-5 px (single pixels included, as the course
# tests them), 75% of them on colored pixels clear of the lines, colored at their own pixels.
RECIPES = {
    'sparse': HintConfig(),
    'classroom': HintConfig(p_none=0.2, p_few=0.3, few=(2, 30), many=(31, 400),
                            dot_size=(2, 5)),
    'informative': HintConfig(p_none=0.15, p_few=0.45, few=(1, 16), many=(17, 128),
                              dot_size=(1, 5), placement='informative'),
}


def recipe(name):
    """A copy of a named :class:`HintConfig` ('sparse' or 'classroom')."""
    if name not in RECIPES:
        raise ValueError('unknown hint recipe %r; known: %s' % (name, ', '.join(RECIPES)))
    return dataclasses.replace(RECIPES[name])


def _randint(rng, lo, hi):
    """Inclusive integer draw that works for RandomState and Generator alike."""
    return int(rng.integers(lo, hi + 1) if isinstance(rng, np.random.Generator)
               else rng.randint(lo, hi + 1))


def draw_count(rng, cfg):
    """Number of dots for one training sample (0, a few, or many, by the config's shares)."""
    u = rng.random() if isinstance(rng, np.random.Generator) else rng.random_sample()
    if u < cfg.p_none:
        return 0
    return _randint(rng, *(cfg.few if u < cfg.p_none + cfg.p_few else cfg.many))


def simulate(color, rng, cfg=None, line=None):
    """Invent training hints: ``(hint_rgb uint8 (H,W,3), mask bool (H,W))``.

    Dot positions are uniform over the picture (over non-ink pixels when ``cfg.avoid_ink``
    and ``line`` is given); each dot is a square of 1..3 px whose color is the true mean
    color under it plus Gaussian noise. Everything comes from ``rng``: same state, same hints.
    ``cfg.placement == 'informative'``: see :func:`simulate_informative`.
    """
    cfg = cfg or HintConfig()
    color = _check_color(color)
    if cfg.placement == 'informative':
        return simulate_informative(color, rng, cfg, line)
    h, w = color.shape[:2]
    hint_rgb, mask = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), bool)
    n = draw_count(rng, cfg)
    allowed = np.arange(h * w)
    if cfg.avoid_ink and line is not None:
        allowed = np.flatnonzero(np.asarray(line).reshape(-1) >= cfg.ink_threshold)
    n = min(n, allowed.size)
    if n == 0:
        return hint_rgb, mask
    for pos in allowed[rng.choice(allowed.size, n, replace=False)]:
        y, x = divmod(int(pos), w)
        s = _randint(rng, *cfg.dot_size)
        ys, xs = slice(y, min(h, y + s)), slice(x, min(w, x + s))
        value = color[ys, xs].reshape(-1, 3).mean(axis=0) + rng.normal(0, cfg.noise_sigma, 3)
        hint_rgb[ys, xs] = np.clip(np.rint(value), 0, 255).astype(np.uint8)
        mask[ys, xs] = True
    return hint_rgb, mask


def _pick(rng, candidates, n):
    return candidates[rng.choice(candidates.size, n, replace=False)] if n else candidates[:0]


def simulate_informative(color, rng, cfg, line=None):
    """Hints where a user would put them (``placement='informative'``).

    Of the dots, ``p_colored`` sit on colored pixels (not paper) clear of the ink,
    ``p_paper`` on paper clear of the ink, the rest anywhere. A dot on a chosen pixel takes
    that pixel's true color (+ noise) and covers the pixels of its s x s square that are
    not ink and whose true color is near the center's: one color, inside one region, the
    way a careful click looks. A dot placed anywhere is the textbook dot (mean under it).
    Without ``line``, ink is taken to be the true pixels darker than ``cfg.ink_threshold``.
    """
    h, w = color.shape[:2]
    hint_rgb, mask = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), bool)
    n = draw_count(rng, cfg)
    if n == 0:
        return hint_rgb, mask
    ink = (np.asarray(line) < cfg.ink_threshold) if line is not None else \
        (color.max(axis=2) < cfg.ink_threshold)
    paper = (color >= cfg.paper_level).all(axis=2)
    flat = np.arange(h * w)
    kinds = rng.choice(3, n, p=[cfg.p_colored, cfg.p_paper, 1 - cfg.p_colored - cfg.p_paper])
    pools = [flat[(~ink & ~paper).ravel()], flat[(~ink & paper).ravel()], flat]
    for kind, pool in enumerate(pools):
        k = min(int((kinds == kind).sum()), pool.size)
        for pos in _pick(rng, pool, k):
            y, x = divmod(int(pos), w)
            s = _randint(rng, *cfg.dot_size)
            y0, x0 = max(0, y - s // 2), max(0, x - s // 2)
            ys, xs = slice(y0, min(h, y0 + s)), slice(x0, min(w, x0 + s))
            noise = rng.normal(0, cfg.noise_sigma, 3)
            if kind == 2:
                value = color[ys, xs].reshape(-1, 3).mean(axis=0) + noise
                hint_rgb[ys, xs] = np.clip(np.rint(value), 0, 255).astype(np.uint8)
                mask[ys, xs] = True
                continue
            center = color[y, x].astype(np.int32)
            near = np.abs(color[ys, xs].astype(np.int32) - center).max(axis=2) <= 24
            near &= ~ink[ys, xs]
            near[y - y0, x - x0] = True
            value = np.clip(np.rint(center + noise), 0, 255).astype(np.uint8)
            hint_rgb[ys, xs][near] = value
            mask[ys, xs][near] = True
    return hint_rgb, mask


def simulate_batch(colors, rng, cfg=None, lines=None):
    """:func:`simulate` for a uint8 (N,H,W,3) batch, returned encoded: float32 (N,3,H,W)."""
    colors = np.asarray(colors)
    return np.stack([encode(*simulate(c, rng, cfg, None if lines is None else lines[i]))
                     for i, c in enumerate(colors)])


def colored_off_ink(lines, colors, ink=INK_THRESHOLD, paper=PAPER_LEVEL):
    """Pixels where a user would put a hint: not ink in the line art, not paper in the
    truth (some channel below ``paper``) -> bool, the shape of ``lines``."""
    return (np.asarray(lines) >= ink) & (np.asarray(colors) < paper).any(axis=-1)


def _truth_hints_one(color, n, rng, radius, where, fill):
    color = _check_color(color)
    h, w = color.shape[:2]
    places = np.arange(h * w) if where is None else np.flatnonzero(np.asarray(where, bool))
    if not 0 <= n <= len(places):
        raise ValueError('n must be between 0 and the number of pixels it may use (%d), got %r'
                         % (len(places), n))
    if not radius >= 0:
        raise ValueError('radius must be >= 0, got %r' % (radius,))
    r = int(round(radius))
    kernel = _disk_kernel(r).astype(bool)
    hint_rgb, mask = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), bool)
    for pos in places[rng.permutation(len(places))[:n]]:
        y, x = divmod(int(pos), w)
        y0, y1, x0, x1 = max(y - r, 0), min(y + r + 1, h), max(x - r, 0), min(x + r + 1, w)
        disk = kernel[y0 - y + r:y1 - y + r, x0 - x + r:x1 - x + r]  # clipped at the border
        win_rgb, win_mask = hint_rgb[y0:y1, x0:x1], mask[y0:y1, x0:x1]  # views
        win_rgb[disk] = color[y, x] if fill == 'center' else np.rint(
            color[y0:y1, x0:x1][disk].mean(axis=0)).astype(np.uint8)
        win_mask |= disk
    return hint_rgb, mask


def truth_hints(colors, n, seed=0, radius=0, where=None, fill='mean'):
    """Exactly ``n`` hints per true picture -> (hint_rgb uint8 (...,H,W,3), mask bool (...,H,W)).

    ``colors``: one picture (H,W,3) or a batch (N,H,W,3). Each hint is a disk of ``radius``
    px (0 = one pixel) centred on a uniform random pixel (or one where ``where``, bool
    (...,H,W), is True, e.g. :func:`colored_off_ink`), filled with the true mean color under
    it (``fill='mean'``, the hints curve's textbook dot) or with the true color of its centre
    pixel (``fill='center'``: a user who picks the color of the region the dot sits in).
    Picture i draws one permutation of ``RandomState([seed, i])``
    and takes its first ``n`` positions: the 10 hints contain the 5, so curves of quality
    vs number of hints are nested, and every model compared gets the same hints.
    """
    if fill not in ('mean', 'center'):
        raise ValueError("fill must be 'mean' or 'center', got %r" % (fill,))
    colors = np.asarray(colors)
    if colors.ndim == 3:
        rgb, mask = truth_hints(colors[None], n, seed, radius,
                                None if where is None else np.asarray(where)[None], fill)
        return rgb[0], mask[0]
    rgb = np.zeros(colors.shape, np.uint8)
    mask = np.zeros(colors.shape[:3], bool)
    for i, c in enumerate(colors):
        rgb[i], mask[i] = _truth_hints_one(c, n, np.random.RandomState([seed, i]), radius,
                                           None if where is None else where[i], fill)
    return rgb, mask


# ---------------------------------------------------------------------------- user hints
def parse_color(color):
    """'#rrggbb' or (r, g, b) with ints 0..255 -> tuple of 3 ints."""
    if isinstance(color, str):
        if not re.fullmatch(r'#[0-9a-fA-F]{6}', color.strip()):
            raise ValueError("color string must look like '#rrggbb' (e.g. '#8b4513'), got %r"
                             % color)
        c = color.strip()
        return tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))
    try:
        rgb = tuple(int(v) for v in color)
        ok = len(rgb) == 3 and all(0 <= v <= 255 and v == c for v, c in zip(rgb, color))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError("color must be '#rrggbb' or (r, g, b) with integers 0..255, got %r"
                         % (color,))
    return rgb


@dataclasses.dataclass
class Stroke:
    """A user's dot (one point) or stroke (a polyline) in source-image pixel coordinates.

    ``radius`` is in source pixels (0 = the thinnest possible stroke, 1 px). An eraser stroke
    (``erase=True``, color may be None) removes hints under it. Points may lie outside the
    image: canvas drags often leave the picture, so the outside part is clipped silently.
    """
    points: list
    color: object = None
    radius: float = 0.0
    erase: bool = False

    def __post_init__(self):
        try:
            pts = np.asarray(self.points, np.float64)
        except (TypeError, ValueError):     # ragged or non-numeric: reported just below
            pts = np.zeros((0,))
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
            raise ValueError('points must be a non-empty list of (x, y) pairs, got %r'
                             % (self.points,))
        if not np.isfinite(pts).all() or np.abs(pts).max() > 1e6:
            raise ValueError('point coordinates must be finite numbers (|x|, |y| <= 1e6)')
        if isinstance(self.radius, (bool, np.bool_)) or not isinstance(
                self.radius, (int, float, np.integer, np.floating)):
            raise ValueError('radius must be a number of pixels (int or float), got %r'
                             % (self.radius,))
        if not (np.isfinite(self.radius) and 0 <= self.radius <= MAX_RADIUS):
            raise ValueError('radius must be a finite number >= 0 and <= %g px, got %r'
                             % (MAX_RADIUS, self.radius))
        self.radius = float(self.radius)
        self.points = [tuple(p) for p in pts.tolist()]
        self.color = None if self.erase and self.color is None else parse_color(self.color)


def _size(size, name):
    if len(size) != 2 or not all(int(s) == s and s > 0 for s in size):
        raise ValueError('%s must be (height, width) with positive integers, got %r'
                         % (name, size))
    return int(size[0]), int(size[1])


def _disk_kernel(r):
    k = np.zeros((2 * r + 1, 2 * r + 1), np.uint8)
    cv2.circle(k, (r, r), r, 1, -1, cv2.LINE_8)
    return k


def rasterize(strokes, size, source_size=None):
    """Draw strokes in order -> ``(hint_rgb uint8 (h,w,3), mask bool (h,w))``.

    ``size`` = (h, w) of the output (the network's resolution); ``source_size`` = (H, W) of
    the space the points are given in (e.g. the original sketch; default: ``size``).
    Coordinates are pixel centers: source pixel x covers [x - 0.5, x + 0.5], so it maps to
    ``x' = (x + 0.5) * w / W - 0.5``, rounded to the nearest pixel (likewise y); at 512 ->
    128, point (100, 40) lands on pixel (25, 10). The radius scales by the mean of the two
    factors and is rounded; radius 0 still paints one pixel, so nothing vanishes.
    Antialiasing is off: a hint pixel carries exactly the chosen color.
    Later strokes overwrite earlier ones; erasers clear the mask.
    """
    h, w = _size(size, 'size')
    sh, sw = _size(source_size or size, 'source_size')
    fy, fx = h / sh, w / sw
    hint_rgb, mask = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), bool)
    for s in strokes:
        if not isinstance(s, Stroke):
            raise ValueError('rasterize expects Stroke objects, got %r' % (s,))
        pts = [(int(round((x + 0.5) * fx - 0.5)), int(round((y + 0.5) * fy - 0.5)))
               for x, y in s.points]
        layer = np.zeros((h, w), np.uint8)
        # a 1-px polyline widened by a disk: the same shape as a dot of that radius, and
        # thinner than cv2's thick lines, which overshoot the requested width
        # (cv2 draws nothing for a 1-point polyline, so a dot is a zero-length segment)
        cv2.polylines(layer, [np.array(pts if len(pts) > 1 else pts * 2, np.int32)], False,
                      1, 1, cv2.LINE_8)
        # a disk wider than the picture covers no more of it: clip the radius there
        r = int(round(min(s.radius * (fx + fy) / 2, h + w)))
        if r <= 16:
            hit = (cv2.dilate(layer, _disk_kernel(r)) if r else layer).astype(bool)
        else:   # the same disk (pixels within r of the stroke), in time independent of r
            hit = cv2.distanceTransform((layer == 0).astype(np.uint8), cv2.DIST_L2,
                                        cv2.DIST_MASK_PRECISE) <= r
        if s.erase:
            mask[hit], hint_rgb[hit] = False, 0
        else:
            mask[hit], hint_rgb[hit] = True, s.color
    return hint_rgb, mask


def to_rgba(hint_rgb, mask):
    """Hint image as RGBA uint8 (H,W,4): alpha 255 on hints, 0 (and black) elsewhere."""
    hint_rgb, mask = _check_hint_image(hint_rgb, mask)
    rgba = np.zeros(mask.shape + (4,), np.uint8)
    rgba[mask, :3], rgba[mask, 3] = hint_rgb[mask], 255
    return rgba


def from_rgba(rgba):
    """RGBA uint8 (H,W,4) -> (hint_rgb, mask); a pixel is a hint when alpha > 127."""
    rgba = np.asarray(rgba)
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError('expected an RGBA uint8 (H,W,4) image (alpha = hint), got %s %s'
                         % (rgba.dtype, rgba.shape))
    mask = rgba[..., 3] > 127
    hint_rgb = np.where(mask[..., None], rgba[..., :3], 0).astype(np.uint8)
    return hint_rgb, mask


def save_hint_png(path, hint_rgb, mask):
    """Write hints as an RGBA PNG; atomic (temp file + os.replace), never half-written."""
    rgba = to_rgba(hint_rgb, mask)
    ok, data = cv2.imencode('.png', rgba[..., [2, 1, 0, 3]])  # OpenCV stores BGRA
    if not ok:
        raise ValueError('could not encode the hint image as PNG')
    atomic.write_bytes(path, data.tobytes())


def load_hint_png(path, max_side=MAX_HINT_SIDE):
    """Read an RGBA PNG of hints (alpha = hint) -> (hint_rgb, mask).

    The size is read from the file's header first: a side above ``max_side`` is refused
    before decoding. A file whose every pixel is opaque (an editor that kept the white
    background) is refused too: it would make every pixel a hint."""
    name = os.fspath(path)
    if os.path.isdir(name):
        raise ValueError('the hint file %s is a folder, not an RGBA PNG' % name)
    if not os.path.exists(name):
        raise FileNotFoundError('no such hint file: %s' % name)
    with open(name, 'rb') as f:
        data = f.read()
    if not data:
        raise ValueError('the hint file %s is empty; expected an RGBA PNG' % name)
    imageheader.check_image_bytes(data, 'the hint file %s' % name, max_side,
                                  accepted='an RGBA PNG (alpha = hint)')
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError('could not read an image from %r (corrupt?); expected an RGBA PNG'
                         % name)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 4:
        raise ValueError('%r is not an 8-bit RGBA PNG (shape %s, %s): hint files need an '
                         'alpha channel, alpha = hint present'
                         % (os.fspath(path), img.shape, img.dtype))
    rgb, mask = from_rgba(img[..., [2, 1, 0, 3]])
    check_not_opaque(mask, 'the hint file %s' % name)
    return rgb, mask


def check_not_opaque(mask, source='the hint image'):
    """ValueError when every pixel of a user's hint image is a hint: that is a picture
    saved without transparency, not hints (alpha marks the hinted pixels)."""
    if mask.size > 1 and mask.all():
        raise ValueError('%s is opaque everywhere (alpha 255 on every pixel), so every pixel '
                         'would be a hint: hints need a transparent background with alpha '
                         'only on the hinted pixels (save it with transparency)' % source)


def resize_hints(hint_rgb, mask, size):
    """Resize a hint image to ``size`` = (h, w) without losing or blending dots.

    Growing axes use nearest neighbour. Shrinking axes map every source pixel into the
    target pixel whose block contains it; a target pixel is a hint when *any* source pixel
    of its block is (a max-pool of the mask), and takes the color of the first hinted pixel
    in raster order. So a 1-px dot survives 512 -> 128, and colors are never averaged into a
    color the user did not pick.
    """
    hint_rgb, mask = _check_hint_image(hint_rgb, mask)
    h, w = _size(size, 'size')
    for axis, n in ((0, h), (1, w)):           # grow first, by nearest neighbour
        m = mask.shape[axis]
        if n > m:
            idx = ((np.arange(n) + 0.5) * m / n).astype(int)
            hint_rgb, mask = hint_rgb.take(idx, axis), mask.take(idx, axis)
    sh, sw = mask.shape
    ys, xs = np.nonzero(mask)                  # raster order
    target = (ys * h // sh) * w + xs * w // sw
    target, first = np.unique(target, return_index=True)
    out_rgb, out_mask = np.zeros((h * w, 3), np.uint8), np.zeros(h * w, bool)
    out_rgb[target], out_mask[target] = hint_rgb[ys[first], xs[first]], True
    return out_rgb.reshape(h, w, 3), out_mask.reshape(h, w)


def overlay(line, hint_rgb, mask, outline=(40, 40, 40)):
    """Line art (uint8 (H,W)) with the hints drawn on it, for looking at: RGB uint8.

    Each dot gets a 1-px dark outline so that light colors (white, pale yellow) still show
    on white paper.
    """
    hint_rgb, mask = _check_hint_image(hint_rgb, mask)
    line = np.asarray(line)
    if line.shape != mask.shape:
        raise ValueError('line %s and hints %s must have the same size'
                         % (line.shape, mask.shape))
    out = np.repeat(line.astype(np.uint8)[..., None], 3, axis=2)
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~mask
    out[ring] = outline
    out[mask] = hint_rgb[mask]
    return out
