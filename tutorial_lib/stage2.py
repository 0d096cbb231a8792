"""Color hints in training, the 512 px second stage, and how to measure both.

Notebooks 04 and 05 call this module. Its parts:

**Stage 1 with hints.** :func:`hint_input_fn` is the ``input_fn`` the training updaters
accept: for every batch it invents hints from the true colors with
:func:`hints.simulate_batch` (some pictures without any, the rest with a few or many
dots; the config names a recipe from :data:`hints.RECIPES`) and stacks them next to the
line, so the blog's ``UNET(in_ch=4)`` (config ``classroom_hints_blog``) and the
fill-reading :class:`hint_unet.HintFillUNET` (config ``classroom_hints``) train through
the same Trainer as the line-only U-Net.

**Stage 2.** A second U-Net (config ``classroom_stage2``, :class:`configs.Stage2Config`)
reads the 512 px line plus the stage-1 colors, computed at 128 px and upsampled to 512 px
(bicubic): 4 channels. It learns to redraw sharp colors along the fine lines that a 128 px
picture cannot hold. During training the color channels come from the frozen stage 1 80% of
the time and from the true picture, shrunk to 128 px and blown up again, 20% of the time
(PaintsChainer's recipe): the network cannot simply trust its color input, and it learns
from the clean version what a good blurry input should become. Its loss is L1 (the
reconstruction loss of PaintsChainer's released stage 2; no Ad-boss).

Two choices that keep stage 2 affordable on a CPU, both documented in the config:

* the stage-1 colors of the whole training split are computed once (frozen network,
  seeded simulated hints, so about 40% of them without hints as in stage-1 training) and
  cached under ``runs/stage2_cache/`` (atomic write, keyed by the stage-1 weights);
* the network is fully convolutional, so it trains on random 256 x 256 crops of the 512 px
  pictures: the stage-1 colors are computed on the WHOLE picture at 128 px, upsampled to
  512 px, then cropped with the same window as the line and the truth. A crop costs a
  quarter of a whole picture; inference runs on whole pictures.

**Measuring.** :func:`hints_curve` (PSNR and hint-color error vs the number of hints
sampled from the true picture, as in Zhang et al. 2017's ideepcolor) with
:func:`plot_hints_curve`; :func:`stage2_gain` (PSNR at 512 px of stage 1 upsampled vs
stage 1 + stage 2); :func:`ship` puts a trained hint or stage-2 U-Net into
``data/checkpoints/`` with metrics that make sense for it.
"""
import hashlib
import json
import os
import sys
from dataclasses import dataclass

import chainer
import cv2
import numpy as np

from . import atomic
from . import augment
from .infra import backend as backend_mod
from . import cli
from . import configs as configs_mod
from . import evaluation
from . import data
from . import hints as hints_mod
from . import metrics as metrics_mod
from . import training
from .hint_unet import HintFillUNET
from .pairs import SimplePairs, synthetic_pairs
from .models import UNET, colorize, encode_colors, encode_lines, load_weights, read_meta
from .models import warm_start as models_warm_start



# ---------------------------------------------------------------------------------------
# Stage 1 with hints
# ---------------------------------------------------------------------------------------

def hint_input_fn(cfg=None):
    """The training updaters' ``input_fn`` for a hint U-Net.

    ``fn(lines uint8 (N,H,W), colors uint8 (N,H,W,3), rng) -> float32 (N,4,H,W)``: the
    line in [-1, 1] and hint channels simulated from the (already flipped) true colors
    with the updater's seeded ``rng``, so a resumed run draws the same hints.
    """
    cfg = cfg or hints_mod.HintConfig()

    def input_fn(lines, colors, rng):
        return hints_mod.make_input(lines, hints_mod.simulate_batch(colors, rng, cfg, lines))
    return input_fn


def warm_start(gen, source):
    """Copy a line-only U-Net's weights into a hint U-Net of the same width, in place.

    ``source``: a U-Net or anything :func:`resolve_checkpoint` accepts. Every parameter
    and BatchNorm statistic is copied; the first layer's weights for the extra input
    channels (the hints) are set to zero, so ``gen`` computes exactly what ``source``
    computes until training teaches it to read the hints.
    """
    src = source if hasattr(source, 'in_ch') else training.load_gen(resolve_checkpoint(source))
    if src.width != gen.width or src.in_ch > gen.in_ch:
        raise ValueError('cannot warm-start a width-%g in_ch=%d U-Net from a width-%g in_ch=%d '
                         'one' % (gen.width, gen.in_ch, src.width, src.in_ch))
    return models_warm_start(gen, src)


