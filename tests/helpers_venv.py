"""Build small throwaway virtual environments for the install tests.

The pip cache is used (it makes reruns fast); the "empty cache" check of the
Chainer install is done by hand with PIP_NO_CACHE_DIR=1 and recorded in the README.
"""
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD_CONSTRAINT = REPO / 'constraints' / 'build.txt'


def find_python(version):
    """Path of a python<version> interpreter on this machine, or None."""
    if '%d.%d' % sys.version_info[:2] == version:
        return sys.executable
    candidates = [shutil.which('python' + version)]
    pyenv_root = os.environ.get('PYENV_ROOT', os.path.expanduser('~/.pyenv'))
    candidates += sorted(glob.glob(os.path.join(pyenv_root, 'versions', version + '*',
                                                'bin', 'python' + version)))
    for c in candidates:
        if c and subprocess.run([c, '-c', 'pass'], capture_output=True).returncode == 0:
            return c
    return None


def pip_env():
    env = dict(os.environ)
    env['PIP_CONSTRAINT'] = str(BUILD_CONSTRAINT)
    env['PIP_BUILD_CONSTRAINT'] = str(BUILD_CONSTRAINT)
    env['PIP_DISABLE_PIP_VERSION_CHECK'] = '1'
    env.pop('PYTHONPATH', None)
    return env


def make_venv(python, path, packages=(), requirements=None, cwd=None):
    """Create a venv at path and pip-install packages / a requirements file into it."""
    subprocess.run([python, '-m', 'venv', str(path)], check=True)
    py = str(Path(path) / 'bin' / 'python')
    args = [py, '-m', 'pip', 'install', '-q'] + list(packages)
    if requirements:
        args += ['-r', str(requirements)]
    proc = subprocess.run(args, env=pip_env(), cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError('pip install failed in %s:\n%s' % (path, proc.stderr[-4000:]))
    return py
