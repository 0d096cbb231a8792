"""Training a U-Net on Chainer's ``Trainer``: :func:`build_trainer`, :func:`train` and
:func:`obtain` (a shipped or freshly trained network for a notebook). Notebooks 02-05 and
``python -m tutorial_lib.train`` use it.

One ``seed`` fixes the weight initialisation (numpy's global generator while the networks
are built), the data order (:class:`updaters.EpochShuffle`) and the flips, hints and crops
(a generator seeded with (seed, iteration)): on CPU two runs with the same seed give the
same losses, and a run resumed from a snapshot continues as if it had never stopped.
"""
import json
import os
import sys
import time
from dataclasses import dataclass

import chainer
import numpy as np
from chainer import training
from chainer.training import extensions as chainer_ext

from . import REPO_ROOT
from . import atomic
from . import configs as configs_mod
from . import data
from . import distributed
from . import hint_unet
from . import hints as hints_mod
from . import stage2
from .checkpoints import checkpoints_dir, load_unet, read_log, resolve_checkpoint
from .extensions import (FinalWeights, LossPlot, Preview, Progress, Snapshot,
                         latest_snapshot, list_snapshots, save_preview)
from .hint_unet import HintFillUNET
from .images import resize
from .infra import backend as backend_mod
from .models import DIS, UNET, encode_colors, read_meta
from .patch_dis import PatchDIS
from .models import warm_start as copy_weights
from .pairs import SimplePairs, synthetic_pairs
from .updaters import Zip, adam, make_iterator, updater_for


# ---------------------------------------------------------------------------------------
# The networks
# ---------------------------------------------------------------------------------------

def warm_start(gen, source):
    """Copy a line-only U-Net's weights into a hint U-Net of the same width, in place.

    ``source``: a U-Net or anything :func:`checkpoints.load_unet` accepts. Every parameter
    and BatchNorm statistic is copied; the first layer's weights for the extra input
    channels (the hints) are set to zero, so ``gen`` computes exactly what ``source``
    computes until training teaches it to read the hints.
    """
    src = source if hasattr(source, 'in_ch') else load_unet(source, backend_mod.resolve('cpu'))
    if isinstance(gen, HintFillUNET):
        return gen.warm_start(src)
    if src.width != gen.width or src.in_ch > gen.in_ch:
        raise ValueError('cannot warm-start a width-%g in_ch=%d U-Net from a width-%g in_ch=%d '
                         'one' % (gen.width, gen.in_ch, src.width, src.in_ch))
    return copy_weights(gen, src)


def new_unet(config):
    """The untrained U-Net of a config: the blog's ``UNET`` for 'lines' and 'hints' (or the
    fill-reading ``HintFillUNET`` when ``config.model`` is not 'blog'), the residual
    ``stage2.Stage2UNET`` for 'stage2'. A hint U-Net with ``init_from`` starts as that
    line-only U-Net."""
    if config.kind == 'stage2':
        return (stage2.Stage2UNET if config.residual else UNET)(in_ch=config.in_ch,
                                                                width=config.width)
    if config.kind == 'hints' and config.model != 'blog':
        gen = hint_unet.for_model(config.model, config.width)
    else:
        gen = UNET(in_ch=config.in_ch, width=config.width)
    if config.kind == 'hints' and config.init_from:
        gen = warm_start(gen, config.init_from)
    return gen


