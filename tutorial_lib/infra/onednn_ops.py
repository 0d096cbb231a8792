"""The operations the fast path hands to oneDNN (:mod:`tutorial_lib.infra.onednn` loads the
library and caches one plan per shape): convolution, transposed convolution, the weight
gradient, batch normalization and ReLU, on float32 numpy arrays in Chainer's (N, C, H, W)
shapes.

Layouts: an array may lie in memory as NCHW (C-contiguous) or channels-last (NHWC: a
C-contiguous (N, H, W, C) buffer seen through a transposed view); any other strides are
read too (a copy inside oneDNN). A convolution whose input is channels-last, or whose
layer has at most NHWC_MAX_CHANNELS channels on either side, runs channels-last and
returns its output channels-last, so that the next layers (batch normalization, ReLU,
concatenation, the next convolution) read it without any reordering; other layers run in
the blocked layout oneDNN prefers and return NCHW. Chainer and numpy see the same (N, C, H, W)
values either way.
"""
import ctypes

from . import compat  # noqa: F401  (numpy 2 names chainer needs; before numpy users)
import numpy

from . import onednn as rt
from .onednn import ANY, IOHW, NHWC, OIHW, X
from .threads import thread_count

__all__ = ['conv_forward', 'deconv_forward', 'conv_grad_w', 'bn_train_forward',
           'bn_train_backward', 'bn_inference', 'relu_forward', 'relu_backward',
           'is_channels_last', 'like', 'supported', 'ready']

# Layers with at most this many channels on either side run channels-last. Measured per
# layer of the U-Net (AVX-512, reorders included): channels-last is up to 3x faster with
# 1-16 channels at 128 px and 5-10% slower with 32-512 channels in NCHW-in, NCHW-out use.
NHWC_MAX_CHANNELS = 16

# oneDNN 3.x enum values (dnnl_types.h)
_FORWARD_TRAINING, _FORWARD_INFERENCE, _BACKWARD = 64, 96, 128
_CONV_DIRECT, _DECONV_DIRECT, _RELU_USE_DST = 1, 10, 256
_Q_SRC, _Q_WEIGHTS, _Q_DIFF_WEIGHTS, _Q_DST, _Q_DIFF_DST = 129, 131, 132, 133, 134
_SRC, _DST, _WEIGHTS, _BIAS = 1, 17, 33, 41
_DIFF_SRC, _DIFF_DST, _DIFF_WEIGHTS = 129, 145, 161
_MEAN, _VARIANCE, _SCALE, _SHIFT, _DIFF_SCALE, _DIFF_SHIFT = 49, 50, 51, 52, 255, 256
_GLOBAL_STATS, _USE_SCALE, _USE_SHIFT = 1, 2, 4
_F32 = numpy.dtype(numpy.float32)


def is_channels_last(a):
    """True for a 4-D array that lies in memory as (N, H, W, C) but is not also NCHW."""
    return (a.ndim == 4 and not a.flags.c_contiguous
            and a.transpose(0, 2, 3, 1).flags.c_contiguous)


def supported(a):
    """A float32 numpy array whose strides oneDNN can describe (non-negative, whole elements)."""
    return (type(a) is numpy.ndarray and a.dtype == _F32 and a.size > 0
            and all(s >= 0 and s % 4 == 0 for s in a.strides))


def _empty(shape, channels_last):
    if channels_last:
        n, c, h, w = shape
        return numpy.empty((n, h, w, c), numpy.float32).transpose(0, 3, 1, 2)
    return numpy.empty(shape, numpy.float32)


def like(a, layout_of):
    """``a`` laid out in memory as ``layout_of`` is (a copy only when they differ)."""
    if a.strides == layout_of.strides:
        return a
    out = numpy.empty_like(layout_of)
    out[...] = a
    return out


def ready():
    """oneDNN is loaded (and not switched off); its threads are then set to the fast path's
    count (``threads.thread_count()``, so ``OPENBLAS_NUM_THREADS=1`` holds for it too)."""
    if not rt.available():
        return False
    rt.set_threads(thread_count())
    return True


