"""im2col and col2im for the fast CPU convolutions, block by block: the column array is written
straight in the ``(C*kh*kw, columns)`` layout a matrix product needs, without ``numpy.pad``."""
import numpy

from .threads import scratch


def tap_range(lo, hi, offset, stride, pad, t_lo, t_hi):
    """Indices a in [lo, hi) with t_lo <= a*stride - pad + offset < t_hi, as a range."""
    a0 = max(lo, -((offset - pad - t_lo) // stride))
    a1 = min(hi, (t_hi - 1 + pad - offset) // stride + 1)
    return a0, max(a0, a1)


def per_sample_contiguous(a):
    """``a`` itself when every a[i] is C-contiguous (so a[i].reshape is a view)."""
    _, c, h, w = a.shape
    isz = a.dtype.itemsize
    if a.strides[1:] == (h * w * isz, w * isz, isz) or c * h * w <= 1:
        return a
    return numpy.ascontiguousarray(a)


def channel_major(a):
    """(C, N*H*W) matrix of an (N, C, H, W) array: a view for one sample, one copy otherwise."""
    n, c, h, w = a.shape
    if n == 1:
        return a[0].reshape(c, h * w)
    return numpy.ascontiguousarray(a.reshape(n, c, h * w).transpose(1, 0, 2)).reshape(c, n * h * w)


def block_matrix(a, n0, n1, r0, r1):
    """(C, columns) matrix of samples [n0, n1), rows [r0, r1) of an (N, C, H, W) array with
    C-contiguous samples: a view for one sample, else gathered into the 'in' scratch buffer
    (a block of several samples always covers whole maps, see fastconv._plan)."""
    _, c, h, w = a.shape
    nb, p = n1 - n0, h * w
    if nb == 1:
        return a[n0].reshape(c, p)[:, r0 * w:r1 * w]
    buf = scratch('in', c * nb * p, a.dtype).reshape(c, nb, p)
    buf[...] = a[n0:n1].reshape(nb, c, p).transpose(1, 0, 2)
    return buf.reshape(c, nb * p)


def im2col_block(x, kh, kw, sy, sx, ph, pw, n0, n1, r0, r1, out_w, col):
    """Fill ``col`` (C, kh, kw, n1-n0, r1-r0, out_w), any strides, with the im2col
    columns of samples [n0, n1) and output rows [r0, r1): entry (c, i, j, n, a, b) is
    x[n0 + n, c, (r0 + a)*sy - ph + i, b*sx - pw + j], or 0 outside the image.
    One strided slice copy per kernel tap; only the border strips are zeroed."""
    _, c, h, w = x.shape
    rows = r1 - r0
    src = x[n0:n1].transpose(1, 0, 2, 3)           # (C, nb, H, W), a view
    for i in range(kh):
        lo, hi = tap_range(r0, r1, i, sy, ph, 0, h)
        a0, a1 = lo - r0, hi - r0
        y0 = lo * sy - ph + i
        for j in range(kw):
            b0, b1 = tap_range(0, out_w, j, sx, pw, 0, w)
            x0 = b0 * sx - pw + j
            tap = col[:, i, j]                     # (C, nb, rows, out_w)
            if a0 > 0:
                tap[:, :, :a0] = 0
            if a1 < rows:
                tap[:, :, a1:] = 0
            if a1 > a0:
                if b0 > 0:
                    tap[:, :, a0:a1, :b0] = 0
                if b1 < out_w:
                    tap[:, :, a0:a1, b1:] = 0
                if b1 > b0:
                    tap[:, :, a0:a1, b0:b1] = src[
                        :, :, y0:y0 + (a1 - a0 - 1) * sy + 1:sy,
                        x0:x0 + (b1 - b0 - 1) * sx + 1:sx]
    return col


def col2im_block_add(img, gcol, sy, sx, ph, pw, n0, n1, r0, r1, t0, t1):
    """The adjoint of :func:`im2col_block`, restricted to image rows [t0, t1):
    img[n0:n1, :, t0:t1] += col2im(gcol), where gcol (C, kh, kw, n1-n0, r1-r0, in_w)
    holds the columns of rows [r0, r1)."""
    _, _, _, w = img.shape
    _, kh, kw, _, _, in_w = gcol.shape
    dst = img[n0:n1].transpose(1, 0, 2, 3)         # (C, nb, H, W), a view
    for i in range(kh):
        a0, a1 = tap_range(r0, r1, i, sy, ph, t0, t1)
        if a1 <= a0:
            continue
        y0 = a0 * sy - ph + i
        rows = slice(y0, y0 + (a1 - a0 - 1) * sy + 1, sy)
        for j in range(kw):
            b0, b1 = tap_range(0, in_w, j, sx, pw, 0, w)
            if b1 <= b0:
                continue
            x0 = b0 * sx - pw + j
            dst[:, :, rows, x0:x0 + (b1 - b0 - 1) * sx + 1:sx] += \
                gcol[:, i, j, :, a0 - r0:a1 - r0, b0:b1]


def im2col(x, kh, kw, sy, sx, ph, pw, out_h, out_w):
    """The whole column array of ``x`` (N, C, H, W): shape (C*kh*kw, N*out_h*out_w)."""
    n, c = x.shape[:2]
    col = numpy.empty((c, kh, kw, n, out_h, out_w), dtype=x.dtype)
    im2col_block(x, kh, kw, sy, sx, ph, pw, 0, n, 0, out_h, out_w, col)
    return col.reshape(c * kh * kw, n * out_h * out_w)


def col2im(col, sy, sx, ph, pw, h, w):
    """Sum a (N, C, kh, kw, out_h, out_w) column array (Chainer's layout, any strides)
    back into a new (N, C, h, w) image: the adjoint of im2col."""
    n, c = col.shape[:2]
    img = numpy.zeros((n, c, h, w), dtype=col.dtype)
    col2im_block_add(img, col.transpose(1, 2, 3, 0, 4, 5), sy, sx, ph, pw,
                      0, n, 0, col.shape[4], 0, h)
    return img
