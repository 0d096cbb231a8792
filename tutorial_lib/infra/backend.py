"""Pick the array backend once -- CuPy on a CUDA GPU when possible, numpy otherwise -- and say
which in one line, ``backend.describe()`` (every notebook prints it; ``TUTORIAL_DEVICE`` chooses)."""
import importlib.util
import os
import sys
from dataclasses import dataclass

from . import compat  # noqa: F401
import numpy as np

VALID = ('auto', 'cpu', 'gpu')
CUDNN_OFF = 'cuDNN off: CuPy 14 ships no cuDNN bindings, Chainer uses im2col + cuBLAS'

# Environment variables this module set (name -> value), for describe() and the tests.
ENV_SET = {}


# TUTORIAL_DEVICE: 'auto' (the default: the GPU when CuPy, a CUDA device and Chainer's CUDA
# support all work, else the CPU), 'cpu' (force the CPU even when a GPU is present, e.g. to
# compare speeds) or 'gpu' (a missing GPU is an error that says why).
#
# Chainer 7.8.1 on today's CuPy: CuPy 14 ships no cuDNN bindings, so Chainer runs its
# convolutions as im2col + cuBLAS, which works; but Chainer then warns "cuDNN is not
# enabled. Please reinstall CuPy..." while it is imported, and its version check warns about
# a CuPy newer than it knows. A learner cannot act on either, so apply_env_defaults() sets
# CHAINER_CUDNN=0 (only when CuPy has no cuDNN bindings) and CHAINER_WARN_VERSION_MISMATCH=0,
# each only when the user has not set it, and describe() states the cuDNN situation instead.
# It must run before `import chainer`, so this module never imports Chainer at import time
# and tutorial_lib/__init__.py imports it first. If Chainer was imported first anyway,
# cuDNN is still marked as off on purpose in chainer.backends.cuda, so device moves stay quiet.

# ---------------------------------------------------------------------------------------
# Chainer's environment variables, before Chainer is imported
# ---------------------------------------------------------------------------------------

def cupy_lacks_cudnn():
    """True when CuPy can be found but has no cuDNN bindings (CuPy >= 14); False when it
    has them, is not installed or cannot be imported (then Chainer ignores CuPy anyway)."""
    try:
        if importlib.util.find_spec('cupy') is None:
            return False
        # imports cupy and cupy.cuda (Chainer would a moment later), not the bindings
        return importlib.util.find_spec('cupy.cuda.cudnn') is None
    except Exception:
        return False


def env_defaults():
    """{name: value} of the Chainer variables this machine should default."""
    wanted = {'CHAINER_WARN_VERSION_MISMATCH': '0'}
    if cupy_lacks_cudnn():
        wanted['CHAINER_CUDNN'] = '0'
    return wanted


def apply_env_defaults(environ=None):
    """Set :func:`env_defaults` in ``environ`` (default ``os.environ``) where the user
    has not set them; returns {name: value} of what was set now.

    Effective for Chainer's import-time warnings only when called before
    ``import chainer`` (importing this module does it). If Chainer is imported already,
    cuDNN is also marked as off on purpose in ``chainer.backends.cuda`` (see
    :func:`_quiet_chainer_cuda`)."""
    env = os.environ if environ is None else environ
    done = {}
    for name, value in env_defaults().items():
        if name not in env:
            env[name] = value
            done[name] = value
    if environ is None:
        ENV_SET.update(done)
        _quiet_chainer_cuda()
    return done


def _quiet_chainer_cuda():
    """When Chainer was imported before the defaults were set: CuPy has no cuDNN, the
    user did not ask for it, so tell Chainer cuDNN is off on purpose (its
    ``check_cuda_available`` then stops warning). Does nothing in every other case."""
    cuda = sys.modules.get('chainer.backends.cuda')
    if cuda is None or not getattr(cuda, 'available', False):
        return False
    if getattr(cuda, 'cudnn_enabled', True) or os.environ.get('CHAINER_CUDNN') != '0':
        return False
    cuda._cudnn_disabled_by_user = True
    return True


apply_env_defaults()


