"""The hint canvas without a browser: pixel mapping, mouse strokes, undo/redo, eraser, hint
files, eyedropper, the latest-request-wins recolor worker, headless painting."""
import datetime
import json
import threading
import time

import cv2
import numpy as np
import pytest

import tutorial_lib  # noqa: F401
from tutorial_lib import hints
from tutorial_lib.colorize import Colorizer
from tiny_models import tiny, tiny_colorizer
from tutorial_lib.widgets import HintCanvas, LatestOnly, canvas_to_image, image_to_canvas

SIZES = [((288, 384), (192, 256)), ((384, 384), (128, 128)), ((384, 265), (37, 25)),
         ((300, 384), (512, 655)), ((97, 131), (97, 131))]     # (canvas, image), (h, w)


@pytest.fixture(scope='module')
def col():
    return tiny_colorizer()


def line_art(h=96, w=128):
    img = np.full((h, w), 255, np.uint8)
    cv2.rectangle(img, (10, 10), (w - 20, h - 30), 0, 2)
    cv2.circle(img, (w // 2, h // 2), 15, 0, 2)
    return img


@pytest.fixture
def canvas(col, tmp_path):
    return HintCanvas(line_art(), colorizer=col, debounce_s=0, name='t', log_dir=str(tmp_path))


def mouse(c, event, x, y, target=None):
    """Deliver an event the way ipycanvas does when the browser sends one."""
    (target or c.draw[-1])._handle_frontend_event(None, dict(event=event, x=x, y=y), None)


@pytest.mark.parametrize('canvas_size,image_size', SIZES)
def test_pixel_centers_round_trip(canvas_size, image_size):
    h, w = image_size
    for row in range(0, h, max(1, h // 17)):
        for col in range(0, w, max(1, w // 17)):
            x, y = image_to_canvas(col, row, canvas_size, image_size)
            assert canvas_to_image(x, y, canvas_size, image_size) == (col, row)


@pytest.mark.parametrize('canvas_size,image_size', [s for s in SIZES if s[0][0] >= s[1][0]])
def test_the_pixel_under_the_pointer_is_the_one_displayed_there(canvas_size, image_size):
    # every image pixel gets its own color; grow the hint image to the canvas the way the
    # widget displays it; at every canvas pixel the mapping must name that pixel
    h, w = image_size
    ids = np.arange(h * w).reshape(h, w)
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=2).astype(np.uint8)
    shown, _ = hints.resize_hints(rgb, np.ones((h, w), bool), canvas_size)
    shown = shown.astype(np.int64)
    shown_ids = shown[..., 0] + 256 * shown[..., 1] + 65536 * shown[..., 2]
    ch, cw = canvas_size
    for y in range(ch):
        for x in range(0, cw, 7):
            col, row = canvas_to_image(x + 0.5, y + 0.5, canvas_size, image_size)
            assert shown_ids[y, x] == row * w + col


def test_canvas_edges_stay_inside_the_image():
    assert canvas_to_image(0, 0, (288, 384), (192, 256)) == (0, 0)
    assert canvas_to_image(384, 288, (288, 384), (192, 256)) == (255, 191)   # the far edge
    assert canvas_to_image(383.99, 1.49, (288, 384), (192, 256)) == (255, 0)
    assert canvas_to_image(1.5, 1.5, (288, 384), (192, 256)) == (1, 1)       # 1.5 px / 1.5


def test_mouse_stroke_becomes_a_stroke_in_image_pixels(canvas, tmp_path):
    assert canvas.canvas_size == (288, 384) and canvas.image_size == (96, 128)   # 3x
    canvas.color.value = '#3cb043'
    canvas.brush.value = 6
    mouse(canvas, 'mouse_down', 31.5, 40.2)
    mouse(canvas, 'mouse_move', 32.9, 41.0)          # same image pixel: not repeated
    mouse(canvas, 'mouse_move', 60.0, 70.0)
    mouse(canvas, 'mouse_up', 90.9, 100.0)
    assert canvas.wait(60)
    s = canvas.strokes[-1]
    assert s.points == [(10.0, 13.0), (20.0, 23.0), (30.0, 33.0)]
    assert s.color == (60, 176, 67)
    assert s.radius == pytest.approx(2.0) and not s.erase
    rgb, mask = canvas.hint_image()
    assert mask[13, 10] and mask[23, 20] and tuple(rgb[13, 10]) == (60, 176, 67)
    assert canvas.recolors == 1 and canvas.result.shape == (96, 128, 3)
    log = json.loads((tmp_path / 't.json').read_text())
    assert log['last_stroke']['points'] == [[10, 13], [20, 23], [30, 33]]
    assert log['last_stroke']['canvas_points'][0] == [31.5, 40.2]
    assert log['recolors'] == 1 and len(log['result_sha1']) == 40


def test_dot_tool_and_leaving_the_canvas(canvas):
    canvas.tool.value = 'dot'
    mouse(canvas, 'mouse_down', 3.0, 3.0)
    mouse(canvas, 'mouse_move', 200.0, 200.0)
    mouse(canvas, 'mouse_up', 200.0, 200.0)
    assert [s.points for s in canvas.strokes] == [[(1.0, 1.0)]]
    canvas.tool.value = 'stroke'
    mouse(canvas, 'mouse_down', 30.0, 30.0)
    mouse(canvas, 'mouse_move', 60.0, 30.0)
    mouse(canvas, 'mouse_out', 385.0, 30.0)            # dragged out: ends at the edge
    mouse(canvas, 'mouse_move', 90.0, 30.0)            # no button: nothing
    assert canvas.strokes[-1].points == [(10.0, 10.0), (20.0, 10.0), (127.0, 10.0)]
    assert len(canvas.strokes) == 2


def test_undo_redo_clear_and_eraser(canvas):
    red = hints.Stroke([(20, 20), (60, 20)], '#ff0000', 2)
    blue = hints.Stroke([(40, 50)], '#0000ff', 3)
    canvas.apply_strokes([red, blue])
    both = canvas.hint_image()[1].copy()
    canvas.undo()
    assert canvas.strokes == [red] and canvas.hint_image()[1].sum() < both.sum()
    canvas.redo()
    np.testing.assert_array_equal(canvas.hint_image()[1], both)
    canvas.add_stroke(hints.Stroke([(40, 20)], None, 4, erase=True))
    assert not canvas.hint_image()[1][20, 40] and canvas.hint_image()[1][20, 20]
    assert canvas.redo_stack == []                     # a new stroke forgets the redo stack
    canvas.clear()
    assert canvas.strokes == [] and not canvas.hint_image()[1].any()
    canvas.wait(60)


def test_hint_png_round_trip_matches_the_cli_path(canvas, col, tmp_path):
    canvas.stage2.value = False
    out = canvas.apply_strokes([hints.Stroke([(20, 20), (100, 70)], '#8fd0f0', 3),
                                hints.Stroke([(64, 48)], '#f0d040', 5)])
    path = tmp_path / 'h.png'
    canvas.save_hints(str(path))
    # the saved PNG colors the sketch exactly like the canvas (what `colorize --hints` does)
    np.testing.assert_array_equal(col.colorize(canvas.line, hints=str(path), stage2=False), out)
    saved = canvas.hint_image()
    canvas.clear()
    canvas.load_hints(str(path))
    for a, b in zip(canvas.hint_image(), saved):
        np.testing.assert_array_equal(a, b)
    # an eraser removes loaded hints too; a new stroke paints over them
    canvas.add_stroke(hints.Stroke([(64, 48)], None, 1, erase=True), recolor=False)
    canvas.add_stroke(hints.Stroke([(20, 20)], '#000000', 0), recolor=False)
    rgb, mask = canvas.hint_image()
    assert not mask[48, 64] and mask[47, 62] and tuple(rgb[20, 20]) == (0, 0, 0)
    assert tuple(rgb[70, 100]) == (0x8f, 0xd0, 0xf0)
    # hint files of another size are stretched over the picture, every dot kept
    big = np.zeros((384, 512, 4), np.uint8)
    big[200, 300] = (255, 0, 0, 255)
    canvas.load_hints(big)
    ys, xs = np.nonzero(canvas.hint_image()[1])
    assert list(zip(ys, xs)) == [(50, 75)]
    canvas.wait(60)


def test_eyedropper_picks_from_the_result(canvas):
    out = canvas.apply_strokes([])
    mouse(canvas, 'mouse_down', 300.0, 150.0, target=canvas.result_canvas)
    r, g, b = out[50, 100]
    assert canvas.color.value == '#%02x%02x%02x' % (r, g, b)


def test_stage2_toggle_and_status(canvas):
    assert canvas.stage2.value                                  # on when a stage 2 is loaded
    canvas.stage2.value = False                                 # each toggle recolors
    assert canvas.wait(60) and canvas.recolors == 1
    assert 'stage 1)' in canvas.status.value and 'CPU' in canvas.status.value
    assert canvas.last_latency_ms > 0
    assert canvas.colorizer.last_timing['stage2'] < 5          # stage 2 really skipped
    canvas.stage2.value = True
    assert canvas.wait(60) and canvas.recolors == 2
    assert 'stage 1 + 2' in canvas.status.value


def test_upload_loads_a_new_line_image(canvas):
    ok, png = cv2.imencode('.png', line_art(40, 100))
    canvas.apply_strokes([hints.Stroke([(5, 5)], '#ff0000')])
    canvas.upload.value = ({'name': 'x.png', 'type': 'image/png', 'size': len(png),
                            'content': memoryview(png.tobytes()),
                            'last_modified': datetime.datetime.now()},)
    canvas.wait(60)
    assert canvas.image_size == (40, 100) and canvas.canvas_size == (154, 384)
    assert canvas.strokes == [] and canvas.result.shape == (40, 100, 3)
    assert canvas.draw.layout.width == '384px' and canvas.result_canvas.width == 384
    assert canvas.upload.value == ()                   # cleared: the same file can come again


def test_big_pictures_keep_hints_at_512(col):
    c = HintCanvas(np.full((1024, 2048), 255, np.uint8), colorizer=col)
    assert c.hint_size == (256, 512) and c.canvas_size == (192, 384)
    c.add_stroke(hints.Stroke([(2047, 1023)], '#ff0000'), recolor=False)
    assert c.hint_image()[1][255, 511]


def test_errors_show_in_the_status_line():
    c = HintCanvas(line_art(), colorizer=Colorizer(tiny(1), None, device='cpu'), debounce_s=0)
    assert c.stage2.disabled and not c.stage2.value
    c.add_stroke(hints.Stroke([(5, 5)], '#ff0000'))            # a line-only U-Net
    assert c.wait(60)
    assert 'recolor failed' in c.status.value and 'in_ch=1' in c.status.value
    with pytest.raises(ValueError, match='in_ch=1'):
        c.recolor()
    c.hint_path.value = '/nonexistent/folder/h.png'
    c._file_action(c.load_hints)
    assert 'error' in c.status.value


def test_latest_request_wins_and_nothing_stale_is_queued():
    started, release, ran = threading.Event(), threading.Event(), []
    state = {'value': 'a'}

    def job():
        ran.append(state['value'])
        started.set()
        release.wait(10)

    w = LatestOnly(job, delay=0)
    w.submit()
    assert started.wait(10)                 # run 1 is busy with 'a'
    for v in 'bcd':                         # three requests while it works
        state['value'] = v
        w.submit()
    release.set()
    assert w.wait(10)
    assert ran == ['a', 'd'] and w.requests == 4 and w.runs == 2


def test_debounce_collapses_a_burst():
    ran = []
    w = LatestOnly(lambda: ran.append(time.monotonic()), delay=0.3)
    t0 = time.monotonic()
    for _ in range(5):
        w.submit()
    assert w.wait(10)
    assert len(ran) == 1 and ran[0] - t0 >= 0.3
    w.submit()
    assert w.wait(10) and len(ran) == 2


def test_bench_measures_recolor_latency(tmp_path):
    from tutorial_lib.infra import bench
    out = tmp_path / 'bench.json'
    out.write_text(json.dumps({'train128_full_speedup': 3.0}))    # kept by a partial run
    bench.main(['--quick', '--only', 'latency', '--out', str(out)])
    saved = json.loads(out.read_text())
    assert saved['latency_stage1_128_ms'] > 0 and saved['latency_stage12_512_ms'] > 0
    assert saved['train128_full_speedup'] == 3.0
