"""Metrics with known answers."""
import math

import numpy as np
import pytest

import tutorial_lib  # noqa: F401
from tutorial_lib.pairs import SimplePairs, synthetic_pairs
from tutorial_lib import evaluation, metrics, models, training


def rng_image(seed=0, shape=(32, 32, 3)):
    return np.random.RandomState(seed).randint(0, 256, shape).astype(np.uint8)


def test_psnr_identical_is_inf_and_capped_in_summaries():
    a = rng_image()
    assert metrics.psnr(a, a) == math.inf
    per = metrics.scores(a[None], SimplePairs(['x'], np.full((1, 32, 32), 255,
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
    pairs = synthetic_pairs(6, 32, seed=5, split='test')
    per = metrics.scores(pairs.colors, pairs)
    m = metrics.summarize(per)
    assert m['psnr'] == metrics.PSNR_CAP and m['ssim'] == pytest.approx(1)
    assert m['colorfulness_ratio'] == pytest.approx(1)
    assert m['line_preservation'] == m['line_preservation_truth'] > 0.9
    # a U-Net whose output layer is all zeros paints gray: colorfulness 0
    u = models.UNET(in_ch=1, width=1 / 16)
    u.dc0.W.array[...] = 0
    u.dc0.b.array[...] = 0
    m, out = evaluation.evaluate(u, pairs, return_outputs=True)
    assert (out == 128).all()
    assert m['colorfulness'] == 0 and m['colorfulness_ratio'] == 0
    assert m['line_preservation'] == 0   # gray 128 is not dark
    assert m['n'] == 6
    text = metrics.format_table({'gray': m})
    assert 'gray' in text and 'ground truth' in text and 'PSNR' in text


def test_evaluate_refuses_train_pictures():
    from tutorial_lib import openmoji
    u = models.UNET(in_ch=1, width=1 / 16)
    pairs = synthetic_pairs(2, 32, split='train')
    with pytest.raises(ValueError, match='TRAIN'):
        evaluation.evaluate(u, pairs)
    with pytest.warns(UserWarning):
        evaluation.evaluate(u, pairs, allow_train=True)
    # OpenMoji hexcodes are checked by name, whatever the container says
    name = next(h for h in ['1F600', '1F98A', '1F34E', '1F697', '2615', '1F3B8', '1F4DA']
                if openmoji.split_of(h) == 'train')
    pairs = SimplePairs([name], np.full((1, 32, 32), 255, np.uint8),
                                 np.full((1, 32, 32, 3), 255, np.uint8), split='?')
    with pytest.raises(ValueError, match='TRAIN'):
        evaluation.evaluate(u, pairs)


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
                                         SimplePairs(['a', 'b'],
                                                              np.full((2, 4, 4), 255, np.uint8),
                                                              np.stack([red, blue]))),
                          np.stack([skin, skin]), np.stack([red, blue]))
    assert m['skin_share'] == 1 and m['skin_share_truth'] == 0
    assert m['hue_entropy_truth'] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------
# Reference values computed independently of metrics.py: hand-worked small cases and the
# same formulas written another way, on general RGB pictures (every channel different).
# ---------------------------------------------------------------------------------------

def test_psnr_hand_worked_with_unequal_channel_errors():
    a = np.array([[[10, 20, 30], [200, 100, 50]]], np.uint8)
    b = np.array([[[13, 20, 34], [200, 112, 50]]], np.uint8)
    # squared errors 9 + 0 + 16 + 0 + 144 + 0 = 169 over 6 values
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 * 6 / 169), abs=1e-12)


def test_psnr_matches_a_loop_over_values():
    a, b = rng_image(10, (7, 9, 3)), rng_image(11, (7, 9, 3))
    sq = sum((int(p) - int(q)) ** 2 for p, q in zip(a.ravel(), b.ravel()))
    want = 20 * math.log10(255) - 10 * math.log10(sq / a.size)
    assert metrics.psnr(a, b) == pytest.approx(want, abs=1e-9)
    assert metrics.psnr(np.stack([a, b]), np.stack([b, b]))[0] == pytest.approx(want, abs=1e-9)


def _ssim_reference(a, b):
    """SSIM of two RGB pictures written from the paper, without OpenCV: BT.601 luminance,
    an explicit 11x11 Gaussian (sigma 1.5), edges mirrored (abc|cba), a sum over windows."""
    def lum(img):
        return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    g = np.exp(-(np.arange(11) - 5.0) ** 2 / (2 * 1.5 ** 2))
    win = np.outer(g, g) / np.outer(g, g).sum()

    def filt(z):
        p = np.pad(z, 5, mode='symmetric')
        view = np.lib.stride_tricks.sliding_window_view(p, (11, 11))
        return (view * win).sum(axis=(-2, -1))
    x, y = lum(a), lum(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx ** 2, filt(y * y) - my ** 2, filt(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)
            / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).mean()