class Stage2UNET(UNET):
    """The blog's U-Net as a residual second stage: output = its color input (channels
    1..3, the upsampled stage-1 colors) + the U-Net's correction.

    The last layer (dc0) starts at zero, so an untrained stage 2 returns its input
    unchanged, and every training step can only learn a correction. Saved with
    ``residual: true`` in the weights' meta; :func:`load_unet` rebuilds this class.
    """
    save_meta = {'residual': True, 'stage': 2}

    def __init__(self, in_ch=4, width=1.0, out_ch=3, zero_init=True):
        super().__init__(in_ch=in_ch, width=width, out_ch=out_ch)
        if zero_init:
            self.dc0.W.array[...] = 0
            self.dc0.b.array[...] = 0

    def forward(self, x):
        return super().forward(x) + x[:, 1:4]


@dataclass
class ExtraPairs(SimplePairs):
    """Pairs with ``extra`` input channels (float32 (N,C,H,W)) for the training previews."""
    extra: object = None


def hint_preview_pairs(pairs, n_hints=10, seed=0):
    """Preview pairs for a hint U-Net: each picture with ``n_hints`` true-color dots."""
    rgb, mask = hints_mod.truth_hints(pairs.colors, n_hints, seed, radius=1)
    return ExtraPairs(list(pairs.names), np.asarray(pairs.lines), np.asarray(pairs.colors),
                      getattr(pairs, 'split', 'test'), hints_mod.encode_batch(rgb, mask))


# ---------------------------------------------------------------------------------------
# Stage 2: data
# ---------------------------------------------------------------------------------------

def resize(image, size, interpolation=None):
    """cv2.resize to ``size`` = (h, w); area when shrinking, bicubic when growing."""
    h, w = size
    if interpolation is None:
        interpolation = cv2.INTER_AREA if h * w < image.shape[0] * image.shape[1] \
            else cv2.INTER_CUBIC
    out = cv2.resize(np.ascontiguousarray(image), (int(w), int(h)),
                     interpolation=interpolation)
    return out.reshape((int(h), int(w)) + image.shape[2:])


def upsample_colors(low, size):
    """Stage-1 colors uint8 (h,w,3) -> (H,W,3) bicubic, clipped to uint8."""
    return resize(low, size, cv2.INTER_CUBIC)


def assemble_stage2(lines, colors, stage1, rng, crop=None, p_truth=0.2, flip=True):
    """One stage-2 training batch (numpy, CPU).

    ``lines`` uint8 (N,H,W), ``colors`` uint8 (N,H,W,3) at the stage-2 size; ``stage1``
    uint8 (N,h,w,3): the frozen stage-1 colors of the whole pictures at the small size.
    For each picture: with probability ``p_truth`` the color input is the truth shrunk to
    (h,w) (area) instead of the stage-1 output; either is upsampled to (H,W) (bicubic),
    then line, color input and truth are cropped with one random ``crop`` x ``crop``
    window and mirrored together (``flip``). Everything is drawn from ``rng``.

    Returns ``(x float32 (N,4,c,c), t float32 (N,3,c,c), used_truth bool (N,))``.
    """
    n = len(lines)
    xs, ts, used = [], [], np.zeros(n, bool)
    for i in range(n):
        line, color, low = np.asarray(lines[i]), np.asarray(colors[i]), np.asarray(stage1[i])
        h, w = line.shape
        used[i] = rng.random_sample() < p_truth
        if used[i]:
            low = resize(color, low.shape[:2], cv2.INTER_AREA)
        up = upsample_colors(low, (h, w))
        c = crop or h
        cw = crop or w
        if c > h or cw > w:
            raise ValueError('crop %d is larger than the pictures (%dx%d)' % (c, h, w))
        y0 = rng.randint(0, h - c + 1)
        x0 = rng.randint(0, w - cw + 1)
        win = (slice(y0, y0 + c), slice(x0, x0 + cw))
        line, up, color = line[win], up[win], color[win]
        if flip and rng.random_sample() < 0.5:
            line, up, color = line[:, ::-1], up[:, ::-1], color[:, ::-1]
        xs.append(np.concatenate([encode_lines(line), encode_colors(up)], axis=1)[0])
        ts.append(encode_colors(color)[0])
    return np.stack(xs), np.stack(ts), used


