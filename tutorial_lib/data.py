"""Loading line/color pairs: the OpenMoji cache, the committed samples, your own pictures.

Notebook 01 introduces them; every later notebook gets its pictures from :func:`pairs_for`.

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
  for which SVGs and how the train/test split is made, :mod:`tutorial_lib.cache` for the
  cache's layout).
* ``folder SRC --out DIR [--size 256]`` turns a folder of your colored pictures into a
  cache with the same layout, so ``load_split('train', 256, data_dir=DIR)`` works on it.
* ``samples`` regenerates the committed ``data/samples``.
* ``info [--data-dir DIR]`` prints what a cache holds.

Packed sizes (128 by default) load from a memory-mapped ``.npy``; other sizes decode PNGs,
and a request above ``LAZY_BYTES`` returns :class:`pairs.LazyImages` arrays that decode an
item when it is indexed.
"""
import argparse
import json
import pathlib
import sys
import warnings

import cv2
import numpy as np
from tqdm.auto import tqdm

from . import cache
from . import cli
from . import images
from .cache import SAMPLES_DIR, SPLITS, check_size, default_data_dir, folder_pair
from .lines import extract_best
from .openmoji import CREDIT
from .pairs import LazyImages, Pairs, SimplePairs, synthetic_pairs, take

LAZY_BYTES = 1 << 30   # above this, load_split decodes on access instead of up front


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
    size = check_size(size, allow_none=True)
    files = images.image_files(folder)
    if not files:
        raise ValueError('no pictures in %s; expected %s files (%s)'
                         % (folder, images.ACCEPTED, ' '.join(images.IMAGE_EXTENSIONS)))
    names, lines, colors = [], [], []
    for path in tqdm(files, desc='reading', leave=False, disable=len(files) < 200):
        if limit is not None and len(names) >= limit:
            break
        try:
            line, color = folder_pair(path, size, dict(line_options, kernel_size=kernel_size))
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
                         % (len(files), folder, images.ACCEPTED))
    return Pairs(names, np.stack(lines), np.stack(colors))


# ---------------------------------------------------------------- loading

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
    check_size(size)
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

    lines_path, colors_path, manifest_path = cache.pack_paths(d, size, split)
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


def _samples_index():
    path = SAMPLES_DIR / 'index.json'
    if not path.is_file():
        raise FileNotFoundError('%s is missing; regenerate it with `python -m tutorial_lib.data '
                                'samples`' % path)
    return json.loads(path.read_text(encoding='utf-8'))


def load_samples(size=256):
    """The committed test-split pairs in data/samples (256 px; resized with INTER_AREA)."""
    size = check_size(size)
    names, lines, colors = [], [], []
    for item in _samples_index()['pairs']:
        base = SAMPLES_DIR / 'pairs' / item['name']
        line = cv2.imread(str(base) + '_line.png', cv2.IMREAD_GRAYSCALE)
        color = images.read_image(str(base) + '_color.png')
        if size != line.shape[0]:
            line, color = images.resize(line, size), images.resize(color, size)
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
    if config.data != 'samples' and not is_built():
        print('The OpenMoji cache is not built (make data); training on the committed '
              'samples instead. They are TEST pictures: fine for trying the machinery, '
              'not for measuring anything.', file=sys.stderr)
    pairs, _ = pictures('train', config.size, config.train_limit, config.seed,
                        samples=True if config.data == 'samples' else None)
    return pairs


def pictures(split, size, limit=None, seed=None, samples=None):
    """``(pairs, where)``: the cache's ``split`` at ``size`` when it is built, otherwise the
    committed samples; ``where`` says which, in words.

    The one cache-or-samples fallback. ``samples=True`` takes the committed samples
    (TEST pictures, whatever ``split`` says) even when the cache is built, ``False``
    insists on the cache. ``limit``: at most this many (``seed``: a random choice of the
    cache's pictures, see :func:`load_split`).
    """
    if samples is None:
        samples = not is_built()
    if not samples:
        pairs = load_split_resized(split, size, limit=limit, seed=seed)
        return pairs, 'OpenMoji %s split, %d pictures at %d px' % (split.upper(), len(pairs), size)
    pairs = load_samples(size=size)
    pairs = pairs.subset(range(len(pairs) if limit is None else min(limit, len(pairs))))
    why = '' if is_built() else ': the cache is not built (make data)'
    return pairs, 'the committed samples data/samples (%d TEST pictures at %d px)%s' % (
        len(pairs), size, why)


def load_split_resized(split, size, limit=None, seed=None):
    """:func:`load_split` at any size: sizes the cache does not hold (it has 128, 256 and
    512) are made from the next larger built size with area interpolation."""
    built = sorted(read_index()['sizes'])
    if size in built:
        return load_split(split, size, limit=limit, seed=seed)
    source = min([b for b in built if b > size] or [max(built)])
    return resize_pairs(load_split(split, source, limit=limit, seed=seed), size)


def resize_pairs(pairs, size):
    """Every pair resized to size x size (:func:`images.resize`)."""
    if not len(pairs):
        return SimplePairs([], np.zeros((0, size, size), np.uint8),
                           np.zeros((0, size, size, 3), np.uint8), getattr(pairs, 'split', None))
    lines = np.stack([images.resize(np.asarray(x), size) for x in pairs.lines])
    colors = np.stack([images.resize(np.asarray(x), size) for x in pairs.colors])
    return SimplePairs(list(pairs.names), lines, colors, getattr(pairs, 'split', None))


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
    b.add_argument('--sizes', type=int, nargs='+', default=list(cache.DEFAULT_SIZES))
    b.add_argument('--pack-sizes', type=int, nargs='*', default=list(cache.DEFAULT_PACK_SIZES),
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
        out = args.out or default_data_dir()
        if args.limit is not None and out.resolve() == default_data_dir().resolve():
            # A partial cache in the default folder would look complete to `make data`.
            parser.error('--limit builds a partial data set; give it its own --out folder '
                         '(the default %s is reserved for the full build)' % out)
        print(CREDIT)
        summary = cache.build_openmoji(out, args.sizes, limit=args.limit, workers=args.workers,
                                 pack_sizes=args.pack_sizes)
        _print_summary(out, summary)
        print(CREDIT)
    elif args.command == 'folder':
        options = {} if args.threshold is None else dict(threshold=args.threshold)
        summary = cache.build_folder(args.src, args.out, args.size, args.kernel_size, args.workers,
                               args.test_percent, **options)
        _print_summary(args.out, summary)
    elif args.command == 'samples':
        cache.write_samples(args.out)
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
