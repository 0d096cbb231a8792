"""gan_measures: the numbers notebook 03 reads the GAN lesson with."""
import numpy as np

import tutorial_lib  # noqa: F401
from tutorial_lib import gan_measures


def _picture(color):
    img = np.full((32, 32, 3), 255, np.uint8)
    img[8:24, 8:24] = color           # a colored square on paper
    img[8:24, 8] = 0                  # with one black line
    return img


def test_hue_distance_is_zero_for_the_same_mix_and_one_for_other_hues():
    red, blue = _picture((220, 30, 30)), _picture((30, 30, 220))
    assert gan_measures.hue_distance(red[None], red[None]) == 0
    assert gan_measures.hue_distance(red[None], blue[None]) == 1


def test_fill_chroma_and_paper_speckle_are_kept_apart():
    truth = _picture((220, 30, 30))[None]
    lines = np.full((1, 32, 32), 255, np.uint8)
    lines[0, 8:24, 8] = 0
    gray = _picture((128, 128, 128))[None]
    speckled = truth.copy()
    speckled[0, 0:4, 0:32] = (0, 200, 0)      # 1/8 of the paper turns green
    chroma, speckle = gan_measures.fill_chroma(truth, truth, lines)
    assert chroma == 190 and speckle == 0
    assert gan_measures.fill_chroma(gray, truth, lines) == (0.0, 0.0)
    chroma, speckle = gan_measures.fill_chroma(speckled, truth, lines)
    assert chroma == 190 and abs(speckle - 128 / (32 * 32 - 16 * 16)) < 1e-9
