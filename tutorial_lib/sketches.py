"""Real sketches: line art from other artists, never trained on (notebook 05, last section).

The course trains on OpenMoji's line layers only. To see what happens to *someone else's*
drawing, as the blog did with pixiv sketches, this module takes public-domain clip art
from Debian's ``openclipart-svg`` package (fetched with ``apt-get download`` and unpacked
with ``dpkg -x``: nothing is installed) and keeps two kinds of drawings:

* **pairs**: an SVG whose outlines are dark lines and whose areas are colored fills is
  rendered twice with resvg: as it is (the colored truth) and with every colored paint
  turned white (or off, where it was translucent) and every dark one turned black (its
  line art). White fills keep their stacking order, so a line hidden behind a colored
  shape stays hidden: line and color are aligned pixel for pixel.
* **drawings**: an SVG whose line art renders the same as the SVG itself (black lines on
  white, nothing else): a line drawing without a colored truth.

Nothing from this source is ever used for training: it is the course's held-out test.

The selection rule (:func:`classify`, decided on a square render at 256 px)
---------------------------------------------------------------------------
Files are visited in a fixed hashed order, only in the pictorial categories
(:data:`CATEGORIES`), skipping symbolic links, byte-identical copies and files over
:data:`MAX_FILE_BYTES`. An SVG is refused outright when it has raster images, text, CSS
``<style>`` sheets, filters, masks, ``<use>`` clones, gradients or patterns used as paint,
or a color we cannot read. A paint is *ink* when its luminance is below 80 and it is at
least 80% opaque. The SVG is framed (the bounding box of what it draws plus a 4% margin,
centered on a white square) and rendered twice: as is (C) and as line art (L: ink ->
black, every other paint -> white, or none where translucent). Ink pixels = L below 128.

* both kinds: ink covers 1-25% of the square; at least 60% of the ink is thin lines (what
  is left after a 7x7 morphological opening counts as solid black areas, not lines; clip
  art often draws its outlines as thin dark *fills* rather than strokes, and those count);
  at least 40% of the square is paper (L >= 250);
* **pair**: at least 10% of C's pixels are colored (max-min of RGB >= 40); at least 90% of
  the ink pixels are dark in C too (the line art really is drawn in the picture); at least
  70% of C's color edges (a neighbour differing by more than 40 in a channel) lie within
  2 px of ink: the areas are outlined, not separated by color alone;
* **drawing**: C has (almost) no colored pixels (< 0.2%) and differs from L by less than
  2 gray levels on average (nothing but the lines).

At most :data:`MAX_PAIRS` pairs and :data:`MAX_DRAWINGS` drawings are kept (of at most
:data:`MAX_CONSIDERED` files looked at), rendered at 128/256/512 px into ``data/sketches/``
(``make sketches``; gitignored; resumable; ``COMPLETE`` marks a finished build). A handful
are committed in ``data/samples/real_sketches/`` so the notebook and tests work without it.

The measure (:func:`measure`, ``python -m tutorial_lib.sketches measure``)
-------------------------------------------------------------------------
On the held-out pairs: PSNR of the network's colors at 0 and 10 hints (sampled from the
truth like the course's hints curve), next to the "line art on white" baseline (the line
image as RGB), and the mean CIE L* at *far paper* (pixels white in the sketch and more than
3 px from any ink) of the outputs, next to the same for the true pictures.
"""
import argparse
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import cv2
import numpy as np

import tutorial_lib
from . import atomic

PACKAGE = 'openclipart-svg'
CREDIT = ('Drawings: Openclipart (openclipart.org), public domain, from Debian\'s '
          'openclipart-svg package. Never used for training.')
CATEGORIES = ('animals', 'buildings', 'containers', 'decorations', 'education', 'electronics',
              'food', 'office', 'people', 'plants', 'recreation', 'science', 'tools',
              'transportation')
ORDER_SALT = 'let-there-be-color/real-sketches/v1'
SIZES = (128, 256, 512)
DECIDE_SIZE = 256
MAX_FILE_BYTES = 300_000
MAX_CONSIDERED = 2500      # openclipart-svg 0.18 has 2,279 candidates: all of them
MAX_PAIRS = 300
MAX_DRAWINGS = 200
RULE_VERSION = 1          # bump when the rule or the rendering changes: the cache is redone
DEFAULT_DIR = tutorial_lib.REPO_ROOT / 'data' / 'sketches'
SAMPLES_DIR = tutorial_lib.REPO_ROOT / 'data' / 'samples' / 'real_sketches'
KINDS = ('pairs', 'drawings')

# thresholds of the rule (see the module docstring)
INK = 128                  # a line-art pixel darker than this is ink
PAPER = 250                # a line-art pixel at least this light is paper
DARK_LUMA = 80             # a paint whose luminance is below this is ink, not color
OPAQUE = 0.8               # a paint less opaque than this is translucent
MARGIN = 0.04
INK_RANGE = (0.01, 0.25)
MIN_THIN_SHARE = 0.6       # of the ink in lines thinner than THICK px at 256 px
THICK = 7
MIN_PAPER = 0.4
COLORED_CHROMA = 40
MIN_COLORED = 0.10
MIN_INK_IN_COLOR = 0.9
MIN_EDGE_COVER = 0.7
MAX_DRAWING_COLORED = 0.002
MAX_DRAWING_DIFF = 2.0
FAR = 3                    # px: paper this far from any ink counts as far paper

