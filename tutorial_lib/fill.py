"""Bucket fill from hints: the non-learned baseline every hint model must beat, and the fill
that :mod:`hint_unet` reads as extra input (notebook 04)."""
import cv2
import numpy as np

from .hints import INK_THRESHOLD   # line pixels darker than this are ink
CLOSE = 2             # px: ink is widened by this much to close gaps in outlines
GROW = 3              # px: how far a region grows back over the closing margin


def _disk(r):
    k = np.zeros((2 * r + 1, 2 * r + 1), np.uint8)
    cv2.circle(k, (r, r), r, 1, -1)
    return k


def _check(line, hint_rgb=None, mask=None):
    line = np.asarray(line)
    if line.dtype != np.uint8 or line.ndim != 2:
        raise ValueError('line art must be uint8 (H,W), got %s %s' % (line.dtype, line.shape))
    if hint_rgb is not None:
        hint_rgb, mask = np.asarray(hint_rgb), np.asarray(mask, bool)
        if hint_rgb.shape != line.shape + (3,) or mask.shape != line.shape:
            raise ValueError('hints (%s, mask %s) must match the line art %s'
                             % (hint_rgb.shape, mask.shape, line.shape))
    return line, hint_rgb, mask


def regions(line, ink_threshold=INK_THRESHOLD, close=CLOSE):
    """Label the regions of line art -> (labels int32 (H,W), ink bool (H,W)).

    ``labels`` is 0 on the widened ink (the barrier) and 1..n on the 4-connected regions.
    """
    line, _, _ = _check(line)
    ink = line < ink_threshold
    barrier = cv2.dilate(ink.astype(np.uint8), _disk(close)) if close else ink.astype(np.uint8)
    _, labels = cv2.connectedComponents((barrier == 0).astype(np.uint8), connectivity=4)
    return labels.astype(np.int32), ink


def bucket_fill(line, hint_rgb, mask, ink_threshold=INK_THRESHOLD, close=CLOSE, grow=GROW):
    """Fill every hinted region with the median of its hints -> (fill uint8 (H,W,3),
    filled bool (H,W)), as a paint program's bucket does after a click inside an outline.

    1. **regions** (:func:`regions`): ink = line pixels darker than ``ink_threshold``,
       widened by ``close`` px so that small gaps in an outline close; the rest splits into
       4-connected regions;
    2. **margins** (:func:`all_regions`): each region grows back over the margin the
       widening took from it, up to ``grow`` px and never across ink, so the color reaches
       the line; margin strips no region reaches (shapes thinner than the widening) become
       regions of their own;
    3. **fill**: every region holding hint pixels takes their per-channel median (robust to
       a dot that strays over a line). Hints clear of the margin count first; a region with
       none takes the hints in its margin, but only from dots that do not touch the ink:
       a dot sampled across a line carries a color half line, half fill.

    Where it fails: outlines with gaps wider than the closing, shading inside a region (a
    fill is flat), and every region nobody hinted.
    """
    line, hint_rgb, mask = _check(line, hint_rgb, mask)
    inner, ink = regions(line, ink_threshold, close)
    labels = _flood(inner, ink, grow)
    hinted = mask & (labels > 0)
    if not hinted.any():
        return np.zeros(line.shape + (3,), np.uint8), np.zeros(line.shape, bool)
    n_dots, dots = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    touches_ink = np.zeros(n_dots, bool)
    touches_ink[dots[mask & ink]] = True
    core = hinted & (inner > 0)
    lut, has = _medians(labels[core], hint_rgb[core], labels.max() + 1)
    margin = hinted & ~core & ~touches_ink[dots] & ~has[labels]
    lut2, has2 = _medians(labels[margin], hint_rgb[margin], labels.max() + 1)
    lut[has2] = lut2[has2]
    has |= has2
    has[0] = False
    return lut[labels], has[labels]


