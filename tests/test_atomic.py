import os

import pytest

from tutorial_lib import atomic


def test_success_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / 'a.json'
    atomic.write_json(target, {'x': 1})
    atomic.write_json(target, {'x': 2})
    assert target.read_text().strip().endswith('}') and '"x": 2' in target.read_text()
    assert os.listdir(tmp_path) == ['a.json']


def test_failure_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / 'w.png'
    target.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            assert tmp.endswith('.png')  # writers that pick the format by extension
            with open(tmp, 'wb') as f:
                f.write(b'half')
            raise RuntimeError('killed half-way')
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['w.png']
