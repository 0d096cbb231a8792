"""CPU speed benchmark: stock Chainer 7.8.1 against tutorial_lib's fast conv path
(:mod:`tutorial_lib.infra.fastconv`, which switches :mod:`tutorial_lib.infra.fastbn`'s batch
normalization and :mod:`tutorial_lib.infra.fastadam`'s Adam update with it).

    python -m tutorial_lib.infra.bench            # or: make bench  (a few minutes)
    python -m tutorial_lib.infra.bench --quick    # smoke run: tiny sizes, one repeat
    make bench-torch                        # + PyTorch CPU side by side (separate venv)

Six workloads, each timed on stock Chainer and on :mod:`tutorial_lib.infra.fastconv` in the same
process, interleaved (stock, fast, fast, stock, ...) after a warm-up, so that other programs
slow both alike; the medians are reported:

* ``train128_full``: one Adam step (forward, L2 loss, backward, update) of the blog's
  U-Net at full width, line-only input (in_ch=1), 128 px, batch 8;
* ``train128_classroom``: the same at the classroom width 0.25;
* ``infer512``: one 512 px picture through the full-width U-Net with 4 input channels
  (the stage-2 input: line + upsampled colors), ``train=False``, no graph;
* ``dis_step``: one Adam step of the discriminator, batch 8 at 128 px, softmax cross
  entropy;
* ``dis_classroom``: the same at the classroom width 0.25 (the Ad-boss of the classroom
  configurations);
* ``hint_classroom``: one L2 Adam step of the shipped hint model
  (:class:`~tutorial_lib.hint_unet.HintFillUNET`, width 0.25, 128 px, batch 8, committed
  sample pictures with simulated hints; its bucket fill is part of the step).

``profile`` (fast path, ``--profile WORKLOAD`` to choose; default the classroom and the full
train steps): the self time of every Chainer function type per step, forward and backward
apart (nodes run inside a backward -- a convolution's input and weight gradients -- listed
as ``(in backward)``), the optimizer update and the rest ('other'), as a table and under
``profile`` in the JSON; cProfile's view of the calling thread goes to
``build/bench-profile.txt``.

``--torch PYTHON`` (``make bench-torch``): the same U-Net in PyTorch CPU, run by
``torch_bench_worker.py`` in a separate environment (never a course requirement), is timed
step by step interleaved with ours (ours, theirs, theirs, ours, ...) for
``train128_full``, ``train128_classroom`` and ``infer512``; ``torch_ratio_<workload>`` =
our median / PyTorch's (above 1: tutorial_lib is slower). Both networks must have the same
parameter count, or the bench stops.

``latency`` (not a stock/fast comparison): the hint canvas's stroke-to-result time with the
shipped classroom checkpoints on the CPU, stage 1 alone (128 px) and stage 1 + stage 2
(512 px), medians -> ``latency_stage1_128_ms`` and ``latency_stage12_512_ms`` (and
``..._gpu_ms`` when a GPU is available).

Also reported: the convolution FLOPs of each workload (2 x multiply-adds of every
convolution, deconvolution and weight gradient Chainer runs, counted from the shapes),
the GFLOP/s that gives, and the float32 matrix-product peak of this machine (numpy
``matmul`` of two 2048 x 2048 matrices) to compare with. The figures are printed as a table
and written to ``build/bench.json`` (``build/bench-quick.json`` for ``--quick``), with the
load average before and after: on a shared machine, read the speedups with it in mind
(a busy core slows stock Chainer's multithreaded BLAS calls far more than the fast path).
"""
import argparse
import gc
import os
import platform
import statistics
import sys
import time

from . import compat  # noqa: F401  (before chainer)
import numpy as np

import chainer
import chainer.functions as F
from chainer.functions.connection import convolution_2d as _c2d
from chainer.functions.connection import deconvolution_2d as _d2d
from chainer.utils import conv as _conv

from . import fastconv
from .. import REPO_ROOT, atomic, cli
from ..models import DIS, UNET

MODES = {'stock': fastconv.stock, 'fast': fastconv.fast}