class _Zip:
    """colors[i] -> (true colors at the stage-2 size, stage-1 colors): for PairDataset."""

    def __init__(self, colors, stage1):
        if len(colors) != len(stage1):
            raise ValueError('%d pictures but %d stage-1 outputs' % (len(colors), len(stage1)))
        self.colors, self.stage1 = colors, stage1

    def __len__(self):
        return len(self.colors)

    def __getitem__(self, i):
        return self.colors[i], self.stage1[i]


class Stage2Updater(training.ReconstructionUpdater):
    """The reconstruction updater with :func:`assemble_stage2` batches.

    Examples are ``(line, (color, stage1_color))``; crops, the 80/20 mix and flips come
    from a generator seeded with (seed, iteration), so a resumed run continues exactly.
    """
    crop = None
    p_truth = 0.2

    def __init__(self, iterator, gen, opt_gen, rec_loss='l1', seed=0, flip=True,
                 backend=None, input_fn=None):
        super().__init__(iterator, gen, opt_gen, rec_loss, seed, flip, backend,
                         input_fn or (lambda lines, colors, rng: None))

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


def stage2_updater_cls(config):
    """A :class:`Stage2Updater` subclass carrying the config's crop and mix."""
    return type('Stage2Updater', (Stage2Updater,),
                dict(crop=config.crop, p_truth=config.p_truth,
                     line_styles=augment.STAGE2 if getattr(config, 'line_styles', False)
                     else None))


# ---------------------------------------------------------------------------------------
# Stage 1 for stage 2: loading, running, caching
# ---------------------------------------------------------------------------------------

def resolve_checkpoint(spec):
    """A gen.npz path from a shipped checkpoint name, a run folder or a file path.

    Looks, in order, at: an existing path (folder with gen.npz, or a file);
    ``data/checkpoints/<spec>/gen.npz``; ``runs/<spec>/gen.npz``.
    """
    from . import REPO_ROOT
    spec = os.fspath(spec)
    candidates = [spec, os.path.join(spec, 'gen.npz'),
                  str(training.checkpoints_dir() / spec / 'gen.npz'),
                  str(REPO_ROOT / 'runs' / spec / 'gen.npz')]
    for k, c in enumerate(candidates):
        if os.path.isfile(c):
            if k == 2:      # a shipped checkpoint by name: is it the file the manifest lists?
                training.verify_shipped(spec, c)
            return c
    raise FileNotFoundError(
        'no U-Net found for %r: not a gen.npz file or folder, not a shipped checkpoint in %s, '
        'not a finished run in runs/%s (train it: python -m tutorial_lib.train --config %s)'
        % (spec, training.checkpoints_dir(), spec, spec))


def load_unet(spec, backend=None):
    """The U-Net named by ``spec`` (see :func:`resolve_checkpoint`), on the device
    (a :class:`Stage2UNET` when its meta says ``residual``)."""
    path = resolve_checkpoint(spec)
    meta = training.inspect_checkpoint(path)
    if meta.get('residual'):
        gen = load_weights(Stage2UNET(meta.get('in_ch', 4), meta.get('width', 1.0),
                                      zero_init=False), path)
    else:
        gen = training.load_gen(path)
    b = backend or backend_mod.current()
    gen.to_device(b.chainer_device)
    return gen


def check_stage(spec, stage):
    """The gen.npz path of ``spec`` after checking it can serve as ``stage`` (1 or 2).

    Stage 2 refines stage-1 colors (its meta says ``residual: true``) and colors nothing
    alone (all black as a stage 1); any other U-Net (line only, hints, hint fill...) is a
    stage 1, and as a stage 2 it would ignore the colors it is given."""
    path = resolve_checkpoint(spec)
    meta = training.inspect_checkpoint(path)
    residual = bool(meta.get('residual'))
    if stage == 1 and residual:
        raise ValueError('%s is a stage-2 U-Net (residual: it refines stage-1 colors at 512 '
                         'px and colors nothing alone); as stage 1 use a line or hint U-Net '
                         'such as classroom_hints, and give this one as stage 2' % spec)
    if stage == 2 and not residual:
        raise ValueError('%s is a stage-1 U-Net (%s), not a stage 2: a stage 2 is a residual '
                         'refiner whose meta says residual: true, such as classroom_stage2'
                         % (spec, 'kind %s' % meta['kind'] if meta.get('kind')
                            else 'in_ch=%s' % meta.get('in_ch', 1)))
    return path


