import re

import cv2
import numpy as np
import pytest

from tutorial_lib import hints as H


def _rng(seed=0):
    return np.random.RandomState(seed)


def _picture(h=32, w=40, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3)).astype(np.uint8)


# ------------------------------------------------------------------------------ encoding
def test_encode_decode_round_trip():
    rgb = _picture()
    mask = _rng(1).rand(32, 40) < 0.3
    ch = H.encode(rgb, mask)
    assert ch.shape == (3, 32, 40) and ch.dtype == np.float32
    assert ch.min() == H.EMPTY and ch[:, mask].min() >= -1 and ch.max() <= 1
    rgb2, mask2 = H.decode(ch)
    np.testing.assert_array_equal(mask2, mask)
    np.testing.assert_array_equal(rgb2[mask], rgb[mask])
    assert not rgb2[~mask].any()
    rgb3, mask3 = H.decode(np.stack([ch, H.empty(32, 40)]))   # batches decode too
    assert rgb3.shape == (2, 32, 40, 3) and not mask3[1].any()
    np.testing.assert_array_equal(mask3[0], mask)


@pytest.mark.parametrize('color', [(0, 0, 0), (255, 255, 255), (128, 128, 128),
                                   (127, 127, 127), (0, 255, 0), (255, 0, 0)])
def test_empty_differs_from_every_color(color):
    rgb = np.full((2, 2, 3), color, np.uint8)
    ch = H.encode(rgb, np.ones((2, 2), bool))
    # far from the sentinel, on the hint side of the decision line, on every channel
    assert (ch > H.EMPTY_THRESHOLD).all() and (ch - H.EMPTY >= 1).all()
    assert not np.isclose(ch, H.empty(2, 2)).any()
    _, mask = H.decode(ch)
    assert mask.all()
    _, mask = H.decode(H.empty(2, 2))
    assert not mask.any()


def test_make_input_shapes_and_values():
    line = np.full((16, 16), 255, np.uint8)
    line[3, 4] = 0
    x = H.make_input(line)
    assert x.shape == (1, 4, 16, 16) and x.dtype == np.float32
    assert x[0, 0, 0, 0] == 1 and x[0, 0, 3, 4] == -1 and (x[0, 1:] == H.EMPTY).all()
    hint = H.encode(np.full((16, 16, 3), 200, np.uint8), np.eye(16, dtype=bool))
    x = H.make_input(np.stack([line, line]), np.stack([hint, hint]))
    assert x.shape == (2, 4, 16, 16)
    np.testing.assert_array_equal(x[1, 1:], hint)
    with pytest.raises(ValueError, match='do not match'):
        H.make_input(line, np.stack([hint, hint]))


# ------------------------------------------------------------------ training-time hints
def test_count_shares_match_config():
    cfg = H.HintConfig(p_none=0.4, p_few=0.3, few=(2, 15), many=(16, 120))
    rng = _rng(3)
    counts = np.array([H.draw_count(rng, cfg) for _ in range(4000)])
    none, few = (counts == 0).mean(), ((counts >= 2) & (counts <= 15)).mean()
    many = (counts >= 16).mean()
    assert abs(none - 0.4) < 0.03 and abs(few - 0.3) < 0.03 and abs(many - 0.3) < 0.03
    assert counts.max() <= 120 and not ((counts > 0) & (counts < 2)).any()


def test_simulate_is_deterministic_and_works_with_generator():
    color = _picture(48, 48)
    cfg = H.HintConfig(p_none=0.0, p_few=0.0, many=(30, 30))
    for make in (np.random.RandomState, np.random.default_rng):
        a, b = H.simulate(color, make(7), cfg), H.simulate(color, make(7), cfg)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[1].any()
    batch = np.stack([color] * 3)
    x, y = H.simulate_batch(batch, _rng(5), cfg), H.simulate_batch(batch, _rng(5), cfg)
    assert x.shape == (3, 3, 48, 48) and x.dtype == np.float32
    np.testing.assert_array_equal(x, y)
    assert not np.array_equal(x[0], x[1])     # each sample draws its own hints


