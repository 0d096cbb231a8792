"""A fused, allocation-light CPU path for Chainer's batch normalization (test-mode forward,
train-mode forward and backward); equal to stock Chainer up to float rounding. Channels-last
float32 arrays (what the oneDNN convolutions return for small layers) go to oneDNN
(:mod:`~tutorial_lib.infra.onednn_ops`), NCHW arrays to the numpy code here.

How and why: docs/fast-cpu-path.md; :mod:`tutorial_lib.infra.fastpath` switches it.
"""
import threading

from . import compat  # noqa: F401  (before chainer)
import numpy

from chainer.backends import intel64
from chainer.functions.normalization import batch_normalization as _bn

from . import onednn, onednn_ops
from .threads import run, scratch, split, thread_count

__all__ = ['enable', 'disable', 'is_enabled', 'bn_inference', 'bn_train_forward',
           'bn_train_backward']

_Fixed = _bn.FixedBatchNormalization
_General = _bn.GeneralBatchNormalizationImpl

# The stock methods, saved once at import so that disable() can always put them back.
_ORIGINAL = {
    (_Fixed, 'forward'): _Fixed.__dict__['forward'],
    (_General, 'forward'): _General.__dict__['forward'],
    (_General, 'backward'): _General.__dict__['backward'],
}

# Tuning knobs (module attributes, read at every call).
BLOCK_BYTES = 256 << 10   # bytes of x per block (x, y/gy/gx and a scratch block fit in L2)
PARALLEL_BYTES = 1 << 20  # below this many bytes of x, one block in the calling thread

USE_ONEDNN = True  # channels-last float32 arrays go to oneDNN when it is installed
_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
_lock = threading.RLock()


# ----------------------------------------------------------------------------------
# Blocks and threads
# ----------------------------------------------------------------------------------

