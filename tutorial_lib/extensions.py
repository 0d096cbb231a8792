"""What a training run writes besides the weights: snapshots (resumable), previews, the loss
plot, the progress bar and the final gen.npz. Notebook 02 shows a run folder."""
import glob
import os
import re

import chainer
import cv2
from chainer import training

from . import atomic
from .infra import backend as backend_mod
from .models import save_weights
from .viz import plot_log, preview_grid

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


def list_previews(out):
    return sorted(glob.glob(os.path.join(out, 'previews', 'iter_*.png')))


def save_preview(gen, pairs, path):
    """:func:`viz.preview_grid` of ``gen`` on ``pairs``, written atomically as a PNG."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    grid = preview_grid(gen, pairs)
    with atomic.atomic_path(path) as tmp:
        cv2.imwrite(tmp, grid[..., ::-1])


class _Every(training.Extension):
    """Runs :meth:`fire` every ``interval`` iterations and at iteration ``stop``."""
    trigger = (1, 'iteration')
    priority = training.PRIORITY_READER  # after LogReport, so its log is included

    def __init__(self, interval, stop=None):
        self.interval, self.stop = int(interval), stop

    def __call__(self, trainer):
        it = trainer.updater.iteration
        if it % self.interval == 0 or (self.stop is not None and it >= self.stop):
            self.fire(trainer)


class Snapshot(_Every):
    """Save the whole trainer every ``interval`` iterations and at the end.

    Written to a temporary file in the run folder and renamed with ``os.replace``, so
    the folder only ever holds complete snapshots, even when the process is killed
    mid-write. Keeps the latest ``keep``. :func:`training.build_trainer` resumes from the
    newest.
    """

    def __init__(self, interval, keep=2, stop=None):
        super().__init__(interval, stop)
        self.keep = int(keep)

    def fire(self, trainer):
        self.save(trainer)

    def save(self, trainer):
        out = trainer.out
        it = trainer.updater.iteration
        path = os.path.join(out, 'snapshot_iter_%d.npz' % it)
        with atomic.atomic_path(path) as tmp:
            chainer.serializers.save_npz(tmp, trainer)
        for _, old in list_snapshots(out)[:-self.keep]:
            os.remove(old)


class Preview(_Every):
    """Every ``interval`` iterations: line / output / truth rows on fixed TEST pictures,
    saved as ``previews/iter_NNNNNN.png`` in the run folder."""

    def __init__(self, gen, pairs, interval, stop=None):
        super().__init__(interval, stop)
        self.gen, self.pairs = gen, pairs

    def fire(self, trainer):
        path = os.path.join(trainer.out, 'previews',
                            'iter_%06d.png' % trainer.updater.iteration)
        save_preview(self.gen, self.pairs, path)


class LossPlot(_Every):
    """Redraw ``loss.png`` from LogReport's log every ``interval`` iterations."""

    def fire(self, trainer):
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
            if self.config.kind == 'hints':   # how its hints were simulated
                meta['hint_recipe'] = self.config.hint_recipe
            meta.update(getattr(self.gen, 'save_meta', {}))  # e.g. a residual stage 2
            save_weights(self.gen, os.path.join(trainer.out, 'gen.npz'), meta)
            if self.dis is not None:
                save_weights(self.dis, os.path.join(trainer.out, 'dis.npz'),
                             dict(meta, image_size=self.config.size))