class ConvFlops(chainer.FunctionHook):
    """Counts the multiply-adds of every 2-D convolution, deconvolution and convolution
    weight gradient applied while the hook is active (backward passes included)."""

    name = 'ConvFlops'

    def __init__(self):
        self.macs = 0

    def forward_preprocess(self, function, in_data):
        if isinstance(function, _c2d.Convolution2DFunction):
            x, W = in_data[:2]
            n, _, h, w = x.shape
            o, c, kh, kw = W.shape
            oh = _conv.get_conv_outsize(h, kh, function.sy, function.ph,
                                        function.cover_all, function.dy)
            ow = _conv.get_conv_outsize(w, kw, function.sx, function.pw,
                                        function.cover_all, function.dx)
            self.macs += n * o * oh * ow * c * kh * kw
        elif isinstance(function, _d2d.Deconvolution2DFunction):
            x, W = in_data[:2]
            self.macs += x.size * W.shape[1] * W.shape[2] * W.shape[3]
        elif isinstance(function, _c2d.Convolution2DGradW):
            x, gy = in_data
            self.macs += gy.size * x.shape[1] * function.kh * function.kw

    @property
    def flops(self):
        return 2 * self.macs


def conv_flops(fn):
    hook = ConvFlops()
    with fastconv.fast(), hook:
        fn()
    return hook.flops


def sgemm_peak(size=2048, repeats=5):
    """float32 GFLOP/s of numpy's matrix product on this machine, best of ``repeats``:
    one ``size``^3 product with BLAS's own threads ('blas_threads'), and one product per
    thread with single-threaded BLAS as fastconv runs them ('fastconv_threads')."""
    rs = np.random.RandomState(0)
    a = rs.standard_normal((size, size)).astype(np.float32)
    b = rs.standard_normal((size, size)).astype(np.float32)
    threads = fastconv._threads()
    outs = [np.empty_like(a) for _ in range(threads)]

    def one():
        np.matmul(a, b, out=outs[0])

    def per_thread():
        fastconv._run(range(threads), lambda i: np.matmul(a, b, out=outs[i]), threads)

    found = {}
    for name, fn, products in (('blas_threads', one, 1),
                               ('fastconv_threads', per_thread, threads)):
        fn()
        best = float('inf')
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        found[name] = round(products * 2 * size ** 3 / best / 1e9, 1)
    return max(found.values()), found


# Seconds spent in each phase of a step ('forward', 'backward', 'optimizer update'), summed
# over steps while a profile runs (None otherwise: then _phase costs two function calls).
_PHASES = None


class _phase:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        if _PHASES is not None:
            _PHASES[self.name] = _PHASES.get(self.name, 0.0) + time.perf_counter() - self.t0


def _adam_step(model, loss_of):
    """One Adam step of ``model`` on ``loss_of(model)``, timed by phase."""
    opt = chainer.optimizers.Adam(alpha=1e-4)
    opt.setup(model)

    def step():
        with _phase('forward'):
            loss = loss_of(model)
        with _phase('backward'):
            model.cleargrads()
            loss.backward()
        with _phase('optimizer update'):
            opt.update()
    return step


def _l2_step(model, x, t):
    """One Adam step with an L2 loss (the course's classroom_l2 recipe)."""
    return _adam_step(model, lambda m: F.mean_squared_error(m(x), t))


def unet_train_step(width, size, batch, in_ch=1):
    np.random.seed(0)
    model = UNET(in_ch=in_ch, width=width)
    rs = np.random.RandomState(1)
    x = rs.uniform(0, 1, (batch, in_ch, size, size)).astype(np.float32)
    t = rs.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
    return _l2_step(model, x, t)


def hint_train_step(width, size, batch):
    """One L2 Adam step of the shipped hint model (:class:`hint_unet.HintFillUNET`: hint
    mask + bucket-fill input + gate; its per-picture bucket fill is part of the step) on
    committed sample pictures with simulated 'informative' hints."""
    from .. import data as data_mod, hints as hints_mod
    from ..hint_unet import HintFillUNET
    from ..models import encode_colors
    pairs = data_mod.load_samples(size)
    lines, colors = pairs.lines[:batch], pairs.colors[:batch]
    rng = np.random.RandomState(2)
    hint_channels = hints_mod.simulate_batch(colors, rng, hints_mod.recipe('informative'),
                                             lines)
    x = hints_mod.make_input(lines, hint_channels)
    t = encode_colors(colors)
    np.random.seed(0)
    return _l2_step(HintFillUNET(width=width), x, t)


