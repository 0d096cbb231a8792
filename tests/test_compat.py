"""Chainer 7.8.1 must import and work through tutorial_lib.compat."""
import subprocess
import sys

import numpy as np
import pytest

import tutorial_lib
from tutorial_lib import selfcheck
from helpers_venv import REPO, find_python, make_venv


def test_selfcheck_passes_in_this_environment():
    results = selfcheck.run()
    failed = [(name, detail) for name, ok, detail in results if not ok]
    assert not failed, failed
    assert len(results) == 6


@pytest.mark.skipif(int(np.__version__.split('.')[0]) < 2, reason='only numpy>=2 breaks chainer')
def test_plain_chainer_import_fails_without_compat():
    # Proves the compat module is doing real work (and that this test could fail).
    proc = subprocess.run([sys.executable, '-c', 'import chainer'], capture_output=True,
                          text=True, cwd='/')
    assert proc.returncode != 0
    assert 'sctypes' in proc.stderr


def test_compat_is_idempotent():
    before = list(tutorial_lib.compat.PATCHES)
    tutorial_lib.compat.apply()
    assert tutorial_lib.compat.PATCHES == before
    assert np.float is float and 'int' in np.sctypes


# Other (Python, numpy) pairs the course promises to support. Each builds a small venv
# with chainer + that numpy and runs the self-check from the repository's sources.
MATRIX = [('3.11', 'numpy==1.26.4'), ('3.12', 'numpy>=2.0,<2.1'), ('3.12', 'numpy>=2.4')]


@pytest.mark.slow
@pytest.mark.parametrize('python_version,numpy_spec', MATRIX)
def test_selfcheck_matrix(tmp_path, python_version, numpy_spec):
    python = find_python(python_version)
    if python is None:
        pytest.skip('python%s is not installed here' % python_version)
    py = make_venv(python, tmp_path / 'venv',
                   ['chainer==7.8.1', 'setuptools<81', numpy_spec])
    proc = subprocess.run([py, '-m', 'tutorial_lib.selfcheck'], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'self-check: 6 of 6 checks passed' in proc.stdout
    wanted = numpy_spec.split('=')[-1].split(',')[0].lstrip('<>=')
    assert 'numpy' in proc.stdout and wanted.split('.')[0] in proc.stdout
