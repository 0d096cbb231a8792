"""Tests of tutorial_lib.lines: the blog's OpenCV recipe, Canny, and scoring against human lines."""
import importlib

import cv2
import numpy as np
import pytest

from tutorial_lib import REPO_ROOT, lines, lines_cli, viz


def synthetic(size=96, outline=2, seed=0):
    """A flat-colored picture with black outlines drawn by cv2, and its 'human' line layer.

    Returns (color uint8 (H,W,3), human lines uint8 (H,W), flat-area mask (H,W) bool).
    """
    color = np.full((size, size, 3), 255, np.uint8)
    human = np.full((size, size), 255, np.uint8)
    shapes = [('circle', (30, 34), 18, (220, 60, 40)),
              ('rect', (52, 50), (86, 84), (60, 160, 230))]
    for kind, a, b, rgb in shapes:
        if kind == 'circle':
            cv2.circle(color, a, b, rgb, -1)
            cv2.circle(color, a, b, (0, 0, 0), outline)
            cv2.circle(human, a, b, 0, outline)
        else:
            cv2.rectangle(color, a, b, rgb, -1)
            cv2.rectangle(color, a, b, (0, 0, 0), outline)
            cv2.rectangle(human, a, b, 0, outline)
    # flat areas: farther than 6 px from any human ink
    dist = cv2.distanceTransform((human > 0).astype(np.uint8), cv2.DIST_L2, 5)
    return color, human, dist > 6


# ------------------------------------------------------------------------ shapes and types

def test_single_rgb_and_gray_give_the_same_lines():
    color, _, _ = synthetic()
    a = lines.extract_lines(color)
    b = lines.extract_lines(lines.to_gray(color))
    assert a.shape == color.shape[:2] and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_batch_matches_single_images():
    imgs = np.stack([synthetic(seed=i)[0] for i in range(3)])
    imgs[1] = imgs[1, ::-1]  # make them differ
    out = lines.extract_lines(imgs, kernel_size=5, threshold=40)
    assert out.shape == imgs.shape[:3] and out.dtype == np.uint8
    for i in range(3):
        np.testing.assert_array_equal(out[i], lines.extract_lines(imgs[i], 5, 40))
    gray = lines.to_gray(imgs)
    assert gray.shape == imgs.shape[:3]
    np.testing.assert_array_equal(lines.extract_lines(gray, 5, 40), out)


def test_default_call_keeps_the_minimal_meaning():
    """extract_lines(image, kernel_size) is what the data module calls: 255 - |dilate - gray|."""
    color, _, _ = synthetic()
    gray = cv2.cvtColor(color, cv2.COLOR_RGB2GRAY)
    for k in (3, 5):
        expected = 255 - cv2.absdiff(cv2.dilate(gray, np.ones((k, k), np.uint8)), gray)
        np.testing.assert_array_equal(lines.extract_lines(color, kernel_size=k), expected)
        np.testing.assert_array_equal(lines.extract_lines(color, k), expected)


def test_recipe_steps_are_consistent():
    color, _, _ = synthetic()
    st = lines.recipe_steps(color, 3)
    assert set(st) == {'gray', 'dilated', 'diff', 'lines'}
    assert (st['dilated'] >= st['gray']).all()          # dilation only brightens
    np.testing.assert_array_equal(st['lines'], lines.extract_lines(color, 3))


# -------------------------------------------------------------------- what the recipe does

