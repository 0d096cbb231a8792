"""A faster CPU path for Chainer's 2-D convolution and deconvolution.

Why
---
On a CPU, Chainer 7.8.1 computes every convolution as ``im2col`` followed by
``numpy.tensordot``. ``tensordot`` first reshapes its operands into 2-D matrices; with the
axis orders Chainer uses (``(N, C, kh, kw, out_h, out_w)`` contracted over ``C, kh, kw``)
those reshapes are not views but full copies of the (large) column array, and the result
then needs a ``rollaxis``. In a train step of the blog's U-Net more than half of the time
went into those copies, and another fifth into ``numpy.pad`` + im2col/col2im.

What this module replaces
-------------------------
Exactly three methods, each the CPU "core" that Chainer calls after it has chosen the
non-grouped, non-iDeep path (``forward_cpu`` and everything around it stay Chainer's):

* ``chainer.functions.connection.convolution_2d.Convolution2DFunction._forward_cpu_core``
  (convolution forward; also the input gradient of a deconvolution);
* ``chainer.functions.connection.convolution_2d.Convolution2DGradW._forward_cpu_core``
  (the weight gradient of a convolution *and* of a deconvolution);
* ``chainer.functions.connection.deconvolution_2d.Deconvolution2DFunction._forward_cpu_core``
  (deconvolution forward; also the input gradient of a convolution).

Because the backward passes of these FunctionNodes are built from the same three nodes,
replacing the three cores speeds up forward, grad-x and grad-W, and the graphs Chainer
builds for backward and double backward are unchanged.

Each replacement is a thin wrapper: it runs the fast code only when every input is a
``numpy.ndarray`` of one float dtype (float32 or float64), ``groups == 1``, ``dilate == 1``
and iDeep is not in use; any stride, padding, kernel size and ``cover_all`` are
supported. Anything else (float16, mixed dtypes, dilation, ...) goes to the original
method. CuPy arrays never reach these methods (they take ``forward_gpu``), so the GPU path
is untouched.

How it is faster
----------------
* im2col writes the column array directly in the layout the matrix product needs, one
  strided slice assignment per kernel tap (``kh * kw`` of them), with only the border
  strips zeroed (no ``numpy.pad`` copy): either ``(N, C*kh*kw, oh*ow)`` (one GEMM per
  sample, output already NCHW) or ``(C*kh*kw, N*oh*ow)`` (one big GEMM; used when the
  feature map is small or for the weight gradient).
* The products are ``numpy.matmul`` calls on contiguous views, so they go straight to the
  multithreaded BLAS sgemm/dgemm with no reshaping copies.
* col2im adds one strided slice per kernel tap into the (unpadded) output.

The arithmetic is the same sum of products as Chainer's, only the order of the
additions inside BLAS may differ, so results agree with stock Chainer to float rounding
(``tests/test_fastconv.py`` checks this, and checks the gradients numerically).

Use
---
``import tutorial_lib`` enables the fast path (unless the environment variable
``TUTORIAL_FASTCONV=0`` is set). ``fastconv.disable()`` / ``fastconv.enable()`` switch it
off and on; ``with fastconv.stock(): ...`` runs a block on stock Chainer (for
comparisons); ``fastconv.is_enabled()`` tells which one is active.
"""
import contextlib
import os
import threading

from . import compat  # noqa: F401  (before chainer)
import numpy

from chainer.functions.connection import convolution_2d as _c2d
from chainer.functions.connection import deconvolution_2d as _d2d
from chainer.utils import conv as _conv

__all__ = ['enable', 'disable', 'is_enabled', 'stock', 'enable_from_env',
           'conv2d_forward', 'conv2d_grad_w', 'deconv2d_forward', 'im2col', 'col2im']

_ConvF = _c2d.Convolution2DFunction
_ConvGW = _c2d.Convolution2DGradW
_DeconvF = _d2d.Deconvolution2DFunction

# The stock methods, saved once at import so that disable() can always put them back.
_ORIGINAL = {
    _ConvF: _ConvF.__dict__['_forward_cpu_core'],
    _ConvGW: _ConvGW.__dict__['_forward_cpu_core'],
    _DeconvF: _DeconvF.__dict__['_forward_cpu_core'],
}

