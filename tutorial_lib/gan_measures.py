"""What notebook 03 measures to tell "color appears" from "the lines dissolve": hue distance,
color inside the drawing, color on the paper, lines kept."""
import numpy as np

from . import metrics
from .evaluation import check_test_pairs
from .hints import INK_THRESHOLD, PAPER_LEVEL
from .models import colorize


def hue_distance(outputs, truth):
    """Total-variation distance between the pooled hue histograms (0..1)."""
    p = metrics.hue_stats(outputs)['hist']
    q = metrics.hue_stats(truth)['hist']
    if p.sum() == 0 or q.sum() == 0:
        return 1.0
    return float(0.5 * np.abs(p - q).sum())


def _chroma(images):
    a = np.asarray(images).astype(np.int16)
    return a.max(-1) - a.min(-1)


def fill_chroma(images, truth, lines):
    """(mean chroma inside the drawing, fraction of paper pixels with chroma >= 40)."""
    truth = np.asarray(truth)
    paper = (truth >= PAPER_LEVEL).all(-1)   # the hints' rule for paper
    inside = ~paper & (np.asarray(lines) >= INK_THRESHOLD)
    chroma = _chroma(images)
    return float(chroma[inside].mean()), float((chroma[paper] >= metrics.MIN_CHROMA).mean())


def measure(gen, pairs, outputs=None):
    """The lesson's numbers for one U-Net on TEST pairs; ``outputs``: its pictures, if
    already computed. Keys: hue_distance, fill_chroma, paper_speckle, lines_kept and
    fill_chroma_truth, lines_kept_truth.

    PSNR and SSIM punish any color that is not the true one, and colorfulness also counts
    colored speckle on the paper. These say what the eye sees: :func:`hue_distance` (total
    variation between the pooled hue histograms, 0 = the same mix of hues, 1 = none in
    common); :func:`fill_chroma` (mean chroma max - min of RGB where the truth is neither
    paper nor ink, and apart from it the share of the paper that got color); lines kept
    (:func:`metrics.line_preservation`: the share of ink pixels still dark).
    """
    check_test_pairs(pairs)
    lines, truth = np.asarray(pairs.lines), np.asarray(pairs.colors)
    if outputs is None:
        outputs = colorize(gen, lines)
    chroma, speckle = fill_chroma(outputs, truth, lines)
    return dict(hue_distance=hue_distance(outputs, truth), fill_chroma=chroma,
                paper_speckle=speckle,
                lines_kept=float(np.nanmean(metrics.line_preservation(outputs, lines))),
                fill_chroma_truth=fill_chroma(truth, truth, lines)[0],
                lines_kept_truth=float(np.nanmean(metrics.line_preservation(truth, lines))))


def format_table(results):
    """{name: measure(...)} -> a text table."""
    head = '%-26s %9s %11s %13s %10s' % ('', 'hue dist.', 'fill chroma', 'paper speckle',
                                           'lines kept')
    rows = [head]
    for name, m in results.items():
        rows.append('%-26s %9.2f %11.1f %12.1f%% %10.3f' % (
            name, m['hue_distance'], m['fill_chroma'], 100 * m['paper_speckle'],
            m['lines_kept']))
    m = next(iter(results.values()))
    rows.append('%-26s %9.2f %11.1f %12.1f%% %10.3f' % (
        'ground truth', 0.0, m['fill_chroma_truth'], 0.0, m['lines_kept_truth']))
    return '\n'.join(rows)