def test_ink_on_edges_and_paper_in_flat_areas():
    color, human, flat = synthetic()
    out = lines.extract_lines(color, kernel_size=3, threshold=32)
    assert set(np.unique(out)) <= {0, 255}
    assert (out[flat] == 255).all(), 'flat areas must stay white paper'
    ink = out < 128
    # nearly every extracted ink pixel lies on or next to a drawn outline
    near_outline = cv2.dilate((human < 128).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert ink.sum() > 100
    assert (ink & near_outline).sum() / ink.sum() > 0.95


def test_kernel_size_one_is_blank_paper():
    color, _, _ = synthetic()
    assert (lines.extract_lines(color, kernel_size=1) == 255).all()


def test_thicker_kernel_gives_thicker_lines():
    color, _, _ = synthetic(outline=1)
    counts = [(lines.extract_lines(color, k, threshold=32) == 0).sum() for k in (2, 3, 5, 7, 9)]
    assert all(a < b for a, b in zip(counts, counts[1:])), counts


def test_threshold_and_normalize():
    color, _, _ = synthetic()
    faint = (255 - (255 - color.astype(np.int32)) // 8).astype(np.uint8)  # low-contrast copy
    soft = lines.extract_lines(faint, 3)
    assert soft.min() > 200                                  # very pale lines
    stretched = lines.extract_lines(faint, 3, normalize=True)
    assert stretched.min() == 0                              # strongest edge is black again
    # lower threshold = more ink
    n = [(lines.extract_lines(color, 3, threshold=t) == 0).sum() for t in (200, 100, 20)]
    assert n[0] <= n[1] <= n[2] and n[0] < n[2]


def test_canny_variant():
    color, human, flat = synthetic()
    thin = lines.extract_lines_canny(color, 50, 150)
    thick = lines.extract_lines_canny(color, 50, 150, thickness=3)
    assert thin.shape == color.shape[:2] and thin.dtype == np.uint8
    assert set(np.unique(thin)) <= {0, 255}
    assert (thin[flat] == 255).all()
    assert (thick == 0).sum() > (thin == 0).sum() > 50
    batch = lines.extract_lines_canny(np.stack([color, color]), 50, 150)
    np.testing.assert_array_equal(batch[1], thin)
    assert lines.score_lines(thick, human, tolerance=2)['f1'] > 0.5


# --------------------------------------------------------------------------------- scoring

def test_score_perfect_and_empty():
    _, human, _ = synthetic()
    s = lines.score_lines(human, human, tolerance=0)
    assert s['precision'] == s['recall'] == s['f1'] == s['f1_image_mean'] == 1.0
    empty = np.full_like(human, 255)
    s = lines.score_lines(empty, human)
    assert s['f1'] == 0.0 and s['recall'] == 0.0 and s['precision'] == 1.0
    all_ink = np.zeros_like(human)
    s = lines.score_lines(all_ink, human)
    assert s['recall'] == 1.0 and s['precision'] < 0.2
    # nothing to draw and nothing drawn is perfect
    assert lines.score_lines(empty, empty)['f1'] == 1.0


def test_one_pixel_shift_needs_tolerance():
    human = np.full((40, 40), 255, np.uint8)
    human[10:30, 20] = 0                   # a vertical 1-px line
    shifted = np.roll(human, 1, axis=1)
    assert lines.score_lines(shifted, human, tolerance=1)['f1'] == 1.0
    assert lines.score_lines(shifted, human, tolerance=0)['f1'] == 0.0
    two = np.roll(human, 2, axis=1)
    assert lines.score_lines(two, human, tolerance=1)['f1'] == 0.0
    assert lines.score_lines(two, human, tolerance=2)['f1'] == 1.0


def test_score_batch_micro_and_per_image():
    _, human, _ = synthetic()
    empty = np.full_like(human, 255)
    pred = np.stack([human, empty])
    ref = np.stack([human, human])
    s = lines.score_lines(pred, ref, tolerance=0)
    assert s['n_images'] == 2
    assert s['f1_image_mean'] == pytest.approx(0.5)          # (1 + 0) / 2
    assert s['precision'] == 1.0 and s['recall'] == pytest.approx(0.5)
    assert s['f1'] == pytest.approx(2 / 3)                   # pooled pixels


def test_disagreement_colors():
    human = np.full((20, 20), 255, np.uint8)
    human[5, 2:18] = 0
    pred = np.full_like(human, 255)
    pred[5, 2:10] = 0                       # half the line
    pred[15, 2:5] = 0                       # and a stray stroke
    d = lines.disagreement(pred, human, tolerance=1)
    assert d.shape == (20, 20, 3) and d.dtype == np.uint8
    assert tuple(d[5, 3]) == lines.MATCH_COLOR
    assert tuple(d[5, 15]) == lines.MISSED_COLOR
    assert tuple(d[15, 3]) == lines.EXTRA_COLOR
    assert tuple(d[0, 0]) == (255, 255, 255)


# -------------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize('bad, words', [
    (np.zeros((8, 8, 3), np.float32), 'float32'),
    (np.zeros((8, 8, 4), np.uint8), 'RGBA'),
    (np.zeros((0, 8, 3), np.uint8), 'empty'),
    (np.zeros((2, 8, 8, 4), np.uint8), 'accepted'),
    (np.zeros((8,), np.uint8), 'accepted'),
    (np.zeros((8, 8), bool), 'bool'),
])
def test_bad_images_raise_helpful_errors(bad, words):
    with pytest.raises(ValueError, match=words) as err:
        lines.extract_lines(bad)
    assert 'uint8' in str(err.value) or 'RGBA' in str(err.value) or 'empty' in str(err.value)
    with pytest.raises(ValueError):
        lines.extract_lines_canny(bad)


