"""Bucket fill from hints: the non-learned baseline every hint model must beat, and the fill
that :mod:`hint_unet` reads as extra input (notebook 04)."""
import cv2
import numpy as np

from .hints import INK_THRESHOLD   # line pixels darker than this are ink
CLOSE = 2             # px: ink is widened by this much to close gaps in outlines
GROW = 3              # px: how far the fill grows back over the closing margin


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
    2. **fill**: every region holding hint pixels takes their per-channel median (robust
       to a dot that strays over a line); ink is never filled, and hint pixels on the
       widened ink do not count (their color may be half line);
    3. **grow back**: the margin the widening took from each region takes the color of
       the nearest filled pixel within ``grow`` px, so the color reaches up to the ink.

    Where it fails: outlines with gaps wider than the closing, shading inside a region (a
    fill is flat), and every region nobody hinted.
    """
    line, hint_rgb, mask = _check(line, hint_rgb, mask)
    labels, ink = regions(line, ink_threshold, close)
    fill = np.zeros(line.shape + (3,), np.uint8)
    filled = np.zeros(line.shape, bool)
    where = mask & (labels > 0)
    if not where.any():
        return fill, filled
    lab, col = labels[where], hint_rgb[where]
    order = np.argsort(lab, kind='stable')
    lab, col = lab[order], col[order]
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    lut = np.zeros((labels.max() + 1, 3), np.uint8)
    has = np.zeros(labels.max() + 1, bool)
    for s, e in zip(starts, np.r_[starts[1:], len(lab)]):
        lut[lab[s]] = np.rint(np.median(col[s:e], axis=0)).astype(np.uint8)
        has[lab[s]] = True
    has[0] = False
    fill, filled = lut[labels], has[labels]
    if grow and filled.any():
        fill, filled = _grow(fill, filled, (labels == 0) & ~ink, grow)
    return fill, filled


def _grow(fill, filled, margin, grow):
    """Margin pixels within ``grow`` px of a filled pixel take that pixel's color."""
    dist, nearest = cv2.distanceTransformWithLabels(
        (~filled).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    # DIST_LABEL_PIXEL numbers the zero pixels (the filled ones) 1..k in raster order
    ys, xs = np.nonzero(filled)
    take = margin & ~filled & (dist <= grow)
    idx = nearest[take] - 1
    fill, filled = fill.copy(), filled.copy()
    fill[take] = fill[ys[idx], xs[idx]]
    filled[take] = True
    return fill, filled


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
