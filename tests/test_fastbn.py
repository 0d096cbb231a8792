"""tutorial_lib.infra.fastbn: the fused CPU batch normalization must compute what stock Chainer
computes (to float rounding) in test and train mode, keep every gradient (double backward
included) Chainer's, be switched by fastpath.enable/disable/stock, and fall back to
Chainer's code for what it does not handle."""
import contextlib
import copy

import numpy as np
import pytest

import tutorial_lib  # noqa: F401  (compat shim before chainer)
from tutorial_lib.infra import fastbn, fastconv, fastpath, onednn, onednn_ops, threads
import chainer
import chainer.functions as F
from chainer import gradient_check
from chainer.functions.normalization import batch_normalization as chainer_bn
from tutorial_lib.models import UNET

TOL = {np.float64: 1e-12, np.float32: 2e-6}


@pytest.fixture(autouse=True)
def _restore_state():
    was = fastpath._state()
    yield
    fastpath._restore(was)


@contextlib.contextmanager
def tiny_blocks(n_threads=2):
    """Force many blocks (channel runs, plane pieces, sample runs) and several threads."""
    saved = fastbn.BLOCK_BYTES, fastbn.PARALLEL_BYTES, threads.THREADS
    fastbn.BLOCK_BYTES, fastbn.PARALLEL_BYTES, threads.THREADS = 64, 0, n_threads
    try:
        yield
    finally:
        fastbn.BLOCK_BYTES, fastbn.PARALLEL_BYTES, threads.THREADS = saved


def relerr(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-30))


def bn_inputs(shape, dtype, seed=0, offset=3.0):
    rs = np.random.RandomState(seed)
    c = shape[1]
    x = (rs.standard_normal(shape) * 2 + offset).astype(dtype)
    gamma = rs.uniform(0.5, 1.5, c).astype(dtype)
    beta = rs.standard_normal(c).astype(dtype)
    mean = (rs.standard_normal(c) + offset).astype(dtype)
    var = rs.uniform(0.5, 4.0, c).astype(dtype)
    gy = rs.standard_normal(shape).astype(dtype)
    return x, gamma, beta, mean, var, gy


def run_fixed(x, gamma, beta, mean, var, gy):
    """Test-mode BN: y and the gradients of x, gamma, beta, mean, var."""
    vs = [chainer.Variable(a) for a in (x, gamma, beta, mean, var)]
    y = F.fixed_batch_normalization(*vs)
    y.grad = gy
    y.backward()
    return [y.array] + [v.grad for v in vs]


def run_train(x, gamma, beta, mean, var, gy):
    """Train-mode BN: y, grads of x, gamma, beta, and the updated running statistics."""
    vs = [chainer.Variable(a) for a in (x, gamma, beta)]
    rm, rv = mean.copy(), var.copy()
    y = F.batch_normalization(*vs, running_mean=rm, running_var=rv, decay=0.7)
    y.grad = gy
    y.backward()
    return [y.array] + [v.grad for v in vs] + [rm, rv]


def compare(run, shape, dtype, blocks=False):
    arrays = bn_inputs(shape, dtype)
    with fastpath.stock():
        ref = run(*arrays)
    with fastpath.fast(), (tiny_blocks() if blocks else contextlib.nullcontext()):
        got = run(*arrays)
    for i, (a, b) in enumerate(zip(ref, got)):
        assert relerr(a, b) < TOL[dtype], (i, relerr(a, b))


SHAPES = [(2, 3, 5, 7), (1, 4, 6, 6), (5, 4), (2, 3, 4, 5, 3)]


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('run', [run_fixed, run_train], ids=['test_mode', 'train_mode'])
def test_matches_stock(run, shape, dtype):
    compare(run, shape, dtype)


@pytest.mark.parametrize('shape', [(3, 5, 9, 11), (7, 2, 3, 3), (1, 2, 40, 40)])
@pytest.mark.parametrize('run', [run_fixed, run_train], ids=['test_mode', 'train_mode'])
def test_blocked_paths_match_stock(run, shape):
    compare(run, shape, np.float64, blocks=True)
    compare(run, shape, np.float32, blocks=True)


