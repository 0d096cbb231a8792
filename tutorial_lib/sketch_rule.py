"""Which openclipart SVGs become held-out real sketches: fetching the package, line art, framing, the rule.

Notebook 05 ("Real sketches") uses them; :mod:`tutorial_lib.sketch_cache` renders what the
rule keeps. Public-domain clip art from Debian's ``openclipart-svg`` package (fetched with
``apt-get download``, unpacked with ``dpkg -x``: nothing is installed) gives two kinds:

* **pairs**: outlines are dark lines and areas colored fills; rendered as it is (the colored
  truth) and with every colored paint turned white (or off, where translucent) and every
  dark one black (its line art), aligned pixel for pixel;
* **drawings**: the line art renders the same as the SVG itself: no colored truth.

Nothing from this source is ever used for training. The rule is spelled out in :func:`decide`.
"""
import hashlib
import pathlib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import cv2
import numpy as np

import tutorial_lib
from . import atomic
from . import openmoji

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
MAX_CONSIDERED = 2500      # more than the package's candidates: all of them
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
                              % (tool, PACKAGE, rel(SAMPLES_DIR)))
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


def rel(path):
    """``path`` relative to the repository when inside it (for messages)."""
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


def gray(rgb):
    """uint8 RGB -> uint8 gray."""
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
    stats = dict(ink=float(ink.mean()), thin_share=1 - float(thick.sum() / max(n_ink, 1)),
                 paper=float((line >= PAPER).mean()),
                 colored=float(colored.mean()),
                 ink_in_color=float((gray(color)[ink] < INK).mean()) if n_ink else 0.0,
                 diff=float(np.abs(gray(color).astype(np.int16) - line).mean()))
    # color edges: a neighbour differs by more than 40 in some channel
    c = color.astype(np.int16)
    edge = np.zeros(line.shape, bool)
    edge[:, 1:] |= np.abs(c[:, 1:] - c[:, :-1]).max(axis=2) > 40
    edge[1:, :] |= np.abs(c[1:, :] - c[:-1, :]).max(axis=2) > 40
    near_ink = cv2.dilate(ink.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    stats['edge_cover'] = float(near_ink[edge].mean()) if edge.any() else 1.0
    return stats


def decide(stats):
    """'pair', 'drawing', or Refused with the first rule that fails.

    Files are visited in a fixed hashed order, only in the pictorial categories
    (:data:`CATEGORIES`), skipping symbolic links, byte-identical copies and files over
    :data:`MAX_FILE_BYTES`. An SVG is refused outright when it has raster images, text, CSS
    ``<style>`` sheets, filters, masks, ``<use>`` clones, gradients or patterns used as
    paint, or a color we cannot read. A paint is *ink* when its luminance is below
    :data:`DARK_LUMA` and it is at least :data:`OPAQUE` opaque. The SVG is framed (the
    bounding box of what it draws plus a :data:`MARGIN`, centered on a white square) and
    rendered at :data:`DECIDE_SIZE` twice: as is (C) and as line art (L). Ink pixels = L
    below :data:`INK`.

    * both kinds: ink covers :data:`INK_RANGE` of the square; at least
      :data:`MIN_THIN_SHARE` of the ink is thin lines (what is left after a
      :data:`THICK` x :data:`THICK` morphological opening counts as solid black areas;
      clip art often draws outlines as thin dark *fills*, and those count); at least
      :data:`MIN_PAPER` of the square is paper (L >= :data:`PAPER`);
    * **pair**: at least :data:`MIN_COLORED` of C's pixels are colored (max-min of RGB >=
      :data:`COLORED_CHROMA`); at least :data:`MIN_INK_IN_COLOR` of the ink pixels are dark
      in C too; at least :data:`MIN_EDGE_COVER` of C's color edges lie within 2 px of ink
      (the areas are outlined, not separated by color alone);
    * **drawing**: C has almost no colored pixels (< :data:`MAX_DRAWING_COLORED`) and
      differs from L by less than :data:`MAX_DRAWING_DIFF` gray levels on average.
    """
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
    line = gray(render_framed(line_svg, frame, DECIDE_SIZE))
    stats = measure_drawing(color, line)
    return decide(stats), frame, stats, color, line