SVG_NS = 'http://www.w3.org/2000/svg'
XLINK_NS = 'http://www.w3.org/1999/xlink'
ET.register_namespace('', SVG_NS)
ET.register_namespace('xlink', XLINK_NS)
SHAPES = {'path', 'rect', 'circle', 'ellipse', 'line', 'polyline', 'polygon'}
REFUSED_TAGS = {'image': 'a raster image', 'text': 'text', 'flowRoot': 'text',
                'style': 'a CSS style sheet', 'filter': 'a filter', 'mask': 'a mask',
                }
NAMED = {'black': (0, 0, 0), 'white': (255, 255, 255), 'red': (255, 0, 0),
         'green': (0, 128, 0), 'blue': (0, 0, 255), 'yellow': (255, 255, 0),
         'gray': (128, 128, 128), 'grey': (128, 128, 128), 'silver': (192, 192, 192),
         'maroon': (128, 0, 0), 'navy': (0, 0, 128), 'purple': (128, 0, 128),
         'orange': (255, 165, 0), 'brown': (165, 42, 42), 'lime': (0, 255, 0),
         'olive': (128, 128, 0), 'teal': (0, 128, 128), 'aqua': (0, 255, 255),
         'fuchsia': (255, 0, 255), 'pink': (255, 192, 203)}


class Refused(Exception):
    """An SVG the selection rule does not keep (the message says why)."""


class Unavailable(RuntimeError):
    """apt-get/dpkg are missing or the package cannot be fetched."""


# ---------------------------------------------------------------- fetching the package

def fetch(cache_dir=None, quiet=False):
    """The folder of openclipart SVGs, downloading and unpacking the .deb the first time.

    ``apt-get download openclipart-svg`` (runs ``apt-get update`` once if the lists are
    missing) into ``<cache>/deb`` and ``dpkg -x`` into ``<cache>/unpacked``; nothing is
    installed. Raises :class:`Unavailable` with a one-line reason without apt/dpkg.
    """
    cache = pathlib.Path(cache_dir or DEFAULT_DIR)
    root = cache / 'unpacked' / 'usr' / 'share' / 'openclipart' / 'svg'
    stamp = cache / 'unpacked' / 'UNPACKED'
    if stamp.is_file() and root.is_dir():
        return root
    for tool in ('apt-get', 'dpkg'):
        if shutil.which(tool) is None:
            raise Unavailable('%s not found: the real sketches come from the Debian package %s '
                              '(Debian/Ubuntu only); the committed samples in %s still work'
                              % (tool, PACKAGE, _rel(SAMPLES_DIR)))
    debs = cache / 'deb'
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob('%s_*.deb' % PACKAGE))
    if not found:
        say = (lambda *a: None) if quiet else print
        say('Downloading %s (about 25 MB) with apt-get download ...' % PACKAGE)
        for attempt in ('download', 'update'):
            if attempt == 'update':
                say('apt-get download failed; running apt-get update first ...')
                subprocess.run(['apt-get', 'update'], capture_output=True)
            r = subprocess.run(['apt-get', 'download', PACKAGE], cwd=debs,
                               capture_output=True, text=True)
            found = sorted(debs.glob('%s_*.deb' % PACKAGE))
            if found:
                break
        if not found:
            last = (r.stderr.strip().splitlines() or ['no message'])[-1]
            raise Unavailable('apt-get download %s failed (%s)' % (PACKAGE, last))
    unpack = cache / 'unpacked'
    if unpack.exists():
        shutil.rmtree(unpack)
    r = subprocess.run(['dpkg', '-x', str(found[-1]), str(unpack)], capture_output=True,
                       text=True)
    if r.returncode != 0 or not root.is_dir():
        raise Unavailable('dpkg -x %s failed (%s)' % (found[-1].name, r.stderr.strip()))
    atomic.write_bytes(stamp, found[-1].name.encode() + b'\n')
    return root


def _rel(path):
    try:
        return str(pathlib.Path(path).relative_to(tutorial_lib.REPO_ROOT))
    except ValueError:
        return str(path)


def candidates(root):
    """Relative paths of the SVGs the rule looks at, in the fixed hashed order (symbolic
    links, files over MAX_FILE_BYTES and byte-identical copies left out)."""
    root = pathlib.Path(root)
    names = []
    for cat in CATEGORIES:
        for p in (root / cat).rglob('*.svg'):
            if p.is_symlink() or not p.is_file() or p.stat().st_size > MAX_FILE_BYTES:
                continue
            names.append(p.relative_to(root).as_posix())
    names.sort(key=lambda n: hashlib.sha256(('%s:%s' % (ORDER_SALT, n)).encode()).digest())
    seen, out = set(), []
    for n in names:
        digest = hashlib.sha256((root / n).read_bytes()).digest()
        if digest not in seen:
            seen.add(digest)
            out.append(n)
    return out


# ---------------------------------------------------------------- reading paint