def test_blocks_cover_the_array():
    for n, c, m in [(3, 5, 99), (8, 32, 16384), (1, 64, 262144), (100, 10, 1), (2, 3, 0)]:
        for bb in (64, 1000, 256 << 10):
            saved = fastbn.BLOCK_BYTES, fastbn.PARALLEL_BYTES
            fastbn.BLOCK_BYTES, fastbn.PARALLEL_BYTES = bb, 0
            try:
                seen = np.zeros((n, c, m), int)
                for n0, n1, c0, c1, m0, m1 in fastbn._blocks(n, c, m, 4):
                    seen[n0:n1, c0:c1, m0:m1] += 1
            finally:
                fastbn.BLOCK_BYTES, fastbn.PARALLEL_BYTES = saved
            assert (seen == 1).all(), (n, c, m, bb)


@pytest.mark.parametrize('engine', ['numpy', 'onednn'])
def test_larger_float32_close_to_float64_truth(engine):
    """float32 results stay as close to the exact (float64) answer as stock's do (numpy's
    two-pass statistics, NCHW arrays). oneDNN (channels-last arrays) sums in float32: here
    (offset 10, 32K values per channel) measured 1.5e-6 relative error of the mean and up
    to 2.3e-5 of the gradients, bounded at 5e-5."""
    if engine == 'onednn' and not onednn.available():
        pytest.skip('libdnnl not loaded')
    x, gamma, beta, mean, var, gy = bn_inputs((2, 8, 64, 64), np.float64, offset=10.0)
    truth = run_train(x, gamma, beta, mean, var, gy)
    args32 = [a.astype(np.float32) for a in (x, gamma, beta, mean, var, gy)]
    if engine == 'onednn':  # channels-last x and gy: the layout oneDNN takes
        args32 = [np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
                  if a.ndim == 4 else a for a in args32]
        assert onednn_ops.is_channels_last(args32[0])
    with fastpath.stock():
        ref = run_train(*args32)
    with fastpath.fast():
        got = run_train(*args32)
    for t, a, b in zip(truth, ref, got):
        err_stock = relerr(t.astype(np.float32), a)
        err_fast = relerr(t.astype(np.float32), b)
        bound = max(4 * err_stock, 1e-6) if engine == 'numpy' else 5e-5
        assert err_fast < bound, (err_fast, err_stock)


