"""Skips must not hide failures: in CI (``CI=true``) the browser test fails when Chromium
or playwright is missing instead of skipping."""
import os
import subprocess
import sys

import pytest

import test_browser
from helpers_venv import REPO


def test_browser_prerequisites_skip_locally_and_fail_in_ci(monkeypatch):
    monkeypatch.delenv('CI', raising=False)
    test_browser.skip_or_fail(None)                       # nothing missing: runs
    with pytest.raises(pytest.skip.Exception, match='no Chromium'):
        test_browser.skip_or_fail('no Chromium at /usr/bin/chromium')
    for value in ('true', 'True', '1'):
        monkeypatch.setenv('CI', value)
        with pytest.raises(pytest.fail.Exception, match='must run.*no Chromium'):
            test_browser.skip_or_fail('no Chromium at /usr/bin/chromium')
    monkeypatch.setenv('CI', 'false')
    with pytest.raises(pytest.skip.Exception):
        test_browser.skip_or_fail('playwright is not installed')


def test_browser_test_fails_in_ci_on_this_machine_when_something_is_missing():
    reason = test_browser.missing()
    if reason is None:
        pytest.skip('Chromium and playwright are both here: the browser test really runs')
    cmd = [sys.executable, '-m', 'pytest', '-q', '-rs', '-p', 'no:cacheprovider',
           'tests/test_browser.py']
    env = {k: v for k, v in os.environ.items() if k != 'CI'}
    ci = subprocess.run(cmd, cwd=str(REPO), env=dict(env, CI='true'), capture_output=True,
                        text=True, timeout=120)
    assert ci.returncode == 1 and 'must run' in ci.stdout, ci.stdout[-2000:]
    assert reason.split(' (')[0] in ci.stdout
