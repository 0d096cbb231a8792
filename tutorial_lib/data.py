"""Line/color training pairs: the OpenMoji cache, the committed samples, your own pictures.

Quick use::

    from tutorial_lib import data
    train = data.load_split('train', 128)          # Pairs: names, lines (N,H,W), colors (N,H,W,3)
    test = data.load_split('test', 512, limit=16)  # a few big ones
    mine = data.pairs_from_folder('my_drawings', size=256)
    print(data.CREDIT)                              # show it wherever the pictures are shown

Conventions: colors are uint8 RGB (N,H,W,3); lines are uint8 (N,H,W) with 255 = white
paper and 0 = black ink; everything sits on a white background.

Command line (``python -m tutorial_lib.data ...``):

* ``build [--out DIR] [--sizes 128 256 512] [--limit N] [--workers K] [--pack-sizes 128]``
  renders the OpenMoji pairs (what ``make data`` runs; see :mod:`tutorial_lib.openmoji`
  for which SVGs and how the train/test split is made).
* ``folder SRC --out DIR [--size 256]`` turns a folder of your colored pictures into a
  cache with the same layout, so ``load_split('train', 256, data_dir=DIR)`` works on it.
* ``samples`` regenerates the committed ``data/samples`` (36 test pairs + 6 sketches).
* ``info [--data-dir DIR]`` prints what a cache holds.

Cache layout (default ``$TUTORIAL_DATA_DIR`` or ``<repo>/data/openmoji``)::

    index.json                    names, file stems, base, group, split, load order, skipped
    png/<size>/<stem>_color.png   RGB picture
    png/<size>/<stem>_line.png    gray line art
    packed/<size>/<split>_lines.npy, <split>_colors.npy, <split>.json
                                  every pair of a split in one array (sizes in --pack-sizes)
    COMPLETE                      written last, only after everything above succeeded

Every file is written to a temporary file in the same folder and moved into place with
``os.replace``, so a build killed half-way leaves no truncated file, and a rerun only
does what is missing. Loading: packed sizes (128 by default: 223 MB for the whole train
split) come from a memory-mapped ``.npy`` in about a second; other sizes decode PNGs.
When a request would take more than 1 GiB of memory (512 px without ``limit``: 3.5 GB),
``load_split`` returns :class:`LazyImages` arrays that decode an item when it is indexed.
"""
import tutorial_lib  # noqa: F401  (first: applies the chainer compat shim)

import argparse
import dataclasses
import hashlib
import json
import multiprocessing
import os
import pathlib
import re
import shutil
import sys
import time
import warnings

import cv2
import numpy as np
from tqdm.auto import tqdm

from . import atomic
from . import cli
from . import imageheader
from .openmoji import CREDIT, SkipItem
from .pairs import SimplePairs, synthetic_pairs, take

SPLITS = ('train', 'test')
DEFAULT_SIZES = (128, 256, 512)
DEFAULT_PACK_SIZES = (128,)
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp')
ACCEPTED = 'PNG, JPEG or WebP pictures (8- or 16-bit; gray, RGB or RGBA)'
LAZY_BYTES = 1 << 30   # above this, load_split decodes on access instead of up front
MAX_PIXELS = 50_000_000  # read_image refuses larger pictures (from the header, before decoding)
MAX_ASPECT = 16        # folder pictures more elongated than this are skipped (see fit_square)
PACK_MAX_BYTES = 4 << 30
FOLDER_SALT = 'let-there-be-color/folder-split/v1'


# ---------------------------------------------------------------- the Pairs container

