"""The bucket-fill baseline (tutorial_lib.fill) and its hints-curve methods."""
import cv2
import numpy as np
import pytest

from tutorial_lib import evaluation, fill


def box(size=64, gap=0, corners=(10, 40)):
    """Line art: a 1-px square outline, optionally with a gap of ``gap`` px in its top side."""
    line = np.full((size, size), 255, np.uint8)
    a, b = corners
    cv2.rectangle(line, (a, a), (b, b), 0, 1)
    if gap:
        line[a, 20:20 + gap] = 255
    return line


def dots(size, points):
    rgb, mask = np.zeros((size, size, 3), np.uint8), np.zeros((size, size), bool)
    for (y, x), c in points:
        rgb[y, x], mask[y, x] = c, True
    return rgb, mask


def test_one_hint_fills_its_closed_region_up_to_the_ink_and_nothing_else():
    line = box()
    f, filled = fill.bucket_fill(line, *dots(64, [((25, 25), (200, 10, 10))]))
    inside = np.zeros((64, 64), bool)
    inside[11:40, 11:40] = True
    assert (filled == inside).all()          # grown back over the margin, right up to the ink
    assert (f[inside] == (200, 10, 10)).all()
    assert not filled[line < 128].any()      # ink is never filled


def test_small_gaps_close_and_wide_gaps_leak():
    hint = dots(64, [((25, 25), (0, 0, 255))])
    _, closed = fill.bucket_fill(box(gap=3), *hint)
    assert not closed[5, 5]                  # a 3-px gap is closed by the 2-px widening
    _, leaked = fill.bucket_fill(box(gap=8), *hint)
    assert leaked[5, 5]                      # an 8-px gap is not: the paper outside fills too


def test_region_color_is_the_median_of_its_hints():
    f, filled = fill.bucket_fill(box(), *dots(64, [((20, 20), (250, 0, 0)),
                                                   ((30, 30), (240, 0, 0)),
                                                   ((25, 33), (0, 0, 250))]))
    assert tuple(f[25, 25]) == (240, 0, 0)   # per-channel median of 250, 240, 0 / 0, 0, 250


def test_a_dot_in_the_margin_fills_its_region_unless_it_touches_the_ink():
    # (11, 25) is 1 px inside the outline, within the 2-px widening: a single pixel there
    # fills the square; a 3x3 dot there also covers the outline (its color may be half
    # line), so it fills nothing
    line = box()
    f, filled = fill.bucket_fill(line, *dots(64, [((11, 25), (0, 200, 0))]))
    assert filled[25, 25] and filled[11, 25] and tuple(f[25, 25]) == (0, 200, 0)
    assert not filled[5, 5] and not filled[line < 128].any()
    rgb, mask = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), bool)
    rgb[9:12, 24:27], mask[9:12, 24:27] = (0, 200, 0), True
    assert not fill.bucket_fill(line, rgb, mask)[1].any()


def test_a_clear_hint_outvotes_margin_hints_in_the_same_region():
    f, filled = fill.bucket_fill(box(), *dots(64, [((11, 25), (0, 200, 0)),
                                                   ((25, 25), (200, 0, 0))]))
    assert tuple(f[30, 30]) == (200, 0, 0)


def test_a_strip_thinner_than_the_widening_is_a_region_of_its_own():
    line = box()
    line[:, 13] = 0                           # a 2-px strip (x 11..12) along the left side
    labels, ink = fill.all_regions(line)
    assert (labels[~ink] > 0).all() and not labels[ink].any()
    strip, square = labels[25, 11], labels[25, 25]
    assert strip != square and strip != labels[5, 5]
    f, filled = fill.bucket_fill(line, *dots(64, [((25, 12), (0, 0, 200))]))
    assert filled[30, 11] and not filled[25, 25] and tuple(f[30, 11]) == (0, 0, 200)


def test_two_regions_keep_their_own_colors():
    line = box()
    line[:, 25] = 0                           # split the square in two
    f, filled = fill.bucket_fill(line, *dots(64, [((20, 15), (255, 0, 0)),
                                                  ((20, 35), (0, 0, 255))]))
    assert tuple(f[30, 15]) == (255, 0, 0) and tuple(f[30, 35]) == (0, 0, 255)
    assert not filled[5, 5]                   # the paper outside had no hint


def test_paint_multiplies_lines_on_top_and_keeps_the_background_elsewhere():
    line = box()
    f, filled = fill.bucket_fill(line, *dots(64, [((25, 25), (100, 150, 200))]))
    bg = np.full((64, 64, 3), 77, np.uint8)
    out = fill.paint(line, f, filled, bg)
    assert tuple(out[25, 25]) == (100, 150, 200)
    assert tuple(out[5, 5]) == (77, 77, 77)
    assert (out[line == 0] == 0).all()
    assert tuple(fill.paint(line, f, filled)[5, 5]) == (255, 255, 255)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match='uint8'):
        fill.regions(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match='match'):
        fill.bucket_fill(box(), np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), bool))


def test_fill_method_scores_a_perfect_region_picture_higher_with_hints():
    line = box()
    truth = np.full((64, 64, 3), 255, np.uint8)
    truth[11:40, 11:40] = (30, 120, 220)
    truth[line == 0] = 0

    class Pairs:
        lines, colors = line[None], truth[None]
    rows = evaluation.hints_curve(evaluation.fill_method, Pairs, counts=(0, 200), radius=0)
    assert rows[1]['psnr'] > rows[0]['psnr'] + 5
    assert rows[1]['hint_error_colored'] < 1.0    # every hinted region takes its exact color


def test_region_obeys_measures_the_share_of_the_region_near_the_color():
    line = box()
    result = np.full((64, 64, 3), 255, np.uint8)
    result[11:40, 11:25] = (0, 0, 255)          # about half of the square's inside is blue
    # the closed region is the inside less the 2-px margin: x and y 13..37 (25 x 25 px)
    share = fill.region_obeys(result, line, [(20, 20)], (0, 0, 255))
    assert share == pytest.approx(12 / 25)      # blue columns 13..24
    assert fill.region_obeys(result, line, [(30, 30)], (255, 255, 255)) == pytest.approx(13 / 25)
    with pytest.raises(ValueError, match='one closed region'):
        fill.region_obeys(result, line, [(20, 20), (5, 5)], (0, 0, 255))


def test_ceiling_is_above_the_hybrid_and_reaches_a_flat_truth():
    from tiny_models import tiny
    gen = tiny(4)
    line = box()
    line[:, 25] = 0                            # two regions inside the square
    truth = np.full((64, 64, 3), 255, np.uint8)
    truth[11:40, 11:25], truth[11:40, 26:40] = (30, 120, 220), (200, 40, 40)
    truth[line == 0] = 0

    class Pairs:
        lines, colors = np.stack([line, line]), np.stack([truth, truth])
    kw = dict(counts=(0, 5, 400), radius=0)
    ceiling = evaluation.hints_curve(evaluation.ceiling_method(gen, Pairs.colors), Pairs, **kw)
    hybrid = evaluation.hints_curve(evaluation.hybrid_method(gen), Pairs, **kw)
    plain = evaluation.hints_curve(gen, Pairs, **kw)
    for c, h, p in zip(ceiling, hybrid, plain):
        assert c['psnr'] >= max(h['psnr'], p['psnr']) - 1e-9
    # 400 single-pixel hints reach every region: a flat truth is matched exactly
    assert ceiling[2]['psnr'] > 45 and plain[2]['psnr'] < 30
