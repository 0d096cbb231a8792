"""Line extraction from colored pictures (the blog's OpenCV recipe) and its score against
human line art (notebook 01).

:func:`extract_lines` dilates, subtracts and inverts; :func:`score_lines` gives precision,
recall and F1 of ink pixels with a small spatial tolerance; :func:`sweep` tries a grid of
settings and :func:`best` picks the winner (``python -m tutorial_lib.lines sweep``).

Conventions (the whole course): color images are uint8 ``(H,W,3)`` RGB; line images are
uint8 ``(H,W)`` with 255 = white paper and 0 = black ink. Every function here also takes a
batch: ``(N,H,W,3)`` colors or ``(N,H,W)`` lines. A 3-D array whose last axis is 3 is read
as *one* RGB picture, any other 3-D array as a batch of gray pictures.
"""
import cv2
import numpy as np
from tqdm.auto import tqdm

# Okabe-Ito colors (readable with color-vision deficiencies) for disagreement maps.
MATCH_COLOR = (0, 0, 0)              # ink in both, within the tolerance
EXTRA_COLOR = (230, 159, 0)          # orange: extracted ink with no human ink nearby
MISSED_COLOR = (0, 114, 178)         # blue: human ink with no extracted ink nearby

DEFAULT_KERNELS = (2, 3, 5, 7, 9, 11, 13, 15)
DEFAULT_THRESHOLDS = (16, 32, 64, 96, 128, 192)
DEFAULT_CANNY_THICKNESS = (1, 2, 3, 5, 7, 9)
DEFAULT_CANNY_HIGH = (50, 100, 200, 400, 800)

# The blog recipe's best settings (kernel side, threshold) per picture size, chosen by
# F1 against the human lines (``sweep --method dilate``; notebook 01 shows the sweep). Used
# by training runs that learn from extracted lines (TrainConfig.lines = 'extracted') and by
# notebook 07's domain gap.
BEST_SETTINGS = {128: (5, 64), 256: (11, 64)}


# --------------------------------------------------------------------------- input checks

def _check_uint8(image, what='image'):
    if not isinstance(image, np.ndarray):
        image = np.asarray(image)
    if image.size == 0:
        raise ValueError('%s is empty (shape %s); expected a uint8 picture with at least one '
                         'pixel' % (what, image.shape))
    if image.dtype != np.uint8:
        hint = ''
        if np.issubdtype(image.dtype, np.floating):
            hint = (' If it holds values in 0..1, convert with '
                    '(image * 255).round().astype(np.uint8).')
        elif image.dtype == bool:
            hint = ' For a mask, use np.where(mask, 0, 255).astype(np.uint8) (True = ink).'
        raise ValueError('%s has dtype %s; expected uint8 (0..255).%s'
                         % (what, image.dtype, hint))
    return image


def _as_gray_batch(image, what='image'):
    """Validate and convert to a uint8 gray batch (N,H,W). Returns (batch, was_single)."""
    image = _check_uint8(image, what)
    accepted = ('accepted: RGB (H,W,3), gray (H,W), a batch of RGB (N,H,W,3) '
                'or a batch of gray (N,H,W), all uint8')
    if image.ndim == 2:
        return image[None], True
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)[None], True
    if image.ndim == 3 and image.shape[2] == 4:
        raise ValueError('%s has shape %s, which looks like RGBA (4 channels); composite it '
                         'on white or drop alpha first (image[..., :3]); %s'
                         % (what, image.shape, accepted))
    if image.ndim == 3:
        return image, False
    if image.ndim == 4 and image.shape[3] == 3:
        n, h, w, _ = image.shape
        flat = np.ascontiguousarray(image).reshape(n * h, w, 3)
        return cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY).reshape(n, h, w), False
    raise ValueError('%s has shape %s; %s' % (what, image.shape, accepted))


