"""Pick the array backend once: CuPy on a CUDA GPU when possible, numpy otherwise.

Everything that moves arrays between CPU and GPU goes through this module, so a
learner can ask one question -- ``backend.describe()`` -- and get one clear line.

Set ``TUTORIAL_DEVICE=cpu`` to force the CPU even when a GPU is present (useful to
compare speeds), or ``TUTORIAL_DEVICE=gpu`` to make a missing GPU an error.
"""
import os
from dataclasses import dataclass

from . import compat  # noqa: F401
import numpy as np


@dataclass(frozen=True)
class Backend:
    name: str        # 'cpu' or 'gpu'
    xp: object       # numpy or cupy
    device_id: int   # CUDA device id, -1 on CPU
    reason: str      # why this backend was chosen, in words

    @property
    def is_gpu(self):
        return self.name == 'gpu'

    @property
    def chainer_device(self):
        """The device specifier Chainer understands ('@numpy' or '@cupy:0')."""
        return '@cupy:%d' % self.device_id if self.is_gpu else '@numpy'


def _probe_gpu():
    """Return (cupy, device_name) or (None, reason why not)."""
    try:
        import cupy
    except ImportError:
        return None, 'CuPy is not installed (pip install .[gpu] adds it)'
    except Exception as exc:  # a broken CUDA install raises all sorts of things
        return None, 'CuPy failed to import: %s' % exc
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return None, 'CuPy is installed but no CUDA driver answered (%s)' % exc.__class__.__name__
    if n < 1:
        return None, 'CuPy is installed but no CUDA device was found'
    try:
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props['name'].decode() if isinstance(props['name'], bytes) else props['name']
    except Exception:
        name = 'CUDA device 0'
    return cupy, name


_CURRENT = None


def select(prefer=None):
    """Choose the backend ('auto', 'cpu' or 'gpu'); the result is cached."""
    global _CURRENT
    prefer = (prefer or os.environ.get('TUTORIAL_DEVICE', 'auto')).lower()
    if prefer not in ('auto', 'cpu', 'gpu'):
        raise ValueError("TUTORIAL_DEVICE must be 'auto', 'cpu' or 'gpu', got %r" % prefer)
    if prefer == 'cpu':
        _CURRENT = Backend('cpu', np, -1, 'CPU requested (TUTORIAL_DEVICE=cpu)')
        return _CURRENT
    cupy, info = _probe_gpu()
    if cupy is None:
        if prefer == 'gpu':
            raise RuntimeError('A GPU was requested but cannot be used: ' + info)
        _CURRENT = Backend('cpu', np, -1, info)
        return _CURRENT
    # CuPy 14 has no cuDNN bindings; Chainer then uses im2col + cuBLAS, which works.
    os.environ.setdefault('CHAINER_CUDNN', '0')
    _CURRENT = Backend('gpu', cupy, 0, 'GPU found: %s' % info)
    return _CURRENT


def current():
    return _CURRENT if _CURRENT is not None else select()


def describe():
    """One line for a learner: which device computes, and why."""
    b = current()
    return '%s (%s)' % ('GPU via CuPy' if b.is_gpu else 'CPU via numpy', b.reason)


def to_device(x, backend=None):
    """Move a numpy array to the chosen device (no copy on CPU)."""
    b = backend or current()
    return b.xp.asarray(x) if b.is_gpu else np.asarray(x)


def to_cpu(x):
    """Bring any array (numpy, CuPy or chainer.Variable) back as a numpy array."""
    if hasattr(x, 'array'):  # chainer.Variable
        x = x.array
    if hasattr(x, 'get') and not isinstance(x, np.ndarray):
        return x.get()
    return np.asarray(x)


def xp_of(x):
    """numpy or cupy, whichever module owns the array x."""
    if hasattr(x, 'array'):
        x = x.array
    return np if isinstance(x, np.ndarray) else __import__('cupy').get_array_module(x)
