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
is untouched. One small difference on purpose: the deconvolution wrapper records
``cover_all`` in its forward pass, as Chainer's GPU forward does (stock CPU forward leaves
it unset, and the weight-gradient-only branch of its backward then calls
``_set_cover_all`` with arrays where it expects shapes).

How it is faster
----------------
* No reshaping copies: im2col writes the column array directly in the
  ``(C*kh*kw, columns)`` layout the matrix product needs, one strided slice assignment
  per kernel tap (``kh * kw`` of them) with only the border strips zeroed (no
  ``numpy.pad``); col2im adds one strided slice per tap into the unpadded output. The
  products are ``numpy.matmul`` calls on views (``out=`` straight into the result where
  the layout allows), so they go to BLAS sgemm/dgemm as they are.
* Blocks: the columns are made and multiplied in blocks of about ``BLOCK_BYTES`` (4 MiB)
  held in small per-thread buffers that are reused, so a block is multiplied while it is
  still in cache, the multi-hundred-MB column arrays of 128 px and 512 px layers never
  exist, and no call pays page faults for fresh memory. Layers with small maps and many
  channels (weights as large as the data, see ``DEEP``) are split by output channels
  instead, so every thread reads the weights once.
* Threads: the blocks run on as many Python threads as BLAS is set to use (numpy releases
  the GIL in copies and products), each calling a single-threaded BLAS; meanwhile the
  OpenBLAS thread count is set to 1 through ctypes and restored afterwards (no
  threadpoolctl). So im2col/col2im copies use every core too, and when another program
  takes a core the threads simply share the blocks unevenly: OpenBLAS's own threads wait
  for each other at every call, which made a multithreaded product about 3-4x *slower*
  than a single-threaded one on a 2-core machine with one busy core. With a BLAS other
  than OpenBLAS/pthreads (MKL, Accelerate), or ``OPENBLAS_NUM_THREADS=1``, the blocks run
  one after the other in the calling thread and BLAS keeps its own threading.
  ``fastconv.THREADS`` overrides the thread count. Results do not depend on which thread
  ran which block (fixed grouping and order of partial sums), so runs are reproducible.
* Stride-1 layers pick the cheaper formulation: a convolution with fewer output than
  input channels (every decoder layer of the U-Net) runs as the transposed convolution
  of the flipped kernel (col2im of O*kh*kw rows instead of im2col of C*kh*kw rows), and
  the converse for its input gradient; its weight gradient is made from the im2col of gy
  then.

The arithmetic is the same sum of products as Chainer's, only the order of the
additions differs, so results agree with stock Chainer to float rounding
(``tests/test_fastconv.py`` checks this, and checks the gradients numerically).

Side effect worth knowing: while a convolution runs, OpenBLAS is set to one thread for
the whole process (restored right after), so a numpy product running *at the same time*
in another Python thread is single-threaded for that moment.

Use
---
``import tutorial_lib`` enables the fast path (unless the environment variable
``TUTORIAL_FASTCONV=0`` is set; ``enable_from_env()`` reads it). ``fastconv.disable()``
and ``fastconv.enable()`` switch it off and on; ``with fastconv.stock(): ...`` runs a
block on stock Chainer (for comparisons); ``fastconv.is_enabled()`` tells which one is active; ``blas_info()``
says which BLAS was found and how many threads the fast path uses. The building blocks
(``conv2d_forward``, ``conv2d_grad_w``, ``deconv2d_forward``, ``im2col``, ``col2im``)
take and return plain numpy arrays. ``python -m tutorial_lib.infra.bench`` measures the gain.

