"""The figure check of ``make test`` (not taught): before a notebook shows a figure, no text of it
may overlap another text or be cut at the figure's edge."""
import ast
import math
import os
import sys

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib._pylab_helpers import Gcf

# ``make test`` runs every notebook in QUICK mode with
# MPLBACKEND=module://tutorial_lib.infra.figcheck. This module is then the notebook's matplotlib
# backend: figures are drawn and displayed exactly as with the usual inline backend, but before
# a figure is shown (plt.show(), or the end of a cell that leaves figures open) every title,
# axis label, tick label, legend entry, annotation and figure text is measured with the
# renderer (Text.get_window_extent); overlaps or texts past the edge raise FigureLayoutError
# naming the figure and the texts, so the cell fails. To look at one notebook by hand:
#     QUICK=1 MPLBACKEND=module://tutorial_lib.infra.figcheck python -m pytest --nbmake notebooks/03_adversarial.ipynb
# Rotated texts are compared as rotated rectangles, not as their bounding boxes, so slanted
# tick labels that only look close do not count. TOLERANCE_PX pixels of contact are allowed.
TOLERANCE_PX = 1.0


class FigureLayoutError(AssertionError):
    """A shown figure has overlapping or cut texts."""


def _label(text):
    s = ' '.join(text.get_text().split())
    return repr(s if len(s) <= 60 else s[:57] + '...')


def _visible(text):
    return text.get_visible() and text.get_text().strip() and (text.get_alpha() is None or text.get_alpha() > 0)


def _axes_texts(ax):
    if not ax.get_visible():
        return []
    texts = [ax.title, ax._left_title, ax._right_title]
    if ax.axison:                                   # ax.axis('off') hides labels and ticks
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_visible():
                texts += [axis.label, axis.get_offset_text()]
                for tick in axis._update_ticks():   # the ticks inside the view: those drawn
                    texts += [tick.label1, tick.label2]
    texts += list(ax.texts)
    legend = ax.get_legend()
    if legend is not None and legend.get_visible():
        texts += list(legend.get_texts()) + [legend.get_title()]
    for child in ax.child_axes:
        texts += _axes_texts(child)
    return texts


def figure_texts(fig):
    """Every text of ``fig`` that is drawn: (text, where) pairs; ``where`` names its axes."""
    out = []
    for text in fig.texts:
        out.append((text, 'figure'))
    for legend in fig.legends:
        for text in list(legend.get_texts()) + [legend.get_title()]:
            out.append((text, 'figure legend'))
    for sub in getattr(fig, 'subfigs', []):
        out += figure_texts(sub)
    for i, ax in enumerate(fig.axes):
        name = ax.get_title() or ax.get_label() or 'axes %d' % i
        for text in _axes_texts(ax):
            out.append((text, 'axes %r' % name))
    seen, unique = set(), []
    for text, where in out:
        if id(text) not in seen and _visible(text):
            seen.add(id(text))
            unique.append((text, where))
    return unique


def _rectangle(text, renderer):
    """Corners of the text's (possibly rotated) box in display pixels."""
    box = text.get_window_extent(renderer)
    angle = text.get_rotation() % 180
    if abs(angle) < 1e-6 or abs(angle - 90) < 1e-6:
        return [(box.x0, box.y0), (box.x1, box.y0), (box.x1, box.y1), (box.x0, box.y1)]
    # the unrotated size of the same text, centred where the rotated bounding box is centred
    rotation = text.get_rotation()
    text.set_rotation(0)
    flat = text.get_window_extent(renderer)
    text.set_rotation(rotation)
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    w, h = flat.width / 2, flat.height / 2
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    return [(cx + dx * c - dy * s, cy + dx * s + dy * c) for dx, dy in ((-w, -h), (w, -h), (w, h), (-w, h))]


def _penetration(a, b):
    """How deep two convex polygons overlap (pixels, separating-axis test); <= 0: apart."""
    depth = math.inf
    for poly in (a, b):
        for i in range(len(poly)):
            (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % len(poly)]
            nx, ny = y0 - y1, x1 - x0
            norm = math.hypot(nx, ny)
            if norm == 0:
                continue
            nx, ny = nx / norm, ny / norm
            pa = [x * nx + y * ny for x, y in a]
            pb = [x * nx + y * ny for x, y in b]
            depth = min(depth, min(max(pa), max(pb)) - max(min(pa), min(pb)))
    return depth