def load_stage(spec, stage, backend=None):
    """:func:`load_unet` for a U-Net that must serve as ``stage`` 1 or 2 (see
    :func:`check_stage`); a model object is returned as it is, unless it is a
    :class:`Stage2UNET` given as stage 1."""
    if hasattr(spec, 'in_ch'):
        if stage == 1 and getattr(spec, 'save_meta', {}).get('residual'):
            raise ValueError('this U-Net is a stage 2 (residual, %s): it refines stage-1 '
                             'colors and colors nothing alone; give it as stage 2'
                             % type(spec).__name__)
        return spec
    return load_unet(check_stage(spec, stage), backend)


def stage1_colors(gen, lines, colors=None, hint_cfg=None, seed=0, batch_size=32,
                  progress=False):
    """Run a frozen stage 1 on uint8 lines (N,h,w) -> uint8 colors (N,h,w,3).

    For a hint U-Net with ``colors`` given, picture i gets hints simulated from its true
    colors with ``RandomState([seed, i])`` and ``hint_cfg`` (default: the recipe stage 1
    was trained with, from its weights' meta); without ``colors`` it runs without hints.
    """
    lines = np.asarray(lines)
    out = np.zeros(lines.shape + (3,), np.uint8)
    cfg = hint_cfg or hints_mod.recipe(getattr(gen, 'hint_recipe', None) or 'sparse')
    steps = range(0, len(lines), batch_size)
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc='stage 1', leave=False)
    for s in steps:
        sl = slice(s, s + batch_size)
        extra = None
        if getattr(gen, 'in_ch', 1) == 4 and colors is not None:
            extra = np.stack([hints_mod.encode(*hints_mod.simulate(
                np.asarray(colors[i]), np.random.RandomState([seed, i]), cfg, lines[i]))
                for i in range(s, min(s + batch_size, len(lines)))])
        out[sl] = colorize(gen, lines[sl], extra=extra)
    return out


def _atomic_save_npy(path, array):
    with atomic.atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            np.save(f, array)


def cached_stage1_colors(stage1_path, lines, colors, seed=0, cache_dir=None, progress=True):
    """:func:`stage1_colors` for a training set, computed once and kept on disk.

    The cache file is keyed by the stage-1 weights, the pictures and the seed, and written
    atomically (a killed run never leaves half a file).
    """
    from . import REPO_ROOT
    lines = np.asarray(lines)
    h = hashlib.sha256()
    with open(stage1_path, 'rb') as f:
        h.update(f.read())
    h.update(np.ascontiguousarray(lines).tobytes())
    h.update(str(seed).encode())
    cache_dir = cache_dir or str(REPO_ROOT / 'runs' / 'stage2_cache')
    path = os.path.join(cache_dir, 'stage1_%s.npy' % h.hexdigest()[:16])
    if os.path.exists(path):
        out = np.load(path)
        if out.shape == lines.shape + (3,):
            return out
    gen = load_unet(stage1_path)
    out = stage1_colors(gen, lines, colors, seed=seed, progress=progress)
    _atomic_save_npy(path, out)
    return out


def _stage2_pairs(config, split):
    """(names, lines at config.size, colors at config.size, lines at stage1_size)."""
    if config.data == 'synthetic':
        p = synthetic_pairs(config.train_limit or 32 if split == 'train'
                                     else config.n_preview, config.size,
                                     seed=config.seed + (split == 'test'), split=split)
        small = np.stack([resize(x, (config.stage1_size,) * 2) for x in p.lines])
        return p.names, p.lines, p.colors, small
    if config.data == 'samples' or not data.is_built():
        if config.data != 'samples':
            print('The OpenMoji cache is not built (make data); stage 2 trains on the '
                  'committed samples instead (TEST pictures: for trying the machinery only).',
                  file=sys.stderr)
        p = data.load_samples(size=config.size)
        n = config.train_limit if split == 'train' else config.n_preview
        p = p.subset(range(min(len(p), n or len(p))))
        small = np.stack([resize(x, (config.stage1_size,) * 2) for x in p.lines])
        return p.names, p.lines, p.colors, small
    limit = config.train_limit if split == 'train' else config.n_preview
    big = data.load_split_resized(split, config.size, limit=limit)
    small = data.load_split_resized(split, config.stage1_size, limit=limit)
    if list(big.names) != list(small.names):
        raise RuntimeError('the %d and %d px splits list different pictures'
                           % (config.size, config.stage1_size))
    return big.names, big.lines, big.colors, small.lines