class LazyImages:
    """A read-only, array-like stack of PNG files, decoded when indexed.

    ``x[i]`` gives one uint8 image, ``x[3:7]`` or ``x[[1, 5, 9]]`` a stacked ndarray;
    ``len``, ``shape``, ``dtype`` and ``ndim`` work as for an ndarray. ``np.asarray(x)``
    decodes everything (careful at 512 px). ``take(idx)`` gives a lazy subset.
    """

    def __init__(self, folder, stems, kind, size):
        self.folder, self.stems, self.kind, self.size = pathlib.Path(folder), list(stems), kind, size
        self.shape = (len(self.stems), size, size) + ((3,) if kind == 'color' else ())
        self.dtype, self.ndim = np.dtype(np.uint8), len(self.shape)

    def __len__(self):
        return len(self.stems)

    def _read(self, i):
        path = self.folder / ('%s_%s.png' % (self.stems[i], self.kind))
        image = cv2.imread(str(path), cv2.IMREAD_COLOR if self.kind == 'color' else cv2.IMREAD_GRAYSCALE)
        if image is None:
            cache = self.folder.parent.parent
            raise OSError(
                'cannot read %s: the cache is damaged (a missing or truncated file). Repair '
                'it with the command that built it, which redoes only damaged files: '
                '`python -m tutorial_lib.data build --out %s` for the OpenMoji pairs, or '
                '`python -m tutorial_lib.data folder SRC --out %s` for your own pictures'
                % (path, cache, cache))
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if self.kind == 'color' else image

    def __getitem__(self, idx):
        if isinstance(idx, (int, np.integer)):
            return self._read(range(len(self))[idx])
        sel = _as_indices(idx, len(self))
        out = np.empty((len(sel),) + self.shape[1:], np.uint8)
        for k, i in enumerate(tqdm(sel, desc='decoding', leave=False, disable=len(sel) < 500)):
            out[k] = self._read(i)
        return out

    def __iter__(self):
        return (self._read(i) for i in range(len(self)))

    def __array__(self, dtype=None, copy=None):
        array = self[:]
        return array if dtype is None else array.astype(dtype)

    def take(self, idx):
        return LazyImages(self.folder, [self.stems[i] for i in _as_indices(idx, len(self))],
                          self.kind, self.size)

    def __repr__(self):
        return 'LazyImages(%s, shape=%s)' % (self.kind, self.shape)


def _as_indices(idx, n):
    """slice / bool mask / int sequence -> 1-D int array."""
    if isinstance(idx, slice):
        return np.arange(n)[idx]
    idx = np.asarray(idx)
    if idx.dtype == bool:
        return np.flatnonzero(idx)
    return np.arange(n)[idx.reshape(-1)]  # also checks bounds and wraps negatives


@dataclasses.dataclass(repr=False)
class Pairs:
    """N aligned line/color pairs (numpy arrays, or LazyImages for big 512 px requests)."""
    names: list        # hexcodes (OpenMoji) or relative file paths (user folders)
    lines: np.ndarray  # uint8 (N,H,W), 255 = paper, 0 = ink
    colors: np.ndarray  # uint8 (N,H,W,3) RGB

    def __post_init__(self):
        self.names = list(self.names)
        if not len(self.names) == len(self.lines) == len(self.colors):
            raise ValueError('Pairs needs as many names, lines and colors; got %d, %d, %d'
                             % (len(self.names), len(self.lines), len(self.colors)))

    def __len__(self):
        return len(self.names)

    def subset(self, idx):
        """Pairs at the given indices (int sequence, slice or boolean mask)."""
        sel = _as_indices(idx, len(self))
        pick = (lambda a: a.take(sel) if isinstance(a, LazyImages) else a[sel])
        return Pairs([self.names[i] for i in sel], pick(self.lines), pick(self.colors))

    def __repr__(self):
        shown = ', '.join(self.names[:3]) + (', ...' if len(self) > 3 else '')
        return 'Pairs(%d pairs, lines %s, colors %s: %s)' % (
            len(self), tuple(self.lines.shape[1:]), tuple(self.colors.shape[1:]), shown)


# ---------------------------------------------------------------- reading pictures

