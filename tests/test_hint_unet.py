"""The fill-reading hint U-Net, informative training hints and line-style augmentation."""
import numpy as np
import pytest

from tutorial_lib import augment, checkpoints, hints, models, training   # before chainer: compat
import chainer
from tutorial_lib.hint_unet import HintFillUNET

from test_fill import box


def _source(seed=0, width=1 / 16):
    np.random.seed(seed)
    return models.UNET(in_ch=1, width=width)


def _run(model, x):
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        return model(x).array


def _hint_input(line, points):
    rgb, mask = np.zeros(line.shape + (3,), np.uint8), np.zeros(line.shape, bool)
    for (y, x), c in points:
        rgb[y, x], mask[y, x] = c, True
    return hints.make_input(line[None], hints.encode(rgb, mask)[None])


def test_warm_started_without_hints_computes_exactly_the_source_network():
    src = _source()
    gen = HintFillUNET(width=src.width).warm_start(src)
    line = box()
    x = hints.make_input(line[None])
    np.testing.assert_allclose(_run(gen, x), _run(src, models.encode_lines(line)), atol=1e-5)


def test_a_hint_in_a_closed_region_colors_the_whole_region_at_the_start():
    gen = HintFillUNET(width=1 / 16).warm_start(_source())
    line = box()
    y = _run(gen, _hint_input(line, [((25, 25), (255, 0, 0))]))
    region = y[0][:, 11:40, 11:40]
    # gate starts at sigmoid(3) = 0.95: the fill (red = (1, -1, -1)) dominates everywhere
    assert (region[0] > 0.8).all() and (region[1] < -0.8).all() and (region[2] < -0.8).all()
    assert np.abs(y[0][:, 3:8, 3:8] - _run(gen, hints.make_input(line[None]))[0][:, 3:8, 3:8]
                  ).max() < 1e-5              # paper outside: untouched by the hint


def test_a_shaded_fill_is_laid_under_the_lines(tmp_path):
    # a gray (anti-aliased) column inside the square: the shaded fill is darker there by the
    # line's lightness, the flat fill is not; elsewhere the two networks agree
    line = box()
    line[15:35, 20] = 153                     # lightness 0.6, lighter than ink (< 128)
    flat = HintFillUNET(width=1 / 16, gate_bias=30.0).warm_start(_source())
    shaded = HintFillUNET(width=1 / 16, gate_bias=30.0, shade=True).warm_start(flat)
    x = _hint_input(line, [((25, 25), (255, 255, 255))])
    y_flat, y_shaded = _run(flat, x)[0], _run(shaded, x)[0]
    np.testing.assert_allclose(y_flat[:, 25, 20], 1.0, atol=1e-4)            # white fill
    np.testing.assert_allclose(y_shaded[:, 25, 20], 2 * 0.6 - 1, atol=1e-2)   # white x 0.6
    np.testing.assert_allclose(y_shaded[:, 25, 25], y_flat[:, 25, 25], atol=1e-5)
    assert shaded.save_meta == {'kind': 'hint_fill', 'shade': True, 'use_fill': True}
    path = str(tmp_path / 'gen.npz')
    models.save_weights(shaded, path, dict(in_ch=4, width=shaded.width, **shaded.save_meta))
    assert checkpoints.load_unet(path).shade


def test_fill_trust_moves_the_gate_from_the_fill_to_the_networks_colors():
    gen = HintFillUNET(width=1 / 16, shade=True).warm_start(_source())
    line = box()
    x = _hint_input(line, [((25, 25), (255, 0, 0))])
    learned = _run(gen, x)[0]
    gen.fill_trust = 50.0
    always = _run(gen, x)[0]
    gen.fill_trust = -50.0
    never = _run(gen, x)[0]
    red = np.broadcast_to(np.array([1, -1, -1], np.float32)[:, None, None], (3, 10, 10))
    np.testing.assert_allclose(always[:, 20:30, 20:30], red, atol=1e-4)   # the fill alone
    assert np.abs(never[:, 20:30, 20:30] - red).max() > 0.5               # the U-Net's colors
    assert np.abs(learned - always).max() > 1e-3 and np.abs(learned - never).max() > 1e-3