# Work is done in blocks of columns: im2col writes about BLOCK_BYTES of columns into a
# small reused buffer, BLAS multiplies them while they are still in cache. MIN_COLS keeps
# each matrix product wide enough for BLAS to run near its peak.
BLOCK_BYTES = 2 << 20
MIN_COLS = 256
GRAD_W_MIN_COLS = 512

_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
_lock = threading.RLock()


# ----------------------------------------------------------------------------------
# Building blocks (pure numpy; usable and testable without Chainer)
# ----------------------------------------------------------------------------------

def _valid_range(out_size, offset, stride, pad, in_size):
    """Output indices a in [lo, hi) whose input index a*stride - pad + offset lies in
    [0, in_size)."""
    # a * stride >= pad - offset  ->  a >= ceil((pad - offset) / stride)
    lo = max(0, -((offset - pad) // stride))
    # a * stride <= in_size - 1 + pad - offset
    hi = min(out_size, (in_size - 1 + pad - offset) // stride + 1)
    return lo, max(lo, hi)


def _chunks(n, rows, row_len, col_bytes, target_bytes, min_cols):
    """Split the columns (n, rows, row_len) of a column array into blocks of about
    ``target_bytes``: whole samples when a sample is small, else runs of rows of one
    sample. Yields (n0, n1, r0, r1)."""
    cols = max(min_cols, target_bytes // max(1, col_bytes))
    per_sample = rows * row_len
    if per_sample <= cols:
        nb = max(1, cols // per_sample)
        for n0 in range(0, n, nb):
            yield n0, min(n, n0 + nb), 0, rows
    else:
        nr = max(1, cols // row_len)
        for n0 in range(n):
            for r0 in range(0, rows, nr):
                yield n0, n0 + 1, r0, min(rows, r0 + nr)


def _im2col_block(x, kh, kw, sy, sx, ph, pw, n0, n1, r0, r1, out_w, buf):
    """Write the im2col columns of samples [n0, n1) and output rows [r0, r1) into ``buf``
    (a C-contiguous array of at least C*kh*kw*(n1-n0)*(r1-r0)*out_w elements) and return
    them as a (C*kh*kw, (n1-n0)*(r1-r0)*out_w) view of it.

    Column (n, a, b), row (c, i, j) holds x[n, c, a*sy - ph + i, b*sx - pw + j], 0 outside.
    """
    _, c, h, w = x.shape
    nb, rows = n1 - n0, r1 - r0
    size = c * kh * kw * nb * rows * out_w
    col = buf[:size].reshape(c, kh, kw, nb, rows, out_w)
    src = x[n0:n1].transpose(1, 0, 2, 3)           # (C, nb, H, W), a view
    for i in range(kh):
        lo, hi = _valid_range(r1, i, sy, ph, h)
        a0, a1 = max(lo, r0) - r0, max(min(hi, r1), r0) - r0   # local rows with data
        a1 = max(a0, a1)
        y0 = (a0 + r0) * sy - ph + i
        for j in range(kw):
            b0, b1 = _valid_range(out_w, j, sx, pw, w)
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
    return col.reshape(c * kh * kw, nb * rows * out_w)


def _col2im_block_add(img, gcol, sy, sx, ph, pw, n0, n1, r0, r1):
    """img[n0:n1] += col2im of the columns (samples [n0, n1), rows [r0, r1)) in ``gcol``,
    a (C, kh, kw, n1-n0, r1-r0, out_w) array: the adjoint of :func:`_im2col_block`."""
    _, _, h, w = img.shape
    _, kh, kw, _, _, out_w = gcol.shape
    dst = img[n0:n1].transpose(1, 0, 2, 3)         # (C, nb, H, W), a view
    for i in range(kh):
        lo, hi = _valid_range(r1, i, sy, ph, h)
        a0, a1 = max(lo, r0), min(hi, r1)
        if a1 <= a0:
            continue
        y0 = a0 * sy - ph + i
        rows = slice(y0, y0 + (a1 - a0 - 1) * sy + 1, sy)
        for j in range(kw):
            b0, b1 = _valid_range(out_w, j, sx, pw, w)
            if b1 <= b0:
                continue
            x0 = b0 * sx - pw + j
            dst[:, :, rows, x0:x0 + (b1 - b0 - 1) * sx + 1:sx] += \
                gcol[:, i, j, :, a0 - r0:a1 - r0, b0:b1]


def im2col(x, kh, kw, sy, sx, ph, pw, out_h, out_w):
    """The whole column array of ``x`` (N, C, H, W): shape (C*kh*kw, N*out_h*out_w)."""
    n, c = x.shape[:2]
    buf = numpy.empty(c * kh * kw * n * out_h * out_w, dtype=x.dtype)
    return _im2col_block(x, kh, kw, sy, sx, ph, pw, 0, n, 0, out_h, out_w, buf)


def col2im(col, sy, sx, ph, pw, h, w):
    """Sum a (N, C, kh, kw, out_h, out_w) column array (any strides; Chainer's layout)
    back into a new (N, C, h, w) image: the adjoint of im2col."""
    n, c = col.shape[:2]
    img = numpy.zeros((n, c, h, w), dtype=col.dtype)
    _col2im_block_add(img, col.transpose(1, 2, 3, 0, 4, 5), sy, sx, ph, pw,
                      0, n, 0, col.shape[4])
    return img


def _blocks_and_buffer(n, rows, row_len, col_bytes, dtype, min_cols=None):
    blocks = list(_chunks(n, rows, row_len, col_bytes, BLOCK_BYTES,
                          MIN_COLS if min_cols is None else min_cols))
    big = max((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in blocks) * row_len
    return blocks, big


def _conv_im2col(x, W, b, sy, sx, ph, pw, out_h, out_w):
    """Convolution as blocks of im2col columns times W (O, C*kh*kw)."""
    n, c, h, w = x.shape
    o, _, kh, kw = W.shape
    k, p = c * kh * kw, out_h * out_w
    W2 = numpy.ascontiguousarray(W).reshape(o, k)
    bias = None if b is None else b.reshape(o, 1)
    y = numpy.empty((n, o, out_h, out_w), dtype=x.dtype)
    y3 = y.reshape(n, o, p)
    blocks, big = _blocks_and_buffer(n, out_h, out_w, k * x.dtype.itemsize, x.dtype)
    buf = numpy.empty(k * big, dtype=x.dtype)
    tmp = None
    for n0, n1, r0, r1 in blocks:
        col = _im2col_block(x, kh, kw, sy, sx, ph, pw, n0, n1, r0, r1, out_w, buf)
        if n1 - n0 == 1:
            out = y3[n0, :, r0 * out_w:r1 * out_w]     # (O, cols), row stride P
            numpy.matmul(W2, col, out=out)
            if bias is not None:
                out += bias
        else:
            if tmp is None:
                tmp = numpy.empty(o * big, dtype=x.dtype)
            res = numpy.matmul(W2, col, out=tmp[:o * col.shape[1]].reshape(o, -1))
            if bias is not None:
                res += bias
            y3[n0:n1] = res.reshape(o, n1 - n0, p).transpose(1, 0, 2)
    return y


def _deconv_col2im(x, W, b, sy, sx, ph, pw, out_h, out_w):
    """Transposed convolution as blocks of W^T (Cout*kh*kw, Cin) times x, then col2im."""
    n, cin, h, w = x.shape
    _, cout, kh, kw = W.shape
    k, p = cout * kh * kw, h * w
    Wt = numpy.ascontiguousarray(W).reshape(cin, k).T   # (K, Cin), a transposed view
    y = numpy.zeros((n, cout, out_h, out_w), dtype=x.dtype)
    blocks, big = _blocks_and_buffer(n, h, w, k * x.dtype.itemsize, x.dtype)
    buf = numpy.empty(k * big, dtype=x.dtype)
    xbuf = None
    x_n, x2 = -1, None
    for n0, n1, r0, r1 in blocks:
        nb, rows = n1 - n0, r1 - r0
        if nb == 1:
            if x_n != n0:                              # one sample as (Cin, h*w)
                x_n, x2 = n0, x[n0].reshape(cin, p)
            xc = x2[:, r0 * w:r1 * w]
        else:
            if xbuf is None:
                xbuf = numpy.empty(cin * big, dtype=x.dtype)
            xc = xbuf[:cin * nb * p].reshape(cin, nb, p)
            xc[...] = x[n0:n1].reshape(nb, cin, p).transpose(1, 0, 2)
            xc = xc.reshape(cin, nb * p)
        gcol = numpy.matmul(Wt, xc, out=buf[:k * nb * rows * w].reshape(k, -1))
        _col2im_block_add(y, gcol.reshape(cout, kh, kw, nb, rows, w),
                          sy, sx, ph, pw, n0, n1, r0, r1)
    if b is not None:
        y += b.reshape(1, cout, 1, 1)
    return y


def _col_outer(src, other, kh, kw, sy, sx, ph, pw):
    """sum over all columns of other (N, M, oh, ow) times im2col(src) (N, C, H, W):
    an (M, C*kh*kw) matrix. With src = x and other = gy this is a weight gradient."""
    n, c = src.shape[:2]
    _, m, out_h, out_w = other.shape
    k, p = c * kh * kw, out_h * out_w
    blocks, big = _blocks_and_buffer(n, out_h, out_w, k * src.dtype.itemsize,
                                     src.dtype, min_cols=GRAD_W_MIN_COLS)
    buf = numpy.empty(k * big, dtype=src.dtype)
    acc = numpy.empty((m, k), dtype=src.dtype)
    tmp = obuf = None
    o_n, o2 = -1, None
    for idx, (n0, n1, r0, r1) in enumerate(blocks):
        col = _im2col_block(src, kh, kw, sy, sx, ph, pw, n0, n1, r0, r1, out_w, buf)
        if n1 - n0 == 1:
            if o_n != n0:                              # one sample as (M, P)
                o_n, o2 = n0, other[n0].reshape(m, p)
            g = o2[:, r0 * out_w:r1 * out_w]
        else:
            if obuf is None:
                obuf = numpy.empty(m * big, dtype=src.dtype)
            g = obuf[:m * col.shape[1]].reshape(m, n1 - n0, p)
            g[...] = other[n0:n1].reshape(n1 - n0, m, p).transpose(1, 0, 2)
            g = g.reshape(m, -1)
        # (M, cols) @ (cols, K): col.T is a transposed view, BLAS reads it as is.
        if idx == 0:
            numpy.matmul(g, col.T, out=acc)
        else:
            if tmp is None:
                tmp = numpy.empty((m, k), dtype=src.dtype)
            acc += numpy.matmul(g, col.T, out=tmp)
    return acc


def _flip(W):
    """Swap the two channel axes of a kernel and rotate it by 180 degrees (a view)."""
    return W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]


def _can_swap(sy, sx, ph, pw, kh, kw):
    # With stride 1, a convolution is a transposed convolution with the flipped kernel
    # and padding k-1-p (and vice versa).
    return sy == 1 and sx == 1 and 0 <= ph <= kh - 1 and 0 <= pw <= kw - 1


def conv2d_forward(x, W, b, sy, sx, ph, pw, cover_all=False):
    """y = conv(x, W) + b for x (N, C, H, W), W (O, C, kh, kw) -> (N, O, oh, ow)."""
    n, c, h, w = x.shape
    o, _, kh, kw = W.shape
    out_h = _conv.get_conv_outsize(h, kh, sy, ph, cover_all)
    out_w = _conv.get_conv_outsize(w, kw, sx, pw, cover_all)
    if o < c and _can_swap(sy, sx, ph, pw, kh, kw):
        # Fewer output than input channels: col2im of O*kh*kw rows moves less memory
        # than im2col of C*kh*kw rows.
        return _deconv_col2im(x, _flip(W), b, 1, 1, kh - 1 - ph, kw - 1 - pw,
                              out_h, out_w)
    return _conv_im2col(x, W, b, sy, sx, ph, pw, out_h, out_w)


def deconv2d_forward(x, W, b, sy, sx, ph, pw, out_h, out_w):
    """Transposed convolution: x (N, Cin, h, w), W (Cin, Cout, kh, kw) -> (N, Cout, oh, ow)."""
    n, cin, h, w = x.shape
    _, cout, kh, kw = W.shape
    if (cin < cout and _can_swap(sy, sx, ph, pw, kh, kw)
            and out_h == h + kh - 1 - 2 * ph and out_w == w + kw - 1 - 2 * pw):
        return _conv_im2col(x, _flip(W), b, 1, 1, kh - 1 - ph, kw - 1 - pw, out_h, out_w)
    return _deconv_col2im(x, W, b, sy, sx, ph, pw, out_h, out_w)


def conv2d_grad_w(x, gy, kh, kw, sy, sx, ph, pw):
    """dL/dW of conv(x, W) given gy = dL/dy (N, O, oh, ow): shape (O, C, kh, kw)."""
    c, o = x.shape[1], gy.shape[1]
    if (o < c and _can_swap(sy, sx, ph, pw, kh, kw)
            and gy.shape[2] + 2 * (kh - 1 - ph) - kh + 1 == x.shape[2]
            and gy.shape[3] + 2 * (kw - 1 - pw) - kw + 1 == x.shape[3]):
        # im2col of gy (O*kh*kw rows) instead of x (C*kh*kw rows).
        r = _col_outer(gy, x, kh, kw, 1, 1, kh - 1 - ph, kw - 1 - pw)  # (C, O*kh*kw)
        return numpy.ascontiguousarray(_flip(r.reshape(c, o, kh, kw)))
    return _col_outer(x, gy, kh, kw, sy, sx, ph, pw).reshape(o, c, kh, kw)


# ----------------------------------------------------------------------------------
# The three wrappers that replace Chainer's CPU cores
# ----------------------------------------------------------------------------------

def _fast_ok(node, arrays):
    if node._use_ideep or getattr(node, 'groups', 1) != 1:
        return False
    if node.dy != 1 or node.dx != 1:
        return False
    dtype = None
    for a in arrays:
        if a is None:
            continue
        if type(a) is not numpy.ndarray:
            return False
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            return False
    return dtype in _DTYPES


def _conv_forward_core(self, x, W, b):
    if not _fast_ok(self, (x, W, b)):
        return _ORIGINAL[_ConvF](self, x, W, b)
    return conv2d_forward(x, W, b, self.sy, self.sx, self.ph, self.pw,
                          bool(self.cover_all)),


def _conv_grad_w_core(self, x, gy):
    if not _fast_ok(self, (x, gy)) or numpy.dtype(self.W_dtype) != x.dtype:
        return _ORIGINAL[_ConvGW](self, x, gy)
    n, c, h, w = x.shape
    out_h = _conv.get_conv_outsize(h, self.kh, self.sy, self.ph, bool(self.cover_all))
    out_w = _conv.get_conv_outsize(w, self.kw, self.sx, self.pw, bool(self.cover_all))
    if gy.shape[2:] != (out_h, out_w):  # should not happen; let Chainer complain
        return _ORIGINAL[_ConvGW](self, x, gy)
    return conv2d_grad_w(x, gy, self.kh, self.kw, self.sy, self.sx, self.ph, self.pw),


def _deconv_forward_core(self, x, W, b):
    if not _fast_ok(self, (x, W, b)):
        return _ORIGINAL[_DeconvF](self, x, W, b)
    if self.cover_all is None:
        # What forward_gpu does; stock forward_cpu leaves it unset, and backward's
        # grad-W-only branch then calls _set_cover_all with arrays instead of shapes.
        self._set_cover_all(x.shape, W.shape)
    return deconv2d_forward(x, W, b, self.sy, self.sx, self.ph, self.pw,
                            self.outh, self.outw),


_FAST = {_ConvF: _conv_forward_core, _ConvGW: _conv_grad_w_core,
         _DeconvF: _deconv_forward_core}


# ----------------------------------------------------------------------------------
# Switching
# ----------------------------------------------------------------------------------

def enable():
    """Route Chainer's CPU conv/deconv cores to the fast code (idempotent)."""
    with _lock:
        for cls, fn in _FAST.items():
            cls._forward_cpu_core = fn


def disable():
    """Put Chainer's own CPU cores back (idempotent)."""
    with _lock:
        for cls, fn in _ORIGINAL.items():
            cls._forward_cpu_core = fn


def is_enabled():
    """True when all three Chainer cores are the fast ones."""
    return all(cls.__dict__.get('_forward_cpu_core') is fn for cls, fn in _FAST.items())


@contextlib.contextmanager
def stock():
    """Run the enclosed block on stock Chainer, then restore the previous state."""
    with _lock:
        was = is_enabled()
        disable()
    try:
        yield
    finally:
        if was:
            enable()


@contextlib.contextmanager
def fast():
    """Run the enclosed block with the fast path, then restore the previous state."""
    with _lock:
        was = is_enabled()
        enable()
    try:
        yield
    finally:
        if not was:
            disable()


def enable_from_env(environ=None):
    """Enable unless ``TUTORIAL_FASTCONV`` is set to 0/false/no/off. Returns the state."""
    value = (os.environ if environ is None else environ).get('TUTORIAL_FASTCONV', '1')
    if value.strip().lower() in ('0', 'false', 'no', 'off'):
        disable()
    else:
        enable()
    return is_enabled()