def read_image(path, max_side=None, max_pixels=MAX_PIXELS):
    """Any PNG / JPEG / WebP file -> uint8 RGB (H,W,3) on white.

    Transparent pixels are composited on white, gray becomes RGB, 16-bit becomes 8-bit,
    JPEG EXIF orientation is applied. An empty, corrupt or undecodable file raises
    ValueError naming the file and what is accepted. The size is read from the file's
    header first: a picture with a side above ``max_side`` or more than ``max_pixels``
    pixels is refused (ValueError) before it is decoded, in microseconds.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        raise ValueError('%s is a folder, not a picture; expected %s' % (path, ACCEPTED))
    if not path.exists():
        raise FileNotFoundError('no such file: %s' % path)
    data = path.read_bytes()
    if not data:
        raise ValueError('%s is an empty file; expected %s' % (path, ACCEPTED))
    imageheader.check_image_bytes(data, path, max_side, max_pixels, ACCEPTED)
    # JPEG has no alpha or 16 bit, and IMREAD_COLOR applies its EXIF rotation;
    # everything else is read unchanged so that alpha and 16 bit survive.
    flag = cv2.IMREAD_COLOR if data[:3] == b'\xff\xd8\xff' else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise ValueError('%s is not a readable picture (corrupt or unknown format); expected %s'
                         % (path, ACCEPTED))
    return np.ascontiguousarray(to_rgb8(image, path)[:, :, ::-1])  # OpenCV's BGR -> RGB


def to_rgb8(image, source='the picture', accepted=ACCEPTED):
    """A decoded picture -> uint8 (H,W,3): gray (H,W) or (H,W,1) is repeated, RGBA is
    composited on a white sheet, 16 bit is scaled to 8. The channel order is kept (BGR(A)
    in, BGR out). Other dtypes or channel counts raise ValueError naming ``source``."""
    if image.dtype == np.uint8:
        scale = 255.0
    elif image.dtype == np.uint16:
        scale = 65535.0
    else:
        raise ValueError('%s has %s pixels; expected %s' % (source, image.dtype, accepted))
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 4:  # premultiply on a white sheet
        alpha = image[:, :, 3:].astype(np.float32) / scale
        image = image[:, :, :3].astype(np.float32) * alpha + scale * (1 - alpha)
    elif image.shape[2] != 3:
        raise ValueError('%s has %d channels; expected %s' % (source, image.shape[2], accepted))
    if image.dtype != np.uint8:
        image = np.clip(np.round(image.astype(np.float32) * (255.0 / scale)), 0, 255).astype(np.uint8)
    return image


def fit_square(image, size):
    """Scale so the shorter side is `size`, then center-crop the longer side to `size`."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    image = cv2.resize(image, (nw, nh), interpolation=interp)
    y, x = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(image[y:y + size, x:x + size])


def _check_size(size, allow_none=False):
    if size is None and allow_none:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0 or size % 16:
        raise ValueError('size must be a positive multiple of 16 (the networks halve it four '
                         'times), e.g. 128, 256 or 512; got %r' % (size,))
    return int(size)


def image_files(folder):
    """Picture files under folder (recursive, sorted), skipping hidden files and folders."""
    folder = pathlib.Path(folder)
    if not folder.exists():
        raise FileNotFoundError('no such folder: %s' % folder)
    if not folder.is_dir():
        raise ValueError('%s is not a folder' % folder)
    return sorted(p for p in folder.rglob('*')
                  if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(part.startswith('.') for part in p.relative_to(folder).parts))


def _lines_version():
    """A hash of lines.py: cached folder pairs are redone when line extraction changes."""
    from . import lines
    return hashlib.sha256(pathlib.Path(lines.__file__).read_bytes()).hexdigest()[:12]


def _folder_pair(path, size, line_options):
    from .lines import extract_lines  # lazy: lines.py is its own lesson
    color = read_image(path)
    h, w = color.shape[:2]
    if max(h, w) > MAX_ASPECT * min(h, w):
        # the square crop would keep a sliver, and scaling the short side up first would
        # ask for gigabytes (1x60000 px at 256: 256 x 15,360,000)
        raise ValueError('%s is %dx%d px, more elongated than %d:1; a square crop of it '
                         'would be a sliver' % (path, w, h, MAX_ASPECT))
    if size is not None:
        color = fit_square(color, size)
    return extract_lines(color, **line_options), color


def pairs_from_folder(folder, size=None, kernel_size=3, limit=None, **line_options):
    """Pairs from a folder of your own colored pictures (PNG/JPEG/WebP, recursive).

    Lines come from :func:`tutorial_lib.lines.extract_lines`. With `size` (a multiple of
    16) every picture is scaled so its shorter side is `size` and center-cropped to a
    square; with ``size=None`` all pictures must already have one common size. Other
    keyword arguments (e.g. ``threshold``) go to ``extract_lines``. Files that
    cannot be read are skipped with a warning naming each. Names are paths relative to
    `folder`. For thousands of pictures use ``python -m tutorial_lib.data folder`` instead
    (it caches them on disk and loads lazily).
    """
    folder = pathlib.Path(folder)
    size = _check_size(size, allow_none=True)
    files = image_files(folder)
    if not files:
        raise ValueError('no pictures in %s; expected %s files (%s)'
                         % (folder, ACCEPTED, ' '.join(IMAGE_EXTENSIONS)))
    names, lines, colors = [], [], []
    for path in tqdm(files, desc='reading', leave=False, disable=len(files) < 200):
        if limit is not None and len(names) >= limit:
            break
        try:
            line, color = _folder_pair(path, size, dict(line_options, kernel_size=kernel_size))
        except (ValueError, OSError) as e:
            warnings.warn('skipping %s: %s' % (path, e), stacklevel=2)
            continue
        if colors and color.shape != colors[0].shape:
            raise ValueError('%s is %dx%d but %s is %dx%d: pass size= (e.g. 256) to scale and '
                             'crop them to one size' % (path, color.shape[1], color.shape[0],
                                                        folder / names[0], colors[0].shape[1],
                                                        colors[0].shape[0]))
        names.append(path.relative_to(folder).as_posix())
        lines.append(line)
        colors.append(color)
    if not names:
        raise ValueError('none of the %d files in %s could be read; expected %s'
                         % (len(files), folder, ACCEPTED))
    return Pairs(names, np.stack(lines), np.stack(colors))