def test_warm_start_from_a_hint_fill_network_copies_every_weight():
    a = HintFillUNET(width=1 / 16).warm_start(_source())
    a.unet.dc0.b.array[3] = -1.0              # a gate that learned something
    b = HintFillUNET(width=1 / 16, shade=True).warm_start(a)
    for (name, p), (_, q) in zip(sorted(a.namedparams()), sorted(b.namedparams())):
        np.testing.assert_array_equal(p.array, q.array, err_msg=name)
    with pytest.raises(ValueError, match='width'):
        HintFillUNET(width=1 / 8).warm_start(a)


def test_saved_with_its_kind_and_loaded_back_as_the_same_network(tmp_path):
    gen = HintFillUNET(width=1 / 16).warm_start(_source())
    path = str(tmp_path / 'gen.npz')
    models.save_weights(gen, path, dict(in_ch=4, width=gen.width, hint_recipe='informative',
                                        **gen.save_meta))
    back = checkpoints.load_unet(path)
    assert isinstance(back, HintFillUNET) and back.hint_recipe == 'informative'
    assert not back.shade                     # also what a file saved before shading had
    x = _hint_input(box(), [((25, 25), (0, 128, 255))])
    np.testing.assert_allclose(_run(back, x), _run(gen, x), atol=2e-2)   # float16 on disk
    with pytest.raises(ValueError, match='4-channel'):
        HintFillUNET(in_ch=1)


def test_without_the_fill_a_hint_reaches_only_the_unets_colors(tmp_path):
    # the ablation's "+ hint mask" step: the same network with its fill channels at zero
    gen = HintFillUNET(width=1 / 16, use_fill=False).warm_start(_source())
    with_fill = HintFillUNET(width=1 / 16).warm_start(_source())
    line = box()
    x = _hint_input(line, [((25, 25), (255, 0, 0))])
    inner, fill, filled = gen.expand(x)
    assert not filled.any() and not fill.any() and inner[0, 4, 25, 25] == 1   # mask kept
    np.testing.assert_allclose(_run(gen, x), _run(gen.unet, inner)[:, :3], atol=1e-6)
    assert (_run(with_fill, x)[0, 0, 15:35, 15:35] > 0.8).all()   # the fill paints red ...
    assert not (_run(gen, x)[0, 0, 15:35, 15:35] > 0.8).all()    # ... the mask alone not
    path = str(tmp_path / 'gen.npz')
    models.save_weights(gen, path, dict(in_ch=4, width=gen.width, **gen.save_meta))
    assert checkpoints.load_unet(path).use_fill is False


def test_models_colorize_pads_hint_channels_with_empty_not_gray():
    gen = HintFillUNET(width=1 / 16).warm_start(_source())
    line = box(size=64)[:50, :40]                       # 50 x 40: padded to 64 x 48
    rgb, mask = np.zeros((50, 40, 3), np.uint8), np.zeros((50, 40), bool)
    extra = hints.encode(rgb, mask)[None]
    a = models.colorize(gen, line[None], extra=extra)
    b = models.colorize(gen, line[None])                # no hints at all
    assert (a == b).all()


def test_quick_fill_config_trains_and_loads_as_the_fill_network(tmp_path):
    from tutorial_lib import configs
    cfg = configs.get('quick_hints_fill').replace(data='synthetic', iterations=2)
    run = training.train(cfg, out=str(tmp_path / 'run'), resume=False, progress=False)
    gen = checkpoints.load_unet(run.out)
    assert isinstance(gen, HintFillUNET) and gen.hint_recipe == 'informative'


