"""The failure cases of the blog, each reproduced and measured as plain numbers (notebook 07).

Sections: 1 :func:`harsh_adboss`, 2 :func:`hint_spread`, 3 :func:`line_thickness`,
4 :func:`dense_hints` / :func:`noisy_hints`, 5 :func:`color_space_collapse`,
6 :func:`domain_gap`. From a terminal (writes ``build/failures.json``)::

    python -m tutorial_lib.failures                        # all six
    python -m tutorial_lib.failures harsh yuv --limit 64   # some, on the first 64 pictures
"""
import argparse
import math
import sys
import time

import cv2
import numpy as np

from . import REPO_ROOT
from . import atomic
from . import cli
from . import data
from . import evaluation
from . import lines as lines_mod
from . import metrics
from .checkpoints import checkpoints_dir, load_unet, read_manifest
from .data import CREDIT
from .hints import INK_THRESHOLD, Stroke, encode_batch, rasterize, truth_hints
from .models import colorize, decode_colors, encode_colors

SECTIONS = ('harsh', 'spread', 'thickness', 'dense', 'yuv', 'domain')
TITLES = {
    'harsh': '1. Ad-boss too harsh',
    'spread': '2. Hints + Ad-boss: a local hint changes far pixels',
    'thickness': '3. Line thickness mismatch',
    'dense': '4. Detailed hints that do not help',
    'yuv': '5. Color-space collapse (all green)',
    'domain': '6. Domain gap: human vs OpenCV-extracted lines',
}
ADV_MODELS = ('classroom_l2', 'classroom_adv', 'classroom_adv_harsh')
HINT_MODELS = {'L2 + hints': 'classroom_hints_blog', 'GAN + hints': 'classroom_adv_hints'}
DOMAIN_MODELS = {'human lines': 'classroom_l2', 'extracted lines': 'classroom_l2_extracted'}
THICKNESS_STEPS = (-2, -1, 0, 1, 2)
DENSE_COUNTS = (0, 10, 50, 100, 200, 400, 800)   # beyond ideepcolor's 100 (Zhang et al. 2017)
NOISE_SIGMAS = (0, 16, 32, 64)                   # hint color noise, uint8 units
NOISY_COUNT = 100
SHRINK_FACTORS = (1.0, 0.5, 0.25, 0.1, 0.0)      # how far an output collapsed toward 0
GREEN_HUES = (90, 150)                           # degrees: what we call green
SPREAD_DOT = 2       # px: the radius of the user's dot (at 128 px a fingertip-size dot)
PALETTE = ((230, 30, 30), (30, 160, 40), (40, 80, 230), (250, 220, 30), (200, 40, 200),
           (30, 200, 220))   # vivid hint colors; each dot takes the one most unlike the output


# --------------------------------------------------------------------------- helpers

def mean_psnr(outputs, colors):
    """Mean PSNR (dB), each picture capped at metrics.PSNR_CAP like evaluation.evaluate."""
    return float(np.mean(np.minimum(metrics.psnr(outputs, colors), metrics.PSNR_CAP)))


def checkpoint_entry(name):
    """The manifest entry of a shipped checkpoint, or None when it is not shipped."""
    entry = read_manifest().get('checkpoints', {}).get(name)
    if entry is None or not (checkpoints_dir() / name / 'gen.npz').exists():
        return None
    return entry


def load_models(names):
    """{label: checkpoint name} -> ({label: U-Net}, [names that are not shipped]).

    A missing model is not an error: the lead may still be training it."""
    gens, missing = {}, []
    for label, name in names.items():
        if checkpoint_entry(name) is None:
            missing.append(name)
        else:
            gens[label] = load_unet(name)
    return gens, missing


def adv_weight(name):
    """The adversarial weight a shipped checkpoint was trained with (manifest config)."""
    return float(checkpoint_entry(name)['config'].get('adv_weight', 0.0))


# ------------------------------------------------------------- 1. Ad-boss too harsh