def build_models(config, backend=None, network=None):
    """The U-Net (and Ad-boss when config.adv_weight > 0), seeded, on the device.

    ``network(in_ch=, width=)``: a class to build instead of the config's U-Net."""
    b = backend or backend_mod.current()
    np.random.seed(config.seed)  # Chainer's initializers draw from numpy's generator
    gen = network(in_ch=config.in_ch, width=config.width) if network else new_unet(config)
    if config.dis not in ('blog', 'patch', 'patch_colors'):
        raise ValueError("config.dis must be 'blog', 'patch' or 'patch_colors', got %r"
                         % (config.dis,))
    dis = None
    if config.adversarial:
        dis = DIS(width=config.width, image_size=config.size) if config.dis == 'blog' \
            else PatchDIS(in_ch=4 if config.dis == 'patch' else 3)
    if config.kind == 'lines' and config.init_from and network is None:
        # warm start: every weight (and BN statistic) copied
        path = checkpoints_dir() / config.init_from / 'gen.npz'
        gen.copyparams(load_unet(str(path) if path.exists() else config.init_from,
                                 backend_mod.resolve('cpu')))
    for m in (gen, dis):
        if m is not None:
            m.to_device(b.chainer_device)
    return gen, dis


# ---------------------------------------------------------------------------------------
# What a config trains on and previews
# ---------------------------------------------------------------------------------------

@dataclass
class ExtraPairs(SimplePairs):
    """Pairs with ``extra`` input channels (float32 (N,C,H,W)) for the training previews."""
    extra: object = None


def hint_preview_pairs(pairs, n_hints=10, seed=0):
    """Preview pairs for a hint U-Net: each picture with ``n_hints`` true-color dots."""
    rgb, mask = hints_mod.truth_hints(pairs.colors, n_hints, seed, radius=1)
    return ExtraPairs(list(pairs.names), np.asarray(pairs.lines), np.asarray(pairs.colors),
                      getattr(pairs, 'split', 'test'), hints_mod.encode_batch(rgb, mask))


def _stage2_pictures(config, split):
    """(names, lines at config.size, colors at config.size, lines at stage1_size)."""
    def small_lines(lines):
        return np.stack([resize(x, (config.stage1_size,) * 2) for x in lines])
    n = (config.train_limit if split == 'train' else config.n_preview)
    if config.data == 'synthetic':
        p = synthetic_pairs(config.train_limit or 32 if split == 'train' else n, config.size,
                            seed=config.seed + (split == 'test'), split=split)
        return p.names, p.lines, p.colors, small_lines(p.lines)
    samples = config.data == 'samples' or not data.is_built()
    big, where = data.pictures(split, config.size, limit=n, samples=samples)
    if samples:
        if config.data != 'samples':
            print('stage 2 trains on %s: TEST pictures, for trying the machinery only'
                  % where, file=sys.stderr)
        return big.names, big.lines, big.colors, small_lines(big.lines)
    small, _ = data.pictures(split, config.stage1_size, limit=n, samples=False)
    if list(big.names) != list(small.names):
        raise RuntimeError('the %d and %d px splits list different pictures'
                           % (config.size, config.stage1_size))
    return big.names, big.lines, big.colors, small.lines


def _small_colors(config, split, colors):
    """True colors at the stage-1 size (for simulating the cached stage-1 hints)."""
    if config.data == 'openmoji' and data.is_built():
        return data.load_split_resized(split, config.stage1_size,
                                       limit=config.train_limit).colors
    return np.stack([resize(np.asarray(c), (config.stage1_size,) * 2) for c in colors])


def stage2_pairs(config, progress=True):
    """(training pairs, preview pairs) of a stage-2 config: 512 px lines with (512 px colors,
    cached stage-1 colors), and previews with the stage-1 colors (no hints) as ``extra``."""
    stage1_path = resolve_checkpoint(config.stage1)
    gen1 = load_unet(stage1_path)
    names, lines, colors, small = _stage2_pictures(config, 'train')
    cached = stage2.cached_stage1_colors(gen1, stage1_path, small,
                                         _small_colors(config, 'train', colors),
                                         seed=config.seed, progress=progress)
    train_pairs = SimplePairs(list(names), lines, Zip(colors, cached), 'train')
    pnames, plines, pcolors, psmall = _stage2_pictures(config, 'test')
    low = stage2.stage1_colors(gen1, psmall)       # previews: stage 1 without hints
    plines, pcolors = np.asarray(plines), np.asarray(pcolors)
    extra = encode_colors(np.stack([resize(c, plines.shape[1:3]) for c in low]))
    return train_pairs, ExtraPairs(list(pnames), plines, pcolors, 'test', extra)