def test_ssim_matches_an_independent_implementation():
    a = rng_image(20, (23, 31, 3))
    b = np.clip(a.astype(int) + np.random.RandomState(21).randint(-60, 61, a.shape), 0, 255)
    b = b.astype(np.uint8)
    c = rng_image(22, (23, 31, 3))
    for x, y in ((a, b), (a, c), (b, c)):
        assert metrics.ssim(x, y) == pytest.approx(_ssim_reference(x, y), abs=1e-9)
    assert 0.2 < metrics.ssim(a, b) < 0.9                 # a real, middling value


def test_ssim_of_flat_pictures_hand_worked():
    # flat pictures: no variance, so SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1)
    a = np.full((16, 20, 3), (200, 40, 90), np.uint8)
    b = np.full((16, 20, 3), (30, 170, 250), np.uint8)
    m1 = 0.299 * 200 + 0.587 * 40 + 0.114 * 90
    m2 = 0.299 * 30 + 0.587 * 170 + 0.114 * 250
    c1 = (0.01 * 255) ** 2
    assert metrics.ssim(a, b) == pytest.approx((2 * m1 * m2 + c1) / (m1 ** 2 + m2 ** 2 + c1),
                                               abs=1e-9)


def test_ssim_sees_luminance_only_on_uint8_pictures():
    # integer color shifts that keep 0.299 R + 0.587 G + 0.114 B exactly
    shift = next((r, g, b) for r in range(1, 40) for g in range(-40, 41)
                 for b in range(-40, 41) if 299 * r + 587 * g + 114 * b == 0)
    a = np.clip(rng_image(30, (24, 24, 3)), 60, 190)
    b = np.clip(rng_image(31, (24, 24, 3)), 60, 190)
    tinted = (b.astype(int) + shift).astype(np.uint8)
    np.testing.assert_allclose(metrics.luminance(tinted), metrics.luminance(b), atol=1e-9)
    assert metrics.psnr(b, tinted) < 40                     # the colors really differ
    assert metrics.ssim(b, tinted) == pytest.approx(1.0, abs=1e-9)
    assert metrics.ssim(a, tinted) == pytest.approx(metrics.ssim(a, b), abs=1e-9)


def test_colorfulness_hand_worked_on_two_pixels():
    # red and blue: rg = (255, 0): mean 127.5, std 127.5; yb = (127.5, -255): mean -63.75,
    # std 191.25
    pic = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    want = math.hypot(127.5, 191.25) + 0.3 * math.hypot(127.5, 63.75)
    assert metrics.colorfulness(pic) == pytest.approx(want, abs=1e-9)
    # green and yellow: rg = (-255, 0): mean -127.5, std 127.5; yb = (127.5, 255): mean
    # 191.25, std 63.75
    pic = np.array([[[0, 255, 0], [255, 255, 0]]], np.uint8)
    want = math.hypot(127.5, 63.75) + 0.3 * math.hypot(127.5, 191.25)
    assert metrics.colorfulness(pic) == pytest.approx(want, abs=1e-9)


def test_colorfulness_matches_the_formula_written_per_pixel():
    pics = np.stack([rng_image(40, (9, 13, 3)), rng_image(41, (9, 13, 3)) // 3 + 80])
    for pic, got in zip(pics, metrics.colorfulness(pics)):
        rg = [float(p[0]) - float(p[1]) for p in pic.reshape(-1, 3)]
        yb = [(float(p[0]) + float(p[1])) / 2 - float(p[2]) for p in pic.reshape(-1, 3)]

        def mean(v):
            return sum(v) / len(v)

        def std(v):
            return math.sqrt(mean([(t - mean(v)) ** 2 for t in v]))
        want = math.sqrt(std(rg) ** 2 + std(yb) ** 2) + 0.3 * math.sqrt(mean(rg) ** 2
                                                                        + mean(yb) ** 2)
        assert got == pytest.approx(want, abs=1e-9)


def test_line_preservation_uses_luminance_weights():
    lines = np.zeros((1, 4), np.uint8)                      # all ink
    pic = np.array([[[200, 30, 30],      # Y = 80.8: dark
                     [30, 200, 30],      # Y = 129.8: not dark
                     [30, 30, 250],      # Y = 55.9: dark
                     [99, 99, 99]]],     # Y = 99: dark (< 100)
                   np.uint8)
    assert metrics.line_preservation(pic, lines) == 0.75


def test_hue_stats_of_known_hues():
    # hues 0 (red), 30 (orange: skin band), 120 (green), 30 (a brown), and one gray pixel
    pic = np.array([[[255, 0, 0], [255, 128, 0], [0, 200, 0], [160, 100, 40],
                     [120, 120, 120]]], np.uint8)
    h = metrics.hue_stats(pic)
    assert h['colored_fraction'] == pytest.approx(0.8)
    assert h['skin_share'] == pytest.approx(0.5)
    # three bins used, with shares 1/4, 1/2, 1/4: 1.5 bits
    assert h['hue_entropy'] == pytest.approx(1.5)
    sat = [255, 255, 255, round(255 * 120 / 160)]
    assert h['saturation'] == pytest.approx(np.mean(sat), abs=0.5)
