"""Make Chainer 7.8.1 (released 2020) import and run on today's numpy, setuptools and Python;
``import tutorial_lib`` applies it before anything imports chainer (notebook 00 lists the patches)."""
import os
import re
import sys
import types
import warnings

import numpy as np

# Every patch below is small, restores something numpy or setuptools removed, and is
# skipped when the running version still has it, so the module is harmless on old stacks.
# What Chainer 7.8.1 needs that a 2026 stack no longer has:
# * np.sctypes (removed in numpy 2.0): chainer.utils.type_check and chainer.backends read
#   np.sctypes['int'] / ['float'] at import time.
# * numpy.distutils (removed for Python >= 3.12 and numpy >= 2): chainer._environment_check
#   imports numpy.distutils.system_info to print BLAS information; a stub with an empty
#   get_info is enough.
# * the old scalar aliases np.float, np.int, np.bool, np.complex, np.object (removed in
#   numpy 1.24): F.resize_images uses numpy.float.
# * pkg_resources (removed in setuptools 81): chainer/__init__.py imports it to check the
#   installed CuPy version. The requirements keep runtime setuptools<81; when it is missing
#   anyway a tiny stand-in lets `import chainer` succeed, since a learner cannot act on
#   that failure.
PATCHES = []  # names of the patches applied in this process, for the setup notebook


def _restore_sctypes():
    try:
        np.sctypes  # noqa: B018 - the attribute access is the test
        return
    except AttributeError:
        pass
    np.sctypes = {
        'int': [np.int8, np.int16, np.int32, np.int64],
        'uint': [np.uint8, np.uint16, np.uint32, np.uint64],
        'float': [np.float16, np.float32, np.float64],
        'complex': [np.complex64, np.complex128],
        'others': [bool, object, bytes, str, np.void],
    }
    PATCHES.append('np.sctypes')


def _restore_scalar_aliases():
    aliases = {'float': float, 'int': int, 'bool': bool, 'complex': complex,
               'object': object, 'str': str}
    for name, value in aliases.items():
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            present = name in np.__dict__
        if not present:
            setattr(np, name, value)
            PATCHES.append('np.' + name)


def _stub_numpy_distutils():
    try:
        import numpy.distutils.system_info  # noqa: F401
        return
    except Exception:  # ImportError, or a DeprecationWarning raised as error
        pass
    pkg = types.ModuleType('numpy.distutils')
    pkg.__path__ = []
    info = types.ModuleType('numpy.distutils.system_info')
    info.get_info = lambda name, notfound_action=0: {}
    pkg.system_info = info
    sys.modules['numpy.distutils'] = pkg
    sys.modules['numpy.distutils.system_info'] = info
    PATCHES.append('numpy.distutils.system_info (stub)')


def _ensure_pkg_resources():
    with warnings.catch_warnings():
        # setuptools 80 warns that pkg_resources is deprecated; that is not the
        # learner's business.
        warnings.simplefilter('ignore')
        try:
            import pkg_resources  # noqa: F401
            return
        except ImportError:
            pass
    from importlib import metadata

    mod = types.ModuleType('pkg_resources')

    class DistributionNotFound(Exception):
        pass

    class _Dist:
        def __init__(self, name):
            self.project_name = name
            self.version = metadata.version(name)

    def get_distribution(name):
        try:
            return _Dist(name)
        except metadata.PackageNotFoundError as exc:
            raise DistributionNotFound(name) from exc

    class VersionConflict(Exception):
        pass

    def require(requirement):
        # chainer's environment check calls require('cupy...'); the name is what matters
        name = re.split(r'[<>=!~;\[ ]', str(requirement).strip(), maxsplit=1)[0]
        get_distribution(name)
        return []

    mod.DistributionNotFound = DistributionNotFound
    mod.VersionConflict = VersionConflict
    mod.get_distribution = get_distribution
    mod.require = require
    sys.modules['pkg_resources'] = mod
    PATCHES.append('pkg_resources (stand-in)')


def apply():
    """Apply every patch once (idempotent)."""
    _restore_sctypes()
    _restore_scalar_aliases()
    _stub_numpy_distutils()
    _ensure_pkg_resources()
    # Chainer warns at import about CuPy versions it predates and about cuDNN,
    # which CuPy 14 no longer binds. backend.py reports the device in one line instead.
    os.environ.setdefault('CHAINER_WARN_VERSION_MISMATCH', '0')
    warnings.filterwarnings('ignore', message='.*pkg_resources is deprecated.*')


apply()
