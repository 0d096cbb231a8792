"""A hint canvas for JupyterLab: paint color hints on line art and watch it recolor
(notebook 06): ``HintCanvas('sketch.png')``."""
import hashlib
import os
import tempfile
import threading
import time

import cv2
import ipywidgets as W
import numpy as np
from ipycanvas import Canvas, MultiCanvas

from . import atomic
from . import hints as hints_mod
from .colorize import Colorizer, to_line_image
from .images import fit_long_side, resize

DISPLAY_SIDE = 384     # long side of both canvases on screen, in CSS pixels
HINT_SIDE = 512        # hints are rasterized at most this large (the networks see <= 512)
PALETTE = ('#f3d3b8', '#8d5a3b', '#6b4226', '#f0d040', '#e03030', '#f08a24',
           '#3cb043', '#8fd0f0', '#2f5fd0', '#8e44ad', '#ffffff', '#202020')
LOG_ENV = 'TUTORIAL_CANVAS_LOG'   # folder: each canvas writes <name>.json there (tests)
# one colorize at a time in the whole kernel: canvases may share a Colorizer (its
# last_timing, its Chainer links), and on a 2-core laptop two at once are slower anyway
_COLORIZE_LOCK = threading.Lock()


def canvas_to_image(x, y, canvas_size, image_size):
    """The image pixel (column, row) under canvas point (x, y).

    ipycanvas reports mouse positions in the canvas's own pixels (it already undoes any CSS
    scaling), as floats in [0, width] x [0, height]. The canvas shows the whole image
    stretched over it, so canvas x covers image column ``floor(x * W / cw)``; the result is
    clipped to the image because the right/bottom edge itself (x = cw) is still "on" it.
    ``canvas_size`` and ``image_size`` are (height, width).
    """
    (ch, cw), (h, w) = _sizes(canvas_size, image_size)
    try:
        finite = np.isfinite(float(x)) and np.isfinite(float(y))
    except (TypeError, ValueError):
        finite = False
    if not finite:
        raise ValueError('canvas point (%r, %r) is not a pair of finite numbers' % (x, y))
    col = int(np.floor(x * w / cw))
    row = int(np.floor(y * h / ch))
    return min(max(col, 0), w - 1), min(max(row, 0), h - 1)


def _sizes(canvas_size, image_size):
    """Both (height, width) pairs checked: finite and > 0 (a canvas not laid out yet has 0)."""
    out = []
    for name, size in (('canvas_size', canvas_size), ('image_size', image_size)):
        try:
            h, w = (float(v) for v in size)
        except (TypeError, ValueError):
            raise ValueError('%s must be (height, width), got %r' % (name, size)) from None
        if not (np.isfinite(h) and np.isfinite(w) and h > 0 and w > 0):
            raise ValueError('%s must be (height, width) with finite sizes > 0, got %r'
                             % (name, size))
        out.append((h, w) if name == 'canvas_size' else (int(h), int(w)))
    return out


def image_to_canvas(col, row, canvas_size, image_size):
    """The canvas point at the center of image pixel (col, row): canvas_to_image's inverse."""
    (ch, cw), (h, w) = _sizes(canvas_size, image_size)
    return (col + 0.5) * cw / w, (row + 0.5) * ch / h