@pytest.mark.parametrize('shape', [(2, 3, 4, 5), (3, 4)])
def test_check_backward_test_mode(shape):
    """Gradients of x, gamma, beta, mean and var (and second order) through the fast
    forward are right."""
    x, gamma, beta, mean, var, gy = bn_inputs(shape, np.float64, seed=1)
    rs = np.random.RandomState(2)
    ggs = [rs.standard_normal(a.shape) for a in (x, gamma, beta, mean, var)]
    fastpath.enable()

    def fn(*args):
        return F.fixed_batch_normalization(*args, eps=1e-3)
    gradient_check.check_backward(fn, (x, gamma, beta, mean, var), gy,
                                  atol=1e-6, rtol=1e-6)
    gradient_check.check_double_backward(fn, (x, gamma, beta, mean, var), gy, ggs,
                                         atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('shape', [(3, 3, 4, 5), (5, 4)])
def test_check_backward_train_mode(shape):
    x, gamma, beta, _, _, gy = bn_inputs(shape, np.float64, seed=3)
    rs = np.random.RandomState(4)
    ggs = [rs.standard_normal(a.shape) for a in (x, gamma, beta)]
    fastpath.enable()

    def fn(*args):
        return F.batch_normalization(*args, eps=1e-3)
    with tiny_blocks():
        gradient_check.check_backward(fn, (x, gamma, beta), gy, atol=1e-6, rtol=1e-6)
        gradient_check.check_double_backward(fn, (x, gamma, beta), gy, ggs,
                                             atol=1e-5, rtol=1e-5)


def unet_test_mode(model, x, fast):
    with (fastpath.fast() if fast else fastpath.stock()):
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            return model(x).array


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_unet_test_mode_matches_stock(dtype):
    np.random.seed(5)
    with chainer.using_config('dtype', dtype):
        unet = UNET(in_ch=4, width=1 / 8)
    rs = np.random.RandomState(6)
    # non-trivial running statistics, as after training
    for name, link in unet.namedlinks():
        if isinstance(link, chainer.links.BatchNormalization):
            c = link.avg_mean.shape[0]
            link.avg_mean[...] = rs.standard_normal(c)
            link.avg_var[...] = rs.uniform(0.2, 3.0, c)
            link.gamma.array[...] = rs.uniform(0.5, 1.5, c)
            link.beta.array[...] = rs.standard_normal(c)
    x = rs.uniform(0, 1, (2, 4, 32, 48)).astype(dtype)
    ref = unet_test_mode(copy.deepcopy(unet), x, fast=False)
    got = unet_test_mode(copy.deepcopy(unet), x, fast=True)
    assert relerr(ref, got) < (1e-12 if dtype == np.float64 else 1e-5)


from call_counter import Counter  # noqa: E402


def counters(monkeypatch):
    return [Counter(monkeypatch, fastbn, name)
            for name in ('bn_inference', 'bn_train_forward', 'bn_train_backward')]


def both_modes(shape=(2, 3, 4, 4), dtype=np.float32):
    arrays = bn_inputs(shape, dtype)
    run_fixed(*arrays)
    run_train(*arrays)


def test_switches_route_to_fast_or_stock(monkeypatch):
    fast = counters(monkeypatch)
    stock_apply = Counter(monkeypatch, chainer_bn, '_apply_bn_fwd')  # stock forwards use it
    fastpath.enable()
    assert fastpath.is_enabled() and fastbn.is_enabled()
    both_modes()
    assert [c.calls for c in fast] == [1, 1, 1] and stock_apply.calls == 0

    with fastpath.stock():
        assert not fastbn.is_enabled() and not fastpath.is_enabled()
        both_modes()
    assert fastpath.is_enabled() and fastbn.is_enabled()
    assert [c.calls for c in fast] == [1, 1, 1] and stock_apply.calls == 2

    fastpath.disable()
    assert not fastbn.is_enabled()
    for (cls, name), fn in fastbn._ORIGINAL.items():
        assert cls.__dict__[name] is fn
    both_modes()
    assert [c.calls for c in fast] == [1, 1, 1] and stock_apply.calls == 4

    with fastpath.fast():
        assert fastbn.is_enabled()
        both_modes()
    assert not fastbn.is_enabled() and not fastpath.is_enabled()
    assert [c.calls for c in fast] == [2, 2, 2] and stock_apply.calls == 4


def test_fastbn_alone_and_partial_state_restored():
    fastpath.enable()
    fastbn.disable()
    assert not fastpath.is_enabled()  # "enabled" means everything is fast
    conv_cls = fastconv._ConvF
    assert conv_cls.__dict__['_forward_cpu_core'] is fastconv._FAST[conv_cls]
    with fastpath.stock():
        assert conv_cls.__dict__['_forward_cpu_core'] is fastconv._ORIGINAL[conv_cls]
    # back to fast convolutions with stock batch normalization
    assert conv_cls.__dict__['_forward_cpu_core'] is fastconv._FAST[conv_cls]
    assert not fastbn.is_enabled()
    fastbn.enable()
    assert fastpath.is_enabled()


def _noncontiguous(shape, dtype):
    x, gamma, beta, mean, var, gy = bn_inputs(shape[:-1] + (2 * shape[-1],), dtype)
    return x[..., ::2], gamma, beta, mean, var, np.ascontiguousarray(gy[..., ::2])


FALLBACKS = {
    'float16': lambda: bn_inputs((2, 3, 4, 4), np.float16),
    'mixed': lambda: [a.astype(np.float64) if i in (1, 2, 3, 4) else a
                      for i, a in enumerate(bn_inputs((2, 3, 4, 4), np.float32))],
    'noncontiguous': lambda: _noncontiguous((2, 3, 4, 4), np.float64),
}


@pytest.mark.parametrize('case', sorted(FALLBACKS))
def test_unsupported_dtypes_and_layouts_fall_back(monkeypatch, case):
    arrays = FALLBACKS[case]()
    with fastpath.stock():
        ref_fixed, ref_train = run_fixed(*arrays), run_train(*arrays)
    fast = counters(monkeypatch)
    fastpath.enable()
    got_fixed, got_train = run_fixed(*arrays), run_train(*arrays)
    assert [c.calls for c in fast] == [0, 0, 0]
    for a, b in zip(ref_fixed + ref_train, got_fixed + got_train):
        np.testing.assert_array_equal(a, b)


def test_other_axes_fall_back(monkeypatch):
    """Statistics over other axes than 'all but 1' (e.g. a 2-D gamma, or axis=0 of a
    4-D array) are Chainer's; the default axes written out explicitly stay fast."""
    x, _, _, _, _, gy = bn_inputs((2, 3, 4, 5), np.float64)
    rs = np.random.RandomState(7)
    fast = counters(monkeypatch)
    fastpath.enable()
    for axis, pshape in [(None, (3, 4)), ((0,), (3, 4, 5)), ((0, 1), (4, 5))]:
        gamma, beta = rs.uniform(0.5, 1.5, pshape), rs.standard_normal(pshape)
        mean, var = rs.standard_normal(pshape), rs.uniform(0.5, 2, pshape)
        for fn in (lambda: F.fixed_batch_normalization(x, gamma, beta, mean, var, axis=axis),
                   lambda: F.batch_normalization(chainer.Variable(x), gamma, beta,
                                                 axis=axis)):
            got = fn()
            got.grad = gy
            got.backward()
            with fastpath.stock():
                ref = fn()
            np.testing.assert_array_equal(ref.array, got.array)
    assert [c.calls for c in fast] == [0, 0, 0]
    y = F.fixed_batch_normalization(x, *bn_inputs((2, 3, 4, 5), np.float64)[1:5],
                                    axis=(0, 2, 3))
    assert fast[0].calls == 1 and y.shape == x.shape


def test_broadcast_gy_falls_back_in_backward(monkeypatch):
    """F.sum's gradient reaches batch normalization as a broadcast (stride 0) array."""
    x, gamma, beta, _, _, _ = bn_inputs((2, 3, 4, 4), np.float64)
    fast = counters(monkeypatch)
    grads = {}
    for mode in ('stock', 'fast'):
        with getattr(fastpath, mode)():
            xv = chainer.Variable(x)
            F.sum(F.batch_normalization(xv, gamma, beta)).backward()
            grads[mode] = xv.grad
    assert fast[1].calls == 1 and fast[2].calls == 0  # fast forward, stock backward
    assert np.abs(grads['stock'] - grads['fast']).max() < 1e-12


def test_running_statistics_none_and_single_sample():
    """No running statistics, and a (1, C, 1, 1) batch (Chainer warns; the output is 0)."""
    fastpath.enable()
    x, gamma, beta, _, _, _ = bn_inputs((4, 3, 2, 2), np.float64)
    with fastpath.stock():
        ref = F.batch_normalization(x, gamma, beta).array
    assert relerr(ref, F.batch_normalization(x, gamma, beta).array) < 1e-12
    x1 = x[:1, :, :1, :1].copy()
    with pytest.warns(UserWarning):
        y = F.batch_normalization(x1, gamma, beta).array
    np.testing.assert_allclose(y, np.broadcast_to(beta[None, :, None, None], y.shape))