def harsh_adboss(gens, pairs, weights, outputs=None):
    """``gens`` {label: U-Net}, ``weights`` {label: adv_weight} -> one row per model,
    sorted by weight: PSNR, line preservation (of the human ink, the share still dark),
    colorfulness ratio and hue variety. A too-harsh Ad-boss trades the first two for the
    last two. ``outputs`` {label: uint8 pictures}: the models' colorings of ``pairs``, if
    already made (they are not made again)."""
    rows = []
    for label, gen in gens.items():
        if outputs is not None and label in outputs:
            evaluation.check_test_pairs(pairs)
            o = np.asarray(outputs[label])
            m = metrics.summarize(metrics.scores(o, pairs), o, np.asarray(pairs.colors))
        else:
            m = evaluation.evaluate(gen, pairs)
        rows.append(dict(model=label, adv_weight=float(weights[label]), psnr=m['psnr'],
                         line_preservation=m['line_preservation'],
                         line_preservation_truth=m['line_preservation_truth'],
                         colorfulness_ratio=m['colorfulness_ratio'],
                         hue_entropy=m['hue_entropy'], n=m['n']))
    return sorted(rows, key=lambda r: r['adv_weight'])


def lost_lines_map(lines, picture):
    """Where a picture lost its lines: uint8 RGB, ink still dark in ``picture`` light gray,
    ink that turned light (luminance >= metrics.DARK) red, everything else white."""
    ink = np.asarray(lines) < INK_THRESHOLD
    lost = ink & (metrics.luminance(np.asarray(picture)[None])[0] >= metrics.DARK)
    out = np.full(ink.shape + (3,), 255, np.uint8)
    out[ink] = (190, 190, 190)
    out[lost] = (220, 30, 30)
    return out


# ------------------------------------------------- 2. one local hint, far-away change

def pick_spot(line, color, rng):
    """(x, y) of a pixel inside a colored region: paper in the line art (the dot must not
    sit on ink) and not white in the truth (a region a user would want to recolor)."""
    ok = (np.asarray(line) >= INK_THRESHOLD) & (metrics.luminance(color) < 230)
    ys, xs = np.nonzero(ok)
    if not len(ys):   # an all-white picture: the middle will do
        return line.shape[1] // 2, line.shape[0] // 2
    i = rng.randint(len(ys))
    return int(xs[i]), int(ys[i])


def farthest_color(rgb):
    """The PALETTE color most unlike ``rgb``: a hint that asks for a visible change."""
    d = [np.abs(np.subtract(c, rgb, dtype=np.float64)).sum() for c in PALETTE]
    return PALETTE[int(np.argmax(d))]


def region_of(line, x, y):
    """bool (H,W): the paper pixels connected to (x, y) without crossing ink -- the
    region a hint at (x, y) is meant to color."""
    paper = (np.asarray(line) >= INK_THRESHOLD).astype(np.uint8)
    _, labels = cv2.connectedComponents(paper, connectivity=4)
    return labels == labels[y, x] if paper[y, x] else np.zeros(paper.shape, bool)


def change_split(before, after, x, y, radius, region=None):
    """Mean |RGB change| (0..255, averaged over channels) of ``after`` vs ``before`` inside
    and outside a disk of ``radius`` around (x, y); with ``region`` also outside it.

    Returns dict(near, far[, outside_region])."""
    d = np.abs(np.asarray(after, np.float64) - np.asarray(before, np.float64)).mean(-1)
    yy, xx = np.mgrid[:d.shape[0], :d.shape[1]]
    near = (xx - x) ** 2 + (yy - y) ** 2 <= radius ** 2
    out = dict(near=float(d[near].mean()), far=float(d[~near].mean()) if (~near).any()
               else math.nan)
    if region is not None:
        out['outside_region'] = float(d[~region].mean()) if (~region).any() else math.nan
    return out


def one_hint_inputs(pairs, before, seed=0, dot=SPREAD_DOT):
    """For each picture one dot (hint rgb (N,H,W,3), mask (N,H,W), spots [(x, y)]): placed
    by :func:`pick_spot` with ``RandomState([seed, i])``, colored by
    :func:`farthest_color` from the no-hint output ``before`` at that spot."""
    lines, colors = np.asarray(pairs.lines), np.asarray(pairs.colors)
    rgbs, masks, spots = [], [], []
    for i, (line, color) in enumerate(zip(lines, colors)):
        x, y = pick_spot(line, color, np.random.RandomState([seed, i]))
        r, m = rasterize([Stroke([(x, y)], farthest_color(before[i, y, x]), dot)], line.shape)
        rgbs.append(r)
        masks.append(m)
        spots.append((x, y))
    return np.stack(rgbs), np.stack(masks), spots


