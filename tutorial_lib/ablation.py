"""The hint ablation of notebooks 04 and 05: what each change on the way from the blog's hint
U-Net to the shipped one buys, every run at the same budget (configs.ABLATION_HINTS and
ABLATION_STYLES: 1,500 steps from classroom_l2, width 1/4, 128 px).

    for c in $(python -m tutorial_lib.ablation names); do
        python -m tutorial_lib.train --config $c --out runs/ablation/$c; done
    python -m tutorial_lib.ablation measure         # -> data/checkpoints/ablation.json

Per finished run: the hints curve on all TEST pictures (2-px disks at 0 / 10 / 50 hints,
PSNR and the hint error at colored off-ink hints; single pixels at 50), PSNR without hints
with strokes 2 px thinner ... 2 px fatter (failures.line_thickness), the held-out real
sketches at 0 and 10 hints (gain over line art on white; needs ``make sketches``) and the
training time its log recorded. The notebooks read the file; they do not retrain.
"""
import argparse
import json
import os
import sys

from . import REPO_ROOT
from . import atomic
from . import configs
from . import data
from . import evaluation
from . import failures
from . import sketches
from .checkpoints import checkpoints_dir, load_unet, read_log
from .sketch_cache import is_built

RESULTS = checkpoints_dir() / 'ablation.json'
RUNS = REPO_ROOT / 'runs' / 'ablation'
COUNTS = (0, 10, 50)


def names():
    return list(configs.ABLATION_HINTS) + list(configs.ABLATION_STYLES)


def label(name):
    return {**configs.ABLATION_HINTS, **configs.ABLATION_STYLES}[name][0]


def measure_run(folder, test, sketch_source='cache'):
    """The numbers of one finished run folder (see the module docstring)."""
    gen = load_unet(str(folder))
    curve = evaluation.hints_curve(gen, test, counts=COUNTS, radius=evaluation.CURVE_RADIUS)
    one_px = evaluation.hints_curve(gen, test, counts=(50,), radius=0)[0]
    sk = sketches.measure(gen, hint_counts=(0, 10), source=sketch_source,
                          label=os.path.basename(str(folder)))
    log = read_log(str(folder))
    return dict(
        test_psnr={r['hints']: r['psnr'] for r in curve},
        test_hint_error_colored={r['hints']: r['hint_error_colored'] for r in curve},
        test_psnr_1px_50=one_px['psnr'],
        test_thickness={r['k']: r['psnr'] for r in failures.line_thickness(gen, test)},
        sketch_psnr=sk['psnr'], sketch_gain=sk['gain'],
        sketch_paper_lightness=sk['paper_lightness'],
        iterations=log[-1]['iteration'] if log else 0,
        train_minutes=log[-1]['elapsed_time'] / 60 if log else float('nan'))


def measure(runs=RUNS, out=RESULTS, size=128, only=None):
    """Measure the finished ablation runs under ``runs`` (or those named in ``only``) and
    write ``out`` (JSON); runs measured before and not measured now keep their numbers."""
    if not is_built():      # fail before the long TEST measurement, not after it
        raise FileNotFoundError('the ablation is also measured on the held-out real sketches: '
                                'build them first with `make sketches`')
    test = data.load_split_resized('test', size)
    results = load(out) if os.path.exists(str(out)) else {}
    for name in only or names():
        folder = os.path.join(str(runs), name)
        if not os.path.exists(os.path.join(folder, 'gen.npz')):
            print('%s: no finished run in %s, skipped' % (name, folder))
            continue
        results[name] = dict(label=label(name), **measure_run(folder, test))
        print('%-22s TEST %s | sketches +%.2f / +%.2f dB' % (
            name, ' / '.join('%.2f' % v for v in results[name]['test_psnr'].values()),
            results[name]['sketch_gain'][0], results[name]['sketch_gain'][10]), flush=True)
    results = {n: results[n] for n in names() if n in results}
    atomic.write_json(str(out), dict(
        about='tutorial_lib.ablation: each run 1,500 steps from classroom_l2 (configs.'
              'ABLATION_HINTS, ABLATION_STYLES); test_*: all %d TEST pictures at %d px, '
              'hints sampled from the truth (evaluation.hints_curve, seed 0, disks of radius '
              '%d; _1px_50: 50 single pixels; _thickness: no hints, strokes k px wider, '
              'failures.line_thickness); sketch_*: the held-out real sketches '
              '(sketches.measure), gain in dB over line art on white; train_minutes: the '
              'log\'s elapsed time (two runs side by side on a 2-core CPU, one thread each)'
              % (len(test), size, evaluation.CURVE_RADIUS),
        runs=results))
    return results


def load(path=RESULTS):
    """{name: numbers} as :func:`measure` wrote them (JSON keys of hint counts -> int)."""
    with open(str(path)) as f:
        runs = json.load(f)['runs']
    for r in runs.values():
        for k, v in r.items():
            if isinstance(v, dict):
                r[k] = {int(n): x for n, x in v.items()}
    return runs


def curves(results, names, where='test', labels=None):
    """``{label (training minutes): rows}`` for :func:`viz.plot_hints_curve`: PSNR (and, on
    TEST, the hint error at colored off-ink hints) vs hints, on TEST or the sketches.
    ``labels``: ``{name: label}`` instead of the configs' labels, for some runs."""
    out = {}
    for name in names:
        r = results[name]
        text = (labels or {}).get(name, label(name))
        psnr = r['test_psnr' if where == 'test' else 'sketch_psnr']
        err = r['test_hint_error_colored'] if where == 'test' else {}
        out['%s (%.0f min)' % (text, r['train_minutes'])] = [
            dict(hints=n, psnr=v, hint_error=err.get(n, float('nan')))
            for n, v in sorted(psnr.items())]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m tutorial_lib.ablation', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('command', choices=['names', 'measure'])
    p.add_argument('--runs', default=str(RUNS), help='folder of the run folders')
    p.add_argument('--out', default=str(RESULTS))
    p.add_argument('--only', nargs='+', choices=names(), help='measure only these runs')
    args = p.parse_args(argv)
    if args.command == 'names':
        print(' '.join(names()))
        return 0
    measure(args.runs, args.out, only=args.only)
    return 0


if __name__ == '__main__':
    sys.exit(main())
