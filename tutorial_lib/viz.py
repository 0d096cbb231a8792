"""Small matplotlib helpers shared by the notebooks: image grids with captions and credits."""
import numpy as np

from . import hints as hints_mod
from . import lines as lines_mod
from .metrics import HUE_BINS, SKIN_HUES, hue_stats
from .models import colorize


def _as_displayable(img):
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[2] not in (1, 3):
        img = img.transpose(1, 2, 0)  # CHW -> HWC
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    return img


def add_credit(fig, credit):
    """The data credit line, small and gray, at the bottom of a figure (wrapped to its width)."""
    import textwrap
    # about 0.58 em per character of DejaVu Sans at 7 pt, with a margin on both sides
    chars = max(20, int(fig.get_figwidth() * 72 * 0.9 / (7 * 0.58)))
    return fig.text(0.5, 0.005, textwrap.fill(credit, chars), ha='center', va='bottom',
                    fontsize=7, color='0.35')


def busiest_window(line, side):
    """(rows, cols) slices of the ``side`` x ``side`` window of a line drawing (uint8, 255 =
    paper) with the most ink, on a grid of side/4 steps: where a zoom shows content."""
    ink = (np.asarray(line) < 128).astype(np.float64)
    h, w = ink.shape[:2]
    side = min(side, h, w)
    step = max(1, side // 4)
    best, where = -1.0, (0, 0)
    for y in range(0, h - side + 1, step):
        for x in range(0, w - side + 1, step):
            count = ink[y:y + side, x:x + side].sum()
            if count > best:
                best, where = count, (y, x)
    y, x = where
    return slice(y, y + side), slice(x, x + side)


def short_title(title, width=14):
    """A title that fits a small grid cell: words wrapped, a long hexcode such as
    1F9DC-1F3FB-200D-2642-FE0F on two or three lines, cut at its dashes."""
    title = str(title)
    if ' ' in title or '\n' in title:
        import textwrap
        return '\n'.join(textwrap.fill(p, width) for p in title.split('\n'))
    lines, line = [], ''
    for part in title.split('-'):
        if line and len(line) + 1 + len(part) > width:
            lines.append(line + '-')
            line = part
        else:
            line = part if not line else line + '-' + part
    return '\n'.join(lines + [line])


def finish_figure(fig, title=None, credit=None):
    """Title on top, credit line at the bottom (room kept for it), tight layout."""
    if title:
        fig.suptitle(title)
    bottom = 0
    if credit:
        text = add_credit(fig, credit)
        height = text.get_window_extent(fig.canvas.get_renderer()).height
        bottom = min(0.3, (height + 4) / fig.bbox.height)
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, 'set') and 'rect' in engine.get():
        engine.set(rect=(0, bottom, 1, 1 - bottom))   # constrained layout: room for the credit
    else:
        fig.tight_layout(rect=(0, bottom, 1, 1))
    return fig


def show_grid(images, titles=None, ncols=6, size=2.0, credit=None, suptitle=None):
    """Show uint8 images (gray HxW or RGB HxWx3) in a grid; returns the figure."""
    import matplotlib.pyplot as plt
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if credit else 0)),
                             squeeze=False, layout='constrained')
    for i, ax in enumerate(axes.flat):
        ax.axis('off')
        if i >= n:
            continue
        img = _as_displayable(images[i])
        ax.imshow(img, cmap='gray' if img.ndim == 2 else None, vmin=0, vmax=255)
        if titles is not None:
            # long ZWJ-sequence hexcodes would run into the neighbouring titles: wrap them
            ax.set_title(short_title(titles[i], max(12, int(size * 14))), fontsize=8)
    return finish_figure(fig, suptitle, credit)


def show_pairs(pairs, n=8, credit=None, size=1.6):
    """Line art above, color below, for the first n pairs of a pairs.Pairs."""
    n = min(n, len(pairs))
    images = [pairs.lines[i] for i in range(n)] + [pairs.colors[i] for i in range(n)]
    titles = [pairs.names[i] for i in range(n)] + [''] * n
    return show_grid(images, titles, ncols=n, size=size, credit=credit)


# ideepcolor (Zhang et al. 2017, "Real-Time User-Guided Image Colorization with Learned
# Deep Priors"), PSNR on ImageNet vs the number of hint points sampled from the truth.
ZHANG_2017 = {0: 24.4, 1: 25.4, 10: 28.4, 100: 31.1, 500: 32.1}
ZHANG_2017_CREDIT = 'reference: Zhang et al. 2017 (ideepcolor), ImageNet'


