"""One training step: batches from the data, the losses, the Adam steps. Notebook 02 teaches
the reconstruction loss, 03 the Ad-boss, 04 the hint inputs and 05 the stage-2 batches.

* :class:`PairDataset` / :class:`EpochShuffle` / :func:`make_iterator`: (line, color) uint8
  pairs in a seeded, resumable order;
* :class:`ReconstructionUpdater`: the blog's first attempt, L2 (or L1) between the U-Net's
  output and the true colors; :class:`LineStyleUpdater` restyles the line art of each batch;
* :class:`AdversarialUpdater`: the same plus the Ad-boss (:class:`models.DIS`);
  :class:`PatchAdversarialUpdater` with the patch Ad-boss (:class:`patch_dis.PatchDIS`);
* :class:`Stage2Updater`: batches of :func:`stage2.assemble_stage2`;
* :func:`updater_for`: the one place that picks the updater from ``config.kind``.

Reproducibility: the flips (and hints, line styles, crops) of a step come from a generator
seeded with (seed, iteration), so a resumed run continues exactly.
"""
import zlib

import chainer
import chainer.functions as F
import numpy as np
from chainer import training

from . import augment
from . import hints as hints_mod
from .infra import backend as backend_mod
from .models import encode_colors, encode_lines
from .stage2 import assemble_stage2

REAL, FAKE = 0, 1  # the Ad-boss's two classes


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
        key = zlib.crc32(np.asarray(current_order, np.int64).tobytes()) \
            ^ (self.seed * 2654435761 % 2**32)
        return np.random.RandomState(key % 2**32).permutation(len(current_order))


def make_iterator(pairs, batch_size, seed=0):
    return chainer.iterators.SerialIterator(
        PairDataset(pairs), batch_size, repeat=True, shuffle=None,
        order_sampler=EpochShuffle(seed))


class Zip:
    """colors[i] -> (true colors at the stage-2 size, stage-1 colors): the ``colors`` of
    stage-2 training pairs, so :class:`PairDataset` serves both."""

    def __init__(self, colors, stage1):
        if len(colors) != len(stage1):
            raise ValueError('%d pictures but %d stage-1 outputs' % (len(colors), len(stage1)))
        self.colors, self.stage1 = colors, stage1

    def __len__(self):
        return len(self.colors)

    def __getitem__(self, i):
        return self.colors[i], self.stage1[i]


def adam(alpha, beta1, weight_decay, link):
    """Adam on ``link`` (plus weight decay when ``weight_decay`` > 0)."""
    opt = chainer.optimizers.Adam(alpha=alpha, beta1=beta1)
    opt.setup(link)
    if weight_decay:
        opt.add_hook(chainer.optimizer_hooks.WeightDecay(weight_decay))
    return opt


def hint_input_fn(cfg=None):
    """The input of a hint U-Net's training batch.

    ``fn(lines uint8 (N,H,W), colors uint8 (N,H,W,3), rng) -> float32 (N,4,H,W)``: the
    line in [-1, 1] and hint channels simulated from the (already flipped) true colors
    with the updater's seeded ``rng`` (recipe ``cfg``, a :class:`hints.HintConfig`), so a
    resumed run draws the same hints.
    """
    cfg = cfg or hints_mod.HintConfig()

    def input_fn(lines, colors, rng):
        return hints_mod.make_input(lines, hints_mod.simulate_batch(colors, rng, cfg, lines))
    return input_fn


def reconstruction_loss(y, t, kind='l2'):
    if kind == 'l2':
        return F.mean_squared_error(y, t)
    if kind == 'l1':
        return F.mean_absolute_error(y, t)
    raise ValueError("rec_loss must be 'l2' or 'l1', got %r" % kind)


class ReconstructionUpdater(training.updaters.StandardUpdater):
    """One step = one batch, one Adam step of the U-Net on the reconstruction loss.

    Reports ``gen/loss_rec`` (and ``gen/loss``, the total the optimizer sees).
    ``input_fn(lines, colors, rng)`` builds the network input when it has more channels
    than the line (:func:`hint_input_fn`); None = the line alone.
    """
    line_styles = None   # an augment.LineStyles restyles each batch's line art
    # (rank, processes) under MPI (distributed.py): this process's share of each step
    shard = (0, 1)

    def __init__(self, iterator, gen, opt_gen, rec_loss='l2', seed=0, flip=True,
                 backend=None, input_fn=None):
        super().__init__(iterator, {'gen': opt_gen})
        self.gen, self.rec_loss, self.seed, self.flip = gen, rec_loss, int(seed), flip
        self.backend = backend or backend_mod.current()
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