def parse_color(value):
    """An SVG paint -> (r, g, b) ints, None for 'none'; Refused for paint servers/unknown."""
    v = value.strip().lower()
    if v in ('none', 'transparent'):
        return None
    if v.startswith('url('):
        raise Refused('gradient or pattern paint')
    m = re.fullmatch(r'#([0-9a-f]{3}|[0-9a-f]{6})', v)
    if m:
        h = m.group(1)
        if len(h) == 3:
            h = ''.join(c * 2 for c in h)
        return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))
    m = re.fullmatch(r'rgb\(\s*([\d.]+%?)\s*,\s*([\d.]+%?)\s*,\s*([\d.]+%?)\s*\)', v)
    if m:
        return tuple(int(round(float(c[:-1]) * 2.55)) if c.endswith('%') else int(float(c))
                     for c in m.groups())
    if v in NAMED:
        return NAMED[v]
    raise Refused('unreadable color %r' % value)


def _luma(rgb):
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _style(el):
    props = {}
    for name in ('fill', 'stroke', 'fill-opacity', 'stroke-opacity', 'opacity', 'stroke-width',
                 'display', 'visibility'):
        if el.get(name) is not None:
            props[name] = el.get(name)
    for decl in (el.get('style') or '').split(';'):
        if ':' in decl:
            k, v = decl.split(':', 1)
            props[k.strip()] = v.strip()
    return props


def _float(value, default=1.0):
    try:
        return float(str(value).strip().rstrip('%')) / (100.0 if str(value).strip().endswith('%')
                                                        else 1.0)
    except ValueError:
        return default


def _local(tag):
    return tag.rsplit('}', 1)[-1] if isinstance(tag, str) else ''


def line_version(svg_text):
    """The SVG's line art, as SVG text, or Refused (see the module docstring).

    Dark opaque paint (fill or stroke) -> black; any other paint -> white where it was
    opaque (it still hides what lies under it), none where it was translucent.
    """
    try:
        root = ET.fromstring(svg_text)
    except ET.ParseError as e:
        raise Refused('not well-formed XML (%s)' % e) from None
    if _local(root.tag) != 'svg':
        raise Refused('not an SVG')
    for el in root.iter():
        tag = _local(el.tag)
        if tag in REFUSED_TAGS:
            raise Refused('has %s' % REFUSED_TAGS[tag])
        if el.get('filter') or el.get('mask') or 'filter:url' in (el.get('style') or '').replace(
                ' ', ''):
            raise Refused('has a filter or mask')
    edits = []   # (element, the declarations appended to its style)

    def walk(el, inherited, opacity, in_clip):
        tag = _local(el.tag)
        props = _style(el)
        state = dict(inherited)
        for k in ('fill', 'stroke', 'fill-opacity', 'stroke-opacity', 'stroke-width'):
            if k in props and props[k] != 'inherit':
                state[k] = props[k]
        opacity = opacity * _float(props.get('opacity', 1))
        in_clip = in_clip or tag in ('clipPath', 'defs', 'marker', 'symbol', 'pattern')
        if tag in SHAPES and not in_clip:
            fill = parse_color(state.get('fill', 'black'))
            stroke = parse_color(state.get('stroke', 'none'))
            if _float(state.get('stroke-width', 1)) <= 0:
                stroke = None
            fill_op = opacity * _float(state.get('fill-opacity', 1))
            stroke_op = opacity * _float(state.get('stroke-opacity', 1))
            decl = []
            for kind, paint, alpha in (('fill', fill, fill_op), ('stroke', stroke, stroke_op)):
                if paint is None:
                    continue
                if _luma(paint) < DARK_LUMA and alpha >= OPAQUE:
                    decl.append('%s:#000000;%s-opacity:1' % (kind, kind))
                else:
                    decl.append('%s:%s' % (kind, '#ffffff' if alpha >= OPAQUE else 'none'))
            if decl:
                edits.append((el, ';'.join(decl)))
        elif tag == 'use' and not in_clip:
            raise Refused('uses <use> clones (their paint cannot be rewritten reliably)')
        for child in el:
            walk(child, state, opacity, in_clip)

    walk(root, {}, 1.0, False)
    if not edits:
        raise Refused('draws nothing')
    for el, decl in edits:
        style = el.get('style')
        el.set('style', (style + ';' if style else '') + decl)  # the last declaration wins
    return ET.tostring(root, encoding='unicode')


# ---------------------------------------------------------------- framing and rendering

UNITS = {'': 1.0, 'px': 1.0, 'pt': 4 / 3, 'pc': 16.0, 'mm': 96 / 25.4, 'cm': 96 / 2.54,
         'in': 96.0}


def user_box(root):
    """(x, y, w, h) of the page in user units: the viewBox, else width/height in px."""
    vb = root.get('viewBox')
    if vb:
        box = [float(v) for v in re.split(r'[\s,]+', vb.strip())]
        if len(box) == 4 and box[2] > 0 and box[3] > 0:
            return tuple(box)
    size = []
    for name in ('width', 'height'):
        m = re.fullmatch(r'\s*([\d.eE+-]+)\s*([a-z]*)\s*', root.get(name) or '')
        if not m or m.group(2) not in UNITS:
            raise Refused('no viewBox and no absolute %s' % name)
        size.append(float(m.group(1)) * UNITS[m.group(2)])
    if min(size) <= 0:
        raise Refused('empty page')
    return (0.0, 0.0, size[0], size[1])


def set_frame(svg_text, box, width, height):
    """The SVG showing user-space ``box`` (x, y, w, h) in a ``width`` x ``height`` picture."""
    root = ET.fromstring(svg_text)
    root.set('viewBox', ' '.join('%.4f' % v for v in box))
    root.set('width', str(int(width)))
    root.set('height', str(int(height)))
    root.set('preserveAspectRatio', 'xMidYMid meet')
    return ET.tostring(root, encoding='unicode')