def unet_inference(width, size, in_ch=4):
    np.random.seed(0)
    model = UNET(in_ch=in_ch, width=width)
    x = np.random.RandomState(1).uniform(0, 1, (1, in_ch, size, size)).astype(np.float32)

    def infer():
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            return model(x)
    return infer


def dis_train_step(width, size, batch, image_size=None):
    np.random.seed(0)
    model = DIS(width=width, image_size=image_size)
    rs = np.random.RandomState(1)
    x = rs.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
    t = rs.randint(0, 2, batch).astype(np.int32)
    return _adam_step(model, lambda m: F.softmax_cross_entropy(m(x), t))


def time_interleaved(fn, repeats, warmup=1):
    """Median seconds of ``fn`` on stock and on fast Chainer, runs interleaved."""
    for _ in range(warmup):
        for mode in MODES:
            with MODES[mode]():
                fn()
    times = {mode: [] for mode in MODES}
    for r in range(repeats):
        order = ('stock', 'fast') if r % 2 == 0 else ('fast', 'stock')
        for mode in order:
            gc.collect()
            with MODES[mode]():
                t0 = time.perf_counter()
                fn()
                times[mode].append(time.perf_counter() - t0)
    return times


# ----------------------------------------------------------------------------------
# Profile: where a step's time goes
# ----------------------------------------------------------------------------------

class TypeTimer(chainer.FunctionHook):
    """Self time of every function type, forward and backward apart: a node's time
    excludes the nodes it runs inside it (a convolution's backward runs a
    deconvolution and a weight gradient; they are listed as '... (in backward)')."""

    name = 'TypeTimer'

    def __init__(self):
        self.seconds = {}
        self.calls = {}
        self._stack = []

    def _enter(self, key):
        now = time.perf_counter()
        if self._stack:
            top = self._stack[-1]
            self.seconds[top[0]] = self.seconds.get(top[0], 0.0) + now - top[1]
            if top[2] == 'bwd':
                key = (key[0] + ' (in backward)', key[1])
        self.calls[key] = self.calls.get(key, 0) + 1
        self._stack.append([key, now, key[1]])

    def _exit(self):
        now = time.perf_counter()
        key, t0, _ = self._stack.pop()
        self.seconds[key] = self.seconds.get(key, 0.0) + now - t0
        if self._stack:
            self._stack[-1][1] = now

    def forward_preprocess(self, function, in_data):
        self._enter((function.label, 'fwd'))

    def forward_postprocess(self, function, in_data):
        self._exit()

    def backward_preprocess(self, function, in_data, out_grad):
        self._enter((function.label, 'bwd'))

    def backward_postprocess(self, function, in_data, out_grad):
        self._exit()