# ---------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Backend:
    name: str        # 'cpu' or 'gpu'
    xp: object       # numpy or cupy
    device_id: int   # CUDA device id, -1 on CPU
    reason: str      # why this backend was chosen, in words
    details: str = ''  # GPU: versions and the cuDNN situation

    @property
    def is_gpu(self):
        return self.name == 'gpu'

    @property
    def chainer_device(self):
        """The device specifier Chainer understands ('@numpy' or '@cupy:0')."""
        return '@cupy:%d' % self.device_id if self.is_gpu else '@numpy'


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return '%s: %s' % (exc.__class__.__name__, text[0] if text else '')


def _device_name(cupy, device_id=0):
    try:
        props = cupy.cuda.runtime.getDeviceProperties(device_id)
        name = props['name']
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return 'CUDA device %d' % device_id


def _probe_gpu():
    """Return (cupy, device name) when the GPU can be used, else (None, reason why not).

    Usable means: CuPy imports, the CUDA driver answers with at least one device,
    Chainer's CUDA support accepted this CuPy, and a tiny kernel compiles and runs."""
    try:
        import cupy
    except ImportError:
        return None, 'CuPy is not installed (pip install .[gpu] adds it)'
    except Exception as exc:  # a broken CUDA install raises all sorts of things
        return None, 'CuPy failed to import (%s)' % _one_line(exc)
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return None, ('CuPy is installed but no CUDA driver answered (%s)'
                      % exc.__class__.__name__)
    if n < 1:
        return None, 'CuPy is installed but no CUDA device was found'
    name = _device_name(cupy)
    try:
        from chainer.backends import cuda as chainer_cuda
    except Exception as exc:
        return None, 'Chainer failed to import (%s)' % _one_line(exc)
    if not chainer_cuda.available:
        err = getattr(chainer_cuda, '_resolution_error', None)
        return None, ('CuPy %s sees %s, but Chainer 7.8.1 cannot use this CuPy (%s)'
                      % (getattr(cupy, '__version__', '?'), name,
                         _one_line(err) if err else 'unknown reason'))
    try:  # compiles (NVRTC) and runs one kernel: catches missing CUDA libraries early
        value = float((cupy.arange(4, dtype=cupy.float32) * 2).sum())
        if value != 12.0:
            raise RuntimeError('2 * (0 + 1 + 2 + 3) gave %r' % value)
    except Exception as exc:
        return None, 'CuPy sees %s but cannot run a kernel on it (%s)' % (name, _one_line(exc))
    return cupy, name