def pairs_of(config, comm=None, progress=True):
    """(training pairs, preview pairs) of a config (previews: None on ranks other than 0)."""
    if config.kind == 'stage2':
        with distributed.root_first(comm):   # rank 0 fills the stage-1 cache, the others read
            return stage2_pairs(config, progress)
    distributed.check_same_data(comm, config)
    preview = data.pairs_for(config, 'test') if distributed.is_root(comm) else None
    if preview is not None and config.kind == 'hints':
        preview = hint_preview_pairs(preview)
    return data.pairs_for(config, 'train'), preview


# ---------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------

@dataclass
class Run:
    """What :func:`build_trainer` returns: the trainer and its parts."""
    trainer: object
    gen: object
    dis: object
    config: object
    out: str
    resumed_from: object  # path of the snapshot resumed from, or None

    @property
    def iteration(self):
        return self.trainer.updater.iteration


def _check(config, out):
    iterations = config.iterations
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) \
            or iterations < 1:
        raise ValueError('iterations must be a whole number >= 1, got %r' % (iterations,))
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError('the run folder %s is a file; give --out a folder' % out)


def _prepare_folder(config, out, b, resume, command, n_proc):
    """Rank 0's part: the run folder, its config.json and the snapshot to resume from."""
    os.makedirs(out, exist_ok=True)
    # temp files left by a process killed while writing (a snapshot, gen.npz, a preview)
    atomic.remove_stale_temps(out)
    snapshot = latest_snapshot(out) if resume else None
    if not resume:
        for _, old in list_snapshots(out):
            os.remove(old)
    _write_config(config, out, b, command, resuming=snapshot is not None, processes=n_proc)
    return snapshot


def _extend(trainer, config, gen, dis, preview_pairs, progress):
    """Rank 0's extensions: log, loss plot, previews, snapshots, final weights, progress."""
    stop = config.iterations
    trainer.extend(chainer_ext.LogReport(trigger=(config.log_interval, 'iteration')))
    trainer.extend(LossPlot(config.preview_interval, stop), name='LossPlot')
    trainer.extend(Preview(gen, preview_pairs, config.preview_interval, stop),
                   name='Preview')
    trainer.extend(Snapshot(config.snapshot_interval, config.keep_snapshots, stop),
                   name='Snapshot')
    trainer.extend(FinalWeights(gen, dis, config, stop), name='FinalWeights')
    if progress:
        trainer.extend(Progress(stop), name='Progress')