def test_simulated_colors_are_near_the_truth():
    # flat color patches: the mean under any dot is the patch color, only noise remains
    color = np.zeros((64, 64, 3), np.uint8)
    color[:32], color[32:] = (200, 120, 40), (30, 90, 220)
    cfg = H.HintConfig(p_none=0.0, p_few=0.0, many=(60, 60), dot_size=(1, 1),
                       noise_sigma=4.0)
    rgb, mask = H.simulate(color, _rng(11), cfg)
    assert mask.sum() == 60
    diff = rgb[mask].astype(int) - color[mask].astype(int)
    assert np.abs(diff).max() <= 4 * 5 and 1 <= np.abs(diff).mean() <= 8
    cfg = H.HintConfig(p_none=0, p_few=0, dot_size=(1, 1), noise_sigma=0)
    exact, mask = H.simulate(color, _rng(11), cfg)
    assert mask.any() and (exact[mask] == color[mask]).all()


def test_dot_sizes_and_avoid_ink():
    color = _picture(40, 40)
    line = np.full((40, 40), 255, np.uint8)
    line[:, :20] = 0                         # the left half is ink
    cfg = H.HintConfig(p_none=0, p_few=0, many=(50, 50), dot_size=(1, 1), avoid_ink=True)
    _, mask = H.simulate(color, _rng(2), cfg, line=line)
    assert mask.sum() == 50 and not mask[:, :20].any()
    cfg = H.HintConfig(p_none=0, p_few=0, many=(1, 1), dot_size=(3, 3))
    _, mask = H.simulate(np.zeros((40, 40, 3), np.uint8), _rng(4), cfg)
    assert 1 <= mask.sum() <= 9


def test_truth_hints_exact_count_and_nested():
    color = _picture(20, 20)
    for n in (0, 1, 5, 10, 25, 50, 100):
        rgb, mask = H.truth_hints(color, n, seed=9)
        assert mask.sum() == n
        np.testing.assert_array_equal(rgb[mask], color[mask])
    _, m5 = H.truth_hints(color, 5, seed=9)
    _, m10 = H.truth_hints(color, 10, seed=9)
    assert (m10 | m5).sum() == 10           # same seed: 5-set inside the 10-set
    _, big = H.truth_hints(color, 3, seed=9, radius=2)
    assert big.sum() > 3
    with pytest.raises(ValueError, match='number of pixels'):
        H.truth_hints(color, 401, seed=9)


def test_config_validation():
    with pytest.raises(ValueError, match='p_none'):
        H.HintConfig(p_none=0.8, p_few=0.3)
    with pytest.raises(ValueError, match='dot_size'):
        H.HintConfig(dot_size=(0, 2))
    with pytest.raises(ValueError, match='noise_sigma'):
        H.HintConfig(noise_sigma=-1)


# ---------------------------------------------------------------------------- user hints
def test_dot_lands_on_scaled_pixel():
    rgb, mask = H.rasterize([H.Stroke([(100, 40)], '#8b4513', radius=0)], size=(128, 128),
                            source_size=(512, 512))
    assert mask.sum() == 1 and mask[10, 25]
    assert tuple(rgb[10, 25]) == (0x8b, 0x45, 0x13)
    # a small radius never vanishes after downscaling; a big one scales with the picture
    _, mask = H.rasterize([H.Stroke([(100, 40)], (1, 2, 3), radius=1)], (128, 128), (512, 512))
    assert mask.sum() == 1
    _, mask = H.rasterize([H.Stroke([(100, 40)], (1, 2, 3), radius=8)], (128, 128), (512, 512))
    assert mask[10, 23] and mask[10, 27] and not mask[10, 28]
    _, mask = H.rasterize([H.Stroke([(0, 0)], (1, 2, 3))], (64, 32), (128, 64))  # non-square
    assert mask[0, 0]


