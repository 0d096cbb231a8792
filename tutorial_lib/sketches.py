"""Real sketches, never trained on: how the colorizer does on other artists' line art (notebook 05).

The measure (:func:`measure`, ``python -m tutorial_lib.sketches measure``): on the held-out
pairs (:func:`sketch_cache.held_out`), PSNR of the network's colors at 0 and 10 hints
(sampled from the truth like the course's hints curve), next to the "line art on white"
baseline (the line image as RGB), and the mean CIE L* at *far paper* (pixels white in the
sketch and more than :data:`FAR` px from any ink) of the outputs, next to the same for the
true pictures. ``python -m tutorial_lib.sketches build`` / ``samples`` make the held-out set
(:mod:`tutorial_lib.sketch_rule`, :mod:`tutorial_lib.sketch_cache`).
"""
import argparse
import os
import sys

import cv2
import numpy as np

from . import evaluation
from . import hints as hints_mod
from . import metrics
from . import models
from .checkpoints import load_unet
from .colorize import DEFAULT_STAGE1, STAGE1_SIDE, Colorizer
from .images import resize
from .sketch_cache import build, held_out, make_samples
from .sketch_rule import CREDIT, DEFAULT_DIR, INK, PAPER, SAMPLES_DIR, Unavailable, rel

FAR = 3                    # px: paper this far from any ink counts as far paper


def far_paper(lines, far=FAR):
    """bool (N,H,W): paper in the sketch (>= PAPER) and more than ``far`` px from any ink."""
    lines = np.asarray(lines)
    out = np.zeros(lines.shape, bool)
    for i, line in enumerate(lines.reshape((-1,) + lines.shape[-2:])):
        not_ink = (line >= INK).astype(np.uint8)
        dist = cv2.distanceTransform(not_ink, cv2.DIST_L2, 5) if not_ink.min() == 0 else \
            np.full(line.shape, np.inf, np.float32)
        out.reshape((-1,) + lines.shape[-2:])[i] = (line >= PAPER) & (dist > far)
    return out


def lightness(images):
    """CIE L* (0 = black, 100 = white) of uint8 RGB pictures, float32 (...,H,W)."""
    images = np.asarray(images)
    flat = images.reshape((-1,) + images.shape[-3:])
    out = np.stack([cv2.cvtColor(im.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 0]
                    for im in flat]) if len(flat) else np.zeros((0,) + images.shape[-3:-1])
    return out.reshape(images.shape[:-1])


def paper_lightness(images, lines, far=FAR):
    """Mean L* of ``images`` (N,H,W,3) at the far-paper pixels of ``lines`` (N,H,W): the mean
    over pictures of each picture's mean (pictures without far paper are left out); NaN
    when no picture has any."""
    mask = far_paper(lines, far)
    light = lightness(images)
    per = [float(light[i][mask[i]].mean()) for i in range(len(mask)) if mask[i].any()]
    return float(np.mean(per)) if per else float('nan')


def _hinted_colors(stage1, stage2, lines, colors, n, seed):
    """Colors of ``lines`` with ``n`` hints sampled from ``colors`` (the curve's recipe)."""
    size = lines.shape[1]
    small = colors if size == STAGE1_SIDE else np.stack(
        [resize(c, (STAGE1_SIDE, STAGE1_SIDE)) for c in colors])
    rgb, mask = hints_mod.truth_hints(small, n, seed, radius=evaluation.CURVE_RADIUS)
    if stage2 is None and size == STAGE1_SIDE:
        extra = hints_mod.encode_batch(rgb, mask) if stage1.in_ch == 4 else None
        return models.colorize(stage1, lines, extra=extra), (rgb, mask)
    col = Colorizer(stage1, stage2)
    given = [(rgb[i], mask[i]) if stage1.in_ch == 4 else None for i in range(len(lines))]
    return np.stack([col.colorize(line, hints=h) for line, h in zip(lines, given)]), (rgb, mask)


