"""The failure measurements of notebook 07 on cases with known answers."""
import json

import numpy as np
import pytest

import tutorial_lib  # noqa: F401
from tutorial_lib.pairs import synthetic_pairs
from tutorial_lib import evaluation, failures, models, stage2, training


def paper(size=32):
    return np.full((size, size), 255, np.uint8)


def blind_hint_unet():
    """A tiny hint U-Net whose first layer ignores the three hint channels."""
    gen = models.UNET(in_ch=4, width=1 / 16)
    gen.c0.W.array[:, 1:] = 0
    return gen


# ------------------------------------------------------------------ 5. all green

def test_yuv_zero_decodes_to_green_and_our_zero_to_gray():
    r, g, b = failures.yuv_zero_rgb()
    assert g > 100 and r < 10 and b < 10, (r, g, b)
    assert failures.rgb_zero_rgb() == (128, 128, 128)


def test_green_share_counts_green_pixels_only():
    img = np.zeros((1, 10, 10, 3), np.uint8)
    img[0, :, :5] = (0, 200, 0)     # green
    img[0, :, 5:] = (200, 0, 0)     # red
    assert failures.green_share(img) == pytest.approx(0.5)
    assert failures.green_share(np.full((1, 8, 8, 3), 128, np.uint8)) == 0


def test_shrinking_toward_zero_turns_raw_yuv_green_not_rgb():
    pics = synthetic_pairs(4, 32, seed=1).colors
    assert failures.green_share(failures.shrink(pics, 0.1, 'yuv')) > 0.9
    for space in ('rgb', 'yuv_centered'):
        assert failures.green_share(failures.shrink(pics, 0.1, space)) < 0.05
    # factor 1 gives the picture back (RGB exactly, YUV up to rounding)
    assert np.array_equal(failures.shrink(pics, 1.0, 'rgb'), pics)
    assert np.abs(failures.shrink(pics, 1.0, 'yuv').astype(int) - pics).max() <= 3
    with pytest.raises(ValueError):
        failures.shrink(pics, 0.5, 'lab')


# ------------------------------------------------------------ 2. local hint spread

def test_change_split_separates_near_and_far():
    before = np.zeros((32, 32, 3), np.uint8)
    after = before.copy()
    after[2, 2] = 90                      # far from (20, 20)
    r = failures.change_split(before, after, 20, 20, radius=5)
    assert r['near'] == 0 and r['far'] > 0
    after = before.copy()
    after[20, 21] = 90                    # next to the dot
    r = failures.change_split(before, after, 20, 20, radius=5)
    assert r['near'] > 0 and r['far'] == 0


def test_region_of_stops_at_ink():
    line = paper()
    line[8, 8:24] = line[23, 8:24] = line[8:24, 8] = line[8:24, 23] = 0   # a closed box
    inside = failures.region_of(line, 15, 15)
    assert inside[15, 15] and inside[9:23, 9:23].all()
    assert inside.sum() == 14 * 14 and not inside[2, 2]
    assert not failures.region_of(line, 8, 8).any()     # a spot on ink has no region


def test_pick_spot_lands_on_a_colored_paper_pixel():
    line = paper()
    line[:, 16] = 0
    color = np.full((32, 32, 3), 255, np.uint8)
    color[:, 10:20] = (200, 40, 40)
    for seed in range(20):
        x, y = failures.pick_spot(line, color, np.random.RandomState(seed))
        assert 10 <= x < 20 and x != 16


def test_far_change_is_zero_for_a_model_that_ignores_hints():
    pairs = synthetic_pairs(3, 32, seed=2)
    r = failures.hint_spread(blind_hint_unet(), pairs, radius=6)
    assert r['near'] == 0 and r['far'] == 0 and r['n'] == 3


