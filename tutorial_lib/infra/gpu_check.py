"""Check the course on a CUDA GPU and write a short report (docs/gpu.md explains each part).

    python -m tutorial_lib.infra.gpu_check                     # or: make gpu-check
    python -m tutorial_lib.infra.gpu_check --out report.md     # default build/gpu-report.md
    python -m tutorial_lib.infra.gpu_check --device cpu        # the same logic on the CPU, tiny
"""
import argparse
import datetime
import os
import re
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field, replace

from . import compat  # noqa: F401
from . import backend as backend_mod
from .gpu_cases import CheckFailed, LatencyCase, TrainCase, run_latency_case, run_train_case
from .gpu_report import loss_text, targets, versions, write_report
from .. import REPO_ROOT, cli, configs, data

GPU_TEST_FILES = ('tests/test_gpu.py', 'tests/test_backend.py')
SECTIONS = ('startup', 'tests', 'train', 'latency')
DEFAULT_OUT = os.path.join('build', 'gpu-report.md')


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


def run_startup(device):
    """``import tutorial_lib`` and ``backend.describe()`` in a fresh Python, as a learner
    would: returns the line it printed and every other line on stderr (warnings)."""
    env = dict(os.environ, TUTORIAL_DEVICE=device, PYTHONWARNINGS='')
    code = ('import time; t = time.perf_counter(); import tutorial_lib; '
            'from tutorial_lib.infra import backend; line = backend.describe(); '
            'print(line); print("%.2f" % (time.perf_counter() - t))')
    proc = subprocess.run([sys.executable, '-c', code], cwd=str(REPO_ROOT), env=env,
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
    files = [f for f in GPU_TEST_FILES if (REPO_ROOT / f).exists()]
    cmd = [sys.executable, '-m', 'pytest', '-q', '-rs', '-p', 'no:cacheprovider', '-m', 'gpu',
           '--color=no'] + files
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(REPO_ROOT), capture_output=True, text=True,
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


def _data_source(choice):
    if choice != 'auto':
        return choice
    try:
        return 'openmoji' if data.is_built() else 'synthetic'
    except Exception:
        return 'synthetic'


def _say(text):
    print(text, flush=True)


def run(plan, skip=(), command=''):
    """Run the plan; returns the results dict (see :func:`gpu_report.format_report`)."""
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
                        loss_text(r['loss_first'], r['loss_last'])))
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
    out = args.out or str(REPO_ROOT / DEFAULT_OUT)
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