# ---------------------------------------------------------------- atomic files

_atomic_write = atomic.write_bytes  # temp file beside the target, then os.replace


def _write_json(path, obj):
    _atomic_write(path, json.dumps(obj, indent=1, ensure_ascii=False).encode('utf-8'))


def _remove_stale_temps(folder):
    """Temp files left by a killed build (atomic's names: .<file>.<random>.tmp<ext>, and
    the hidden .<file>.tmp of older versions)."""
    legacy = [p for p in pathlib.Path(folder).rglob('.*.tmp') if p.is_file()]
    for p in legacy:
        p.unlink()
    return len(legacy) + atomic.remove_stale_temps(folder)


# ---------------------------------------------------------------- the cache builder

def _png_path(out, size, stem, kind):
    return pathlib.Path(out) / 'png' / str(size) / ('%s_%s.png' % (stem, kind))


PNG_END = b'\x00\x00\x00\x00IEND\xaeB`\x82'   # the last 12 bytes of every complete PNG


def _png_complete(path):
    """True for a PNG file that ends with its IEND chunk: a file truncated by a full disk or
    an interrupted copy does not, and is redone instead of counted as already there."""
    try:
        with open(path, 'rb') as f:
            if os.fstat(f.fileno()).st_size < 8 + 25 + 12:
                return False
            head = f.read(8)
            f.seek(-12, os.SEEK_END)
            return head == b'\x89PNG\r\n\x1a\n' and f.read(12) == PNG_END
    except OSError:
        return False


def _pair_done(out, size, stem):
    return all(_png_complete(_png_path(out, size, stem, k)) for k in ('color', 'line'))


def _work(task):
    """Render/convert one item at every size still missing. Runs in a worker process."""
    kind, src, stem, sizes, out, line_options = task
    todo = [s for s in sizes if not _pair_done(out, s, stem)]
    if not todo:
        return stem, 'cached', ''
    try:
        if kind == 'openmoji':
            from . import openmoji
            pairs = openmoji.render_pairs(src, todo)
        else:
            pairs = {s: _folder_pair(src, s, line_options) for s in todo}
    except SkipItem as e:
        return stem, 'skipped', str(e)
    except (ValueError, OSError, MemoryError, cv2.error) as e:  # user pictures: unreadable
        return stem, 'skipped', str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
    for size, (line, color) in pairs.items():
        atomic.write_png(_png_path(out, size, stem, 'color'), color)
        atomic.write_png(_png_path(out, size, stem, 'line'), line)  # written last: marks the pair done
    return stem, 'rendered', ''


def _init_worker():
    cv2.setNumThreads(1)  # one process per core already


def _run(tasks, workers):
    if workers <= 1 or len(tasks) < 8:
        yield from map(_work, tasks)
        return
    # spawn (not fork) so it behaves the same on Linux, macOS and Windows and in Jupyter
    ctx = multiprocessing.get_context('spawn')
    with ctx.Pool(workers, initializer=_init_worker) as pool:
        yield from pool.imap_unordered(_work, tasks, chunksize=4)


def _load_order(names, salt):
    """A fixed shuffle, so that `limit=N` takes a varied, reproducible N."""
    return sorted(names, key=lambda n: hashlib.sha256(('%s:%s' % (salt, n)).encode()).digest())


