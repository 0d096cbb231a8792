import numpy as np
import pytest

from tutorial_lib import backend


def test_cpu_forced(monkeypatch):
    monkeypatch.setenv('TUTORIAL_DEVICE', 'cpu')
    b = backend.select()
    assert b.name == 'cpu' and b.xp is np and b.chainer_device == '@numpy'
    assert 'TUTORIAL_DEVICE=cpu' in backend.describe()
    backend.select('auto')


def test_bad_choice_is_a_clear_error():
    with pytest.raises(ValueError, match="'auto', 'cpu' or 'gpu'"):
        backend.select('tpu')


def test_auto_explains_itself():
    b = backend.select('auto')
    assert b.reason  # says why, e.g. "CuPy is not installed"
    text = backend.describe()
    assert ('GPU' in text) == b.is_gpu or 'CPU' in text


def test_round_trip_to_device_and_back():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = backend.to_cpu(backend.to_device(x))
    assert isinstance(y, np.ndarray) and np.array_equal(x, y)


def test_gpu_request_without_gpu_is_explained():
    cupy, info = backend._probe_gpu()
    if cupy is not None:
        pytest.skip('a GPU is present')
    with pytest.raises(RuntimeError, match='GPU was requested'):
        backend.select('gpu')
    backend.select('auto')


@pytest.mark.gpu
def test_gpu_round_trip():
    cupy, _ = backend._probe_gpu()
    if cupy is None:
        pytest.skip('no CUDA GPU here')
    b = backend.select('gpu')
    x = np.ones((2, 2), np.float32)
    d = backend.to_device(x, b)
    assert backend.xp_of(d) is cupy
    assert np.array_equal(backend.to_cpu(d), x)
    backend.select('auto')