class LatestOnly:
    """Runs ``fn()`` in one background thread, debounced; the latest request wins.

    :meth:`submit` only raises a flag: requests made while a run waits or works collapse into
    one, so a learner who paints five quick strokes gets one recolor of the final picture,
    not five stale ones in a queue. A run starts ``delay`` seconds after the LAST request
    (the debounce: a burst of strokes costs one recolor). ``fn`` reads the current state
    itself when it starts, which is what makes the latest request win.
    """

    def __init__(self, fn, delay=0.15):
        self.fn, self.delay = fn, delay
        self.requests = self.runs = 0
        self.error = None
        self._cond = threading.Condition()
        self._pending, self._busy, self._last = False, False, 0.0
        self._thread = None

    def submit(self):
        with self._cond:
            self.requests += 1
            self._pending, self._last = True, time.monotonic()
            if self._thread is None:        # started lazily: headless runs never need it
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name='hint-canvas-recolor')
                self._thread.start()
            self._cond.notify_all()

    def _loop(self):
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                while (left := self._last + self.delay - time.monotonic()) > 0:
                    self._cond.wait(left)   # a newer request moves the start further
                self._pending, self._busy = False, True
            try:
                self.fn()
            except Exception as exc:        # a thread has nobody to raise to: keep it
                self.error = exc
            finally:
                with self._cond:
                    self._busy = False
                    self.runs += 1
                    self._cond.notify_all()

    def wait(self, timeout=None):
        """Block until nothing is pending or running; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._pending or self._busy), timeout)


def _rgba(rgb):
    # ipycanvas sends 3-channel arrays as JPEG (quality 75); with alpha they travel as PNG,
    # so the hint colors on screen are exactly the chosen ones
    return np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])


class HintCanvas:
    """Line art on the left, the colorized result on the right, tools above.

    Built on ipycanvas (pure Python, no JavaScript of our own, works offline). The learner
    picks a color (picker, palette, or a click on the result: an eyedropper), a brush size,
    and a tool (stroke, dot, eraser); undo, redo, clear; a stage-2 toggle; the status line
    says which device computes and how long the last recolor took. Hints are kept as
    :class:`hints.Stroke` objects in the line image's own pixel coordinates, and can be saved
    to / loaded from the RGBA PNG the command line takes (``--hints``).

    Without a browser (nbmake, ``make tutorial``, tests) nobody moves a mouse:
    :meth:`HintCanvas.apply_strokes` paints a preset list of strokes and recolors at once.

    ``image``: path or array (see :func:`colorize.to_line_image`). ``colorizer``: a
    :class:`Colorizer`, or None to load ``stage1`` / ``stage2`` (checkpoint names or paths).
    ``debounce_s``: wait after the last stroke before recoloring. ``name`` and ``log_dir``
    (default: the ``TUTORIAL_CANVAS_LOG`` environment variable): when set, every stroke and
    every recolor is written to ``log_dir/name.json`` so a browser test can see what Python
    received.
    """

    def __init__(self, image, colorizer=None, stage1='classroom_hints',
                 stage2='classroom_stage2', use_stage2=True, display_side=DISPLAY_SIDE,
                 debounce_s=0.15, name='canvas', log_dir=None):
        self.colorizer = colorizer or Colorizer.from_checkpoints(stage1, stage2)
        self.display_side, self.name = int(display_side), name
        self.log_dir = log_dir if log_dir is not None else os.environ.get(LOG_ENV)
        self.worker = LatestOnly(self._recolor_job, debounce_s)
        self.recolors, self.last_latency_ms, self.error = 0, None, None
        self._drag = None                   # (image points, canvas points) while drawing
        self._canvas_points = []
        buttons, files = self._controls(use_stage2)
        self._canvases()
        self.widget = W.VBox([
            W.HBox([self.color] + self.swatches + [self.tool]),
            W.HBox([self.brush] + list(buttons.values()) + [self.stage2]),
            # the frames sit on boxes around the canvases: a border on a canvas itself
            # would squeeze it by 2 px and blur it
            W.HBox([W.Box([c], layout=W.Layout(border='1px solid #ccc', margin='2px'))
                    for c in (self.draw, self.result_canvas)]),
            W.HBox([self.upload, self.hint_path] + files),
            self.status])
        self.widget.add_class('hint-canvas')
        self.load_image(image, recolor=False)

    def _controls(self, use_stage2):
        """The tool widgets; returns the {undo, redo, clear} buttons and the file buttons."""
        self.color = W.ColorPicker(value='#e03030', concise=True, layout=W.Layout(width='40px'))
        swatches = []
        for c in PALETTE:
            b = W.Button(layout=W.Layout(width='24px', height='24px', padding='0',
                                         border='1px solid #bbb'), tooltip=c)
            b.style.button_color = c
            b.on_click(lambda _, c=c: setattr(self.color, 'value', c))
            swatches.append(b)
        self.swatches = swatches
        self.tool = W.ToggleButtons(options=['stroke', 'dot', 'eraser'],
                                    style=W.ToggleButtonsStyle(button_width='72px'))
        self.brush = W.IntSlider(4, 1, 24, description='brush', layout=W.Layout(width='220px'))
        buttons = {label: W.Button(description=label, layout=W.Layout(width='60px'))
                   for label in ('undo', 'redo', 'clear')}
        buttons['undo'].on_click(lambda _: self.undo())
        buttons['redo'].on_click(lambda _: self.redo())
        buttons['clear'].on_click(lambda _: self.clear())
        self.stage2 = W.Checkbox(value=bool(use_stage2 and self.colorizer.stage2 is not None),
                                 description='stage 2 (512 px)', indent=False,
                                 disabled=self.colorizer.stage2 is None)
        self.stage2.observe(lambda _: self.request_recolor(), 'value')
        self.upload = W.FileUpload(accept='image/*', description='line image')
        self.upload.observe(self._on_upload, 'value')
        self.hint_path = W.Text(value='hints.png', description='hints PNG',
                                layout=W.Layout(width='260px'))
        save, load = W.Button(description='save'), W.Button(description='load')
        save.on_click(lambda _: self._file_action(self.save_hints))
        load.on_click(lambda _: self._file_action(self.load_hints))
        self.status = W.HTML()
        return buttons, [save, load]

    def _canvases(self):
        self.draw = MultiCanvas(2)          # layer 0: line + hints; layer 1: stroke preview
        self.result_canvas = Canvas()
        self.draw.add_class('hint-canvas-draw')       # CSS hooks for the browser test
        self.result_canvas.add_class('hint-canvas-result')
        self.draw.on_mouse_down(self._down)
        self.draw.on_mouse_move(self._move)
        self.draw.on_mouse_up(self._up)
        self.draw.on_mouse_out(self._up)    # leaving the canvas ends the stroke
        self.result_canvas.on_mouse_down(self._pick)
        # a reloaded page gets blank canvases (ipycanvas keeps no image): draw them again
        self.draw.on_client_ready(self._redraw)
        self.result_canvas.on_client_ready(self._redraw)

    def _repr_mimebundle_(self, **kw):
        return self.widget._repr_mimebundle_(**kw)

    # ------------------------------------------------------------------ image and hints
    def load_image(self, image, recolor=True):
        """New line art (path or array); forgets the hints."""
        self.line = to_line_image(image)
        self.image_size = self.line.shape
        # hints live at most at 512 px: a 4096 px scan would cost 16 M pixels per stroke
        # and the networks see at most 512 px anyway
        self.hint_size = (self.image_size if max(self.image_size) <= HINT_SIDE
                          else fit_long_side(self.image_size, HINT_SIDE))
        self.canvas_size = fit_long_side(self.image_size, self.display_side)
        ch, cw = self.canvas_size
        for c in (self.draw, self.result_canvas):
            c.width, c.height = cw, ch
            # pin the on-screen size: without it the canvas stretches to the cell's width
            c.layout = W.Layout(width='%dpx' % cw, height='%dpx' % ch)
        self.strokes, self.redo_stack, self._base = [], [], None
        self.result = self.shown = None     # the result, and it resized for the canvas
        self._redraw()
        if recolor:
            self.request_recolor()

    def hint_image(self):
        """The current hints as (hint_rgb, mask) at ``hint_size``: a loaded hint PNG (if
        any) with the strokes drawn over it in order."""
        strokes = list(self.strokes)        # a snapshot: the UI thread may append meanwhile
        rgb, mask = hints_mod.rasterize(strokes, self.hint_size, self.image_size)
        if self._base is None:
            return rgb, mask
        base_rgb, base_mask = self._base
        # a base pixel survives unless a stroke painted it (then it is in mask) or an
        # eraser passed over it
        erasers = [hints_mod.Stroke(s.points, (0, 0, 0), s.radius) for s in strokes if s.erase]
        erased = hints_mod.rasterize(erasers, self.hint_size, self.image_size)[1]
        keep = base_mask & ~mask & ~erased
        return np.where(keep[..., None], base_rgb, rgb), mask | keep

    def save_hints(self, path):
        """Write the hints as an RGBA PNG (the format ``colorize --hints`` reads)."""
        hints_mod.save_hint_png(path, *self.hint_image())
        self._say('saved hints to %s' % path)

    def load_hints(self, hint_png):
        """Replace all hints by an RGBA PNG (path or uint8 array, any size)."""
        if isinstance(hint_png, (str, os.PathLike)):
            rgb, mask = hints_mod.load_hint_png(hint_png)
        else:
            rgb, mask = hints_mod.from_rgba(hint_png)
            hints_mod.check_not_opaque(mask, 'the RGBA hint image')
        self._base = hints_mod.resize_hints(rgb, mask, self.hint_size)
        self.strokes, self.redo_stack = [], []
        self._changed()

    # ---------------------------------------------------------------------- editing
    def add_stroke(self, stroke, recolor=True, canvas_points=()):
        """Add one :class:`hints.Stroke` (image pixels); ``canvas_points``: the raw mouse
        positions it came from, kept only for the log."""
        self._canvas_points = [list(p) for p in canvas_points]
        self.strokes.append(stroke)
        self.redo_stack.clear()
        self._changed(recolor)

    def undo(self):
        if self.strokes:
            self.redo_stack.append(self.strokes.pop())
            self._changed()

    def redo(self):
        if self.redo_stack:
            self.strokes.append(self.redo_stack.pop())
            self._changed()

    def clear(self):
        self.strokes, self.redo_stack, self._base = [], [], None
        self._changed()

    def apply_strokes(self, strokes):
        """Headless painting: add ``strokes`` (in image pixels) and recolor now.
        Returns the result (uint8 RGB at the line image's size)."""
        for s in strokes:
            self.add_stroke(s, recolor=False)
        return self.recolor()

    def pick_color(self, col, row):
        """Eyedropper: take the color of the current result at image pixel (col, row)."""
        if self.result is not None:
            self.color.value = '#%02x%02x%02x' % tuple(int(v) for v in self.result[row, col])
        return self.color.value

    def _changed(self, recolor=True):
        self._draw_hints()
        self._log()
        if recolor:
            self.request_recolor()

    # ---------------------------------------------------------------------- recoloring
    def request_recolor(self):
        """Recolor in the background (debounced; the latest request wins)."""
        self.worker.submit()

    def recolor(self):
        """Recolor now, in this thread; returns the result."""
        self.worker.wait()                  # never overtake a background run
        self._recolor_job()
        if self.error is not None:
            raise self.error
        return self.result

    def wait(self, timeout=60):
        """Wait for background recolors (tests, scripts); False on timeout."""
        return self.worker.wait(timeout)

    def _recolor_job(self):
        t0 = time.perf_counter()
        try:
            with _COLORIZE_LOCK:
                out = self.colorizer.colorize(self.line, hints=self.hint_image(),
                                              stage2=self.stage2.value)
                self.result, self.shown = out, resize(out, self.canvas_size)
                self.result_canvas.put_image_data(_rgba(self.shown))
            self.error = None
        except Exception as exc:            # shown to the learner instead of lost in a thread
            self.error = exc
            self._say('recolor failed: %s' % exc)
            return
        self.recolors += 1
        self.last_latency_ms = (time.perf_counter() - t0) * 1e3
        self._say()
        self._log(shown=True)

    # ---------------------------------------------------------------------- drawing
    def _redraw(self, *_):
        self._draw_hints()
        if self.shown is not None:
            self.result_canvas.put_image_data(_rgba(self.shown))
        else:
            self.result_canvas.clear()
        self._say()

    def _draw_hints(self):
        line = resize(self.line, self.canvas_size)
        # hints.resize_hints keeps every dot (max-pool when shrinking, nearest when growing)
        # with the same pixel mapping as canvas_to_image
        rgb, mask = hints_mod.resize_hints(*self.hint_image(), self.canvas_size)
        self.draw[0].put_image_data(_rgba(hints_mod.overlay(line, rgb, mask)))

    def _say(self, note=''):
        b = self.colorizer.backend
        ms = '%.0f ms' % self.last_latency_ms if self.last_latency_ms is not None else '-'
        self.status.value = (
            '<b>%s</b> · last recolor %s (%s) · %d stroke(s) · image %dx%d · click the result '
            'to pick its color %s' % (
                'GPU' if b.is_gpu else 'CPU', ms,
                'stage 1 + 2' if self.stage2.value else 'stage 1', len(self.strokes),
                self.image_size[1], self.image_size[0], ('· ' + note) if note else ''))

    # ---------------------------------------------------------------------- mouse
    def _radius(self):
        """Brush radius in image pixels: the slider counts screen pixels, so the dot the
        learner sees is the dot the network gets."""
        return self.brush.value * self.image_size[1] / self.canvas_size[1]

    def _down(self, x, y):
        p = canvas_to_image(x, y, self.canvas_size, self.image_size)
        self._drag = ([p], [(x, y)])
        layer = self.draw[1]
        layer.fill_style = '#ffffff' if self.tool.value == 'eraser' else self.color.value
        layer.fill_circle(x, y, self.brush.value)
        if self.tool.value == 'dot':
            self._up(x, y)

    def _move(self, x, y):
        if self._drag is None or self.tool.value == 'dot':
            return
        pts, raw = self._drag
        p = canvas_to_image(x, y, self.canvas_size, self.image_size)
        layer = self.draw[1]
        layer.stroke_style = '#ffffff' if self.tool.value == 'eraser' else self.color.value
        layer.line_width, layer.line_cap = 2 * self.brush.value, 'round'
        layer.stroke_line(raw[-1][0], raw[-1][1], x, y)
        raw.append((x, y))
        if p != pts[-1]:
            pts.append(p)

    def _up(self, x, y):
        if self._drag is None:
            return
        if self.tool.value != 'dot':
            self._move(x, y)                # the release point (or where it left) counts
        pts, raw = self._drag
        self._drag = None
        self.draw[1].clear()
        erase = self.tool.value == 'eraser'
        self.add_stroke(hints_mod.Stroke(pts, None if erase else self.color.value,
                                         self._radius(), erase=erase), canvas_points=raw)

    def _pick(self, x, y):
        self.pick_color(*canvas_to_image(x, y, self.canvas_size, self.image_size))

    # ---------------------------------------------------------------------- files
    def _file_action(self, fn):
        try:
            fn(self.hint_path.value)
        except (OSError, ValueError) as exc:
            self._say('error: %s' % exc)

    def _on_upload(self, change):
        if not change['new']:
            return
        item = change['new'][0]
        self.upload.value = ()              # so that choosing the same file again reloads it
        suffix = os.path.splitext(item['name'])[1] or '.png'
        # images.read_image decodes files (EXIF, 16 bit, alpha): give it one
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, 'upload' + suffix)
            with open(path, 'wb') as f:
                f.write(bytes(item['content']))
            try:
                self.load_image(path)      # too large: refused from the header, not decoded
            except (ValueError, OSError) as exc:
                self._say('error: %s' % str(exc).replace(path, item['name']))

    def _log(self, shown=False):
        if not self.log_dir:
            return
        if shown:                           # what the result canvas shows, pixel for pixel
            png = cv2.imencode('.png', np.ascontiguousarray(self.shown[..., ::-1]))[1]
            atomic.write_bytes(os.path.join(self.log_dir, '%s_result.png' % self.name),
                               png.tobytes())
        last = self.strokes[-1] if self.strokes else None
        atomic.write_json(os.path.join(self.log_dir, '%s.json' % self.name), dict(
            name=self.name, image_size=list(self.image_size),
            canvas_size=list(self.canvas_size), n_strokes=len(self.strokes),
            last_stroke=None if last is None else dict(
                points=[list(p) for p in last.points], color=last.color, radius=last.radius,
                erase=last.erase, canvas_points=self._canvas_points),
            recolors=self.recolors, last_latency_ms=self.last_latency_ms,
            result_sha1=None if self.result is None
            else hashlib.sha1(self.result.tobytes()).hexdigest()))