def hint_spread(gen, pairs, radius=None, seed=0, dot=SPREAD_DOT, return_outputs=False):
    """How far one local hint reaches. For each picture: color it without hints, then
    with one dot (:func:`one_hint_inputs`), and average the per-pixel change near the dot
    (within ``radius``, default side/8 = 16 px at 128) and far from it; also outside the
    dot's line-bounded region. A well-behaved hint model changes its region and leaves
    the rest alone: ``far`` near 0. Returns dict(near, far, outside_region, far_ratio, n,
    radius) with the means over pictures (and the outputs on request)."""
    lines = np.asarray(pairs.lines)
    radius = radius or lines.shape[1] // 8
    before = colorize(gen, lines)
    rgb, mask, spots = one_hint_inputs(pairs, before, seed, dot)
    after = colorize(gen, lines, extra=encode_batch(rgb, mask))
    parts = [change_split(b, a, x, y, radius, region_of(l, x, y))
             for b, a, l, (x, y) in zip(before, after, lines, spots)]
    out = {k: float(np.nanmean([p[k] for p in parts])) for k in parts[0]}
    out.update(far_ratio=out['far'] / out['near'] if out['near'] > 0 else math.nan,
               n=len(parts), radius=int(radius))
    if return_outputs:
        out.update(before=before, after=after, hint_rgb=rgb, hint_mask=mask, spots=spots)
    return out


# ------------------------------------------------------------ 3. line thickness

def change_thickness(lines, k):
    """Strokes ``k`` px wider (k > 0: gray erosion of the paper, ink is dark) or narrower
    (k < 0: dilation), with a square (|k|+1) px pen: a straight stroke of width w becomes
    w + k wide (an odd |k| grows one side a pixel more; a stroke of width <= -k vanishes).
    At 128 px OpenMoji strokes are about 3.5 px, so k = -2..+2 spans "half as thick" to
    "twice as thick"."""
    lines = np.asarray(lines, np.uint8)
    if k == 0:
        return lines.copy()
    pen = np.ones((abs(k) + 1,) * 2, np.uint8)
    op = cv2.erode if k > 0 else cv2.dilate
    return np.stack([op(l, pen) for l in lines.reshape((-1,) + lines.shape[-2:])]
                    ).reshape(lines.shape)


def masked_psnr(outputs, colors, mask):
    """Mean over pictures of the PSNR (dB, capped) over the pixels where ``mask`` (N,H,W)."""
    d2 = (np.asarray(outputs, np.float64) - np.asarray(colors, np.float64)) ** 2
    vals = []
    for e, m in zip(d2, np.asarray(mask, bool)):
        mse = e[m].mean() if m.any() else math.nan
        vals.append(metrics.PSNR_CAP if mse == 0 else 10 * math.log10(255 ** 2 / mse))
    return float(np.nanmean(np.minimum(vals, metrics.PSNR_CAP)))


def line_thickness(gen, pairs, steps=THICKNESS_STEPS):
    """What the network makes of strokes ``k`` px wider/narrower than it learned. Per k:
    PSNR; PSNR on the paper pixels of both line versions (the fills alone: the input's own
    change does not count); lines kept = line preservation of the ORIGINAL ink (low = color
    bled over where the true lines are) and of the ink it was given; the ink share."""
    lines, colors = np.asarray(pairs.lines), np.asarray(pairs.colors)
    rows = []
    for k in steps:
        changed = change_thickness(lines, k)
        out = colorize(gen, changed)
        paper = (lines >= INK_THRESHOLD) & (changed >= INK_THRESHOLD)
        rows.append(dict(k=int(k), psnr=mean_psnr(out, colors),
                         psnr_fills=masked_psnr(out, colors, paper),
                         line_preservation=float(np.nanmean(
                             metrics.line_preservation(out, lines))),
                         line_preservation_input=float(np.nanmean(
                             metrics.line_preservation(out, changed))),
                         ink_share=float((changed < INK_THRESHOLD).mean())))
    return rows


# ------------------------------------------------------- 4. detailed / sloppy hints

