"""oneDNN, the CPU kernel library Chainer itself used through iDeep (and PyTorch uses today),
reached through ctypes on its C API: no compiler, no Python bindings. This module is the
runtime -- loading the library, memory descriptors, cached *plans* -- and
:mod:`tutorial_lib.infra.onednn_ops` has the operations the fast path hands to it.

The library comes from the PyPI package ``onednn-cpu-gomp`` (a requirement on Linux x86-64;
it puts ``libdnnl.so.3`` in the environment's ``lib`` folder). Where it is missing,
``available()`` is False and the fast path keeps its numpy code. Why and how:
docs/fast-cpu-path.md.

A plan is one primitive for one set of shapes and memory layouts, made once and cached (its
kernel is generated for this CPU when it is made), with, for each argument whose layout
differs from the kernel's, a buffer and the reorder into or out of it. ``Plan.run`` binds
numpy arrays' memory to it and runs it.
"""
import collections
import contextlib
import ctypes
import os
import sys
import threading

from . import compat  # noqa: F401  (numpy 2 names chainer needs; before numpy users)
import numpy

__all__ = ['available', 'info', 'load_error', 'set_threads', 'sharing', 'OneDNNError']

# Values of oneDNN 3.x's C enums (dnnl_types.h of oneDNN 3.2; the ABI is stable within 3.x).
_CPU = 1
_F32 = 3
ANY, NHWC, OIHW, IOHW, X = 1, 22, 5, 25, 2                       # format tags
_Q_IMPL_INFO = 8
_ARG_FROM, _ARG_TO = 1, 17
_STREAM_DEFAULT = 1
_STATUS = {1: 'out of memory', 2: 'invalid arguments', 3: 'unimplemented',
           5: 'runtime error', 6: 'not required'}

_Dims = ctypes.c_int64 * 12
_p = ctypes.c_void_p


class _ExecArg(ctypes.Structure):
    _fields_ = [('arg', ctypes.c_int), ('memory', _p)]


class OneDNNError(RuntimeError):
    """A oneDNN call failed (the message names the call and oneDNN's status)."""


_WANTED = os.environ.get('TUTORIAL_ONEDNN', '1').strip().lower() not in ('0', 'false', 'no',
                                                                         'off')
_lib = None
_gomp = None
_threads = [None]
_found = {'path': None}
_engine = _p()
_stream = _p()
_load_error = None
_lock = threading.RLock()


def _candidates():
    env = os.environ.get('TUTORIAL_ONEDNN_LIB')
    if env:
        return [env]
    return [os.path.join(prefix, 'lib', 'libdnnl.so.3')
            for prefix in dict.fromkeys((sys.prefix, sys.base_prefix))] + ['libdnnl.so.3']


