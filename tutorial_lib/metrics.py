"""Numbers for what the eye sees: how close, how colorful, how well the lines survive
(PSNR, SSIM, colorfulness, line preservation, hue statistics). Notebook 02 introduces them."""
import math
import warnings

import cv2
import numpy as np

from .infra.backend import to_cpu
from .hints import INK_THRESHOLD

# All functions take uint8 RGB pictures (H,W,3) or batches (N,H,W,3) as the pipeline
# produces them (``models.colorize``), and compare an output with the ground truth.
#
# * :func:`psnr` -- peak signal-to-noise ratio on RGB, 0..255: ``10 log10(255^2 / MSE)``,
#   in dB. Identical pictures give ``inf``; :func:`scores` caps each picture at
#   ``PSNR_CAP`` dB before averaging so one perfect picture cannot make the mean infinite.
# * :func:`ssim` -- structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004) on the
#   luminance Y = 0.299 R + 0.587 G + 0.114 B, with an 11x11 Gaussian window of sigma 1.5,
#   K1 = 0.01, K2 = 0.03, L = 255, averaged over the picture (borders included: the window
#   is reflected at the edges). 1 = identical structure. Luminance only: SSIM says whether
#   shapes and shading are right, colorfulness says whether there is color.
# * :func:`colorfulness` -- Hasler & Suesstrunk (2003): with rg = R - G and
#   yb = (R + G)/2 - B, ``C = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)``.
#   A gray picture scores 0. The *colorfulness ratio* = mean C of the outputs / mean C of
#   the ground truth: 1 = as colorful as the real pictures, 0.3 = "sepia".
# * :func:`line_preservation` -- of the pixels that are ink in the input line art (line
#   value < ``hints.INK_THRESHOLD``), the fraction that are still dark (luminance < ``DARK``)
#   in the picture. The ground truth's own score (OpenMoji draws its lines in black, so
#   close to 1) is the ceiling; an Ad-boss that paints over the lines pulls it down.
# * :func:`hue_stats` -- which colors a set of pictures uses. Pixels with chroma
#   (max(R,G,B) - min(R,G,B)) >= ``MIN_CHROMA``=40 count as *colored*; over all colored
#   pixels of all pictures together: the hue histogram (36 bins of 10 degrees, OpenCV HSV),
#   its entropy in bits (**hue variety**: 0 = one hue for everything, log2(36) = 5.17 = all
#   hues equally), the **skin share** (fraction of colored pixels with a hue in
#   ``SKIN_HUES`` = [10, 50) degrees: the skin tones, browns and oranges) and the mean HSV
#   saturation of colored pixels (0..255). "Sepia, only the skin" means: skin share far
#   above the truth's, hue variety and saturation below it. (Hasler-Suesstrunk colorfulness
#   rewards a consistent tint through its mean term, so a sepia picture can still score a
#   fair colorfulness; the hue statistics catch what it misses.)

PSNR_CAP = 100.0   # dB; what an identical picture counts as in averages
MIN_CHROMA = 40    # max(R,G,B) - min(R,G,B) at least this: a colored pixel
HUE_BINS = 36      # 10 degrees each
SKIN_HUES = (10, 50)  # degrees: skin tones, browns, oranges
DARK = 100         # a picture pixel with luminance below this is dark


def _batch(images):
    a = np.asarray(to_cpu(images))   # metrics run on the CPU, whatever made the pictures
    if a.ndim == 3 and a.shape[-1] == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError('expected RGB (H,W,3) or (N,H,W,3), got shape %s' % (a.shape,))
    return a


def _check_same(a, b):
    if a.shape != b.shape:
        raise ValueError('shapes differ: %s vs %s' % (a.shape, b.shape))


def luminance(images):
    """uint8/float RGB (..., 3) -> float64 luminance (...) with BT.601 weights, 0..255."""
    a = np.asarray(images, np.float64)
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def psnr(output, truth, data_range=255.0):
    """PSNR in dB per picture: float for one picture, array (N,) for a batch."""
    single = np.asarray(output).ndim == 3
    a, b = _batch(output).astype(np.float64), _batch(truth).astype(np.float64)
    _check_same(a, b)
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
    with np.errstate(divide='ignore'):
        out = 10 * np.log10(data_range ** 2 / mse)
    return float(out[0]) if single else out


def _ssim_one(x, y, data_range=255.0, sigma=1.5, k1=0.01, k2=0.03):
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2

    def blur(z):
        return cv2.GaussianBlur(z, (11, 11), sigma, borderType=cv2.BORDER_REFLECT)
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float((num / den).mean())


def ssim(output, truth):
    """Mean SSIM on luminance per picture: float for one picture, array (N,) for a batch."""
    single = np.asarray(output).ndim == 3
    a, b = _batch(output), _batch(truth)
    _check_same(a, b)
    ya, yb = luminance(a), luminance(b)
    out = np.array([_ssim_one(p, q) for p, q in zip(ya, yb)])
    return float(out[0]) if single else out


def colorfulness(images):
    """Hasler-Suesstrunk colorfulness per picture (float, or array (N,) for a batch)."""
    single = np.asarray(images).ndim == 3
    a = _batch(images).astype(np.float64)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = np.sqrt(rg.std(axis=(1, 2)) ** 2 + yb.std(axis=(1, 2)) ** 2)
    mean = np.sqrt(rg.mean(axis=(1, 2)) ** 2 + yb.mean(axis=(1, 2)) ** 2)
    out = std + 0.3 * mean
    return float(out[0]) if single else out