def render(svg_text, width, height):
    """Render on white -> uint8 RGB (height, width, 3); Refused when resvg cannot."""
    from . import openmoji
    try:
        return openmoji.render(svg_text, int(width), int(height))
    except (openmoji.SkipItem, ValueError, RuntimeError) as e:
        raise Refused('resvg cannot render it (%s)' % e) from None


def _fit(box, side):
    w, h = box[2], box[3]
    s = side / max(w, h)
    return max(1, int(round(w * s))), max(1, int(round(h * s)))


def find_frame(svg_text, probe=512):
    """The drawing's bounding box in user units, plus a :data:`MARGIN` on each side."""
    try:
        box = user_box(ET.fromstring(svg_text))
    except (ET.ParseError, ValueError) as e:
        raise Refused('cannot read the page size (%s)' % e) from None
    w, h = _fit(box, probe)
    image = render(set_frame(svg_text, box, w, h), w, h)
    ys, xs = np.nonzero(image.min(axis=2) < PAPER)
    if len(xs) == 0:
        raise Refused('renders blank')
    sx, sy = box[2] / w, box[3] / h
    x0, x1 = box[0] + xs.min() * sx, box[0] + (xs.max() + 1) * sx
    y0, y1 = box[1] + ys.min() * sy, box[1] + (ys.max() + 1) * sy
    m = MARGIN * max(x1 - x0, y1 - y0)
    return (x0 - m, y0 - m, x1 - x0 + 2 * m, y1 - y0 + 2 * m)


def render_framed(svg_text, frame, size):
    """``frame`` of the SVG with its long side at ``size``, centered on a white square."""
    w, h = _fit(frame, size)
    image = render(set_frame(svg_text, frame, w, h), w, h)
    out = np.full((size, size, 3), 255, np.uint8)
    y, x = (size - h) // 2, (size - w) // 2
    out[y:y + h, x:x + w] = image
    return out