def build_cache(out, kind, items, sizes, workers=None, pack_sizes=DEFAULT_PACK_SIZES,
                line_options=None, meta=None, fingerprint=None):
    """Write (or finish) a pair cache. items: [{name, file, src, split, ...}].

    fingerprint: what the pixels depend on (package versions, line kernel...). A cache
    made with another fingerprint is emptied first, because resuming only checks that
    files exist. Returns the summary that is also written to COMPLETE.
    """
    start = time.time()
    out = pathlib.Path(out)
    sizes = sorted({_check_size(s) for s in sizes})
    workers = max(1, workers or os.cpu_count() or 1)
    if out.exists() and not out.is_dir():
        raise ValueError('--out %s is a file; the cache needs a folder' % out)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'COMPLETE').unlink(missing_ok=True)  # not complete until we say so again
    stale = _remove_stale_temps(out)
    if stale:
        print('removed %d temp files left by an interrupted build' % stale)
    fingerprint = dict(fingerprint or {}, kind=kind)
    fp_path = out / 'fingerprint.json'
    if fp_path.is_file() and json.loads(fp_path.read_text()) != fingerprint:
        print('%s was made from other inputs (%s); starting over' % (out, fp_path.read_text().strip()))
        for sub in ('png', 'packed'):
            shutil.rmtree(out / sub, ignore_errors=True)
    _atomic_write(fp_path, json.dumps(fingerprint, sort_keys=True).encode())
    for size in sizes:
        (out / 'png' / str(size)).mkdir(parents=True, exist_ok=True)

    tasks = [(kind, str(it['src']), it['file'], sizes, str(out), line_options or {}) for it in items]
    counts, skipped = {'rendered': 0, 'cached': 0, 'skipped': 0}, {}
    by_stem = {it['file']: it for it in items}
    bar = tqdm(_run(tasks, workers), total=len(tasks), desc='pairs', unit='pic', smoothing=0.05)
    for stem, status, message in bar:
        counts[status] += 1
        if status == 'skipped':
            skipped[by_stem[stem]['name']] = message
            tqdm.write('skipped %s' % message)
    bar.close()

    good = [it for it in items if it['name'] not in skipped]
    splits = {sp: _load_order([it['name'] for it in good if it['split'] == sp], kind)
              for sp in SPLITS}
    index = dict(format=1, source=kind, credit=CREDIT if kind == 'openmoji' else None,
                 sizes=sizes, splits=splits, skipped=skipped,
                 items={it['name']: {k: v for k, v in it.items() if k != 'src'} for it in good},
                 **(meta or {}))
    files = {it['name']: it['file'] for it in good}
    for size in sizes:
        for split in SPLITS:
            if size in pack_sizes:
                _pack(out, size, split, splits[split], files)
    _write_json(out / 'index.json', index)
    summary = dict(counts, seconds=round(time.time() - start, 1),
                   pairs={sp: len(splits[sp]) for sp in SPLITS}, sizes=sizes,
                   skipped_files=sorted(skipped), finished=time.strftime('%Y-%m-%d %H:%M:%S'))
    _write_json(out / 'COMPLETE', summary)  # last: the Makefile's stamp
    return summary


def _pack_paths(out, size, split):
    d = pathlib.Path(out) / 'packed' / str(size)
    return d / ('%s_lines.npy' % split), d / ('%s_colors.npy' % split), d / ('%s.json' % split)


def _pack(out, size, split, names, files):
    """One .npy per split and kind, so load_split can memory-map a whole split."""
    lines_path, colors_path, manifest_path = _pack_paths(out, size, split)
    if manifest_path.is_file() and json.loads(manifest_path.read_text())['names'] == names \
            and lines_path.is_file() and colors_path.is_file():
        return  # already packed with exactly these names
    if len(names) * size * size * 4 > PACK_MAX_BYTES:
        print('not packing %s at %d px (too big); it will load from PNGs' % (split, size))
        return
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)
    stems = [files[n] for n in names]
    folder = pathlib.Path(out) / 'png' / str(size)
    for path, kind in ((lines_path, 'line'), (colors_path, 'color')):
        source = LazyImages(folder, stems, kind, size)
        with atomic.atomic_path(path) as tmp:
            array = np.lib.format.open_memmap(tmp, mode='w+', dtype=np.uint8, shape=source.shape)
            for i in tqdm(range(len(source)), desc='packing %s %s %d' % (split, kind, size),
                          leave=False):
                array[i] = source[i]
            array.flush()
            del array
    _write_json(manifest_path, dict(names=names, size=size))


# ---------------------------------------------------------------- loading

def default_data_dir():
    """$TUTORIAL_DATA_DIR, or <repo>/data/openmoji (where `make data` builds)."""
    env = os.environ.get('TUTORIAL_DATA_DIR')
    return pathlib.Path(env) if env else tutorial_lib.REPO_ROOT / 'data' / 'openmoji'