def test_far_change_is_positive_for_a_model_that_reads_hints():
    pairs = synthetic_pairs(3, 32, seed=2)
    np.random.seed(0)                       # Chainer's initializers draw from numpy
    gen = models.UNET(in_ch=4, width=1 / 16)
    gen.c0.W.array[:, 1:] *= 50             # make the hints matter a lot
    r = failures.hint_spread(gen, pairs, radius=6)
    assert r['near'] > 0 and r['far'] > 0


# ------------------------------------------------------------ 3. line thickness

@pytest.mark.parametrize('k,width', [(-2, 1), (-1, 2), (0, 3), (1, 4), (2, 5), (-3, 0)])
def test_change_thickness_changes_a_stroke_by_k_pixels(k, width):
    line = paper()
    line[:, 10:13] = 0                      # a vertical stroke 3 px wide
    out = failures.change_thickness(line, k)
    assert (out[16] < 128).sum() == width
    batch = failures.change_thickness(np.stack([line, line]), k)
    assert batch.shape == (2, 32, 32) and np.array_equal(batch[1], out)


def test_masked_psnr_over_all_pixels_is_psnr():
    a = np.random.RandomState(0).randint(0, 256, (2, 16, 16, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + 7, 0, 255).astype(np.uint8)
    full = np.ones((2, 16, 16), bool)
    assert failures.masked_psnr(a, b, full) == pytest.approx(failures.mean_psnr(a, b))


# ------------------------------------------------------------ 4. hints

def test_noise_free_hints_match_the_hints_curve():
    pairs = synthetic_pairs(3, 32, seed=3)
    gen = models.UNET(in_ch=4, width=1 / 16)
    noisy = failures.noisy_hints(gen, pairs, n=5, sigmas=(0, 64))
    curve = evaluation.hints_curve(gen, pairs, counts=(5,), radius=evaluation.CURVE_RADIUS)
    assert noisy[0]['psnr'] == pytest.approx(curve[0]['psnr'])
    assert noisy[0]['hint_error_truth'] == pytest.approx(curve[0]['hint_error'])
    assert noisy[1]['psnr'] != noisy[0]['psnr']


# ------------------------------------------------------------ 6. domain gap

def test_domain_gap_keeps_missing_models_as_none():
    pairs = synthetic_pairs(2, 32)
    gen = models.UNET(width=1 / 16)
    lines = {'human': pairs.lines, 'flipped': pairs.lines[:, :, ::-1]}
    t = failures.domain_gap({'a': gen, 'b': None}, pairs, lines)
    assert t['b'] == {'human': None, 'flipped': None}
    assert t['a']['human'] == pytest.approx(failures.mean_psnr(
        models.colorize(gen, pairs.lines), pairs.colors))


# ------------------------------------------------------------ the command line

def test_cli_on_two_pictures_writes_strict_json(tmp_path, capsys):
    out = tmp_path / 'failures.json'
    assert failures.main(['--limit', '2', '--size', '64', '--out', str(out)]) == 0
    report = json.loads(out.read_text(),
                        parse_constant=lambda c: pytest.fail('non-JSON constant %s' % c))
    assert report['n'] == 2 and report['size'] == 64
    for section in failures.SECTIONS:
        assert section in report, section
    weights = [r['adv_weight'] for r in report['harsh']['rows']]
    assert weights == sorted(weights) and weights[0] == 0
    assert report['yuv']['yuv_zero_rgb'][1] > 100
    shipped = failures.checkpoint_entry('classroom_adv_hints') is not None
    assert ('GAN + hints' in report['spread']['models']) == shipped
    assert ('classroom_adv_hints' in report['spread']['missing']) != shipped
    row = report['domain']['table']['extracted lines']
    assert all(v is None for v in row.values()) or \
        failures.checkpoint_entry('classroom_l2_extracted') is not None
    printed = capsys.readouterr().out
    assert '5. Color-space collapse' in printed and 'wrote' in printed


def test_cli_rejects_unknown_sections(tmp_path):
    with pytest.raises(SystemExit):
        failures.main(['bikini', '--out', str(tmp_path / 'x.json')])
    assert not (tmp_path / 'x.json').exists()