def _as_line_batch(lines, what='lines'):
    """Validate a line image (H,W) or batch (N,H,W), uint8 -> (batch, was_single)."""
    lines = _check_uint8(lines, what)
    if lines.ndim == 2:
        return lines[None], True
    if lines.ndim == 3 and lines.shape[2] not in (3, 4):
        return lines, False
    raise ValueError('%s has shape %s; expected a gray line image (H,W) or a batch (N,H,W) '
                     'of uint8 with 255 = paper, 0 = ink (convert color with to_gray)'
                     % (what, lines.shape))


def _check_kernel(kernel_size, name='kernel_size'):
    if isinstance(kernel_size, (bool, np.bool_)) or not isinstance(kernel_size,
                                                                    (int, np.integer)):
        raise ValueError('%s must be an int >= 1, got %r' % (name, kernel_size))
    if kernel_size < 1:
        raise ValueError('%s must be >= 1 (1 = no dilation), got %d' % (name, kernel_size))
    return int(kernel_size)


def _check_threshold(threshold):
    if threshold is None:
        return None
    if not isinstance(threshold, (int, np.integer)) or isinstance(threshold, bool) \
            or not 1 <= threshold <= 255:
        raise ValueError('threshold must be None or an int in 1..255 (the edge strength, in '
                         'gray levels, from which a pixel becomes ink), got %r' % (threshold,))
    return int(threshold)


# ----------------------------------------------------------------------- the blog's recipe

def to_gray(image):
    """uint8 RGB (H,W,3) or gray (H,W) -> uint8 gray (H,W). Batches work too."""
    batch, single = _as_gray_batch(image)
    return batch[0] if single else batch


def recipe_steps(image, kernel_size=3):
    """Every intermediate image of the recipe, for one picture (to show them).

    Returns a dict of uint8 (H,W) images: ``gray``, ``dilated``, ``diff`` (= dilated - gray,
    bright where an edge is) and ``lines`` (= 255 - diff).
    """
    gray = to_gray(image)
    if gray.ndim != 2:
        raise ValueError('recipe_steps shows one picture; got a batch of shape %s'
                         % (gray.shape,))
    kernel = np.ones((_check_kernel(kernel_size),) * 2, np.uint8)
    dilated = cv2.dilate(gray, kernel)
    diff = cv2.absdiff(dilated, gray)
    return {'gray': gray, 'dilated': dilated, 'diff': diff, 'lines': 255 - diff}


def _edge_strength(gray_batch, kernel_size):
    """|dilate(gray) - gray| for a gray batch (N,H,W) -> uint8 (N,H,W)."""
    kernel = np.ones((kernel_size, kernel_size), np.uint8)
    out = np.empty_like(gray_batch)
    for i, g in enumerate(gray_batch):
        out[i] = cv2.absdiff(cv2.dilate(g, kernel), g)
    return out


def _finish(diff, threshold, normalize):
    """Edge strength (N,H,W) -> line images with the optional stretch and binarization."""
    if normalize:
        peak = diff.reshape(len(diff), -1).max(axis=1).astype(np.float32)
        scale = np.where(peak > 0, 255.0 / np.maximum(peak, 1), 1.0)[:, None, None]
        diff = np.clip(np.rint(diff * scale), 0, 255).astype(np.uint8)
    if threshold is not None:
        return np.where(diff >= threshold, 0, 255).astype(np.uint8)
    return 255 - diff


def extract_lines(image, kernel_size=3, threshold=None, normalize=False):
    """The blog's recipe: gray -> dilate -> |dilated - gray| -> invert.

    The dilation makes every pixel the brightest one in a ``k x k`` window. Where the
    picture is flat it changes nothing and the result is white paper; next to a dark edge
    it brightens the dark side, so the difference is large and the inverted result is ink.
    ``k`` sets how far from an edge a pixel may be and still become ink: the line thickness.

    Parameters
    ----------
    image : uint8 RGB (H,W,3) or gray (H,W), or a batch (N,H,W,3) / (N,H,W).
    kernel_size : side of the square dilation kernel (the line thickness knob); 1 gives
        blank paper, 3 is the blog's 3x3 neighbourhood.
    threshold : None keeps gray levels (a soft pencil look); an int ``t`` in 1..255
        binarizes: a pixel becomes ink (0) where the edge strength ``|dilated - gray|``
        is at least ``t`` (after ``normalize``), else paper (255). Lower = more ink.
    normalize : stretch each picture's edge strength so its strongest edge is 255 (faint
        pictures get dark lines too).

    Returns uint8 (H,W) or (N,H,W): 255 = paper, 0 = ink.
    """
    gray, single = _as_gray_batch(image)
    diff = _edge_strength(gray, _check_kernel(kernel_size))
    out = _finish(diff, _check_threshold(threshold), normalize)
    return out[0] if single else out