def is_built(data_dir=None):
    d = pathlib.Path(data_dir) if data_dir is not None else default_data_dir()
    return (d / 'COMPLETE').is_file() and (d / 'index.json').is_file()


def read_index(data_dir=None):
    d = pathlib.Path(data_dir) if data_dir is not None else default_data_dir()
    if not is_built(d):
        raise FileNotFoundError(
            'No finished pair cache in %s. For the OpenMoji pairs run `make data` in the '
            'repository (or `python -m tutorial_lib.data build --out %s`); it takes a few '
            'minutes.' % (d, d))
    return json.loads((d / 'index.json').read_text(encoding='utf-8'))


def load_split(split, size, limit=None, data_dir=None, seed=None, lazy=None):
    """The 'train' or 'test' pairs of a built cache at one size.

    limit: at most this many pairs. Without `seed` they are the first ones of a fixed
    shuffled order (so the same and varied every time); with `seed`, a random choice.
    lazy: None = decode on access only when the arrays would exceed 1 GiB; True/False
    forces it (packed sizes are always loaded into memory).
    """
    if split not in SPLITS:
        raise ValueError('split must be one of %s; got %r' % (', '.join(map(repr, SPLITS)), split))
    _check_size(size)
    if limit is not None and (isinstance(limit, bool) or int(limit) != limit or limit < 0):
        raise ValueError('limit must be None or an int >= 0; got %r' % (limit,))
    d = pathlib.Path(data_dir) if data_dir is not None else default_data_dir()
    index = read_index(d)
    if size not in index['sizes']:
        raise ValueError('size %d is not in the cache at %s; built sizes: %s'
                         % (size, d, ', '.join(map(str, index['sizes']))))
    names = index['splits'][split]
    sel = np.arange(len(names)) if seed is None else np.random.default_rng(seed).permutation(len(names))
    sel = sel[:limit] if limit is not None else sel
    chosen = [names[i] for i in sel]

    lines_path, colors_path, manifest_path = _pack_paths(d, size, split)
    if manifest_path.is_file() and json.loads(manifest_path.read_text())['names'] == names:
        # contiguous first-N is a plain slice of the memory map: reads only what it needs
        pick = slice(0, len(sel)) if seed is None else sel
        lines = np.load(lines_path, mmap_mode='r')
        colors = np.load(colors_path, mmap_mode='r')
        return Pairs(chosen, np.array(lines[pick]), np.array(colors[pick]))

    stems = [index['items'][n]['file'] for n in chosen]
    folder = d / 'png' / str(size)
    pairs = Pairs(chosen, LazyImages(folder, stems, 'line', size), LazyImages(folder, stems, 'color', size))
    if lazy is None:
        lazy = len(chosen) * size * size * 4 > LAZY_BYTES
    if lazy:
        return pairs
    return Pairs(chosen, pairs.lines[:], pairs.colors[:])


SAMPLES_DIR = tutorial_lib.REPO_ROOT / 'data' / 'samples'


def _samples_index():
    path = SAMPLES_DIR / 'index.json'
    if not path.is_file():
        raise FileNotFoundError('%s is missing; regenerate it with `python -m tutorial_lib.data '
                                'samples`' % path)
    return json.loads(path.read_text(encoding='utf-8'))


def load_samples(size=256):
    """The committed test-split pairs in data/samples (256 px; resized with INTER_AREA)."""
    size = _check_size(size)
    names, lines, colors = [], [], []
    for item in _samples_index()['pairs']:
        base = SAMPLES_DIR / 'pairs' / item['name']
        line = cv2.imread(str(base) + '_line.png', cv2.IMREAD_GRAYSCALE)
        color = read_image(str(base) + '_color.png')
        if size != line.shape[0]:
            interp = cv2.INTER_AREA if size < line.shape[0] else cv2.INTER_CUBIC
            line = cv2.resize(line, (size, size), interpolation=interp)
            color = cv2.resize(color, (size, size), interpolation=interp)
        names.append(item['name'])
        lines.append(line)
        colors.append(color)
    return Pairs(names, np.stack(lines), np.stack(colors))


def load_sample_sketches():
    """[(name, uint8 HxW line drawing)] committed in data/samples/sketches (any aspect)."""
    out = []
    for item in _samples_index()['sketches']:
        line = cv2.imread(str(SAMPLES_DIR / 'sketches' / item['file']), cv2.IMREAD_GRAYSCALE)
        out.append((pathlib.Path(item['file']).stem, line))
    return out


# ---------------------------------------------------------------- what a config trains on

