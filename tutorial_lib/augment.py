"""Line styles the training pictures never had: augmentations for other artists' line art.

Notebook 05 ("Real sketches") trains with them so that thinner, gray or denser drawings
than OpenMoji's still color well (:func:`restyle`).
"""
import dataclasses

import cv2
import numpy as np

from .images import resize
from .lines import extract_best


@dataclasses.dataclass
class LineStyles:
    """Probabilities of each change (independent draws, per picture). :data:`STAGE2`:
    only the changes that keep a picture's geometry (its stage-1 colors stay valid)."""
    p_width: float = 0.3
    p_faint: float = 0.25
    p_blur: float = 0.2
    p_extracted: float = 0.15
    p_mosaic: float = 0.2
    p_zoom: float = 0.1


# the changes by kind, for switching one kind off (notebook 05's ablation)
GROUPS = {'strokes': ('p_width', 'p_faint', 'p_blur'), 'extracted': ('p_extracted',),
          'scale': ('p_mosaic', 'p_zoom')}


def without(groups, styles=None):
    """``styles`` (default :class:`LineStyles`) with the changes of ``groups`` (names in
    :data:`GROUPS`) switched off."""
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError('unknown line-style groups %s; known: %s'
                         % (sorted(unknown), ', '.join(GROUPS)))
    off = {f: 0.0 for g in groups for f in GROUPS[g]}
    return dataclasses.replace(styles or LineStyles(), **off)


def _half(image):
    h, w = image.shape[:2]
    return resize(image, (h // 2, w // 2))


def mosaic(images, i):
    """Pictures i..i+3 (cyclic) of a batch at half size, tiled 2 x 2 (same size as one)."""
    n = len(images)
    a, b, c, d = (_half(images[(i + k) % n]) for k in range(4))
    return np.concatenate([np.concatenate([a, b], 1), np.concatenate([c, d], 1)], 0)


def zoom(image, scale):
    """The middle 1/scale of a picture enlarged back to its size (bicubic for colors and
    lines alike; lines are re-thresholded by the caller's blur/faint steps, or not)."""
    h, w = image.shape[:2]
    ch, cw = int(round(h / scale)), int(round(w / scale))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return resize(image[y0:y0 + ch, x0:x0 + cw], (h, w))


def restyle(lines, colors, rng, styles=None):
    """Augment a batch: uint8 lines (N,H,W), colors (N,H,W,3) -> new (lines, colors).

    Per picture and at random (:class:`LineStyles` gives the chances), its line art changes
    (the colors stay the truth):

    * stroke width: ink eroded fatter or dilated thinner by one pixel;
    * darkness: ink lightened to a gray (pencil);
    * anti-aliasing: a slight blur;
    * OpenCV-extracted lines (the blog's own data) instead of the drawn layer;
    * scale: four pictures at half size tiled 2 x 2 (denser detail, as in a busy drawing),
      or the middle of a picture enlarged (sparser, fatter).

    Deterministic given ``rng`` (a numpy RandomState): a resumed run draws the same.
    Stroke widths and blur are for 128 px pictures and scale with the pictures' height.
    """
    s = styles or LineStyles()
    lines, colors = np.array(lines, np.uint8), np.array(colors, np.uint8)
    scale = max(1.0, lines.shape[1] / 128)
    k = np.ones((int(round(2 * scale)),) * 2, np.uint8)
    blur = 2 * int(round(scale)) + 1
    src_lines, src_colors = lines.copy(), colors.copy()
    for i in range(len(lines)):
        u = rng.random_sample(6)
        if u[0] < s.p_mosaic and len(lines) >= 4:
            lines[i], colors[i] = mosaic(src_lines, i), mosaic(src_colors, i)
        elif u[1] < s.p_zoom:
            z = rng.uniform(1.3, 2.0)
            lines[i], colors[i] = zoom(src_lines[i], z), zoom(src_colors[i], z)
        if u[2] < s.p_extracted:
            lines[i] = extract_best(colors[i])
        if u[3] < s.p_width:
            lines[i] = cv2.erode(lines[i], k) if rng.random_sample() < 0.5 \
                else cv2.dilate(lines[i], k)
        if u[4] < s.p_faint:
            ink = 255 - lines[i].astype(np.float32)
            lines[i] = np.rint(255 - ink * rng.uniform(0.55, 0.9)).astype(np.uint8)
        if u[5] < s.p_blur:
            lines[i] = cv2.GaussianBlur(lines[i], (blur, blur), scale * rng.uniform(0.5, 1.0))
    return lines, colors


STAGE2 = LineStyles(p_extracted=0, p_mosaic=0, p_zoom=0)