def problems(fig):
    """Overlapping and cut texts of ``fig``, as sentences (empty: the figure reads)."""
    if not hasattr(fig.canvas, 'get_renderer'):
        FigureCanvasAgg(fig)
    # twice, as the notebook's display does (the bbox_inches='tight' pass, then the picture):
    # constrained layout settles on the second pass
    fig.canvas.draw()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [(t, where, _rectangle(t, renderer)) for t, where in figure_texts(fig)]
    width, height = fig.bbox.width, fig.bbox.height
    title = fig._suptitle.get_text() if getattr(fig, '_suptitle', None) else ''
    if not title:
        title = next((ax.get_title() for ax in fig.axes if ax.get_title()), '(untitled)')
    found = []
    for text, where, corners in texts:
        xs, ys = [x for x, _ in corners], [y for _, y in corners]
        if (min(xs) < -TOLERANCE_PX or min(ys) < -TOLERANCE_PX
                or max(xs) > width + TOLERANCE_PX or max(ys) > height + TOLERANCE_PX):
            found.append('figure %r: %s (%s) is cut at the figure edge' % (title, _label(text), where))
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            a, b = texts[i], texts[j]
            if _penetration(a[2], b[2]) > TOLERANCE_PX:
                found.append('figure %r: %s (%s) overlaps %s (%s)'
                             % (title, _label(a[0]), a[1], _label(b[0]), b[1]))
    return found


def check_figure(fig):
    """Raise :class:`FigureLayoutError` if ``fig`` has overlapping or cut texts."""
    found = problems(fig)
    if found:
        raise FigureLayoutError('\n'.join(found))


def check_open_figures():
    """Check every figure pyplot holds open (those about to be shown).

    With the environment variable ``FIGCHECK=warn`` the findings are printed instead of
    raised (to survey all figures of a notebook in one run)."""
    for manager in Gcf.get_all_fig_managers():
        if os.environ.get('FIGCHECK') == 'warn':
            for line in problems(manager.canvas.figure):
                print('FIGCHECK ' + line, file=sys.stderr)
        else:
            check_figure(manager.canvas.figure)


# --- the backend: matplotlib_inline's, with the check in front of every display ---------------
from matplotlib_inline import backend_inline as _inline  # noqa: E402

FigureCanvas = _inline.FigureCanvas
new_figure_manager = _inline.new_figure_manager
new_figure_manager_given_figure = _inline.new_figure_manager_given_figure
flush_figures = _inline.flush_figures


def show(close=None, block=None):
    """``plt.show()``: check the open figures, then display them as the inline backend does."""
    try:
        check_open_figures()
    except FigureLayoutError:
        if _shell() is not None:
            matplotlib.pyplot.close('all')   # do not display them again at the end of the cell
        raise
    if _shell() is not None:
        return _inline.show(close, block)


class _CheckAtCellEnd(ast.NodeTransformer):
    """Appends ``check_open_figures()`` to each cell, keeping the cell's last value displayed."""

    def visit_Module(self, node):
        call = ast.parse('__import__("tutorial_lib.infra.figcheck").infra.figcheck.check_open_figures()').body
        body = list(node.body)
        if body and isinstance(body[-1], ast.Expr):
            keep = ast.parse('__figcheck_last__ = 0').body[0]
            keep.value = body[-1].value
            body = body[:-1] + [keep] + call + [ast.parse('__figcheck_last__').body[0]]
        else:
            body = body + call
        node.body = body
        return ast.fix_missing_locations(node)


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _enable_in_ipython():
    shell = _shell()
    if shell is None:
        return
    from IPython.core.pylabtools import activate_matplotlib
    backend = 'module://tutorial_lib.infra.figcheck'

    def configure(*args):
        activate_matplotlib(backend)
        # display formats, rc and the end-of-cell display of the inline backend
        _inline.configure_inline_support(shell, 'inline')
        if not any(isinstance(t, _CheckAtCellEnd) for t in shell.ast_transformers):
            shell.ast_transformers.append(_CheckAtCellEnd())

    try:
        configure()
    except (ImportError, AttributeError):   # pyplot still half imported: finish after this cell
        def once(*args):
            configure()
            shell.events.unregister('post_run_cell', once)
        shell.events.register('post_run_cell', once)


_enable_in_ipython()