def plot_hints_curve(curves, ax=None, reference=True, key='psnr', title=None, bounds=(),
                     skip=(), legend_below=False, legend=True):
    """Draw PSNR (or ``key``) vs number of hints for ``{label: rows}``, with ideepcolor's
    ImageNet curve (Zhang et al. 2017) as a dashed reference. ``bounds``: labels of curves
    that are limits rather than methods (e.g. ``evaluation.ceiling_method``), drawn dotted.
    ``skip``: labels not drawn; every curve keeps its color whatever is skipped, so that
    two panels of the same ``curves`` match. ``legend_below``: the legend under the axes;
    ``legend=False``: none (e.g. one ``fig.legend`` shared by several panels)."""
    import matplotlib.pyplot as plt
    if isinstance(curves, list):
        curves = {'ours': curves}
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for k, (label, rows) in enumerate(curves.items()):
        if label in skip:
            continue
        style = dict(ls=':', lw=2, color='k') if label in bounds else \
            dict(marker='o', color='C%d' % (k % 10))
        ax.plot([r['hints'] for r in rows], [r[key] for r in rows], label=label, **style)
    if reference and key == 'psnr':
        xs = sorted(ZHANG_2017)
        ax.plot(xs, [ZHANG_2017[x] for x in xs], 's--', color='0.5', label=ZHANG_2017_CREDIT)
    ax.set_xscale('symlog', linthresh=1)
    ticks = sorted({r['hints'] for rows in curves.values() for r in rows}
                   | (set(ZHANG_2017) if reference and key == 'psnr' else set()))
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlabel('number of hints (sampled from the true picture)')
    ax.set_ylabel({'psnr': 'PSNR (dB)', 'hint_error': 'hint error (mean |RGB diff|)',
                   'ssim': 'SSIM'}.get(key, key))
    ax.grid(alpha=0.3)
    if legend and legend_below:
        ax.legend(fontsize=8, loc='upper center', bbox_to_anchor=(0.5, -0.18), ncol=2)
    elif legend:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_hue_histograms(sets, axes=None, title=None):
    """Hue histograms (see :func:`hue_stats`) of several picture sets, one row each, e.g.
    ``{'ground truth': test.colors, 'U-Net + L2': outputs}``. Each bar is drawn in its hue;
    the first set (the truth) is repeated as a black outline in every other row, and the
    skin/brown band is shaded. Returns the axes."""
    import colorsys
    import matplotlib.pyplot as plt
    n = len(sets)
    if axes is None:
        fig, axes = plt.subplots(n, 1, figsize=(10, 1.25 * n + 0.9), sharex=True,
                                 squeeze=False, layout='constrained')
        axes = axes[:, 0]
    step = 360.0 / HUE_BINS
    centers = np.arange(HUE_BINS) * step + step / 2
    colors = [colorsys.hsv_to_rgb(c / 360.0, 0.75, 0.9) for c in centers]
    stats = {label: hue_stats(images) for label, images in sets.items()}
    top = max(float(np.max(h['hist'])) for h in stats.values()) * 1.15
    reference = None
    for ax, (label, h) in zip(axes, stats.items()):
        ax.axvspan(SKIN_HUES[0], SKIN_HUES[1], color='0.9', zorder=-1)
        ax.bar(centers, h['hist'], width=step * 0.9, color=colors, edgecolor='0.3',
               linewidth=0.4)
        if reference is not None:
            ax.stairs(reference[1]['hist'], np.arange(HUE_BINS + 1) * step, color='k',
                      linewidth=1.0, label=reference[0])
            ax.legend(loc='upper right', fontsize=8, frameon=False)
        else:
            reference = (label + ' (outline)', h)
        ax.set_ylim(0, top)
        ax.set_title('%s: %.2f hue bits, skin share %.2f' % (label, h['hue_entropy'],
                                                              h['skin_share']),
                     loc='left', fontsize=9)
        ax.set_ylabel('share', fontsize=8)
        ax.tick_params(labelsize=8)
    axes[-1].set_xlim(0, 360)
    axes[-1].set_xticks(range(0, 361, 40))
    axes[-1].set_xlabel('hue (degrees) of the colored pixels; gray band: skin / brown '
                        '(%d-%d deg)' % SKIN_HUES)
    if title:
        axes[0].figure.suptitle(title)
    return axes


