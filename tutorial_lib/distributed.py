"""Data-parallel training over MPI with ChainerMN (docs/distributed.md).

    mpiexec -n 2 python -m tutorial_lib.train --config classroom_l2 --mpi
    make train-mpi N=2 CONFIG=classroom_l2

Every process (a *rank*) holds the whole U-Net (and Ad-boss), computes the gradients of
its own share of each batch, and ChainerMN's multi-node optimizer averages the gradients
over all ranks (an MPI allreduce) before each rank takes the same Adam step. The weights
therefore stay identical on every rank.

Batch semantics. ``config.batch_size`` is the batch of ONE process; a step of N
processes uses N x batch_size pictures (the *effective batch*), with the same Adam step
size. ``mpiexec -n 2`` on ``classroom_l2`` (batch 8) takes the steps of a one-process
run with batch 16: half as many steps per epoch, each on twice the pictures. Raise the
iterations, or the step size, if you want to keep the old number of pictures per step
or the old number of steps.

Data order. All ranks draw the same seeded order of the whole training split, the order
a one-process run with batch N x batch_size draws, and rank r takes its slice
``[r * batch_size, (r + 1) * batch_size)`` of each step's batch (:class:`ShardIterator`);
the flips are drawn for the whole step's batch and sliced the same way (see
``ReconstructionUpdater.next_batch``). So the N ranks together see exactly the pictures
and flips of that one-process run, and the iterator's state is the same on every rank,
which is what lets every rank resume from the one snapshot rank 0 writes.
(``chainermn.scatter_dataset`` instead gives each rank a fixed share that its own
iterator shuffles: the order then depends on N, and rank 0's iterator state would be
wrong for the other ranks after a resume.)

The one difference from that one-process run: BatchNormalization normalises with the
statistics of the per-process batch (batch_size pictures, not N x batch_size), as
ChainerMN does by default. The running averages used for previews and the saved
weights are averaged over the ranks before anything is written
(:class:`AverageStatistics`).

Rank 0 writes everything (log, loss.png, previews, snapshots, gen.npz) and shows the
progress bar; every rank resumes from the snapshot rank 0 chose, whose bytes rank 0
broadcasts (other machines need no copy of the run folder). The logged losses are the
means over all ranks (:class:`AverageObservations`): the loss of the effective batch.
"""
import contextlib
import io
import os
import socket
import sys
import traceback
import zlib

import chainer
import numpy as np
from chainer import training

from . import cli
from . import data
from .infra import backend

# What MPI launchers put in a process's environment (MPICH/Hydra and Intel MPI: PMI_*,
# Open MPI: OMPI_*, PMIx-based launchers such as Slurm's srun: PMIX_RANK).
LAUNCHER_VARS = ('PMI_RANK', 'PMI_SIZE', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_RANK',
                 'PMIX_RANK', 'MPI_LOCALRANKID')

INSTALL_HINT = ("pip install -e '.[distributed]' (mpi4py and an MPI from PyPI), or "
                "Debian's openmpi-bin + libopenmpi-dev and then pip install mpi4py; "
                'see docs/distributed.md')


class DistributedError(ValueError):
    """MPI / ChainerMN cannot be used as asked; the message says why and what to do.

    A ValueError, so ``python -m tutorial_lib.train`` reports it in one line on stderr
    and exits with status 2 (tutorial_lib/cli.py)."""


def under_launcher(environ=None):
    """True when this process was started by mpiexec/mpirun (or srun)."""
    env = os.environ if environ is None else environ
    return any(v in env for v in LAUNCHER_VARS)


def find_mpiexec():
    """The mpiexec to use: the one beside this Python (the ``distributed`` extra puts it
    in the virtual environment), else the first on PATH; None when there is none."""
    import shutil
    here = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    return here if os.access(here, os.X_OK) else shutil.which('mpiexec')