def all_regions(line, ink_threshold=INK_THRESHOLD, close=CLOSE, grow=GROW):
    """Every pixel off the ink in a region -> (labels int32 (H,W), ink bool (H,W)): the
    regions of :func:`regions` grown back over their margin (``grow`` px, never across
    ink); margin strips they do not reach are numbered after them. 0 only on ink."""
    inner, ink = regions(line, ink_threshold, close)
    return _flood(inner, ink, grow), ink


def _flood(labels, ink, steps):
    """Grow labels into unlabeled pixels off the ink, one pixel per step (8 neighbours;
    where two regions meet the higher label wins), then number the unreached ones."""
    labels, free = labels.copy(), ~ink
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(steps):
        # float32 holds every label exactly up to 2**24, far more than a picture has
        grown = cv2.dilate(labels.astype(np.float32), kernel).astype(np.int32)
        take = (labels == 0) & free & (grown > 0)
        if not take.any():
            break
        labels[take] = grown[take]
    rest = (labels == 0) & free
    if rest.any():
        _, strips = cv2.connectedComponents(rest.astype(np.uint8), connectivity=4)
        labels[rest] = strips[rest] + labels.max()
    return labels


def _medians(labels, colors, n):
    """Per-label per-channel median of ``colors`` (K,3) -> (lut uint8 (n,3), has bool (n,))."""
    lut, has = np.zeros((n, 3), np.uint8), np.zeros(n, bool)
    order = np.argsort(labels, kind='stable')
    labels, colors = labels[order], colors[order]
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]]) if len(labels) else []
    for s, e in zip(starts, np.r_[starts[1:], len(labels)]):
        lut[labels[s]] = np.rint(np.median(colors[s:e], axis=0)).astype(np.uint8)
        has[labels[s]] = True
    return lut, has


def region_picture(labels, seed=0):
    """Regions in random light colors, the barrier black: to look at what the fill sees."""
    rng = np.random.RandomState(seed)
    lut = rng.randint(110, 256, (labels.max() + 1, 3)).astype(np.uint8)
    lut[0] = 0
    return lut[labels]


def region_obeys(result, line, points, color, max_distance=25.0):
    """Did a hint take? The share of the closed region under ``points`` (x, y pixels of
    ``line``; all in one region, else ValueError) whose color in ``result`` (uint8 RGB, the
    line's size) lies within ``max_distance`` (CIE Lab) of ``color`` (r, g, b)."""
    labels, _ = regions(line)
    hit = {int(labels[int(y), int(x)]) for x, y in points}
    if len(hit) != 1 or 0 in hit:
        raise ValueError('the points %s are not inside one closed region (regions under them: '
                         '%s; 0 = a line or its margin)' % (list(points), sorted(hit)))
    region = labels == hit.pop()

    def lab(rgb):
        return cv2.cvtColor(np.asarray(rgb, np.float32) / 255, cv2.COLOR_RGB2Lab)
    target = lab(np.array([[color]], np.float32))[0, 0]
    distance = np.linalg.norm(lab(result)[region] - target, axis=1)
    return float((distance <= max_distance).mean())


def paint(line, fill, filled, background=None):
    """The fill on ``background`` (default white paper; e.g. a network's output for the
    hybrid), the line art multiplied on top -> uint8 RGB (H,W,3)."""
    line, _, _ = _check(line)
    base = np.full(line.shape + (3,), 255, np.uint8) if background is None \
        else np.array(background, np.uint8)
    base[filled] = fill[filled]
    out = base.astype(np.float32) * (line.astype(np.float32)[..., None] / 255.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def fill_pictures(lines, hint_rgb, mask, backgrounds=None, **kw):
    """:func:`bucket_fill` + :func:`paint` for a batch: uint8 (N,H,W) lines, (N,H,W,3)
    hints and (N,H,W) masks -> uint8 (N,H,W,3). ``backgrounds``: the network's outputs
    for the hybrid, or None for the fill on paper."""
    out = []
    for i, line in enumerate(np.asarray(lines)):
        fill, filled = bucket_fill(line, hint_rgb[i], mask[i], **kw)
        out.append(paint(line, fill, filled, None if backgrounds is None else backgrounds[i]))
    return np.stack(out) if out else np.zeros(np.shape(hint_rgb), np.uint8)
