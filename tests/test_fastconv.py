"""tutorial_lib.infra.fastconv: the fast CPU conv/deconv path must compute what stock Chainer
computes (to float rounding), route to stock Chainer when switched off, and fall back to
stock Chainer for configurations it does not handle."""
import contextlib
import copy

import numpy as np
import pytest

import tutorial_lib  # noqa: F401  (compat shim before chainer)
from tutorial_lib.infra import fastconv, fastpath, im2col, threads
import chainer
import chainer.functions as F
from chainer import gradient_check
from chainer.utils import conv as chainer_conv
from tutorial_lib.models import DIS, UNET


@pytest.fixture(autouse=True)
def _restore_state():
    was = fastpath.is_enabled()
    yield
    if was:
        fastpath.enable()
    else:
        fastpath.disable()


@contextlib.contextmanager
def tuning(block_bytes, min_cols, n_threads, deep=1.0):
    """Force the blocked code paths (many blocks, partial rows, several threads, the
    split by channels or by columns) on small arrays."""
    knobs = [(fastconv, 'BLOCK_BYTES', block_bytes), (fastconv, 'MIN_COLS', min_cols),
             (threads, 'THREADS', n_threads), (fastconv, 'DEEP', deep)]
    saved = [getattr(module, name) for module, name, _ in knobs]
    for module, name, value in knobs:
        setattr(module, name, value)
    try:
        yield
    finally:
        for (module, name, _), value in zip(knobs, saved):
            setattr(module, name, value)


