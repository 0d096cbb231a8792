"""A picture's width and height from its file header, before anything is decoded.

OpenCV decodes a whole file before its size can be checked; :func:`check_image_bytes` lets
:func:`images.read_image` and :func:`hints.load_hint_png` refuse a huge picture first.
"""
import struct

FORMATS = 'PNG, JPEG, WebP (also BMP, GIF, TIFF)'


class HeaderError(ValueError):
    """The bytes are not a picture of a known format, or its header is damaged."""


def _png(data):
    if len(data) < 24 or data[12:16] != b'IHDR':
        raise HeaderError('PNG without an IHDR header')
    return struct.unpack('>II', data[16:24])


# JPEG start-of-frame markers (they carry the size): C0..CF except DHT (C4), JPG (C8), DAC (CC)
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(data):
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            raise HeaderError('JPEG with a damaged marker at byte %d' % i)
        while i < n and data[i] == 0xFF:     # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker in (0x01,) or 0xD0 <= marker <= 0xD8:   # no length field
            continue
        if marker == 0xD9 or i + 2 > n:                    # end of image
            break
        length = struct.unpack('>H', data[i:i + 2])[0]
        if marker in _SOF:
            if i + 7 > n:
                break
            h, w = struct.unpack('>HH', data[i + 3:i + 7])
            return w, h
        if length < 2:
            raise HeaderError('JPEG with a damaged segment length')
        i += length
    raise HeaderError('JPEG without a frame header (truncated?)')


def _webp(data):
    if len(data) < 30:
        raise HeaderError('WebP too short')
    chunk = data[12:16]
    if chunk == b'VP8 ':
        if data[23:26] != b'\x9d\x01\x2a':
            raise HeaderError('WebP (VP8) with a damaged frame header')
        w, h = struct.unpack('<HH', data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b'VP8L':
        if data[20] != 0x2F:
            raise HeaderError('WebP (VP8L) with a damaged header')
        b = struct.unpack('<I', data[21:25])[0]
        return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
    if chunk == b'VP8X':
        w = int.from_bytes(data[24:27], 'little') + 1
        h = int.from_bytes(data[27:30], 'little') + 1
        return w, h
    raise HeaderError('WebP with an unknown chunk %r' % chunk)


def _bmp(data):
    if len(data) < 26:
        raise HeaderError('BMP too short')
    header = struct.unpack('<I', data[14:18])[0]
    if header == 12:                                        # OS/2 BITMAPCOREHEADER
        return struct.unpack('<HH', data[18:22])
    w, h = struct.unpack('<ii', data[18:26])
    return abs(w), abs(h)                                   # negative height = top-down


def _gif(data):
    if len(data) < 10:
        raise HeaderError('GIF too short')
    return struct.unpack('<HH', data[6:10])


def _tiff(data):
    e = '<' if data[:2] == b'II' else '>'
    try:
        offset = struct.unpack(e + 'I', data[4:8])[0]
        count = struct.unpack(e + 'H', data[offset:offset + 2])[0]
        size = {}
        for k in range(count):
            entry = data[offset + 2 + 12 * k:offset + 14 + 12 * k]
            tag, kind = struct.unpack(e + 'HH', entry[:4])
            if tag in (256, 257):                          # ImageWidth, ImageLength
                size[tag] = struct.unpack(e + ('H' if kind == 3 else 'I'),
                                          entry[8:10] if kind == 3 else entry[8:12])[0]
        return size[256], size[257]
    except (struct.error, KeyError):
        raise HeaderError('TIFF without a readable size') from None


def image_size(data):
    """(width, height, format) of an encoded picture, from its header only.

    ``data``: the file's bytes (or its first few kilobytes; JPEG may need more when
    large metadata precedes the frame header). Raises :class:`HeaderError` (a
    ValueError) for bytes that are not a picture of a known format.
    """
    data = bytes(data[:1 << 20]) if not isinstance(data, bytes) else data
    if data[:8] == b'\x89PNG\r\n\x1a\n':
        fmt, (w, h) = 'PNG', _png(data)
    elif data[:3] == b'\xff\xd8\xff':
        fmt, (w, h) = 'JPEG', _jpeg(data)
    elif data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        fmt, (w, h) = 'WebP', _webp(data)
    elif data[:2] == b'BM':
        fmt, (w, h) = 'BMP', _bmp(data)
    elif data[:6] in (b'GIF87a', b'GIF89a'):
        fmt, (w, h) = 'GIF', _gif(data)
    elif data[:4] in (b'II*\x00', b'MM\x00*'):
        fmt, (w, h) = 'TIFF', _tiff(data)
    else:
        raise HeaderError('unknown format (expected %s)' % FORMATS)
    return int(w), int(h), fmt


def check_image_bytes(data, source, max_side=None, max_pixels=None, accepted=FORMATS):
    """(width, height, format) of ``data``, or ValueError naming ``source`` when it is no
    picture, is empty (0 px), or is larger than ``max_side`` / ``max_pixels``."""
    try:
        w, h, fmt = image_size(data)
    except HeaderError as e:
        raise ValueError('%s is not a readable picture (corrupt or unknown format: %s); '
                         'expected %s' % (source, e, accepted)) from None
    if w < 1 or h < 1:
        raise ValueError('%s is an empty picture (%dx%d px)' % (source, w, h))
    if max_side is not None and max(w, h) > max_side:
        raise ValueError('%s is %dx%d px; sides up to %d px are accepted here: shrink it '
                         'first' % (source, w, h, max_side))
    if max_pixels is not None and w * h > max_pixels:
        raise ValueError('%s is %dx%d px (%.0f megapixels); up to %.0f megapixels are '
                         'accepted: shrink it first' % (source, w, h, w * h / 1e6,
                                                        max_pixels / 1e6))
    return w, h, fmt