def dense_hints(gen, pairs, counts=DENSE_COUNTS, seed=0, radius=evaluation.CURVE_RADIUS):
    """The hints curve (``evaluation.hints_curve``, dots of ``radius`` px) past 100 hints."""
    return evaluation.hints_curve(gen, pairs, counts=counts, seed=seed, radius=radius)


def noisy_hints(gen, pairs, n=NOISY_COUNT, sigmas=NOISE_SIGMAS, seed=0,
                radius=evaluation.CURVE_RADIUS):
    """PSNR with ``n`` truth hints (dots of ``radius`` px) whose colors carry Gaussian noise
    of ``sigma`` (uint8 units, per pixel and channel; the same positions for every sigma).
    A user's colors are never exact; a model that copies hints copies the error too."""
    colors = np.asarray(pairs.colors)
    rgb, mask = truth_hints(colors, n, seed, radius)
    noise = np.random.RandomState([seed, 1]).standard_normal(rgb.shape)
    rows = []
    for s in sigmas:
        noisy = np.clip(np.rint(rgb + s * noise), 0, 255).astype(np.uint8)
        out = colorize(gen, pairs.lines, extra=encode_batch(noisy, mask))
        rows.append(dict(sigma=float(s), hints=int(n), psnr=mean_psnr(out, colors),
                         hint_error_truth=evaluation.hint_error(out, rgb, mask)))
    return rows


# ------------------------------------------------------------ 5. all green

def yuv_zero_rgb():
    """RGB of a raw OpenCV YUV output of (0, 0, 0): what a collapsed PaintsChainer
    prediction decodes to (U = V = 0 is far below the neutral 128: green)."""
    return tuple(int(v) for v in cv2.cvtColor(np.zeros((1, 1, 3), np.uint8),
                                              cv2.COLOR_YUV2RGB)[0, 0])


def rgb_zero_rgb():
    """RGB of our network output (0, 0, 0) through models.decode_colors: mid gray."""
    return tuple(int(v) for v in decode_colors(np.zeros((1, 3, 1, 1), np.float32))[0, 0, 0])


def _yuv_to_rgb(yuv):
    n, h, w, _ = yuv.shape
    flat = np.clip(np.rint(yuv), 0, 255).astype(np.uint8).reshape(n * h, w, 3)
    return cv2.cvtColor(flat, cv2.COLOR_YUV2RGB).reshape(n, h, w, 3)


def shrink(colors, factor, space):
    """The pictures as a network output in ``space``, multiplied by ``factor`` (a
    prediction collapsing toward 0), decoded back to uint8 RGB.

    ``space``: 'yuv' (raw OpenCV YUV 0..255, as PaintsChainer), 'yuv_centered' (the same
    with 128 subtracted, so 0 = gray) or 'rgb' (ours: x/127.5 - 1)."""
    colors = np.asarray(colors, np.uint8)
    if space == 'rgb':
        return decode_colors(factor * encode_colors(colors))
    n, h, w, _ = colors.shape
    yuv = cv2.cvtColor(colors.reshape(n * h, w, 3), cv2.COLOR_RGB2YUV).reshape(
        n, h, w, 3).astype(np.float64)
    if space == 'yuv':
        return _yuv_to_rgb(factor * yuv)
    if space == 'yuv_centered':
        return _yuv_to_rgb(factor * (yuv - 128) + 128)
    raise ValueError("space must be 'yuv', 'yuv_centered' or 'rgb', got %r" % (space,))


def green_share(images):
    """Share of ALL pixels that are colored (metrics.hue_stats) with a green hue."""
    h = metrics.hue_stats(images)
    step = 360 / metrics.HUE_BINS
    lo, hi = int(GREEN_HUES[0] / step), int(GREEN_HUES[1] / step)
    return float(h['colored_fraction'] * np.sum(h['hist'][lo:hi]))


def color_space_collapse(gen, pairs, factors=SHRINK_FACTORS,
                         spaces=('yuv', 'yuv_centered', 'rgb')):
    """Take the model's own outputs, shrink them toward 0 in each color space, decode:
    green share, mean RGB and PSNR against the unshrunk output, per (space, factor)."""
    base = colorize(gen, np.asarray(pairs.lines))
    rows = []
    for space in spaces:
        for f in factors:
            img = shrink(base, f, space)
            rows.append(dict(space=space, factor=float(f), green_share=green_share(img),
                             mean_rgb=[float(v) for v in img.reshape(-1, 3).mean(0)],
                             psnr_vs_output=mean_psnr(img, base)))
    return dict(yuv_zero_rgb=yuv_zero_rgb(), rgb_zero_rgb=rgb_zero_rgb(),
                green_share_output=green_share(base),
                green_share_truth=green_share(np.asarray(pairs.colors)), rows=rows)