def _layout_key(*arrays):
    return tuple(None if a is None else a.strides for a in arrays)


def _geometry(stride, pad, in_hw, k_hw, out_hw):
    """oneDNN's strides, dilations, left and right paddings; the right padding makes the
    sizes consistent (Chainer's floor division or ``outsize`` may leave some of it out)."""
    right = [(o - 1) * s + k - i - p for o, s, k, i, p in zip(out_hw, stride, k_hw, in_hw, pad)]
    return rt.dims(stride), rt.dims((0, 0)), rt.dims(pad), rt.dims(right)


def _conv_pd(x_shape, w_shape, y_shape, bias, stride, pad, prop, tag):
    lib = rt.lib()
    src, wts, dst = rt.md(x_shape, tag), rt.md(w_shape, ANY), rt.md(y_shape, tag)
    b = rt.md((w_shape[0],), X) if bias else None
    pd = rt.new_handle()
    rt.check(lib.dnnl_convolution_forward_primitive_desc_create(
        ctypes.byref(pd), rt.engine(), prop, _CONV_DIRECT, src, wts, b, dst,
        *_geometry(stride, pad, x_shape[2:], w_shape[2:], y_shape[2:]), None),
        'convolution_forward_primitive_desc_create')
    rt.destroy(('md', src), ('md', wts), ('md', dst), ('md', b))
    return pd


def _channels_last(w_shape, *arrays):
    return (max(w_shape[:2]) <= NHWC_MAX_CHANNELS
            or any(a is not None and is_channels_last(a) for a in arrays))


def _finish(pd, args):
    plan = rt.Plan(pd, args)
    rt.destroy(('pd', pd))
    return plan


def conv_forward(x, W, b, stride, pad, out_hw, training=True):
    """y = conv(x, W) + b: x (N, C, H, W), W (O, C, kh, kw) C-contiguous, b (O,) or None.
    Returns a new (N, O, *out_hw) array (channels-last when the layer runs so)."""
    last = _channels_last(W.shape, x)
    y = _empty((x.shape[0], W.shape[0]) + tuple(out_hw), last)
    key = ('conv', x.shape, _layout_key(x), W.shape, b is not None, tuple(stride),
           tuple(pad), y.shape, last, training)

    def make():
        prop = _FORWARD_TRAINING if training else _FORWARD_INFERENCE
        pd = _conv_pd(x.shape, W.shape, y.shape, b is not None, stride, pad, prop,
                      NHWC if last else ANY)
        args = [(_SRC, rt.array_md(x), _Q_SRC, True),
                (_WEIGHTS, rt.md(W.shape, OIHW), _Q_WEIGHTS, True)]
        if b is not None:
            args.append((_BIAS, rt.md(b.shape, X), None, True))
        return _finish(pd, args + [(_DST, rt.array_md(y), _Q_DST, False)])
    rt.run_plan(key, make, [x, W] + ([b] if b is not None else []) + [y])
    return y


def deconv_forward(x, W, b, stride, pad, out_hw):
    """Transposed convolution: x (N, Cin, h, w), W (Cin, Cout, kh, kw) as Chainer stores
    it (C-contiguous), b (Cout,) or None -> a new (N, Cout, *out_hw) array."""
    cin, cout, kh, kw = W.shape
    w_logical = (cout, cin, kh, kw)
    last = _channels_last(w_logical, x)
    y = _empty((x.shape[0], cout) + tuple(out_hw), last)
    key = ('deconv', x.shape, _layout_key(x), W.shape, b is not None, tuple(stride),
           tuple(pad), y.shape, last)

    def make():
        tag = NHWC if last else ANY
        src, wts, dst = rt.md(x.shape, tag), rt.md(w_logical, ANY), rt.md(y.shape, tag)
        bias = rt.md((cout,), X) if b is not None else None
        pd = rt.new_handle()
        # For a transposed convolution oneDNN's padding is the one of the convolution it
        # transposes: the output plays the input's part.
        rt.check(rt.lib().dnnl_deconvolution_forward_primitive_desc_create(
            ctypes.byref(pd), rt.engine(), _FORWARD_TRAINING, _DECONV_DIRECT, src, wts,
            bias, dst, *_geometry(stride, pad, y.shape[2:], (kh, kw), x.shape[2:]), None),
            'deconvolution_forward_primitive_desc_create')
        rt.destroy(('md', src), ('md', wts), ('md', dst), ('md', bias))
        args = [(_SRC, rt.array_md(x), _Q_SRC, True),
                (_WEIGHTS, rt.md(w_logical, IOHW), _Q_WEIGHTS, True)]
        if b is not None:
            args.append((_BIAS, rt.md((cout,), X), None, True))
        return _finish(pd, args + [(_DST, rt.array_md(y), _Q_DST, False)])
    rt.run_plan(key, make, [x, W] + ([b] if b is not None else []) + [y])
    return y