def profile_step(fn, steps=3, mode='fast', top=25):
    """Per-function-type table and cProfile summary of ``steps`` runs of ``fn`` (after
    one warm-up) on the fast path ('fast') or stock Chainer ('stock').

    Returns a dict: ``step_s`` (mean), ``rows`` [(name, ms per step, share)] -- every
    function type's self time, forward ('fwd') and backward ('bwd') apart, the optimizer
    update, and 'other' (Python, graph bookkeeping, loss, cleargrads: the step's time
    outside all of these) -- and ``cprofile`` (the top ``top`` entries by own time, text;
    cProfile sees the calling thread only, so work the fast path hands to its worker
    threads is missing there, while the table above counts wall time)."""
    import cProfile
    import io
    import pstats
    global _PHASES
    with MODES[mode]():
        fn()
        timer = TypeTimer()
        _PHASES = {}
        try:
            t0 = time.perf_counter()
            with timer:
                for _ in range(steps):
                    fn()
            total = time.perf_counter() - t0
            phases = dict(_PHASES)
        finally:
            _PHASES = None
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(steps):
            fn()
        prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats('tottime').print_stats(top)
    rows = []
    for (label, kind), sec in timer.seconds.items():
        rows.append(('%s %s' % (label, 'forward' if kind == 'fwd' else 'backward')
                     if not label.endswith(' (in backward)') else label, sec / steps))
    update = phases.get('optimizer update', 0.0) / steps
    rows.append(('optimizer update (Adam, all parameters)', update))
    rows.append(('other (Python, graph, loss, cleargrads)',
                 max(0.0, total / steps - sum(r[1] for r in rows))))
    rows.sort(key=lambda r: -r[1])
    step = total / steps
    return {'mode': mode, 'steps': steps, 'step_s': round(step, 4),
            'rows': [(name, round(1e3 * sec, 2), round(sec / step, 4)) for name, sec in rows],
            'phases_s': {k: round(v / steps, 4) for k, v in phases.items()},
            'cprofile': text.getvalue()}


def print_profile(key, prof, limit=14):
    print('\nprofile %s (%s path, %d steps, %.3f s per step): self time per function type'
          % (key, prof['mode'], prof['steps'], prof['step_s']))
    print('| function type | ms per step | share |')
    print('|---|---:|---:|')
    shown = prof['rows'][:limit]
    for name, ms, share in shown:
        print('| %s | %.1f | %.1f%% |' % (name, ms, 100 * share))
    rest = prof['rows'][limit:]
    if rest:
        print('| (%d more types) | %.1f | %.1f%% |' % (
            len(rest), sum(r[1] for r in rest), 100 * sum(r[2] for r in rest)))


# ----------------------------------------------------------------------------------
# PyTorch CPU side by side (make bench-torch): same architecture, same run, interleaved
# ----------------------------------------------------------------------------------

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'torch_bench_worker.py')


class TorchWorker:
    """The PyTorch process (``torch_bench_worker.py`` run by another Python): set up a
    network, then time one step at a time on request."""

    def __init__(self, python, threads=None, stand_in=False, worker=WORKER):
        import subprocess
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
        import json
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


def compare_torch(jobs, worker, repeats, warmup=1, mode='fast', log=None):
    """``jobs``: [(key, our step function, spec, our parameter count)]. For each job the
    worker builds the same network, then our step and PyTorch's alternate (ours, theirs,
    theirs, ours, ...) after ``warmup`` runs of each. Returns {key: entry} with the
    medians and ``ratio`` = ours / PyTorch (above 1: tutorial_lib is slower)."""
    found = {}
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
                        t0 = time.perf_counter()
                        fn()
                        ours.append(time.perf_counter() - t0)
                    else:
                        theirs.append(worker.request(cmd='run', key=key)['seconds'])
                    order.append(side)
        a, b = statistics.median(ours), statistics.median(theirs)
        found[key] = {'ours_s': round(a, 4), 'torch_s': round(b, 4),
                      'ratio': round(a / b, 3), 'params': params,
                      'ours_all_s': [round(t, 4) for t in ours],
                      'torch_all_s': [round(t, 4) for t in theirs], 'order': order}
        if log:
            log('torch %-18s ours %7.3f s  torch %7.3f s  ratio %5.2f'
                % (key, a, b, a / b))
    return found