def missing():
    """Why data-parallel training cannot run here (a sentence), or None when it can."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return 'mpi4py is not installed (%s)' % INSTALL_HINT
    if find_mpiexec() is None:
        return 'no mpiexec beside %s or on PATH (%s)' % (sys.executable, INSTALL_HINT)
    return None


def init(device=None):
    """Create the ChainerMN communicator of this process and pick its device.

    ``device``: 'cpu', 'gpu' or 'auto' (default TUTORIAL_DEVICE or auto), as for one
    process. On the CPU the communicator is 'naive' (MPI on numpy arrays); on GPUs it is
    'pure_nccl' and each process uses the GPU whose number is its rank on its machine
    (one process per GPU: ``mpiexec -n <GPUs per machine x machines>``).
    Raises :class:`DistributedError` when mpi4py is missing or the process was not
    started by mpiexec.
    """
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise DistributedError('--mpi needs mpi4py, which is not installed: '
                               + INSTALL_HINT) from None
    if not under_launcher():
        raise DistributedError(
            '--mpi needs several processes started by mpiexec, e.g. mpiexec -n 2 python -m '
            'tutorial_lib.train --config classroom_l2 --mpi (or make train-mpi N=2 '
            'CONFIG=classroom_l2); without --mpi it trains in one process')
    try:
        from mpi4py import MPI
    except ImportError as e:     # mpi4py without a usable MPI library
        raise DistributedError('mpi4py cannot load an MPI library (%s): %s'
                               % (' '.join(str(e).split()), INSTALL_HINT)) from None
    import chainermn
    b = backend.select(device)
    if not b.is_gpu:
        return chainermn.create_communicator('naive', MPI.COMM_WORLD)
    try:
        comm = chainermn.create_communicator('pure_nccl', MPI.COMM_WORLD)
    except Exception as e:
        raise DistributedError('the GPU communicator (pure_nccl) cannot be created: %s. '
                               'It needs CuPy with NCCL; --device cpu trains on the CPUs'
                               % ' '.join(str(e).split())) from None
    n_gpus = b.xp.cuda.runtime.getDeviceCount()
    if comm.intra_rank >= n_gpus:
        raise DistributedError(
            '%d processes on %s but only %d GPUs: start one process per GPU'
            % (comm.intra_size, socket.gethostname(), n_gpus))
    b.xp.cuda.Device(comm.intra_rank).use()
    import dataclasses
    backend._CURRENT = dataclasses.replace(b, device_id=comm.intra_rank)
    return comm


def is_root(comm):
    """True in the process that writes files and prints (rank 0, or no MPI at all)."""
    return comm is None or comm.rank == 0


def size(comm):
    return 1 if comm is None else comm.size


def bcast(comm, obj):
    """Rank 0's ``obj`` (any picklable value, None included), on every rank."""
    return comm.bcast_obj((obj,) if comm.rank == 0 else None)[0]


@contextlib.contextmanager
def abort_on_error(comm):
    """Inside: an exception in any rank ends the whole MPI job (MPI Abort, status 2)
    instead of leaving the other ranks waiting forever in their next allreduce."""
    if comm is None or comm.size == 1:
        yield
        return
    try:
        yield
    except (Exception, KeyboardInterrupt) as exc:
        if isinstance(exc, cli.EXPECTED):
            print('error: rank %d: %s' % (comm.rank, cli.message(exc)), file=sys.stderr)
        else:
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        comm.mpi_comm.Abort(2)
        os._exit(2)     # in case Abort returns before mpiexec ends this process


@contextlib.contextmanager
def root_first(comm):
    """Rank 0 runs the block first (e.g. filling a cache); the others wait at a barrier,
    then run it and find the cache made. Nothing to do without MPI."""
    if comm is not None and comm.rank != 0:
        comm.mpi_comm.Barrier()
    yield
    if comm is not None and comm.rank == 0:
        comm.mpi_comm.Barrier()


def check_same_data(comm, config, pairs=None):
    """Before loading: every rank must see the same data source (the OpenMoji cache
    built everywhere, or nowhere). After loading (``pairs``): the same pictures in the
    same order. Raises DistributedError on the ranks that differ from rank 0; the cache
    is only read, never built here (``make data`` builds it, once per machine or on a
    shared folder)."""
    if comm is None or comm.size == 1:
        return
    if pairs is None:
        if config.data != 'openmoji':
            return
        mine = data.is_built()
        root = bcast(comm, mine)
        if mine != root:
            raise DistributedError(
                'the OpenMoji cache (%s) is %s on %s (rank %d) but %s for rank 0: build it '
                'on every machine (make data) or keep the repository on a folder all '
                'machines share' % (data.default_data_dir(), 'built' if mine else 'not built',
                                    socket.gethostname(), comm.rank,
                                    'built' if root else 'not built'))
        return
    digest = zlib.crc32('\n'.join(map(str, pairs.names)).encode())
    root = bcast(comm, (len(pairs.names), digest))
    if (len(pairs.names), digest) != root:
        raise DistributedError(
            'rank %d on %s has other training pictures than rank 0 (%d vs %d): every '
            'machine needs the same data cache' % (comm.rank, socket.gethostname(),
                                                   len(pairs.names), root[0]))


def share_snapshot(comm, path):
    """Rank 0's choice of snapshot, for every rank: rank 0 gets ``path`` back, the
    others a file object with the same bytes (or None when rank 0 starts afresh)."""
    if comm is None or comm.size == 1:
        return path
    blob = None
    if comm.rank == 0 and path is not None:
        with open(path, 'rb') as f:
            blob = f.read()
    blob = bcast(comm, blob)
    if comm.rank == 0 or blob is None:
        return path
    return io.BytesIO(blob)


def multi_node_optimizer(optimizer, comm):
    """``optimizer`` (set up) with its gradients averaged over all ranks before it
    steps; the optimizer itself without MPI."""
    if comm is None:
        return optimizer
    import chainermn
    return chainermn.create_multi_node_optimizer(optimizer, comm)


def start(comm, optimizers):
    """Call once the trainer is built (and resumed): rank 0's weights go to every rank,
    and the multi-node optimizers are told that the model is set up.

    ChainerMN's multi-node optimizer broadcasts the weights at its first ``update()``
    *instead of* taking a step (it takes a model it has not seen before as new). Here
    the broadcast happens now, so the first step is a real one, as in a one-process
    run -- and as after a resume.
    """
    if comm is None:
        return
    for opt in optimizers:
        if opt is None:
            continue
        comm.bcast_data(opt.target)
        opt.is_changed(opt.target)   # records the parameters: the next update() steps


