"""Train from the command line with a named config (see configs.py).

    python -m tutorial_lib.train --config classroom_l2 --out runs/classroom_l2
    python -m tutorial_lib.train --config classroom_adv --iterations 2000   # longer
    python -m tutorial_lib.train --list
    python -m tutorial_lib.train --ship runs/classroom_l2    # into data/checkpoints/
    mpiexec -n 2 python -m tutorial_lib.train --config classroom_l2 --mpi  # docs/distributed.md

The run folder gets config.json, log (JSON), loss.png, previews/iter_*.png,
snapshot_iter_*.npz (the latest 2) and, at the end, gen.npz (+ dis.npz): the networks
alone in float16. Run the same command again after an interruption (Ctrl-C, a killed
process, a closed laptop) and it resumes from the newest snapshot; --no-resume starts over.
"""
import argparse
import shlex
import sys

from . import cli
from . import configs
from . import distributed
from . import metrics
from . import shipping
from . import training
from .infra import backend
from .infra import fastpath


def parser():
    p = argparse.ArgumentParser(prog='python -m tutorial_lib.train', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default='quick', help='one of: ' + ', '.join(configs.names()))
    p.add_argument('--out', help='run folder (default runs/<config>)')
    p.add_argument('--iterations', type=int, help='override the config\'s iterations')
    p.add_argument('--adv-weight', type=float, help='override the config\'s adv_weight')
    p.add_argument('--seed', type=int, help='override the config\'s seed')
    p.add_argument('--train-limit', type=int, help='use only this many training pictures')
    p.add_argument('--data', choices=['openmoji', 'samples', 'synthetic'],
                   help='override the config\'s data source')
    p.add_argument('--device', choices=['cpu', 'gpu', 'auto'], default=None,
                   help='default: TUTORIAL_DEVICE or auto')
    p.add_argument('--resume', dest='resume', action='store_true', default=True,
                   help='continue from the newest snapshot in --out (default)')
    p.add_argument('--no-resume', dest='resume', action='store_false',
                   help='delete snapshots in --out and start over')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('--mpi', action='store_true',
                   help='data-parallel over the processes mpiexec starts (ChainerMN; '
                        'batch = per process; see docs/distributed.md): '
                        'mpiexec -n 2 python -m tutorial_lib.train --config NAME --mpi')
    p.add_argument('--list', action='store_true', help='list the configs and exit')
    p.add_argument('--ship', metavar='RUN_FOLDER',
                   help='copy a finished run into data/checkpoints/<config>/, evaluate it on '
                        'the test split and record it in data/checkpoints/manifest.json')
    return p


def config_from(args):
    """The named config with the command line's overrides, after checking them."""
    if args.config not in configs.names():
        raise ValueError('unknown config %r; known: %s (python -m tutorial_lib.train --list)'
                         % (args.config, ', '.join(configs.names())))
    if args.iterations is not None and args.iterations < 1:
        raise ValueError('--iterations must be >= 1, got %d' % args.iterations)
    if args.train_limit is not None and args.train_limit < 1:
        raise ValueError('--train-limit must be >= 1, got %d' % args.train_limit)
    changes = {k: v for k, v in dict(iterations=args.iterations, adv_weight=args.adv_weight,
                                      seed=args.seed, train_limit=args.train_limit,
                                      data=args.data).items() if v is not None}
    return configs.get(args.config).replace(**changes)


@cli.command
def main(argv=None):
    args = parser().parse_args(argv)
    if args.list:
        for name in configs.names():
            print('%-20s %s' % (name, configs.get(name).description))
        return 0
    if args.ship:
        entry = shipping.ship(args.ship)
        print(metrics.format_table({entry['config']['name']: entry['test_metrics']}))
        return 0
    fastpath.enable_from_env()   # the faster CPU path (TUTORIAL_FASTCONV=0 turns it off)
    config = config_from(args)
    comm = None
    if args.mpi:   # one process of several (distributed.py); errors: one line, status 2
        comm = distributed.init(args.device)
    elif args.device:
        backend.select(args.device)
    root = comm is None or comm.rank == 0
    if root:
        print('Device:', backend.describe(), file=sys.stderr)
        if comm is not None:
            print('MPI: %d processes, batch %d each = %d pictures per step' % (
                comm.size, config.batch_size, comm.size * config.batch_size), file=sys.stderr)
    command = 'python -m tutorial_lib.train ' + ' '.join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if comm is not None:
        command = 'mpiexec -n %d %s' % (comm.size, command)
    with distributed.abort_on_error(comm):   # one rank's error ends every rank
        run = training.train(config, out=args.out, resume=args.resume,
                             progress=root and not args.no_progress, command=command,
                             comm=comm)
    if root:
        print('Done: %s at iteration %d' % (run.out, run.iteration), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
