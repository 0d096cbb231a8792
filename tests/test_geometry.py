"""Coloring geometry, checked against pictures padded and cropped by hand.

Every path that colors a sketch of any size (stage 1 through the Colorizer, stage 2,
``models.colorize``, the hint canvas) must give exactly what the network gives on the same
picture padded at the bottom/right with paper (255, and "no hint" in the hint channels) to
multiples of 16 and cropped back from the top-left corner. The sketches here are not
square and their sides are not multiples of 16, so padding really happens; each test also
shows that the usual mistakes (ink padding, cropping from the wrong corner) would change the
result, so a match is not luck.
"""
import cv2
import numpy as np
import pytest

import tutorial_lib  # noqa: F401  (compat before chainer)
import chainer
from tutorial_lib import hints, models
from tutorial_lib.colorize import Colorizer
from tutorial_lib.widgets import HintCanvas
from tiny_models import tiny

H, W = 45, 70                 # the sketch: neither side a multiple of 16, not square
PH, PW = 48, 80               # padded by hand


def sketch(h=H, w=W, seed=0):
    """Line art with structure everywhere, so any shift or wrong padding shows."""
    rng = np.random.RandomState(seed)
    img = np.full((h, w), 255, np.uint8)
    for _ in range(12):
        p, q = rng.randint(0, w, 2), rng.randint(0, h, 2)
        cv2.line(img, (int(p[0]), int(q[0])), (int(p[1]), int(q[1])), 0, 1)
    return img