def best_setting(size):
    """(kernel side, threshold) from :data:`BEST_SETTINGS` for pictures of ``size`` px:
    the nearest measured size, the kernel scaled to this one and kept odd."""
    known = min(BEST_SETTINGS, key=lambda s: abs(s - size))
    kernel, threshold = BEST_SETTINGS[known]
    if size != known:
        kernel = max(1, int(round(kernel * size / known)) | 1)
    return kernel, threshold


def extract_best(image):
    """:func:`extract_lines` with :func:`best_setting` for the picture's height."""
    shape = np.shape(image)
    return extract_lines(image, *best_setting(shape[-3 if shape[-1] == 3 else -2]))


def extract_lines_canny(image, low=50, high=150, thickness=1, blur=0):
    """Canny edges as line art, for comparison with the blog's recipe.

    ``low``/``high`` are Canny's hysteresis thresholds (gradient magnitude); ``thickness``
    dilates the 1-px edges with a square kernel of that side (1 = keep them thin);
    ``blur`` (odd int, 0 = off) smooths with a Gaussian first. Same input and output
    conventions as :func:`extract_lines` (always binary: 0 = ink, 255 = paper).
    """
    gray, single = _as_gray_batch(image)
    thickness = _check_kernel(thickness, 'thickness')
    if not (0 <= low <= high):
        raise ValueError('Canny needs 0 <= low <= high, got low=%r high=%r' % (low, high))
    if blur and (not isinstance(blur, (int, np.integer)) or blur < 0 or blur % 2 == 0):
        raise ValueError('blur must be 0 (off) or an odd int >= 1, got %r' % (blur,))
    kernel = np.ones((thickness, thickness), np.uint8)
    out = np.empty_like(gray)
    for i, g in enumerate(gray):
        if blur:
            g = cv2.GaussianBlur(g, (blur, blur), 0)
        edges = cv2.Canny(g, float(low), float(high))
        if thickness > 1:
            edges = cv2.dilate(edges, kernel)
        out[i] = 255 - edges
    return out[0] if single else out


def extract_dark(image, level=64):
    """The simplest baseline: ink wherever the gray picture is darker than ``level``.

    Good when the picture already contains black outlines (OpenMoji does), useless for
    lines drawn in color; the recipe above has to beat it to be worth its name.
    """
    gray, single = _as_gray_batch(image)
    out = np.where(gray < level, 0, 255).astype(np.uint8)
    return out[0] if single else out


# ------------------------------------------------------------------------------- scoring

def _disk(radius):
    """Structuring element of all offsets within Euclidean distance ``radius``."""
    r = int(np.floor(radius))
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return ((x * x + y * y) <= radius * radius).astype(np.uint8)


def _near(masks, tolerance):
    """Boolean (N,H,W): within ``tolerance`` px (Euclidean) of a True pixel of ``masks``."""
    if tolerance <= 0:
        return masks
    disk = _disk(tolerance)
    out = np.empty_like(masks)
    for i, m in enumerate(masks):
        out[i] = cv2.dilate(m.view(np.uint8), disk).view(bool)
    return out


def _counts(pred_ink, human_ink, human_near, tolerance):
    """Per-image counts (4, N): pred ink near human, pred ink, human ink near pred, human ink."""
    pred_near = _near(pred_ink, tolerance)
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    return np.stack([
        np.count_nonzero(flat(pred_ink & human_near), axis=1),
        np.count_nonzero(flat(pred_ink), axis=1),
        np.count_nonzero(flat(human_ink & pred_near), axis=1),
        np.count_nonzero(flat(human_ink), axis=1),
    ]).astype(np.int64)