def _gray(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


# ---------------------------------------------------------------- the selection rule

def measure_drawing(color, line):
    """The numbers the rule decides on: color uint8 RGB and its line art uint8 gray."""
    ink = line < INK
    n_ink = int(ink.sum())
    chroma = color.max(axis=2).astype(np.int16) - color.min(axis=2)
    colored = chroma >= COLORED_CHROMA
    thick = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_OPEN,
                             np.ones((THICK, THICK), np.uint8))
    stats = dict(ink=float(ink.mean()), thin_share=1 - float(thick.sum() / max(n_ink, 1)), paper=float((line >= PAPER).mean()),
                 colored=float(colored.mean()),
                 ink_in_color=float((_gray(color)[ink] < INK).mean()) if n_ink else 0.0,
                 diff=float(np.abs(_gray(color).astype(np.int16) - line).mean()))
    # color edges: a neighbour differs by more than 40 in some channel
    c = color.astype(np.int16)
    edge = np.zeros(line.shape, bool)
    edge[:, 1:] |= np.abs(c[:, 1:] - c[:, :-1]).max(axis=2) > 40
    edge[1:, :] |= np.abs(c[1:, :] - c[:-1, :]).max(axis=2) > 40
    near_ink = cv2.dilate(ink.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    stats['edge_cover'] = float(near_ink[edge].mean()) if edge.any() else 1.0
    return stats


def decide(stats):
    """'pair', 'drawing', or Refused with the first rule that fails."""
    checks = [(INK_RANGE[0] <= stats['ink'] <= INK_RANGE[1],
               'ink covers %.1f%% (want %g-%g%%)' % (100 * stats['ink'], 100 * INK_RANGE[0],
                                                     100 * INK_RANGE[1])),
              (stats['thin_share'] >= MIN_THIN_SHARE,
               'only %.0f%% of the ink is thin lines' % (100 * stats['thin_share'])),
              (stats['paper'] >= MIN_PAPER, 'only %.0f%% paper' % (100 * stats['paper']))]
    for ok, why in checks:
        if not ok:
            raise Refused(why)
    if stats['colored'] >= MIN_COLORED:
        if stats['ink_in_color'] < MIN_INK_IN_COLOR:
            raise Refused('line art not visible in the picture (%.0f%% of ink)'
                          % (100 * stats['ink_in_color']))
        if stats['edge_cover'] < MIN_EDGE_COVER:
            raise Refused('areas not outlined: %.0f%% of color edges near ink'
                          % (100 * stats['edge_cover']))
        return 'pair'
    if stats['colored'] < MAX_DRAWING_COLORED and stats['diff'] < MAX_DRAWING_DIFF:
        return 'drawing'
    raise Refused('neither colored (%.1f%%) nor plain line art (diff %.1f)'
                  % (100 * stats['colored'], stats['diff']))


def classify(svg_text):
    """(kind, frame, stats, color, line) with the renders at :data:`DECIDE_SIZE`, or Refused."""
    line_svg = line_version(svg_text)
    frame = find_frame(svg_text)
    color = render_framed(svg_text, frame, DECIDE_SIZE)
    line = _gray(render_framed(line_svg, frame, DECIDE_SIZE))
    stats = measure_drawing(color, line)
    return decide(stats), frame, stats, color, line


# ---------------------------------------------------------------- building the cache

def stem_of(relpath):
    """'food/desserts/candy_22.svg' -> 'food__desserts__candy_22' (a flat file stem)."""
    return re.sub(r'[^A-Za-z0-9._-]+', '_', relpath[:-4].replace('/', '__'))


def _png(out, size, stem, part):
    return pathlib.Path(out) / 'png' / str(size) / ('%s_%s.png' % (stem, part))


def _done(out, stem, kind, sizes):
    parts = ('color', 'line') if kind == 'pair' else ('line',)
    return all(_png(out, s, stem, p).is_file() for s in sizes for p in parts)


def _build_one(task):
    """Decide one SVG and, when kept, render it at every size. Runs in a worker process."""
    root, rel, out, sizes = task
    stem = stem_of(rel)
    try:
        svg = (pathlib.Path(root) / rel).read_text(encoding='utf-8')
        kind, frame, stats, color, line = classify(svg)
        line_svg = line_version(svg)
        for size in sizes:
            if size == DECIDE_SIZE:
                c, g = color, line
            else:
                c = render_framed(svg, frame, size) if kind == 'pair' else None
                g = _gray(render_framed(line_svg, frame, size))
            if kind == 'pair':
                atomic.write_png(_png(out, size, stem, 'color'), c)
            atomic.write_png(_png(out, size, stem, 'line'), g)   # written last: marks it done
        return rel, dict(kind=kind, stats={k: round(v, 4) for k, v in stats.items()})
    except (Refused, UnicodeDecodeError) as e:
        reason = str(e) if isinstance(e, Refused) else 'not UTF-8'
        return rel, dict(kind=None, reason=reason)


def _fingerprint(root):
    from .openmoji import _version
    stamp = pathlib.Path(root).parents[3] / 'UNPACKED'
    return dict(rule=RULE_VERSION, resvg_py=_version('resvg-py'),
                deb=stamp.read_text().strip() if stamp.is_file() else None)


def build(out=None, limit=None, workers=None, sizes=SIZES, progress=True):
    """Fetch openclipart-svg, select pairs and drawings, render them into ``out``.

    Resumable: decisions are saved in ``decisions.json`` as they come, pictures are written
    atomically, and a rerun only does what is missing. ``limit``: look at only the first N
    candidate files (default :data:`MAX_CONSIDERED`). Returns the index (also written to
    ``index.json``); ``COMPLETE`` marks the end.
    """
    out = pathlib.Path(out or DEFAULT_DIR)
    t0 = time.time()
    root = fetch(out, quiet=not progress)
    names = candidates(root)[:limit or MAX_CONSIDERED]
    fp = dict(_fingerprint(root), sizes=list(sizes))
    dec_path, complete = out / 'decisions.json', out / 'COMPLETE'
    decisions = {}
    if dec_path.is_file():
        saved = json.loads(dec_path.read_text())
        if saved.get('fingerprint') == fp:
            decisions = saved['decisions']
    if complete.is_file() and decisions and json.loads(complete.read_text()).get(
            'candidates') == len(names):
        index = json.loads((out / 'index.json').read_text())
        if progress:
            print('%s is complete: %d pairs, %d line drawings (delete its COMPLETE to redo)'
                  % (_rel(out), len(index['pairs']), len(index['drawings'])))
        return index
    if complete.is_file():
        complete.unlink()

    def kept(kind):
        return [n for n in names if decisions.get(n, {}).get('kind') == kind]

    def full():
        return len(kept('pair')) >= MAX_PAIRS and len(kept('drawing')) >= MAX_DRAWINGS

    todo = [n for n in names if n not in decisions or (
        decisions[n]['kind'] and not _done(out, stem_of(n), decisions[n]['kind'], sizes))]
    workers = workers or min(4, os.cpu_count() or 1)
    if progress:
        print('%d candidate SVGs, %d to look at (%d worker%s)'
              % (len(names), len(todo), workers, 's' if workers > 1 else ''))
    tasks = [(str(root), n, str(out), tuple(sizes)) for n in todo]

    def save():
        atomic.write_json(out / 'decisions.json', dict(fingerprint=fp, decisions=decisions))

    if workers > 1 and len(tasks) > 8:
        import multiprocessing
        pool = multiprocessing.get_context('spawn').Pool(workers, initializer=cv2.setNumThreads,
                                                         initargs=(1,))
        results = pool.imap(_build_one, tasks, chunksize=4)
    else:
        pool, results = None, map(_build_one, tasks)
    try:
        for i, (rel, decision) in enumerate(results, 1):
            decisions[rel] = decision
            if i % 100 == 0:
                save()
                if progress:
                    print('  %d/%d looked at: %d pairs, %d drawings (%.0f s)'
                          % (i, len(tasks), len(kept('pair')), len(kept('drawing')),
                             time.time() - t0), flush=True)
            if full():
                break
    finally:
        if pool is not None:
            pool.terminate()
        save()
    pairs, drawings = kept('pair')[:MAX_PAIRS], kept('drawing')[:MAX_DRAWINGS]
    refused = {}
    for n in names:
        d = decisions.get(n)
        if d and not d['kind']:
            key = re.sub(r'[\d.]+%?', 'N', d['reason'])
            refused[key] = refused.get(key, 0) + 1
    index = dict(credit=CREDIT, sizes=list(sizes), fingerprint=fp, limit=limit,
                 considered=sum(n in decisions for n in names),
                 pairs=[dict(name=stem_of(n), source=n, **decisions[n]['stats']) for n in pairs],
                 drawings=[dict(name=stem_of(n), source=n, **decisions[n]['stats'])
                           for n in drawings],
                 refused=dict(sorted(refused.items(), key=lambda kv: -kv[1])))
    atomic.write_json(out / 'index.json', index)
    atomic.write_json(complete, dict(candidates=len(names), seconds=round(time.time() - t0, 1)))
    if progress:
        print('%d pairs and %d line drawings from %d SVGs in %.0f s -> %s'
              % (len(pairs), len(drawings), index['considered'], time.time() - t0, _rel(out)))
    return index


# ---------------------------------------------------------------- loading

def is_built(data_dir=None):
    return (pathlib.Path(data_dir or DEFAULT_DIR) / 'COMPLETE').is_file()


def _read(path, gray):
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError('cannot read %s' % path)
    return image if gray else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _resized(image, size):
    if image.shape[0] == size:
        return image
    interp = cv2.INTER_AREA if size < image.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interp)


