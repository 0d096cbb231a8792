"""The 512 px second stage: its network (:class:`Stage2UNET`), its input (the 512 px line
plus the stage-1 colors upsampled, for training and for the Colorizer alike) and the cached
stage-1 colors it trains on. Notebook 05 teaches it.

A second U-Net (config ``classroom_stage2``) reads the 512 px line plus the stage-1 colors,
computed at 128 px and upsampled to 512 px (bicubic): 4 channels. It learns to redraw sharp
colors along the fine lines that a 128 px picture cannot hold. In training the color
channels come from the frozen stage 1 most of the time and from the true picture, shrunk to
128 px and blown up again, the rest of the time (``p_truth``, PaintsChainer's recipe): the
network cannot simply trust its color input. It trains on random crops of the 512 px
pictures (it is fully convolutional); the stage-1 colors are computed on the whole picture,
upsampled, then cropped with the same window as the line and the truth.
"""
import hashlib
import os

import numpy as np

from . import REPO_ROOT
from . import atomic
from . import hints as hints_mod
from .images import resize
from .models import UNET, colorize, encode_colors, encode_lines


class Stage2UNET(UNET):
    """The blog's U-Net as a residual second stage: output = its color input (channels
    1..3, the upsampled stage-1 colors) + the U-Net's correction.

    The last layer (dc0) starts at zero, so an untrained stage 2 returns its input
    unchanged, and every training step can only learn a correction. Saved with
    ``residual: true`` in the weights' meta; :func:`checkpoints.load_unet` rebuilds
    this class.
    """
    save_meta = {'residual': True, 'stage': 2}

    def __init__(self, in_ch=4, width=1.0, out_ch=3, zero_init=True):
        super().__init__(in_ch=in_ch, width=width, out_ch=out_ch)
        if zero_init:
            self.dc0.W.array[...] = 0
            self.dc0.b.array[...] = 0

    def forward(self, x):
        return super().forward(x) + x[:, 1:4]


def encode_stage2(line, up):
    """The stage-2 network input of one picture: line uint8 (H,W) and upsampled stage-1
    colors uint8 (H,W,3) -> float32 (4,H,W) in [-1, 1]."""
    return np.concatenate([encode_lines(line), encode_colors(up)], axis=1)[0]


def stage2_input(line, low):
    """What stage 2 reads for line art uint8 (H,W) at its size and the stage-1 colors
    uint8 (h,w,3) of the same picture: float32 (4,H,W) (the colors upsampled bicubic)."""
    line = np.asarray(line)
    return encode_stage2(line, resize(np.asarray(low), line.shape[:2]))


def assemble_stage2(lines, colors, stage1, rng, crop=None, p_truth=0.2, flip=True):
    """One stage-2 training batch (numpy, CPU).

    ``lines`` uint8 (N,H,W), ``colors`` uint8 (N,H,W,3) at the stage-2 size; ``stage1``
    uint8 (N,h,w,3): the frozen stage-1 colors of the whole pictures at the small size.
    For each picture: with probability ``p_truth`` the color input is the truth shrunk to
    (h,w) (area) instead of the stage-1 output; either is upsampled to (H,W) (bicubic),
    then line, color input and truth are cropped with one random ``crop`` x ``crop``
    window and mirrored together (``flip``). Everything is drawn from ``rng``.

    Returns ``(x float32 (N,4,c,c), t float32 (N,3,c,c), used_truth bool (N,))``.
    """
    n = len(lines)
    xs, ts, used = [], [], np.zeros(n, bool)
    for i in range(n):
        line, color, low = np.asarray(lines[i]), np.asarray(colors[i]), np.asarray(stage1[i])
        h, w = line.shape
        used[i] = rng.random_sample() < p_truth
        if used[i]:
            low = resize(color, low.shape[:2])
        up = resize(low, (h, w))
        c = crop or h
        cw = crop or w
        if c > h or cw > w:
            raise ValueError('crop %d is larger than the pictures (%dx%d)' % (c, h, w))
        y0 = rng.randint(0, h - c + 1)
        x0 = rng.randint(0, w - cw + 1)
        win = (slice(y0, y0 + c), slice(x0, x0 + cw))
        line, up, color = line[win], up[win], color[win]
        if flip and rng.random_sample() < 0.5:
            line, up, color = line[:, ::-1], up[:, ::-1], color[:, ::-1]
        xs.append(encode_stage2(line, up))   # cropped first: a quarter of the encoding work
        ts.append(encode_colors(color)[0])
    return np.stack(xs), np.stack(ts), used


def stage1_colors(gen, lines, colors=None, hint_cfg=None, seed=0, batch_size=32,
                  progress=False):
    """Run a frozen stage 1 on uint8 lines (N,h,w) -> uint8 colors (N,h,w,3).

    For a hint U-Net with ``colors`` given, picture i gets hints simulated from its true
    colors with ``RandomState([seed, i])`` and ``hint_cfg`` (default: the recipe stage 1
    was trained with, from its weights' meta); without ``colors`` it runs without hints.
    """
    lines = np.asarray(lines)
    out = np.zeros(lines.shape + (3,), np.uint8)
    cfg = hint_cfg or hints_mod.recipe(getattr(gen, 'hint_recipe', None) or 'sparse')
    steps = range(0, len(lines), batch_size)
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc='stage 1', leave=False)
    for s in steps:
        sl = slice(s, s + batch_size)
        extra = None
        if getattr(gen, 'in_ch', 1) == 4 and colors is not None:
            extra = np.stack([hints_mod.encode(*hints_mod.simulate(
                np.asarray(colors[i]), np.random.RandomState([seed, i]), cfg, lines[i]))
                for i in range(s, min(s + batch_size, len(lines)))])
        out[sl] = colorize(gen, lines[sl], extra=extra)
    return out


def _atomic_save_npy(path, array):
    with atomic.atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            np.save(f, array)


def cached_stage1_colors(gen, weights_path, lines, colors, seed=0, cache_dir=None,
                         progress=True):
    """:func:`stage1_colors` of the frozen stage 1 ``gen`` for a training set, computed
    once and kept on disk.

    The cache file is keyed by the stage-1 weights (the file ``weights_path`` ``gen`` was
    loaded from), the pictures and the seed, and written atomically (a killed run never
    leaves half a file).
    """
    lines = np.asarray(lines)
    h = hashlib.sha256()
    with open(weights_path, 'rb') as f:
        h.update(f.read())
    h.update(np.ascontiguousarray(lines).tobytes())
    h.update(str(seed).encode())
    cache_dir = cache_dir or str(REPO_ROOT / 'runs' / 'stage2_cache')
    path = os.path.join(cache_dir, 'stage1_%s.npy' % h.hexdigest()[:16])
    if os.path.exists(path):
        out = np.load(path)
        if out.shape == lines.shape + (3,):
            return out
    out = stage1_colors(gen, lines, colors, seed=seed, progress=progress)
    _atomic_save_npy(path, out)
    return out


if __name__ == '__main__':
    # `python -m tutorial_lib.stage2` runs the command in stage2_cli (which imports this module)
    import runpy
    runpy.run_module('tutorial_lib.stage2_cli', run_name='__main__')