def _declare(lib):
    sig = {
        'dnnl_engine_create': [ctypes.POINTER(_p), ctypes.c_int, ctypes.c_size_t],
        'dnnl_stream_create': [ctypes.POINTER(_p), _p, ctypes.c_uint],
        'dnnl_stream_wait': [_p],
        'dnnl_memory_desc_create_with_tag': [ctypes.POINTER(_p), ctypes.c_int, _Dims,
                                             ctypes.c_int, ctypes.c_int],
        'dnnl_memory_desc_create_with_strides': [ctypes.POINTER(_p), ctypes.c_int, _Dims,
                                                 ctypes.c_int, _Dims],
        'dnnl_memory_desc_destroy': [_p],
        'dnnl_memory_desc_equal': [_p, _p],
        'dnnl_memory_desc_get_size': [_p],
        'dnnl_memory_create': [ctypes.POINTER(_p), _p, _p, _p],
        'dnnl_memory_set_data_handle': [_p, _p],
        'dnnl_memory_destroy': [_p],
        'dnnl_memory_get_memory_desc': [_p, ctypes.POINTER(_p)],
        'dnnl_primitive_desc_query_md': [_p, ctypes.c_int, ctypes.c_int],
        'dnnl_primitive_desc_query': [_p, ctypes.c_int, ctypes.c_int, _p],
        'dnnl_primitive_desc_destroy': [_p],
        'dnnl_primitive_create': [ctypes.POINTER(_p), _p],
        'dnnl_primitive_destroy': [_p],
        'dnnl_primitive_execute': [_p, _p, ctypes.c_int, ctypes.POINTER(_ExecArg)],
        'dnnl_reorder_primitive_desc_create': [ctypes.POINTER(_p), _p, _p, _p, _p, _p],
        'dnnl_convolution_forward_primitive_desc_create': [
            ctypes.POINTER(_p), _p, ctypes.c_int, ctypes.c_int, _p, _p, _p, _p,
            _Dims, _Dims, _Dims, _Dims, _p],
        'dnnl_deconvolution_forward_primitive_desc_create': [
            ctypes.POINTER(_p), _p, ctypes.c_int, ctypes.c_int, _p, _p, _p, _p,
            _Dims, _Dims, _Dims, _Dims, _p],
        'dnnl_batch_normalization_forward_primitive_desc_create': [
            ctypes.POINTER(_p), _p, ctypes.c_int, _p, _p, ctypes.c_float, ctypes.c_uint, _p],
        'dnnl_batch_normalization_backward_primitive_desc_create': [
            ctypes.POINTER(_p), _p, ctypes.c_int, _p, _p, _p, ctypes.c_float, ctypes.c_uint,
            _p, _p],
        'dnnl_eltwise_forward_primitive_desc_create': [
            ctypes.POINTER(_p), _p, ctypes.c_int, ctypes.c_int, _p, _p, ctypes.c_float,
            ctypes.c_float, _p],
        'dnnl_eltwise_backward_primitive_desc_create': [
            ctypes.POINTER(_p), _p, ctypes.c_int, _p, _p, _p, ctypes.c_float,
            ctypes.c_float, _p, _p],
        'dnnl_convolution_backward_weights_primitive_desc_create': [
            ctypes.POINTER(_p), _p, ctypes.c_int, _p, _p, _p, _p,
            _Dims, _Dims, _Dims, _Dims, _p, _p],
    }
    for name, args in sig.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = ctypes.c_int
    lib.dnnl_primitive_desc_query_md.restype = _p
    lib.dnnl_memory_desc_get_size.restype = ctypes.c_size_t


def _load():
    """Load libdnnl once; on failure remember why (``load_error()``)."""
    global _lib, _gomp, _load_error
    if _lib is not None or _load_error is not None:
        return _lib
    errors = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            _declare(lib)
            check(lib.dnnl_engine_create(ctypes.byref(_engine), _CPU, 0), 'engine_create')
            check(lib.dnnl_stream_create(ctypes.byref(_stream), _engine, _STREAM_DEFAULT),
                  'stream_create')
        except (OSError, AttributeError, OneDNNError) as exc:
            errors.append('%s: %s' % (path, exc))
            continue
        _lib = lib
        _found['path'] = path
        try:
            _gomp = ctypes.CDLL('libgomp.so.1')
        except OSError:
            _gomp = None
        return _lib
    _load_error = '; '.join(errors) or 'no candidate path'
    return None


def available():
    """True when libdnnl (oneDNN 3.x) loaded and a CPU engine was made, unless
    ``TUTORIAL_ONEDNN=0`` was set when this module was imported."""
    if _lib is not None:
        return True
    if not _WANTED:
        return False
    with _lock:
        return _load() is not None


def info():
    """What the fast path found: {'available', 'library' (path), 'error'}."""
    on = available()
    error = None if on else (_load_error or 'switched off by TUTORIAL_ONEDNN=0')
    return {'available': on, 'library': _found['path'], 'error': error}


def load_error():
    """Why oneDNN is not available (None when it is, or was not tried yet)."""
    return _load_error


def set_threads(n):
    """OpenMP threads for oneDNN's kernels (the library is built on GNU OpenMP)."""
    if _gomp is not None and n != _threads[0]:
        _gomp.omp_set_num_threads(int(n))
        _threads[0] = n


def check(status, what):
    if status != 0:
        raise OneDNNError('oneDNN %s failed: %s' % (what, _STATUS.get(status, status)))


def dims(values):
    d = _Dims()
    for i, v in enumerate(values):
        d[i] = int(v)
    return d


