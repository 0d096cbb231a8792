import numpy as np
import pytest

from tutorial_lib.infra import backend


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
    cupy, info = backend._probe_gpu()
    assert b.is_gpu == (cupy is not None)            # auto takes the GPU exactly when usable
    if b.is_gpu:
        assert text.startswith('GPU via CuPy (') and 'CPU' not in text.split('(')[0]
    else:
        # a CPU machine: the line says CPU and why there is no GPU
        assert text.startswith('CPU via numpy (') and info in text


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


# ---------------------------------------------------------------------------------------
# The GPU branch of select(), on the CPU: a stand-in CuPy module (numpy underneath)
# ---------------------------------------------------------------------------------------

import sys  # noqa: E402
import types  # noqa: E402


@pytest.fixture
def keep_backend():
    was = backend._CURRENT
    yield
    backend._CURRENT = was


def fake_cupy(devices=1, kernel_ok=True):
    """A module that answers the calls _probe_gpu, gpu_info and select make."""
    cp = types.ModuleType('cupy')
    cp.__version__ = '14.2.0'
    cp.float32 = np.float32
    cp.ndarray = type('FakeDeviceArray', (), {})

    def arange(n, dtype=None):
        if not kernel_ok:
            raise RuntimeError('NVRTC not found\nsecond line')
        return np.arange(n, dtype=dtype)
    cp.arange = arange
    cp.asarray = np.asarray
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: devices,
        getDeviceProperties=lambda i: {'name': b'Fake GPU 80GB', 'totalGlobalMem': 80 * 2 ** 30,
                                       'major': 9, 'minor': 0, 'multiProcessorCount': 132},
        runtimeGetVersion=lambda: 13000, driverGetVersion=lambda: 13010)
    cp.cuda = types.SimpleNamespace(runtime=runtime)
    return cp


@pytest.fixture
def chainer_cuda(monkeypatch):
    from chainer.backends import cuda
    monkeypatch.setattr(cuda, 'available', True)
    monkeypatch.setattr(cuda, '_cudnn_disabled_by_user', False, raising=False)
    monkeypatch.setattr(backend, 'cupy_lacks_cudnn', lambda: True)
    return cuda


def test_auto_picks_a_working_gpu_and_says_so_in_one_line(monkeypatch, keep_backend,
                                                          chainer_cuda):
    monkeypatch.setitem(sys.modules, 'cupy', fake_cupy())
    monkeypatch.delenv('TUTORIAL_DEVICE', raising=False)
    b = backend.select()
    assert b.is_gpu and b.device_id == 0 and b.chainer_device == '@cupy:0'
    line = backend.describe()
    assert line == ('GPU via CuPy (GPU found: Fake GPU 80GB; CuPy 14.2.0, CUDA 13.0; '
                    + backend.CUDNN_OFF + ')')
    info = backend.gpu_info()
    assert info['memory_gib'] == 80.0 and info['compute_capability'] == '9.0'
    assert info['cuda_driver'] == '13.1' and info['cudnn'] == 'off'
    assert backend.resolve('cpu').name == 'cpu' and backend.current() is b  # no side effect
    assert backend.select('cpu').name == 'cpu'        # TUTORIAL_DEVICE=cpu still wins


@pytest.mark.parametrize('case, expected', [
    ('no device', 'no CUDA device was found'),
    ('chainer refuses', 'Chainer 7.8.1 cannot use this CuPy (ImportError: cupyx is broken)'),
    ('no kernel', 'cannot run a kernel on it (RuntimeError: NVRTC not found)'),
])
def test_unusable_gpus_are_explained(monkeypatch, keep_backend, chainer_cuda, case, expected):
    monkeypatch.setitem(sys.modules, 'cupy', fake_cupy(devices=0 if case == 'no device' else 1,
                                                       kernel_ok=case != 'no kernel'))
    if case == 'chainer refuses':
        monkeypatch.setattr(chainer_cuda, 'available', False)
        monkeypatch.setattr(chainer_cuda, '_resolution_error', ImportError('cupyx is broken'),
                            raising=False)
    b = backend.select('auto')
    assert not b.is_gpu and expected in b.reason
    assert '\n' not in backend.describe()
    with pytest.raises(RuntimeError, match='GPU was requested but cannot be used: .*'
                       + expected.split(' (')[0]):
        backend.select('gpu')


def test_tutorial_device_is_read_and_normalised(monkeypatch, keep_backend):
    monkeypatch.setenv('TUTORIAL_DEVICE', ' CPU ')
    assert backend.select().name == 'cpu'
    monkeypatch.setenv('TUTORIAL_DEVICE', '')
    assert backend.select().name in ('cpu', 'gpu')     # empty = auto


def test_to_cpu_and_xp_of_on_cpu_things():
    import chainer
    x = np.ones((2, 2), np.float32)
    assert backend.to_cpu(x) is x
    assert backend.to_cpu(chainer.Variable(x)) is x
    assert backend.to_cpu([1, 2]).tolist() == [1, 2]
    assert backend.to_cpu(np.float32(3)) == 3
    assert backend.xp_of(x) is np and backend.xp_of(chainer.Variable(x)) is np
    cpu = backend.Backend('cpu', np, -1, 'test')
    backend.synchronize(cpu)                       # no-op
    assert backend.memory_stats(cpu) == {}
    backend.free_memory(cpu)


def test_env_defaults_on_a_machine_without_cupy():
    if backend.cupy_lacks_cudnn():
        pytest.skip('CuPy without cuDNN is installed here')
    assert backend.env_defaults() == {'CHAINER_WARN_VERSION_MISMATCH': '0'}
    env = {}
    assert backend.apply_env_defaults(env) == {'CHAINER_WARN_VERSION_MISMATCH': '0'}
    assert backend.apply_env_defaults(env) == {}       # once set, left alone