class LineStyleUpdater(ReconstructionUpdater):
    """:class:`ReconstructionUpdater` that restyles every batch's line art at random
    (:func:`augment.restyle`: stroke width, darkness, blur; other artists' lines)."""
    line_styles = augment.LineStyles()


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
        y = self.gen(x)
        loss_rec = reconstruction_loss(y, t, self.rec_loss)
        loss_adv = self.verdict_loss(self.judge(x, y), REAL)
        loss_gen = loss_rec + self.adv_weight * loss_adv
        self.gen.cleargrads()
        loss_gen.backward()
        self.get_optimizer('gen').update()

        y.unchain_backward()
        score_fake = self.judge(x, y)
        score_real = self.judge(x, t)
        loss_fake = self.verdict_loss(score_fake, FAKE)
        loss_real = self.verdict_loss(score_real, REAL)
        loss_dis = loss_fake + loss_real
        self.dis.cleargrads()
        loss_dis.backward()
        self.get_optimizer('dis').update()

        chainer.report({'loss': loss_gen, 'loss_rec': loss_rec, 'loss_adv': loss_adv},
                       self.gen)
        chainer.report({'loss': loss_dis, 'loss_real': loss_real, 'loss_fake': loss_fake,
                        'acc': self.accuracy(score_fake, score_real)}, self.dis)

    def judge(self, x, colors):
        """The Ad-boss's scores for ``colors``; the blog's sees the colors alone."""
        return self.dis(colors)

    def verdict_loss(self, score, label):
        """Softmax cross-entropy of the two class scores against ``label`` (REAL or FAKE)."""
        target = self.backend.xp.full(len(score), label, np.int32)
        return F.softmax_cross_entropy(score, target)

    def accuracy(self, score_fake, score_real):
        """How often the Ad-boss is right, on the generated and the real pictures alike."""
        xp = self.backend.xp
        fake = xp.full(len(score_fake), FAKE, np.int32)
        real = xp.full(len(score_real), REAL, np.int32)
        return (F.accuracy(score_fake, fake).array + F.accuracy(score_real, real).array) / 2


class PatchAdversarialUpdater(AdversarialUpdater):
    """Reconstruction + the patch Ad-boss (:class:`patch_dis.PatchDIS`), beyond the blog.

    The Ad-boss sees the line beside the colors (``dis.in_ch`` 4; with 3 it sees the colors
    alone, as the blog's does) and answers per patch, so its losses are
    sigmoid cross-entropies averaged over the patches (label 1 = real). The U-Net step:
    ``rec + adv_weight * CE(DIS(line, y), real)``; the Ad-boss step: ``CE(DIS(line, y),
    fake) + CE(DIS(line, t), real)``. Reports the same keys as :class:`AdversarialUpdater`
    (``dis/acc``: the share of patches judged right). The step is the blog's
    (:meth:`AdversarialUpdater.update_core`); only what the Ad-boss sees and how its verdict
    is scored differ.
    """

    def judge(self, x, colors):
        """A logit per patch for the line art (not the hint channels) beside ``colors``."""
        seen = F.concat([x[:, :1], colors], axis=1) if self.dis.in_ch == 4 else colors
        return self.dis(seen)

    def verdict_loss(self, score, label):
        """Sigmoid cross-entropy averaged over the patches (target 1 = real)."""
        target = self.backend.xp.full(score.shape, int(label == REAL), np.int32)
        return F.sigmoid_cross_entropy(score, target)

    def accuracy(self, score_fake, score_real):
        """The share of patches judged right, on generated and real pictures alike."""
        return ((score_fake.array < 0).mean() + (score_real.array > 0).mean()) / 2

class Stage2Updater(ReconstructionUpdater):
    """The reconstruction updater with :func:`stage2.assemble_stage2` batches.

    Examples are ``(line, (color, stage1_color))`` (:class:`Zip`); ``crop`` x ``crop``
    windows, the truth-instead-of-stage-1 mix ``p_truth`` and flips come from a generator
    seeded with (seed, iteration), so a resumed run continues exactly.
    """

    def __init__(self, iterator, gen, opt_gen, rec_loss='l1', seed=0, flip=True,
                 backend=None, crop=None, p_truth=0.2, line_styles=None):
        # the input is assembled in next_batch, not by an input_fn
        super().__init__(iterator, gen, opt_gen, rec_loss, seed, flip, backend,
                         input_fn=lambda lines, colors, rng: None)
        self.crop, self.p_truth, self.line_styles = crop, p_truth, line_styles

    def next_batch(self):
        batch = self.get_iterator('main').next()
        rng = self.process_rng()    # (seed, iteration), and the rank under MPI
        lines, colors = [b[0] for b in batch], [b[1][0] for b in batch]
        if self.line_styles is not None:     # geometry-keeping styles only (augment.STAGE2)
            lines, colors = augment.restyle(lines, colors, rng, self.line_styles)
        x, t, _ = assemble_stage2(lines, colors, [b[1][1] for b in batch], rng, self.crop,
                                  self.p_truth, self.flip)
        xp = self.backend.xp
        return xp.asarray(x), xp.asarray(t)


def updater_for(config, iterator, gen, opt_gen, dis=None, opt_dis=None, backend=None):
    """The updater a config trains with, chosen from ``config.kind`` ('lines', 'hints',
    'stage2') and whether it has an Ad-boss (``dis``)."""
    common = dict(rec_loss=config.rec_loss, seed=config.seed, flip=config.flip,
                  backend=backend)
    styled = config.line_styles
    if config.kind == 'stage2':
        return Stage2Updater(iterator, gen, opt_gen, crop=config.crop, p_truth=config.p_truth,
                             line_styles=augment.STAGE2 if styled else None, **common)
    if config.kind == 'hints':
        common['input_fn'] = hint_input_fn(hints_mod.recipe(config.hint_recipe))
    elif config.kind != 'lines':
        raise ValueError("config.kind must be 'lines', 'hints' or 'stage2', got %r"
                         % (config.kind,))
    if dis is not None:
        cls = AdversarialUpdater if config.dis == 'blog' else PatchAdversarialUpdater
        return cls(iterator, gen, dis, opt_gen, opt_dis, config.adv_weight, **common)
    updater = (LineStyleUpdater if styled else ReconstructionUpdater)(iterator, gen, opt_gen,
                                                                       **common)
    if styled:      # the default styles, less the kinds the config switches off
        updater.line_styles = augment.without(config.line_styles_without)
    return updater
