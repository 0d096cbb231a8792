"""Measuring a colorizer: test metrics of a model, the hints curve and its baselines, the
stage-2 gain. Notebooks 02-03 (evaluate), 04 (hints curve) and 05 (stage-2 gain) use it."""
import hashlib
import re
import warnings

import numpy as np

from . import fill as fill_mod
from . import hints as hints_mod
from . import metrics as metrics_mod
from .models import colorize
from .openmoji import split_of

HINT_COUNTS = (0, 1, 5, 10, 25, 50, 100)


HEXCODE = re.compile(r'^[0-9A-F]{4,6}(-[0-9A-F]{4,6})*$')


def check_test_pairs(pairs, allow_train=False):
    """Refuse pairs that are (or contain) OpenMoji TRAIN pictures.

    Pairs made by ``data.load_split`` carry OpenMoji hexcodes as names; their split is
    recomputed with ``openmoji.split_of``. Other names (user folders, synthetic data)
    cannot be checked and pass.
    """
    split = getattr(pairs, 'split', None)
    names = [n for n in getattr(pairs, 'names', []) if HEXCODE.match(str(n))]
    n_train = 0
    if names:
        n_train = sum(split_of(n) == 'train' for n in names)
    if split == 'train' or n_train:
        msg = ('evaluate() measures generalisation and wants TEST pictures, but %s of these '
               'pairs are from the TRAIN split. Use data.load_split("test", ...) or '
               'data.load_samples(); pass allow_train=True to measure the fit on '
               'training pictures on purpose.' % (n_train or 'all'))
        if not allow_train:
            raise ValueError(msg)
        warnings.warn(msg)


def evaluate(model, test_pairs, batch_size=16, allow_train=False, return_outputs=False):
    """Run ``model`` on TEST pairs and return the mean metrics as a dict.

    Keys: psnr (dB, capped at PSNR_CAP), ssim, colorfulness, colorfulness_truth,
    colorfulness_ratio, line_preservation, line_preservation_truth, hue_entropy,
    hue_entropy_truth, skin_share, skin_share_truth, saturation, saturation_truth, n.
    With ``return_outputs=True`` returns (metrics, outputs uint8 (N,H,W,3)).
    """
    check_test_pairs(test_pairs, allow_train)
    outputs = colorize(model, np.asarray(test_pairs.lines), batch_size=batch_size)
    truth = np.asarray(test_pairs.colors)
    m = metrics_mod.summarize(metrics_mod.scores(outputs, test_pairs), outputs, truth)
    return (m, outputs) if return_outputs else m



# ---------------------------------------------------------------------------------------
# The hints curve
# ---------------------------------------------------------------------------------------

def hint_error(outputs, hint_rgb, mask):
    """Mean absolute RGB error (0..255 units) between outputs and the hint colors, over
    the hinted pixels of all pictures pooled; NaN when there is no hinted pixel."""
    m = np.asarray(mask, bool)
    if not m.any():
        return float('nan')
    diff = np.abs(np.asarray(outputs, np.float64)[m] - np.asarray(hint_rgb, np.float64)[m])
    return float(diff.mean())


# The hint of the course's curves: a disk of radius 2 px (13 pixels) at 128 px, about
# what one click with the canvas's smallest round brush leaves. Single pixels (radius 0)
# are the harder variant, also recorded.
CURVE_RADIUS = 2


