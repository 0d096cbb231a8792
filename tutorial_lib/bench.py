"""CPU speed benchmark: stock Chainer 7.8.1 against tutorial_lib's fast conv path
(:mod:`tutorial_lib.fastconv`, which switches :mod:`tutorial_lib.fastbn`'s batch
normalization with it).

    python -m tutorial_lib.bench            # or: make bench  (a few minutes)
    python -m tutorial_lib.bench --quick    # smoke run: tiny sizes, one repeat

Four workloads, each timed on stock Chainer and on :mod:`tutorial_lib.fastconv` in the same
process, interleaved (stock, fast, fast, stock, ...) after a warm-up, so that other programs
slow both alike; the medians are reported:

* ``train128_full``: one Adam step (forward, L2 loss, backward, update) of the blog's
  U-Net at full width, line-only input (in_ch=1), 128 px, batch 8;
* ``train128_classroom``: the same at the classroom width 0.25;
* ``infer512``: one 512 px picture through the full-width U-Net with 4 input channels
  (the stage-2 input: line + upsampled colors), ``train=False``, no graph;
* ``dis_step``: one Adam step of the discriminator, batch 8 at 128 px, softmax cross
  entropy.

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

from . import atomic, cli, fastconv
from .models import DIS, UNET

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


def unet_train_step(width, size, batch, in_ch=1):
    np.random.seed(0)
    model = UNET(in_ch=in_ch, width=width)
    opt = chainer.optimizers.Adam(alpha=1e-4)
    opt.setup(model)
    rs = np.random.RandomState(1)
    x = rs.uniform(0, 1, (batch, in_ch, size, size)).astype(np.float32)
    t = rs.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)

    def step():
        y = model(x)
        loss = F.mean_squared_error(y, t)
        model.cleargrads()
        loss.backward()
        opt.update()
    return step


def unet_inference(width, size, in_ch=4):
    np.random.seed(0)
    model = UNET(in_ch=in_ch, width=width)
    x = np.random.RandomState(1).uniform(0, 1, (1, in_ch, size, size)).astype(np.float32)

    def infer():
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            return model(x)
    return infer


def dis_train_step(width, size, batch):
    np.random.seed(0)
    model = DIS(width=width)
    opt = chainer.optimizers.Adam(alpha=1e-4)
    opt.setup(model)
    rs = np.random.RandomState(1)
    x = rs.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
    t = rs.randint(0, 2, batch).astype(np.int32)

    def step():
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        opt.update()
    return step


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


def recolor_latency(repeats=7, device='cpu'):
    """Stroke-to-result latency of the hint canvas (:mod:`tutorial_lib.widgets`) with the
    shipped classroom checkpoints: a committed sketch at 512 px, one new stroke, then the
    canvas's own recolor (hint image, colorize, result drawn); median ms of ``repeats``
    after one warm-up. Stage 1 alone (the network sees 128 px) and stage 1 + stage 2
    (512 px)."""
    import cv2
    from . import REPO_ROOT
    from .colorize import Colorizer
    from .hints import Stroke
    from .widgets import HintCanvas
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
    """(key, description, factory) of the four benchmarks; --quick shrinks them."""
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
                             'train128_classroom, infer512, dis_step, latency')
    parser.add_argument('--out', default=None,
                        help='JSON output (default: build/bench.json in the repository, '
                             'build/bench-quick.json with --quick)')
    args = parser.parse_args(argv)
    repeats = 1 if args.quick and args.repeats == 5 else max(1, args.repeats)
    out = args.out or os.path.join(  # a smoke run never overwrites real figures
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'build',
        'bench-quick.json' if args.quick else 'bench.json')

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
    print()
    print('sgemm peak %.0f GFLOP/s; load average before %s, after %s; %d repeat(s); '
          'medians. Written to %s'
          % (peak, result['load_average_before'], result['load_average_after'],
             repeats, os.path.relpath(out)))
    return result


if __name__ == '__main__':
    main()
