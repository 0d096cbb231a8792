"""CPU speed benchmark: stock Chainer 7.8.1 against the course's fast CPU path
(:mod:`tutorial_lib.infra.fastpath`; how it works: docs/fast-cpu-path.md).

    python -m tutorial_lib.infra.bench            # or: make bench  (a few minutes)
    python -m tutorial_lib.infra.bench --quick    # smoke run: tiny sizes, one repeat
    make bench-torch                              # + PyTorch CPU side by side (separate venv)
"""
import argparse
import gc
import json
import os
import platform
import statistics
import sys

from . import compat  # noqa: F401  (before chainer)
import numpy as np

import chainer

from . import backend, fastpath, onednn, threads
from .bench_profile import print_profile, profile_step
from .bench_torch import TorchWorker, compare_torch, torch_specs
from .bench_workloads import conv_flops, recolor_latency, sgemm_peak, time_interleaved, workloads
from .. import REPO_ROOT, atomic, cli
from ..models import UNET, count_params


def load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def write_json_atomic(path, data):
    atomic.write_json(path, data, indent=2, sort_keys=True)


def _parser():
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
    return parser


def _machine(args, repeats):
    """The machine, its BLAS, the load average before, and the float32 matrix-product peak
    (numpy ``matmul`` of two 2048 x 2048 matrices) to compare the workloads' GFLOP/s with."""
    info = threads.blas_info()
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
    dnnl = onednn.info()
    result['machine']['onednn'] = dnnl
    print('oneDNN: %s' % (dnnl['library'] if dnnl['available'] else
                          'not used (%s); convolutions run on numpy' % dnnl['error']))
    print('load average before: %s' % (result['load_average_before'],))
    peak, peaks = sgemm_peak(512 if args.quick else 2048)
    result['sgemm_peak_gflops'] = round(peak, 1)
    result['sgemm_peak_detail_gflops'] = peaks
    print('numpy float32 matmul peak: %.0f GFLOP/s (%s)'
          % (peak, ', '.join('%s %.0f' % kv for kv in sorted(peaks.items()))))
    sys.stdout.flush()
    return result, peak


def _entry(desc, flops, times):
    """One workload's figures: medians of stock and fast, speedup, convolution GFLOP/s
    (2 x multiply-adds of every convolution, deconvolution and weight gradient run)."""
    stock, fast = statistics.median(times['stock']), statistics.median(times['fast'])
    return {
        'description': desc, 'conv_gflop': round(flops / 1e9, 3),
        'stock_s': round(stock, 4), 'fast_s': round(fast, 4),
        'stock_all_s': [round(t, 4) for t in times['stock']],
        'fast_all_s': [round(t, 4) for t in times['fast']],
        'speedup': round(stock / fast, 3),
        'stock_gflops': round(flops / stock / 1e9, 1),
        'fast_gflops': round(flops / fast / 1e9, 1),
    }


def _run_workloads(args, repeats, result):
    """Each workload timed on stock Chainer and on the fast path in this process,
    interleaved; returns [(key, entry)] and leaves the fast path as it found it."""
    rows = []
    was_enabled = fastpath.is_enabled()
    try:
        for key, desc, factory in workloads(args.quick):
            if args.only and key not in args.only:
                continue
            fn = factory()
            flops = conv_flops(fn)
            times = time_interleaved(fn, repeats)
            entry = result[key] = _entry(desc, flops, times)
            for name in ('speedup', 'stock_s', 'fast_s', 'fast_gflops'):
                result[key + '_' + name] = entry[name]
            rows.append((key, entry))
            stock, fast = statistics.median(times['stock']), statistics.median(times['fast'])
            print('%-19s stock %7.3f s  fast %7.3f s  x%5.2f  (%s)'
                  % (key, stock, fast, stock / fast, desc))
            sys.stdout.flush()
            del fn
            gc.collect()
    finally:
        if was_enabled:
            fastpath.enable()
        else:
            fastpath.disable()
    return rows


def _run_profiles(args, factories, out, result):
    """The self-time tables of ``--profile`` workloads on the fast path; cProfile's view
    of the calling thread goes to build/bench-profile.txt."""
    keys = args.profile or ['train128_classroom', 'train128_full']
    profiles, texts = {}, []
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
                     % (key, prof['mode'], prof['steps'], prof['step_s'], prof['cprofile']))
    result['profile'] = {k: {kk: vv for kk, vv in v.items() if kk != 'cprofile'}
                         for k, v in profiles.items()}
    profile_txt = os.path.join(os.path.dirname(out), 'bench-profile%s.txt'
                               % ('-quick' if args.quick else ''))
    atomic.write_bytes(profile_txt, '\n'.join(texts).encode())
    print('cProfile (calling thread only) written to %s' % os.path.relpath(profile_txt))
    sys.stdout.flush()


