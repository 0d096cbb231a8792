"""Run by tests/test_distributed.py, in one process or under mpiexec: train the tiny
'quick' config on synthetic pictures and save what the test compares.

    python tests/mpi_driver.py OUT BATCH [--mpi] [--no-bn] [--iterations N]

Writes OUT/weights_rank<r>.npz (every parameter of this rank's U-Net, float32) next to
the run folder's usual files (rank 0: log, gen.npz, ...).
"""
import argparse
import os
import sys

import tutorial_lib  # noqa: F401  (compat shims first)
import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np

from tutorial_lib import configs, distributed, training


class NoBatchNorm(chainer.Chain):
    """Two convolutions, no BatchNormalization: a model whose 2-process gradient is
    exactly the 1-process one (BatchNorm's per-process statistics are the one
    difference the U-Net has)."""
    in_ch = 1

    def __init__(self, in_ch=1, width=1.0):
        super().__init__()
        with self.init_scope():
            self.c0 = L.Convolution2D(1, 8, 3, pad=1)
            self.c1 = L.Convolution2D(8, 3, 3, pad=1)

    def forward(self, x):
        return F.tanh(self.c1(F.relu(self.c0(x))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('out')
    p.add_argument('batch', type=int)
    p.add_argument('--mpi', action='store_true')
    p.add_argument('--no-bn', action='store_true')
    p.add_argument('--iterations', type=int, default=8)
    p.add_argument('--train-limit', type=int, default=24)
    args = p.parse_args()
    comm = distributed.init('cpu') if args.mpi else None
    config = configs.get('quick').replace(
        data='synthetic', batch_size=args.batch, iterations=args.iterations,
        train_limit=args.train_limit, snapshot_interval=4, preview_interval=4)
    with distributed.abort_on_error(comm):
        run = training.train(config, out=args.out, resume=False, progress=False, comm=comm,
                             network=NoBatchNorm if args.no_bn else None)
        rank = 0 if comm is None else comm.rank
        weights = {n: np.asarray(q.array, np.float32) for n, q in run.gen.namedparams()}
        np.savez(os.path.join(args.out, 'weights_rank%d.npz' % rank), **weights)
    return 0


if __name__ == '__main__':
    sys.exit(main())