def test_stroke_is_continuous():
    _, mask = H.rasterize([H.Stroke([(2, 3), (30, 20), (5, 28)], (0, 0, 255), 0)], (32, 32))
    n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    assert n == 2 and mask[3, 2] and mask[20, 30] and mask[28, 5]
    _, thick = H.rasterize([H.Stroke([(2, 3), (30, 20)], (0, 0, 255), 2)], (32, 32))
    assert thick.sum() > 3 * mask.sum() / 2 and thick[3, 2]


def test_later_strokes_overwrite_and_eraser_removes():
    strokes = [H.Stroke([(5, 5), (25, 5)], '#ff0000', 1),
               H.Stroke([(15, 0), (15, 10)], '#00ff00', 0)]
    rgb, mask = H.rasterize(strokes, (32, 32))
    assert tuple(rgb[5, 15]) == (0, 255, 0) and tuple(rgb[5, 10]) == (255, 0, 0)
    rgb, mask = H.rasterize(strokes + [H.Stroke([(10, 5)], None, 2, erase=True)], (32, 32))
    assert not mask[5, 10] and not rgb[5, 10].any() and mask[5, 20] and mask[5, 15]


def test_points_outside_are_clipped():
    _, mask = H.rasterize([H.Stroke([(-10, 5), (50, 5)], '#123456', 0)], (16, 16))
    assert mask[5].all() and mask.sum() == 16
    _, mask = H.rasterize([H.Stroke([(-10, -10)], '#123456', 0)], (16, 16))
    assert not mask.any()


@pytest.mark.parametrize('kwargs, message', [
    (dict(points=[(1, 1)], color='red'), "'#rrggbb'"),
    (dict(points=[(1, 1)], color='#12345'), "'#rrggbb'"),
    (dict(points=[(1, 1)], color=(0, 0, 256)), '0..255'),
    (dict(points=[(1, 1)], color=(0, 0)), '0..255'),
    (dict(points=[(1, 1)], color=None), '0..255'),
    (dict(points=[(1, 1)], color='#000000', radius=-1), 'radius'),
    (dict(points=[], color='#000000'), 'non-empty'),
    (dict(points=[(1, 2, 3)], color='#000000'), '(x, y)'),
    (dict(points=[(1, 2), (3,)], color='#000000'), '(x, y)'),
    (dict(points=[('a', 'b')], color='#000000'), '(x, y)'),
    (dict(points=[(1, float('nan'))], color='#000000'), 'finite'),
])
def test_bad_strokes_raise(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        H.Stroke(**kwargs)


def test_bad_rasterize_and_image_inputs_raise():
    with pytest.raises(ValueError, match='height, width'):
        H.rasterize([], (0, 10))
    with pytest.raises(ValueError, match='Stroke'):
        H.rasterize([((1, 1), '#000000')], (10, 10))
    with pytest.raises(ValueError, match='uint8'):
        H.encode(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match='mask'):
        H.encode(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), bool))


def test_rgba_png_round_trip(tmp_path):
    rgb, mask = H.rasterize([H.Stroke([(3, 4), (20, 9)], '#a0c8f0', 1),
                             H.Stroke([(30, 30)], (139, 69, 19), 2)], (40, 48))
    rgba = H.to_rgba(rgb, mask)
    assert rgba.shape == (40, 48, 4) and (rgba[..., 3][mask] == 255).all()
    path = tmp_path / 'hints.png'
    H.save_hint_png(path, rgb, mask)
    rgb2, mask2 = H.load_hint_png(path)
    np.testing.assert_array_equal(mask2, mask)
    np.testing.assert_array_equal(rgb2, rgb)
    assert list(tmp_path.iterdir()) == [path]           # no temp file left behind
    semi = rgba.copy()
    semi[..., 3] = np.where(mask, 128, 127)
    np.testing.assert_array_equal(H.from_rgba(semi)[1], mask)