def plot_log(log, title=None, axes=None):
    """Plot a LogReport log (list of dicts; ``checkpoints.read_log`` of a run folder): the
    U-Net's losses on the left, the Ad-boss's loss and accuracy on the right (when there
    is one)."""
    adv = any('dis/loss' in e for e in log)
    if axes is None:
        import matplotlib.pyplot as plt
        # constrained layout keeps the twin axes' labels apart (tight_layout does not)
        fig, axes = plt.subplots(1, 2 if adv else 1, figsize=(10.5 if adv else 5.5, 3.4),
                                 squeeze=False, layout='constrained')
        axes = axes[0]
    else:
        fig = axes[0].figure
    it = [e['iteration'] for e in log]

    def series(key):
        return [e.get(key, np.nan) for e in log]

    axes[0].plot(it, series('gen/loss_rec'), label='reconstruction (gen/loss_rec)')
    axes[0].set_yscale('log')
    axes[0].set_xlabel('iteration')
    axes[0].set_ylabel('reconstruction loss (log scale)')
    axes[0].set_title('U-Net')
    if adv:
        ax2 = axes[0].twinx()
        ax2.plot(it, series('gen/loss_adv'), color='C3', alpha=0.8,
                 label='adversarial (gen/loss_adv)')
        ax2.set_ylabel('adversarial CE (unweighted)', color='C3')
        _twin_legend(axes[0], ax2)
        _plot_adboss(axes[1], it, series)
    else:
        axes[0].legend(loc='upper right', fontsize=8)
    if title:
        fig.suptitle(title)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    return fig


def _twin_legend(ax, other):
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = other.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc='upper right', fontsize=8)


def _plot_adboss(ax, it, series):
    ax.plot(it, series('dis/loss'), color='C2', label='Ad-boss loss (dis/loss)')
    ax.axhline(2 * np.log(2), color='0.6', ls='--', lw=1, label='2 ln 2: cannot tell')
    ax.set_xlabel('iteration')
    ax.set_ylabel('CE real + CE fake')
    ax3 = ax.twinx()
    ax3.plot(it, series('dis/acc'), color='C4', alpha=0.6, label='Ad-boss accuracy')
    ax3.set_ylim(0, 1.05)
    ax3.set_ylabel('accuracy', color='C4')
    _twin_legend(ax, ax3)
    ax.set_title('Ad-boss')


def preview_grid(gen, pairs):
    """uint8 RGB image: line art row, U-Net output row, ground-truth row.

    Pairs that carry an ``extra`` array (float32 (N,C,H,W): hint channels, or a second
    stage's upsampled first-stage colors) feed it to the U-Net next to the line."""
    out = colorize(gen, pairs.lines, extra=getattr(pairs, 'extra', None))
    lines = np.repeat(pairs.lines[..., None], 3, axis=3)
    rows = [np.concatenate(list(r), axis=1) for r in (lines, out, pairs.colors)]
    return np.concatenate(rows, axis=0)


def show_comparison(gens, pairs, credit=None, title=None, cell=1.3):
    """One figure: line art, then one row per model (dict label -> U-Net), then the truth."""
    import matplotlib.pyplot as plt
    rows = [('line art', np.repeat(np.asarray(pairs.lines)[..., None], 3, axis=3))]
    rows += [(label, colorize(g, np.asarray(pairs.lines))) for label, g in gens.items()]
    rows.append(('ground truth', np.asarray(pairs.colors)))
    n = len(pairs.lines)
    fig, axes = plt.subplots(len(rows), 1, figsize=(cell * n + 1.5, cell * len(rows) + 0.6),
                             squeeze=False, layout='constrained')
    for ax, (label, imgs) in zip(axes[:, 0], rows):
        ax.imshow(np.concatenate(list(imgs), axis=1))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(short_title(label, 14), rotation=0, ha='right', va='center',
                      fontsize=9)
    return finish_figure(fig, title, credit)


# ---------------------------------------------------------------- line extraction (notebook 01)

def _setting_label(t):
    """A sweep threshold as a tick label (none, 64, 50/100)."""
    if t is None:
        return 'none'
    return '%d/%d' % tuple(t) if isinstance(t, tuple) else str(t)