def measure(stage1=None, stage2=None, hint_counts=(0, 10), size=128, limit=None, seed=0,
            source='auto', data_dir=None, outputs=False, label=None, baselines=False):
    """The real-sketch numbers as a dict (see the module docstring).

    ``stage1``: a U-Net or a checkpoint name/path (default: the Colorizer's stage 1);
    ``stage2``: None (stage 1 alone at ``size`` = 128 px, as the course's hints curve) or a
    stage-2 U-Net/name (the two-stage Colorizer, e.g. at ``size=256``). Hints: ``n`` disks
    of radius ``evaluation.CURVE_RADIUS`` at 128 px, colored from the truth
    (:func:`hints.truth_hints`, seed ``seed``). ``outputs=True`` also returns the pictures
    (keys pairs, drawings, outputs, hints, drawing_outputs) for :func:`viz.contact_sheet`.
    ``label``: how to name a stage 1 given as a network in the report. ``baselines=True``
    (a hint U-Net alone at 128 px): also the bucket fill, the network + fill hybrid and the
    ceiling of such hybrids (:mod:`evaluation`) with the same hints, key ``baselines``.
    """
    stage1 = stage1 if stage1 is not None else DEFAULT_STAGE1
    name1 = label or (stage1 if isinstance(stage1, (str, os.PathLike)) else
                      'a %s of width %g' % (type(stage1).__name__, stage1.width))
    name2 = stage2 if stage2 is None or isinstance(stage2, (str, os.PathLike)) \
        else type(stage2).__name__
    gen1 = load_unet(stage1) if isinstance(stage1, (str, os.PathLike)) else stage1
    gen2 = load_unet(stage2) if isinstance(stage2, (str, os.PathLike)) else stage2
    if gen1.in_ch != 4:
        hint_counts = [n for n in hint_counts if n == 0]
    pairs, drawings, where = held_out(size, limit, data_dir, source)
    lines, colors = np.asarray(pairs.lines), np.asarray(pairs.colors)
    line_rgb = np.repeat(lines[..., None], 3, axis=-1)

    def mean_psnr(images):
        return float(np.mean(np.minimum(metrics.psnr(images, colors), metrics.PSNR_CAP)))

    result = dict(source=where, credit=CREDIT, n_pairs=len(pairs), n_drawings=len(drawings[0]), size=size,
                  stage1=str(name1), stage2=None if name2 is None else str(name2),
                  baseline_psnr=mean_psnr(line_rgb), psnr={}, gain={}, paper_lightness={},
                  truth_paper_lightness=paper_lightness(colors, lines),
                  baseline_paper_lightness=paper_lightness(line_rgb, lines))
    outs, hint_sets = {}, {}
    for n in hint_counts:
        outs[n], hint_sets[n] = _hinted_colors(gen1, gen2, lines, colors, n, seed)
        result['psnr'][n] = mean_psnr(outs[n])
        result['gain'][n] = result['psnr'][n] - result['baseline_psnr']
        result['paper_lightness'][n] = paper_lightness(outs[n], lines)
    if baselines and gen1.in_ch == 4 and gen2 is None and size == STAGE1_SIDE:
        result['baselines'] = _baselines(gen1, lines, colors, hint_sets, mean_psnr)
    dl = drawings[1]
    drawing_out = _hinted_colors(gen1, gen2, dl, np.repeat(dl[..., None], 3, -1), 0, seed)[0] \
        if len(dl) else np.zeros(dl.shape + (3,), np.uint8)
    result['drawings_paper_lightness'] = paper_lightness(drawing_out, dl) if len(dl) \
        else float('nan')
    if outputs:
        result.update(pairs=pairs, drawings=drawings, outputs=outs, hints=hint_sets,
                      drawing_outputs=drawing_out)
    return result


def _baselines(gen, lines, colors, hint_sets, mean_psnr):
    """{method: {n: PSNR}} of the non-learned and bounding methods with the same hints."""
    methods = {'bucket fill': evaluation.fill_method,
               'network + fill': evaluation.hybrid_method(gen),
               'ceiling of hybrids*': evaluation.ceiling_method(gen, colors)}
    return {name: {n: mean_psnr(fn(lines, *hint_sets[n])) for n in hint_sets}
            for name, fn in methods.items()}