def test_load_rejects_non_rgba(tmp_path):
    path = tmp_path / 'rgb.png'
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match='RGBA'):
        H.load_hint_png(path)
    with pytest.raises(FileNotFoundError, match='no such hint file'):
        H.load_hint_png(tmp_path / 'missing.png')
    with pytest.raises(ValueError, match='RGBA'):
        H.from_rgba(np.zeros((8, 8, 3), np.uint8))


def test_resize_keeps_small_dots_and_exact_colors():
    rgb, mask = H.rasterize([H.Stroke([(101, 43)], '#ff8800', 0),
                             H.Stroke([(300, 400)], '#0000ff', 0)], (512, 512))
    small_rgb, small_mask = H.resize_hints(rgb, mask, (128, 128))
    assert small_mask.sum() == 2 and small_mask[10, 25] and small_mask[100, 75]
    assert tuple(small_rgb[10, 25]) == (255, 136, 0)
    big_rgb, big_mask = H.resize_hints(small_rgb, small_mask, (256, 256))
    assert big_mask.sum() == 8 and big_mask[20:22, 50:52].all()
    assert set(map(tuple, big_rgb[big_mask])) == {(255, 136, 0), (0, 0, 255)}
    _, mixed = H.resize_hints(rgb, mask, (64, 1024))      # one axis down, one up
    assert mixed.sum() == 4


def test_overlay_outlines_light_dots():
    line = np.full((16, 16), 255, np.uint8)
    rgb, mask = H.rasterize([H.Stroke([(8, 8)], '#ffffff', 0)], (16, 16))
    out = H.overlay(line, rgb, mask)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert tuple(out[8, 8]) == (255, 255, 255)          # the white dot itself
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False
    assert (out[7:10, 7:10][ring] == 40).all()             # its dark outline
    assert (out[:6] == 255).all()                           # paper elsewhere


def test_sample_hints_with_radius_at_the_border():
    color = np.zeros((12, 12, 3), np.uint8)
    color[:, :6] = 255                           # white left half, black right half
    for seed in range(5):
        rgb, mask = H.truth_hints(color, 144, seed=seed, radius=1)
        assert mask.all()                        # disks clipped at the border, no error
    rgb, mask = H.truth_hints(color, 1, seed=0, radius=3)
    values = {tuple(v) for v in rgb[mask]}
    assert len(values) == 1                      # one dot, one (mean) color
    with pytest.raises(ValueError, match='radius'):
        H.truth_hints(color, 1, seed=0, radius=-1)


def test_recipes_are_copies_and_classroom_gives_more_hint_pixels():
    a, b = H.recipe('classroom'), H.recipe('classroom')
    a.p_none = 0.9
    assert b.p_none != 0.9 and H.recipe('classroom').p_none != 0.9
    with pytest.raises(ValueError, match='unknown hint recipe'):
        H.recipe('dense')
    color = np.random.RandomState(0).randint(0, 256, (64, 64, 3)).astype(np.uint8)

    def mean_pixels(cfg):
        rng = np.random.RandomState(1)
        return np.mean([H.simulate(color, rng, cfg)[1].sum() for _ in range(200)])
    assert mean_pixels(H.recipe('classroom')) > 3 * mean_pixels(H.recipe('sparse'))


# ------------------------------------------------------- truth hints: shape and color pinned
DISK_2 = np.array([[0, 0, 1, 0, 0],          # radius 2: 13 pixels, written out
                   [0, 1, 1, 1, 0],
                   [1, 1, 1, 1, 1],
                   [0, 1, 1, 1, 0],
                   [0, 0, 1, 0, 0]], bool)


def _one_dot(mask, shape):
    """(top, left) of a single dot of ``shape`` in ``mask``; the mask must be exactly it."""
    ys, xs = np.nonzero(mask)
    sy, sx = np.nonzero(shape)
    top, left = ys.min() - sy.min(), xs.min() - sx.min()
    placed = np.zeros_like(mask)
    placed[top:top + shape.shape[0], left:left + shape.shape[1]] = shape
    np.testing.assert_array_equal(mask, placed)
    return top, left