def hints_curve(gen, pairs, counts=HINT_COUNTS, seed=0, radius=0, lines=None,
                batch_size=32):
    """PSNR and hint-color error vs the number of hints (ideepcolor's measurement).

    For each count n, every picture gets n hints sampled from its true colors with
    :func:`hints.truth_hints` (one pixel each for ``radius=0``, positions uniform over the whole
    picture, nested across n, the same for every model); the hint U-Net colors it; we
    record the mean PSNR (dB) and the **hint error**: the mean absolute RGB difference
    (0..255) between the output and the hint color at the hinted pixels (does the network
    obey the hints?). ``lines``: the line art to color (default ``pairs.lines``; e.g.
    OpenCV-extracted lines of the same pictures).

    ``gen`` may also be any function ``(lines, hint_rgb, mask) -> uint8 (N,H,W,3)``, e.g.
    :func:`fill_method` (the bucket fill) or :func:`hybrid_method`, measured the same way.

    ``hint_error_colored``: the same at the hinted pixels that are colored and off the ink
    in the truth (:func:`hints.colored_off_ink`): hints where a user would put them.

    Returns a list of dicts: hints, psnr, psnr_std, ssim, hint_error, hint_error_colored, n.
    """
    if not hasattr(gen, 'in_ch'):
        color_fn = gen
    elif gen.in_ch != 4:
        raise ValueError('hints_curve needs a hint U-Net (in_ch=4), this one has in_ch=%d'
                         % gen.in_ch)
    else:
        def color_fn(lines, rgb, mask):
            return colorize(gen, lines, batch_size=batch_size,
                            extra=hints_mod.encode_batch(rgb, mask))
    colors = np.asarray(pairs.colors)
    lines = np.asarray(pairs.lines if lines is None else lines)
    if lines.shape != colors.shape[:3]:
        raise ValueError('lines %s do not match the pictures %s' % (lines.shape, colors.shape))
    colored = hints_mod.colored_off_ink(lines, colors)
    rows = []
    for n in counts:
        rgb, mask = hints_mod.truth_hints(colors, n, seed, radius)
        out = color_fn(lines, rgb, mask)
        p = np.minimum(metrics_mod.psnr(out, colors), metrics_mod.PSNR_CAP)
        rows.append(dict(hints=int(n), psnr=float(np.mean(p)), psnr_std=float(np.std(p)),
                         ssim=float(np.mean(metrics_mod.ssim(out, colors))),
                         hint_error=hint_error(out, rgb, mask),
                         hint_error_colored=hint_error(out, rgb, mask & colored),
                         n=int(len(colors))))
    return rows


def hint_landing(lines, colors, masks):
    """Where hinted pixels land: shares on ink, on paper and on colored pixels off the ink
    (:func:`hints.colored_off_ink`) -> dict(ink=, paper=, colored=, pixels=)."""
    m = np.asarray(masks, bool)
    on_ink = m & (np.asarray(lines) < hints_mod.INK_THRESHOLD)
    on_colored = m & hints_mod.colored_off_ink(lines, colors)
    n = max(int(m.sum()), 1)
    return dict(ink=on_ink.sum() / n, paper=(m & ~on_ink & ~on_colored).sum() / n,
                colored=on_colored.sum() / n, pixels=int(m.sum()))


def fill_method(lines, hint_rgb, mask):
    """The non-learned baseline as a hints-curve method: bucket fill on white paper."""
    return fill_mod.fill_pictures(lines, hint_rgb, mask)


def _no_hint_colors(gen):
    """``lines -> gen's colors without hints``, computed once per set of lines (a curve
    asks again for every hint count)."""
    cache = {}

    def colors_of(lines):
        key = hashlib.sha1(np.ascontiguousarray(lines).tobytes()).hexdigest()
        if key not in cache:
            cache.clear()
            cache[key] = colorize(gen, lines)
        return cache[key]
    return colors_of


def hybrid_method(gen):
    """Network + bucket fill as a hints-curve method: ``gen``'s colors without hints, the
    fill pasted over them where a region is hinted, the lines on top."""
    no_hints = _no_hint_colors(gen)

    def color_fn(lines, hint_rgb, mask):
        return fill_mod.fill_pictures(lines, hint_rgb, mask, backgrounds=no_hints(lines))
    return color_fn


def ceiling_method(gen, colors):
    """The best any hybrid could do, as a hints-curve method (it reads the truth: a bound,
    not a colorizer). Per region of :func:`fill.all_regions` (the ink counts as one more),
    whichever of these comes closest to the truth: ``gen``'s colors without hints, the same
    with the lines multiplied on top, or -- in a hinted region -- the one flat color that,
    times the lines, comes closest (least squares).

    ``colors``: the true pictures, in the order of the lines the curve colors. Every method
    that keeps the network's no-hint colors (lines on top or not) or paints one flat color
    per hinted region under the lines -- the bucket fill, :func:`hybrid_method` -- scores
    at most this; a network that shades inside a region may score more."""
    truth = np.asarray(colors, np.float64)
    no_hints = _no_hint_colors(gen)

    def color_fn(lines, hint_rgb, mask):
        base = np.asarray(no_hints(lines), np.float64)
        out = np.empty_like(base)
        for i, line in enumerate(np.asarray(lines)):
            labels, _ = fill_mod.all_regions(line)
            out[i] = _closest_per_region(base[i], truth[i], line, labels,
                                         np.asarray(mask[i], bool))
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return color_fn