class ShardIterator(chainer.dataset.Iterator):
    """Rank ``rank``'s slice of each batch of ``iterator`` (which draws ``size`` x the
    per-process batch). Its state is the wrapped iterator's, the same on every rank."""

    def __init__(self, iterator, rank, size):
        if iterator.batch_size % size:
            raise ValueError('batch %d does not split into %d processes'
                             % (iterator.batch_size, size))
        self.iterator, self.rank, self.size = iterator, int(rank), int(size)
        self.batch_size = iterator.batch_size // size

    def __iter__(self):
        return self

    def __next__(self):
        batch = self.iterator.next()
        return batch[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]

    next = __next__

    def __getattr__(self, name):     # epoch, epoch_detail, is_new_epoch, dataset, ...
        if name == 'iterator':
            raise AttributeError(name)
        return getattr(self.iterator, name)

    def serialize(self, serializer):
        self.iterator.serialize(serializer)

    def finalize(self):
        if 'iterator' in self.__dict__:
            self.iterator.finalize()


def _allreduce_mean(comm, values):
    """Mean over ranks of a 1-D float64 numpy array (through MPI, on the CPU)."""
    from mpi4py import MPI
    out = np.empty_like(values)
    comm.mpi_comm.Allreduce(values, out, op=MPI.SUM)
    return out / comm.size


class AverageObservations(training.Extension):
    """Every iteration, on every rank: replace each reported scalar (losses, the
    Ad-boss's accuracy) by its mean over the ranks, before LogReport and the progress
    bar read it. Equal per-process batches make that the loss of the effective batch."""
    trigger = (1, 'iteration')
    priority = training.PRIORITY_EDITOR   # before the readers (LogReport, ...)
    name = 'AverageObservations'

    def __init__(self, comm):
        self.comm = comm

    def __call__(self, trainer):
        obs = trainer.observation
        keys = sorted(obs)
        if not keys:
            return
        values = np.array([float(backend.to_cpu(getattr(obs[k], 'array', obs[k])))
                           for k in keys], np.float64)
        for k, v in zip(keys, _allreduce_mean(self.comm, values)):
            obs[k] = np.float32(v)


def average_persistents(comm, link):
    """Set every floating-point persistent value of ``link`` (BatchNorm's running mean
    and variance) to its mean over the ranks."""
    named = [(path + '/' + name, getattr(sub, name))
             for path, sub in sorted(link.namedlinks()) for name in sorted(sub._persistent)]
    named = [(n, v) for n, v in named
             if hasattr(v, 'dtype') and np.issubdtype(v.dtype, np.floating)]
    if not named:
        return
    flat = np.concatenate([np.asarray(backend.to_cpu(v), np.float64).ravel()
                           for _, v in named])
    flat = _allreduce_mean(comm, flat)
    at = 0
    for _, v in named:
        part = flat[at:at + v.size].reshape(v.shape).astype(v.dtype)
        at += v.size
        v[...] = backend.xp_of(v).asarray(part)


class AverageStatistics(training.Extension):
    """On every rank, at the iterations where rank 0 writes (snapshot, preview, the
    end): average the BatchNorm running statistics over the ranks, so the written
    weights and previews reflect all the pictures of the step, and every rank holds the
    values the snapshot holds (an exact resume)."""
    trigger = (1, 'iteration')
    priority = training.PRIORITY_WRITER
    name = 'AverageStatistics'

    def __init__(self, comm, links, intervals, stop):
        self.comm, self.links = comm, [l for l in links if l is not None]
        self.intervals, self.stop = [int(i) for i in intervals if i], stop

    def __call__(self, trainer):
        it = trainer.updater.iteration
        if it >= self.stop or any(it % i == 0 for i in self.intervals):
            for link in self.links:
                average_persistents(self.comm, link)


def extend(trainer, comm, config, links):
    """The extensions every rank of a data-parallel run needs: losses averaged over the
    ranks (:class:`AverageObservations`), BatchNorm statistics averaged before anything is
    written (:class:`AverageStatistics`)."""
    trainer.extend(AverageObservations(comm))
    trainer.extend(AverageStatistics(comm, links, (config.snapshot_interval,
                                                   config.preview_interval),
                                     config.iterations))


def params_digest(link):
    """crc32 of every parameter's bytes (to check that ranks hold the same weights)."""
    crc = 0
    for name, p in sorted(link.namedparams()):
        crc = zlib.crc32(name.encode(), crc)
        crc = zlib.crc32(np.ascontiguousarray(backend.to_cpu(p.array)).tobytes(), crc)
    return crc


def check_in_sync(comm, links):
    """Raise RuntimeError unless every rank holds bit-identical parameters."""
    if comm is None or comm.size == 1:
        return
    mine = [params_digest(l) for l in links if l is not None]
    every = comm.mpi_comm.allgather(mine)
    if any(d != every[0] for d in every):
        raise RuntimeError('the ranks hold different weights after training: %s' % every)
