"""A faster CPU path for Chainer's 2-D convolution and deconvolution. float32 arrays go to
oneDNN where its library is installed (:mod:`~tutorial_lib.infra.onednn_ops`); otherwise the
numpy code here computes the same sums of products as stock Chainer, without its reshaping
copies, in cache-sized blocks on all cores.

How and why: docs/fast-cpu-path.md. :mod:`tutorial_lib.infra.fastpath` switches it on and off
together with :mod:`~tutorial_lib.infra.fastbn`, :mod:`~tutorial_lib.infra.fastrelu` and
:mod:`~tutorial_lib.infra.fastadam`.
"""
import math
import threading

from . import compat  # noqa: F401  (before chainer)
import numpy

from chainer.functions.connection import convolution_2d as _c2d
from chainer.functions.connection import deconvolution_2d as _d2d
from chainer.functions.math import sum as _sum
from chainer.utils import conv as _conv

from . import onednn, onednn_ops
from .im2col import (block_matrix, channel_major, col2im_block_add, im2col_block,
                     per_sample_contiguous)
from .threads import run, scratch, split, thread_count

__all__ = ['enable', 'disable', 'is_enabled', 'conv2d_forward', 'conv2d_grad_w',
           'deconv2d_forward']

_ConvF = _c2d.Convolution2DFunction
_ConvGW = _c2d.Convolution2DGradW
_DeconvF = _d2d.Deconvolution2DFunction

# The stock methods, saved once at import so that disable() can always put them back.
_ORIGINAL = {
    _ConvF: _ConvF.__dict__['_forward_cpu_core'],
    _ConvGW: _ConvGW.__dict__['_forward_cpu_core'],
    _DeconvF: _DeconvF.__dict__['_forward_cpu_core'],
}

# Tuning knobs (module attributes, read at every call).
# Work is cut into blocks of about BLOCK_BYTES of im2col columns (at least MIN_COLS
# columns, so that each matrix product stays efficient); a block is written into a small
# per-thread buffer and multiplied while it is still in cache.
BLOCK_BYTES = 4 << 20
MIN_COLS = 256
# Small maps with many channels (weights at least 1/DEEP of the data): split the work by
# output channels instead of by columns, so that each thread reads the weights once.
DEEP = 1.0
# Weight gradients with at most SMALL_M rows (output channels) use the transposed product.
SMALL_M = 32
# Hand float32 convolutions to oneDNN when its library is installed (infra/onednn.py).
USE_ONEDNN = True

_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
_lock = threading.RLock()