# ------------------------------------------------------------ 6. domain gap

def extraction_setting(size=128):
    """The OpenCV line extraction to test with: ``lines.best_setting`` for this size (the
    blog's dilate recipe at its best F1 against the human lines), i.e. the very lines
    ``classroom_l2_extracted`` trains on (``lines.extract_best``)."""
    kernel, threshold = lines_mod.best_setting(size)
    return dict(kernel_size=kernel, threshold=threshold, normalize=False,
                source='lines.best_setting(%d), as classroom_l2_extracted trains' % size)


def extracted_lines(colors, setting):
    return lines_mod.extract_lines(np.asarray(colors), setting['kernel_size'],
                                   setting['threshold'], setting['normalize'])


def domain_gap(gens, pairs, test_lines):
    """``gens`` {trained on: U-Net or None}, ``test_lines`` {line kind: uint8 (N,H,W)} ->
    {trained on: {line kind: PSNR dB, or None for a missing model}}."""
    colors = np.asarray(pairs.colors)
    return {label: {kind: None if gen is None else mean_psnr(colorize(gen, l), colors)
                    for kind, l in test_lines.items()}
            for label, gen in gens.items()}


# ------------------------------------------------------------ a figure's picture

def change_map(result, i):
    """|RGB change| of picture i of a :func:`hint_spread` result, as uint8 gray (bright =
    changed), with the radius drawn as a circle."""
    d = np.abs(result['after'][i].astype(np.int16) - result['before'][i]).mean(-1)
    img = cv2.cvtColor(np.clip(d * 4, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    cv2.circle(img, tuple(result['spots'][i]), result['radius'], (255, 60, 60), 1)
    return img


# ------------------------------------------------------------ the command line

def run_section(section, pairs, quick=False):
    """Load the models a section needs and measure it -> a JSON-ready dict."""
    if section == 'harsh':
        gens, missing = load_models({n: n for n in ADV_MODELS})
        return dict(rows=harsh_adboss(gens, pairs, {n: adv_weight(n) for n in gens}),
                    missing=missing)
    if section == 'spread':
        gens, missing = load_models(HINT_MODELS)
        return dict(models={k: hint_spread(g, pairs) for k, g in gens.items()},
                    missing=missing)
    if section == 'thickness':
        return dict(model='classroom_l2',
                    rows=line_thickness(load_unet('classroom_l2'), pairs))
    if section == 'dense':
        gen = load_unet(HINT_MODELS['L2 + hints'])
        counts = (0, 10, 100, 400) if quick else DENSE_COUNTS
        return dict(model=HINT_MODELS['L2 + hints'], curve=dense_hints(gen, pairs, counts),
                    noisy=noisy_hints(gen, pairs, sigmas=(0, 32, 64) if quick
                                      else NOISE_SIGMAS))
    if section == 'yuv':
        return dict(model='classroom_l2', **color_space_collapse(
            load_unet('classroom_l2'), pairs))
    if section == 'domain':
        gens, missing = load_models(DOMAIN_MODELS)
        setting = extraction_setting(pairs.lines.shape[1])
        kinds = {'human lines': np.asarray(pairs.lines),
                 'extracted lines': extracted_lines(pairs.colors, setting)}
        table = domain_gap({k: gens.get(k) for k in DOMAIN_MODELS}, pairs, kinds)
        return dict(table=table, extraction=setting, missing=missing)
    raise ValueError('unknown section %r; known: %s' % (section, ', '.join(SECTIONS)))


def _fmt(v, f='%.2f'):
    return '-' if v is None or (isinstance(v, float) and math.isnan(v)) else f % v


def _missing(res):
    return ('  (not shipped, skipped: %s)' % ', '.join(res['missing'])) if res.get('missing') \
        else ''


def describe(section, res):
    """The lines the CLI prints for one section."""
    out = [TITLES[section]]
    if section == 'harsh':
        for r in res['rows']:
            out.append('  %-20s adv_weight %-5g PSNR %s dB  lines kept %s (truth %s)  '
                       'color ratio %s' % (r['model'], r['adv_weight'], _fmt(r['psnr']),
                                           _fmt(r['line_preservation'], '%.3f'),
                                           _fmt(r['line_preservation_truth'], '%.3f'),
                                           _fmt(r['colorfulness_ratio'])))
    elif section == 'spread':
        for label, r in res['models'].items():
            out.append('  %-12s (%s) mean |change| near the dot (r<=%d px) %s, far %s, '
                       'outside its region %s; far/near %s' % (
                           label, HINT_MODELS[label], r['radius'], _fmt(r['near']),
                           _fmt(r['far']), _fmt(r['outside_region']),
                           _fmt(r['far_ratio'], '%.3f')))
    elif section == 'thickness':
        for r in res['rows']:
            out.append('  stroke width %+d px: PSNR %s dB (fills only %s), true lines kept %s, '
                       'given lines kept %s, ink share %s'
                       % (r['k'], _fmt(r['psnr']), _fmt(r['psnr_fills']),
                          _fmt(r['line_preservation'], '%.3f'),
                          _fmt(r['line_preservation_input'], '%.3f'),
                          _fmt(r['ink_share'], '%.3f')))
    elif section == 'dense':
        out.append('  ' + '  '.join('%d: %s' % (r['hints'], _fmt(r['psnr']))
                                    for r in res['curve']) + '  (hints: PSNR dB)')
        out.append('  %d noisy hints, ' % res['noisy'][0]['hints'] + '  '.join(
            'sigma %g: %s' % (r['sigma'], _fmt(r['psnr'])) for r in res['noisy']) + ' dB')
    elif section == 'yuv':
        out.append('  raw YUV (0,0,0) -> RGB %s; our RGB output 0 -> RGB %s'
                   % (res['yuv_zero_rgb'], res['rgb_zero_rgb']))
        for r in res['rows']:
            if r['factor'] in (1.0, 0.25, 0.0):
                out.append('  %-12s x%-4g green share %s' % (r['space'], r['factor'],
                                                              _fmt(r['green_share'], '%.3f')))
    elif section == 'domain':
        out.append('  extraction: kernel %s threshold %s (%s)' % (
            res['extraction']['kernel_size'], res['extraction']['threshold'],
            res['extraction']['source']))
        for label, row in res['table'].items():
            out.append('  trained on %-16s' % label + '  '.join(
                'tested on %s: %s' % (k, _fmt(v) if v is not None else 'missing')
                for k, v in row.items()))
    return '\n'.join(out) + _missing(res)


def plain(x):
    """numpy -> Python, NaN -> None: strict JSON."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if math.isnan(x) or math.isinf(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


@cli.command
def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m tutorial_lib.failures',
                                description='Measure the failure cases of notebook 07.')
    p.add_argument('sections', nargs='*', metavar='section',
                   help='any of: %s, or their numbers 1-6 (default: all)' % ', '.join(SECTIONS))
    p.add_argument('--limit', type=int, default=None, help='first N TEST pictures')
    p.add_argument('--size', type=int, default=128, help='picture side (default 128)')
    p.add_argument('--out', default=None, help='JSON file (default build/failures.json)')
    args = p.parse_args(argv)
    sections = [SECTIONS[int(s) - 1] if s in ('1', '2', '3', '4', '5', '6') else s
                for s in args.sections] or list(SECTIONS)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        p.error('unknown section(s) %s; choose from %s' % (', '.join(unknown),
                                                          ', '.join(SECTIONS)))
    pairs, words = data.pictures('test', args.size, args.limit)
    print(words)
    report = dict(data=words, n=len(pairs), size=args.size, credit=CREDIT,
                  command='python -m tutorial_lib.failures ' + ' '.join(argv if argv is not None
                                                                         else sys.argv[1:]))
    for section in sections:
        t = time.time()
        res = run_section(section, pairs)
        res['seconds'] = round(time.time() - t, 1)
        print(describe(section, res))
        report[section] = res
    out = args.out or str(REPO_ROOT / 'build' / 'failures.json')
    atomic.write_json(out, plain(report), allow_nan=False)
    print('wrote', out)
    print(CREDIT)
    return 0


if __name__ == '__main__':
    sys.exit(main())