# ------------------------------------------------------------------ informative hints
def _picture():
    """Red disk and blue square (black outlines) on white paper, 64 px."""
    import cv2
    color = np.full((64, 64, 3), 255, np.uint8)
    cv2.circle(color, (20, 20), 12, (220, 30, 30), -1)
    cv2.rectangle(color, (36, 36), (58, 58), (30, 60, 220), -1)
    line = np.full((64, 64), 255, np.uint8)
    cv2.circle(line, (20, 20), 12, 0, 1)
    cv2.rectangle(line, (36, 36), (58, 58), 0, 1)
    color[line == 0] = 0
    return color, line


def test_informative_dots_sit_on_colored_pixels_off_the_ink_with_their_own_color():
    color, line = _picture()
    cfg = hints.HintConfig(placement='informative', p_none=0, p_few=0, many=(60, 60),
                           p_colored=1.0, p_paper=0.0, noise_sigma=0, dot_size=(1, 5))
    rgb, mask = hints.simulate(color, np.random.RandomState(3), cfg, line)
    assert mask.any()
    assert not mask[line < 128].any()                   # never on ink
    assert not (color[mask] >= 235).all(axis=1).any()   # never on paper
    # each hinted pixel carries a color within the dot's tolerance of its own true color
    assert np.abs(rgb[mask].astype(int) - color[mask].astype(int)).max() <= 24


def test_informative_recipe_has_single_pixel_dots_and_up_to_128():
    r = hints.recipe('informative')
    assert r.dot_size[0] == 1 and r.many[1] == 128 and r.placement == 'informative'
    color, line = _picture()
    counts = [hints.draw_count(np.random.RandomState(s), r) for s in range(200)]
    assert 0 in counts and max(counts) <= 128
    a = hints.simulate(color, np.random.RandomState(5), r, line)
    b = hints.simulate(color, np.random.RandomState(5), r, line)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
    with pytest.raises(ValueError, match='placement'):
        hints.HintConfig(placement='everywhere')


# ------------------------------------------------------------------ line styles
def test_restyle_is_seeded_and_changes_lines_not_shapes():
    color, line = _picture()
    lines, colors = np.stack([line] * 4), np.stack([color] * 4)
    s = augment.LineStyles(p_width=1, p_faint=1, p_blur=0, p_extracted=0, p_mosaic=0,
                           p_zoom=0)
    a = augment.restyle(lines, colors, np.random.RandomState(1), s)
    b = augment.restyle(lines, colors, np.random.RandomState(1), s)
    assert (a[0] == b[0]).all() and a[0].shape == lines.shape and a[0].dtype == np.uint8
    assert (a[1] == colors).all()                       # colors stay the truth
    assert a[0].min() > 0                               # faint: no pure black ink left
    assert not (a[0] == lines).all()


def test_line_style_groups_switch_off_one_kind_of_change():
    s = augment.without(('strokes', 'scale'))
    assert s.p_width == s.p_faint == s.p_blur == s.p_mosaic == s.p_zoom == 0
    assert s.p_extracted == augment.LineStyles().p_extracted
    color, line = _picture()
    lines, colors = np.stack([line] * 4), np.stack([color] * 4)
    off = augment.without(tuple(augment.GROUPS))
    a = augment.restyle(lines, colors, np.random.RandomState(1), off)
    assert (a[0] == lines).all() and (a[1] == colors).all()
    with pytest.raises(ValueError, match='known: strokes'):
        augment.without(('width',))


def test_mosaic_tiles_four_pictures_at_half_size():
    imgs = np.stack([np.full((8, 8), v, np.uint8) for v in (10, 20, 30, 40)])
    m = augment.mosaic(imgs, 1)
    assert m.shape == (8, 8)
    assert (m[:4, :4] == 20).all() and (m[:4, 4:] == 30).all()
    assert (m[4:, :4] == 40).all() and (m[4:, 4:] == 10).all()