def test_float_error_tells_how_to_convert():
    with pytest.raises(ValueError, match=r'astype\(np.uint8\)'):
        lines.extract_lines(np.ones((8, 8, 3)))


@pytest.mark.parametrize('kwargs', [{'kernel_size': 0}, {'kernel_size': 2.5},
                                    {'threshold': 0}, {'threshold': 300}])
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        lines.extract_lines(np.zeros((8, 8), np.uint8), **kwargs)


def test_score_rejects_mismatch_and_color():
    a = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match='match'):
        lines.score_lines(a, np.zeros((8, 9), np.uint8))
    with pytest.raises(ValueError, match='gray line image'):
        lines.score_lines(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match='tolerance'):
        lines.score_lines(a, a, tolerance=-1)


# ---------------------------------------------------------------------------------- sweep

def _synthetic_pairs(n=3):
    items = [synthetic(outline=1 + i % 3) for i in range(n)]
    return np.stack([c for c, _, _ in items]), np.stack([h for _, h, _ in items])


def test_sweep_rows_and_best():
    colors, human = _synthetic_pairs()
    rows = lines.sweep((colors, human), kernel_sizes=(2, 3, 5), thresholds=(None, 32, 128),
                       tolerance=1)
    assert len(rows) == 9
    for r in rows:
        assert {'method', 'kernel_size', 'threshold', 'precision', 'recall', 'f1',
                'f1_image_mean', 'n_images'} <= set(r)
        assert r['n_images'] == 3
    top = lines.best(rows)
    assert top['f1'] == max(r['f1'] for r in rows)
    # the row's numbers are exactly score_lines of the setting it names
    again = lines.score_lines(lines.extract_with(top, colors), human, tolerance=1)
    assert again['f1'] == pytest.approx(top['f1'])
    ks, ts, values = lines.grid(rows)
    assert ks == [2, 3, 5] and ts == [None, 32, 128] and values.shape == (3, 3)
    assert 'F1' in lines.format_table(rows)
    # chunking does not change the result
    rows2 = lines.sweep((colors, human), (2, 3, 5), (None, 32, 128), chunk=2)
    assert [r['f1'] for r in rows2] == [r['f1'] for r in rows]


def test_sweep_canny():
    colors, human = _synthetic_pairs()
    rows = lines.sweep((colors, human), kernel_sizes=(1, 3), thresholds=(100, (20, 60)),
                       method='canny', tolerance=1)
    assert [r['threshold'] for r in rows] == [(50, 100), (20, 60)] * 2
    top = lines.best(rows)
    again = lines.score_lines(lines.extract_with(top, colors), human, tolerance=1)
    assert again['f1'] == pytest.approx(top['f1'])


def test_sweep_bad_arguments():
    colors, human = _synthetic_pairs(1)
    with pytest.raises(ValueError, match='method'):
        lines.sweep((colors, human), method='sobel')
    with pytest.raises(ValueError, match='align'):
        lines.sweep((colors, human[:, :-1]))
    with pytest.raises(ValueError, match='no rows'):
        lines.best([])


