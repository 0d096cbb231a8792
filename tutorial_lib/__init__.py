"""tutorial_lib: the library behind the "Let there be color" notebooks.

Importing the package first applies :mod:`tutorial_lib.compat`, so that
``import chainer`` works on a 2026 numpy/setuptools stack.
"""
from . import compat  # noqa: F401  (must run before anything imports chainer)
from . import backend  # noqa: F401,E402  sets CHAINER_CUDNN etc. before chainer is imported
from . import fastconv  # noqa: E402  faster CPU conv/deconv; TUTORIAL_FASTCONV=0 keeps stock Chainer
fastconv.enable_from_env()

__version__ = '0.1.0'

REPO_ROOT = __import__('pathlib').Path(__file__).resolve().parent.parent
