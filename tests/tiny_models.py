"""Tiny seeded U-Nets and a Colorizer made of them, for tests that need a network, not a
trained one (width 1/16: milliseconds per picture)."""
import numpy as np

import tutorial_lib  # noqa: F401  (compat before chainer)
from tutorial_lib import models
from tutorial_lib.colorize import Colorizer


def tiny(in_ch, seed=0):
    np.random.seed(seed)   # Chainer's initializers draw from numpy's global generator
    return models.UNET(in_ch=in_ch, width=1 / 16)


def tiny_colorizer():
    """Stage 1 and stage 2 both 4-channel tiny U-Nets, on the CPU."""
    return Colorizer(tiny(4), tiny(4, 1), device='cpu')