def held_out(size=128, limit=None, data_dir=None, source='auto'):
    """The held-out real sketches: (pairs, drawings, where).

    ``pairs``: a :class:`data.Pairs` (line art + colored truth); ``drawings``: (names, lines
    uint8 (N,size,size)); ``where``: a sentence saying which source was used. ``source``:
    'cache' (``data/sketches``, built by ``make sketches``), 'samples' (the committed
    ``data/samples/real_sketches``) or 'auto' (the cache when built, else the samples).
    Cache pictures come at 128/256/512 px; the 256 px samples are resized (area/bicubic).
    """
    from .data import Pairs
    folder = pathlib.Path(data_dir or DEFAULT_DIR)
    if source == 'auto':
        source = 'cache' if is_built(folder) else 'samples'
    if source == 'cache':
        if not is_built(folder):
            raise FileNotFoundError('no real-sketch cache in %s: run `make sketches`'
                                    % _rel(folder))
        index = json.loads((folder / 'index.json').read_text())
        stored = size if size in index['sizes'] else max(index['sizes'])

        def path(name, part):
            return _png(folder, stored, name, part)
        where = 'the real-sketch cache %s' % _rel(folder)
    elif source == 'samples':
        index = json.loads((SAMPLES_DIR / 'index.json').read_text())

        def path(name, part):
            return SAMPLES_DIR / ('%s_%s.png' % (name, part))
        where = 'the committed samples %s' % _rel(SAMPLES_DIR)
    else:
        raise ValueError("source must be 'auto', 'cache' or 'samples', got %r" % (source,))
    items = index['pairs'][:limit]
    pairs = Pairs([it['name'] for it in items],
                  np.stack([_resized(_read(path(it['name'], 'line'), True), size)
                            for it in items]).reshape(-1, size, size),
                  np.stack([_resized(_read(path(it['name'], 'color'), False), size)
                            for it in items]).reshape(-1, size, size, 3))
    items = index['drawings'][:limit]
    drawings = ([it['name'] for it in items],
                np.stack([_resized(_read(path(it['name'], 'line'), True), size)
                          for it in items]).reshape(-1, size, size))
    where = '%s: %d pairs, %d line drawings at %d px' % (where, len(pairs), len(drawings[0]),
                                                          size)
    return pairs, drawings, where


# ---------------------------------------------------------------- the measure

def far_paper(lines, far=FAR):
    """bool (N,H,W): paper in the sketch (>= PAPER) and more than ``far`` px from any ink."""
    lines = np.asarray(lines)
    out = np.zeros(lines.shape, bool)
    for i, line in enumerate(lines.reshape((-1,) + lines.shape[-2:])):
        not_ink = (line >= INK).astype(np.uint8)
        dist = cv2.distanceTransform(not_ink, cv2.DIST_L2, 5) if not_ink.min() == 0 else \
            np.full(line.shape, np.inf, np.float32)
        out.reshape((-1,) + lines.shape[-2:])[i] = (line >= PAPER) & (dist > far)
    return out


def lightness(images):
    """CIE L* (0 = black, 100 = white) of uint8 RGB pictures, float32 (...,H,W)."""
    images = np.asarray(images)
    flat = images.reshape((-1,) + images.shape[-3:])
    out = np.stack([cv2.cvtColor(im.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 0]
                    for im in flat]) if len(flat) else np.zeros((0,) + images.shape[-3:-1])
    return out.reshape(images.shape[:-1])


def paper_lightness(images, lines, far=FAR):
    """Mean L* of ``images`` (N,H,W,3) at the far-paper pixels of ``lines`` (N,H,W): the mean
    over pictures of each picture's mean (pictures without far paper are left out); NaN
    when no picture has any."""
    mask = far_paper(lines, far)
    light = lightness(images)
    per = [float(light[i][mask[i]].mean()) for i in range(len(mask)) if mask[i].any()]
    return float(np.mean(per)) if per else float('nan')