def _as3d(a):
    """(N, C, ...) C-contiguous -> the (N, C, M) view."""
    n, c = a.shape[:2]
    return a.reshape(n, c, a.size // (n * c) if n * c else 0)


def _blocks(n, c, m, itemsize):
    """Cut the (n, c, m) array into blocks (n0, n1, c0, c1, m0, m1) of about BLOCK_BYTES:
    runs of whole samples, runs of channels of one sample, or pieces of one plane."""
    if n * c * m * itemsize <= PARALLEL_BYTES:
        return [(0, n, 0, c, 0, m)]
    plane = m * itemsize
    if plane >= BLOCK_BYTES:
        pieces = -(-plane // BLOCK_BYTES)
        return [(i, i + 1, ch, ch + 1, m0, m1) for i in range(n) for ch in range(c)
                for m0, m1 in split(m, pieces)]
    if c * plane >= BLOCK_BYTES:
        per = max(1, BLOCK_BYTES // plane)
        return [(i, i + 1, c0, min(c, c0 + per), 0, m)
                for i in range(n) for c0 in range(0, c, per)]
    per = max(1, BLOCK_BYTES // (c * plane))
    return [(n0, min(n, n0 + per), 0, c, 0, m) for n0 in range(0, n, per)]


def _map(blocks, work, nbytes):
    """Run work(block) for every block (on fastconv's threads for large arrays)."""
    threads = thread_count() if nbytes > PARALLEL_BYTES else 1
    return run(blocks, work, threads)


def _sum_partials(blocks, parts, c, dtype):
    """Per-channel totals of per-block partial sums, added in block order."""
    out = numpy.zeros(c, dtype)
    for (_, _, c0, c1, _, _), p in zip(blocks, parts):
        out[c0:c1] += p
    return out


# ----------------------------------------------------------------------------------
# Building blocks (numpy only; x C-contiguous (N, C, ...), per-channel 1-D vectors)
# ----------------------------------------------------------------------------------

def _scale_shift(x3, y3, scale, shift, blocks):
    def work(b):
        n0, n1, c0, c1, m0, m1 = b
        yb = y3[n0:n1, c0:c1, m0:m1]
        numpy.multiply(x3[n0:n1, c0:c1, m0:m1], scale[c0:c1, None], out=yb)
        yb += shift[c0:c1, None]
    _map(blocks, work, x3.nbytes)


def bn_inference(x, gamma, beta, mean, inv_std):
    """y = gamma * (x - mean) * inv_std + beta, per channel (axis 1), as x * scale + shift."""
    scale = gamma * inv_std
    shift = beta - mean * scale
    y = numpy.empty_like(x, order='C')
    x3, y3 = _as3d(x), _as3d(y)
    _scale_shift(x3, y3, scale, shift, _blocks(*x3.shape, x.itemsize))
    return y


def bn_train_forward(x, gamma, beta, eps):
    """Training-mode batch normalization over all axes but 1.
    Returns y, mean, var (biased), inv_std = 1 / sqrt(var + eps)."""
    x3 = _as3d(x)
    n, c, m = x3.shape
    dtype = x.dtype
    blocks = _blocks(n, c, m, x.itemsize)
    count = n * m

    def sums(b):
        n0, n1, c0, c1, m0, m1 = b
        return x3[n0:n1, c0:c1, m0:m1].sum(axis=(0, 2))
    mean = _sum_partials(blocks, _map(blocks, sums, x.nbytes), c, dtype)
    mean /= count

    def squares(b):
        n0, n1, c0, c1, m0, m1 = b
        xb = x3[n0:n1, c0:c1, m0:m1]
        d = scratch('bn', xb.size, dtype).reshape(xb.shape)
        numpy.subtract(xb, mean[c0:c1, None], out=d)
        return numpy.einsum('nij,nij->i', d, d)
    var = _sum_partials(blocks, _map(blocks, squares, x.nbytes), c, dtype)
    var /= count

    inv_std = numpy.reciprocal(numpy.sqrt(var + eps, dtype=dtype))
    scale = gamma * inv_std
    shift = beta - mean * scale
    y = numpy.empty_like(x, order='C')
    _scale_shift(x3, _as3d(y), scale, shift, blocks)
    return y, mean, var, inv_std


def bn_train_backward(x, gamma, gy, mean, inv_std):
    """Gradients of training-mode batch normalization: gx, ggamma, gbeta."""
    x3, gy3 = _as3d(x), _as3d(gy)
    n, c, m = x3.shape
    dtype = x.dtype
    blocks = _blocks(n, c, m, x.itemsize)

    def sums(b):
        n0, n1, c0, c1, m0, m1 = b
        xb, gb = x3[n0:n1, c0:c1, m0:m1], gy3[n0:n1, c0:c1, m0:m1]
        d = scratch('bn', xb.size, dtype).reshape(xb.shape)
        numpy.subtract(xb, mean[c0:c1, None], out=d)
        return gb.sum(axis=(0, 2)), numpy.einsum('nij,nij->i', gb, d)
    parts = _map(blocks, sums, x.nbytes)
    gbeta = _sum_partials(blocks, [p[0] for p in parts], c, dtype)
    ggamma = _sum_partials(blocks, [p[1] for p in parts], c, dtype)
    ggamma *= inv_std

    inv_m = dtype.type(1. / (n * m))
    a = gamma * inv_std
    k1 = a * inv_m * ggamma * inv_std
    k0 = a * inv_m * gbeta
    gx = numpy.empty_like(x, order='C')
    gx3 = _as3d(gx)

    def grad(b):
        n0, n1, c0, c1, m0, m1 = b
        sl = (slice(n0, n1), slice(c0, c1), slice(m0, m1))
        xb, gb, ob = x3[sl], gy3[sl], gx3[sl]
        d = scratch('bn', xb.size, dtype).reshape(xb.shape)
        numpy.subtract(xb, mean[c0:c1, None], out=d)
        d *= k1[c0:c1, None]
        d += k0[c0:c1, None]
        numpy.multiply(gb, a[c0:c1, None], out=ob)
        ob -= d
    _map(blocks, grad, x.nbytes)
    return gx, ggamma, gbeta


# ----------------------------------------------------------------------------------
# When the fast code applies
# ----------------------------------------------------------------------------------

def _array_ok(a, dtype):
    return type(a) is numpy.ndarray and a.dtype == dtype


def _fast_ok(x, vectors, axis, big=(), any_layout=False):
    """x and the arrays in ``big`` C-contiguous (N, C, ...) numpy arrays of one float
    dtype (with ``any_layout``: laid out in any way oneDNN reads), every vector 1-D of that
    dtype and length C, statistics over all axes but 1."""
    if type(x) is not numpy.ndarray or x.dtype not in _DTYPES or x.ndim < 2 or x.size == 0:
        return False
    if not (x.flags.c_contiguous or any_layout):
        return False
    if tuple(axis) != (0,) + tuple(range(2, x.ndim)):
        return False
    for a in big:
        if (not _array_ok(a, x.dtype) or a.shape != x.shape
                or not (a.flags.c_contiguous or any_layout)):
            return False
    c = x.shape[1]
    for v in vectors:
        if not _array_ok(v, x.dtype) or v.shape != (c,):
            return False
    return not intel64.inputs_all_ready((x,)) or not intel64.should_use_ideep('>=auto')


# ----------------------------------------------------------------------------------
# The three replacements
# ----------------------------------------------------------------------------------

def _use_onednn(x, big=()):
    """oneDNN takes float32 4-D x laid out channels-last (what the fast convolutions return
    for small layers), which the numpy code below does not handle; gy may be laid out in any
    way. NCHW arrays stay with the numpy code: as fast, and its two-pass statistics are
    more accurate than oneDNN's float32 one-pass sums (docs/fast-cpu-path.md)."""
    return (USE_ONEDNN and type(x) is numpy.ndarray and x.dtype == numpy.float32
            and onednn_ops.is_channels_last(x)
            and all(onednn_ops.supported(a) for a in big) and onednn_ops.ready())


def _fixed_forward(self, inputs):
    x, gamma, beta, mean, var = inputs
    axis = _bn._compute_axis(x.ndim, gamma.ndim, self.axis)
    dnnl = _use_onednn(x)
    if not _fast_ok(x, (gamma, beta, mean, var), axis, any_layout=dnnl):
        return _ORIGINAL[(_Fixed, 'forward')](self, inputs)
    # Exactly the state Chainer's forward leaves for backward / FixedBatchNormalizationGrad.
    self.retain_inputs((0, 1, 3, 4))
    self.axis = axis
    self.key_axis = _bn._compute_key_axis(x.ndim, gamma.ndim, axis)
    self.expander = tuple(slice(None) if i in self.key_axis else None
                          for i in range(x.ndim))
    self.inv_var = numpy.reciprocal(var + self.eps)
    self.inv_std = numpy.sqrt(self.inv_var, dtype=self.inv_var.dtype)
    if dnnl:
        try:
            return onednn_ops.bn_inference(x, gamma, beta, mean, var, self.eps),
        except onednn.OneDNNError:  # no kernel for this layout: Chainer's code takes any
            return _ORIGINAL[(_Fixed, 'forward')](self, inputs)
    return bn_inference(x, gamma, beta, mean, self.inv_std),


def _general_forward(self, axis, gamma, x, x_layout, xp, expander,
                     beta, eps, decay, running_mean, running_var):
    dnnl = xp is numpy and _use_onednn(x)
    ok = (xp is numpy and x_layout is None
          and _fast_ok(x, (gamma, beta), axis, any_layout=dnnl)
          and (running_mean is None
               or (_array_ok(running_mean, x.dtype) and _array_ok(running_var, x.dtype)
                   and running_mean.shape == gamma.shape
                   and running_var.shape == gamma.shape)))
    if ok and dnnl:
        try:
            y, mean, var = onednn_ops.bn_train_forward(x, gamma, beta, eps)
        except onednn.OneDNNError:  # no kernel for this layout: Chainer's code takes any
            ok = False
    if not ok:
        return _ORIGINAL[(_General, 'forward')](
            self, axis, gamma, x, x_layout, xp, expander,
            beta, eps, decay, running_mean, running_var)
    if dnnl:
        inv_std = numpy.reciprocal(numpy.sqrt(var + eps, dtype=var.dtype))
    else:
        y, mean, var, inv_std = bn_train_forward(x, gamma, beta, eps)
    if running_mean is not None:  # as Chainer updates them (unbiased variance)
        m = x.size // gamma.size
        adjust = m / max(m - 1., 1.)
        running_mean *= decay
        running_mean += (1 - decay) * mean
        running_var *= decay
        running_var += (1 - decay) * adjust * var
    return y, x_layout, running_mean, running_var, mean, var, inv_std, None


def _general_backward(self, axis, gamma, gy, x, x_layout, xp,
                      expander, mean, inv_std, eps, var, forward_data):
    dnnl = xp is numpy and _use_onednn(x, (gy,))
    ok = (xp is numpy and x_layout is None
          and _fast_ok(x, (gamma, mean, inv_std), axis, big=(gy,), any_layout=dnnl))
    if ok and dnnl:
        # Chainer keeps only inv_std = 1 / sqrt(var + eps) for backward
        var_ = (1.0 / numpy.square(inv_std, dtype=numpy.float64) - eps).astype(x.dtype)
        try:
            gx, ggamma, gbeta = onednn_ops.bn_train_backward(x, gamma, gy, mean, var_, eps)
        except onednn.OneDNNError:  # no kernel for this layout: Chainer's code takes any
            ok = False
    if not ok:
        return _ORIGINAL[(_General, 'backward')](
            self, axis, gamma, gy, x, x_layout, xp,
            expander, mean, inv_std, eps, var, forward_data)
    if not dnnl:
        gx, ggamma, gbeta = bn_train_backward(x, gamma, gy, mean, inv_std)
    return gx, None, ggamma, gbeta


_FAST = {
    (_Fixed, 'forward'): _fixed_forward,
    (_General, 'forward'): _general_forward,
    (_General, 'backward'): _general_backward,
}


# ----------------------------------------------------------------------------------
# Switching this module alone (fastpath switches the whole fast CPU path)
# ----------------------------------------------------------------------------------

def enable():
    """Route Chainer's CPU batch normalization to the fast code (idempotent)."""
    with _lock:
        for (cls, name), fn in _FAST.items():
            setattr(cls, name, fn)


def disable():
    """Put Chainer's own methods back (idempotent)."""
    with _lock:
        for (cls, name), fn in _ORIGINAL.items():
            setattr(cls, name, fn)


def is_enabled():
    """True when all three methods are the fast ones."""
    return all(cls.__dict__.get(name) is fn for (cls, name), fn in _FAST.items())