def plot_sweep(rows, key='f1', ax=None, title=None):
    """Heatmap of one :func:`lines.sweep` (kernel size x threshold), each cell labelled, best boxed."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    ks, ts, values = lines_mod.grid(rows, key)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 + 0.8 * len(ts), 0.9 + 0.4 * len(ks)),
                             layout='constrained')
    lo, hi = np.nanmin(values), np.nanmax(values)
    im = ax.imshow(values, cmap='viridis', vmin=lo, vmax=max(hi, lo + 1e-6), aspect='auto')
    for i in range(len(ks)):
        for j in range(len(ts)):
            v = values[i, j]
            ax.text(j, i, '%.3f' % v, ha='center', va='center', fontsize=7,
                    color='black' if v > lo + 0.6 * (hi - lo) else 'white')
    bi, bj = np.unravel_index(np.nanargmax(values), values.shape)
    ax.add_patch(Rectangle((bj - 0.5, bi - 0.5), 1, 1, fill=False, ec='red', lw=2))
    canny = rows[0]['method'] == 'canny'
    ax.set_xticks(range(len(ts)), [_setting_label(t) for t in ts])
    ax.set_yticks(range(len(ks)), [str(k) for k in ks])
    ax.set_xlabel('Canny low/high' if canny else 'threshold (edge strength)')
    ax.set_ylabel('edge thickness' if canny else 'kernel size')
    ax.set_title(title or '%s %s (tolerance %g px)' % (rows[0]['method'], key,
                                                      rows[0]['tolerance']), fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.05)
    return ax


def show_line_comparison(colors, human, preds, tolerance=1, titles=None, credit=None,
                         size=2.2, crop=None):
    """One row per picture: color | human lines | each prediction | its disagreement map.

    ``preds`` is a list of line batches (one per method) aligned with ``colors``/``human``;
    ``titles`` names them. ``crop`` = (y0, y1, x0, x1) zooms every panel. Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    colors, human = np.asarray(colors), np.asarray(human)
    if colors.ndim == 3:
        colors, human = colors[None], human[None]
        preds = [np.asarray(p)[None] for p in preds]
    titles = titles or ['extracted %d' % (i + 1) for i in range(len(preds))]
    ncols = 2 + 2 * len(preds)
    fig, axes = plt.subplots(len(colors), ncols, figsize=(size * ncols, size * len(colors)
                                                          + (0.5 if credit else 0.2)),
                             squeeze=False)
    cut = (lambda a: a) if crop is None else (lambda a: a[crop[0]:crop[1], crop[2]:crop[3]])
    for r in range(len(colors)):
        panels = [(colors[r], 'color'), (human[r], 'human lines')]
        for p, t in zip(preds, titles):
            s = lines_mod.score_lines(p[r], human[r], tolerance)
            panels += [(p[r], t), (lines_mod.disagreement(p[r], human[r], tolerance),
                                   '%s vs human: F1 %.2f' % (t.split(',')[0], s['f1']))]
        for ax, (img, t) in zip(axes[r], panels):
            ax.imshow(cut(img), cmap='gray', vmin=0, vmax=255, interpolation='nearest')
            ax.set_title(t, fontsize=8)
            ax.axis('off')
    handles = [Patch(color=np.array(c) / 255, label=l) for c, l in (
        (lines_mod.MATCH_COLOR, 'both'), (lines_mod.EXTRA_COLOR, 'extracted only'),
        (lines_mod.MISSED_COLOR, 'human only'))]
    height = fig.get_figheight()
    fig.legend(handles=handles, loc='upper center', fontsize=7, ncol=3, frameon=False)
    if credit:
        add_credit(fig, credit)
    fig.tight_layout(rect=(0, 0.25 / height if credit else 0, 1, 1 - 0.3 / height))
    return fig


def show_rows(rows, labels, credit=None, title=None, cell=1.3):
    """Rows of uint8 pictures (each a list/array of (H,W) or (H,W,3)) stacked as strips,
    one labelled strip per row."""
    import matplotlib.pyplot as plt
    n = max(len(r) for r in rows)
    # constrained layout makes room for the row labels (tight_layout cannot, next to
    # pictures of fixed aspect)
    fig, axes = plt.subplots(len(rows), 1, figsize=(cell * n + 1.8, cell * len(rows) + 0.6),
                             squeeze=False, layout='constrained')
    for ax, r, label in zip(axes[:, 0], rows, labels):
        r = [np.repeat(np.asarray(p)[..., None], 3, 2) if np.ndim(p) == 2 else p for p in r]
        ax.imshow(np.concatenate(r, axis=1))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha='right', va='center', fontsize=8)
    return finish_figure(fig, title, credit)