def _hinted_colors(stage1, stage2, lines, colors, n, seed):
    """Colors of ``lines`` with ``n`` hints sampled from ``colors`` (the curve's recipe)."""
    from . import evaluation, hints, models
    from . import stage2 as stage2_mod
    from .colorize import STAGE1_SIDE
    size = lines.shape[1]
    small = colors if size == STAGE1_SIDE else np.stack(
        [stage2_mod.resize(c, (STAGE1_SIDE, STAGE1_SIDE)) for c in colors])
    rgb, mask = hints.truth_hints(small, n, seed, radius=evaluation.CURVE_RADIUS)
    if stage2 is None and size == STAGE1_SIDE:
        extra = hints.encode_batch(rgb, mask) if stage1.in_ch == 4 else None
        return models.colorize(stage1, lines, extra=extra), (rgb, mask)
    from .colorize import Colorizer
    col = Colorizer(stage1, stage2)
    given = [(rgb[i], mask[i]) if stage1.in_ch == 4 else None for i in range(len(lines))]
    return np.stack([col.colorize(line, hints=h) for line, h in zip(lines, given)]), (rgb, mask)


def measure(stage1=None, stage2=None, hint_counts=(0, 10), size=128, limit=None, seed=0,
            source='auto', data_dir=None, outputs=False, label=None):
    """The real-sketch numbers as a dict (see the module docstring).

    ``stage1``: a U-Net or a checkpoint name/path (default: the Colorizer's stage 1);
    ``stage2``: None (stage 1 alone at ``size`` = 128 px, as the course's hints curve) or a
    stage-2 U-Net/name (the two-stage Colorizer, e.g. at ``size=256``). Hints: ``n`` disks
    of radius ``evaluation.CURVE_RADIUS`` at 128 px, colored from the truth
    (:func:`hints.truth_hints`, seed ``seed``). ``outputs=True`` also returns the pictures
    (keys pairs, drawings, outputs, hints, drawing_outputs) for :func:`contact_sheet`.
    ``label``: how to name a stage 1 given as a network in the report.
    """
    from . import metrics
    from . import stage2 as stage2_mod
    from .colorize import DEFAULT_STAGE1
    stage1 = stage1 if stage1 is not None else DEFAULT_STAGE1
    name1 = label or (stage1 if isinstance(stage1, (str, os.PathLike)) else
                      'a %s of width %g' % (type(stage1).__name__, stage1.width))
    name2 = stage2 if stage2 is None or isinstance(stage2, (str, os.PathLike)) \
        else type(stage2).__name__
    gen1 = stage2_mod.load_unet(stage1) if isinstance(stage1, (str, os.PathLike)) else stage1
    gen2 = stage2_mod.load_unet(stage2) if isinstance(stage2, (str, os.PathLike)) else stage2
    if gen1.in_ch != 4:
        hint_counts = [n for n in hint_counts if n == 0]
    pairs, drawings, where = held_out(size, limit, data_dir, source)
    lines, colors = np.asarray(pairs.lines), np.asarray(pairs.colors)
    line_rgb = np.repeat(lines[..., None], 3, axis=-1)

    def mean_psnr(images):
        return float(np.mean(np.minimum(metrics.psnr(images, colors), metrics.PSNR_CAP)))

    result = dict(source=where, n_pairs=len(pairs), n_drawings=len(drawings[0]), size=size,
                  stage1=str(name1), stage2=None if name2 is None else str(name2),
                  baseline_psnr=mean_psnr(line_rgb), psnr={}, gain={}, paper_lightness={},
                  truth_paper_lightness=paper_lightness(colors, lines),
                  baseline_paper_lightness=paper_lightness(line_rgb, lines))
    outs, hint_sets = {}, {}
    for n in hint_counts:
        outs[n], hint_sets[n] = _hinted_colors(gen1, gen2, lines, colors, n, seed)
        result['psnr'][n] = mean_psnr(outs[n])
        result['gain'][n] = result['psnr'][n] - result['baseline_psnr']
        result['paper_lightness'][n] = paper_lightness(outs[n], lines)
    dl = drawings[1]
    drawing_out = _hinted_colors(gen1, gen2, dl, np.repeat(dl[..., None], 3, -1), 0, seed)[0] \
        if len(dl) else np.zeros(dl.shape + (3,), np.uint8)
    result['drawings_paper_lightness'] = paper_lightness(drawing_out, dl) if len(dl) \
        else float('nan')
    if outputs:
        result.update(pairs=pairs, drawings=drawings, outputs=outs, hints=hint_sets,
                      drawing_outputs=drawing_out)
    return result


def format_measure(r):
    """The dict of :func:`measure` as a small text table."""
    lines = ['Real sketches (never trained on) - %s' % r['source'],
             'stage 1: %s%s; %d px; far paper = white in the sketch, > %d px from ink'
             % (r['stage1'], '' if r['stage2'] is None else ', stage 2: %s' % r['stage2'],
                r['size'], FAR),
             '%-28s %9s %9s %14s' % ('', 'PSNR dB', 'vs line', 'far-paper L*'),
             '%-28s %9.2f %9s %14.1f' % ('line art on white (baseline)', r['baseline_psnr'], '',
                                         r['baseline_paper_lightness'])]
    for n in r['psnr']:
        lines.append('%-28s %9.2f %+9.2f %14.1f' % ('network, %d hints' % n, r['psnr'][n],
                                                    r['gain'][n], r['paper_lightness'][n]))
    lines.append('%-28s %9s %9s %14.1f' % ('true colored pictures', '', '',
                                           r['truth_paper_lightness']))
    if r['n_drawings']:
        lines.append('line drawings without truth (%d), network at 0 hints: far-paper L* %.1f'
                     % (r['n_drawings'], r['drawings_paper_lightness']))
    return '\n'.join(lines)


