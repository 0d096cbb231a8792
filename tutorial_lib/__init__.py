"""tutorial_lib: the library behind the "Let there be color" notebooks.

Importing the package first applies :mod:`tutorial_lib.infra.compat`, so that
``import chainer`` works on a 2026 numpy/setuptools stack.
"""
REPO_ROOT = __import__('pathlib').Path(__file__).resolve().parent.parent

from .infra import compat  # noqa: F401  (must run before anything imports chainer)
from .infra import backend  # noqa: F401,E402  sets CHAINER_CUDNN etc. before chainer is imported
from .infra import fastpath  # noqa: E402  faster CPU conv, BatchNorm, Adam; TUTORIAL_FASTCONV=0 keeps stock Chainer
fastpath.enable_from_env()
if 'tutorial_lib.infra.figcheck' in __import__('os').environ.get('MPLBACKEND', '') and \
        __import__('importlib.util').util.find_spec('matplotlib') is not None:
    # `make test`: from the next notebook cell on, every figure is checked before it is
    # shown, also when pyplot picks its backend only at the first figure (figcheck.py).
    # Not in a bare environment without matplotlib (the compat tests' minimal venvs), which
    # inherits MPLBACKEND from `make test` but draws no figures.
    from .infra import figcheck  # noqa: E402,F401

__version__ = '0.1.0'