def _prf(tp_p, n_p, tp_r, n_h):
    """Precision, recall, F1 from counts (arrays or scalars). Empty sets count as perfect:
    no predicted ink -> precision 1; no human ink -> recall 1; F1 = 0 when P + R = 0."""
    tp_p, n_p, tp_r, n_h = (np.asarray(a, np.float64) for a in (tp_p, n_p, tp_r, n_h))
    p = np.where(n_p > 0, tp_p / np.maximum(n_p, 1), 1.0)
    r = np.where(n_h > 0, tp_r / np.maximum(n_h, 1), 1.0)
    f = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    return p, r, f


def _summary(counts, per_image=False):
    tp_p, n_p, tp_r, n_h = counts.sum(axis=1)
    p, r, f = _prf(tp_p, n_p, tp_r, n_h)
    f_img = _prf(*counts)[2]
    out = {'precision': float(p), 'recall': float(r), 'f1': float(f),
           'f1_image_mean': float(f_img.mean()), 'n_images': int(counts.shape[1])}
    if per_image:
        out['f1_per_image'] = f_img
    return out


def score_lines(pred, human, tolerance=1, ink_threshold=128, per_image=False):
    """Compare extracted lines with human lines, ink pixel by ink pixel.

    Both are uint8 line images (H,W) or batches (N,H,W) of the same shape; a pixel is ink
    where its value is below ``ink_threshold``. With ``tolerance`` t (pixels, Euclidean):

    * precision = share of predicted ink pixels that have human ink within t;
    * recall    = share of human ink pixels that have predicted ink within t;
    * f1        = their harmonic mean.

    ``precision``, ``recall`` and ``f1`` pool the pixels of the whole batch (micro average:
    pictures with more ink weigh more); ``f1_image_mean`` averages each picture's own F1.
    An empty prediction has precision 1 (it drew nothing wrong), recall 0 and F1 0.
    Returns a dict with those keys and ``n_images`` (and, with ``per_image=True``,
    ``f1_per_image``: a float array of each picture's F1, to find the worst ones).
    """
    pred_b, _ = _as_line_batch(pred, 'pred')
    human_b, _ = _as_line_batch(human, 'human')
    if pred_b.shape != human_b.shape:
        raise ValueError('pred has shape %s but human has shape %s; they must match pixel '
                         'for pixel' % (np.shape(pred), np.shape(human)))
    if tolerance < 0:
        raise ValueError('tolerance must be >= 0 pixels, got %r' % (tolerance,))
    pred_ink, human_ink = pred_b < ink_threshold, human_b < ink_threshold
    counts = _counts(pred_ink, human_ink, _near(human_ink, tolerance), tolerance)
    return _summary(counts, per_image)


def disagreement(pred, human, tolerance=1, ink_threshold=128):
    """RGB picture (H,W,3) of where one extracted line image agrees with the human one.

    White = paper in both; black = ink in both (within ``tolerance``); orange
    (:data:`EXTRA_COLOR`) = extracted ink with no human ink nearby; blue
    (:data:`MISSED_COLOR`) = human ink the extraction missed.
    """
    pred_b, single = _as_line_batch(pred, 'pred')
    human_b, _ = _as_line_batch(human, 'human')
    if not single or pred_b.shape != human_b.shape:
        raise ValueError('disagreement draws one picture: pred and human must both be (H,W) '
                         'of the same shape, got %s and %s' % (np.shape(pred), np.shape(human)))
    pred_ink, human_ink = pred_b[0] < ink_threshold, human_b[0] < ink_threshold
    pred_near = _near(pred_ink[None], tolerance)[0]
    human_near = _near(human_ink[None], tolerance)[0]
    out = np.full(pred_ink.shape + (3,), 255, np.uint8)
    out[pred_ink & human_near] = MATCH_COLOR
    out[human_ink & pred_near & ~pred_ink] = MATCH_COLOR
    out[pred_ink & ~human_near] = EXTRA_COLOR
    out[human_ink & ~pred_near] = MISSED_COLOR
    return out


