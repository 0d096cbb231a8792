"""Check the course on a CUDA GPU and write a short report.

    python -m tutorial_lib.infra.gpu_check                     # or: make gpu-check
    python -m tutorial_lib.infra.gpu_check --out report.md     # default build/gpu-report.md
    python -m tutorial_lib.infra.gpu_check --device cpu        # the same logic on the CPU, tiny

On a GPU it runs, in order, and times:

1. **start-up**: ``import tutorial_lib`` + ``backend.describe()`` in a fresh Python: the
   backend must pick the GPU and a learner must see one line, not a wall of warnings;
2. **tests**: the pytest tests marked ``gpu`` (``tests/test_gpu.py``, ``tests/test_backend.py``);
   on a GPU every one must run: a GPU test skipped there fails this part;
3. **training**: a few hundred Adam steps of each of these, on the updaters the course
   trains with: the classroom L2, Ad-boss, hint and stage-2 configs and the blog's
   full-width configs (width 1, 128 px, batch 16; L2 and Ad-boss). Data: the OpenMoji
   TRAIN split when ``make data`` has built it, else synthetic shapes (``--data``). For
   each: pictures per second, seconds per step, first and last loss (must be finite),
   GPU memory held (CuPy's memory pool, emptied before each case);
4. **latency**: stroke-to-result time at 512 px, stage 1 + 2, through the
   :class:`colorize.Colorizer` with the shipped checkpoints (as the hint canvas calls it:
   a new stroke each time, everything from the line art to the uint8 result), and the
   same with untrained full-width networks (the blog's scale);

then writes a markdown report (device, date, versions, the numbers, the issue's targets:
full-width 128 px training >= 300 img/s, stroke-to-result < 30 ms) to ``--out`` and
the same figures as JSON next to it. Exit status: 0 when every part ran, 1 when a part
failed (the report says which and why), 2 when there is no usable GPU (then it prints one
line, ``no GPU: <reason>``, and writes nothing).

``--device cpu`` (or ``--dry-run``) runs every part on the CPU with tiny networks, pictures
and iteration counts (seconds): that is how the tests check this script without a GPU.
Its numbers are not GPU measurements and its report says so.
"""
import argparse
import datetime
import gc
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field, replace

from . import compat  # noqa: F401
import numpy as np

from . import backend as backend_mod
from .. import cli

TARGET_TRAIN_IMG_S = 300.0   # full-width 128 px training on an H100-class GPU (issue 8)
TARGET_LATENCY_MS = 30.0     # stroke-to-result at 512 px, stage 1 + 2 (issue 8)
GPU_TEST_FILES = ('tests/test_gpu.py', 'tests/test_backend.py')
SECTIONS = ('startup', 'tests', 'train', 'latency')
DEFAULT_OUT = os.path.join('build', 'gpu-report.md')


# ---------------------------------------------------------------------------------------
# What to run
# ---------------------------------------------------------------------------------------

@dataclass
class TrainCase:
    label: str
    config: object          # configs.TrainConfig (or a subclass)
    iterations: int
    warmup: int = 5
    kind: str = 'rec'       # 'rec', 'adv', 'hints' or 'stage2'
    headline: bool = False  # its img/s is compared with TARGET_TRAIN_IMG_S


@dataclass
class LatencyCase:
    label: str
    stage1: str             # a checkpoint name/path, or 'untrained' (full width, random)
    stage2: str
    side: int               # the picture's side in pixels
    stage1_side: int = 128
    stage2_side: int = 512
    repeats: int = 50
    warmup: int = 5
    headline: bool = False  # its median is compared with TARGET_LATENCY_MS


@dataclass
class Plan:
    device: str             # 'gpu' or 'cpu'
    tiny: bool              # True: dry-run sizes (logic check, not a measurement)
    train: list = field(default_factory=list)
    latency: list = field(default_factory=list)
    data: str = 'auto'      # 'auto', 'synthetic' or 'openmoji'
    train_pictures: int = 128
    test_timeout: int = 600


