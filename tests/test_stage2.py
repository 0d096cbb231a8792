"""Hinted stage 1, the stage-2 data and training."""
import json
import os

import numpy as np
import pytest

import tutorial_lib  # noqa: F401
from tutorial_lib.pairs import synthetic_pairs
from tutorial_lib import checkpoints, configs, hints, models, stage2, training, updaters


def test_hint_input_fn_shapes_and_seeding():
    fn = updaters.hint_input_fn()
    p = synthetic_pairs(6, 32)
    a = fn(p.lines, p.colors, np.random.RandomState(3))
    b = fn(p.lines, p.colors, np.random.RandomState(3))
    assert a.shape == (6, 4, 32, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[:, 0], p.lines / 127.5 - 1, atol=1e-6)
    rgb, mask = hints.decode(a[:, 1:])
    # hinted pixels carry the true color give or take the simulated noise
    err = np.abs(rgb[mask].astype(int) - p.colors[mask].astype(int))
    assert mask.any() and np.median(err) < 30
    assert (a[:, 1:][:, :, ~mask.any(0)] == hints.EMPTY).all()


def test_assemble_stage2_mix_crop_and_seed():
    n, size = 200, 64
    p = synthetic_pairs(8, size)
    idx = np.arange(n) % 8
    lines, colors = p.lines[idx], p.colors[idx]
    low = np.zeros((n, 16, 16, 3), np.uint8)            # a black "stage 1"
    x, t, used = stage2.assemble_stage2(lines, colors, low, np.random.RandomState(0),
                                        crop=32, p_truth=0.2)
    x2, _, used2 = stage2.assemble_stage2(lines, colors, low, np.random.RandomState(0),
                                          crop=32, p_truth=0.2)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(used, used2)
    assert x.shape == (n, 4, 32, 32) and t.shape == (n, 3, 32, 32)
    assert 0.12 < used.mean() < 0.28                      # about 20% from the truth
    # stage-1 pictures come through black (-1), truth ones do not
    assert np.allclose(x[~used, 1:], -1, atol=1e-3)
    assert not np.allclose(x[used, 1:], -1, atol=1e-3)
    # the line and the target are cropped with the same window (ink under ink)
    ink = x[:, 0] < 0
    dark = t.mean(axis=1) < -0.5
    assert (ink & dark).sum() > 0.5 * ink.sum()
    for p_truth, lo, hi in ((0.0, 0, 0), (1.0, 1, 1)):
        _, _, u = stage2.assemble_stage2(lines[:20], colors[:20], low[:20],
                                         np.random.RandomState(1), p_truth=p_truth)
        assert lo <= u.mean() <= hi
    with pytest.raises(ValueError, match='crop'):
        stage2.assemble_stage2(lines[:1], colors[:1], low[:1], np.random.RandomState(0),
                               crop=128)


def test_quick_training_of_both_stages(tmp_path):
    r1, r2 = training.quick_models(str(tmp_path))
    g1, g2 = checkpoints.load_unet(r1), checkpoints.load_unet(r2)
    assert g1.in_ch == 4 and g2.in_ch == 4
    assert os.path.exists(os.path.join(r2, 'previews', 'iter_000004.png'))
    info = json.load(open(os.path.join(r2, 'config.json')))
    assert info['config']['stage'] == 2 and info['config']['crop'] == 32
    log = checkpoints.read_log(r2)
    assert len(log) == 4 and all(np.isfinite(e['gen/loss_rec']) for e in log)
    # the stage-1 colors were cached once
    caches = os.listdir(os.path.join(str(tutorial_lib.REPO_ROOT), 'runs', 'stage2_cache'))
    assert any(c.startswith('stage1_') and c.endswith('.npy') for c in caches)


def test_hint_model_colorize_without_hints_and_configs():
    g = models.UNET(in_ch=4, width=1 / 16)
    assert models.colorize(g, np.full((2, 20, 20), 255, np.uint8)).shape == (2, 20, 20, 3)
    assert configs.get('classroom_hints').in_ch == 4
    c = configs.get('classroom_stage2')
    assert c.stage == 2 and c.size == 512 and c.stage1_size == 128 and c.rec_loss == 'l1'
    assert c.p_truth == 0.2 and c.crop == 256


def test_resolve_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='no U-Net found'):
        checkpoints.resolve_checkpoint(str(tmp_path / 'nothing'))
    g = models.UNET(in_ch=4, width=1 / 16)
    models.save_weights(g, str(tmp_path / 'gen.npz'), dict(in_ch=4, width=1 / 16))
    assert checkpoints.resolve_checkpoint(str(tmp_path)) == str(tmp_path / 'gen.npz')


def test_warm_start_reproduces_the_line_only_unet():
    np.random.seed(0)
    src = models.UNET(in_ch=1, width=1 / 16)
    # give BatchNorm some non-default statistics
    import chainer
    with chainer.using_config('train', True):
        src(np.random.rand(2, 1, 32, 32).astype(np.float32))
    dst = training.warm_start(models.UNET(in_ch=4, width=1 / 16), src)
    lines = synthetic_pairs(3, 32).lines
    np.testing.assert_array_equal(models.colorize(src, lines), models.colorize(dst, lines))
    assert (dst.c0.W.array[:, 1:] == 0).all()
    with pytest.raises(ValueError, match='warm-start'):
        training.warm_start(models.UNET(in_ch=4, width=1 / 8), src)


def test_residual_stage2_starts_as_identity_and_round_trips(tmp_path):
    np.random.seed(0)
    g = stage2.Stage2UNET(in_ch=4, width=1 / 16)
    p = synthetic_pairs(2, 32)
    out = models.colorize(g, p.lines, extra=models.encode_colors(p.colors))
    assert np.abs(out.astype(int) - p.colors.astype(int)).max() <= 1
    g.dc0.W.array[...] = np.random.rand(*g.dc0.W.shape) * 0.01
    models.save_weights(g, str(tmp_path / 'gen.npz'), dict(in_ch=4, width=1 / 16, **g.save_meta))
    h = checkpoints.load_unet(str(tmp_path))
    assert isinstance(h, stage2.Stage2UNET)
    np.testing.assert_array_equal(
        models.colorize(g, p.lines, extra=models.encode_colors(p.colors)),
        models.colorize(h, p.lines, extra=models.encode_colors(p.colors)))


def test_train_cli_trains_a_hint_unet(tmp_path):
    import subprocess
    import sys
    out = tmp_path / 'run'
    r = subprocess.run([sys.executable, '-m', 'tutorial_lib.train', '--config', 'quick_hints',
                        '--data', 'synthetic', '--iterations', '2', '--out', str(out),
                        '--no-progress', '--device', 'cpu'],
                       cwd=str(tutorial_lib.REPO_ROOT), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert checkpoints.load_unet(str(out)).in_ch == 4