def pairs_for(config, split='train'):
    """The pictures a config trains on (split='train') or previews (split='test'), with
    the line art the config asks for (``config.lines``).

    The one place that decides where they come from: synthetic shapes (``config.data ==
    'synthetic'``), the committed samples (``'samples'``, always for the test previews, and
    when the OpenMoji cache is not built) or the cache.
    """
    pairs = _pictures_for(config, split)
    kind = getattr(config, 'lines', 'human')
    if kind == 'human':
        return pairs
    if kind != 'extracted':
        raise ValueError("config.lines must be 'human' or 'extracted', got %r" % (kind,))
    return with_extracted_lines(pairs)


def with_extracted_lines(pairs):
    """The same pictures with the blog's OpenCV lines (lines.extract_best) as line art."""
    from .lines import extract_best
    colors = np.asarray(pairs.colors)
    lines = extract_best(colors) if len(colors) else np.asarray(pairs.lines)
    return SimplePairs(list(pairs.names), lines, colors, getattr(pairs, 'split', None))


def _pictures_for(config, split):
    if config.data == 'synthetic':
        return synthetic_pairs(config.train_limit or 64 if split == 'train' else 8,
                               config.size, seed=config.seed + (split == 'test'),
                               split=split)
    if split == 'test':
        # fixed, committed test-split pictures: the same previews everywhere
        return take(load_samples(size=config.size), config.n_preview)
    if config.data == 'samples' or not is_built():
        if config.data != 'samples':
            print('The OpenMoji cache is not built (make data); training on the committed '
                  'samples instead. They are TEST pictures: fine for trying the machinery, '
                  'not for measuring anything.', file=sys.stderr)
        return take(load_samples(size=config.size), config.train_limit)
    return load_split_resized('train', config.size, limit=config.train_limit,
                              seed=config.seed)


def load_split_resized(split, size, limit=None, seed=None):
    """:func:`load_split` at any size: sizes the cache does not hold (it has 128, 256 and
    512) are made from the next larger built size with area interpolation."""
    built = sorted(read_index()['sizes'])
    if size in built:
        return load_split(split, size, limit=limit, seed=seed)
    source = min([b for b in built if b > size] or [max(built)])
    return resize_pairs(load_split(split, source, limit=limit, seed=seed), size)


def resize_pairs(pairs, size):
    """Every pair resized to size x size."""
    interp = cv2.INTER_AREA if size < pairs.lines.shape[1] else cv2.INTER_CUBIC
    lines = np.stack([cv2.resize(np.asarray(x), (size, size), interpolation=interp)
                      for x in pairs.lines]) if len(pairs) else np.zeros((0, size, size), np.uint8)
    colors = np.stack([cv2.resize(np.asarray(x), (size, size), interpolation=interp)
                       for x in pairs.colors]) if len(pairs) else np.zeros((0, size, size, 3), np.uint8)
    return SimplePairs(list(pairs.names), lines, colors, getattr(pairs, 'split', None))


# ---------------------------------------------------------------- user folders as a cache

def _safe_stem(relpath):
    """A flat, unique file stem for a relative path (sub/dir/a b.jpg -> sub__dir__a_b.jpg-1a2b3c4d)."""
    flat = re.sub(r'[^A-Za-z0-9._-]+', '_', relpath.replace('/', '__'))[-80:]
    return '%s-%s' % (flat, hashlib.sha1(relpath.encode('utf-8')).hexdigest()[:8])


def build_folder(src, out, size=256, kernel_size=3, workers=None, test_percent=10,
                 pack_sizes=DEFAULT_PACK_SIZES, **line_options):
    """Cache a folder of colored pictures as pairs (same layout as the OpenMoji cache).

    The split is by a stable hash of each file's relative path (`test_percent` % test).
    Unreadable files are skipped and listed; `load_split(..., data_dir=out)` reads it.
    """
    src = pathlib.Path(src)
    size = _check_size(size)
    if not src.exists():
        raise FileNotFoundError('no such folder: %s' % src)
    out_abs, src_abs = pathlib.Path(out).resolve(), src.resolve()
    if out_abs == src_abs or src_abs in out_abs.parents:
        # the next run would take the cache's own PNGs for pictures (17 -> 51 pairs)
        raise ValueError('--out %s is inside the picture folder %s: the cache would be read '
                         'as pictures on the next run; choose an --out outside it'
                         % (out, src))
    files = image_files(src)
    if not files:
        raise ValueError('no pictures in %s; expected %s files (%s)'
                         % (src, ACCEPTED, ' '.join(IMAGE_EXTENSIONS)))
    items = []
    for path in files:
        rel = path.relative_to(src).as_posix()
        digest = hashlib.sha256(('%s:%s' % (FOLDER_SALT, rel)).encode()).digest()
        split = 'test' if int.from_bytes(digest[:8], 'big') % 100 < test_percent else 'train'
        items.append(dict(name=rel, file=_safe_stem(rel), src=path, split=split))
    line_options = dict(line_options, kernel_size=kernel_size)
    summary = build_cache(out, 'folder', items, [size], workers, pack_sizes, line_options,
                          meta=dict(folder=str(src.resolve()), line_options=line_options),
                          fingerprint=dict(line_options=line_options, lines=_lines_version()))
    if not any(summary['pairs'].values()):
        raise ValueError('none of the %d files in %s could be read; expected %s'
                         % (len(files), src, ACCEPTED))
    return summary


