"""environment.yml's pip section must install a working course (no conda here)."""
import subprocess

import pytest
import yaml

from helpers_venv import REPO, find_python, make_venv


def pip_section():
    env = yaml.safe_load((REPO / 'environment.yml').read_text())
    deps = env['dependencies']
    conda = [d for d in deps if isinstance(d, str)]
    pips = [d for d in deps if isinstance(d, dict) and 'pip' in d]
    return conda, pips[0]['pip']


def test_conda_part_is_only_python_and_pip():
    conda, pip = pip_section()
    assert sorted(d.split('>')[0].split('=')[0].split('<')[0] for d in conda) == ['pip', 'python']
    assert '-r requirements.txt' in pip


def test_requirements_match_pyproject():
    # pyproject reads its dependencies from requirements.txt: one list for every route.
    text = (REPO / 'pyproject.toml').read_text()
    assert 'dependencies = {file = ["requirements.txt"]}' in text


@pytest.mark.slow
def test_environment_pip_section_installs_into_fresh_venv(tmp_path):
    _, pip = pip_section()
    # conda writes the pip section to a requirements file beside environment.yml and
    # runs pip from that folder; do the same.
    req = REPO / 'condaenv.test-requirements.txt'
    req.write_text('\n'.join(pip) + '\n')
    python = find_python('3.11') or find_python('3.12')
    try:
        py = make_venv(python, tmp_path / 'venv', requirements=req, cwd=REPO)
    finally:
        req.unlink()
    proc = subprocess.run(
        [py, '-c', 'import tutorial_lib, chainer, cv2, resvg_py, matplotlib, ipywidgets; '
                   'from tutorial_lib.infra import selfcheck; import sys; '
                   'sys.exit(0 if all(ok for _, ok, _ in selfcheck.run()) else 1)'],
        cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