# -------------------------------------------------------------------------------- sweeps

def _unpack_pairs(pairs):
    if hasattr(pairs, 'colors') and hasattr(pairs, 'lines'):
        colors, lines = pairs.colors, pairs.lines
    elif isinstance(pairs, (tuple, list)) and len(pairs) == 2:
        colors, lines = pairs
    else:
        raise ValueError('pairs must have .colors (N,H,W,3) and .lines (N,H,W) (a Pairs) '
                         'or be a (colors, lines) tuple, got %r' % type(pairs).__name__)
    if not hasattr(colors, 'shape') or not hasattr(lines, 'shape'):
        colors, lines = np.asarray(colors), np.asarray(lines)
    if len(colors.shape) == 3 and colors.shape[2] == 3:      # one pair
        colors = np.asarray(colors)[None]
        lines = np.asarray(lines)[None] if len(lines.shape) == 2 else lines
    if len(colors.shape) != 4 or colors.shape[3] != 3 or tuple(lines.shape) != \
            tuple(colors.shape[:3]):
        raise ValueError('pairs.colors %s and pairs.lines %s do not align (need (N,H,W,3) and '
                         '(N,H,W))' % (tuple(colors.shape), tuple(lines.shape)))
    if len(colors) == 0:
        raise ValueError('pairs is empty: nothing to score')
    return colors, lines


def _chunk(colors, lines, s, size):
    """Pictures s..s+size as validated gray / line batches (decodes lazy arrays chunk-wise)."""
    gray, _ = _as_gray_batch(np.asarray(colors[s:s + size]), 'pairs.colors')
    human, _ = _as_line_batch(np.asarray(lines[s:s + size]), 'pairs.lines')
    return gray, human


