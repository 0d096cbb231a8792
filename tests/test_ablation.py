"""The hint ablation: one change per step, and the measurement's file."""
import json

import numpy as np
import pytest

from tutorial_lib import ablation, augment, configs, training, updaters
from tutorial_lib.pairs import synthetic_pairs


def _fields(name):
    d = configs.get(name).to_dict()
    for k in ('name', 'description'):
        d.pop(k)
    return d


def test_each_hint_step_changes_one_thing_and_all_share_the_budget():
    steps = list(configs.ABLATION_HINTS)
    for a, b in zip(steps, steps[1:]):
        fa, fb = _fields(a), _fields(b)
        assert len([k for k in fa if fa[k] != fb[k]]) == 1, (a, b)
    for name in ablation.names():
        c = configs.get(name)
        assert (c.iterations, c.init_from, c.width, c.size) == (1500, 'classroom_l2', 0.25, 128)
    assert configs.get('ablate_no_scale').line_styles_without == ('scale',)


def test_the_updater_uses_the_config_line_styles():
    config = configs.get('ablate_no_extracted').replace(width=1 / 16, init_from=None)
    gen, _ = training.build_models(config)
    it = updaters.make_iterator(synthetic_pairs(8), 4)

    def styles(cfg):
        return updaters.updater_for(cfg, it, gen, updaters.adam(2e-4, 0.9, 0, gen)).line_styles
    assert styles(config) == augment.without(('extracted',))
    assert styles(config.replace(line_styles_without=())) == augment.LineStyles()
    assert styles(config.replace(line_styles=False)) is None


def test_measure_run_and_load_round_trip(tmp_path):
    run = tmp_path / 'run'
    config = configs.get('quick_hints_fill').replace(data='synthetic')
    training.train(config, out=str(run), resume=False, progress=False)
    test = synthetic_pairs(4, 32, split='test')
    r = ablation.measure_run(run, test, sketch_source='samples')
    assert set(r['test_psnr']) == set(ablation.COUNTS) and r['iterations'] == 6
    assert set(r['sketch_gain']) == {0, 10} and np.isfinite(r['train_minutes'])
    rows = list(ablation.curves({'ablate_shaded': r}, ['ablate_shaded'], 'sketches').values())[0]
    assert [row['hints'] for row in rows] == [0, 10]
    path = tmp_path / 'ablation.json'
    path.write_text(json.dumps({'runs': {'x': r}}))
    back = ablation.load(path)['x']
    assert back['test_psnr'][10] == r['test_psnr'][10]


def test_measure_says_first_when_the_real_sketches_are_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(ablation, 'is_built', lambda: False)
    with pytest.raises(FileNotFoundError, match='make sketches'):
        ablation.measure(runs=tmp_path, out=tmp_path / 'ablation.json')
    assert not (tmp_path / 'ablation.json').exists()
