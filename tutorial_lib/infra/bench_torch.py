"""PyTorch CPU side by side (``make bench-torch``): the same U-Net, run by
``torch_bench_worker.py`` in a separate environment, timed step by step interleaved with ours."""
import gc
import json
import os
import statistics
import subprocess
import time

from .bench_workloads import MODES

# Each side runs this many steps back to back and the first is not timed: a training loop
# runs steps back to back, and the first step after the other side's turn pays for it (the
# other process's OpenMP threads still spinning, cold caches).
BLOCK = 3
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'torch_bench_worker.py')


class TorchWorker:
    """The PyTorch process (``torch_bench_worker.py`` run by another Python): set up a
    network, then time one step at a time on request."""

    def __init__(self, python, threads=None, stand_in=False, worker=WORKER):
        cmd = [python, worker]
        if threads:
            cmd += ['--threads', str(threads)]
        if stand_in:
            cmd.append('--stand-in')
        env = dict(os.environ)
        env.pop('PYTHONPATH', None)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)

    def request(self, **req):
        self.proc.stdin.write(json.dumps(req) + '\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError('the PyTorch benchmark process ended (exit status %s)'
                               % self.proc.wait())
        reply = json.loads(line)
        if not reply.get('ok'):
            raise RuntimeError('PyTorch benchmark: %s' % reply.get('error'))
        return reply

    def close(self):
        if self.proc.poll() is None:
            try:
                self.request(cmd='quit')
            except (RuntimeError, OSError, ValueError):
                pass
            self.proc.wait(timeout=30)


def torch_specs(quick):
    """The torch_ratio_* workloads: the same keys and sizes as :func:`workloads`."""
    if quick:
        return {'train128_full': dict(kind='train', width=1 / 8, size=32, batch=2, in_ch=1),
                'train128_classroom': dict(kind='train', width=1 / 16, size=32, batch=2,
                                           in_ch=1),
                'infer512': dict(kind='infer', width=1 / 8, size=64, in_ch=4)}
    return {'train128_full': dict(kind='train', width=1.0, size=128, batch=8, in_ch=1),
            'train128_classroom': dict(kind='train', width=0.25, size=128, batch=8, in_ch=1),
            'infer512': dict(kind='infer', width=1.0, size=512, in_ch=4)}


def compare_torch(jobs, worker, repeats, warmup=1, mode='fast', log=None, block=BLOCK):
    """``jobs``: [(key, our step function, spec, our parameter count)]. For each job the
    worker builds the same network, then turns alternate (ours, theirs, theirs, ours, ...)
    after ``warmup`` runs of each; in a turn a side runs ``block`` steps back to back and
    all but the first are timed. Returns {key: entry} with the medians and ``ratio`` =
    ours / PyTorch (above 1: tutorial_lib is slower)."""
    found = {}
    skip = 1 if block > 1 else 0
    for key, fn, spec, params in jobs:
        reply = worker.request(cmd='setup', key=key, **spec)
        if params is not None and reply['params'] >= 0 and reply['params'] != params:
            raise RuntimeError('%s: PyTorch network has %d parameters, ours %d'
                               % (key, reply['params'], params))
        with MODES[mode]():
            for _ in range(warmup):
                fn()
                worker.request(cmd='run', key=key)
            ours, theirs, order = [], [], []
            for r in range(repeats):
                for side in (('ours', 'torch') if r % 2 == 0 else ('torch', 'ours')):
                    gc.collect()
                    if side == 'ours':
                        for i in range(block):
                            t0 = time.perf_counter()
                            fn()
                            if i >= skip:
                                ours.append(time.perf_counter() - t0)
                    else:
                        steps = worker.request(cmd='run', key=key, times=block)
                        theirs.extend(steps['all_seconds'][skip:])
                    order.append(side)
        a, b = statistics.median(ours), statistics.median(theirs)
        found[key] = {'ours_s': round(a, 4), 'torch_s': round(b, 4),
                      'ratio': round(a / b, 3), 'params': params, 'block': block,
                      'ours_all_s': [round(t, 4) for t in ours],
                      'torch_all_s': [round(t, 4) for t in theirs], 'order': order}
        if log:
            log('torch %-18s ours %7.3f s  torch %7.3f s  ratio %5.2f'
                % (key, a, b, a / b))
    return found