def _sweep_grid(method, kernel_sizes, thresholds):
    """The checked (kernel sizes, thresholds) of a sweep, defaults filled in."""
    if method not in ('dilate', 'canny'):
        raise ValueError("method must be 'dilate' or 'canny', got %r" % (method,))
    if kernel_sizes is None:
        kernel_sizes = DEFAULT_KERNELS if method == 'dilate' else DEFAULT_CANNY_THICKNESS
    if thresholds is None:
        thresholds = DEFAULT_THRESHOLDS if method == 'dilate' else DEFAULT_CANNY_HIGH
    kernel_sizes = [_check_kernel(k) for k in kernel_sizes]
    if method == 'dilate':
        thresholds = [_check_threshold(t) for t in thresholds]
    else:
        thresholds = [tuple(t) if isinstance(t, (tuple, list)) else (int(t) // 2, int(t))
                      for t in thresholds]
    if not kernel_sizes or not thresholds:
        raise ValueError('sweep needs at least one kernel size and one threshold')
    return kernel_sizes, thresholds


def sweep(pairs, kernel_sizes=None, thresholds=None, method='dilate', tolerance=1,
          normalize=False, ink_threshold=128, chunk=64, progress=False):
    """Score every (kernel size, threshold) setting of one method against human lines.

    ``method='dilate'`` (the blog): ``kernel_sizes`` are dilation kernels and ``thresholds``
    edge strengths (see :func:`extract_lines`; ``None`` = no binarization, the scorer's
    ``ink_threshold`` decides). ``method='canny'``: ``kernel_sizes`` are the thickness
    (dilation of the 1-px edges) and each threshold ``t`` is Canny's ``high`` with
    ``low = t // 2`` (or give ``(low, high)`` tuples).

    ``pairs`` is a :class:`tutorial_lib.pairs.Pairs` (or ``(colors, lines)``). Returns a list
    of rows (dicts): method, kernel_size, threshold, normalize, tolerance, precision, recall,
    f1 (micro, pixel-pooled), f1_image_mean, n_images. The pictures are processed in chunks
    of ``chunk`` so memory stays small on the full split (lazy arrays from
    ``data.load_split`` are decoded one chunk at a time).
    """
    kernel_sizes, thresholds = _sweep_grid(method, kernel_sizes, thresholds)
    colors, human_all = _unpack_pairs(pairs)
    n = len(colors)
    settings = [(k, t) for k in kernel_sizes for t in thresholds]
    counts = np.zeros((len(settings), 4, n), np.int64)
    starts = range(0, n, chunk)
    if progress:
        starts = tqdm(starts, desc='sweep %s' % method, unit='chunk')
    for s in starts:
        g, h = _chunk(colors, human_all, s, chunk)
        human_ink = h < ink_threshold
        human_near = _near(human_ink, tolerance)
        i = 0
        for k in kernel_sizes:
            diff = _edge_strength(g, k) if method == 'dilate' else None
            for t in thresholds:
                if method == 'dilate':
                    pred = _finish(diff, t, normalize)
                else:
                    pred = extract_lines_canny(g, t[0], t[1], thickness=k)
                counts[i, :, s:s + len(g)] = _counts(pred < ink_threshold, human_ink,
                                                     human_near, tolerance)
                i += 1
    rows = []
    for (k, t), c in zip(settings, counts):
        row = {'method': method, 'kernel_size': k, 'threshold': t,
               'normalize': bool(normalize) if method == 'dilate' else None,
               'tolerance': tolerance}
        row.update(_summary(c))
        rows.append(row)
    return rows


def best(rows, key='f1'):
    """The row of a :func:`sweep` with the highest ``key`` (ties: the first one)."""
    rows = list(rows)
    if not rows:
        raise ValueError('best() got no rows; run sweep() first')
    return max(rows, key=lambda r: r[key])


def extract_with(row, image):
    """Run the extraction a sweep row describes (e.g. ``best(rows)``) on a picture/batch."""
    if row['method'] == 'canny':
        low, high = row['threshold']
        return extract_lines_canny(image, low, high, thickness=row['kernel_size'])
    return extract_lines(image, row['kernel_size'], row['threshold'],
                         bool(row.get('normalize')))


def grid(rows, key='f1'):
    """Rows of one sweep as a 2-D array for a heatmap: (kernel sizes, thresholds, values)."""
    ks = sorted({r['kernel_size'] for r in rows})
    ts = list(dict.fromkeys(r['threshold'] for r in rows))
    values = np.full((len(ks), len(ts)), np.nan)
    for r in rows:
        values[ks.index(r['kernel_size']), ts.index(r['threshold'])] = r[key]
    return ks, ts, values


def format_table(rows):
    """A plain-text table of sweep rows (what the CLI prints)."""
    head = '%-7s %6s %10s %5s %9s %7s %6s %8s' % (
        'method', 'kernel', 'threshold', 'tol', 'precision', 'recall', 'F1', 'F1/image')
    lines = [head, '-' * len(head)]
    for r in rows:
        t = r['threshold']
        t = 'none' if t is None else ('%d/%d' % t if isinstance(t, tuple) else str(t))
        if r.get('normalize'):
            t += '+norm'
        lines.append('%-7s %6d %10s %5g %9.3f %7.3f %6.3f %8.3f' % (
            r['method'], r['kernel_size'], t, r['tolerance'], r['precision'], r['recall'],
            r['f1'], r['f1_image_mean']))
    return '\n'.join(lines)


def describe(row):
    """One line naming a sweep row's setting and its scores."""
    if row['method'] == 'canny':
        setting = 'canny low/high=%d/%d thickness=%d' % (row['threshold'] + (row['kernel_size'],))
    else:
        setting = 'dilate kernel=%d threshold=%s%s' % (
            row['kernel_size'], row['threshold'], ' normalize' if row.get('normalize') else '')
    return '%s, tolerance %g px: F1 %.3f (P %.3f, R %.3f; mean per-image F1 %.3f; %d images)' % (
        setting, row['tolerance'], row['f1'], row['precision'], row['recall'],
        row['f1_image_mean'], row['n_images'])


if __name__ == '__main__':
    # `python -m tutorial_lib.lines` runs the command in lines_cli (which imports this module)
    import runpy
    runpy.run_module('tutorial_lib.lines_cli', run_name='__main__')
