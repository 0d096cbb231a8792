"""Chainer's convolutions on oneDNN, the CPU kernel library Chainer itself used through iDeep
(and PyTorch uses today), called through ctypes: no compiler, no iDeep.

The library comes from the optional PyPI package ``onednn-cpu-gomp`` (Linux x86-64; it puts
``libdnnl.so.3`` in the environment's ``lib`` folder). Where it is missing, ``available()``
is False and :mod:`tutorial_lib.infra.fastconv` keeps its numpy code. Why and how:
docs/fast-cpu-path.md.

Three operations, each on C-contiguous float32 arrays in Chainer's layouts:
``conv_forward`` (NCHW x OIHW -> NCHW), ``deconv_forward`` (weights Cin, Cout, kh, kw) and
``conv_grad_w``. Each shape gets one *plan*, made once and cached: the oneDNN primitive
(its kernel is generated for this CPU when the plan is made) plus the reorders between
Chainer's plain layouts and the blocked layouts the kernel prefers.
"""
import contextlib
import ctypes
import os
import sys
import threading

from . import compat  # noqa: F401  (numpy 2 names chainer needs; before numpy users)
import numpy

__all__ = ['available', 'load_error', 'conv_forward', 'deconv_forward', 'conv_grad_w',
           'implementation', 'set_threads']

# Values of oneDNN 3.x's C enums (dnnl_types.h of oneDNN 3.2; the ABI is stable within 3.x).
_CPU = 1
_F32 = 3
_ANY, _NCHW, _NHWC, _OIHW, _IOHW, _X = 1, 5, 22, 5, 25, 2
_FORWARD_TRAINING, _FORWARD_INFERENCE = 64, 96
_CONV_DIRECT, _DECONV_DIRECT = 1, 10
_Q_SRC, _Q_DIFF_SRC, _Q_WEIGHTS, _Q_DIFF_WEIGHTS, _Q_DST, _Q_DIFF_DST = 129, 130, 131, 132, 133, 134
_Q_IMPL_INFO = 8
_ARG_SRC, _ARG_DST, _ARG_WEIGHTS, _ARG_BIAS = 1, 17, 33, 41
_ARG_DIFF_SRC, _ARG_DIFF_DST, _ARG_DIFF_WEIGHTS = 129, 145, 161
_ARG_FROM, _ARG_TO = 1, 17
_STREAM_DEFAULT = 1
_BACKWARD = 128
_USE_SCALE, _USE_SHIFT = 2, 4
_ARG_MEAN, _ARG_VARIANCE, _ARG_SCALE, _ARG_SHIFT = 49, 50, 51, 52
_ARG_DIFF_SCALE, _ARG_DIFF_SHIFT = 255, 256
_RELU_USE_DST = 256
_STATUS = {1: 'out of memory', 2: 'invalid arguments', 3: 'unimplemented',
           5: 'runtime error', 6: 'not required'}

# The layout the kernels work in (reorders from and to Chainer's NCHW included): layers
# with at most this many channels on either side run channels-last (NHWC), the others in
# the blocked layout oneDNN prefers. Measured per layer of the U-Net at both widths (AVX-512):
# channels-last is up to 3x faster for 1-16 channels at 128 px, 5-10% slower from 32 up.
NHWC_MAX_CHANNELS = 16
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
            _check(lib.dnnl_engine_create(ctypes.byref(_engine), _CPU, 0), 'engine_create')
            _check(lib.dnnl_stream_create(ctypes.byref(_stream), _engine, _STREAM_DEFAULT),
                   'stream_create')
        except (OSError, AttributeError, OneDNNError) as exc:
            errors.append('%s: %s' % (path, exc))
            continue
        _lib = lib
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


def load_error():
    """Why oneDNN is not available (None when it is, or was not tried yet)."""
    return _load_error


def set_threads(n):
    """OpenMP threads for oneDNN's kernels (the library is built on GNU OpenMP)."""
    if _gomp is not None and n != _threads[0]:
        _gomp.omp_set_num_threads(int(n))
        _threads[0] = n


def _check(status, what):
    if status != 0:
        raise OneDNNError('oneDNN %s failed: %s' % (what, _STATUS.get(status, status)))


def _dims(values):
    d = _Dims()
    for i, v in enumerate(values):
        d[i] = int(v)
    return d


def _md(shape, tag):
    md = _p()
    _check(_lib.dnnl_memory_desc_create_with_tag(ctypes.byref(md), len(shape), _dims(shape),
                                                 _F32, tag), 'memory_desc_create')
    return md


def _memory(md):
    mem = _p()
    _check(_lib.dnnl_memory_create(ctypes.byref(mem), md, _engine, None), 'memory_create')
    return mem


