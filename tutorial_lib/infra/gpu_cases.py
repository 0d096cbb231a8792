"""What the GPU check measures: Adam steps of the course's updaters (pictures per second)
and the Colorizer's stroke-to-result latency, on any backend."""
import gc
import time
from dataclasses import dataclass

from . import compat  # noqa: F401  (before chainer)
import numpy as np

import chainer

from . import backend as backend_mod
from .. import data, images, stage2, training, updaters
from ..checkpoints import load_unet
from ..colorize import Colorizer
from ..hints import Stroke
from ..models import UNET
from ..pairs import SimplePairs, synthetic_pairs


@dataclass
class TrainCase:
    label: str
    config: object          # configs.TrainConfig (or a subclass)
    iterations: int
    warmup: int = 5
    kind: str = 'rec'       # 'rec', 'adv', 'hints' or 'stage2'
    headline: bool = False  # its img/s is compared with gpu_report.TARGET_TRAIN_IMG_S


@dataclass
class LatencyCase:
    label: str
    stage1: str             # a checkpoint name/path, or 'untrained' (full width, random)
    stage2: str
    side: int               # the picture's side in pixels
    stage1_side: int = 128
    stage2_side: int = 512
    repeats: int = 50
    warmup: int = 5
    headline: bool = False  # its median is compared with gpu_report.TARGET_LATENCY_MS


