"""The oneDNN part of the fast CPU path (tutorial_lib/infra/onednn.py, onednn_ops.py): every
operation agrees with stock Chainer, in every memory layout it accepts; skipped where
libdnnl is not installed (it is a Linux x86-64 requirement)."""
import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest

import tutorial_lib  # noqa: F401  (numpy 2 compat before chainer)
import chainer
import chainer.functions as F

from tutorial_lib.infra import fastbn, fastconv, fastpath, fastrelu, onednn, onednn_ops
from tutorial_lib.models import UNET
from call_counter import Counter

pytestmark = pytest.mark.skipif(not onednn.available(),
                                reason='libdnnl not loaded: %s' % onednn.load_error())


def _channels_last(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _channel_slice(a):
    """The same values, not contiguous: every other channel of a twice-as-deep array."""
    n, c, h, w = a.shape
    big = np.zeros((n, 2 * c, h, w), a.dtype)
    big[:, ::2] = a
    return big[:, ::2]


LAYOUTS = {'nchw': lambda a: a, 'channels_last': _channels_last, 'strided': _channel_slice}


def _close(a, b, tol=2e-5):
    scale = max(float(np.abs(b).max()), 1e-6)
    return float(np.abs(a - b).max()) / scale < tol


def _grads(fn, inputs, gy_seed=3):
    """Output and input gradients of fn(*inputs) for a fixed random output gradient."""
    vs = [chainer.Variable(a.copy() if a.flags.c_contiguous else a) for a in inputs]
    y = fn(*vs)
    y.grad = np.random.RandomState(gy_seed).randn(*y.shape).astype(np.float32)
    y.backward()
    return [np.asarray(y.array)] + [v.grad for v in vs]


CONVS = [  # (x shape, W shape, stride, pad): small layers run channels-last, wide ones blocked
    ((2, 3, 9, 7), (8, 3, 3, 3), 1, 1),
    ((2, 8, 16, 16), (16, 8, 4, 4), 2, 1),
    ((2, 32, 8, 10), (48, 32, 3, 3), 1, 1),
    ((3, 40, 8, 8), (24, 40, 4, 4), 2, 1),
]


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
@pytest.mark.parametrize('xs,ws,s,p', CONVS)
def test_convolution_matches_stock(xs, ws, s, p, layout):
    rs = np.random.RandomState(0)
    x = LAYOUTS[layout](rs.randn(*xs).astype(np.float32))
    W = (rs.randn(*ws) * 0.1).astype(np.float32)
    b = rs.randn(ws[0]).astype(np.float32)
    conv = lambda x_, W_, b_: F.convolution_2d(x_, W_, b_, stride=s, pad=p)  # noqa: E731
    with fastpath.stock():
        want = _grads(conv, [x, W, b])
    got = _grads(conv, [x, W, b])
    for g, w in zip(got, want):
        assert g.shape == w.shape and _close(g, w)


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
@pytest.mark.parametrize('xs,ws', [((2, 32, 5, 6), (32, 16, 4, 4)),
                                   ((2, 64, 4, 4), (64, 48, 4, 4))])
def test_deconvolution_matches_stock(xs, ws, layout):
    rs = np.random.RandomState(1)
    x = LAYOUTS[layout](rs.randn(*xs).astype(np.float32))
    W = (rs.randn(*ws) * 0.1).astype(np.float32)
    b = rs.randn(ws[1]).astype(np.float32)
    deconv = lambda x_, W_, b_: F.deconvolution_2d(x_, W_, b_, stride=2, pad=1)  # noqa: E731
    with fastpath.stock():
        want = _grads(deconv, [x, W, b])
    got = _grads(deconv, [x, W, b])
    for g, w in zip(got, want):
        assert g.shape == w.shape and _close(g, w)


def test_small_layers_return_channels_last_and_wide_ones_nchw():
    rs = np.random.RandomState(2)
    small = onednn_ops.conv_forward(rs.randn(2, 8, 8, 8).astype(np.float32),
                                    rs.randn(16, 8, 3, 3).astype(np.float32), None,
                                    (1, 1), (1, 1), (8, 8))
    wide = onednn_ops.conv_forward(rs.randn(2, 32, 8, 8).astype(np.float32),
                                   rs.randn(64, 32, 3, 3).astype(np.float32), None,
                                   (1, 1), (1, 1), (8, 8))
    follows = onednn_ops.conv_forward(_channels_last(rs.randn(2, 32, 8, 8).astype(np.float32)),
                                      rs.randn(64, 32, 3, 3).astype(np.float32), None,
                                      (1, 1), (1, 1), (8, 8))
    assert onednn_ops.is_channels_last(small)
    assert wide.flags.c_contiguous
    assert onednn_ops.is_channels_last(follows)  # a channels-last input keeps the layout


@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_batch_normalization_matches_stock(layout):
    rs = np.random.RandomState(7)  # not _grads' seed: gy must not be a function of x
    x = LAYOUTS[layout]((rs.randn(4, 6, 5, 7) * 3 + 1).astype(np.float32))
    gamma = rs.rand(6).astype(np.float32) + 0.5
    beta = rs.randn(6).astype(np.float32)

    def run():
        mean, var = np.zeros(6, np.float32), np.ones(6, np.float32)
        out = _grads(lambda x_, g_, b_: F.batch_normalization(
            x_, g_, b_, running_mean=mean, running_var=var), [x, gamma, beta])
        return out + [mean, var]
    with fastpath.stock():
        want = run()
    got = run()
    for g, w in zip(got, want):
        assert _close(g, w, 1e-4)
    with chainer.using_config('train', False):  # test mode: the running statistics
        with fastpath.stock():
            want = F.fixed_batch_normalization(x, gamma, beta, want[-2], want[-1]).array
        got_y = F.fixed_batch_normalization(x, gamma, beta, got[-2], got[-1]).array
    assert _close(got_y, want, 1e-5)


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_relu_is_exact(layout):
    rs = np.random.RandomState(4)
    x = LAYOUTS[layout](rs.randn(3, 5, 6, 7).astype(np.float32))
    with fastpath.stock():
        want = _grads(F.relu, [x])
    got = _grads(F.relu, [x])
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


def _unet_grads(width):
    np.random.seed(0)
    model = UNET(in_ch=1, width=width)
    rs = np.random.RandomState(1)
    x = rs.rand(4, 1, 32, 32).astype(np.float32)
    t = rs.rand(4, 3, 32, 32).astype(np.float32)
    loss = F.mean_squared_error(model(x), t)
    model.cleargrads()
    loss.backward()
    return float(loss.array), {n: p.grad.copy() for n, p in model.namedparams()}


@pytest.mark.parametrize('width', [1 / 8, 0.25])
def test_unet_step_matches_stock(width, monkeypatch):
    """The whole classroom step: loss and every parameter's gradient (the biases of layers
    followed by batch normalization have a gradient of zero up to rounding: compared to
    the gradients' overall scale)."""
    with fastpath.stock():
        loss0, want = _unet_grads(width)
    loss1, got = _unet_grads(width)
    scale = max(float(np.abs(g).max()) for g in want.values())
    assert abs(loss1 - loss0) < 1e-5 * abs(loss0)
    for name, g in want.items():
        assert float(np.abs(got[name] - g).max()) < 1e-4 * scale, name
    # and the numpy fast path (what runs where oneDNN is not installed) agrees too
    for part in (fastconv, fastbn, fastrelu):
        monkeypatch.setattr(part, 'USE_ONEDNN', False)
    _, numpy_path = _unet_grads(width)
    for name, g in want.items():
        assert float(np.abs(numpy_path[name] - g).max()) < 1e-4 * scale, name


def test_gy_shared_within_one_backward_only(monkeypatch):
    """Inside a convolution's backward gy is reordered once for both gradients; outside it
    nothing is reused: an array changed in place gives a new result."""
    _, with_sharing = _unet_grads(0.25)
    with monkeypatch.context() as m:
        m.setattr(onednn, 'sharing', contextlib.nullcontext)
        _, without = _unet_grads(0.25)
    assert all(np.array_equal(with_sharing[k], without[k]) for k in without)
    assert getattr(onednn._shared, 'arrays', None) is None
    rs = np.random.RandomState(5)
    x = rs.randn(2, 32, 8, 8).astype(np.float32)
    W = rs.randn(64, 32, 3, 3).astype(np.float32)
    y1 = onednn_ops.conv_forward(x, W, None, (1, 1), (1, 1), (8, 8))
    x *= 2
    y2 = onednn_ops.conv_forward(x, W, None, (1, 1), (1, 1), (8, 8))
    assert _close(y2, 2 * y1)


def test_switched_off_by_environment():
    code = ('import tutorial_lib; from tutorial_lib.infra import onednn; '
            'print(onednn.available())')
    env = dict(os.environ, TUTORIAL_ONEDNN='0')
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == 'False'


def test_kernels_are_named():
    rs = np.random.RandomState(6)
    x = rs.randn(1, 32, 8, 8).astype(np.float32)
    W = rs.randn(64, 32, 3, 3).astype(np.float32)
    onednn_ops.conv_forward(x, W, None, (1, 1), (1, 1), (8, 8))
    names = [p.impl for p in onednn._plans.values()]
    assert names and all(isinstance(n, str) and n for n in names)


def test_fast_path_routes_float32_to_onednn_and_stock_does_not(monkeypatch):
    ops = ('conv_forward', 'conv_grad_w', 'deconv_forward', 'bn_train_forward',
           'bn_train_backward', 'relu_forward', 'relu_backward')
    counters = [Counter(monkeypatch, onednn_ops, op) for op in ops]
    with fastpath.stock():
        _unet_grads(1 / 8)
    assert [c.calls for c in counters] == [0] * len(ops)
    _unet_grads(1 / 8)
    assert all(c.calls > 0 for c in counters), [c.calls for c in counters]
    # float64 stays with the numpy engine (oneDNN's float64 kernels are reference code)
    before = [c.calls for c in counters]
    x = np.random.RandomState(0).randn(2, 3, 8, 8)
    F.convolution_2d(x, np.random.RandomState(1).randn(4, 3, 3, 3), pad=1)
    assert [c.calls for c in counters] == before


def test_no_kernel_falls_back_to_numpy(monkeypatch):
    """A geometry oneDNN has no kernel for: the numpy engine computes it, and the failed
    plan is remembered (made once, not at every call)."""
    tries = []

    def no_kernel():
        tries.append(1)
        raise onednn.OneDNNError('unimplemented')
    for _ in range(2):
        with pytest.raises(onednn.OneDNNError):
            onednn.get_plan(('test-only key',), no_kernel)
    assert len(tries) == 1

    def refuse(*args, **kwargs):
        raise onednn.OneDNNError('unimplemented')
    for op in ('conv_forward', 'conv_grad_w', 'deconv_forward'):
        monkeypatch.setattr(onednn_ops, op, refuse)
    rs = np.random.RandomState(8)
    x, W = rs.randn(2, 3, 8, 8).astype(np.float32), rs.randn(4, 3, 3, 3).astype(np.float32)
    conv = lambda x_, W_: F.convolution_2d(x_, W_, pad=1)  # noqa: E731
    with fastpath.stock():
        want = _grads(conv, [x, W])
    got = _grads(conv, [x, W])
    assert all(_close(g, w) for g, w in zip(got, want))


def test_bias_gradient_sum_of_channels_last_arrays():
    """sum over (0, 2, 3) of a channels-last array (a convolution's bias gradient) is read
    as long rows; same values as numpy's, and stock Chainer's code is back after disable."""
    from chainer.functions.math import sum as chainer_sum
    rs = np.random.RandomState(9)
    for shape in [(8, 16, 32, 32), (3, 5, 7, 9), (1, 3, 1, 1)]:
        x = _channels_last(rs.randn(*shape).astype(np.float32) + 3)
        got = F.sum(x, axis=(0, 2, 3)).array
        want = np.ascontiguousarray(x).astype(np.float64).sum(axis=(0, 2, 3))
        assert got.dtype == np.float32 and got.shape == (shape[1],)
        assert np.abs(got - want).max() < 1e-5 * np.abs(want).max()
    with fastpath.stock():
        assert chainer_sum.Sum.forward is fastconv._SUM_ORIGINAL
    assert chainer_sum.Sum.forward is fastconv._sum_forward


def test_plan_cache_is_bounded(monkeypatch):
    """The least recently used plans go beyond MAX_PLANS; evicted ones are made again."""
    monkeypatch.setattr(onednn, 'MAX_PLANS', 3)
    rs = np.random.RandomState(10)
    W = rs.randn(4, 3, 3, 3).astype(np.float32)
    for size in (5, 6, 7, 8, 9, 5):
        x = rs.randn(1, 3, size, size).astype(np.float32)
        y = onednn_ops.conv_forward(x, W, None, (1, 1), (1, 1), (size, size))
        with fastpath.stock():
            want = F.convolution_2d(x, W, pad=1).array
        assert _close(y, want)
    assert len(onednn._plans) <= 3


def test_batch_normalization_without_kernel_falls_back(monkeypatch):
    def refuse(*args, **kwargs):
        raise onednn.OneDNNError('unimplemented')
    for op in ('bn_train_forward', 'bn_train_backward', 'bn_inference'):
        monkeypatch.setattr(onednn_ops, op, refuse)
    rs = np.random.RandomState(11)
    x = _channels_last(rs.randn(2, 4, 5, 5).astype(np.float32))
    gamma, beta = rs.rand(4).astype(np.float32) + 0.5, rs.randn(4).astype(np.float32)
    bn = lambda x_, g_, b_: F.batch_normalization(x_, g_, b_)  # noqa: E731
    with fastpath.stock():
        want = _grads(bn, [x, gamma, beta])
    got = _grads(bn, [x, gamma, beta])
    assert all(_close(g, w, 1e-4) for g, w in zip(got, want))
