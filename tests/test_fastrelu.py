"""tutorial_lib.fastrelu: ReLU and its gradient on the worker threads must be bit-identical
to stock Chainer (NaN and -0.0 included), keep Chainer's backward/double backward, be
switched by fastconv.enable/disable/stock, and leave small/odd inputs to Chainer."""
import numpy as np
import pytest

import tutorial_lib  # noqa: F401
from tutorial_lib import fastconv, fastrelu
import chainer
import chainer.functions as F
from chainer import gradient_check
from call_counter import Counter

# NaN and inf inputs on purpose: numpy warns about them on both paths
pytestmark = pytest.mark.filterwarnings('ignore:invalid value encountered:RuntimeWarning')


@pytest.fixture(autouse=True)
def _restore_state():
    was = fastconv._state()
    saved = fastrelu.BLOCK_BYTES, fastrelu.PARALLEL_BYTES, fastconv.THREADS
    yield
    fastrelu.BLOCK_BYTES, fastrelu.PARALLEL_BYTES, fastconv.THREADS = saved
    fastconv._restore(was)


def small(threads=2):
    fastrelu.BLOCK_BYTES, fastrelu.PARALLEL_BYTES, fastconv.THREADS = 40, 0, threads


def run(x, gy, ggx, mode):
    """y, gx and the second-order gradient of gy through relu."""
    with getattr(fastconv, mode)():
        xv = chainer.Variable(x)
        y = F.relu(xv)
        gyv = chainer.Variable(gy)
        gx, = chainer.grad([y], [xv], grad_outputs=[gyv], enable_double_backprop=True)
        ggy, = chainer.grad([gx], [gyv], grad_outputs=[chainer.Variable(ggx)])
    return y.array, gx.array, ggy.array


def special(shape, dtype, seed=0):
    rs = np.random.RandomState(seed)
    x = rs.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:6] = [np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-45 if dtype == np.float32 else 5e-324]
    gy = rs.standard_normal(shape).astype(dtype)
    gy.reshape(-1)[6:9] = [np.nan, np.inf, -0.0]
    return x, gy, rs.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('shape', [(2, 3, 5, 7), (1, 1, 3, 3), (5, 4), (3, 7, 11)])
@pytest.mark.parametrize('threads', [1, 2])
def test_bit_identical(monkeypatch, dtype, shape, threads):
    small(threads)
    args = special(shape, dtype)
    ref = run(*args, 'stock')
    forward = Counter(monkeypatch, fastrelu, 'relu_forward')
    grad = Counter(monkeypatch, fastrelu, 'relu_grad')
    got = run(*args, 'fast')
    assert forward.calls == 1 and grad.calls == 2
    for a, b in zip(ref, got):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
        assert np.array_equal(np.signbit(a), np.signbit(b))  # -0.0 stays -0.0


def test_check_backward():
    small()
    fastconv.enable()
    rs = np.random.RandomState(1)
    x = rs.uniform(0.1, 1, (3, 4, 5)) * rs.choice([-1, 1], (3, 4, 5))
    gy, ggx = rs.standard_normal((3, 4, 5)), rs.standard_normal((3, 4, 5))
    gradient_check.check_backward(F.relu, x, gy, atol=1e-6, rtol=1e-6)
    gradient_check.check_double_backward(F.relu, x, gy, ggx, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize('case', ['small', 'float16', 'noncontiguous'])
def test_falls_back(monkeypatch, case):
    fastrelu.BLOCK_BYTES, fastrelu.PARALLEL_BYTES = 40, 0 if case != 'small' else 1 << 20
    dtype = np.float16 if case == 'float16' else np.float32
    x, gy, ggx = special((4, 6, 8), dtype)
    if case == 'noncontiguous':
        x, gy, ggx = x[:, ::2], gy[:, ::2], ggx[:, ::2]
    ref = run(x, gy, ggx, 'stock')
    forward = Counter(monkeypatch, fastrelu, 'relu_forward')
    grad = Counter(monkeypatch, fastrelu, 'relu_grad')
    got = run(x, gy, ggx, 'fast')
    assert forward.calls == 0
    if case != 'noncontiguous':  # (gy made contiguous by Chainer may take the fast grad)
        assert grad.calls == 0
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)


def test_switches():
    fastconv.enable()
    assert fastrelu.is_enabled() and fastconv.is_enabled()
    with fastconv.stock():
        assert not fastrelu.is_enabled()
        assert F.relu.__module__  # still importable
    assert fastrelu.is_enabled()
    fastrelu.disable()
    assert not fastconv.is_enabled()
    with fastconv.fast():
        assert fastrelu.is_enabled()
    assert not fastrelu.is_enabled()
    fastconv.disable()
    for cls, fn in fastrelu._ORIGINAL.items():
        assert cls.__dict__['forward_cpu'] is fn
