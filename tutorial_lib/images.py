"""Pictures in and out: read any PNG/JPEG/WebP as RGB, the one resize rule, fit and pad, write.

Every module that reads, resizes or writes a picture uses these; notebook 01 meets them first.
Conventions: colors are uint8 RGB (H,W,3); lines are uint8 (H,W) with 255 = white paper.
"""
import pathlib

import cv2
import numpy as np

from . import atomic
from . import imageheader

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp')
ACCEPTED = 'PNG, JPEG or WebP pictures (8- or 16-bit; gray, RGB or RGBA)'
MAX_PIXELS = 50_000_000  # read_image refuses larger pictures (from the header, before decoding)
OUTPUT_FORMATS = {'.png': [], '.jpg': [cv2.IMWRITE_JPEG_QUALITY, 95],
                  '.jpeg': [cv2.IMWRITE_JPEG_QUALITY, 95], '.webp': [cv2.IMWRITE_WEBP_QUALITY, 95]}


# ---------------------------------------------------------------- reading

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


# ---------------------------------------------------------------- geometry

def resize(image, size):
    """The one resize rule: ``image`` (H,W[,C]) to ``size`` = (h, w) (or an int for a
    square); area averaging when the picture shrinks, bicubic when it grows."""
    h, w = (size, size) if np.isscalar(size) else size
    h, w = int(h), int(w)
    shrink = h * w < image.shape[0] * image.shape[1]
    out = cv2.resize(np.ascontiguousarray(image), (w, h),
                     interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return out.reshape((h, w) + image.shape[2:])


def fit_square(image, size):
    """Scale so the shorter side is `size`, then center-crop the longer side to `size`."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    image = resize(image, (nh, nw))
    y, x = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(image[y:y + size, x:x + size])


def fit_long_side(shape, side):
    """(h, w) with the long side at ``side`` and the aspect ratio kept (each >= 1)."""
    h, w = shape
    s = side / max(h, w)
    return max(1, int(round(h * s))), max(1, int(round(w * s)))


def pad_to_multiple(images, multiple=16, value=255, axes=(1, 2)):
    """Pad the height and width axes (``axes``; default (N,H,W[,C]) images) at the
    bottom/right to multiples of ``multiple`` (16: the U-Net halves a side four times),
    with ``value`` (255 = paper for line art).

    Returns (padded, (H, W)) so the caller can crop the original area back.
    """
    images = np.asarray(images)
    h, w = images.shape[axes[0]], images.shape[axes[1]]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return images, (h, w)
    pad = [(0, 0)] * images.ndim
    pad[axes[0]], pad[axes[1]] = (0, ph), (0, pw)
    return np.pad(images, pad, mode='constant', constant_values=value), (h, w)


# ---------------------------------------------------------------- writing

def write_png(path, image):
    """Write a uint8 picture, gray (H,W) or RGB (H,W,3), atomically, in the format its
    extension names (PNG, JPEG or WebP: ``x.jpg`` gets JPEG bytes)."""
    ext = pathlib.Path(path).suffix.lower()
    if ext not in OUTPUT_FORMATS:
        raise ValueError('cannot write %s: the name must end in %s' % (path, ', '.join(OUTPUT_FORMATS)))
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[..., ::-1]   # RGB -> OpenCV's BGR
    ok, data = cv2.imencode(ext, np.ascontiguousarray(image), OUTPUT_FORMATS[ext])
    if not ok:
        raise ValueError('could not encode the picture as %s for %s' % (ext, path))
    atomic.write_bytes(path, data.tobytes())