def line_preservation(images, lines, ink=INK_THRESHOLD, dark=DARK):
    """Fraction of ink pixels of ``lines`` (uint8 (N,H,W), 255 = paper) that are dark in
    ``images``. NaN for a picture without ink. Float for one picture, array for a batch."""
    single = np.asarray(images).ndim == 3
    a = _batch(images)
    lines = np.asarray(lines)
    if lines.ndim == 2:
        lines = lines[None]
    if lines.shape != a.shape[:3]:
        raise ValueError('lines %s do not match pictures %s' % (lines.shape, a.shape))
    y = luminance(a)
    out = []
    for yi, li in zip(y, lines):
        mask = li < ink
        out.append(float((yi[mask] < dark).mean()) if mask.any() else math.nan)
    out = np.array(out)
    return float(out[0]) if single else out


def hue_stats(images, min_chroma=MIN_CHROMA, bins=HUE_BINS, skin=SKIN_HUES):
    """Hue statistics of the colored pixels of a set of pictures, pooled (see module doc).

    Returns dict(hist (bins,), hue_entropy bits, skin_share, saturation, colored_fraction).
    """
    a = _batch(images)
    rgb = a.astype(np.int16)
    chroma = rgb.max(-1) - rgb.min(-1)
    mask = chroma >= min_chroma
    hsv = np.stack([cv2.cvtColor(np.ascontiguousarray(i, np.uint8), cv2.COLOR_RGB2HSV)
                    for i in a])
    hue = hsv[..., 0][mask].astype(np.float64) * 2.0   # OpenCV: 0..179 -> degrees
    sat = hsv[..., 1][mask].astype(np.float64)
    hist = np.histogram(hue, bins=bins, range=(0, 360))[0].astype(np.float64)
    if hist.sum() == 0:
        return dict(hist=hist, hue_entropy=0.0, skin_share=math.nan, saturation=math.nan,
                    colored_fraction=0.0)
    p = hist / hist.sum()
    nz = p[p > 0]
    return dict(hist=p, hue_entropy=float(-(nz * np.log2(nz)).sum()),
                skin_share=float(((hue >= skin[0]) & (hue < skin[1])).mean()),
                saturation=float(sat.mean()), colored_fraction=float(mask.mean()))


def scores(outputs, pairs):
    """Per-picture metrics of uint8 RGB outputs against pairs (dict of arrays)."""
    outputs = _batch(outputs)
    truth = _batch(np.asarray(pairs.colors))
    lines = np.asarray(pairs.lines)
    return dict(
        psnr=np.minimum(psnr(outputs, truth), PSNR_CAP),
        ssim=ssim(outputs, truth),
        colorfulness=colorfulness(outputs),
        colorfulness_truth=colorfulness(truth),
        line_preservation=line_preservation(outputs, lines),
        line_preservation_truth=line_preservation(truth, lines),
    )


def summarize(per_picture, outputs=None, truth=None):
    """Means of per-picture metrics, plus the colorfulness ratio; with the outputs and
    the true pictures also the pooled hue statistics (``hue_entropy``, ``skin_share``,
    ``saturation`` and their ``*_truth``)."""
    with warnings.catch_warnings():  # an all-NaN column (no ink anywhere) stays NaN
        warnings.simplefilter('ignore', RuntimeWarning)
        m = {k: float(np.nanmean(v)) for k, v in per_picture.items()}
    m['colorfulness_ratio'] = (m['colorfulness'] / m['colorfulness_truth']
                               if m['colorfulness_truth'] > 0 else math.nan)
    m['n'] = int(len(per_picture['psnr']))
    for suffix, images in (('', outputs), ('_truth', truth)):
        if images is not None:
            h = hue_stats(images)
            for key in ('hue_entropy', 'skin_share', 'saturation'):
                m[key + suffix] = h[key]
    return m


COLUMNS = [('psnr', 'PSNR dB', '%.2f'), ('ssim', 'SSIM', '%.3f'),
           ('colorfulness', 'colorful', '%.1f'),
           ('colorfulness_ratio', 'c.ratio', '%.2f'),
           ('hue_entropy', 'hue bits', '%.2f'),
           ('skin_share', 'skin share', '%.2f'),
           ('saturation', 'satur.', '%.0f'),
           ('line_preservation', 'lines kept', '%.3f')]


def table_rows(results):
    """{name: metrics} -> list of rows [name, values...] with a header row first."""
    rows = [['model'] + [c[1] for c in COLUMNS]]
    for name, m in results.items():
        rows.append([name] + [fmt % m[key] if key in m else '-' for key, _, fmt in COLUMNS])
    return rows


def format_table(results, truth=True):
    """{name: metrics} -> a fixed-width text table (one row per model, and a last row
    with the ground truth's own colorfulness and line preservation)."""
    rows = table_rows(results)
    if truth and results:
        any_m = next(iter(results.values()))
        row = ['ground truth']
        for key, _, fmt in COLUMNS:
            if key == 'colorfulness_ratio':
                row.append('1.00')
            elif key + '_truth' in any_m:
                row.append(fmt % any_m[key + '_truth'])
            else:
                row.append('-')
        rows.append(row)
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for j, r in enumerate(rows):
        out.append('  '.join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                             for i, (v, w) in enumerate(zip(r, widths))))
        if j == 0:
            out.append('-' * len(out[0]))
    return '\n'.join(out)