def make_plan(device='gpu', tiny=False, iterations=None, data='auto'):
    """The cases to run: full size for a GPU, tiny (``tiny=True``) for a logic check."""
    from .. import configs
    g = configs.get
    train = [
        TrainCase('classroom, L2', g('classroom_l2'), 300, 10, 'rec'),
        TrainCase('classroom, Ad-boss', g('classroom_adv'), 100, 5, 'adv'),
        TrainCase('classroom, hints (4 channels)', g('classroom_hints_blog'), 100, 5, 'hints'),
        TrainCase('classroom, stage 2 (512 px, 256 px crops)', g('classroom_stage2'), 50, 3,
                  'stage2'),
        TrainCase('full width, L2 (blog_l2)', g('blog_l2'), 300, 10, 'rec', headline=True),
        TrainCase('full width, Ad-boss (blog_adv)', g('blog_adv'), 100, 5, 'adv'),
    ]
    latency = [
        LatencyCase('shipped checkpoints (classroom_hints + classroom_stage2)',
                    'classroom_hints', 'classroom_stage2', 512, headline=True),
        LatencyCase('untrained, full width (the blog\'s scale)', 'untrained', 'untrained', 512,
                    repeats=30, warmup=3),
    ]
    plan = Plan(device, tiny, train, latency, data)
    if tiny:
        small = dict(width=1 / 16, size=32, batch_size=2, train_limit=None)
        plan.train = [replace(c, config=c.config.replace(
            **(dict(small, size=64, crop=32, stage1_size=16) if c.kind == 'stage2' else small)),
            iterations=2, warmup=1) for c in train]
        plan.latency = [replace(latency[0], side=128, stage1_side=32, stage2_side=64,
                                repeats=2, warmup=1)]
        plan.train_pictures = 8
        plan.test_timeout = 300
    if iterations is not None:
        plan.train = [replace(c, iterations=int(iterations)) for c in plan.train]
    return plan


# ---------------------------------------------------------------------------------------
# The parts
# ---------------------------------------------------------------------------------------

def _repo():
    from .. import REPO_ROOT
    return REPO_ROOT


def run_startup(device):
    """``import tutorial_lib`` and ``backend.describe()`` in a fresh Python, as a learner
    would: returns the line it printed and every other line on stderr (warnings)."""
    env = dict(os.environ, TUTORIAL_DEVICE=device, PYTHONWARNINGS='')
    code = ('import time; t = time.perf_counter(); import tutorial_lib; '
            'from tutorial_lib import backend; line = backend.describe(); '
            'print(line); print("%.2f" % (time.perf_counter() - t))')
    proc = subprocess.run([sys.executable, '-c', code], cwd=str(_repo()), env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout.strip().splitlines()
    noise = [line for line in proc.stderr.splitlines() if line.strip()]
    if proc.returncode != 0 or len(out) < 2:
        raise RuntimeError('import tutorial_lib failed (exit %d): %s'
                           % (proc.returncode, (noise or ['no output'])[-1]))
    result = dict(line=out[-2], seconds=float(out[-1]), stderr_lines=noise)
    if device == 'gpu' and not out[-2].startswith('GPU'):
        raise RuntimeError('the backend did not pick the GPU: %s' % out[-2])
    if noise:
        raise RuntimeError('a learner sees %d more line(s) on stderr besides the backend '
                           'line, first: %s' % (len(noise), noise[0]))
    return result


def run_tests(plan):
    """pytest -m gpu on GPU_TEST_FILES in a fresh Python; returns its counts."""
    files = [f for f in GPU_TEST_FILES if (_repo() / f).exists()]
    cmd = [sys.executable, '-m', 'pytest', '-q', '-rs', '-p', 'no:cacheprovider', '-m', 'gpu',
           '--color=no'] + files
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(_repo()), capture_output=True, text=True,
                          timeout=plan.test_timeout)
    lines = proc.stdout.strip().splitlines()
    summary = lines[-1] if lines else ''
    counts = {k: int(n) for n, k in re.findall(
        r'(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)', summary)}
    result = dict(command=' '.join(['python'] + cmd[1:]), returncode=proc.returncode,
                  summary=summary.strip('= '), counts=counts,
                  seconds=round(time.perf_counter() - t0, 1))
    failed = [line for line in lines if line.startswith(('FAILED', 'ERROR'))]
    result['failed'] = failed
    result['skipped'] = [line for line in lines if line.startswith('SKIPPED')]
    if proc.returncode not in (0, 5) or failed:
        result['tail'] = '\n'.join(lines[-40:] + proc.stderr.strip().splitlines()[-10:])
        raise CheckFailed('pytest -m gpu: %s' % (result['summary'] or 'exit %d'
                                                 % proc.returncode), result)
    if plan.device == 'gpu' and not counts.get('passed'):
        raise CheckFailed('pytest -m gpu ran no test on the GPU (%s)' % result['summary'],
                          result)
    if plan.device == 'gpu' and counts.get('skipped'):
        # on a GPU machine a skipped GPU test is an untested GPU path, not a pass
        raise CheckFailed('pytest -m gpu skipped %d test(s) on a GPU machine (%s)'
                          % (counts['skipped'], result['summary']), result)
    return result


