"""``python -m tutorial_lib.stage2 hints-curve|gain``: measure shipped (or any) hint and
stage-2 U-Nets on the TEST split from a terminal (the numbers of notebooks 04 and 05).

    python -m tutorial_lib.stage2 hints-curve [--stage1 classroom_hints] [--limit N]
                                              [--radius 0] [--baselines] [--record]
    python -m tutorial_lib.stage2 gain [--stage1 ...] [--stage2 ...] [--limit 64]
"""
import argparse
import sys

import numpy as np

from . import cli
from . import data
from . import evaluation
from .checkpoints import load_stage
from .colorize import Colorizer
from .infra import backend as backend_mod
from .lines import extract_best
from .shipping import record_hints_curve


def parser():
    p = argparse.ArgumentParser(prog='python -m tutorial_lib.stage2', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('what', choices=['hints-curve', 'gain'])
    p.add_argument('--stage1', default='classroom_hints')
    p.add_argument('--stage2', default='classroom_stage2')
    p.add_argument('--limit', type=int, default=None,
                   help='first N TEST pictures (default: all for the curve, 64 for the gain)')
    p.add_argument('--hints', type=int, default=0, help='gain: hints per picture')
    p.add_argument('--radius', type=int, default=evaluation.CURVE_RADIUS,
                   help='hints-curve: radius of each hint disk in px (0 = one pixel)')
    p.add_argument('--baselines', action='store_true',
                   help='hints-curve: also the bucket fill, the network + fill hybrid '
                        'and the ceiling of such hybrids (evaluation.ceiling_method)')
    p.add_argument('--record', action='store_true',
                   help='hints-curve: measure every curve of a shipped hint U-Net on all TEST '
                        'pictures and write them into its manifest entry')
    return p


def hints_curves(args):
    if args.record:
        if args.limit:
            raise ValueError('--record measures all TEST pictures: drop --limit')
        record_hints_curve(args.stage1)
        print('recorded the hints curves of %s in data/checkpoints/manifest.json' % args.stage1)
        return
    test = data.load_split_resized('test', 128, limit=args.limit)
    gen = load_stage(args.stage1, 1)
    curve, fmt = evaluation.hints_curve, evaluation.format_curve
    print(fmt(curve(gen, test, radius=args.radius),
              'human lines, %d TEST pictures at 128 px, stage 1 = %s, hints = disks of '
              'radius %d px' % (len(test), args.stage1, args.radius)))
    print(fmt(curve(gen, test, radius=args.radius,
                    lines=extract_best(np.asarray(test.colors))),
              'OpenCV-extracted lines (lines.extract_best)'))
    if args.baselines:
        print(fmt(curve(evaluation.fill_method, test, radius=args.radius),
                  'baseline: bucket fill on white paper (fill.py)'))
        print(fmt(curve(evaluation.hybrid_method(gen), test, radius=args.radius),
                  'baseline: %s without hints + the bucket fill pasted over it' % args.stage1))
        print(fmt(curve(evaluation.ceiling_method(gen, test.colors), test, radius=args.radius),
                  'ceiling of such hybrids: per hinted region the best flat color from the '
                  'truth, or %s without hints' % args.stage1))


def gain(args):
    test = data.load_split_resized('test', 512, limit=args.limit or 64)
    col = Colorizer.from_checkpoints(args.stage1, args.stage2)
    g = evaluation.stage2_gain(col, test, args.hints)
    print('%d TEST pictures at 512 px, %d hints: PSNR stage 1 upsampled %.2f dB, stage 1 '
          '+ stage 2 %.2f dB, gain %+.2f dB (better on %.0f%%); SSIM %.3f -> %.3f'
          % (g['n'], g['hints'], g['psnr_stage1'], g['psnr_stage2'], g['gain'],
             100 * g['improved'], g['ssim_stage1'], g['ssim_stage2']))


@cli.command
def main(argv=None):
    args = parser().parse_args(argv)
    print('Device:', backend_mod.describe(), file=sys.stderr)
    (hints_curves if args.what == 'hints-curve' else gain)(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
