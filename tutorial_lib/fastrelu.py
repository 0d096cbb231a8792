"""ReLU and its gradient on the fast path's threads (bit-identical to stock Chainer).

Why
---
Every convolution of the U-Net and the Ad-boss is followed by BatchNormalization and
``F.relu``. Chainer 7.8.1 computes ``relu`` as ``numpy.maximum(x, 0)`` and its gradient
(``ReLUGrad2``) as ``gy * (y > 0)`` (a boolean temporary, then the product), each in one
thread. Once the convolutions, the batch normalization and the Adam update run on both
cores, these two single-threaded passes were about 4-5% of a train step.

What this module replaces
-------------------------
``chainer.functions.activation.relu.ReLU.forward_cpu`` and ``ReLUGrad2.forward_cpu``,
for C-contiguous float32/float64 ``numpy.ndarray`` s of at least ``PARALLEL_BYTES``
(smaller ones, other dtypes, other layouts and iDeep take Chainer's code). The same
numpy operations run on blocks of ``BLOCK_BYTES`` on ``fastconv``'s worker threads:
``numpy.maximum(x, 0)`` and ``numpy.multiply(gy, y > 0)`` are elementwise, so the results
are bit for bit Chainer's (NaN, -0.0 included); the forward retains its output exactly as
Chainer's does, so backward and double backward are Chainer's own graph.

Use
---
Switched with the rest of the fast CPU path by ``fastconv.enable/disable/stock/fast``;
``fastrelu.enable()/disable()/is_enabled()`` switch it alone.
"""
import threading

from . import compat  # noqa: F401  (before chainer)
import numpy

from chainer import utils
from chainer.backends import intel64
from chainer.functions.activation import relu as _relu

from . import fastconv as _fc

__all__ = ['enable', 'disable', 'is_enabled', 'relu_forward', 'relu_grad']

_ReLU = _relu.ReLU
_Grad = _relu.ReLUGrad2
_ORIGINAL = {_ReLU: _ReLU.__dict__['forward_cpu'], _Grad: _Grad.__dict__['forward_cpu']}

BLOCK_BYTES = 256 << 10    # bytes of input per block
PARALLEL_BYTES = 1 << 20   # smaller arrays: Chainer's own code (one numpy call)

_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
_lock = threading.RLock()


def _ok(*arrays):
    a = arrays[0]
    if type(a) is not numpy.ndarray or a.dtype not in _DTYPES or a.nbytes < PARALLEL_BYTES:
        return False
    for b in arrays:
        if (type(b) is not numpy.ndarray or b.dtype != a.dtype or b.shape != a.shape
                or not b.flags.c_contiguous):
            return False
    return not (intel64.should_use_ideep('>=auto') and intel64.inputs_all_ready(arrays))


def _blocks(size, itemsize):
    per = max(1, BLOCK_BYTES // itemsize)
    return [(s0, min(size, s0 + per)) for s0 in range(0, size, per)]


def relu_forward(x):
    """numpy.maximum(x, 0) of a C-contiguous array, in blocks on the worker threads."""
    y = numpy.empty_like(x)
    xf, yf = x.reshape(-1), y.reshape(-1)

    def work(b):
        numpy.maximum(xf[b[0]:b[1]], 0, out=yf[b[0]:b[1]])
    _fc._run(_blocks(x.size, x.itemsize), work, _fc._threads())
    return y


def relu_grad(gy, y):
    """gy * (y > 0) of C-contiguous arrays, in blocks on the worker threads."""
    gx = numpy.empty_like(gy)
    gf, yf, of = gy.reshape(-1), y.reshape(-1), gx.reshape(-1)

    def work(b):
        s = slice(b[0], b[1])
        numpy.multiply(gf[s], yf[s] > 0, out=of[s])
    _fc._run(_blocks(gy.size, gy.itemsize), work, _fc._threads())
    return gx


def _relu_forward_cpu(self, inputs):
    x, = inputs
    if not _ok(x):
        return _ORIGINAL[_ReLU](self, inputs)
    y = relu_forward(x)
    self.retain_outputs((0,))
    return utils.force_array(y),


def _grad_forward_cpu(self, inputs):
    gy, = inputs
    if not _ok(gy, self.b):
        return _ORIGINAL[_Grad](self, inputs)
    return relu_grad(gy, self.b),


_FAST = {_ReLU: _relu_forward_cpu, _Grad: _grad_forward_cpu}


def enable():
    with _lock:
        for cls, fn in _FAST.items():
            cls.forward_cpu = fn


def disable():
    with _lock:
        for cls, fn in _ORIGINAL.items():
            cls.forward_cpu = fn


def is_enabled():
    return all(cls.__dict__.get('forward_cpu') is fn for cls, fn in _FAST.items())