def _primitive(pd, what):
    prim = _p()
    _check(_lib.dnnl_primitive_create(ctypes.byref(prim), pd), what)
    return prim


def _set_handle(mem, pointer):
    _check(_lib.dnnl_memory_set_data_handle(mem, pointer), 'memory_set_data_handle')


def _memory_md(mem):
    md = _p()
    _check(_lib.dnnl_memory_get_memory_desc(mem, ctypes.byref(md)), 'memory_get_memory_desc')
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
        self.borrowed = False
        _set_handle(self.mem, self.handle)
        src, dst = (user_md, prim_md) if incoming else (prim_md, user_md)
        rpd = _p()
        _check(_lib.dnnl_reorder_primitive_desc_create(ctypes.byref(rpd), src, _engine,
                                                       dst, _engine, None), 'reorder')
        self.reorder = _primitive(rpd, 'reorder')
        _lib.dnnl_primitive_desc_destroy(rpd)
        pair = (self.user_mem, self.mem) if incoming else (self.mem, self.user_mem)
        self.reorder_args = (_ExecArg * 2)(_ExecArg(_ARG_FROM, pair[0]),
                                           _ExecArg(_ARG_TO, pair[1]))

    def bind(self, array):
        _check(_lib.dnnl_memory_set_data_handle(self.user_mem, array.ctypes.data),
               'memory_set_data_handle')

    def run_reorder(self):
        if self.reorder is not None:
            _check(_lib.dnnl_primitive_execute(self.reorder, _stream, 2, self.reorder_args),
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


class _Plan:
    """A primitive for one set of shapes, with its arguments; ``run`` binds arrays to it."""

    def __init__(self, pd, args):
        # args: [(exec arg id, user md, query, incoming)]
        self.lock = threading.Lock()
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

    def run(self, arrays):
        with self.lock:
            shared = getattr(_shared, 'arrays', None)
            for (_, arg, incoming), array in zip(self.args, arrays):
                arg.bind(array)
                if incoming:
                    arg.prepare(array, shared)
            try:
                _check(_lib.dnnl_primitive_execute(self.prim, _stream, len(self.args),
                                                   self.exec_args), 'execute')
                for _, arg, incoming in self.args:
                    if not incoming:
                        arg.run_reorder()
                _check(_lib.dnnl_stream_wait(_stream), 'stream_wait')
            finally:
                for _, arg, incoming in self.args:
                    if incoming:
                        arg.release()


_plans = {}


def _plan(key, make):
    with _lock:
        plan = _plans.get(key)
        if plan is None:
            plan = _plans[key] = make()
        return plan


def _geometry(stride, pad, in_hw, k_hw, out_hw):
    """oneDNN's strides, dilations, left and right paddings; the right padding makes the
    sizes consistent (Chainer's floor division or ``outsize`` may leave some of it out)."""
    right = [(o - 1) * s + k - i - p for o, s, k, i, p in zip(out_hw, stride, k_hw, in_hw, pad)]
    return _dims(stride), _dims((0, 0)), _dims(pad), _dims(right)


def _act_tag(w_shape):
    return _NHWC if max(w_shape[:2]) <= NHWC_MAX_CHANNELS else _ANY


def _conv_pd(x_shape, w_shape, y_shape, bias, stride, pad, prop):
    tag = _act_tag(w_shape)
    src, wts, dst = _md(x_shape, tag), _md(w_shape, _ANY), _md(y_shape, tag)
    b = _md((w_shape[0],), _X) if bias else None
    pd = _p()
    _check(_lib.dnnl_convolution_forward_primitive_desc_create(
        ctypes.byref(pd), _engine, prop, _CONV_DIRECT, src, wts, b, dst,
        *_geometry(stride, pad, x_shape[2:], w_shape[2:], y_shape[2:]), None),
        'convolution_forward_primitive_desc_create')
    for md in (src, wts, dst, b):
        if md:
            _lib.dnnl_memory_desc_destroy(md)
    return pd


def conv_forward(x, W, b, stride, pad, out_hw, training=True):
    """y = conv(x, W) + b: x (N, C, H, W), W (O, C, kh, kw), b (O,) or None; float32,
    C-contiguous. Returns a new (N, O, *out_hw) array."""
    n, o = x.shape[0], W.shape[0]
    y = numpy.empty((n, o) + tuple(out_hw), numpy.float32)
    key = ('conv', x.shape, W.shape, b is not None, tuple(stride), tuple(pad), y.shape, training)

    def make():
        prop = _FORWARD_TRAINING if training else _FORWARD_INFERENCE
        pd = _conv_pd(x.shape, W.shape, y.shape, b is not None, stride, pad, prop)
        args = [(_ARG_SRC, _md(x.shape, _NCHW), _Q_SRC, True),
                (_ARG_WEIGHTS, _md(W.shape, _OIHW), _Q_WEIGHTS, True)]
        if b is not None:
            args.append((_ARG_BIAS, _md((o,), _X), None, True))
        args.append((_ARG_DST, _md(y.shape, _NCHW), _Q_DST, False))
        plan = _Plan(pd, args)
        _lib.dnnl_primitive_desc_destroy(pd)
        return plan
    arrays = [x, W] + ([b] if b is not None else []) + [y]
    _plan(key, make).run(arrays)
    return y


def deconv_forward(x, W, b, stride, pad, out_hw):
    """Transposed convolution: x (N, Cin, h, w), W (Cin, Cout, kh, kw) as Chainer stores
    it, b (Cout,) or None -> a new (N, Cout, *out_hw) array."""
    n, cin = x.shape[:2]
    cout, kh, kw = W.shape[1:]
    y = numpy.empty((n, cout) + tuple(out_hw), numpy.float32)
    key = ('deconv', x.shape, W.shape, b is not None, tuple(stride), tuple(pad), y.shape)

    def make():
        w_logical = (cout, cin, kh, kw)
        tag = _act_tag(w_logical)
        src, wts, dst = _md(x.shape, tag), _md(w_logical, _ANY), _md(y.shape, tag)
        bias = _md((cout,), _X) if b is not None else None
        pd = _p()
        # For a transposed convolution oneDNN's padding is the one of the convolution it
        # transposes: the output plays the input's part.
        _check(_lib.dnnl_deconvolution_forward_primitive_desc_create(
            ctypes.byref(pd), _engine, _FORWARD_TRAINING, _DECONV_DIRECT, src, wts, bias,
            dst, *_geometry(stride, pad, y.shape[2:], (kh, kw), x.shape[2:]), None),
            'deconvolution_forward_primitive_desc_create')
        for md in (src, wts, dst, bias):
            if md:
                _lib.dnnl_memory_desc_destroy(md)
        args = [(_ARG_SRC, _md(x.shape, _NCHW), _Q_SRC, True),
                (_ARG_WEIGHTS, _md(w_logical, _IOHW), _Q_WEIGHTS, True)]
        if b is not None:
            args.append((_ARG_BIAS, _md((cout,), _X), None, True))
        args.append((_ARG_DST, _md(y.shape, _NCHW), _Q_DST, False))
        plan = _Plan(pd, args)
        _lib.dnnl_primitive_desc_destroy(pd)
        return plan
    arrays = [x, W] + ([b] if b is not None else []) + [y]
    _plan(key, make).run(arrays)
    return y


def conv_grad_w(x, gy, w_shape, stride, pad):
    """dL/dW (O, C, kh, kw) of y = conv(x, W) given gy = dL/dy; a new array."""
    gW = numpy.empty(tuple(w_shape), numpy.float32)
    key = ('grad_w', x.shape, gy.shape, tuple(w_shape), tuple(stride), tuple(pad))

    def make():
        hint = _conv_pd(x.shape, w_shape, gy.shape, False, stride, pad, _FORWARD_TRAINING)
        tag = _act_tag(w_shape)
        src, wts, dst = _md(x.shape, tag), _md(w_shape, _ANY), _md(gy.shape, tag)
        pd = _p()
        _check(_lib.dnnl_convolution_backward_weights_primitive_desc_create(
            ctypes.byref(pd), _engine, _CONV_DIRECT, src, wts, None, dst,
            *_geometry(stride, pad, x.shape[2:], w_shape[2:], gy.shape[2:]), hint, None),
            'convolution_backward_weights_primitive_desc_create')
        for md in (src, wts, dst):
            _lib.dnnl_memory_desc_destroy(md)
        args = [(_ARG_SRC, _md(x.shape, _NCHW), _Q_SRC, True),
                (_ARG_DIFF_DST, _md(gy.shape, _NCHW), _Q_DIFF_DST, True),
                (_ARG_DIFF_WEIGHTS, _md(w_shape, _OIHW), _Q_DIFF_WEIGHTS, False)]
        plan = _Plan(pd, args)
        _lib.dnnl_primitive_desc_destroy(pd)
        _lib.dnnl_primitive_desc_destroy(hint)
        return plan
    _plan(key, make).run([x, gy, gW])
    return gW


def _bn_fwd_pd(shape, eps):
    md = _md(shape, _NCHW)
    pd = _p()
    _check(_lib.dnnl_batch_normalization_forward_primitive_desc_create(
        ctypes.byref(pd), _engine, _FORWARD_TRAINING, md, md, eps, _USE_SCALE | _USE_SHIFT,
        None), 'batch_normalization_forward_primitive_desc_create')
    return pd, md


def bn_train_forward(x, gamma, beta, eps):
    """Training-mode batch normalization of x (N, C, H, W) over all axes but 1:
    returns y and the batch's mean and (biased) variance per channel."""
    c = x.shape[1]
    y = numpy.empty_like(x)
    mean = numpy.empty(c, numpy.float32)
    var = numpy.empty(c, numpy.float32)
    key = ('bn', x.shape, float(eps))

    def make():
        pd, md = _bn_fwd_pd(x.shape, eps)
        vec = _md((c,), _X)
        plan = _Plan(pd, [(_ARG_SRC, md, None, True), (_ARG_SCALE, vec, None, True),
                          (_ARG_SHIFT, vec, None, True), (_ARG_DST, md, None, False),
                          (_ARG_MEAN, vec, None, False), (_ARG_VARIANCE, vec, None, False)])
        _lib.dnnl_primitive_desc_destroy(pd)
        return plan
    _plan(key, make).run([x, gamma, beta, y, mean, var])
    return y, mean, var


def bn_train_backward(x, gamma, gy, mean, var, eps):
    """Gradients of :func:`bn_train_forward`: gx, ggamma, gbeta."""
    c = x.shape[1]
    gx = numpy.empty_like(x)
    ggamma = numpy.empty(c, numpy.float32)
    gbeta = numpy.empty(c, numpy.float32)
    key = ('bn_grad', x.shape, float(eps))

    def make():
        hint, md = _bn_fwd_pd(x.shape, eps)
        pd = _p()
        _check(_lib.dnnl_batch_normalization_backward_primitive_desc_create(
            ctypes.byref(pd), _engine, _BACKWARD, md, md, md, eps, _USE_SCALE | _USE_SHIFT,
            hint, None), 'batch_normalization_backward_primitive_desc_create')
        vec = _md((c,), _X)
        plan = _Plan(pd, [(_ARG_SRC, md, None, True), (_ARG_MEAN, vec, None, True),
                          (_ARG_VARIANCE, vec, None, True), (_ARG_DIFF_DST, md, None, True),
                          (_ARG_SCALE, vec, None, True), (_ARG_DIFF_SRC, md, None, False),
                          (_ARG_DIFF_SCALE, vec, None, False),
                          (_ARG_DIFF_SHIFT, vec, None, False)])
        _lib.dnnl_primitive_desc_destroy(pd)
        _lib.dnnl_primitive_desc_destroy(hint)
        return plan
    _plan(key, make).run([x, mean, var, gy, gamma, gx, ggamma, gbeta])
    return gx, ggamma, gbeta


def _flat_md(size):
    return _md((size,), _X)


def _relu_fwd_pd(size):
    md = _flat_md(size)
    pd = _p()
    _check(_lib.dnnl_eltwise_forward_primitive_desc_create(
        ctypes.byref(pd), _engine, _FORWARD_TRAINING, _RELU_USE_DST, md, md, 0.0, 0.0, None),
        'eltwise_forward_primitive_desc_create')
    return pd, md


def relu_forward(x):
    """max(x, 0) of a C-contiguous float32 array, as a new array."""
    y = numpy.empty_like(x)

    def make():
        pd, md = _relu_fwd_pd(x.size)
        plan = _Plan(pd, [(_ARG_SRC, md, None, True), (_ARG_DST, md, None, False)])
        _lib.dnnl_primitive_desc_destroy(pd)
        return plan
    _plan(('relu', x.size), make).run([x, y])
    return y


def relu_backward(y, gy):
    """gy where y > 0, else 0 (y: the ReLU's output), as a new array."""
    gx = numpy.empty_like(gy)

    def make():
        hint, md = _relu_fwd_pd(y.size)
        pd = _p()
        _check(_lib.dnnl_eltwise_backward_primitive_desc_create(
            ctypes.byref(pd), _engine, _RELU_USE_DST, md, md, md, 0.0, 0.0, hint, None),
            'eltwise_backward_primitive_desc_create')
        plan = _Plan(pd, [(_ARG_DST, md, None, True), (_ARG_DIFF_DST, md, None, True),
                          (_ARG_DIFF_SRC, md, None, False)])
        _lib.dnnl_primitive_desc_destroy(pd)
        _lib.dnnl_primitive_desc_destroy(hint)
        return plan
    _plan(('relu_grad', y.size), make).run([y, gy, gx])
    return gx


def implementation(kind, *shape_key):
    """The kernel oneDNN chose for a cached plan (e.g. 'brg:avx512_core'), or None."""
    plan = _plans.get((kind,) + shape_key)
    return None if plan is None else plan.impl