def conv_grad_w(x, gy, w_shape, stride, pad):
    """dL/dW (O, C, kh, kw), a new C-contiguous array, of y = conv(x, W) given gy = dL/dy."""
    gW = numpy.empty(tuple(w_shape), numpy.float32)
    last = _channels_last(w_shape, x, gy)
    key = ('grad_w', x.shape, gy.shape, _layout_key(x, gy), tuple(w_shape), tuple(stride),
           tuple(pad), last)

    def make():
        tag = NHWC if last else ANY
        hint = _conv_pd(x.shape, w_shape, gy.shape, False, stride, pad, _FORWARD_TRAINING,
                        tag)
        src, wts, dst = rt.md(x.shape, tag), rt.md(w_shape, ANY), rt.md(gy.shape, tag)
        pd = rt.new_handle()
        rt.check(rt.lib().dnnl_convolution_backward_weights_primitive_desc_create(
            ctypes.byref(pd), rt.engine(), _CONV_DIRECT, src, wts, None, dst,
            *_geometry(stride, pad, x.shape[2:], w_shape[2:], gy.shape[2:]), hint, None),
            'convolution_backward_weights_primitive_desc_create')
        rt.destroy(('md', src), ('md', wts), ('md', dst), ('pd', hint))
        return _finish(pd, [(_SRC, rt.array_md(x), _Q_SRC, True),
                            (_DIFF_DST, rt.array_md(gy), _Q_DIFF_DST, True),
                            (_DIFF_WEIGHTS, rt.md(w_shape, OIHW), _Q_DIFF_WEIGHTS, False)])
    rt.run_plan(key, make, [x, gy, gW])
    return gW


# ----------------------------------------------------------------------------------
# Batch normalization over all axes but 1 (per channel), any dense layout of x
# ----------------------------------------------------------------------------------

def _bn_pd(x, eps, prop, flags):
    desc = rt.array_md(x)
    pd = rt.new_handle()
    rt.check(rt.lib().dnnl_batch_normalization_forward_primitive_desc_create(
        ctypes.byref(pd), rt.engine(), prop, desc, desc, eps, flags, None),
        'batch_normalization_forward_primitive_desc_create')
    return pd, desc


def bn_train_forward(x, gamma, beta, eps):
    """Training-mode batch normalization: y (laid out as x) and the batch's mean and
    biased variance per channel."""
    c = x.shape[1]
    y, mean, var = numpy.empty_like(x), numpy.empty(c, _F32), numpy.empty(c, _F32)

    def make():
        pd, desc = _bn_pd(x, eps, _FORWARD_TRAINING, _USE_SCALE | _USE_SHIFT)
        vec = rt.md((c,), X)
        return _finish(pd, [(_SRC, desc, None, True), (_SCALE, vec, None, True),
                            (_SHIFT, vec, None, True), (_DST, desc, None, False),
                            (_MEAN, vec, None, False), (_VARIANCE, vec, None, False)])
    rt.run_plan(('bn', x.shape, x.strides, float(eps)), make, [x, gamma, beta, y, mean, var])
    return y, mean, var