def format_measure(r):
    """The dict of :func:`measure` as a small text table."""
    lines = ['Real sketches (never trained on) - %s' % r['source'],
             'stage 1: %s%s; %d px; far paper = white in the sketch, > %d px from ink'
             % (r['stage1'], '' if r['stage2'] is None else ', stage 2: %s' % r['stage2'],
                r['size'], FAR),
             '%-30s %9s %9s %14s' % ('', 'PSNR dB', 'vs line', 'far-paper L*'),
             '%-30s %9.2f %9s %14.1f' % ('line art on white (baseline)', r['baseline_psnr'], '',
                                         r['baseline_paper_lightness'])]
    for n in r['psnr']:
        lines.append('%-30s %9.2f %+9.2f %14.1f' % ('network, %d hints' % n, r['psnr'][n],
                                                    r['gain'][n], r['paper_lightness'][n]))
    for name, psnr in r.get('baselines', {}).items():
        lines.extend('%-30s %9.2f %+9.2f' % ('%s, %d hints' % (name, n), v,
                                             v - r['baseline_psnr']) for n, v in psnr.items())
    lines.append('%-30s %9s %9s %14.1f' % ('true colored pictures', '', '',
                                           r['truth_paper_lightness']))
    if 'baselines' in r:
        lines.append('* reads the truth: per hinted region the best flat color or the network')
    if r['n_drawings']:
        lines.append('line drawings without truth (%d), network at 0 hints: far-paper L* %.1f'
                     % (r['n_drawings'], r['drawings_paper_lightness']))
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m tutorial_lib.sketches',
                                description='Real sketches from openclipart-svg: build the '
                                            'held-out set, measure a model on it.')
    sub = p.add_subparsers(dest='command', required=True)
    b = sub.add_parser('build', help='fetch openclipart-svg and build data/sketches')
    b.add_argument('--out', default=str(DEFAULT_DIR))
    b.add_argument('--limit', type=int, help='look at only the first N candidate SVGs')
    b.add_argument('--workers', type=int)
    m = sub.add_parser('measure', help='PSNR and paper lightness on the held-out pairs')
    m.add_argument('--stage1', default=None, help='stage-1 checkpoint name or path '
                                                  '(default: the Colorizer\'s)')
    m.add_argument('--stage2', default=None, help='also run this stage 2 (use --size 256)')
    m.add_argument('--hints', default='0,10', help='hint counts, comma-separated')
    m.add_argument('--limit', type=int, help='only the first N pairs and drawings')
    m.add_argument('--size', type=int, default=128)
    m.add_argument('--source', choices=['auto', 'cache', 'samples'], default='auto')
    m.add_argument('--baselines', action='store_true',
                   help='also the bucket fill, the network + fill hybrid and their ceiling')
    s = sub.add_parser('samples', help='copy a few cached ones into data/samples/real_sketches')
    s.add_argument('--pairs', type=int, default=8)
    s.add_argument('--drawings', type=int, default=4)
    args = p.parse_args(argv)
    if args.command == 'build':
        try:
            build(args.out, args.limit, args.workers)
        except Unavailable as e:
            print('Skipping the real sketches: %s' % e)
        return 0
    if args.command == 'samples':
        chosen = make_samples(n_pairs=args.pairs, n_drawings=args.drawings)
        print('wrote %d pairs and %d drawings to %s' % (len(chosen['pairs']),
                                                        len(chosen['drawings']), rel(SAMPLES_DIR)))
        return 0
    counts = [int(v) for v in args.hints.split(',') if v.strip()]
    try:
        r = measure(args.stage1, args.stage2, counts, args.size, args.limit,
                    source=args.source, baselines=args.baselines)
    except FileNotFoundError as e:
        print('error: %s' % e, file=sys.stderr)
        return 2
    print(format_measure(r))
    return 0


if __name__ == '__main__':
    sys.exit(main())