def _plan(n, rows, row_len, col_bytes, threads, min_rows=1):
    """Blocks (n0, n1, r0, r1) of the columns (n samples x rows x row_len) of a column
    array whose column takes ``col_bytes``: each about BLOCK_BYTES and at least
    MIN_COLS columns, at least ``threads`` blocks when there is enough work. A block is
    either whole samples [n0, n1) or at least ``min_rows`` rows [r0, r1) of one sample."""
    total = n * rows * row_len
    nblocks = max(-(-total * col_bytes // BLOCK_BYTES), threads)
    nblocks = max(1, min(nblocks, total // MIN_COLS))
    if nblocks <= n:
        return [(n0, n1, 0, rows) for n0, n1 in split(n, nblocks)]
    per_sample = min(-(-nblocks // n), max(1, rows // max(1, min_rows)))
    return [(i, i + 1, r0, r1) for i in range(n) for r0, r1 in split(rows, per_sample)]


# ----------------------------------------------------------------------------------
# The three operations
# ----------------------------------------------------------------------------------

def _conv_im2col(x, W, b, sy, sx, ph, pw, out_h, out_w):
    """Convolution as im2col columns multiplied by W (O, C*kh*kw)."""
    n, c, h, w = x.shape
    o, _, kh, kw = W.shape
    k, p, dtype = c * kh * kw, out_h * out_w, x.dtype
    W2 = numpy.ascontiguousarray(W).reshape(o, k)
    bias = None if b is None else b.reshape(o, 1)
    y = numpy.empty((n, o, out_h, out_w), dtype=dtype)
    y3 = y.reshape(n, o, p)
    threads = thread_count()
    plan = _plan(n, out_h, out_w, k * dtype.itemsize, threads)

    if o * DEEP >= n * p:
        # The weights are as large as the columns (small maps, many channels): build all
        # columns once (blocks in parallel), then give each thread some output channels.
        col = numpy.empty((c, kh, kw, n, out_h, out_w), dtype=dtype)
        run(plan, lambda blk: im2col_block(
            x, kh, kw, sy, sx, ph, pw, blk[0], blk[1], blk[2], blk[3], out_w,
            col[:, :, :, blk[0]:blk[1], blk[2]:blk[3]]), threads)
        col = col.reshape(k, n * p)

        def part(rng):
            o0, o1 = rng
            if n == 1:
                out = numpy.matmul(W2[o0:o1], col, out=y3[0, o0:o1])
            else:
                out = numpy.matmul(W2[o0:o1], col, out=scratch(
                    'out', (o1 - o0) * n * p, dtype).reshape(o1 - o0, n * p))
            if bias is not None:
                out += bias[o0:o1]
            if n > 1:
                y3[:, o0:o1] = out.reshape(o1 - o0, n, p).transpose(1, 0, 2)
        run(split(o, threads), part, threads)
        return y

    def work(block):
        # Streaming: im2col of one block into a per-thread buffer, then its product.
        n0, n1, r0, r1 = block
        nb, cols = n1 - n0, (n1 - n0) * (r1 - r0) * out_w
        col = scratch('col', k * cols, dtype)
        im2col_block(x, kh, kw, sy, sx, ph, pw, n0, n1, r0, r1, out_w,
                      col.reshape(c, kh, kw, nb, r1 - r0, out_w))
        col = col.reshape(k, cols)
        if nb == 1:                                # straight into y (row stride P)
            out = numpy.matmul(W2, col, out=y3[n0, :, r0 * out_w:r1 * out_w])
        else:
            out = numpy.matmul(W2, col, out=scratch('out', o * cols, dtype).reshape(o, cols))
        if bias is not None:
            out += bias
        if nb > 1:
            y3[n0:n1] = out.reshape(o, nb, p).transpose(1, 0, 2)

    run(plan, work, threads)
    return y


def _deconv_col2im(x, W, b, sy, sx, ph, pw, out_h, out_w):
    """Transposed convolution as blocks of W^T (Cout*kh*kw, Cin) times x, then col2im.

    Blocks of input rows of one sample add into overlapping output rows, so they run in
    two rounds: first the even-numbered row blocks of every sample, then the odd ones;
    blocks are tall enough that two blocks of the same round never touch the same row."""
    n, cin, h, w = x.shape
    _, cout, kh, kw = W.shape
    k, p, dtype = cout * kh * kw, h * w, x.dtype
    x = per_sample_contiguous(x)
    Wt = numpy.ascontiguousarray(W).reshape(cin, k).T   # (K, Cin), a transposed view
    if b is None:
        y = numpy.zeros((n, cout, out_h, out_w), dtype=dtype)
    else:
        y = numpy.empty((n, cout, out_h, out_w), dtype=dtype)
        y[...] = b.reshape(1, cout, 1, 1)
    threads = thread_count()
    if cout * kh * kw * DEEP >= n * p:
        # The weights are larger than the input (small maps, many channels): every
        # thread multiplies all of x by the weights of some output channels, and
        # col2im-adds into those channels only.
        x2 = channel_major(x)
        per_channel = kh * kw * n * p * dtype.itemsize
        parts = max(threads, -(-cout * per_channel // BLOCK_BYTES))

        def part(rng):
            c0, c1 = rng
            rows = (c1 - c0) * kh * kw
            gcol = numpy.matmul(Wt[c0 * kh * kw:c1 * kh * kw], x2, out=scratch(
                'col', rows * n * p, dtype).reshape(rows, n * p))
            col2im_block_add(y[:, c0:c1], gcol.reshape(c1 - c0, kh, kw, n, h, w),
                              sy, sx, ph, pw, 0, n, 0, h, 0, out_h)
        run(split(cout, parts), part, threads)
        return y
    # Rows r and r' of x reach a common output row only if |r - r'| * sy < kh.
    min_rows = max(1, (kh - 1) // sy)
    rounds = ([], [])
    index = {}
    for block in _plan(n, h, w, k * dtype.itemsize, 2 * threads, min_rows):
        j = index[block[0]] = index.get(block[0], -1) + 1   # block number in its sample
        rounds[j % 2].append(block)

    def work(block):
        n0, n1, r0, r1 = block
        nb, rows = n1 - n0, r1 - r0
        cols = nb * rows * w
        xc = block_matrix(x, n0, n1, r0, r1)
        gcol = numpy.matmul(Wt, xc, out=scratch('col', k * cols, dtype).reshape(k, cols))
        col2im_block_add(y, gcol.reshape(cout, kh, kw, nb, rows, w),
                          sy, sx, ph, pw, n0, n1, r0, r1, 0, out_h)

    for blocks in rounds:
        run(blocks, work, threads)
    return y


def _col_outer(src, other, kh, kw, sy, sx, ph, pw):
    """The (M, C*kh*kw) matrix sum_columns other (N, M, oh, ow) x im2col(src (N, C, H, W)):
    with src = x and other = gy this is the weight gradient of a convolution.
    The blocks are summed in a fixed grouping and order, so results do not depend on
    which thread happened to run which block."""
    n, c = src.shape[:2]
    _, m, out_h, out_w = other.shape
    k, p, dtype = c * kh * kw, out_h * out_w, src.dtype
    isz = dtype.itemsize
    threads = thread_count()
    other = per_sample_contiguous(other)
    plan = _plan(n, out_h, out_w, k * isz, threads)
    if 2 * m * DEEP >= n * p or len(plan) == 1:
        # Small maps, many channels (deep layers): the result is as large as the whole
        # column array. Build that once (blocks in parallel), then split the product
        # over the rows of the result.
        col = numpy.empty((c, kh, kw, n, out_h, out_w), dtype=dtype)
        run(plan, lambda blk: im2col_block(
            src, kh, kw, sy, sx, ph, pw, blk[0], blk[1], blk[2], blk[3], out_w,
            col[:, :, :, blk[0]:blk[1], blk[2]:blk[3]]), threads)
        o2 = channel_major(other)
        colT = col.reshape(k, n * p).T               # transposed view; BLAS reads it as is
        acc = numpy.empty((m, k), dtype=dtype)
        run(split(m, threads),
             lambda r: numpy.matmul(o2[r[0]:r[1]], colT, out=acc[r[0]:r[1]]), threads)
        return acc

    # Few result rows (m <= SMALL_M): single-threaded sgemm is up to 2x faster computing
    # the transposed product col (k, cols) x g^T (cols, m) than g (m, cols) x col^T; the
    # choice depends on the shapes only, so results stay reproducible.
    transposed = m <= SMALL_M
    shape = (k, m) if transposed else (m, k)

    def work(group):
        acc = numpy.empty(shape, dtype=dtype)
        for idx, (n0, n1, r0, r1) in enumerate(group):
            nb, cols = n1 - n0, (n1 - n0) * (r1 - r0) * out_w
            col = scratch('col', k * cols, dtype)
            im2col_block(src, kh, kw, sy, sx, ph, pw, n0, n1, r0, r1, out_w,
                          col.reshape(c, kh, kw, nb, r1 - r0, out_w))
            g = block_matrix(other, n0, n1, r0, r1)
            a, b = (col.reshape(k, cols), g.T) if transposed else (g, col.reshape(k, cols).T)
            if idx == 0:
                numpy.matmul(a, b, out=acc)
            else:
                acc += numpy.matmul(a, b, out=scratch('acc', m * k, dtype).reshape(shape))
        return acc

    groups = [plan[g0:g1] for g0, g1 in split(len(plan), 2 * threads)]
    parts = run(groups, work, threads)
    acc = parts[0]
    for part in parts[1:]:
        acc += part
    return numpy.ascontiguousarray(acc.T) if transposed else acc


def _flip(W):
    """Swap the two channel axes of a kernel and rotate it by 180 degrees (a view)."""
    return W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]


def _can_swap(sy, sx, ph, pw, kh, kw):
    # With stride 1, a convolution is a transposed convolution with the flipped kernel
    # and padding k-1-p (and vice versa), so either formulation can be used.
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
            and gy.shape[2] + kh - 1 - 2 * ph == x.shape[2]
            and gy.shape[3] + kw - 1 - 2 * pw == x.shape[3]):
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
        if type(a) is not numpy.ndarray or a.size == 0:
            return False
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            return False
    return dtype in _DTYPES


def _use_onednn(arrays):
    """oneDNN takes float32 (its float64 kernels are reference code, slower than numpy);
    weights and biases are made C-contiguous, the data arrays may have any layout."""
    return (USE_ONEDNN and all(a is None or onednn_ops.supported(a) for a in arrays)
            and onednn_ops.ready())


def _params(W, b):
    return (numpy.ascontiguousarray(W), None if b is None else numpy.ascontiguousarray(b))


def _conv_forward_core(self, x, W, b):
    if not _fast_ok(self, (x, W, b)):
        return _ORIGINAL[_ConvF](self, x, W, b)
    if _use_onednn((x, W, b)):
        kh, kw = W.shape[2:]
        out_h = _conv.get_conv_outsize(x.shape[2], kh, self.sy, self.ph, bool(self.cover_all))
        out_w = _conv.get_conv_outsize(x.shape[3], kw, self.sx, self.pw, bool(self.cover_all))
        try:
            return onednn_ops.conv_forward(x, *_params(W, b), (self.sy, self.sx),
                                           (self.ph, self.pw), (out_h, out_w)),
        except onednn.OneDNNError:
            pass  # no kernel for this geometry: numpy below
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
    if _use_onednn((x, gy)):
        try:
            return onednn_ops.conv_grad_w(x, gy, (gy.shape[1], c, self.kh, self.kw),
                                          (self.sy, self.sx), (self.ph, self.pw)),
        except onednn.OneDNNError:
            pass
    return conv2d_grad_w(x, gy, self.kh, self.kw, self.sy, self.sx, self.ph, self.pw),


def _deconv_forward_core(self, x, W, b):
    if not _fast_ok(self, (x, W, b)):
        return _ORIGINAL[_DeconvF](self, x, W, b)
    if self.cover_all is None:
        # What forward_gpu does; stock forward_cpu leaves it unset, and backward's
        # grad-W-only branch then calls _set_cover_all with arrays instead of shapes.
        self._set_cover_all(x.shape, W.shape)
    if _use_onednn((x, W, b)):
        try:
            return onednn_ops.deconv_forward(x, *_params(W, b), (self.sy, self.sx),
                                             (self.ph, self.pw), (self.outh, self.outw)),
        except onednn.OneDNNError:
            pass
    return deconv2d_forward(x, W, b, self.sy, self.sx, self.ph, self.pw,
                            self.outh, self.outw),


_FAST = {_ConvF: _conv_forward_core, _ConvGW: _conv_grad_w_core,
         _DeconvF: _deconv_forward_core}


def _sharing_backward(cls):
    original = cls.__dict__['backward']

    def backward(self, indexes, grad_outputs):
        # Both gradients read gy: oneDNN reorders it into the kernels' layout once.
        with onednn.sharing():
            return original(self, indexes, grad_outputs)
    return original, backward


_BACKWARD = {cls: _sharing_backward(cls) for cls in (_ConvF, _DeconvF)}

_Sum = _sum.Sum
_SUM_ORIGINAL = _Sum.__dict__['forward']


def _sum_forward(self, inputs):
    """The bias gradient of a convolution, sum(gy, axis=(0, 2, 3)): for a channels-last gy
    numpy's reduction adds rows of C values one after the other (8x slower than for NCHW).
    Read as rows of k * C values instead (k pixels side by side), the sum runs over long
    vectors; then the k partial sums of each channel are added. (Not a BLAS product with a
    vector of ones: OpenBLAS's spinning threads then slow oneDNN's next kernels.)"""
    x, = inputs
    if (type(x) is numpy.ndarray and x.dtype == numpy.float32 and not self.keepdims
            and self.axis == (0, 2, 3) and onednn_ops.is_channels_last(x)):
        c = x.shape[1]
        pixels = x.size // c
        k = math.gcd(pixels, 256)
        partial = x.transpose(0, 2, 3, 1).reshape(pixels // k, k * c).sum(axis=0)
        return partial.reshape(k, c).sum(axis=0),
    return _SUM_ORIGINAL(self, inputs)


# ----------------------------------------------------------------------------------
# Switching this module alone (fastpath switches the whole fast CPU path)
# ----------------------------------------------------------------------------------

def enable():
    """Route Chainer's CPU conv/deconv cores to the fast code (idempotent)."""
    with _lock:
        for cls, fn in _FAST.items():
            cls._forward_cpu_core = fn
        for cls, (_, fn) in _BACKWARD.items():
            cls.backward = fn
        _Sum.forward = _sum_forward


def disable():
    """Put Chainer's own CPU cores back (idempotent)."""
    with _lock:
        for cls, fn in _ORIGINAL.items():
            cls._forward_cpu_core = fn
        for cls, (fn, _) in _BACKWARD.items():
            cls.backward = fn
        _Sum.forward = _SUM_ORIGINAL


def is_enabled():
    """True when all three Chainer cores are the fast ones."""
    return all(cls.__dict__.get('_forward_cpu_core') is fn for cls, fn in _FAST.items())
