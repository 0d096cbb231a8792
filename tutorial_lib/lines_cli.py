"""``python -m tutorial_lib.lines sweep ...``: score OpenCV line extraction against the human lines.

The command line of notebook 01's sweep (:func:`lines.sweep`)::

    python -m tutorial_lib.lines sweep --split test --size 256    # full cache (make data)
    python -m tutorial_lib.lines sweep --samples                  # committed samples
"""
import argparse
import sys

from . import cli
from . import data
from .lines import best, describe, format_table, sweep


def _int_list(text):
    return [None if x.strip().lower() == 'none' else int(x) for x in text.split(',') if x.strip()]


def _parser():
    parser = argparse.ArgumentParser(
        prog='python -m tutorial_lib.lines',
        description='Score OpenCV line extraction against OpenMoji\'s human line art.')
    sub = parser.add_subparsers(dest='command', required=True)
    sw = sub.add_parser('sweep', help='try kernel sizes x thresholds, print a table and the best')
    sw.add_argument('--split', default='test', choices=('train', 'test'))
    sw.add_argument('--size', type=int, default=256, choices=(128, 256, 512))
    sw.add_argument('--samples', action='store_true',
                    help='use the committed samples (data/samples) instead of the full cache')
    sw.add_argument('--limit', type=int, default=None, help='use only the first N pairs')
    sw.add_argument('--method', default='both', choices=('dilate', 'canny', 'both'))
    sw.add_argument('--kernels', type=_int_list, default=None,
                    help='dilate kernel sizes, comma list, e.g. 2,3,5')
    sw.add_argument('--thresholds', type=_int_list, default=None,
                    help='dilate edge-strength thresholds, e.g. none,32,64')
    sw.add_argument('--canny-thickness', type=_int_list, default=None,
                    help='canny edge thickness (dilation), e.g. 1,3,5')
    sw.add_argument('--canny-high', type=_int_list, default=None,
                    help='canny high thresholds (low = high/2), e.g. 100,200')
    sw.add_argument('--tolerance', type=float, default=1.0, help='pixels (default 1)')
    sw.add_argument('--normalize', action='store_true', help='dilate: stretch contrast first')
    return parser


@cli.command
def main(argv=None):
    args = _parser().parse_args(argv)
    if args.samples:
        pairs = data.load_samples(size=args.size)
        where = 'committed samples at %d px' % args.size
        if args.limit:
            pairs = pairs.subset(slice(0, args.limit))
    else:
        if not data.is_built():
            print('The full OpenMoji cache is not built. Run `make data` (or '
                  '`python -m tutorial_lib.data build`), or pass --samples.', file=sys.stderr)
            return 2
        pairs = data.load_split(args.split, args.size, limit=args.limit)
        where = '%s split at %d px' % (args.split, args.size)
    print('Line extraction vs human lines: %s, %d pictures, tolerance %g px'
          % (where, len(pairs.lines), args.tolerance))
    methods = ('dilate', 'canny') if args.method == 'both' else (args.method,)
    winners = []
    for method in methods:
        if method == 'dilate':
            grid_args = (args.kernels, args.thresholds)
        else:
            grid_args = (args.canny_thickness, args.canny_high)
        rows = sweep(pairs, *grid_args, method=method, tolerance=args.tolerance,
                     normalize=args.normalize)
        print()
        print(format_table(rows))
        winners.append(best(rows))
        print('best %s: %s' % (method, describe(winners[-1])))
    print()
    print('BEST: %s' % describe(best(winners)))
    print(data.CREDIT)
    return 0



if __name__ == '__main__':
    sys.exit(main())