The same switches (``enable``, ``disable``, ``stock``, ``fast``, ``enable_from_env``) also
turn on and off :mod:`tutorial_lib.infra.fastbn`, a fused CPU path for batch normalization
(test-mode ``FixedBatchNormalization`` forward, train-mode forward and backward), and
:mod:`tutorial_lib.infra.fastadam`, a blocked, threaded Adam update (bit-identical to
Chainer's); ReLU stays Chainer's (a threaded, blocked ReLU and ReLU gradient were measured
slightly slower than numpy's single pass here: memory-bound, one core already saturates
the memory bandwidth);
``is_enabled()`` is true only when all are on, and ``stock()``/``fast()`` restore each
one's previous state.
"""
import contextlib
import ctypes
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from . import compat  # noqa: F401  (before chainer)
import numpy

from chainer.functions.connection import convolution_2d as _c2d
from chainer.functions.connection import deconvolution_2d as _d2d
from chainer.utils import conv as _conv

__all__ = ['enable', 'disable', 'is_enabled', 'stock', 'fast', 'enable_from_env',
           'conv2d_forward', 'conv2d_grad_w', 'deconv2d_forward', 'im2col', 'col2im',
           'blas_info']

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
# Worker threads. None: as many as the BLAS library is set to use (OPENBLAS_NUM_THREADS
# etc. are honoured); 1: no worker threads, BLAS keeps its own threading.
THREADS = None

_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
_lock = threading.RLock()


# ----------------------------------------------------------------------------------
# Threads: blocks run on a few Python threads, each calling a single-threaded BLAS
# ----------------------------------------------------------------------------------

class _Blas:
    """The OpenBLAS that numpy is linked to, found through ctypes (no threadpoolctl):
    its threading mode and functions to get/set its thread count."""

    _NAMES = [('scipy_openblas_get_num_threads64_', 'scipy_openblas_set_num_threads64_',
               'scipy_openblas_get_parallel64_'),
              ('scipy_openblas_get_num_threads', 'scipy_openblas_set_num_threads',
               'scipy_openblas_get_parallel'),
              ('openblas_get_num_threads64_', 'openblas_set_num_threads64_',
               'openblas_get_parallel64_'),
              ('openblas_get_num_threads', 'openblas_set_num_threads',
               'openblas_get_parallel')]

    def __init__(self):
        self.path, self.get, self.set, self.mode = None, None, None, 'unknown'
        for path in self._candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for get_name, set_name, par_name in self._NAMES:
                if not (hasattr(lib, get_name) and hasattr(lib, set_name)):
                    continue
                get, set_ = getattr(lib, get_name), getattr(lib, set_name)
                get.restype, get.argtypes = ctypes.c_int, []
                set_.restype, set_.argtypes = None, [ctypes.c_int]
                mode = 'pthreads'  # OpenBLAS's default build
                if hasattr(lib, par_name):
                    par = getattr(lib, par_name)
                    par.restype, par.argtypes = ctypes.c_int, []
                    mode = {0: 'sequential', 1: 'pthreads', 2: 'openmp'}.get(par(), 'unknown')
                before = get()
                set_(1)
                works = get() == 1
                set_(before)
                if works:
                    self.path, self.get, self.set, self.mode = path, get, set_, mode
                    return

    @staticmethod
    def _candidates():
        """numpy's own bundled OpenBLAS first (wheels), then any OpenBLAS this process
        has loaded (Linux; e.g. a distribution's numpy linked to libopenblas)."""
        found = []
        site = os.path.dirname(os.path.dirname(numpy.__file__))
        for pattern in ('numpy.libs/*openblas*', 'numpy/.dylibs/*openblas*'):
            for path in sorted(glob.glob(os.path.join(site, pattern))):
                if path not in found:
                    found.append(path)
        try:
            with open('/proc/self/maps') as maps:
                for line in maps:
                    path = line.split(None, 5)[-1].strip() if '/' in line else ''
                    if 'openblas' in os.path.basename(path).lower() and path not in found:
                        found.append(path)
        except OSError:
            pass
        return found


_blas = None
_pool = None
_pool_key = None
_run_lock = threading.Lock()
_tls = threading.local()


def _get_blas():
    global _blas
    if _blas is None:
        _blas = _Blas()
    return _blas


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _threads():
    """How many threads the blocks of one convolution may run on."""
    if THREADS is not None:
        return max(1, int(THREADS))
    blas = _get_blas()
    if blas.mode == 'pthreads':
        return max(1, min(blas.get(), _cpu_count()))
    if blas.mode == 'sequential':
        return _cpu_count()
    return 1  # MKL, Accelerate, OpenMP OpenBLAS, ...: leave threading to the BLAS


def blas_info():
    """What the fast path found: the BLAS library, its threading, the threads it uses."""
    blas = _get_blas()
    return {'library': blas.path, 'mode': blas.mode,
            'blas_threads': blas.get() if blas.get else None, 'fastconv_threads': _threads()}


def _after_fork_in_child():
    # A forked child inherits neither the worker threads nor a consistent lock state.
    global _pool, _pool_key, _run_lock
    _pool, _pool_key, _run_lock = None, None, threading.Lock()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _get_pool(workers):
    global _pool, _pool_key
    key = (os.getpid(), workers)  # a forked child needs threads of its own
    if _pool is None or _pool_key[0] != key[0] or _pool_key[1] < workers:
        if _pool is not None and _pool_key[0] == key[0]:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix='fastconv')
        _pool_key = key
    return _pool


def _run(tasks, work, threads):
    """[work(t) for t in tasks], on up to ``threads`` threads that take the tasks in order
    from a shared queue (so a thread slowed down by another program simply takes fewer).
    While they run, BLAS is set to one thread per caller; results keep the task order."""
    tasks = list(tasks)
    results = [None] * len(tasks)
    workers = min(threads, len(tasks))
    if workers <= 1:
        for i, task in enumerate(tasks):
            results[i] = work(task)
        return results
    queue = iter(enumerate(tasks))
    take = threading.Lock()
    errors = []

    def worker():
        while not errors:
            with take:
                item = next(queue, None)
            if item is None:
                return
            try:
                results[item[0]] = work(item[1])
            except BaseException as e:  # stop everyone, re-raise in the caller
                errors.append(e)
                return

    blas = _get_blas()
    with _run_lock:
        previous = blas.get() if blas.mode == 'pthreads' else None
        if previous is not None and previous != 1:
            blas.set(1)
        try:
            futures = [_get_pool(workers - 1).submit(worker) for _ in range(workers - 1)]
            worker()  # the calling thread works too
            for f in futures:
                if not f.cancel():  # started: wait for it; never started: nothing to do
                    f.result()
        except BaseException as e:  # e.g. KeyboardInterrupt while waiting
            errors.append(e)        # the other threads stop after their current block
            raise
        finally:
            if previous is not None and previous != 1:
                blas.set(previous)
    if errors:
        raise errors[0]
    return results


def _scratch(slot, count, dtype):
    """A per-thread reusable buffer of ``count`` elements (reusing memory avoids page
    faults on every call; the largest block size per thread stays allocated)."""
    bufs = getattr(_tls, 'bufs', None)
    if bufs is None:
        bufs = _tls.bufs = {}
    nbytes = count * dtype.itemsize
    buf = bufs.get(slot)
    if buf is None or buf.nbytes < nbytes:
        buf = bufs[slot] = numpy.empty(max(nbytes, 64), dtype=numpy.uint8)
    return buf[:nbytes].view(dtype)


# ----------------------------------------------------------------------------------
# Building blocks (numpy only)
# ----------------------------------------------------------------------------------

def _tap_range(lo, hi, offset, stride, pad, t_lo, t_hi):
    """Indices a in [lo, hi) with t_lo <= a*stride - pad + offset < t_hi, as a range."""
    a0 = max(lo, -((offset - pad - t_lo) // stride))
    a1 = min(hi, (t_hi - 1 + pad - offset) // stride + 1)
    return a0, max(a0, a1)


def _split(total, parts):
    """[0, total) cut into ``parts`` contiguous, nearly equal ranges."""
    parts = max(1, min(parts, total))
    return [(total * i // parts, total * (i + 1) // parts) for i in range(parts)]


def _plan(n, rows, row_len, col_bytes, threads, min_rows=1):
    """Blocks (n0, n1, r0, r1) of the columns (n samples x rows x row_len) of a column
    array whose column takes ``col_bytes``: each about BLOCK_BYTES and at least
    MIN_COLS columns, at least ``threads`` blocks when there is enough work. A block is
    either whole samples [n0, n1) or at least ``min_rows`` rows [r0, r1) of one sample."""
    total = n * rows * row_len
    nblocks = max(-(-total * col_bytes // BLOCK_BYTES), threads)
    nblocks = max(1, min(nblocks, total // MIN_COLS))
    if nblocks <= n:
        return [(n0, n1, 0, rows) for n0, n1 in _split(n, nblocks)]
    per_sample = min(-(-nblocks // n), max(1, rows // max(1, min_rows)))
    return [(i, i + 1, r0, r1) for i in range(n) for r0, r1 in _split(rows, per_sample)]


def _per_sample_contiguous(a):
    """``a`` itself when every a[i] is C-contiguous (so a[i].reshape is a view)."""
    _, c, h, w = a.shape
    isz = a.dtype.itemsize
    if a.strides[1:] == (h * w * isz, w * isz, isz) or c * h * w <= 1:
        return a
    return numpy.ascontiguousarray(a)


def _channel_major(a):
    """(C, N*H*W) matrix of an (N, C, H, W) array: a view for one sample, one copy otherwise."""
    n, c, h, w = a.shape
    if n == 1:
        return a[0].reshape(c, h * w)
    return numpy.ascontiguousarray(a.reshape(n, c, h * w).transpose(1, 0, 2)).reshape(c, n * h * w)


def _block_matrix(a, n0, n1, r0, r1):
    """(C, columns) matrix of samples [n0, n1), rows [r0, r1) of an (N, C, H, W) array with
    C-contiguous samples: a view for one sample, else gathered into the 'in' scratch buffer
    (a block of several samples always covers whole maps, see _plan)."""
    _, c, h, w = a.shape
    nb, p = n1 - n0, h * w
    if nb == 1:
        return a[n0].reshape(c, p)[:, r0 * w:r1 * w]
    buf = _scratch('in', c * nb * p, a.dtype).reshape(c, nb, p)
    buf[...] = a[n0:n1].reshape(nb, c, p).transpose(1, 0, 2)
    return buf.reshape(c, nb * p)


def _im2col_block(x, kh, kw, sy, sx, ph, pw, n0, n1, r0, r1, out_w, col):
    """Fill ``col`` (C, kh, kw, n1-n0, r1-r0, out_w), any strides, with the im2col
    columns of samples [n0, n1) and output rows [r0, r1): entry (c, i, j, n, a, b) is
    x[n0 + n, c, (r0 + a)*sy - ph + i, b*sx - pw + j], or 0 outside the image.
    One strided slice copy per kernel tap; only the border strips are zeroed."""
    _, c, h, w = x.shape
    rows = r1 - r0
    src = x[n0:n1].transpose(1, 0, 2, 3)           # (C, nb, H, W), a view
    for i in range(kh):
        lo, hi = _tap_range(r0, r1, i, sy, ph, 0, h)
        a0, a1 = lo - r0, hi - r0
        y0 = lo * sy - ph + i
        for j in range(kw):
            b0, b1 = _tap_range(0, out_w, j, sx, pw, 0, w)
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


def _col2im_block_add(img, gcol, sy, sx, ph, pw, n0, n1, r0, r1, t0, t1):
    """The adjoint of :func:`_im2col_block`, restricted to image rows [t0, t1):
    img[n0:n1, :, t0:t1] += col2im(gcol), where gcol (C, kh, kw, n1-n0, r1-r0, in_w)
    holds the columns of rows [r0, r1)."""
    _, _, _, w = img.shape
    _, kh, kw, _, _, in_w = gcol.shape
    dst = img[n0:n1].transpose(1, 0, 2, 3)         # (C, nb, H, W), a view
    for i in range(kh):
        a0, a1 = _tap_range(r0, r1, i, sy, ph, t0, t1)
        if a1 <= a0:
            continue
        y0 = a0 * sy - ph + i
        rows = slice(y0, y0 + (a1 - a0 - 1) * sy + 1, sy)
        for j in range(kw):
            b0, b1 = _tap_range(0, in_w, j, sx, pw, 0, w)
            if b1 <= b0:
                continue
            x0 = b0 * sx - pw + j
            dst[:, :, rows, x0:x0 + (b1 - b0 - 1) * sx + 1:sx] += \
                gcol[:, i, j, :, a0 - r0:a1 - r0, b0:b1]


def im2col(x, kh, kw, sy, sx, ph, pw, out_h, out_w):
    """The whole column array of ``x`` (N, C, H, W): shape (C*kh*kw, N*out_h*out_w)."""
    n, c = x.shape[:2]
    col = numpy.empty((c, kh, kw, n, out_h, out_w), dtype=x.dtype)
    _im2col_block(x, kh, kw, sy, sx, ph, pw, 0, n, 0, out_h, out_w, col)
    return col.reshape(c * kh * kw, n * out_h * out_w)


def col2im(col, sy, sx, ph, pw, h, w):
    """Sum a (N, C, kh, kw, out_h, out_w) column array (Chainer's layout, any strides)
    back into a new (N, C, h, w) image: the adjoint of im2col."""
    n, c = col.shape[:2]
    img = numpy.zeros((n, c, h, w), dtype=col.dtype)
    _col2im_block_add(img, col.transpose(1, 2, 3, 0, 4, 5), sy, sx, ph, pw,
                      0, n, 0, col.shape[4], 0, h)
    return img


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
    threads = _threads()
    plan = _plan(n, out_h, out_w, k * dtype.itemsize, threads)

    if o * DEEP >= n * p:
        # The weights are as large as the columns (small maps, many channels): build all
        # columns once (blocks in parallel), then give each thread some output channels.
        col = numpy.empty((c, kh, kw, n, out_h, out_w), dtype=dtype)
        _run(plan, lambda blk: _im2col_block(
            x, kh, kw, sy, sx, ph, pw, blk[0], blk[1], blk[2], blk[3], out_w,
            col[:, :, :, blk[0]:blk[1], blk[2]:blk[3]]), threads)
        col = col.reshape(k, n * p)

        def part(rng):
            o0, o1 = rng
            if n == 1:
                out = numpy.matmul(W2[o0:o1], col, out=y3[0, o0:o1])
            else:
                out = numpy.matmul(W2[o0:o1], col, out=_scratch(
                    'out', (o1 - o0) * n * p, dtype).reshape(o1 - o0, n * p))
            if bias is not None:
                out += bias[o0:o1]
            if n > 1:
                y3[:, o0:o1] = out.reshape(o1 - o0, n, p).transpose(1, 0, 2)
        _run(_split(o, threads), part, threads)
        return y

    def work(block):
        # Streaming: im2col of one block into a per-thread buffer, then its product.
        n0, n1, r0, r1 = block
        nb, cols = n1 - n0, (n1 - n0) * (r1 - r0) * out_w
        col = _scratch('col', k * cols, dtype)
        _im2col_block(x, kh, kw, sy, sx, ph, pw, n0, n1, r0, r1, out_w,
                      col.reshape(c, kh, kw, nb, r1 - r0, out_w))
        col = col.reshape(k, cols)
        if nb == 1:                                # straight into y (row stride P)
            out = numpy.matmul(W2, col, out=y3[n0, :, r0 * out_w:r1 * out_w])
        else:
            out = numpy.matmul(W2, col, out=_scratch('out', o * cols, dtype).reshape(o, cols))
        if bias is not None:
            out += bias
        if nb > 1:
            y3[n0:n1] = out.reshape(o, nb, p).transpose(1, 0, 2)

    _run(plan, work, threads)
    return y


def _deconv_col2im(x, W, b, sy, sx, ph, pw, out_h, out_w):
    """Transposed convolution as blocks of W^T (Cout*kh*kw, Cin) times x, then col2im.

    Blocks of input rows of one sample add into overlapping output rows, so they run in
    two rounds: first the even-numbered row blocks of every sample, then the odd ones;
    blocks are tall enough that two blocks of the same round never touch the same row."""
    n, cin, h, w = x.shape
    _, cout, kh, kw = W.shape
    k, p, dtype = cout * kh * kw, h * w, x.dtype
    x = _per_sample_contiguous(x)
    Wt = numpy.ascontiguousarray(W).reshape(cin, k).T   # (K, Cin), a transposed view
    if b is None:
        y = numpy.zeros((n, cout, out_h, out_w), dtype=dtype)
    else:
        y = numpy.empty((n, cout, out_h, out_w), dtype=dtype)
        y[...] = b.reshape(1, cout, 1, 1)
    threads = _threads()
    if cout * kh * kw * DEEP >= n * p:
        # The weights are larger than the input (small maps, many channels): every
        # thread multiplies all of x by the weights of some output channels, and
        # col2im-adds into those channels only.
        x2 = _channel_major(x)
        per_channel = kh * kw * n * p * dtype.itemsize
        parts = max(threads, -(-cout * per_channel // BLOCK_BYTES))

        def part(rng):
            c0, c1 = rng
            rows = (c1 - c0) * kh * kw
            gcol = numpy.matmul(Wt[c0 * kh * kw:c1 * kh * kw], x2, out=_scratch(
                'col', rows * n * p, dtype).reshape(rows, n * p))
            _col2im_block_add(y[:, c0:c1], gcol.reshape(c1 - c0, kh, kw, n, h, w),
                              sy, sx, ph, pw, 0, n, 0, h, 0, out_h)
        _run(_split(cout, parts), part, threads)
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
        xc = _block_matrix(x, n0, n1, r0, r1)
        gcol = numpy.matmul(Wt, xc, out=_scratch('col', k * cols, dtype).reshape(k, cols))
        _col2im_block_add(y, gcol.reshape(cout, kh, kw, nb, rows, w),
                          sy, sx, ph, pw, n0, n1, r0, r1, 0, out_h)

    for blocks in rounds:
        _run(blocks, work, threads)
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
    threads = _threads()
    other = _per_sample_contiguous(other)
    plan = _plan(n, out_h, out_w, k * isz, threads)
    if 2 * m * DEEP >= n * p or len(plan) == 1:
        # Small maps, many channels (deep layers): the result is as large as the whole
        # column array. Build that once (blocks in parallel), then split the product
        # over the rows of the result.
        col = numpy.empty((c, kh, kw, n, out_h, out_w), dtype=dtype)
        _run(plan, lambda blk: _im2col_block(
            src, kh, kw, sy, sx, ph, pw, blk[0], blk[1], blk[2], blk[3], out_w,
            col[:, :, :, blk[0]:blk[1], blk[2]:blk[3]]), threads)
        o2 = _channel_major(other)
        colT = col.reshape(k, n * p).T               # transposed view; BLAS reads it as is
        acc = numpy.empty((m, k), dtype=dtype)
        _run(_split(m, threads),
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
            col = _scratch('col', k * cols, dtype)
            _im2col_block(src, kh, kw, sy, sx, ph, pw, n0, n1, r0, r1, out_w,
                          col.reshape(c, kh, kw, nb, r1 - r0, out_w))
            g = _block_matrix(other, n0, n1, r0, r1)
            a, b = (col.reshape(k, cols), g.T) if transposed else (g, col.reshape(k, cols).T)
            if idx == 0:
                numpy.matmul(a, b, out=acc)
            else:
                acc += numpy.matmul(a, b, out=_scratch('acc', m * k, dtype).reshape(shape))
        return acc

    groups = [plan[g0:g1] for g0, g1 in _split(len(plan), 2 * threads)]
    parts = _run(groups, work, threads)
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

def _companions():
    """The other fast CPU pieces switched together with the convolutions."""
    from . import fastadam, fastbn
    return (fastbn, fastadam)


def enable():
    """Route Chainer's CPU conv/deconv cores (and batch normalization and the Adam update,
    see :mod:`tutorial_lib.infra.fastbn`, :mod:`~tutorial_lib.infra.fastadam`) to the fast code
    (idempotent)."""
    with _lock:
        for cls, fn in _FAST.items():
            cls._forward_cpu_core = fn
        for module in _companions():
            module.enable()


def disable():
    """Put Chainer's own CPU cores (and the companions' methods) back (idempotent)."""
    with _lock:
        for cls, fn in _ORIGINAL.items():
            cls._forward_cpu_core = fn
        for module in _companions():
            module.disable()


def is_enabled():
    """True when all three Chainer cores and every companion are the fast ones."""
    return (all(cls.__dict__.get('_forward_cpu_core') is fn for cls, fn in _FAST.items())
            and all(module.is_enabled() for module in _companions()))


def _state():
    return ((all(cls.__dict__.get('_forward_cpu_core') is fn for cls, fn in _FAST.items()),)
            + tuple(module.is_enabled() for module in _companions()))


def _restore(state):
    with _lock:
        for cls in _FAST:
            cls._forward_cpu_core = (_FAST if state[0] else _ORIGINAL)[cls]
        for module, on in zip(_companions(), state[1:]):
            (module.enable if on else module.disable)()


@contextlib.contextmanager
def stock():
    """Run the enclosed block on stock Chainer, then restore the previous state."""
    with _lock:
        was = _state()
        disable()
    try:
        yield
    finally:
        _restore(was)


@contextlib.contextmanager
def fast():
    """Run the enclosed block with the fast path, then restore the previous state."""
    with _lock:
        was = _state()
        enable()
    try:
        yield
    finally:
        _restore(was)


def enable_from_env(environ=None):
    """Enable unless ``TUTORIAL_FASTCONV`` is set to 0/false/no/off. Returns the state."""
    value = (os.environ if environ is None else environ).get('TUTORIAL_FASTCONV', '1')
    if value.strip().lower() in ('0', 'false', 'no', 'off'):
        disable()
    else:
        enable()
    return is_enabled()