def _closest_per_region(base, truth, line, labels, mask):
    """The candidate closest to ``truth`` in each region (see :func:`ceiling_method`)."""
    n = labels.max() + 1
    shade = line.astype(np.float64).reshape(-1, 1) / 255
    lab = labels.ravel()
    t, b = truth.reshape(-1, 3), base.reshape(-1, 3)
    den = np.maximum(np.bincount(lab, shade[:, 0] ** 2, n), 1e-12)
    flat = np.stack([np.bincount(lab, t[:, c] * shade[:, 0], n) / den for c in range(3)], 1)
    candidates = [b, b * shade, np.clip(flat, 0, 255)[lab] * shade]
    errors = np.stack([np.bincount(lab, ((c - t) ** 2).sum(1), n) for c in candidates])
    hinted = np.zeros(n, bool)
    hinted[labels[mask]] = True
    errors[2, ~hinted | (np.arange(n) == 0)] = np.inf     # flat only where a hint is
    choice = errors.argmin(0)[lab]
    return np.choose(choice[:, None], candidates).reshape(base.shape)


def format_curve(rows, title=None):
    """A hints-curve table as fixed-width text."""
    out = [title] if title else []
    out.append('%6s  %8s  %6s  %6s  %10s  %14s' % ('hints', 'PSNR dB', '+-', 'SSIM',
                                                      'hint err', 'on colored px'))

    def num(v):
        return '-' if v is None or np.isnan(v) else '%.1f' % v
    for r in rows:
        out.append('%6d  %8.2f  %6.2f  %6.3f  %10s  %14s' % (
            r['hints'], r['psnr'], r['psnr_std'], r['ssim'], num(r['hint_error']),
            num(r.get('hint_error_colored'))))
    return '\n'.join(out)


def stage2_gain(colorizer, pairs, n_hints=0, seed=0):
    """PSNR at the pictures' own size (512 px) of stage 1 upsampled vs stage 1 + stage 2.

    ``colorizer``: a :class:`colorize.Colorizer` with both stages; ``pairs``: TEST pairs at
    512 px. Each picture runs through the Colorizer twice (``stage2=False`` / ``True``),
    with ``n_hints`` true-color hints given at 512 px. Returns a dict with the mean PSNR
    and SSIM of both, the gain and the per-picture PSNRs.
    """
    lines = pairs.lines
    colors = pairs.colors
    p1, p2, s1, s2 = [], [], [], []
    outs1, outs2 = [], []
    given = hints_mod.truth_hints(np.asarray(colors), n_hints, seed) if n_hints else None
    for i in range(len(lines)):
        line, color = np.asarray(lines[i]), np.asarray(colors[i])
        h = None if given is None else (given[0][i], given[1][i])
        a = colorizer.colorize(line, hints=h, stage2=False)
        b = colorizer.colorize(line, hints=h, stage2=True)
        p1.append(min(metrics_mod.psnr(a, color), metrics_mod.PSNR_CAP))
        p2.append(min(metrics_mod.psnr(b, color), metrics_mod.PSNR_CAP))
        s1.append(metrics_mod.ssim(a, color))
        s2.append(metrics_mod.ssim(b, color))
        outs1.append(a)
        outs2.append(b)
    p1, p2 = np.array(p1), np.array(p2)
    return dict(psnr_stage1=float(p1.mean()), psnr_stage2=float(p2.mean()),
                gain=float((p2 - p1).mean()), ssim_stage1=float(np.mean(s1)),
                ssim_stage2=float(np.mean(s2)), improved=float((p2 > p1).mean()),
                n=len(p1), hints=n_hints, per_picture=dict(stage1=p1, stage2=p2),
                outputs=(outs1, outs2))
