"""ReLU and its gradient on oneDNN (when its library is installed): one vectorized pass on
all cores instead of numpy's ``maximum`` and ``gy * (y > 0)`` (a boolean temporary and
a second pass), in NCHW or channels-last layout alike. Equal to stock Chainer (the same
selection of values). Without oneDNN, or for other dtypes and layouts, Chainer's code runs.

:mod:`tutorial_lib.infra.fastpath` switches it with the rest of the fast CPU path.
"""
import threading

from . import compat  # noqa: F401  (before chainer)
import numpy

from chainer.functions.activation import relu as _relu

from . import onednn_ops

__all__ = ['enable', 'disable', 'is_enabled']

_ReLU = _relu.ReLU
_Grad = _relu.ReLUGrad2
_ORIGINAL = {_ReLU: _ReLU.__dict__['forward_cpu'], _Grad: _Grad.__dict__['forward_cpu']}
USE_ONEDNN = True
_lock = threading.RLock()


def _ok(a):
    # One flat pass over memory: a dense float32 array (NCHW or channels-last).
    if (type(a) is not numpy.ndarray or a.dtype != numpy.float32 or a.size == 0
            or onednn_ops.flat(a) is None):
        return False
    return USE_ONEDNN and onednn_ops.ready()


def _relu_forward(self, inputs):
    x, = inputs
    if not _ok(x):
        return _ORIGINAL[_ReLU](self, inputs)
    self.retain_outputs((0,))
    return onednn_ops.relu_forward(x),


def _grad_forward(self, inputs):
    gy, = inputs
    if (type(gy) is numpy.ndarray and gy.shape == self.b.shape
            and onednn_ops.supported(gy) and _ok(self.b)):
        # gy laid out as y first (a slice of a concatenation's gradient is not dense)
        return onednn_ops.relu_backward(self.b, onednn_ops.like(gy, self.b)),
    return _ORIGINAL[_Grad](self, inputs)


_FAST = {_ReLU: _relu_forward, _Grad: _grad_forward}


def enable():
    """Route Chainer's CPU ReLU and ReLU gradient to oneDNN where it is loaded (idempotent)."""
    with _lock:
        for cls, fn in _FAST.items():
            cls.forward_cpu = fn


def disable():
    """Put Chainer's own methods back (idempotent)."""
    with _lock:
        for cls, fn in _ORIGINAL.items():
            cls.forward_cpu = fn


def is_enabled():
    """True when both methods are the fast ones."""
    return all(cls.__dict__.get('forward_cpu') is fn for cls, fn in _FAST.items())