def md(shape, tag):
    """A float32 memory descriptor of ``shape`` in layout ``tag`` (ANY: the kernel's choice)."""
    desc = _p()
    check(_lib.dnnl_memory_desc_create_with_tag(ctypes.byref(desc), len(shape), dims(shape),
                                                _F32, tag), 'memory_desc_create')
    return desc


def _memory(md):
    mem = _p()
    check(_lib.dnnl_memory_create(ctypes.byref(mem), md, _engine, None), 'memory_create')
    return mem


def _primitive(pd, what):
    prim = _p()
    check(_lib.dnnl_primitive_create(ctypes.byref(prim), pd), what)
    return prim


def _set_handle(mem, pointer):
    check(_lib.dnnl_memory_set_data_handle(mem, pointer), 'memory_set_data_handle')


def _memory_md(mem):
    md = _p()
    check(_lib.dnnl_memory_get_memory_desc(mem, ctypes.byref(md)), 'memory_get_memory_desc')
    return md


_shared = threading.local()


@contextlib.contextmanager
def sharing():
    """Inside this block an array that one kernel reordered into its layout is not reordered
    again for the next kernel that wants it in the same layout (fastconv wraps the backward
    of a convolution in it: the gradients of the input and of the weights both read gy).
    Nothing may change an array in place inside the block."""
    outer = getattr(_shared, 'arrays', None)
    if outer is None:
        _shared.arrays = {}
    try:
        yield
    finally:
        if outer is None:
            _shared.arrays = None


class _Arg:
    """One argument of a primitive: Chainer's plain layout (``user``) and, when the kernel
    wants another layout, a buffer in that layout and the reorder between the two."""

    def __init__(self, user_md, prim_md, incoming):
        self.user_mem = _memory(user_md)
        self.reorder = None
        self.borrowed = False
        if _lib.dnnl_memory_desc_equal(user_md, prim_md):
            self.mem = self.user_mem
            return
        self.buffer = numpy.empty(_lib.dnnl_memory_desc_get_size(prim_md) + 64, numpy.uint8)
        offset = (-self.buffer.ctypes.data) % 64
        self.mem = _memory(prim_md)
        self.handle = self.buffer.ctypes.data + offset
        _set_handle(self.mem, self.handle)
        src, dst = (user_md, prim_md) if incoming else (prim_md, user_md)
        rpd = _p()
        check(_lib.dnnl_reorder_primitive_desc_create(ctypes.byref(rpd), src, _engine,
                                                      dst, _engine, None), 'reorder')
        self.reorder = _primitive(rpd, 'reorder')
        _lib.dnnl_primitive_desc_destroy(rpd)
        pair = (self.user_mem, self.mem) if incoming else (self.mem, self.user_mem)
        self.reorder_args = (_ExecArg * 2)(_ExecArg(_ARG_FROM, pair[0]),
                                           _ExecArg(_ARG_TO, pair[1]))

    def bind(self, array):
        _set_handle(self.user_mem, array.ctypes.data)

    def run_reorder(self):
        if self.reorder is not None:
            check(_lib.dnnl_primitive_execute(self.reorder, _stream, 2, self.reorder_args),
                  'reorder execute')

    def prepare(self, array, shared):
        """Bring an incoming array into the kernel's layout. Inside :func:`sharing`
        (``shared`` is its dict), an array another kernel already reordered into the same
        layout is read from that kernel's buffer instead of being reordered again."""
        if self.reorder is None:
            return
        if shared is not None:
            hit = shared.get(id(array))
            if hit is not None and hit[0] is array and _lib.dnnl_memory_desc_equal(
                    _memory_md(hit[1].mem), _memory_md(self.mem)):
                _set_handle(self.mem, hit[1].handle)
                self.borrowed = True
                return
            for key in [k for k, v in shared.items() if v[1] is self]:
                del shared[key]  # this buffer is about to be overwritten
            shared[id(array)] = (array, self)
        self.run_reorder()

    def release(self):
        if self.borrowed:
            _set_handle(self.mem, self.handle)
            self.borrowed = False

    def close(self):
        """Free the oneDNN objects (the buffer goes with this object)."""
        if self.reorder is not None:
            _lib.dnnl_primitive_destroy(self.reorder)
            _lib.dnnl_memory_destroy(self.mem)
        _lib.dnnl_memory_destroy(self.user_mem)