class CheckFailed(RuntimeError):
    """A part failed, with what it measured so far."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result or {}


def _train_pairs(config, n, source):
    from .. import data, pairs
    if source == 'openmoji':
        return data.load_split_resized('train', config.size, limit=n, seed=config.seed)
    return pairs.synthetic_pairs(n, config.size, seed=config.seed, split='train')


def _stage1_model(config, b):
    """The frozen stage 1 a stage-2 case refines: the config's checkpoint, else an
    untrained hint U-Net of the same width (the speed is what is measured)."""
    from .. import stage2
    from ..models import UNET
    try:
        return stage2.load_unet(config.stage1, backend=b)
    except FileNotFoundError:
        gen = UNET(in_ch=4, width=config.width)
        gen.to_device(b.chainer_device)
        return gen


def _losses(observation):
    return {k: float(backend_mod.to_cpu(v)) for k, v in sorted(observation.items())
            if k.endswith('loss') or k.endswith('/acc')}


def _fresh_memory(b):
    gc.collect()   # drop the previous case's networks before emptying CuPy's pool
    backend_mod.free_memory(b)


def run_train_case(case, b, source='synthetic', pictures=128):
    """``case.iterations`` timed Adam steps (after ``case.warmup`` untimed ones) of the
    updater the course uses for this kind of config, on backend ``b``."""
    import chainer
    from .. import stage2, training
    from ..pairs import SimplePairs
    cfg = case.config
    _fresh_memory(b)
    n = max(pictures, 2 * cfg.batch_size)
    pairs = _train_pairs(cfg, n, source)
    gen, dis = training.build_models(cfg, b, stage2.Stage2UNET if case.kind == 'stage2'
                                     else None)
    input_fn = None
    if case.kind == 'stage2':
        gen1 = _stage1_model(cfg, b)
        small = (cfg.stage1_size, cfg.stage1_size)
        lines_s = np.stack([stage2.resize(x, small) for x in pairs.lines])
        colors_s = np.stack([stage2.resize(x, small) for x in pairs.colors])
        low = stage2.stage1_colors(gen1, lines_s, colors_s, seed=cfg.seed)
        del gen1
        pairs = SimplePairs(list(pairs.names), pairs.lines,
                            stage2._Zip(pairs.colors, low), 'train')
    elif cfg.in_ch == 4:
        input_fn = stage2.hint_input_fn()
    it = training.make_iterator(pairs, cfg.batch_size, cfg.seed)
    opt_g = training._adam(cfg.alpha_g, cfg.beta1, cfg.weight_decay, gen)
    if dis is not None:
        opt_d = training._adam(cfg.alpha_d, cfg.beta1, cfg.weight_decay, dis)
        updater = training.AdversarialUpdater(it, gen, dis, opt_g, opt_d, cfg.adv_weight,
                                              cfg.rec_loss, cfg.seed, cfg.flip, b, input_fn)
    elif case.kind == 'stage2':
        updater = stage2.stage2_updater_cls(cfg)(it, gen, opt_g, cfg.rec_loss, cfg.seed,
                                                 cfg.flip, b)
    else:
        updater = training.ReconstructionUpdater(it, gen, opt_g, cfg.rec_loss, cfg.seed,
                                                 cfg.flip, b, input_fn)
    reporter = chainer.Reporter()
    reporter.add_observer('gen', gen)
    if dis is not None:
        reporter.add_observer('dis', dis)

    def step():
        observation = {}
        with reporter.scope(observation):
            updater.update()
        return observation

    first = None
    for _ in range(max(1, case.warmup)):
        obs = step()
        if first is None:
            first = _losses(obs)
    backend_mod.synchronize(b)
    t0 = time.perf_counter()
    for _ in range(case.iterations):
        obs = step()
    backend_mod.synchronize(b)
    seconds = time.perf_counter() - t0
    last = _losses(obs)
    side = (getattr(cfg, 'crop', None) or cfg.size) if case.kind == 'stage2' else cfg.size
    result = dict(label=case.label, config=cfg.name, kind=case.kind, width=cfg.width,
                  in_ch=cfg.in_ch, px=side, batch=cfg.batch_size,
                  iterations=case.iterations, seconds=round(seconds, 3),
                  img_per_s=round(case.iterations * cfg.batch_size / seconds, 1)
                  if seconds > 0 else float('inf'),
                  ms_per_iteration=round(1e3 * seconds / max(1, case.iterations), 2),
                  loss_first=first, loss_last=last, data=source, headline=case.headline,
                  device_array=backend_mod.xp_of(gen.c0.W.array).__name__)
    result.update({'memory_' + k: v for k, v in backend_mod.memory_stats(b).items()})
    bad = {k: v for k, v in list(first.items()) + list(last.items()) if not np.isfinite(v)}
    if bad:
        raise CheckFailed('%s: losses not finite: %s' % (case.label, bad), result)
    if result['device_array'] != b.xp.__name__:
        raise CheckFailed('%s: the U-Net\'s weights are %s arrays, not %s'
                          % (case.label, result['device_array'], b.xp.__name__), result)
    return result


def _latency_models(case):
    if case.stage1 != 'untrained':
        return case.stage1, case.stage2
    from ..models import UNET
    from ..stage2 import Stage2UNET
    np.random.seed(0)
    return UNET(in_ch=4, width=1.0), Stage2UNET(in_ch=4, width=1.0)


def _sketch(side):
    """A committed sample line drawing at side x side, or synthetic shapes without it."""
    try:
        from .. import data
        return np.ascontiguousarray(data.load_samples(size=side).lines[0])
    except Exception:
        from ..pairs import synthetic_pairs
        return synthetic_pairs(1, side, seed=3).lines[0]


PALETTE = ('#8b4513', '#1e90ff', '#ffd700', '#32cd32', '#ff69b4', '#ff4500')


def strokes_for(i, side, keep=5):
    """The hints after the i-th drag of a learner: the last ``keep`` short strokes."""
    from ..hints import Stroke
    out = []
    for j in range(max(0, i - keep + 1), i + 1):
        rs = np.random.RandomState(j)
        x, y = rs.uniform(0.1, 0.9, 2) * side
        dx, dy = rs.uniform(-0.1, 0.1, 2) * side
        out.append(Stroke([(x, y), (x + dx, y + dy)], PALETTE[j % len(PALETTE)],
                          radius=max(1.0, side / 128)))
    return out


def run_latency_case(case, b):
    """Stroke-to-result milliseconds of ``Colorizer.colorize`` with stage 1 + 2."""
    from ..colorize import Colorizer
    _fresh_memory(b)
    s1, s2 = _latency_models(case)
    col = Colorizer(s1, s2, device=b.name, stage1_side=case.stage1_side,
                    stage2_side=case.stage2_side)
    line = _sketch(case.side)
    for i in range(max(1, case.warmup)):
        col.colorize(line, hints=strokes_for(i, case.side), stage2=True)
    times, parts = [], []
    for i in range(case.repeats):
        hints = strokes_for(case.warmup + i, case.side)
        t0 = time.perf_counter()
        out = col.colorize(line, hints=hints, stage2=True)
        times.append((time.perf_counter() - t0) * 1e3)
        parts.append(col.last_timing)
    if out.shape != line.shape + (3,) or out.dtype != np.uint8:
        raise CheckFailed('%s: the Colorizer returned %s %s for a %s picture'
                          % (case.label, out.dtype, out.shape, line.shape))
    t = np.array(times)
    result = dict(label=case.label, side=case.side, stage1_side=case.stage1_side,
                  stage2_side=case.stage2_side, repeats=case.repeats, warmup=case.warmup,
                  median_ms=round(float(np.median(t)), 2),
                  p90_ms=round(float(np.percentile(t, 90)), 2),
                  min_ms=round(float(t.min()), 2), headline=case.headline,
                  models=col.describe().split('; device:')[0])
    for key in ('prepare', 'stage1', 'stage2', 'finish'):
        result[key + '_ms'] = round(float(np.median([p[key] for p in parts])), 2)
    result.update({'memory_' + k: v for k, v in backend_mod.memory_stats(b).items()})
    return result


# ---------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------

def versions():
    import chainer
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


def _loss_text(first, last, key='gen/loss'):
    if not first or key not in first:
        return '-'
    return '%.4f -> %.4f' % (first[key], last.get(key, float('nan')))


def format_report(results):
    dev = results.get('gpu') or {}
    tiny = results.get('tiny')
    title = dev.get('name') if results['device'] == 'gpu' else 'CPU'
    lines = ['# GPU check: %s' % title, '']
    if tiny or results['device'] != 'gpu':
        lines += ['**Dry run on the %s with tiny networks and iteration counts: this checks the '
                  'script\'s logic; the numbers are not GPU measurements.**'
                  % results['device'].upper(), '']
    v = results['versions']
    lines += ['- date: %s' % results['date'],
              '- device: %s' % (
                  '%s (%s GiB, compute capability %s, %s multiprocessors), CUDA runtime %s, '
                  'driver %s' % (dev.get('name'), dev.get('memory_gib', '?'),
                                 dev.get('compute_capability', '?'),
                                 dev.get('multiprocessors', '?'), dev.get('cuda_runtime', '?'),
                                 dev.get('cuda_driver', '?'))
                  if dev else 'CPU (%s)' % platform.machine()),
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
    rows = targets(results)
    peak = max([r.get('memory_pool_held', 0) for r in results.get('train', [])
                + results.get('latency', [])] or [0])
    lines += ['## Targets (issue 8)', '', '| what | measured | target | verdict |',
              '|---|---:|---:|---|']
    lines += ['| %s | %s | %s | %s |' % row for row in rows]
    lines += ['| most GPU memory held (CuPy memory pool, any one case) | %s | | |' % _gib(peak),
              '']
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
    if results.get('train'):
        lines += ['## Training', '',
                  '| case | config | width | in | px | batch | steps | img/s | ms/step | '
                  'gen/loss first -> last | GPU memory held |',
                  '|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|']
        for r in results['train']:
            lines.append('| %s | %s | %g | %d | %d | %d | %d | %.1f | %.1f | %s | %s |' % (
                r['label'], r['config'], r['width'], r['in_ch'], r['px'], r['batch'],
                r['iterations'], r['img_per_s'], r['ms_per_iteration'],
                _loss_text(r['loss_first'], r['loss_last']),
                _gib(r.get('memory_pool_held', 0))))
        lines.append('')
    if results.get('latency'):
        lines += ['## Stroke-to-result latency (Colorizer, stage 1 + 2)', '',
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
        lines += ['', 'Each run: a new stroke among the last five, line art in, uint8 RGB out '
                  '(hint rasterization, both networks, the copy back from the GPU and the '
                  'resizes included), after %s warm-up run(s).'
                  % '/'.join(str(r['warmup']) for r in results['latency']), '']
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
    from .. import atomic
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    atomic.write_bytes(out, format_report(results).encode('utf-8'))
    atomic.write_json(os.path.splitext(out)[0] + '.json', _jsonable(results), indent=1,
                      sort_keys=True)
    return out


# ---------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------

def _data_source(choice):
    if choice != 'auto':
        return choice
    try:
        from .. import data
        return 'openmoji' if data.is_built() else 'synthetic'
    except Exception:
        return 'synthetic'


def _say(text):
    print(text, flush=True)


def run(plan, skip=(), command=''):
    """Run the plan; returns the results dict (see :func:`format_report`)."""
    b = backend_mod.select(plan.device)
    source = _data_source(plan.data)
    results = dict(device=plan.device, tiny=plan.tiny, command=command, data=source,
                   date=datetime.datetime.now(datetime.timezone.utc).strftime(
                       '%Y-%m-%d %H:%M UTC'),
                   backend=backend_mod.describe(), gpu=backend_mod.gpu_info(
                       b.xp if b.is_gpu else None) if b.is_gpu else {},
                   versions=versions(), failures={}, train=[], latency=[])
    _say('Device: ' + results['backend'])

    def part(name, fn):
        t0 = time.perf_counter()
        try:
            value = fn()
            _say('  ok     %s (%.1f s)' % (name, time.perf_counter() - t0))
            return value
        except Exception as exc:
            detail = ''.join(traceback.format_exception_only(type(exc), exc)).strip()
            extra = getattr(exc, 'result', {}) or {}
            if extra.get('tail'):
                detail += '\n\n' + extra['tail']
            elif not isinstance(exc, CheckFailed):
                detail = traceback.format_exc(limit=6)
            results['failures'][name] = detail
            _say('  FAILED %s: %s' % (name, str(exc).splitlines()[0] if str(exc) else
                                      exc.__class__.__name__))
            return extra or None

    if 'startup' not in skip:
        r = part('start-up', lambda: run_startup(plan.device))
        if r:
            results['startup'] = r
    if 'tests' not in skip:
        r = part('tests marked gpu', lambda: run_tests(plan))
        if r:
            results['tests'] = r
    backend_mod.select(plan.device)   # the tests ran in another process; be sure anyway
    if 'train' not in skip:
        for case in plan.train:
            r = part('training: ' + case.label, lambda c=case: run_train_case(
                c, b, source, plan.train_pictures))
            if r and 'img_per_s' in r:
                results['train'].append(r)
                _say('         %.1f img/s, %.1f ms/step, gen/loss %s'
                     % (r['img_per_s'], r['ms_per_iteration'],
                        _loss_text(r['loss_first'], r['loss_last'])))
    if 'latency' not in skip:
        for case in plan.latency:
            r = part('latency: ' + case.label, lambda c=case: run_latency_case(c, b))
            if r and 'median_ms' in r:
                results['latency'].append(r)
                _say('         median %.1f ms (stage 1 %.1f, stage 2 %.1f)'
                     % (r['median_ms'], r['stage1_ms'], r['stage2_ms']))
    backend_mod.free_memory(b)
    return results


@cli.command
def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m tutorial_lib.infra.gpu_check',
                                description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default=None,
                   help='markdown report (default %s in the repository; a .json with the '
                        'same figures is written next to it)' % DEFAULT_OUT)
    p.add_argument('--device', choices=['gpu', 'cpu'], default='gpu',
                   help='gpu (default; exits with status 2 when there is none) or cpu (a '
                        'dry run of the same logic, tiny sizes unless --full-size)')
    p.add_argument('--dry-run', action='store_true',
                   help='tiny networks, pictures and iteration counts (seconds), on any device')
    p.add_argument('--full-size', action='store_true',
                   help='with --device cpu: the GPU sizes on the CPU (very slow)')
    p.add_argument('--iterations', type=int, default=None,
                   help='timed training steps per case (default: 300 or 100 per case)')
    p.add_argument('--data', choices=['auto', 'synthetic', 'openmoji'], default='auto',
                   help='training pictures: OpenMoji if built (auto, default) or synthetic')
    p.add_argument('--skip', default='',
                   help='comma-separated parts to leave out: ' + ', '.join(SECTIONS))
    args = p.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(',') if s.strip()}
    unknown = skip - set(SECTIONS)
    if unknown:
        p.error('unknown part(s) for --skip: %s (known: %s)' % (', '.join(sorted(unknown)),
                                                                ', '.join(SECTIONS)))
    if args.device == 'gpu':
        cupy, why = backend_mod._probe_gpu()
        if cupy is None:
            print('no GPU: %s' % why, file=sys.stderr)
            return 2
    tiny = args.dry_run or (args.device == 'cpu' and not args.full_size)
    plan = make_plan(args.device, tiny, args.iterations, args.data)
    out = args.out or str(_repo() / DEFAULT_OUT)
    command = 'python -m tutorial_lib.infra.gpu_check ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    results = run(plan, skip, command.strip())
    write_report(results, out)
    n_fail = len(results['failures'])
    verdicts = ', '.join('%s: %s (%s)' % (row[0].split(',')[0], row[1], row[3])
                         for row in targets(results))
    _say('%s. Report: %s%s' % ('Every part ran' if not n_fail else '%d part(s) FAILED' % n_fail,
                               os.path.relpath(out), ('; ' + verdicts) if verdicts else ''))
    return 1 if n_fail else 0


if __name__ == '__main__':
    sys.exit(main())
