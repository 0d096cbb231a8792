"""The GPU check's report: the measured figures against the targets, as markdown and JSON."""
import os
import platform
import sys

from . import compat  # noqa: F401  (before chainer)
import numpy as np

import chainer

from .. import atomic

TARGET_TRAIN_IMG_S = 300.0   # full-width 128 px training on an H100-class GPU (issue 8)
TARGET_LATENCY_MS = 30.0     # stroke-to-result at 512 px, stage 1 + 2 (issue 8)


def versions():
    out = {'python': platform.python_version(), 'numpy': np.__version__,
           'chainer': chainer.__version__, 'platform': platform.platform()}
    cupy = sys.modules.get('cupy')
    if cupy is not None:
        out['cupy'] = getattr(cupy, '__version__', '?')
    for name in ('cv2',):
        mod = sys.modules.get(name)
        if mod is not None:
            out['opencv'] = getattr(mod, '__version__', '?')
    return out


def targets(results):
    """[(what, measured text, target text, verdict)] for the issue's two targets."""
    dry = results.get('tiny') or results.get('device') != 'gpu'
    rows = []
    train = [r for r in results.get('train', []) if r.get('headline')]
    if train:
        r = train[0]
        ok = r['img_per_s'] >= TARGET_TRAIN_IMG_S
        rows.append(('training, full width, %d px, batch %d (%s)' % (r['px'], r['batch'],
                                                                     r['config']),
                     '%.0f img/s' % r['img_per_s'], '>= %.0f img/s' % TARGET_TRAIN_IMG_S,
                     'n/a (dry run)' if dry else ('met' if ok else 'MISSED')))
    lat = [r for r in results.get('latency', []) if r.get('headline')]
    if lat:
        r = lat[0]
        ok = r['median_ms'] < TARGET_LATENCY_MS
        rows.append(('stroke-to-result at %d px, stage 1 + 2 (median)' % r['side'],
                     '%.1f ms' % r['median_ms'], '< %.0f ms' % TARGET_LATENCY_MS,
                     'n/a (dry run)' if dry else ('met' if ok else 'MISSED')))
    return rows


def _gib(n):
    return '%.2f GiB' % (n / 2 ** 30) if n else '-'


def loss_text(first, last, key='gen/loss'):
    if not first or key not in first:
        return '-'
    return '%.4f -> %.4f' % (first[key], last.get(key, float('nan')))


def _header(results):
    """Title, dry-run warning and the list of device, software, command and result."""
    dev = results.get('gpu') or {}
    title = dev.get('name') if results['device'] == 'gpu' else 'CPU'
    lines = ['# GPU check: %s' % title, '']
    if results.get('tiny') or results['device'] != 'gpu':
        lines += ['**Dry run on the %s with tiny networks and iteration counts: this checks the '
                  'script\'s logic; the numbers are not GPU measurements.**'
                  % results['device'].upper(), '']
    v = results['versions']
    device = ('%s (%s GiB, compute capability %s, %s multiprocessors), CUDA runtime %s, '
              'driver %s' % (dev.get('name'), dev.get('memory_gib', '?'),
                             dev.get('compute_capability', '?'),
                             dev.get('multiprocessors', '?'), dev.get('cuda_runtime', '?'),
                             dev.get('cuda_driver', '?'))
              if dev else 'CPU (%s)' % platform.machine())
    return lines + [
        '- date: %s' % results['date'],
        '- device: %s' % device,
        '- software: Python %s, numpy %s, Chainer %s%s%s' % (
            v['python'], v['numpy'], v['chainer'],
            ', CuPy %s' % v['cupy'] if 'cupy' in v else '',
            ', OpenCV %s' % v['opencv'] if 'opencv' in v else ''),
        '- backend: %s' % results['backend'],
        '- command: `%s`' % results['command'],
        '- data for training: %s' % results.get('data', '-'),
        '- result: %s' % ('every part ran' if not results['failures'] else
                          'FAILED: ' + ', '.join(sorted(results['failures']))),
        '']