def plot_xy(series, xlabel, ylabel, ax=None, title=None, xticklabels=None, min_span=None):
    """Line plot of {label: (xs, ys)}. ``xticklabels``: names for the x values of the
    first series (e.g. adversarial weights 0, 0.01, 1 drawn evenly spaced); ``min_span``:
    show at least this y range, so a flat curve looks flat and not like noise."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.4))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, 'o-', label=label)
    if xticklabels is not None:
        ax.set_xticks(list(next(iter(series.values()))[0]))
        ax.set_xticklabels([str(t) for t in xticklabels])
    if min_span:
        lo, hi = ax.get_ylim()
        if hi - lo < min_span:
            mid = (lo + hi) / 2
            ax.set_ylim(mid - min_span / 2, mid + min_span / 2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


# ---------------------------------------------------------------- real sketches (notebook 05)

def contact_sheet(result, n=6, hints=None, size=1.9):
    """Rows of held-out pairs: sketch | 0 hints | the hints | n hints | truth (a figure).

    ``result``: :func:`sketches.measure` with ``outputs=True``; ``hints``: which hint count
    to show (default the largest measured).
    """
    pairs, outs = result['pairs'], result['outputs']
    k = hints if hints is not None else max(outs)
    rgb, mask = result['hints'][k]
    images, titles = [], []
    for i in range(min(n, len(pairs))):
        line = pairs.lines[i]
        dots = hints_mod.overlay(line, *hints_mod.resize_hints(rgb[i], mask[i], line.shape)) \
            if k else line
        images += [line, outs[min(outs)][i], dots, outs[k][i], pairs.colors[i]]
        titles += [pairs.names[i].split('__')[-1], '%d hints' % min(outs),
                   'the %d hints' % k, '%d hints' % k, 'truth']
    return show_grid(images, titles, ncols=5, size=size, credit=result['credit'],
                     suptitle='Held-out real sketches (%d px)' % result['size'])


def drawings_sheet(result, n=8, size=1.9):
    """Line drawings without a colored truth: sketch | colored with no hints, 4 per row."""
    names, lines = result['drawings']
    out = result['drawing_outputs']
    images, titles = [], []
    for i in range(min(n, len(names))):
        images += [lines[i], out[i]]
        titles += [names[i].split('__')[-1], 'no hints']
    return show_grid(images, titles, ncols=4, size=size, credit=result['credit'],
                     suptitle='Held-out line drawings, colored without hints')


def draw_unet(rows, ax=None):
    """Draw the U: encoder going down on the left, decoder coming up on the right,
    skip connections as arrows across. ``rows`` = :func:`shape_table`'s output."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 4.6), layout='constrained')
    enc = [r for r in rows if r['name'].startswith('c')]
    dec = [r for r in rows if r['name'].startswith('dc')]
    pos = {}
    size0 = enc[0]['input'][1]
    import math

    def level(r):  # encoder boxes sit at their output size, decoder boxes at their input
        side = r['output'][1] if r['name'].startswith('c') else r['input'][1]
        return int(round(math.log2(size0 / side)))
    for i, r in enumerate(enc):
        pos[r['name']] = (i, -level(r))
    n = len(enc)
    for j, r in enumerate(dec):
        pos[r['name']] = (n + j, -level(r))
    for r in rows:
        x, y = pos[r['name']]
        color = '#8fb8de' if r['name'].startswith('c') else (
            '#f4a582' if r['kind'] == 'deconv' else '#fddbc7')
        ax.add_patch(plt.Rectangle((x - 0.4, y - 0.3), 0.8, 0.6, color=color, ec='k'))
        ax.text(x, y + 0.08, r['name'], ha='center', va='center', fontsize=9,
                fontweight='bold')
        c, hh, ww = r['output']
        ax.text(x, y - 0.14, '%d\u00d7%d\u00b2' % (c, hh), ha='center',
                va='center', fontsize=6)
    order = [r['name'] for r in rows]
    for a, b in zip(order[:-1], order[1:]):
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.annotate('', xy=(x1 - 0.4, y1), xytext=(x0 + 0.4, y0),
                    arrowprops=dict(arrowstyle='->', color='0.3'))
    enc_of = {'e' + r['name'][1:]: r['name'] for r in enc}
    for r in dec:
        if r['skip']:
            src = enc_of[r['skip']]
            (x0, y0), (x1, y1) = pos[src], pos[r['name']]
            # every arc rises the same 0.45 above its boxes (an arc3 curve peaks at
            # rad * distance / 2), so the long ones stay below the title
            rad = -0.9 / max(1.0, abs(x1 - x0))
            ax.annotate('', xy=(x1, y1 + 0.3), xytext=(x0, y0 + 0.3),
                        arrowprops=dict(arrowstyle='->', color='#b2182b', lw=1.3,
                                        connectionstyle='arc3,rad=%g' % rad))
    ax.text(-0.6, 1.0, 'skip connections (concat) in red', color='#b2182b', fontsize=9)
    ax.set_xlim(-1, len(rows))
    ax.set_ylim(-level(enc[-1]) - 0.6, 1.3)
    ax.set_axis_off()
    ax.set_title('The blog\'s U-Net: encoder c0..c8 (blue), decoder dc8..dc0 '
                 '(orange = 4x4 stride-2 deconvolution)')
    return ax