def contact_sheet(result, n=6, hints=None, size=1.9):
    """Rows of held-out pairs: sketch | 0 hints | the hints | n hints | truth (a figure).

    ``result``: :func:`measure` with ``outputs=True``; ``hints``: which hint count to show
    (default the largest measured).
    """
    from . import hints as hints_mod
    from .viz import show_grid
    pairs, outs = result['pairs'], result['outputs']
    k = hints if hints is not None else max(outs)
    rgb, mask = result['hints'][k]
    images, titles = [], []
    for i in range(min(n, len(pairs))):
        line = pairs.lines[i]
        dots = hints_mod.overlay(line, *hints_mod.resize_hints(rgb[i], mask[i], line.shape)) \
            if k else line
        images += [line, outs[min(outs)][i], dots, outs[k][i], pairs.colors[i]]
        titles += [pairs.names[i].split('__')[-1], '%d hints' % min(outs),
                   'the %d hints' % k, '%d hints' % k, 'truth']
    return show_grid(images, titles, ncols=5, size=size, credit=CREDIT,
                     suptitle='Held-out real sketches (%d px)' % result['size'])


def drawings_sheet(result, n=8, size=1.9):
    """Line drawings without a colored truth: sketch | colored with no hints, 4 per row."""
    from .viz import show_grid
    names, lines = result['drawings']
    out = result['drawing_outputs']
    images, titles = [], []
    for i in range(min(n, len(names))):
        images += [lines[i], out[i]]
        titles += [names[i].split('__')[-1], 'no hints']
    return show_grid(images, titles, ncols=4, size=size, credit=CREDIT,
                     suptitle='Held-out line drawings, colored without hints')


# ---------------------------------------------------------------- committed samples

def make_samples(out=None, data_dir=None, n_pairs=8, n_drawings=4):
    """Copy a few cached 256 px pairs and drawings into ``data/samples/real_sketches``:
    the first of each category in the cache's order, so they are varied."""
    folder = pathlib.Path(data_dir or DEFAULT_DIR)
    out = pathlib.Path(out or SAMPLES_DIR)
    index = json.loads((folder / 'index.json').read_text())
    chosen = {}
    for kind, count in (('pairs', n_pairs), ('drawings', n_drawings)):
        seen, picked = set(), []
        for it in index[kind]:
            top = it['source'].split('/')[0]
            if top not in seen and len(picked) < count:
                seen.add(top)
                picked.append(it)
        chosen[kind] = picked
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob('*.png'):
        old.unlink()
    for kind, items in chosen.items():
        for it in items:
            for part in (('line', 'color') if kind == 'pairs' else ('line',)):
                shutil.copyfile(_png(folder, 256, it['name'], part),
                                out / ('%s_%s.png' % (it['name'], part)))
    atomic.write_json(out / 'index.json', dict(
        credit=CREDIT, size=256, fingerprint=index['fingerprint'],
        about='Held-out real sketches (never used for training), made by python -m '
              'tutorial_lib.sketches samples from the cache of `make sketches`.',
        pairs=chosen['pairs'], drawings=chosen['drawings']))
    return chosen


# ---------------------------------------------------------------- command line

def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m tutorial_lib.sketches',
                                description='Real sketches from openclipart-svg: build the '
                                            'held-out set, measure a model on it.')
    sub = p.add_subparsers(dest='command', required=True)
    b = sub.add_parser('build', help='fetch openclipart-svg and build data/sketches')
    b.add_argument('--out', default=str(DEFAULT_DIR))
    b.add_argument('--limit', type=int, help='look at only the first N candidate SVGs')
    b.add_argument('--workers', type=int)
    m = sub.add_parser('measure', help='PSNR and paper lightness on the held-out pairs')
    m.add_argument('--stage1', default=None, help='stage-1 checkpoint name or path '
                                                  '(default: the Colorizer\'s)')
    m.add_argument('--stage2', default=None, help='also run this stage 2 (use --size 256)')
    m.add_argument('--hints', default='0,10', help='hint counts, comma-separated')
    m.add_argument('--limit', type=int, help='only the first N pairs and drawings')
    m.add_argument('--size', type=int, default=128)
    m.add_argument('--source', choices=['auto', 'cache', 'samples'], default='auto')
    s = sub.add_parser('samples', help='copy a few cached ones into data/samples/real_sketches')
    s.add_argument('--pairs', type=int, default=8)
    s.add_argument('--drawings', type=int, default=4)
    args = p.parse_args(argv)
    if args.command == 'build':
        try:
            build(args.out, args.limit, args.workers)
        except Unavailable as e:
            print('Skipping the real sketches: %s' % e)
        return 0
    if args.command == 'samples':
        chosen = make_samples(n_pairs=args.pairs, n_drawings=args.drawings)
        print('wrote %d pairs and %d drawings to %s' % (len(chosen['pairs']),
                                                        len(chosen['drawings']), _rel(SAMPLES_DIR)))
        return 0
    counts = [int(v) for v in args.hints.split(',') if v.strip()]
    try:
        r = measure(args.stage1, args.stage2, counts, args.size, args.limit,
                    source=args.source)
    except FileNotFoundError as e:
        print('error: %s' % e, file=sys.stderr)
        return 2
    print(format_measure(r))
    return 0


if __name__ == '__main__':
    sys.exit(main())