def recolor_latency(repeats=7, device='cpu'):
    """Stroke-to-result latency of the hint canvas (:mod:`tutorial_lib.widgets`) with the
    shipped classroom checkpoints: a committed sketch at 512 px, one new stroke, then the
    canvas's own recolor (hint image, colorize, result drawn); median ms of ``repeats``
    after one warm-up. Stage 1 alone (the network sees 128 px) and stage 1 + stage 2
    (512 px)."""
    import cv2
    from ..colorize import Colorizer
    from ..hints import Stroke
    from ..widgets import HintCanvas
    line = cv2.imread(str(REPO_ROOT / 'data' / 'samples' / 'sketches' / '1F4F2_256x192.png'),
                      cv2.IMREAD_GRAYSCALE)
    line = cv2.resize(line, (512, 384), interpolation=cv2.INTER_CUBIC)
    canvas = HintCanvas(line, colorizer=Colorizer.from_checkpoints(device=device))
    found = {}
    for key, use_stage2 in (('stage1_128', False), ('stage12_512', True)):
        canvas.stage2.value = use_stage2
        canvas.wait()
        times = []
        for r in range(repeats + 1):
            x = 100 + 30 * (r % 10)
            canvas.add_stroke(Stroke([(x, 100), (x + 40, 250)], '#e03030', 4), recolor=False)
            canvas.recolor()
            times.append(canvas.last_latency_ms)
        found[key] = dict(median_ms=round(statistics.median(times[1:]), 1),
                          all_ms=[round(t, 1) for t in times[1:]])
    return found


def load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def write_json_atomic(path, data):
    atomic.write_json(path, data, indent=2, sort_keys=True)


def workloads(quick):
    """(key, description, factory) of the benchmarks; --quick shrinks them."""
    if quick:
        return [
            ('train128_full', 'U-Net w=1/8 in_ch=1 train step, 32 px, batch 2',
             lambda: unet_train_step(1 / 8, 32, 2)),
            ('train128_classroom', 'U-Net w=1/16 in_ch=1 train step, 32 px, batch 2',
             lambda: unet_train_step(1 / 16, 32, 2)),
            ('infer512', 'U-Net w=1/8 in_ch=4 inference, 64 px, 1 image',
             lambda: unet_inference(1 / 8, 64)),
            ('dis_step', 'DIS w=1/4 train step, 32 px, batch 2',
             lambda: dis_train_step(1 / 4, 32, 2)),
            ('dis_classroom', 'DIS w=1/16 train step, 32 px, batch 2',
             lambda: dis_train_step(1 / 16, 32, 2, image_size=32)),
            ('hint_classroom', 'HintFillUNET w=1/16 train step, 32 px, batch 2',
             lambda: hint_train_step(1 / 16, 32, 2)),
        ]
    return [
        ('train128_full', 'U-Net w=1 in_ch=1 Adam step, 128 px, batch 8',
         lambda: unet_train_step(1.0, 128, 8)),
        ('train128_classroom', 'U-Net w=0.25 in_ch=1 Adam step, 128 px, batch 8',
         lambda: unet_train_step(0.25, 128, 8)),
        ('infer512', 'U-Net w=1 in_ch=4 inference, 512 px, 1 image',
         lambda: unet_inference(1.0, 512)),
        ('dis_step', 'DIS w=1 Adam step, 128 px, batch 8',
         lambda: dis_train_step(1.0, 128, 8)),
        ('dis_classroom', 'Ad-boss DIS w=0.25 Adam step, 128 px, batch 8',
         lambda: dis_train_step(0.25, 128, 8, image_size=128)),
        ('hint_classroom', 'hint model HintFillUNET w=0.25 L2 Adam step, 128 px, batch 8',
         lambda: hint_train_step(0.25, 128, 8)),
    ]