# ---------------------------------------------------------------- command line

def _du(path):
    return sum(p.stat().st_size for p in pathlib.Path(path).rglob('*') if p.is_file())


def _print_summary(out, summary):
    print('pairs: %s at %s px; rendered %d, already there %d, skipped %d; %.0f s; %.0f MB on disk'
          % (', '.join('%s %d' % kv for kv in summary['pairs'].items()),
             '/'.join(map(str, summary['sizes'])), summary['rendered'], summary['cached'],
             summary['skipped'], summary['seconds'], _du(out) / 1e6))
    for name in summary['skipped_files']:
        print('  skipped:', name)


@cli.command
def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tutorial_lib.data', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    b = sub.add_parser('build', help='render the OpenMoji line/color pairs (make data)')
    b.add_argument('--out', type=pathlib.Path, default=None, help='default: %s' % default_data_dir())
    b.add_argument('--sizes', type=int, nargs='+', default=list(DEFAULT_SIZES))
    b.add_argument('--pack-sizes', type=int, nargs='*', default=list(DEFAULT_PACK_SIZES),
                   help='sizes also stored as one .npy per split for fast loading')
    b.add_argument('--limit', type=int, default=None, help='only N pictures (for trying things)')
    b.add_argument('--workers', type=int, default=None, help='processes (default: all cores)')
    f = sub.add_parser('folder', help='cache your own colored pictures as pairs')
    f.add_argument('src', type=pathlib.Path)
    f.add_argument('--out', type=pathlib.Path, required=True)
    f.add_argument('--size', type=int, default=256)
    f.add_argument('--kernel-size', type=int, default=3)
    f.add_argument('--threshold', type=int, default=None, help='binarize lines (see lines.py)')
    f.add_argument('--test-percent', type=int, default=10)
    f.add_argument('--workers', type=int, default=None)
    s = sub.add_parser('samples', help='regenerate data/samples from the OpenMoji SVGs')
    s.add_argument('--out', type=pathlib.Path, default=SAMPLES_DIR)
    i = sub.add_parser('info', help='what a cache holds')
    i.add_argument('--data-dir', type=pathlib.Path, default=None)
    args = parser.parse_args(argv)

    if args.command == 'build':
        from . import openmoji
        out = args.out or default_data_dir()
        if args.limit is not None and out.resolve() == default_data_dir().resolve():
            # A partial cache in the default folder would look complete to `make data`.
            parser.error('--limit builds a partial data set; give it its own --out folder '
                         '(the default %s is reserved for the full build)' % out)
        print(CREDIT)
        summary = openmoji.build(out, args.sizes, limit=args.limit, workers=args.workers,
                                 pack_sizes=args.pack_sizes)
        _print_summary(out, summary)
        print(CREDIT)
    elif args.command == 'folder':
        options = {} if args.threshold is None else dict(threshold=args.threshold)
        summary = build_folder(args.src, args.out, args.size, args.kernel_size, args.workers,
                               args.test_percent, **options)
        _print_summary(args.out, summary)
    elif args.command == 'samples':
        from . import openmoji
        openmoji.make_samples(args.out)
        print('wrote %s (%.0f kB)' % (args.out, _du(args.out) / 1e3))
        print(CREDIT)
    elif args.command == 'info':
        index = read_index(args.data_dir)
        print('%s pairs at %s px: %s; skipped %d' % (
            index['source'], index['sizes'],
            ', '.join('%s %d' % (k, len(v)) for k, v in index['splits'].items()), len(index['skipped'])))
        if index.get('credit'):
            print(index['credit'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