def relerr(a, b, floor=1e-30):
    """Largest difference relative to the largest magnitude (at least ``floor``)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    scale = max(np.abs(a).max(), np.abs(b).max(), floor)
    return float(np.abs(a - b).max() / scale)


def assert_grads_close(g_ref, g_got, tol, floor_frac=1e-3):
    """Every parameter gradient agrees. The biases of convolutions followed by
    BatchNormalization have a true gradient of 0 (pure rounding noise), so each
    difference is measured against at least ``floor_frac`` times the largest gradient
    of the whole network."""
    assert g_ref.keys() == g_got.keys()
    floor = floor_frac * max(np.abs(g).max() for g in g_ref.values())
    for name in g_ref:
        assert relerr(g_ref[name], g_got[name], floor) < tol, name


def forward_backward(fn, arrays, seed=1):
    """Output and the gradients of every input for a fixed random upstream gradient."""
    variables = [None if a is None else chainer.Variable(a.copy()) for a in arrays]
    y = fn(*variables)
    y.grad = np.random.RandomState(seed).standard_normal(y.shape).astype(y.dtype)
    y.backward()
    return [y.array] + [None if v is None else v.grad for v in variables]


def conv_fn(stride, pad, cover_all=False):
    return lambda x, W, b=None: F.convolution_2d(x, W, b, stride=stride, pad=pad,
                                                 cover_all=cover_all)


def deconv_fn(stride, pad, outsize=None):
    return lambda x, W, b=None: F.deconvolution_2d(x, W, b, stride=stride, pad=pad,
                                                   outsize=outsize)


def inputs(kind, n, cin, cout, k, h, w, bias, dtype, seed=0):
    rs = np.random.RandomState(seed)
    x = rs.standard_normal((n, cin, h, w)).astype(dtype)
    wshape = (cout, cin, k, k) if kind == 'conv' else (cin, cout, k, k)
    W = (rs.standard_normal(wshape) / np.sqrt(cin * k * k)).astype(dtype)
    b = rs.standard_normal(cout).astype(dtype) if bias else None
    return [x, W, b]


# The U-Net and the discriminator use exactly these two: 3x3 stride 1 pad 1
# (convolutions) and 4x4 stride 2 pad 1 (convolutions and deconvolutions).
KSP = [(3, 1, 1), (4, 2, 1)]
# odd/even, square/non-square sides, batch 1 and > 1
SHAPES = [(1, 8, 8), (3, 7, 9), (2, 16, 12), (2, 5, 6)]
# fewer, equal and more output than input channels (stride 1 takes different routes)
CHANNELS = [(3, 5), (4, 4), (6, 2)]


def compare(kind, ksp, shape, ch, bias, dtype, tol, cover_all=False):
    (k, s, p), (n, h, w), (cin, cout) = ksp, shape, ch
    fn = conv_fn(s, p, cover_all) if kind == 'conv' else deconv_fn(s, p)
    arrays = inputs(kind, n, cin, cout, k, h, w, bias, dtype)
    if not bias:
        arrays = arrays[:2]
    with fastpath.stock():
        ref = forward_backward(fn, arrays)
    with fastpath.fast():
        got = forward_backward(fn, arrays)
    for r, g in zip(ref, got):
        assert relerr(r, g) < tol


@pytest.mark.parametrize('kind', ['conv', 'deconv'])
@pytest.mark.parametrize('ksp', KSP)
@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('ch', CHANNELS)
@pytest.mark.parametrize('bias', [True, False])
def test_matches_stock_float64(kind, ksp, shape, ch, bias):
    compare(kind, ksp, shape, ch, bias, np.float64, 1e-12)


@pytest.mark.parametrize('kind', ['conv', 'deconv'])
@pytest.mark.parametrize('ksp', KSP)
@pytest.mark.parametrize('ch', CHANNELS)
def test_matches_stock_float32(kind, ksp, ch):
    compare(kind, ksp, (3, 10, 14), ch, True, np.float32, 1e-5)


@pytest.mark.parametrize('ksp', KSP + [(1, 1, 0), (5, 3, 2), (3, 2, 0), (2, 2, 0)])
@pytest.mark.parametrize('cover_all', [False, True])
def test_other_kernels_strides_pads(ksp, cover_all):
    for shape in [(2, 9, 11), (1, 12, 12)]:
        for ch in [(3, 5), (5, 3)]:
            compare('conv', ksp, shape, ch, True, np.float64, 1e-12, cover_all=cover_all)
            if not cover_all:
                compare('deconv', ksp, shape, ch, True, np.float64, 1e-12)


def test_deconv_outsize():
    # outsize makes Chainer use cover_all in the deconvolution's backward
    arrays = inputs('deconv', 2, 3, 4, 4, 5, 6, True, np.float64)
    fn = deconv_fn(2, 1, outsize=(11, 13))
    with fastpath.stock():
        ref = forward_backward(fn, arrays)
    with fastpath.fast():
        got = forward_backward(fn, arrays)
    for r, g in zip(ref, got):
        assert relerr(r, g) < 1e-12


@pytest.mark.parametrize('block', [(1, 1, 1), (1, 1, 3), (64, 3, 2), (3000, 16, 2),
                                   (1 << 30, 1, 4), (1, 1, 3, 1e9), (1, 1, 3, 0),
                                   (3000, 16, 2, 1e9)])
@pytest.mark.parametrize('small_m', [0, 32])
def test_blocked_paths(block, small_m, monkeypatch):
    """Blocks of partial rows, of several samples and of one sample, on one or several
    threads, give the same sums; weight gradients as g x col^T (SMALL_M = 0) and as the
    transposed product col x g^T (every test layer has at most 32 channels)."""
    monkeypatch.setattr(fastconv, 'SMALL_M', small_m)
    with tuning(*block):
        for ksp in KSP:
            for kind in ('conv', 'deconv'):
                for ch in CHANNELS:
                    compare(kind, ksp, (3, 11, 9), ch, True, np.float64, 1e-12)
                # small maps, many channels: the weight gradient's other route
                for ch in [(4, 16), (16, 4)]:
                    compare(kind, ksp, (3, 2, 4), ch, True, np.float64, 1e-12)


def test_im2col_col2im_match_chainer():
    rs = np.random.RandomState(0)
    x = rs.standard_normal((3, 4, 9, 11))
    for k, s, p in [(3, 1, 1), (4, 2, 1), (5, 3, 2), (2, 2, 0)]:
        for cover_all in (False, True):
            oh = chainer_conv.get_conv_outsize(9, k, s, p, cover_all)
            ow = chainer_conv.get_conv_outsize(11, k, s, p, cover_all)
            ref = chainer_conv.im2col_cpu(x, k, k, s, s, p, p, cover_all=cover_all)
            got = im2col.im2col(x, k, k, s, s, p, p, oh, ow)
            got = got.reshape(4, k, k, 3, oh, ow).transpose(3, 0, 1, 2, 4, 5)
            assert np.array_equal(ref, got)
            col = rs.standard_normal(ref.shape)
            np.testing.assert_allclose(
                im2col.col2im(col, s, s, p, p, 9, 11),
                chainer_conv.col2im_cpu(col, s, s, p, p, 9, 11), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize('kind', ['conv', 'deconv'])
@pytest.mark.parametrize('ksp', KSP)
@pytest.mark.parametrize('ch', [(2, 3), (3, 2)])
def test_check_backward_fast(kind, ksp, ch):
    k, s, p = ksp
    fastpath.enable()
    x, W, b = inputs(kind, 2, ch[0], ch[1], k, 6, 5, True, np.float64, seed=3)
    fn = conv_fn(s, p) if kind == 'conv' else deconv_fn(s, p)
    y = fn(x, W, b)
    rs = np.random.RandomState(4)
    gy = rs.standard_normal(y.shape)
    gradient_check.check_backward(fn, (x, W, b), gy, dtype=np.float64,
                                  atol=1e-6, rtol=1e-6)
    ggs = tuple(rs.standard_normal(a.shape) for a in (x, W, b))
    gradient_check.check_double_backward(fn, (x, W, b), gy, ggs, dtype=np.float64,
                                         atol=1e-6, rtol=1e-6)


def grads_of(model, x, t, fast):
    model = copy.deepcopy(model)
    with (fastpath.fast() if fast else fastpath.stock()):
        y = model(x)
        loss = F.mean_squared_error(y, t) if t.dtype.kind == 'f' else \
            F.softmax_cross_entropy(y, t)
        model.cleargrads()
        loss.backward()
    return y.array, {name: p.grad for name, p in model.namedparams()}


@pytest.mark.parametrize('in_ch', [1, 4])
def test_unet_gradients_match_stock(in_ch):
    np.random.seed(in_ch)
    with chainer.using_config('dtype', np.float64):
        unet = UNET(in_ch=in_ch, width=1 / 8)
    rs = np.random.RandomState(0)
    x = rs.standard_normal((2, in_ch, 32, 48))
    t = rs.standard_normal((2, 3, 32, 48))
    y_ref, g_ref = grads_of(unet, x, t, fast=False)
    y_got, g_got = grads_of(unet, x, t, fast=True)
    assert relerr(y_ref, y_got) < 1e-11
    assert_grads_close(g_ref, g_got, 1e-9)


def test_unet_float32_close_to_stock():
    np.random.seed(0)  # Chainer's initializers draw from numpy's global generator
    unet = UNET(in_ch=1, width=1 / 8)
    rs = np.random.RandomState(1)
    x = rs.standard_normal((2, 1, 32, 32)).astype(np.float32)
    t = rs.standard_normal((2, 3, 32, 32)).astype(np.float32)
    y_ref, g_ref = grads_of(unet, x, t, fast=False)
    y_got, g_got = grads_of(unet, x, t, fast=True)
    assert relerr(y_ref, y_got) < 1e-4
    assert_grads_close(g_ref, g_got, 1e-3, floor_frac=1e-2)


def test_dis_gradients_match_stock():
    np.random.seed(2)
    with chainer.using_config('dtype', np.float64):
        dis = DIS(width=1 / 4)
    rs = np.random.RandomState(2)
    x = rs.standard_normal((3, 3, 32, 32))
    dis(x)  # let the Linear layer size itself
    t = np.array([0, 1, 0], dtype=np.int32)
    y_ref, g_ref = grads_of(dis, x, t, fast=False)
    y_got, g_got = grads_of(dis, x, t, fast=True)
    assert relerr(y_ref, y_got) < 1e-11
    assert_grads_close(g_ref, g_got, 1e-9)


from call_counter import Counter  # noqa: E402


def test_switches_route_to_fast_or_stock(monkeypatch):
    # the numpy engine's routing (test_onednn.py checks that oneDNN takes float32 when loaded)
    monkeypatch.setattr(fastconv, 'USE_ONEDNN', False)
    fast = [Counter(monkeypatch, fastconv, name) for name in
            ('conv2d_forward', 'conv2d_grad_w', 'deconv2d_forward')]
    stock_im2col = Counter(monkeypatch, chainer_conv, 'im2col_cpu')
    stock_col2im = Counter(monkeypatch, chainer_conv, 'col2im_cpu')
    arrays = inputs('conv', 2, 3, 4, 4, 8, 8, True, np.float32)
    fn = conv_fn(2, 1)

    fastpath.enable()
    assert fastpath.is_enabled()
    forward_backward(fn, arrays)  # forward, grad-W and grad-x (a deconvolution)
    assert [c.calls for c in fast] == [1, 1, 1]
    assert stock_im2col.calls == stock_col2im.calls == 0

    with fastpath.stock():
        assert not fastpath.is_enabled()
        forward_backward(fn, arrays)
    assert fastpath.is_enabled()
    assert [c.calls for c in fast] == [1, 1, 1]
    assert stock_im2col.calls == 2 and stock_col2im.calls == 1

    fastpath.disable()
    assert not fastpath.is_enabled()
    from chainer.functions.connection import convolution_2d, deconvolution_2d
    for cls in (convolution_2d.Convolution2DFunction, convolution_2d.Convolution2DGradW,
                deconvolution_2d.Deconvolution2DFunction):
        assert cls._forward_cpu_core is fastconv._ORIGINAL[cls]
    forward_backward(fn, arrays)
    assert [c.calls for c in fast] == [1, 1, 1]
    assert stock_im2col.calls == 4


@pytest.mark.parametrize('case', ['dilate', 'groups', 'float16', 'mixed'])
def test_unsupported_configurations_fall_back(monkeypatch, case):
    fast = [Counter(monkeypatch, fastconv, name) for name in
            ('conv2d_forward', 'conv2d_grad_w', 'deconv2d_forward')]
    rs = np.random.RandomState(0)
    x = rs.standard_normal((2, 4, 9, 9)).astype(np.float32)
    W = rs.standard_normal((6, 4, 3, 3)).astype(np.float32)
    kwargs = {}
    if case == 'dilate':
        kwargs['dilate'] = 2
    elif case == 'groups':
        kwargs['groups'] = 2
        W = W[:, :2].copy()
    elif case == 'float16':
        x, W = x.astype(np.float16), W.astype(np.float16)
    elif case == 'mixed':
        x = x.astype(np.float64)

    def fn(x, W):
        return F.convolution_2d(x, W, stride=1, pad=1, **kwargs)
    with fastpath.stock():
        ref = forward_backward(fn, [x, W])
    fastpath.enable()
    got = forward_backward(fn, [x, W])
    assert sum(c.calls for c in fast) == 0
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(r, g)


def test_enable_from_env():
    assert fastpath.enable_from_env({'TUTORIAL_FASTCONV': '0'}) is False
    assert not fastpath.is_enabled()
    assert fastpath.enable_from_env({'TUTORIAL_FASTCONV': 'off'}) is False
    assert fastpath.enable_from_env({}) is True
    assert fastpath.is_enabled()
    assert fastpath.enable_from_env({'TUTORIAL_FASTCONV': '1'}) is True


def test_train_mode_off_and_no_backprop():
    """Inference (no graph) goes through the same fast forward."""
    unet = UNET(in_ch=1, width=1 / 8)
    x = np.random.RandomState(5).standard_normal((1, 1, 48, 32)).astype(np.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        with fastpath.stock():
            ref = unet(x).array
        with fastpath.fast():
            got = unet(x).array
    assert relerr(ref, got) < 1e-5


def test_deterministic():
    """Same inputs, same gradients, bit for bit (the blocks of the weight gradient are
    summed in a fixed order whatever thread ran them)."""
    np.random.seed(3)
    unet = UNET(in_ch=1, width=1 / 8)
    x = np.random.RandomState(6).standard_normal((2, 1, 32, 32)).astype(np.float32)
    t = np.random.RandomState(7).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with tuning(2048, 8, 3):
        first = grads_of(unet, x, t, fast=True)
        second = grads_of(unet, x, t, fast=True)
    np.testing.assert_array_equal(first[0], second[0])
    for name in first[1]:
        np.testing.assert_array_equal(first[1][name], second[1][name])


def test_threads_errors_and_blas_setting_restored():
    blas = threads.get_blas()
    before = blas.get() if blas.get else None

    def work(i):
        if i == 5:
            raise ValueError('block 5')
        return i * i
    assert threads.run(range(8), lambda i: i * i, 3) == [i * i for i in range(8)]
    with pytest.raises(ValueError, match='block 5'):
        threads.run(range(40), work, 3)
    if before is not None:
        assert blas.get() == before
    info = threads.blas_info()
    assert info['fastconv_threads'] >= 1


def test_empty_batch_falls_back(monkeypatch):
    fast = [Counter(monkeypatch, fastconv, name) for name in
            ('conv2d_forward', 'conv2d_grad_w', 'deconv2d_forward')]
    fastpath.enable()
    x = np.zeros((0, 3, 8, 8), np.float32)
    W = np.ones((4, 3, 3, 3), np.float32)
    assert F.convolution_2d(x, W, pad=1).shape == (0, 4, 8, 8)
    assert sum(c.calls for c in fast) == 0


def test_deconv_weight_gradient_without_input_gradient():
    """Stock Chainer 7.8.1 on CPU fails here (its backward calls _set_cover_all with
    arrays); the fast forward records cover_all like the GPU forward does."""
    rs = np.random.RandomState(8)
    x = rs.standard_normal((2, 3, 5, 5))
    W = chainer.Variable(rs.standard_normal((3, 4, 4, 4)))
    fastpath.enable()
    F.sum(F.deconvolution_2d(x, W, stride=2, pad=1)).backward()
    with fastpath.stock():
        Wv = chainer.Variable(W.array.copy())
        y = F.deconvolution_2d(chainer.Variable(x), Wv, stride=2, pad=1)
        F.sum(y).backward()  # with x requiring grad, stock works: compare with it
    np.testing.assert_allclose(W.grad, Wv.grad, rtol=1e-12)


def test_controls_numpys_own_blas():
    """OpenCV wheels bundle an OpenBLAS of their own; the thread switch must act on the
    one numpy uses (the wheel's numpy.libs copy when there is one)."""
    import glob
    import os
    import cv2  # noqa: F401  (loads its OpenBLAS into the process)
    blas = threads.Blas()
    site = os.path.dirname(os.path.dirname(np.__file__))
    bundled = glob.glob(os.path.join(site, 'numpy.libs', '*openblas*'))
    if bundled and blas.path is not None:
        assert os.path.dirname(blas.path) == os.path.dirname(bundled[0])


def test_bench_quick_smoke(tmp_path, capsys):
    from tutorial_lib.infra import bench
    out = tmp_path / 'bench.json'
    was = fastpath.is_enabled()
    result = bench.main(['--quick', '--out', str(out)])
    assert fastpath.is_enabled() == was
    import json
    saved = json.loads(out.read_text())
    for key in ('train128_full_speedup', 'train128_classroom_speedup', 'infer512_speedup',
                'dis_step_speedup', 'sgemm_peak_gflops', 'train128_full_fast_gflops',
                'train128_full_stock_s', 'train128_full_fast_s'):
        assert key in saved and saved[key] > 0, key
    assert saved['quick'] is True and result['repeats'] == 1
    assert '| train128_full |' in capsys.readouterr().out


@pytest.mark.parametrize('env, expected', [(None, True), ('0', False), ('1', True)])
def test_import_enables_by_default(env, expected):
    """``import tutorial_lib`` turns the fast path on unless TUTORIAL_FASTCONV=0."""
    import os
    import subprocess
    import sys
    environ = dict(os.environ)
    environ.pop('TUTORIAL_FASTCONV', None)
    if env is not None:
        environ['TUTORIAL_FASTCONV'] = env
    code = ('import tutorial_lib, sys; m = sys.modules.get("tutorial_lib.infra.fastpath"); '
            'print(bool(m and m.is_enabled()))')
    out = subprocess.run([sys.executable, '-c', code], env=environ, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == str(expected)
