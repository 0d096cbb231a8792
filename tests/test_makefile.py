"""`make setup` is idempotent: once it has run, a second run has nothing to do."""
import shutil
import subprocess

import pytest

from helpers_venv import REPO


@pytest.mark.skipif(shutil.which('make') is None, reason='make is not installed')
def test_second_setup_does_no_work():
    if not (REPO / '.venv' / '.installed').exists() or not (REPO / 'data' / 'openmoji' / 'COMPLETE').exists():
        pytest.skip('run `make setup` first (make test does)')
    # -q: "question mode", exit 0 only when every target is up to date.
    proc = subprocess.run(['make', '-q', 'setup'], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, 'make setup would do work again:\n' + subprocess.run(
        ['make', '-n', 'setup'], cwd=REPO, capture_output=True, text=True).stdout


def test_readme_commands_exist_in_makefile():
    makefile = (REPO / 'Makefile').read_text()
    readme = (REPO / 'README.md').read_text()
    for target in ('lab', 'test', 'setup', 'tutorial', 'data', 'bench'):
        assert '\n%s:' % target in makefile, target
        assert 'make %s' % target in readme, target


def test_make_test_shows_why_tests_were_skipped():
    # -rs lists every skip with its reason, so a skip cannot hide a missing dependency
    line = next(l for l in (REPO / 'Makefile').read_text().splitlines()
                if '-m pytest' in l and 'tests notebooks' in l)
    assert ' -rs ' in line or ' -rsx ' in line or ' -ra ' in line, line