class Plan:
    """A primitive for one set of shapes, with its arguments; ``run`` binds arrays to it."""

    def __init__(self, pd, args):
        # args: [(exec arg id, user md, query, incoming)]; the plan owns the user mds (its
        # memory objects keep copies) and frees them here
        self.lock = threading.Lock()
        self.closed = False
        self.prim = _primitive(pd, 'primitive_create')
        info = ctypes.c_char_p()
        _lib.dnnl_primitive_desc_query(pd, _Q_IMPL_INFO, 0, ctypes.byref(info))
        self.impl = (info.value or b'').decode()
        self.args = []
        for arg_id, user_md, query, incoming in args:
            prim_md = _lib.dnnl_primitive_desc_query_md(pd, query, 0) if query else user_md
            self.args.append((arg_id, _Arg(user_md, prim_md, incoming), incoming))
        self.exec_args = (_ExecArg * len(self.args))(
            *[_ExecArg(arg_id, a.mem) for arg_id, a, _ in self.args])
        for user_md in {user_md.value: user_md for _, user_md, _, _ in args}.values():
            _lib.dnnl_memory_desc_destroy(user_md)

    def close(self):
        """Free the oneDNN objects; a closed plan runs no more (``run`` returns False)."""
        self.closed = True
        _lib.dnnl_primitive_destroy(self.prim)
        for _, arg, _ in self.args:
            arg.close()

    def run(self, arrays):
        """Run on these numpy arrays (in the order of the plan's arguments); True when run."""
        with self.lock:
            if self.closed:
                return False
            shared = getattr(_shared, 'arrays', None)
            for (_, arg, incoming), array in zip(self.args, arrays):
                arg.bind(array)
                if incoming:
                    arg.prepare(array, shared)
            try:
                check(_lib.dnnl_primitive_execute(self.prim, _stream, len(self.args),
                                                  self.exec_args), 'execute')
                for _, arg, incoming in self.args:
                    if not incoming:
                        arg.run_reorder()
                check(_lib.dnnl_stream_wait(_stream), 'stream_wait')
            finally:
                for _, arg, incoming in self.args:
                    if incoming:
                        arg.release()
        return True


# Plans hold buffers as large as the arrays they reorder: the least recently used ones go
# beyond MAX_PLANS (a notebook coloring pictures of ever new sizes would otherwise grow).
MAX_PLANS = 256
_plans = collections.OrderedDict()
_failed = set()


def get_plan(key, make):
    """The cached plan for ``key``, made by ``make()`` the first time. A key whose plan
    could not be made (oneDNN has no kernel for it) raises OneDNNError at once after that."""
    with _lock:
        plan = _plans.get(key)
        if plan is not None:
            _plans.move_to_end(key)
            return plan
        if key in _failed:
            raise OneDNNError('no oneDNN kernel for %r' % (key,))
        try:
            plan = _plans[key] = make()
        except OneDNNError:
            _failed.add(key)
            raise
        while len(_plans) > MAX_PLANS:
            _, old = _plans.popitem(last=False)
            with old.lock:  # not while another thread runs it
                old.close()
        return plan


def run_plan(key, make, arrays):
    """Run the plan for ``key`` (made by ``make()`` if needed) on ``arrays``."""
    while not get_plan(key, make).run(arrays):
        pass  # evicted and closed by another thread just now: make it again


def array_md(a):
    """A memory descriptor of float32 numpy array ``a`` as it lies in memory (its strides)."""
    desc = _p()
    check(_lib.dnnl_memory_desc_create_with_strides(
        ctypes.byref(desc), a.ndim, dims(a.shape), _F32,
        dims([st // a.itemsize for st in a.strides])), 'memory_desc_create_with_strides')
    return desc


def lib():
    """The loaded libdnnl (call :func:`available` first)."""
    return _lib


def engine():
    return _engine


def new_handle():
    return _p()


def destroy(*objects):
    """Free primitive descriptors ('pd') and memory descriptors ('md'): (kind, handle)."""
    for kind, handle in objects:
        if handle:
            (_lib.dnnl_primitive_desc_destroy if kind == 'pd'
             else _lib.dnnl_memory_desc_destroy)(handle)