def build_trainer(config, out, train_pairs=None, preview_pairs=None, resume=True,
                  device=None, progress=True, command=None, comm=None, network=None):
    """A ready-to-run Chainer Trainer writing into the run folder ``out``.

    ``config``: a config or a name from configs.py; its ``kind`` picks the network, the
    data and the updater. ``train_pairs`` / ``preview_pairs`` default to the config's
    (:func:`pairs_of`). With ``resume=True`` and a snapshot in ``out``, the trainer
    continues from the newest one; ``config.iterations`` may be raised to train longer.
    ``comm``: a ChainerMN communicator (:func:`distributed.init`) to train data-parallel
    in several processes: ``config.batch_size`` is then the batch of each process, and
    only rank 0 writes into ``out`` (docs/distributed.md). ``network``: see
    :func:`build_models`.
    """
    config = configs_mod.get(config) if isinstance(config, str) else config
    _check(config, out)
    b = backend_mod.resolve(device) if device else backend_mod.current()
    root, n_proc = distributed.is_root(comm), distributed.size(comm)
    snapshot = _prepare_folder(config, out, b, resume, command, n_proc) if root else None
    snapshot_file = distributed.share_snapshot(comm, snapshot)  # rank 0's, for every rank
    if train_pairs is None:
        train_pairs, default_preview = pairs_of(config, comm, progress)
        preview_pairs = default_preview if preview_pairs is None else preview_pairs
    distributed.check_same_data(comm, config, train_pairs)
    if len(train_pairs.lines) < 1:
        raise ValueError('no training pictures for config %s (data=%s, train_limit=%s): '
                         'check --train-limit (>= 1), or build the data (make data)'
                         % (config.name, config.data, config.train_limit))
    if preview_pairs is None and root:
        preview_pairs = pairs_of(config)[1]
    gen, dis = build_models(config, b, network)
    # under MPI: the order of a one-process run with n_proc x the batch, sliced by rank
    it = make_iterator(train_pairs, config.batch_size * n_proc, config.seed)
    if comm is not None:
        it = distributed.ShardIterator(it, comm.rank, n_proc)
    opt_g = distributed.multi_node_optimizer(
        adam(config.alpha_g, config.beta1, config.weight_decay, gen), comm)
    opt_d = None if dis is None else distributed.multi_node_optimizer(
        adam(config.alpha_d, config.beta1, config.weight_decay, dis), comm)
    updater = updater_for(config, it, gen, opt_g, dis, opt_d, b)
    trainer = training.Trainer(updater, (config.iterations, 'iteration'), out=out)
    if comm is not None:
        updater.shard = (comm.rank, n_proc)
        distributed.extend(trainer, comm, config, (gen, dis))
    if not root:   # the other ranks compute; rank 0 logs, previews and saves
        snapshot = snapshot_file
    else:
        _extend(trainer, config, gen, dis, preview_pairs, progress)
    if snapshot is not None:
        chainer.serializers.load_npz(snapshot, trainer)
        if root:
            print('Resumed %s from %s (iteration %d of %d)' % (
                out, os.path.basename(snapshot), updater.iteration, config.iterations),
                file=sys.stderr)
    elif root and updater.iteration == 0:
        save_preview(gen, preview_pairs, os.path.join(out, 'previews', 'iter_000000.png'))
    distributed.start(comm, (opt_g, opt_d))
    return Run(trainer, gen, dis, config, out, snapshot if root else None)


