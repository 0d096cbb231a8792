"""The Colorizer: any size, any input kind, hints in original coordinates, clear errors, CLI."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import tutorial_lib  # noqa: F401
from tutorial_lib import colorize, hints, models, REPO_ROOT
from tutorial_lib.colorize import Colorizer
from tiny_models import tiny, tiny_colorizer


@pytest.fixture(scope='module')
def col():
    return tiny_colorizer()


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp('ckpt')
    for name, in_ch in (('s1', 4), ('s2', 4), ('plain', 1)):
        # stage 2 is a residual refiner (meta residual: true); the Colorizer checks it
        models.save_weights(tiny(in_ch), str(d / name / 'gen.npz'),
                            dict(in_ch=in_ch, width=1 / 16,
                                 **(dict(residual=True, stage=2) if name == 's2' else {})))
    return d


@pytest.mark.parametrize('image', [
    np.full((37, 91), 255, np.uint8),                               # odd gray
    np.zeros((300, 200, 4), np.uint8),                              # transparent RGBA
    np.full((45, 33, 3), 40000, np.uint16),                         # 16-bit RGB
    np.full((5, 700, 1), 200, np.uint8),                            # a thin strip
])
def test_output_has_the_input_size(col, image):
    for stage2 in (True, False):
        out = col.colorize(image, stage2=stage2)
        assert out.shape == image.shape[:2] + (3,) and out.dtype == np.uint8
    assert set(col.last_timing) == {'prepare', 'stage1', 'stage2', 'finish', 'total'}
    assert col.last_ms > 0


def test_rgba_composites_on_white_and_16_bit_scales():
    a = np.zeros((4, 4, 4), np.uint8)
    assert (colorize.to_line_image(a) == 255).all()                 # transparent = paper
    b = np.full((4, 4), 65535, np.uint16)
    assert (colorize.to_line_image(b) == 255).all()
    c = np.zeros((4, 4, 3), np.uint8)
    assert (colorize.to_line_image(c) == 0).all()


def test_stroke_in_original_coordinates_reaches_the_right_pixel(col):
    H, W = 300, 200                            # long side 300 -> stage 1 sees 128 x 85
    line = np.full((H, W), 255, np.uint8)
    x, size = col.stage1_input(line, [hints.Stroke([(150, 60)], '#ff0000')])
    assert size == (128, 85) and x.shape == (1, 4, 128, 96)
    rgb, mask = hints.decode(x[0, 1:])
    ys, xs = np.nonzero(mask)
    assert len(ys) == 1
    # pixel centers: x' = (150 + .5) * 85 / 200 - .5 = 63.5 -> 64; y' = 60.5 * 128/300 - .5
    assert (ys[0], xs[0]) == (int(round(60.5 * 128 / 300 - 0.5)), int(round(150.5 * 85 / 200 - 0.5)))
    assert tuple(rgb[ys[0], xs[0]]) == (255, 0, 0)
    assert (x[0, 1:, :, 85:] == hints.EMPTY).all()          # the padding carries no hints


def test_hint_images_of_any_size(col, tmp_path):
    line = np.full((64, 64), 255, np.uint8)
    rgba = np.zeros((256, 256, 4), np.uint8)
    rgba[200:204, 8:12] = (0, 0, 255, 255)                  # bottom-left dot, 4x larger
    x, _ = col.stage1_input(line, rgba)
    rgb, mask = hints.decode(x[0, 1:])
    ys, xs = np.nonzero(mask)
    assert ys.min() >= 95 and ys.max() <= 102 and xs.max() <= 6
    assert (rgb[mask] == (0, 0, 255)).all()
    # the same as a PNG path and as a (rgb, mask) pair
    hints.save_hint_png(tmp_path / 'h.png', *hints.from_rgba(rgba))
    x2, _ = col.stage1_input(line, str(tmp_path / 'h.png'))
    x3, _ = col.stage1_input(line, hints.from_rgba(rgba))
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(x, x3)
    # a hint image without alpha
    cv2.imwrite(str(tmp_path / 'rgb.png'), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match='RGBA'):
        col.colorize(line, hints=str(tmp_path / 'rgb.png'))
    with pytest.raises(ValueError, match='RGBA'):
        col.colorize(line, hints=np.zeros((8, 8, 3), np.uint8))


def test_hints_change_the_output(col):
    line = np.full((64, 64), 255, np.uint8)
    a = col.colorize(line, stage2=False)
    b = col.colorize(line, hints=[hints.Stroke([(32, 32)], '#00ff00', radius=8)], stage2=False)
    assert not np.array_equal(a, b)


def test_bad_inputs_raise_clear_errors(col, tmp_path):
    with pytest.raises(ValueError, match='up to 4096'):
        col.colorize(np.full((4097, 10), 255, np.uint8))
    with pytest.raises(ValueError, match='empty'):
        col.colorize(np.zeros((0, 10), np.uint8))
    with pytest.raises(ValueError, match='uint8'):
        col.colorize(np.ones((10, 10), np.float32))
    with pytest.raises(ValueError, match='channels'):
        col.colorize(np.zeros((10, 10, 2), np.uint8))
    (tmp_path / 'empty.png').write_bytes(b'')
    with pytest.raises(ValueError, match='empty file'):
        col.colorize(str(tmp_path / 'empty.png'))
    (tmp_path / 'junk.png').write_bytes(b'not a picture')
    with pytest.raises(ValueError, match='not a readable picture'):
        col.colorize(str(tmp_path / 'junk.png'))
    with pytest.raises(ValueError, match='hints must be'):
        col.colorize(np.full((10, 10), 255, np.uint8), hints=42)


def test_line_only_stage1_refuses_hints():
    c = Colorizer(tiny(1), None, device='cpu')
    assert not c.accepts_hints
    line = np.full((40, 30), 255, np.uint8)
    assert c.colorize(line).shape == (40, 30, 3)
    assert c.colorize(line, hints=[]).shape == (40, 30, 3)          # no hint: fine
    with pytest.raises(ValueError, match='in_ch=1'):
        c.colorize(line, hints=[hints.Stroke([(3, 3)], '#ff0000')])


def test_from_checkpoints_by_path(saved):
    c = Colorizer.from_checkpoints(str(saved / 's1'), str(saved / 's2' / 'gen.npz'),
                                   device='cpu')
    assert c.stage1.in_ch == 4 and c.stage2.in_ch == 4
    with pytest.raises(ValueError, match='stage-1 U-Net .*not a stage 2'):
        Colorizer.from_checkpoints(str(saved / 's1'), str(saved / 'plain'), device='cpu')
    with pytest.raises(FileNotFoundError):
        Colorizer.from_checkpoints(str(saved / 'nope'), None, device='cpu')


def test_cli_writes_a_png(saved, tmp_path):
    sketch = tmp_path / 'sketch.png'
    img = np.full((50, 70), 255, np.uint8)
    cv2.line(img, (5, 5), (60, 40), 0, 2)
    cv2.imwrite(str(sketch), img)
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[5, 5] = (255, 0, 0, 255)
    hints.save_hint_png(tmp_path / 'h.png', *hints.from_rgba(rgba))
    out = tmp_path / 'out.png'
    env = dict(os.environ, TUTORIAL_DEVICE='cpu')
    r = subprocess.run([sys.executable, '-m', 'tutorial_lib.colorize', str(sketch),
                        '--hints', str(tmp_path / 'h.png'), '-o', str(out),
                        '--stage1', str(saved / 's1'), '--stage2', str(saved / 's2')],
                       cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert 'Device:' in r.stdout and 'Wrote %s' % out in r.stdout
    written = cv2.imread(str(out))
    assert written.shape == (50, 70, 3)
    r = subprocess.run([sys.executable, '-m', 'tutorial_lib.colorize', str(tmp_path / 'no.png'),
                        '--stage1', str(saved / 's1'), '--no-stage2'],
                       cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and 'error' in r.stderr