def run_net(model, x):
    """The network on a hand-made float32 (1,C,h,w) input -> uint8 RGB (h,w,3), written
    without tutorial_lib's helpers."""
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        y = model(x.astype(np.float32)).array
    return np.clip((y[0] + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)


def paper_padded(line, ph, pw, value=255):
    out = np.full((ph, pw), value, np.uint8)
    out[:line.shape[0], :line.shape[1]] = line
    return out


def stage1_by_hand(model, line, ph, pw, hint_at=None, pad=255):
    """Stage 1 on ``line`` padded by hand; ``hint_at``: ((row, col), rgb) of one hint pixel."""
    x = np.full((1, 4, ph, pw), hints.EMPTY, np.float32)
    x[0, 0] = paper_padded(line, ph, pw, pad) / 127.5 - 1
    if hint_at is not None:
        (r, c), rgb = hint_at
        x[0, 1:, r, c] = np.array(rgb) / 127.5 - 1
    return run_net(model, x)


@pytest.fixture(scope='module')
def nets():
    return tiny(4, seed=3), tiny(4, seed=4)


def test_stage1_through_the_colorizer_equals_padding_by_hand(nets):
    # stage-1 side = the sketch's long side: no resizing, only padding and cropping
    col = Colorizer(nets[0], None, device='cpu', stage1_side=W)
    line = sketch()
    red = (230, 30, 40)
    got = col.colorize(line, hints=[hints.Stroke([(60, 40)], red)], stage2=False)
    full = stage1_by_hand(nets[0], line, PH, PW, ((40, 60), red))
    np.testing.assert_array_equal(got, full[:H, :W])
    # the mistakes this catches: ink padding, the crop taken from the bottom-right
    ink = stage1_by_hand(nets[0], line, PH, PW, ((40, 60), red), pad=0)[:H, :W]
    assert np.abs(ink.astype(int) - got).max() > 10
    assert np.abs(full[PH - H:, PW - W:].astype(int) - got).mean() > 2


def test_stage1_with_resizing_equals_resizing_and_padding_by_hand(nets):
    # the default 128-px stage 1 on a 200x130 sketch: 128 x 83 (aspect kept), padded to 96
    col = Colorizer(nets[0], None, device='cpu')
    line = sketch(200, 130, seed=1)
    got = col.colorize(line, stage2=False)
    small = cv2.resize(line, (83, 128), interpolation=cv2.INTER_AREA)
    low = stage1_by_hand(nets[0], small, 128, 96)[:128, :83]
    want = cv2.resize(low, (130, 200), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(got, want)


def test_stage2_through_the_colorizer_equals_padding_by_hand(nets):
    s1, s2 = nets
    col = Colorizer(s1, s2, device='cpu', stage1_side=35, stage2_side=W)
    line = sketch(seed=2)
    got = col.colorize(line, stage2=True)
    # stage 1 at (22, 35) (45 * 35 / 70 = 22.5 rounds to even), padded to (32, 48)
    small = cv2.resize(line, (35, 22), interpolation=cv2.INTER_AREA)
    low = stage1_by_hand(s1, small, 32, 48)[:22, :35]
    np.testing.assert_array_equal(col.colorize(line, stage2=False),
                                  cv2.resize(low, (W, H), interpolation=cv2.INTER_CUBIC))
    # stage 2 at the sketch's size: line + stage-1 colors upsampled, both padded with paper
    up = cv2.resize(low, (W, H), interpolation=cv2.INTER_CUBIC)
    colors = np.full((PH, PW, 3), 255, np.uint8)
    colors[:H, :W] = up
    x = np.concatenate([paper_padded(line, PH, PW)[None] / 127.5 - 1,
                        colors.transpose(2, 0, 1) / 127.5 - 1])[None]
    full = run_net(s2, x)
    np.testing.assert_array_equal(got, full[:H, :W])
    assert np.abs(full[PH - H:, PW - W:].astype(int) - got).mean() > 2
    x_ink = x.copy()
    x_ink[0, 0, H:] = x_ink[0, 0, :, W:] = -1
    assert np.abs(run_net(s2, x_ink)[:H, :W].astype(int) - got).max() > 10


@pytest.mark.parametrize('in_ch', [1, 4])
def test_models_colorize_equals_padding_by_hand(nets, in_ch):
    model = nets[0] if in_ch == 4 else tiny(1, seed=5)
    lines = np.stack([sketch(seed=6), sketch(seed=7)])
    got = models.colorize(model, lines, batch_size=1)
    assert got.shape == (2, H, W, 3)
    for line, out in zip(lines, got):
        x = np.full((1, in_ch, PH, PW), hints.EMPTY, np.float32)   # no hint anywhere
        x[0, 0] = paper_padded(line, PH, PW) / 127.5 - 1
        full = run_net(model, x)
        np.testing.assert_array_equal(out, full[:H, :W])
        assert np.abs(full[PH - H:, PW - W:].astype(int) - out).mean() > 2
        x[0, 0, H:] = x[0, 0, :, W:] = -1                             # ink padding
        assert np.abs(run_net(model, x)[:H, :W].astype(int) - out).max() > 10


def test_the_canvas_colors_the_pixel_under_the_pointer(nets):
    col = Colorizer(nets[0], None, device='cpu', stage1_side=W)
    line = sketch(seed=8)
    c = HintCanvas(line, colorizer=col, debounce_s=0, use_stage2=False)
    assert c.canvas_size == (247, 384)                   # 45 x 70 shown at 384 px wide
    c.tool.value, c.brush.value, c.color.value = 'dot', 1, '#20c040'
    c._down(100.3, 50.7)                                 # a click, in canvas pixels
    assert c.wait(60)
    # column floor(100.3 * 70 / 384) = 18, row floor(50.7 * 45 / 247) = 9; radius 1 screen
    # px = 0.18 image px: one pixel
    rgb, mask = c.hint_image()
    assert list(zip(*np.nonzero(mask))) == [(9, 18)]
    full = stage1_by_hand(nets[0], line, PH, PW, ((9, 18), (0x20, 0xc0, 0x40)))
    np.testing.assert_array_equal(c.result, full[:H, :W])
    # one pixel off would give another picture
    off = stage1_by_hand(nets[0], line, PH, PW, ((9, 19), (0x20, 0xc0, 0x40)))[:H, :W]
    assert not np.array_equal(off, c.result)
