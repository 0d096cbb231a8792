"""Line extraction from colored pictures (the blog's OpenCV recipe).

(Minimal first version; extended with thresholds, Canny and scoring.)
"""
import cv2
import numpy as np


def to_gray(image):
    """uint8 RGB (H,W,3) or gray (H,W) -> uint8 gray (H,W)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 2:
        return image
    raise ValueError('expected an RGB (H,W,3) or gray (H,W) uint8 image, got shape %s'
                     % (image.shape,))


def extract_lines(image, kernel_size=3):
    """The blog's recipe: gray -> dilate -> |dilated - gray| -> invert.

    Returns uint8 (H,W): 255 = paper, 0 = ink.
    """
    gray = to_gray(image)
    kernel = np.ones((kernel_size, kernel_size), np.uint8)
    dilated = cv2.dilate(gray, kernel, iterations=1)
    return 255 - cv2.absdiff(dilated, gray)
