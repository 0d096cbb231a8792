"""(line, color) picture pairs: the containers every data set, trainer and measure passes around.

Notebook 01 meets :class:`Pairs`; tests and quick runs use :func:`synthetic_pairs`.
"""
import dataclasses
import hashlib
import pathlib

import cv2
import numpy as np
from tqdm.auto import tqdm


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


def hashed_order(names, salt):
    """A fixed shuffle, so that `limit=N` takes a varied, reproducible N."""
    return sorted(names, key=lambda n: hashlib.sha256(('%s:%s' % (salt, n)).encode()).digest())



@dataclasses.dataclass
class SimplePairs:
    """A minimal stand-in for ``Pairs`` (used for synthetic data and in tests)."""
    names: list
    lines: np.ndarray    # uint8 (N,H,W), 255 = paper
    colors: np.ndarray   # uint8 (N,H,W,3) RGB
    split: str = 'synthetic'

    def __len__(self):
        return len(self.names)


def synthetic_pairs(n=32, size=32, seed=0, split='synthetic'):
    """Colored shapes with black outlines on white paper, and their outlines alone.

    Small, instant and license-free: for tests and for trying the machinery without
    the OpenMoji cache.
    """
    rng = np.random.RandomState(seed)
    lines = np.full((n, size, size), 255, np.uint8)
    colors = np.full((n, size, size, 3), 255, np.uint8)
    thick = max(1, size // 32)
    for i in range(n):
        for _ in range(rng.randint(1, 4)):
            center = tuple(int(c) for c in rng.randint(size // 4, 3 * size // 4, 2))
            axes = tuple(int(a) for a in rng.randint(size // 8, size // 3, 2))
            fill = tuple(int(c) for c in rng.randint(0, 256, 3))
            cv2.ellipse(colors[i], center, axes, 0, 0, 360, fill, -1)
            cv2.ellipse(colors[i], center, axes, 0, 0, 360, (0, 0, 0), thick)
            cv2.ellipse(lines[i], center, axes, 0, 0, 360, 0, thick)
    return SimplePairs(['synthetic_%04d' % i for i in range(n)], lines, colors, split)


def take(pairs, n):
    """The first ``n`` pairs (all of them when ``n`` is None)."""
    if n is None or n >= len(pairs.lines):
        return pairs
    return SimplePairs(list(pairs.names[:n]), pairs.lines[:n], pairs.colors[:n],
                       getattr(pairs, 'split', 'test'))