def training_kwargs(config, progress=True):
    """What :func:`training.train` needs besides the config, for hint and stage-2 runs.

    Hint U-Net (``in_ch=4``): ``input_fn`` and previews with 10 true-color hints.
    Stage 2: the training pairs (512 px lines, (512 px colors, cached stage-1 colors)),
    previews with the stage-1 colors as ``extra`` and the :class:`Stage2Updater`.
    """
    if getattr(config, 'stage', 1) != 2:
        if config.in_ch == 1:
            return {}
        if config.in_ch != 4:
            raise ValueError('in_ch must be 1 (line) or 4 (line + hints), got %d'
                             % config.in_ch)
        kw = dict(input_fn=hint_input_fn(hints_mod.recipe(config.hint_recipe)),
                  preview_pairs=hint_preview_pairs(data.pairs_for(config, 'test')))
        if getattr(config, 'line_styles', False):
            kw['updater_cls'] = training.line_style_updater_cls()
        init = getattr(config, 'init_from', None)
        if getattr(config, 'model', 'blog') == 'fill':
            kw['gen_fn'] = lambda in_ch, width: _fill_unet(width, init)
        elif init:
            kw['gen_fn'] = lambda in_ch, width: warm_start(UNET(in_ch=in_ch, width=width),
                                                           init)
        return kw
    stage1_path = resolve_checkpoint(config.stage1)
    names, lines, colors, small = _stage2_pairs(config, 'train')
    cached = cached_stage1_colors(stage1_path, small, _small_colors(config, 'train', colors),
                                  seed=config.seed, progress=progress)
    train_pairs = SimplePairs(list(names), lines, _Zip(colors, cached), 'train')
    pnames, plines, pcolors, psmall = _stage2_pairs(config, 'test')
    gen1 = load_unet(stage1_path)
    gen1.to_device(backend_mod.current().chainer_device)
    low = stage1_colors(gen1, psmall)       # previews: stage 1 without hints
    plines, pcolors = np.asarray(plines), np.asarray(pcolors)
    extra = encode_colors(np.stack([upsample_colors(c, plines.shape[1:3]) for c in low]))
    preview = ExtraPairs(list(pnames), plines, pcolors, 'test', extra)
    kw = dict(train_pairs=train_pairs, preview_pairs=preview,
              updater_cls=stage2_updater_cls(config))
    if getattr(config, 'residual', False):
        kw['gen_fn'] = Stage2UNET
    return kw


def _fill_unet(width, init_from=None):
    gen = HintFillUNET(width=width)
    if init_from:
        gen.warm_start(training.load_gen(resolve_checkpoint(init_from)))
    return gen


def _small_colors(config, split, colors):
    """True colors at the stage-1 size (for simulating the cached stage-1 hints)."""
    if config.data == 'openmoji':
        if data.is_built():
            return data.load_split_resized(split, config.stage1_size,
                                               limit=config.train_limit).colors
    return np.stack([resize(np.asarray(c), (config.stage1_size,) * 2) for c in colors])


def train(config, out=None, iterations=None, progress=True, resume=True, command=None):
    """Train a hint U-Net or a stage-2 U-Net (or anything else) from a config or its name."""
    if isinstance(config, str):
        config = configs_mod.get(config)
    return training.train(config, out=out, iterations=iterations, resume=resume,
                          progress=progress, command=command,
                          **training_kwargs(config, progress))


def quick_models(out_dir=None, progress=False):
    """Train ``quick_hints`` then ``quick_stage2`` on synthetic data (seconds, QUICK mode).

    Returns (stage-1 run folder, stage-2 run folder)."""
    from . import REPO_ROOT
    out_dir = out_dir or str(REPO_ROOT / 'runs')
    q1 = configs_mod.get('quick_hints').replace(data='synthetic')
    r1 = train(q1, out=os.path.join(out_dir, 'quick_hints'), resume=False, progress=progress)
    q2 = configs_mod.get('quick_stage2').replace(data='synthetic', stage1=r1.out)
    r2 = train(q2, out=os.path.join(out_dir, 'quick_stage2'), resume=False, progress=progress)
    return r1.out, r2.out


