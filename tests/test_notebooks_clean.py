"""Notebooks are committed clean and follow the course's QUICK convention."""
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / 'notebooks').glob('*.ipynb'))


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert '00_setup.ipynb' in names and '01_line_extraction.ipynb' in names


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb['cells'])
             if c['cell_type'] == 'code' and (c.get('outputs') or c.get('execution_count'))]
    assert not dirty, '%s has outputs in cells %s: clear them before committing' % (path.name, dirty)


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_no_function_or_class_is_defined_in_a_cell(path):
    # code that outlives a cell belongs in tutorial_lib, where it is tested and reused
    nb = json.loads(path.read_text())
    defs = [i for i, c in enumerate(nb['cells']) if c['cell_type'] == 'code'
            and any(line.lstrip().startswith(('def ', 'class ', 'async def '))
                    for line in c['source'])]
    assert not defs, '%s defines functions/classes in cells %s: move them to tutorial_lib' % (
        path.name, defs)


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_has_quick_parameters_cell(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb['cells'] if c['cell_type'] == 'code']
    tagged = [c for c in code if 'parameters' in c.get('metadata', {}).get('tags', [])]
    assert tagged, '%s: no cell tagged "parameters"' % path.name
    assert "os.environ.get('QUICK'" in ''.join(tagged[0]['source'])


# notebooks whose key claim a QUICK run proves with a cell tagged "check" (asserts on the
# numbers the notebook measured, not only "it ran")
CHECKED = ['00_setup.ipynb', '01_line_extraction.ipynb', '02_unet_l2.ipynb',
           '03_adversarial.ipynb', '07_failure_cases.ipynb', '08_many_machines.ipynb']


@pytest.mark.parametrize('name', CHECKED)
def test_key_claim_has_a_check_cell(name):
    nb = json.loads((NOTEBOOKS[0].parent / name).read_text())
    checks = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code'
              and 'check' in c.get('metadata', {}).get('tags', [])]
    assert checks, '%s: no cell tagged "check"' % name
    assert all('assert ' in src for src in checks), name