def test_truth_hint_dot_is_a_13_pixel_disk_of_the_mean_color():
    color = _picture(30, 30, seed=5)                       # every pixel its own color
    for seed in range(4):
        rgb, mask = H.truth_hints(color, 1, seed=seed, radius=2)
        if mask.sum() < 13:                                  # clipped at the border
            continue
        assert mask.sum() == 13
        top, left = _one_dot(mask, DISK_2)
        under = color[top:top + 5, left:left + 5][DISK_2]
        want = np.rint(under.astype(np.float64).mean(axis=0)).astype(np.uint8)
        assert (rgb[mask] == want).all()
        # not the centre pixel's color (on a random picture they differ)
        assert tuple(want) != tuple(color[top + 2, left + 2])
        break
    else:
        raise AssertionError('no unclipped dot drawn')
    # one picture draws the dots of the first picture of a batch
    rgb2, mask2 = H.truth_hints(color[None], 1, seed=0, radius=2)
    ref_rgb, ref_mask = H.truth_hints(color, 1, seed=0, radius=2)
    np.testing.assert_array_equal(mask2[0], ref_mask)
    np.testing.assert_array_equal(rgb2[0], ref_rgb)


def test_truth_hint_center_fill_is_the_color_under_the_dot_centre():
    color = _picture(30, 30, seed=5)                       # every pixel its own color
    for seed in range(8):
        rgb, mask = H.truth_hints(color, 1, seed=seed, radius=2, fill='center')
        if mask.sum() < 13:                                  # clipped at the border
            continue
        top, left = _one_dot(mask, DISK_2)
        assert (rgb[mask] == color[top + 2, left + 2]).all()
        # the same place as the mean-filled dot of the same seed, another color
        mean_rgb, mean_mask = H.truth_hints(color, 1, seed=seed, radius=2)
        np.testing.assert_array_equal(mask, mean_mask)
        assert not np.array_equal(rgb[mask], mean_rgb[mask])
        break
    else:
        raise AssertionError('no unclipped dot drawn')
    with pytest.raises(ValueError, match="fill must be 'mean' or 'center'"):
        H.truth_hints(color, 1, fill='median')


def test_truth_hints_only_where_allowed():
    color = _picture(20, 20)
    line = np.full((20, 20), 255, np.uint8)
    line[:, :10] = 0                                   # ink on the left half
    where = H.colored_off_ink(line, color)
    rgb, mask = H.truth_hints(color, 30, seed=3, where=where)
    assert mask.sum() == 30 and not mask[:, :10].any()
    _, few = H.truth_hints(color, 10, seed=3, where=where)
    assert (few <= mask).all()                         # nested as without ``where``
    with pytest.raises(ValueError, match='number of pixels'):
        H.truth_hints(color, int(where.sum()) + 1, where=where)


def test_simulated_dot_is_a_square_of_the_mean_color():
    color = _picture(40, 40, seed=6)
    cfg = H.HintConfig(p_none=0, p_few=0, many=(1, 1), dot_size=(3, 3), noise_sigma=0)
    for seed in range(10):
        rgb, mask = H.simulate(color, _rng(seed), cfg)
        if mask.sum() == 9:
            break
    top, left = _one_dot(mask, np.ones((3, 3), bool))
    want = np.rint(color[top:top + 3, left:left + 3].reshape(-1, 3).mean(axis=0))
    assert (rgb[mask] == want.astype(np.uint8)).all()


def test_truth_hints_where_a_user_would_put_them():
    color = np.full((40, 60, 3), 255, np.uint8)
    color[10:20, 10:30] = (200, 40, 40)
    line = np.full((40, 60), 255, np.uint8)
    line[15, :] = 0                                         # a line of ink
    rgb, mask = H.truth_hints(color, 10, seed=1, where=H.colored_off_ink(line, color))
    ys, xs = np.nonzero(mask)
    assert len(ys) == 10 and (rgb[mask] == (200, 40, 40)).all()
    assert ((10 <= ys) & (ys < 20) & (ys != 15) & (10 <= xs) & (xs < 30)).all()