def obtain(name, quick=False, retrain=False, progress=True):
    """A hint or stage-2 U-Net for a notebook, as a :class:`training.Trained`.

    The shipped checkpoint ``data/checkpoints/<name>`` when there is one (also in QUICK
    mode: inference is fast, and the pictures then mean something); ``retrain=True``
    trains the named config now (resuming ``runs/<name>``); without a shipped checkpoint,
    ``quick=True`` trains the tiny quick variants on synthetic data (seconds).
    """
    config = configs_mod.get(name)
    folder = training.checkpoints_dir() / name
    if not retrain and (folder / 'gen.npz').exists():
        gen = load_unet(str(folder / 'gen.npz'))
        log = json.loads((folder / 'log.json').read_text()) if (folder / 'log.json').exists() \
            else []
        it = training.read_meta(str(folder / 'gen.npz')).get('iteration', '?')
        return training.Trained(gen, log, 'shipped checkpoint data/checkpoints/%s (%s '
                                'iterations)' % (name, it), str(folder), config)
    if quick and not retrain:
        r1, r2 = quick_models(progress=progress)
        out = r2 if getattr(config, 'stage', 1) == 2 else r1
        return training.Trained(load_unet(out), training.read_log(out), 'trained now (QUICK '
                                'mode: a tiny U-Net, a few iterations on synthetic shapes)',
                                out, config)
    run = train(config, progress=progress)
    return training.Trained(run.gen, training.read_log(run.out), 'trained now (%d iterations '
                            'of config %s, folder %s)' % (run.iteration, name, run.out),
                            run.out, config)


# ---------------------------------------------------------------------------------------
# Shipping
# ---------------------------------------------------------------------------------------

def _update_manifest(name, changes):
    manifest = training.read_manifest()
    manifest.setdefault('checkpoints', {}).setdefault(name, {}).update(changes)
    atomic.write_json(training.checkpoints_dir() / 'manifest.json', manifest, sort_keys=True)


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items() if k not in ('hist', 'per_picture',
                                                                 'outputs')}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


def record_hints_curve(name, size=128, radius=evaluation.CURVE_RADIUS):
    """Measure the hints curve of the shipped hint U-Net ``name`` on all TEST pictures
    (human and OpenCV-extracted lines; dots of ``radius`` and single pixels) and record
    it in its manifest entry."""
    from .lines import extract_best
    test = data.load_split_resized('test', size)
    gen = load_unet(str(training.checkpoints_dir() / name / 'gen.npz'))
    curve = evaluation.hints_curve(gen, test, radius=radius)
    curve_cv = evaluation.hints_curve(gen, test, radius=radius,
                           lines=extract_best(np.asarray(test.colors)))
    curve_px = evaluation.hints_curve(gen, test, radius=0)
    curve_fill = evaluation.hints_curve(evaluation.fill_method, test, radius=radius)
    curve_hybrid = evaluation.hints_curve(evaluation.hybrid_method(gen), test, radius=radius)
    _update_manifest(name, dict(
        test_hints_curve=curve, test_hints_curve_opencv_lines=curve_cv,
        test_hints_curve_1px=curve_px, test_hints_curve_bucket_fill=curve_fill,
        test_hints_curve_hybrid=curve_hybrid,
        test_hints_curve_about=(
            'PSNR (dB) and hint error (mean |RGB diff| at hinted pixels, 0..255; '
            '_colored: at hinted pixels that are colored and off the ink in the truth) vs '
            'number of hints sampled from the truth (evaluation.hints_curve, seed 0): disks of '
            'radius %d px (13 pixels, a small brush dot); _1px: single pixels; all %d TEST '
            'pictures at %d px; _opencv_lines: the same with lines.extract_best(colors) as '
            'input; _bucket_fill: fill.py alone on white paper; _hybrid: this network '
            'without hints with the bucket fill pasted over it (evaluation.hybrid_method)'
            % (radius, len(test), size))))
    return curve, curve_cv


