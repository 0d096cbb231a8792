"""Chainer 7.8.1 must import and work through tutorial_lib.infra.compat."""
import subprocess
import sys

import numpy as np
import pytest

import tutorial_lib
from tutorial_lib.infra import selfcheck
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
    before = list(tutorial_lib.infra.compat.PATCHES)
    tutorial_lib.infra.compat.apply()
    assert tutorial_lib.infra.compat.PATCHES == before
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
    proc = subprocess.run([py, '-m', 'tutorial_lib.infra.selfcheck'], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'self-check: 6 of 6 checks passed' in proc.stdout
    assert_versions(proc.stdout, python_version, numpy_spec)


def assert_versions(stdout, python_version, numpy_spec):
    """The self-check ran on the Python and numpy the matrix asked for."""
    from packaging.requirements import Requirement
    from packaging.version import Version
    found = dict(line.split(None, 1) for line in stdout.splitlines()
                 if line.split(None, 1)[0:1] in (['python'], ['numpy']))
    assert found['python'].strip().startswith(python_version + '.'), stdout
    got = Version(found['numpy'].strip())
    assert Requirement(numpy_spec).specifier.contains(got), (numpy_spec, str(got))


def test_version_check_of_the_matrix_can_fail():
    out = 'python          3.12.4\nnumpy           2.0.2\nchainer         7.8.1\n'
    assert_versions(out, '3.12', 'numpy>=2.0,<2.1')
    for py, spec in (('3.11', 'numpy>=2.0,<2.1'), ('3.12', 'numpy>=2.4'),
                     ('3.12', 'numpy==1.26.4')):
        with pytest.raises(AssertionError):
            assert_versions(out, py, spec)
    # and on this environment's own self-check
    proc = subprocess.run([sys.executable, '-m', 'tutorial_lib.infra.selfcheck'], cwd=REPO,
                          capture_output=True, text=True)
    assert_versions(proc.stdout, '%d.%d' % sys.version_info[:2], 'numpy==' + np.__version__)
