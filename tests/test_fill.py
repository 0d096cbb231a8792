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


def test_hints_on_the_line_margin_do_not_fill():
    # (11, 25) is 1 px inside the outline: within the 2-px widening, so it is ignored
    f, filled = fill.bucket_fill(box(), *dots(64, [((11, 25), (0, 200, 0))]))
    assert not filled.any()


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