def ship(run_folder, stage2_pictures=64, with_hints_curve=True):
    """Ship a hint U-Net or a stage-2 U-Net into data/checkpoints/ with fitting metrics.

    Hint U-Net: the usual test metrics (no hints, all TEST pictures at 128 px) plus the
    hints curve (:func:`record_hints_curve`). Stage 2: test metrics of the two-stage
    Colorizer at 512 px on the first ``stage2_pictures`` TEST pictures, the
    stage-1-only baseline and the gain.
    """
    from .colorize import Colorizer
    with open(os.path.join(run_folder, 'config.json')) as f:
        info = json.load(f)
    cfg = info['config']
    if cfg.get('stage', 1) != 2:
        training.ship(run_folder)      # no-hint metrics via models.colorize
        _update_manifest(cfg['name'], dict(config=cfg))   # with init_from
        if with_hints_curve:
            record_hints_curve(cfg['name'], cfg['size'])
        return training.read_manifest()['checkpoints'][cfg['name']]
    entry = training.ship(run_folder, evaluate_on_test=False)
    name = cfg['name']
    test = data.load_split_resized('test', cfg['size'], limit=stage2_pictures)
    col = Colorizer.from_checkpoints(stage1=cfg['stage1'],
                                     stage2=str(training.checkpoints_dir() / name / 'gen.npz'),
                                     stage1_side=cfg['stage1_size'], stage2_side=cfg['size'])
    gain = evaluation.stage2_gain(col, test)
    outs1, outs2 = gain['outputs']
    truth = np.asarray(test.colors)
    m2 = metrics_mod.summarize(metrics_mod.scores(np.stack(outs2), test), np.stack(outs2), truth)
    m1 = metrics_mod.summarize(metrics_mod.scores(np.stack(outs1), test), np.stack(outs1), truth)
    _update_manifest(name, dict(
        config=cfg, test_metrics=_plain(m2), test_metrics_stage1_upsampled=_plain(m1),
        stage2_gain=_plain(gain),
        test_data='OpenMoji TEST split, the first %d pictures at %d px; stage 1 = %s at %d px '
                  'without hints, upsampled bicubic' % (len(truth), cfg['size'], cfg['stage1'],
                                                        cfg['stage1_size'])))
    return training.read_manifest()['checkpoints'][name]


@cli.command
def main(argv=None):
    """Measure shipped (or any) checkpoints on the TEST split from a terminal.

        python -m tutorial_lib.stage2 hints-curve [--stage1 classroom_hints] [--limit N]
        python -m tutorial_lib.stage2 gain [--stage1 ...] [--stage2 ...] [--limit 64]
    """
    import argparse
    p = argparse.ArgumentParser(prog='python -m tutorial_lib.stage2', description=main.__doc__,
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
                   help='hints-curve: also the bucket fill and the network + fill hybrid')
    args = p.parse_args(argv)
    print('Device:', backend_mod.describe(), file=sys.stderr)
    if args.what == 'hints-curve':
        from .lines import extract_best
        test = data.load_split_resized('test', 128, limit=args.limit)
        gen = load_stage(args.stage1, 1)
        curve, fmt = evaluation.hints_curve, evaluation.format_curve
        print(fmt(curve(gen, test, radius=args.radius),
                           'human lines, %d TEST pictures at 128 px, stage 1 = %s, hints = '
                           'disks of radius %d px' % (len(test), args.stage1, args.radius)))
        print(fmt(curve(gen, test, radius=args.radius,
                                       lines=extract_best(np.asarray(test.colors))),
                           'OpenCV-extracted lines (lines.extract_best)'))
        if args.baselines:
            print(fmt(curve(evaluation.fill_method, test, radius=args.radius),
                               'baseline: bucket fill on white paper (fill.py)'))
            print(fmt(curve(evaluation.hybrid_method(gen), test, radius=args.radius),
                               'baseline: %s without hints + the bucket fill pasted over it'
                               % args.stage1))
    else:
        from .colorize import Colorizer
        test = data.load_split_resized('test', 512, limit=args.limit or 64)
        col = Colorizer.from_checkpoints(args.stage1, args.stage2)
        g = evaluation.stage2_gain(col, test, args.hints)
        print('%d TEST pictures at 512 px, %d hints: PSNR stage 1 upsampled %.2f dB, stage 1 '
              '+ stage 2 %.2f dB, gain %+.2f dB (better on %.0f%%); SSIM %.3f -> %.3f'
              % (g['n'], g['hints'], g['psnr_stage1'], g['psnr_stage2'], g['gain'],
                 100 * g['improved'], g['ssim_stage1'], g['ssim_stage2']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
