"""Metrics with known answers."""
import math

import numpy as np
import pytest

import tutorial_lib  # noqa: F401
from tutorial_lib import metrics, models, training


def rng_image(seed=0, shape=(32, 32, 3)):
    return np.random.RandomState(seed).randint(0, 256, shape).astype(np.uint8)


def test_psnr_identical_is_inf_and_capped_in_summaries():
    a = rng_image()
    assert metrics.psnr(a, a) == math.inf
    per = metrics.scores(a[None], training.SimplePairs(['x'], np.full((1, 32, 32), 255,
                                                                      np.uint8), a[None]))
    assert per['psnr'][0] == metrics.PSNR_CAP


def test_psnr_known_values():
    a = np.full((16, 16, 3), 100, np.uint8)
    b = a + 10                                  # MSE = 100
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 100))
    # uniform noise of +-d on every value: MSE = d^2
    noise = np.where(np.random.RandomState(1).rand(64, 64, 3) < 0.5, -5, 5)
    c = np.full((64, 64, 3), 128, np.int64)
    assert metrics.psnr(c.astype(np.uint8), (c + noise).astype(np.uint8)) == \
        pytest.approx(20 * math.log10(255 / 5))
    batch = metrics.psnr(np.stack([a, a]), np.stack([b, a]))
    assert batch.shape == (2,) and batch[1] == math.inf


def test_ssim_identical_is_one_and_noise_lowers_it():
    a = rng_image(2, (48, 48, 3))
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-9)
    flat = np.full((48, 48, 3), 128, np.uint8)
    flat[12:36, 12:36] = 60
    noisy = np.clip(flat.astype(int) + np.random.RandomState(3).randint(-40, 41, a.shape),
                    0, 255).astype(np.uint8)
    s = metrics.ssim(flat, noisy)
    assert 0 < s < 0.5
    assert metrics.ssim(flat, flat // 2 + 64) < 1   # contrast halved
    assert metrics.ssim(a, 255 - a) < 0  # inverted structure: negative correlation


def test_ssim_is_on_luminance_only():
    gray = np.full((32, 32, 3), 120, np.uint8)
    gray[8:24, 8:24] = 200
    y = metrics.luminance(gray)
    # same luminance, other colors: SSIM still 1 (colorfulness tells the difference)
    tinted = gray.copy().astype(float)
    tinted[..., 0] += 20
    tinted[..., 1] -= 20 * 0.299 / 0.587
    assert np.allclose(metrics.luminance(tinted), y)
    # (rounding to uint8 moves luminance a little: compare on float pictures directly)
    assert metrics._ssim_one(y, metrics.luminance(tinted)) == pytest.approx(1.0)


def test_colorfulness():
    gray = np.repeat(rng_image(4, (20, 20, 1)), 3, axis=2)
    assert metrics.colorfulness(gray) == 0
    red = np.zeros((10, 10, 3), np.uint8)
    red[..., 0] = 255
    # rg = 255, yb = 127.5, both constant: C = 0.3 * sqrt(255^2 + 127.5^2)
    assert metrics.colorfulness(red) == pytest.approx(0.3 * math.hypot(255, 127.5))
    half = np.zeros((10, 10, 3), np.uint8)
    half[:, :5, 0] = 255
    # rg: half 255, half 0 -> std 127.5, mean 127.5; yb = rg / 2
    expected = math.hypot(127.5, 63.75) + 0.3 * math.hypot(127.5, 63.75)
    assert metrics.colorfulness(half) == pytest.approx(expected)


def test_line_preservation():
    lines = np.full((8, 8), 255, np.uint8)
    lines[2, :] = 0
    pic = np.full((8, 8, 3), 255, np.uint8)
    assert metrics.line_preservation(pic, lines) == 0.0
    pic[2, :4] = 0
    assert metrics.line_preservation(pic, lines) == 0.5
    pic[2, :] = 30
    assert metrics.line_preservation(pic, lines) == 1.0
    assert math.isnan(metrics.line_preservation(pic, np.full((8, 8), 255, np.uint8)))


def test_evaluate_perfect_and_gray_models():
    pairs = training.synthetic_pairs(6, 32, seed=5, split='test')
    per = metrics.scores(pairs.colors, pairs)
    m = metrics.summarize(per)
    assert m['psnr'] == metrics.PSNR_CAP and m['ssim'] == pytest.approx(1)
    assert m['colorfulness_ratio'] == pytest.approx(1)
    assert m['line_preservation'] == m['line_preservation_truth'] > 0.9
    # a U-Net whose output layer is all zeros paints gray: colorfulness 0
    u = models.UNET(in_ch=1, width=1 / 16)
    u.dc0.W.array[...] = 0
    u.dc0.b.array[...] = 0
    m, out = metrics.evaluate(u, pairs, return_outputs=True)
    assert (out == 128).all()
    assert m['colorfulness'] == 0 and m['colorfulness_ratio'] == 0
    assert m['line_preservation'] == 0   # gray 128 is not dark
    assert m['n'] == 6
    text = metrics.format_table({'gray': m})
    assert 'gray' in text and 'ground truth' in text and 'PSNR' in text


def test_evaluate_refuses_train_pictures():
    from tutorial_lib import openmoji
    u = models.UNET(in_ch=1, width=1 / 16)
    pairs = training.synthetic_pairs(2, 32, split='train')
    with pytest.raises(ValueError, match='TRAIN'):
        metrics.evaluate(u, pairs)
    with pytest.warns(UserWarning):
        metrics.evaluate(u, pairs, allow_train=True)
    # OpenMoji hexcodes are checked by name, whatever the container says
    name = next(h for h in ['1F600', '1F98A', '1F34E', '1F697', '2615', '1F3B8', '1F4DA']
                if openmoji.split_of(h) == 'train')
    pairs = training.SimplePairs([name], np.full((1, 32, 32), 255, np.uint8),
                                 np.full((1, 32, 32, 3), 255, np.uint8), split='?')
    with pytest.raises(ValueError, match='TRAIN'):
        metrics.evaluate(u, pairs)


def test_hue_stats():
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200
    skin = np.zeros((4, 4, 3), np.uint8)
    skin[:] = (222, 161, 99)          # a skin tone, hue about 30 degrees
    blue = np.zeros((4, 4, 3), np.uint8)
    blue[..., 2] = 220
    gray = np.full((4, 4, 3), 100, np.uint8)
    one = metrics.hue_stats(np.stack([red, gray]))
    assert one['hue_entropy'] == 0 and one['skin_share'] == 0
    assert one['colored_fraction'] == 0.5 and one['saturation'] == 255
    two = metrics.hue_stats(np.stack([red, blue]))
    assert two['hue_entropy'] == pytest.approx(1.0)          # two hues, equally: 1 bit
    assert metrics.hue_stats(skin)['skin_share'] == 1.0
    nothing = metrics.hue_stats(gray)
    assert nothing['hue_entropy'] == 0 and nothing['colored_fraction'] == 0
    m = metrics.summarize(metrics.scores(np.stack([skin, skin]),
                                         training.SimplePairs(['a', 'b'],
                                                              np.full((2, 4, 4), 255, np.uint8),
                                                              np.stack([red, blue]))),
                          np.stack([skin, skin]), np.stack([red, blue]))
    assert m['skin_share'] == 1 and m['skin_share_truth'] == 0
    assert m['hue_entropy_truth'] == pytest.approx(1.0)