@cli.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed runs per workload and mode (default 5; median reported)')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: tiny networks and sizes, 1 repeat')
    parser.add_argument('--only', action='append', default=None,
                        help='run only this workload (repeatable): train128_full, '
                             'train128_classroom, infer512, dis_step, dis_classroom, '
                             'hint_classroom, latency, profile, torch')
    parser.add_argument('--profile', action='append', default=None, metavar='WORKLOAD',
                        help='profile these workloads on the fast path (repeatable; default '
                             'train128_classroom and train128_full): a self-time table per '
                             'function type, cProfile text in build/bench-profile.txt')
    parser.add_argument('--profile-steps', type=int, default=3,
                        help='steps per profile (default 3)')
    parser.add_argument('--torch', metavar='PYTHON', default=None,
                        help='a Python with PyTorch (make bench-torch makes one): time the '
                             'same networks in PyTorch CPU, interleaved with ours, and write '
                             'torch_ratio_* (ours / PyTorch)')
    parser.add_argument('--torch-threads', type=int, default=None,
                        help="PyTorch's thread count (default: as many as the fast path)")
    parser.add_argument('--torch-stand-in', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--out', default=None,
                        help='JSON output (default: build/bench.json in the repository, '
                             'build/bench-quick.json with --quick)')
    args = parser.parse_args(argv)
    repeats = 1 if args.quick and args.repeats == 5 else max(1, args.repeats)
    out = args.out or os.path.join(  # a smoke run never overwrites real figures
        str(REPO_ROOT), 'build', 'bench-quick.json' if args.quick else 'bench.json')

    was_enabled = fastconv.is_enabled()
    info = fastconv.blas_info()
    result = {
        'quick': bool(args.quick), 'repeats': repeats,
        'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(),
                    'python': platform.python_version(), 'numpy': np.__version__,
                    'chainer': chainer.__version__, 'blas': info},
        'load_average_before': load_average(),
    }
    print('numpy %s, chainer %s, %d CPUs; BLAS %s (%s, %s threads); fastconv threads %s'
          % (np.__version__, chainer.__version__, os.cpu_count() or 0,
             os.path.basename(info['library'] or '?'), info['mode'],
             info['blas_threads'], info['fastconv_threads']))
    print('load average before: %s' % (result['load_average_before'],))
    peak, peaks = sgemm_peak(512 if args.quick else 2048)
    result['sgemm_peak_gflops'] = round(peak, 1)
    result['sgemm_peak_detail_gflops'] = peaks
    print('numpy float32 matmul peak: %.0f GFLOP/s (%s)'
          % (peak, ', '.join('%s %.0f' % kv for kv in sorted(peaks.items()))))
    sys.stdout.flush()

    rows = []
    factories = {key: factory for key, _, factory in workloads(args.quick)}
    try:
        for key, desc, factory in workloads(args.quick):
            if args.only and key not in args.only:
                continue
            fn = factory()
            flops = conv_flops(fn)
            times = time_interleaved(fn, repeats)
            stock, fast = statistics.median(times['stock']), statistics.median(times['fast'])
            entry = {
                'description': desc, 'conv_gflop': round(flops / 1e9, 3),
                'stock_s': round(stock, 4), 'fast_s': round(fast, 4),
                'stock_all_s': [round(t, 4) for t in times['stock']],
                'fast_all_s': [round(t, 4) for t in times['fast']],
                'speedup': round(stock / fast, 3),
                'stock_gflops': round(flops / stock / 1e9, 1),
                'fast_gflops': round(flops / fast / 1e9, 1),
            }
            result[key] = entry
            result[key + '_speedup'] = entry['speedup']
            result[key + '_stock_s'] = entry['stock_s']
            result[key + '_fast_s'] = entry['fast_s']
            result[key + '_fast_gflops'] = entry['fast_gflops']
            rows.append((key, entry))
            print('%-19s stock %7.3f s  fast %7.3f s  x%5.2f  (%s)'
                  % (key, stock, fast, stock / fast, desc))
            sys.stdout.flush()
            del fn
            gc.collect()
    finally:
        if was_enabled:
            fastconv.enable()
        else:
            fastconv.disable()

    profiles = {}
    if not args.only or 'profile' in args.only or args.profile:
        keys = args.profile or ['train128_classroom', 'train128_full']
        texts = []
        for key in keys:
            if key not in factories:
                raise ValueError('--profile: unknown workload %r (known: %s)'
                                 % (key, ', '.join(factories)))
            fn = factories[key]()
            prof = profile_step(fn, max(1, 1 if args.quick else args.profile_steps))
            del fn
            gc.collect()
            profiles[key] = prof
            print_profile(key, prof)
            texts.append('== %s (%s path, %d steps, %.3f s per step) ==\n%s'
                         % (key, prof['mode'], prof['steps'], prof['step_s'],
                            prof['cprofile']))
        result['profile'] = {k: {kk: vv for kk, vv in v.items() if kk != 'cprofile'}
                             for k, v in profiles.items()}
        profile_txt = os.path.join(os.path.dirname(out), 'bench-profile%s.txt'
                                   % ('-quick' if args.quick else ''))
        atomic.write_bytes(profile_txt, '\n'.join(texts).encode())
        print('cProfile (calling thread only) written to %s' % os.path.relpath(profile_txt))
        sys.stdout.flush()

    if args.torch and (not args.only or 'torch' in args.only):
        from ..models import count_params
        specs = torch_specs(args.quick)
        threads = args.torch_threads or fastconv._threads()
        worker = TorchWorker(args.torch, threads, stand_in=args.torch_stand_in)
        try:
            jobs = [(key, factories[key](), spec,
                     count_params(UNET(in_ch=spec['in_ch'], width=spec['width'])))
                    for key, spec in specs.items()]
            found = compare_torch(jobs, worker, repeats, log=print)
        finally:
            worker.close()
        result['torch'] = dict(found, threads=threads, stand_in=bool(args.torch_stand_in))
        for key, entry in found.items():
            result['torch_ratio_' + key] = entry['ratio']
        busy = load_average()
        if busy and busy[0] > 0.5 * (os.cpu_count() or 1):
            print('note: load average %.1f on %d CPUs: PyTorch\'s OpenMP threads wait for '
                  'each other when another program holds a core (far more than the fast '
                  "path's threads do), so these ratios flatter tutorial_lib; rerun on a "
                  'quiet machine' % (busy[0], os.cpu_count() or 1))

    if not args.only or 'latency' in args.only:
        # after the loop: measured with the fast path as this process normally runs it
        lat_repeats = 2 if args.quick else max(3, repeats)
        lat = recolor_latency(lat_repeats, 'cpu')
        result['latency'] = {'description': 'hint canvas stroke-to-result, shipped classroom '
                             'checkpoints (stage 1 width 0.25, stage 2 width 0.125), CPU',
                             'cpu': lat}
        result['latency_stage1_128_ms'] = lat['stage1_128']['median_ms']
        result['latency_stage12_512_ms'] = lat['stage12_512']['median_ms']
        from . import backend as backend_mod
        if backend_mod.resolve('auto').is_gpu:
            lat_gpu = recolor_latency(lat_repeats, 'gpu')
            result['latency']['gpu'] = lat_gpu
            result['latency_stage1_128_gpu_ms'] = lat_gpu['stage1_128']['median_ms']
            result['latency_stage12_512_gpu_ms'] = lat_gpu['stage12_512']['median_ms']
        for dev in ('cpu', 'gpu'):
            for key, e in result['latency'].get(dev, {}).items():
                print('latency %-12s %s  median %7.1f ms  (%d runs)'
                      % (key, dev.upper(), e['median_ms'], len(e['all_ms'])))

    result['load_average_after'] = load_average()
    if args.only and os.path.exists(out):
        # a partial run (--only) updates the figures it measured and keeps the others
        import json
        with open(out) as f:
            result = dict(json.load(f), **result)
    write_json_atomic(out, result)

    print()
    print('| workload | stock (s) | fast (s) | speedup | conv GFLOP | fast GFLOP/s '
          '| % of peak |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for key, e in rows:
        print('| %s | %.3f | %.3f | %.2fx | %.1f | %.0f | %.0f%% |'
              % (key, e['stock_s'], e['fast_s'], e['speedup'], e['conv_gflop'],
                 e['fast_gflops'], 100 * e['fast_gflops'] / peak))
    if 'torch' in result and (not args.only or 'torch' in args.only):
        print()
        print('| workload | tutorial_lib fast (s) | PyTorch CPU (s) | ratio (ours / torch) |')
        print('|---|---:|---:|---:|')
        for key, e in result['torch'].items():
            if isinstance(e, dict):
                print('| %s | %.3f | %.3f | %.2fx |' % (key, e['ours_s'], e['torch_s'],
                                                      e['ratio']))
    print()
    print('sgemm peak %.0f GFLOP/s; load average before %s, after %s; %d repeat(s); '
          'medians. Written to %s'
          % (peak, result['load_average_before'], result['load_average_after'],
             repeats, os.path.relpath(out)))
    return result


if __name__ == '__main__':
    main()
