"""(line, color) picture pairs: the containers every dataset, trainer and measure passes around.

Notebook 01 meets them (``data.Pairs``); tests and quick runs use :func:`synthetic_pairs`.
"""
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
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