def bn_inference(x, gamma, beta, mean, var, eps):
    """Batch normalization with given statistics (test mode); y laid out as x."""
    y = numpy.empty_like(x)

    def make():
        pd, desc = _bn_pd(x, eps, _FORWARD_INFERENCE, _GLOBAL_STATS | _USE_SCALE | _USE_SHIFT)
        vec = rt.md((x.shape[1],), X)
        return _finish(pd, [(_SRC, desc, None, True), (_MEAN, vec, None, True),
                            (_VARIANCE, vec, None, True), (_SCALE, vec, None, True),
                            (_SHIFT, vec, None, True), (_DST, desc, None, False)])
    rt.run_plan(('bn_test', x.shape, x.strides, float(eps)), make, [x, mean, var, gamma, beta, y])
    return y


def bn_train_backward(x, gamma, gy, mean, var, eps):
    """Gradients of :func:`bn_train_forward`: gx (laid out as x), ggamma, gbeta."""
    c = x.shape[1]
    gy = like(gy, x)
    gx, ggamma, gbeta = numpy.empty_like(x), numpy.empty(c, _F32), numpy.empty(c, _F32)

    def make():
        hint, desc = _bn_pd(x, eps, _FORWARD_TRAINING, _USE_SCALE | _USE_SHIFT)
        pd = rt.new_handle()
        rt.check(rt.lib().dnnl_batch_normalization_backward_primitive_desc_create(
            ctypes.byref(pd), rt.engine(), _BACKWARD, desc, desc, desc, eps,
            _USE_SCALE | _USE_SHIFT, hint, None),
            'batch_normalization_backward_primitive_desc_create')
        rt.destroy(('pd', hint))
        vec = rt.md((c,), X)
        return _finish(pd, [(_SRC, desc, None, True), (_MEAN, vec, None, True),
                            (_VARIANCE, vec, None, True), (_DIFF_DST, desc, None, True),
                            (_SCALE, vec, None, True), (_DIFF_SRC, desc, None, False),
                            (_DIFF_SCALE, vec, None, False), (_DIFF_SHIFT, vec, None, False)])
    rt.run_plan(('bn_grad', x.shape, x.strides, float(eps)), make,
         [x, mean, var, gy, gamma, gx, ggamma, gbeta])
    return gx, ggamma, gbeta


# ----------------------------------------------------------------------------------
# ReLU: elementwise, so any dense array is one flat run of memory
# ----------------------------------------------------------------------------------

def flat(a):
    """A 1-D view of a dense array in memory order (NCHW or channels-last), else None."""
    if a.flags.c_contiguous:
        return a.reshape(-1)
    if is_channels_last(a):
        return a.transpose(0, 2, 3, 1).reshape(-1)
    return None


def _relu_pd(size):
    desc = rt.md((size,), X)
    pd = rt.new_handle()
    rt.check(rt.lib().dnnl_eltwise_forward_primitive_desc_create(
        ctypes.byref(pd), rt.engine(), _FORWARD_TRAINING, _RELU_USE_DST, desc, desc, 0.0,
        0.0, None), 'eltwise_forward_primitive_desc_create')
    return pd, desc


def relu_forward(x):
    """max(x, 0) of a dense array (see :func:`flat`), as a new array laid out as x."""
    y = numpy.empty_like(x)

    def make():
        pd, desc = _relu_pd(x.size)
        return _finish(pd, [(_SRC, desc, None, True), (_DST, desc, None, False)])
    rt.run_plan(('relu', x.size), make, [flat(x), flat(y)])
    return y


def relu_backward(y, gy):
    """gy where y > 0, else 0 (y: the ReLU's output; y and gy laid out alike)."""
    gx = numpy.empty_like(gy)

    def make():
        hint, desc = _relu_pd(y.size)
        pd = rt.new_handle()
        rt.check(rt.lib().dnnl_eltwise_backward_primitive_desc_create(
            ctypes.byref(pd), rt.engine(), _RELU_USE_DST, desc, desc, desc, 0.0, 0.0, hint,
            None), 'eltwise_backward_primitive_desc_create')
        rt.destroy(('pd', hint))
        return _finish(pd, [(_DST, desc, None, True), (_DIFF_DST, desc, None, True),
                            (_DIFF_SRC, desc, None, False)])
    rt.run_plan(('relu_grad', y.size), make, [flat(y), flat(gy), flat(gx)])
    return gx