# ------------------------------------------------------------- real samples (if committed)

def _samples():
    if not (REPO_ROOT / 'data' / 'samples').is_dir() or \
            not any((REPO_ROOT / 'data' / 'samples').iterdir()):
        pytest.skip('no committed samples in data/samples')
    data = importlib.import_module('tutorial_lib.data')
    if not hasattr(data, 'load_samples'):
        pytest.skip('tutorial_lib.data.load_samples not available')
    return data.load_samples()


def test_best_dilate_setting_beats_trivial_baselines_on_samples():
    pairs = _samples()
    rows = lines.sweep(pairs, kernel_sizes=(2, 3, 5, 7), thresholds=(32, 64, 128), tolerance=1)
    top = lines.best(rows)
    human = pairs.lines
    no_ink = lines.score_lines(np.full_like(human, 255), human, tolerance=1)['f1']
    all_ink = lines.score_lines(np.zeros_like(human), human, tolerance=1)['f1']
    # a non-trivial baseline too: ink wherever the color picture is dark
    dark = np.where(lines.to_gray(pairs.colors) < 128, 0, 255).astype(np.uint8)
    dark_f1 = lines.score_lines(dark, human, tolerance=1)['f1']
    assert top['f1'] > max(no_ink, all_ink) + 0.2, (top, no_ink, all_ink)
    assert top['f1'] > 0.5, top
    print('best on samples:', lines.describe(top), '| dark-pixel baseline F1 %.3f' % dark_f1)


def test_cli_on_samples(capsys):
    _samples()
    assert lines_cli.main(['sweep', '--samples', '--method', 'dilate', '--kernels', '3,5',
                           '--thresholds', '64']) == 0
    out = capsys.readouterr().out
    assert 'BEST: dilate kernel=' in out and 'F1' in out


def test_per_image_scores_and_dark_baseline():
    color, human, _ = synthetic()
    s = lines.score_lines(np.stack([human, np.full_like(human, 255)]), np.stack([human, human]),
                          tolerance=0, per_image=True)
    np.testing.assert_allclose(s['f1_per_image'], [1.0, 0.0])
    dark = lines.extract_dark(color, level=64)
    assert set(np.unique(dark)) <= {0, 255}
    np.testing.assert_array_equal(dark == 0, lines.to_gray(color) < 64)
    assert lines.score_lines(dark, human, tolerance=1)['f1'] > 0.9  # outlines are black here


def test_figures_draw(monkeypatch):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    colors, human = _synthetic_pairs(2)
    rows = lines.sweep((colors, human), (2, 3), (32, 64))
    ax = viz.plot_sweep(rows)
    assert ax.get_ylabel() == 'kernel size'
    fig = viz.show_line_comparison(colors, human, [lines.extract_with(lines.best(rows), colors)],
                                   titles=['best'], credit='credit line', crop=(0, 48, 0, 48))
    assert len(fig.axes) == 2 * 4
    plt.close('all')


class _LazyStack:
    """Array-like that only supports what pairs.LazyImages does: shape, len, slicing."""

    def __init__(self, array):
        self._a, self.shape, self.dtype = array, array.shape, array.dtype
        self.reads = 0

    def __len__(self):
        return len(self._a)

    def __getitem__(self, idx):
        self.reads += 1
        return self._a[idx].copy()


def test_sweep_reads_lazy_arrays_chunk_by_chunk():
    colors, human = _synthetic_pairs(5)
    lazy_c, lazy_h = _LazyStack(colors), _LazyStack(human)
    rows = lines.sweep((lazy_c, lazy_h), (3, 5), (64,), chunk=2)
    assert lazy_c.reads == 3                                  # 5 pictures in chunks of 2
    assert [r['f1'] for r in rows] == [r['f1'] for r in lines.sweep((colors, human), (3, 5), (64,))]
    # plain lists work too
    assert lines.sweep((list(colors), list(human)), (3,), (64,))[0]['n_images'] == 5
    with pytest.raises(ValueError, match='empty'):
        lines.sweep((colors[:0], human[:0]), (3,), (64,))