def _write_config(config, out, b, command, resuming, processes=1):
    path = os.path.join(out, 'config.json')
    env = {k: os.environ[k] for k in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS',
                                      'MKL_NUM_THREADS', 'TUTORIAL_FASTCONV',
                                      'TUTORIAL_DEVICE') if k in os.environ}
    info = dict(config=config.to_dict(), device=b.name, env=env,
                command=command or ' '.join(sys.argv), started=time.strftime(
                    '%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
    if processes > 1:   # data-parallel (distributed.py): batch_size is per process
        info.update(processes=processes, effective_batch=processes * config.batch_size)
    if resuming and os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        # an older run's config.json may lack fields added since: they count at their default
        a = configs_mod.from_dict(old.get('config', {})).to_dict()
        c = config.to_dict()
        a.pop('iterations', None)
        c.pop('iterations', None)
        if a != c:
            diff = sorted(k for k in set(a) | set(c) if a.get(k) != c.get(k))
            raise ValueError(
                '%s holds a snapshot of a run with a different config (%s differ). '
                'Use another --out, or --no-resume to start over.' % (out, ', '.join(diff)))
        info['resumed'] = old.get('resumed', []) + [info['started']]
        info['started'] = old.get('started')
    atomic.write_json(path, info)


def train(config, out=None, iterations=None, device=None, resume=True, progress=True,
          train_pairs=None, preview_pairs=None, command=None, comm=None, network=None):
    """Train (or continue training) and return the :class:`Run` when done.

    ``out`` defaults to ``runs/<config name>`` in the repository.
    """
    if isinstance(config, str):
        config = configs_mod.get(config)
    if iterations is not None:
        config = config.replace(iterations=int(iterations))
    if out is None:
        out = str(REPO_ROOT / 'runs' / config.name)
    run = build_trainer(config, out, train_pairs, preview_pairs, resume, device, progress,
                        command, comm, network)
    if run.iteration < config.iterations:
        run.trainer.run()
    if comm is not None:   # the allreduced steps keep every rank's weights the same
        distributed.check_in_sync(comm, (run.gen, run.dis))
    return run


# ---------------------------------------------------------------------------------------
# A network for a notebook
# ---------------------------------------------------------------------------------------

@dataclass
class Trained:
    """A U-Net ready for the notebooks, and where it came from."""
    gen: object
    log: list      # LogReport entries (may be empty)
    source: str    # in words: 'shipped checkpoint ...', 'trained now ...'
    folder: str    # the run folder or the checkpoint folder
    config: object


def quick_variant(config):
    """The tiny 'quick' config with the loss settings of a line config (QUICK mode)."""
    q = configs_mod.get('quick')
    return q.replace(name='quick_' + config.name, rec_loss=config.rec_loss,
                     adv_weight=config.adv_weight)


def quick_models(out_dir=None, progress=False):
    """Train ``quick_hints`` then ``quick_stage2`` on synthetic data (seconds, QUICK mode).

    Returns (stage-1 run folder, stage-2 run folder)."""
    out_dir = out_dir or str(REPO_ROOT / 'runs')
    q1 = configs_mod.get('quick_hints').replace(data='synthetic')
    r1 = train(q1, out=os.path.join(out_dir, 'quick_hints'), resume=False, progress=progress)
    q2 = configs_mod.get('quick_stage2').replace(data='synthetic', stage1=r1.out)
    r2 = train(q2, out=os.path.join(out_dir, 'quick_stage2'), resume=False, progress=progress)
    return r1.out, r2.out


def _shipped(config):
    folder = checkpoints_dir() / config.name
    log = json.loads((folder / 'log.json').read_text()) if (folder / 'log.json').exists() \
        else []
    it = read_meta(str(folder / 'gen.npz')).get('iteration', '?')
    return Trained(load_unet(config.name), log, 'shipped checkpoint data/checkpoints/%s (%s '
                   'iterations)' % (config.name, it), str(folder), config)


def _quick(config, progress):
    if config.kind == 'lines':
        q = quick_variant(config)
        out = str(REPO_ROOT / 'runs' / q.name)
        run = train(q, out=out, resume=False, progress=progress)
        return Trained(run.gen, read_log(out), 'trained now (QUICK mode, %d iterations of '
                       'config %s)' % (run.iteration, q.name), out, q)
    r1, r2 = quick_models(progress=progress)
    out = r2 if config.kind == 'stage2' else r1
    return Trained(load_unet(out), read_log(out), 'trained now (QUICK mode: a tiny U-Net, a '
                   'few iterations on synthetic shapes)', out, config)


def obtain(name, source='shipped', progress=True, out=None):
    """The U-Net of a named config the way a notebook wants it, as a :class:`Trained`.

    ``source``: 'shipped' -- the shipped checkpoint ``data/checkpoints/<name>`` and its
    log, or train the config now when none is shipped; 'quick' (QUICK mode) -- the shipped
    checkpoint too when there is one (inference is fast, and the pictures then mean
    something), else a tiny variant trained now in seconds (the machinery is the point,
    not the pictures); 'train' -- train the named config now (resumes ``runs/<name>``).
    """
    if source not in ('shipped', 'quick', 'train'):
        raise ValueError("source must be 'shipped', 'quick' or 'train', got %r" % (source,))
    config = configs_mod.get(name) if isinstance(name, str) else name
    if source != 'train' and (checkpoints_dir() / config.name / 'gen.npz').exists():
        return _shipped(config)
    if source == 'quick':
        return _quick(config, progress)
    run = train(config, out=out, progress=progress)
    return Trained(run.gen, read_log(run.out), 'trained now (%d iterations of config %s, '
                   'folder %s)' % (run.iteration, config.name, run.out), run.out, config)