def _run_torch(args, factories, repeats, result):
    """``torch_ratio_<workload>`` = our median / PyTorch's (above 1: tutorial_lib is slower);
    both networks must have the same parameter count, or the bench stops."""
    specs = torch_specs(args.quick)
    n_threads = args.torch_threads or threads.thread_count()
    worker = TorchWorker(args.torch, n_threads, stand_in=args.torch_stand_in)
    try:
        jobs = [(key, factories[key](), spec,
                 count_params(UNET(in_ch=spec['in_ch'], width=spec['width'])))
                for key, spec in specs.items()]
        found = compare_torch(jobs, worker, repeats, log=print)
    finally:
        worker.close()
    result['torch'] = dict(found, threads=n_threads, stand_in=bool(args.torch_stand_in))
    for key, entry in found.items():
        result['torch_ratio_' + key] = entry['ratio']
    busy = load_average()
    if busy and busy[0] > 0.5 * (os.cpu_count() or 1):
        print('note: load average %.1f on %d CPUs: PyTorch\'s OpenMP threads wait for '
              'each other when another program holds a core (far more than the fast '
              "path's threads do), so these ratios flatter tutorial_lib; rerun on a "
              'quiet machine' % (busy[0], os.cpu_count() or 1))


def _run_latency(args, repeats, result):
    """The hint canvas's stroke-to-result time with the shipped classroom checkpoints (not
    a stock/fast comparison): CPU, and the GPU when there is one."""
    lat_repeats = 2 if args.quick else max(3, repeats)
    lat = recolor_latency(lat_repeats, 'cpu')
    result['latency'] = {'description': 'hint canvas stroke-to-result, shipped classroom '
                         'checkpoints (stage 1 width 0.25, stage 2 width 0.125), CPU',
                         'cpu': lat}
    result['latency_stage1_128_ms'] = lat['stage1_128']['median_ms']
    result['latency_stage12_512_ms'] = lat['stage12_512']['median_ms']
    if backend.resolve('auto').is_gpu:
        lat_gpu = recolor_latency(lat_repeats, 'gpu')
        result['latency']['gpu'] = lat_gpu
        result['latency_stage1_128_gpu_ms'] = lat_gpu['stage1_128']['median_ms']
        result['latency_stage12_512_gpu_ms'] = lat_gpu['stage12_512']['median_ms']
    for dev in ('cpu', 'gpu'):
        for key, e in result['latency'].get(dev, {}).items():
            print('latency %-12s %s  median %7.1f ms  (%d runs)'
                  % (key, dev.upper(), e['median_ms'], len(e['all_ms'])))


def _print_tables(args, rows, result, peak, repeats, out):
    """The workload table (GFLOP/s against the matmul peak) and the PyTorch table. On a
    shared machine read the speedups with the load average in mind: a busy core slows
    stock Chainer's multithreaded BLAS calls far more than the fast path."""
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


@cli.command
def main(argv=None):
    args = _parser().parse_args(argv)
    repeats = 1 if args.quick and args.repeats == 5 else max(1, args.repeats)
    out = args.out or os.path.join(  # a smoke run never overwrites real figures
        str(REPO_ROOT), 'build', 'bench-quick.json' if args.quick else 'bench.json')
    result, peak = _machine(args, repeats)
    rows = _run_workloads(args, repeats, result)
    factories = {key: factory for key, _, factory in workloads(args.quick)}
    if not args.only or 'profile' in args.only or args.profile:
        _run_profiles(args, factories, out, result)
    if args.torch and (not args.only or 'torch' in args.only):
        _run_torch(args, factories, repeats, result)
    if not args.only or 'latency' in args.only:
        # after the loop: measured with the fast path as this process normally runs it
        _run_latency(args, repeats, result)
    result['load_average_after'] = load_average()
    if args.only and os.path.exists(out):
        # a partial run (--only) updates the figures it measured and keeps the others
        with open(out) as f:
            result = dict(json.load(f), **result)
    write_json_atomic(out, result)
    _print_tables(args, rows, result, peak, repeats, out)
    return result


if __name__ == '__main__':
    main()