class CheckFailed(RuntimeError):
    """A part failed, with what it measured so far."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result or {}


def _train_pairs(config, n, source):
    if source == 'openmoji':
        return data.load_split_resized('train', config.size, limit=n, seed=config.seed)
    return synthetic_pairs(n, config.size, seed=config.seed, split='train')


def _stage1_model(config, b):
    """The frozen stage 1 a stage-2 case refines: the config's checkpoint, else an
    untrained hint U-Net of the same width (the speed is what is measured)."""
    try:
        return load_unet(config.stage1, backend=b)
    except FileNotFoundError:
        gen = UNET(in_ch=4, width=config.width)
        gen.to_device(b.chainer_device)
        return gen


def _losses(observation):
    return {k: float(backend_mod.to_cpu(v)) for k, v in sorted(observation.items())
            if k.endswith('loss') or k.endswith('/acc')}


def fresh_memory(b):
    gc.collect()   # drop the previous case's networks before emptying CuPy's pool
    backend_mod.free_memory(b)


def _case_updater(case, b, source, pictures):
    """The networks and the updater the course trains this kind of config with."""
    cfg = case.config
    n = max(pictures, 2 * cfg.batch_size)
    pairs = _train_pairs(cfg, n, source)
    gen, dis = training.build_models(cfg, b)
    if case.kind == 'stage2':
        gen1 = _stage1_model(cfg, b)
        small = (cfg.stage1_size, cfg.stage1_size)
        lines_s = np.stack([images.resize(x, small) for x in pairs.lines])
        colors_s = np.stack([images.resize(x, small) for x in pairs.colors])
        low = stage2.stage1_colors(gen1, lines_s, colors_s, seed=cfg.seed)
        del gen1
        pairs = SimplePairs(list(pairs.names), pairs.lines,
                            updaters.Zip(pairs.colors, low), 'train')
    it = updaters.make_iterator(pairs, cfg.batch_size, cfg.seed)
    opt_g = updaters.adam(cfg.alpha_g, cfg.beta1, cfg.weight_decay, gen)
    opt_d = None if dis is None else updaters.adam(cfg.alpha_d, cfg.beta1, cfg.weight_decay,
                                                   dis)
    return gen, dis, updaters.updater_for(cfg, it, gen, opt_g, dis, opt_d, b)


def _time_steps(case, updater, gen, dis, b):
    """Losses of the first warm-up step and of the last timed step, and the timed seconds."""
    reporter = chainer.Reporter()
    reporter.add_observer('gen', gen)
    if dis is not None:
        reporter.add_observer('dis', dis)

    def step():
        observation = {}
        with reporter.scope(observation):
            updater.update()
        return observation

    first = None
    for _ in range(max(1, case.warmup)):
        obs = step()
        if first is None:
            first = _losses(obs)
    backend_mod.synchronize(b)
    t0 = time.perf_counter()
    for _ in range(case.iterations):
        obs = step()
    backend_mod.synchronize(b)
    return first, _losses(obs), time.perf_counter() - t0


def run_train_case(case, b, source='synthetic', pictures=128):
    """``case.iterations`` timed Adam steps (after ``case.warmup`` untimed ones) of the
    updater the course uses for this kind of config, on backend ``b``."""
    cfg = case.config
    fresh_memory(b)
    gen, dis, updater = _case_updater(case, b, source, pictures)
    first, last, seconds = _time_steps(case, updater, gen, dis, b)
    side = (getattr(cfg, 'crop', None) or cfg.size) if case.kind == 'stage2' else cfg.size
    result = dict(label=case.label, config=cfg.name, kind=case.kind, width=cfg.width,
                  in_ch=cfg.in_ch, px=side, batch=cfg.batch_size,
                  iterations=case.iterations, seconds=round(seconds, 3),
                  img_per_s=round(case.iterations * cfg.batch_size / seconds, 1)
                  if seconds > 0 else float('inf'),
                  ms_per_iteration=round(1e3 * seconds / max(1, case.iterations), 2),
                  loss_first=first, loss_last=last, data=source, headline=case.headline,
                  device_array=backend_mod.xp_of(gen.c0.W.array).__name__)
    result.update({'memory_' + k: v for k, v in backend_mod.memory_stats(b).items()})
    bad = {k: v for k, v in list(first.items()) + list(last.items()) if not np.isfinite(v)}
    if bad:
        raise CheckFailed('%s: losses not finite: %s' % (case.label, bad), result)
    if result['device_array'] != b.xp.__name__:
        raise CheckFailed('%s: the U-Net\'s weights are %s arrays, not %s'
                          % (case.label, result['device_array'], b.xp.__name__), result)
    return result


def _latency_models(case):
    if case.stage1 != 'untrained':
        return case.stage1, case.stage2
    np.random.seed(0)
    return UNET(in_ch=4, width=1.0), stage2.Stage2UNET(in_ch=4, width=1.0)


def _sketch(side):
    """A committed sample line drawing at side x side, or synthetic shapes without it."""
    try:
        return np.ascontiguousarray(data.load_samples(size=side).lines[0])
    except Exception:
        return synthetic_pairs(1, side, seed=3).lines[0]


PALETTE = ('#8b4513', '#1e90ff', '#ffd700', '#32cd32', '#ff69b4', '#ff4500')


def strokes_for(i, side, keep=5):
    """The hints after the i-th drag of a learner: the last ``keep`` short strokes."""
    out = []
    for j in range(max(0, i - keep + 1), i + 1):
        rs = np.random.RandomState(j)
        x, y = rs.uniform(0.1, 0.9, 2) * side
        dx, dy = rs.uniform(-0.1, 0.1, 2) * side
        out.append(Stroke([(x, y), (x + dx, y + dy)], PALETTE[j % len(PALETTE)],
                          radius=max(1.0, side / 128)))
    return out


def run_latency_case(case, b):
    """Stroke-to-result milliseconds of ``Colorizer.colorize`` with stage 1 + 2: a new
    stroke each time, everything from the line art to the uint8 result."""
    fresh_memory(b)
    s1, s2 = _latency_models(case)
    col = Colorizer(s1, s2, device=b.name, stage1_side=case.stage1_side,
                    stage2_side=case.stage2_side)
    line = _sketch(case.side)
    for i in range(max(1, case.warmup)):
        col.colorize(line, hints=strokes_for(i, case.side), stage2=True)
    times, parts = [], []
    for i in range(case.repeats):
        hints = strokes_for(case.warmup + i, case.side)
        t0 = time.perf_counter()
        out = col.colorize(line, hints=hints, stage2=True)
        times.append((time.perf_counter() - t0) * 1e3)
        parts.append(col.last_timing)
    if out.shape != line.shape + (3,) or out.dtype != np.uint8:
        raise CheckFailed('%s: the Colorizer returned %s %s for a %s picture'
                          % (case.label, out.dtype, out.shape, line.shape))
    t = np.array(times)
    result = dict(label=case.label, side=case.side, stage1_side=case.stage1_side,
                  stage2_side=case.stage2_side, repeats=case.repeats, warmup=case.warmup,
                  median_ms=round(float(np.median(t)), 2),
                  p90_ms=round(float(np.percentile(t, 90)), 2),
                  min_ms=round(float(t.min()), 2), headline=case.headline,
                  models=col.describe().split('; device:')[0])
    for key in ('prepare', 'stage1', 'stage2', 'finish'):
        result[key + '_ms'] = round(float(np.median([p[key] for p in parts])), 2)
    result.update({'memory_' + k: v for k, v in backend_mod.memory_stats(b).items()})
    return result