def _targets_section(results):
    peak = max([r.get('memory_pool_held', 0) for r in results.get('train', [])
                + results.get('latency', [])] or [0])
    lines = ['## Targets (issue 8)', '', '| what | measured | target | verdict |',
             '|---|---:|---:|---|']
    lines += ['| %s | %s | %s | %s |' % row for row in targets(results)]
    return lines + ['| most GPU memory held (CuPy memory pool, any one case) | %s | | |'
                    % _gib(peak), '']


def _startup_and_tests(results):
    lines = []
    if 'startup' in results:
        s = results['startup']
        lines += ['## Start-up', '',
                  '`import tutorial_lib` and `backend.describe()` in a fresh Python took %.1f s '
                  'and printed `%s` with %d other line(s) on stderr.'
                  % (s['seconds'], s['line'], len(s['stderr_lines'])), '']
    if 'tests' in results:
        t = results['tests']
        lines += ['## Tests marked gpu', '', '`%s`: %s (%.0f s)' % (
            t['command'], t['summary'] or 'exit %d' % t['returncode'], t['seconds']), '']
        lines += ['- %s' % f for f in t.get('failed', [])]
        lines += ['- %s' % s for s in t.get('skipped', [])[:10]]
        if t.get('failed') or t.get('skipped'):
            lines.append('')
    return lines


def _train_section(results):
    if not results.get('train'):
        return []
    lines = ['## Training', '',
             '| case | config | width | in | px | batch | steps | img/s | ms/step | '
             'gen/loss first -> last | GPU memory held |',
             '|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|']
    for r in results['train']:
        lines.append('| %s | %s | %g | %d | %d | %d | %d | %.1f | %.1f | %s | %s |' % (
            r['label'], r['config'], r['width'], r['in_ch'], r['px'], r['batch'],
            r['iterations'], r['img_per_s'], r['ms_per_iteration'],
            loss_text(r['loss_first'], r['loss_last']), _gib(r.get('memory_pool_held', 0))))
    return lines + ['']


def _latency_section(results):
    if not results.get('latency'):
        return []
    lines = ['## Stroke-to-result latency (Colorizer, stage 1 + 2)', '',
             '| case | picture | stage 1 / 2 at | runs | median ms | p90 | min | '
             'prepare | stage 1 | stage 2 | finish | GPU memory held |',
             '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    for r in results['latency']:
        lines.append('| %s | %d px | %d / %d px | %d | %.1f | %.1f | %.1f | %.1f | %.1f | '
                     '%.1f | %.1f | %s |' % (
                         r['label'], r['side'], r['stage1_side'], r['stage2_side'],
                         r['repeats'], r['median_ms'], r['p90_ms'], r['min_ms'],
                         r['prepare_ms'], r['stage1_ms'], r['stage2_ms'], r['finish_ms'],
                         _gib(r.get('memory_pool_held', 0))))
    return lines + ['', 'Each run: a new stroke among the last five, line art in, uint8 RGB '
                    'out (hint rasterization, both networks, the copy back from the GPU and '
                    'the resizes included), after %s warm-up run(s).'
                    % '/'.join(str(r['warmup']) for r in results['latency']), '']


def format_report(results):
    """The markdown report of :func:`gpu_check.run`'s results."""
    lines = (_header(results) + _targets_section(results) + _startup_and_tests(results)
             + _train_section(results) + _latency_section(results))
    if results['failures']:
        lines += ['## Failures', '']
        for name, text in sorted(results['failures'].items()):
            lines += ['### %s' % name, '', '```', text.rstrip(), '```', '']
    return '\n'.join(lines).rstrip() + '\n'


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
    return x


def write_report(results, out):
    """The markdown report at ``out`` and the same figures as JSON next to it."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    atomic.write_bytes(out, format_report(results).encode('utf-8'))
    atomic.write_json(os.path.splitext(out)[0] + '.json', _jsonable(results), indent=1,
                      sort_keys=True)
    return out