def gpu_info(cupy=None, device_id=0):
    """Facts about the GPU for reports: name, memory, versions, cuDNN. {} without CuPy."""
    if cupy is None:
        cupy = sys.modules.get('cupy')
        if cupy is None:
            return {}
    info = {'name': _device_name(cupy, device_id), 'device_id': device_id,
            'cupy': getattr(cupy, '__version__', '?')}
    rt = cupy.cuda.runtime
    for key, fn in (('cuda_runtime', rt.runtimeGetVersion), ('cuda_driver', rt.driverGetVersion)):
        try:
            v = int(fn())
            info[key] = '%d.%d' % (v // 1000, (v % 1000) // 10)
        except Exception:
            info[key] = '?'
    try:
        props = rt.getDeviceProperties(device_id)
        info['memory_gib'] = round(props['totalGlobalMem'] / 2 ** 30, 1)
        info['compute_capability'] = '%d.%d' % (props['major'], props['minor'])
        info['multiprocessors'] = int(props['multiProcessorCount'])
    except Exception:
        pass
    cuda = sys.modules.get('chainer.backends.cuda')
    info['cudnn'] = ('on' if cuda is not None and getattr(cuda, 'cudnn_enabled', False)
                     else 'off')
    return info


def _gpu_details(cupy):
    info = gpu_info(cupy)
    parts = ['CuPy %s, CUDA %s' % (info.get('cupy', '?'), info.get('cuda_runtime', '?'))]
    if info.get('cudnn') == 'on':
        parts.append('cuDNN on')
    elif cupy_lacks_cudnn():
        parts.append(CUDNN_OFF)
    else:
        parts.append('cuDNN off (CHAINER_CUDNN=%s)' % os.environ.get('CHAINER_CUDNN', '?'))
    return '; '.join(parts)


_CURRENT = None


class DeviceError(RuntimeError):
    """The requested device (a GPU) cannot be used; the message says why."""


def resolve(prefer=None):
    """The backend for ``prefer`` ('auto', 'cpu' or 'gpu', default ``TUTORIAL_DEVICE``
    or 'auto'), without making it the current one (see :func:`select`)."""
    prefer = (prefer or os.environ.get('TUTORIAL_DEVICE') or 'auto').strip().lower()
    if prefer not in VALID:
        raise ValueError("TUTORIAL_DEVICE must be 'auto', 'cpu' or 'gpu', got %r" % prefer)
    if prefer == 'cpu':
        return Backend('cpu', np, -1, 'CPU requested (TUTORIAL_DEVICE=cpu)')
    cupy, info = _probe_gpu()
    if cupy is None:
        if prefer == 'gpu':
            raise DeviceError('A GPU was requested but cannot be used: %s (asked for by '
                              "device 'gpu' or TUTORIAL_DEVICE=gpu; 'cpu' or 'auto' run "
                              'without one)' % info)
        return Backend('cpu', np, -1, info)
    _quiet_chainer_cuda()
    return Backend('gpu', cupy, 0, 'GPU found: %s' % info, _gpu_details(cupy))


def select(prefer=None):
    """Choose the backend ('auto', 'cpu' or 'gpu', default ``TUTORIAL_DEVICE`` or 'auto');
    the choice is kept for :func:`current` (and :func:`describe`)."""
    global _CURRENT
    _CURRENT = resolve(prefer)
    return _CURRENT


def current():
    return _CURRENT if _CURRENT is not None else select()


def describe():
    """One line for a learner: which device computes, and why."""
    b = current()
    why = b.reason + ('; ' + b.details if b.details else '')
    return '%s (%s)' % ('GPU via CuPy' if b.is_gpu else 'CPU via numpy', why)


# ---------------------------------------------------------------------------------------
# Moving arrays, timing, memory
# ---------------------------------------------------------------------------------------

def _is_cupy_array(x):
    cupy = sys.modules.get('cupy')
    return cupy is not None and isinstance(x, getattr(cupy, 'ndarray', ()))


def to_device(x, backend=None):
    """Move a numpy array to the chosen device (no copy on CPU)."""
    b = backend or current()
    return b.xp.asarray(x) if b.is_gpu else np.asarray(x)


def to_cpu(x):
    """Bring any array (numpy, CuPy or chainer.Variable) back as a numpy array."""
    if hasattr(x, 'array') and not isinstance(x, np.ndarray):  # chainer.Variable
        x = x.array
    if isinstance(x, np.ndarray):
        return x
    if _is_cupy_array(x):
        return x.get()
    return np.asarray(x)


def xp_of(x):
    """numpy or cupy, whichever module owns the array x."""
    if hasattr(x, 'array') and not isinstance(x, np.ndarray):
        x = x.array
    return sys.modules['cupy'] if _is_cupy_array(x) else np


def synchronize(backend=None):
    """Wait until the GPU has finished the work queued so far (no-op on CPU): call it
    before reading a clock, since CuPy returns before its kernels have run."""
    b = backend or current()
    if b.is_gpu:
        b.xp.cuda.Device(b.device_id).synchronize()


def memory_stats(backend=None):
    """GPU memory in bytes: what CuPy's memory pool uses and holds, and the device's
    free/total memory. {} on CPU."""
    b = backend or current()
    if not b.is_gpu:
        return {}
    pool = b.xp.get_default_memory_pool()
    stats = {'pool_used': int(pool.used_bytes()), 'pool_held': int(pool.total_bytes())}
    try:
        free, total = b.xp.cuda.runtime.memGetInfo()
        stats.update(device_free=int(free), device_total=int(total))
    except Exception:
        pass
    return stats


def free_memory(backend=None):
    """Give CuPy's cached, unused GPU memory back (so the next :func:`memory_stats`
    shows what the next piece of work holds at most). No-op on CPU."""
    b = backend or current()
    if b.is_gpu:
        b.xp.get_default_memory_pool().free_all_blocks()
        b.xp.get_default_pinned_memory_pool().free_all_blocks()
