"""Does Chainer 7.8.1 work here? An answer in seconds (notebook 00 and the tests):
``python -m tutorial_lib.infra.selfcheck``."""
# Each check exercises one piece of Chainer that the course relies on and that a newer numpy
# or setuptools could break: convolution, deconvolution, BatchNormalization, the Adam
# optimizer, saving/loading weights (npz), and F.resize_images. Only numpy and chainer are
# needed, so the tests run it in small virtual environments with other numpy/Python versions.
import os
import sys
import tempfile

from .. import cli
from . import compat
import numpy as np
import chainer
import chainer.functions as F
import chainer.links as L


def _conv_matches_direct_sum():
    # A 3x3 convolution at one output pixel is a plain weighted sum: check it.
    rng = np.random.RandomState(0)
    x = rng.randn(2, 3, 8, 8).astype(np.float32)
    conv = L.Convolution2D(3, 4, 3, 1, 1)
    y = conv(x).array
    expected = (conv.W.array[1] * x[0, :, 2:5, 3:6]).sum() + conv.b.array[1]
    assert y.shape == (2, 4, 8, 8), y.shape
    assert np.allclose(y[0, 1, 3, 4], expected, atol=1e-4)
    return 'Convolution2D output = direct sum'


def _deconv_doubles_size_and_backprops():
    deconv = L.Deconvolution2D(4, 2, 4, 2, 1)
    x = chainer.Variable(np.ones((1, 4, 5, 7), np.float32))
    y = deconv(x)
    assert y.shape == (1, 2, 10, 14), y.shape
    F.sum(y).backward()
    assert x.grad is not None and np.isfinite(x.grad).all()
    return 'Deconvolution2D 5x7 -> 10x14, gradients finite'


def _batchnorm_train_and_test():
    bn = L.BatchNormalization(3)
    x = np.random.RandomState(1).randn(16, 3, 4, 4).astype(np.float32) * 5 + 2
    y = bn(x).array
    assert abs(y.mean()) < 1e-4 and abs(y.std() - 1) < 1e-2
    with chainer.using_config('train', False):
        y_test = bn(x).array  # uses running averages, so not normalized yet
    assert not np.allclose(y, y_test)
    return 'BatchNormalization normalizes in training, uses running stats at test time'


def _adam_reduces_loss():
    rng = np.random.RandomState(2)
    model = L.Linear(5, 1)
    opt = chainer.optimizers.Adam(alpha=1e-2)
    opt.setup(model)
    x = rng.randn(64, 5).astype(np.float32)
    t = x.sum(axis=1, keepdims=True)
    first = None
    for _ in range(100):
        loss = F.mean_squared_error(model(x), t)
        first = float(loss.array) if first is None else first
        model.cleargrads()
        loss.backward()
        opt.update()
    assert float(loss.array) < 0.5 * first
    return 'Adam: loss %.3f -> %.3f in 100 steps' % (first, float(loss.array))


def _npz_round_trip():
    a, b = L.Convolution2D(2, 3, 3), L.Convolution2D(2, 3, 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'w.npz')
        chainer.serializers.save_npz(path, a)
        chainer.serializers.load_npz(path, b)
    assert np.array_equal(a.W.array, b.W.array)
    return 'save_npz / load_npz round trip'


def _resize_images():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    y = F.resize_images(x, (8, 8)).array  # uses numpy.float inside Chainer 7.8.1
    assert y.shape == (1, 1, 8, 8) and y.min() >= 0 and y.max() <= 15
    return 'F.resize_images 4x4 -> 8x8'


CHECKS = [_conv_matches_direct_sum, _deconv_doubles_size_and_backprops,
          _batchnorm_train_and_test, _adam_reduces_loss, _npz_round_trip, _resize_images]


def run():
    """Run every check; return a list of (name, passed, detail)."""
    results = []
    for check in CHECKS:
        name = check.__name__.strip('_')
        try:
            results.append((name, True, check()))
        except Exception as exc:  # report, do not stop: the learner wants the full picture
            results.append((name, False, '%s: %s' % (exc.__class__.__name__, exc)))
    return results


def versions():
    return {'python': sys.version.split()[0], 'numpy': np.__version__,
            'chainer': chainer.__version__, 'compat patches': ', '.join(compat.PATCHES) or 'none'}


@cli.command
def main():
    for key, value in versions().items():
        print('%-15s %s' % (key, value))
    results = run()
    for name, ok, detail in results:
        print('%s %-40s %s' % ('ok  ' if ok else 'FAIL', name, detail))
    failed = [r for r in results if not r[1]]
    print('self-check: %d of %d checks passed' % (len(results) - len(failed), len(results)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
