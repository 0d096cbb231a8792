"""What ``make bench`` times: the U-Net, discriminator and hint-model steps on stock Chainer
and on the fast CPU path, their convolution FLOPs, and the hint canvas's latency."""
import gc
import statistics
import time

from . import compat  # noqa: F401  (before chainer)
import cv2
import numpy as np

import chainer
import chainer.functions as F
from chainer.functions.connection import convolution_2d as _c2d
from chainer.functions.connection import deconvolution_2d as _d2d
from chainer.utils import conv as _conv

from . import fastpath, threads
from .. import REPO_ROOT, data, hints
from ..colorize import Colorizer
from ..hint_unet import HintFillUNET
from ..models import DIS, UNET, encode_colors
from ..widgets import HintCanvas

MODES = {'stock': fastpath.stock, 'fast': fastpath.fast}


class ConvFlops(chainer.FunctionHook):
    """Counts the multiply-adds of every 2-D convolution, deconvolution and convolution
    weight gradient applied while the hook is active (backward passes included)."""

    name = 'ConvFlops'

    def __init__(self):
        self.macs = 0

    def forward_preprocess(self, function, in_data):
        if isinstance(function, _c2d.Convolution2DFunction):
            x, W = in_data[:2]
            n, _, h, w = x.shape
            o, c, kh, kw = W.shape
            oh = _conv.get_conv_outsize(h, kh, function.sy, function.ph,
                                        function.cover_all, function.dy)
            ow = _conv.get_conv_outsize(w, kw, function.sx, function.pw,
                                        function.cover_all, function.dx)
            self.macs += n * o * oh * ow * c * kh * kw
        elif isinstance(function, _d2d.Deconvolution2DFunction):
            x, W = in_data[:2]
            self.macs += x.size * W.shape[1] * W.shape[2] * W.shape[3]
        elif isinstance(function, _c2d.Convolution2DGradW):
            x, gy = in_data
            self.macs += gy.size * x.shape[1] * function.kh * function.kw

    @property
    def flops(self):
        return 2 * self.macs


def conv_flops(fn):
    hook = ConvFlops()
    with fastpath.fast(), hook:
        fn()
    return hook.flops


def sgemm_peak(size=2048, repeats=5):
    """float32 GFLOP/s of numpy's matrix product on this machine, best of ``repeats``:
    one ``size``^3 product with BLAS's own threads ('blas_threads'), and one product per
    thread with single-threaded BLAS as the fast path runs them ('fastconv_threads')."""
    rs = np.random.RandomState(0)
    a = rs.standard_normal((size, size)).astype(np.float32)
    b = rs.standard_normal((size, size)).astype(np.float32)
    n = threads.thread_count()
    outs = [np.empty_like(a) for _ in range(n)]

    def one():
        np.matmul(a, b, out=outs[0])

    def per_thread():
        threads.run(range(n), lambda i: np.matmul(a, b, out=outs[i]), n)

    found = {}
    for name, fn, products in (('blas_threads', one, 1), ('fastconv_threads', per_thread, n)):
        fn()
        best = float('inf')
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        found[name] = round(products * 2 * size ** 3 / best / 1e9, 1)
    return max(found.values()), found


class PhaseTimes:
    """Seconds spent in each phase of a step ('forward', 'backward', 'optimizer update'),
    summed over steps while recording (off otherwise: then a phase costs two calls)."""

    def __init__(self):
        self.seconds = None

    def record(self):
        self.seconds = {}

    def stop(self):
        seconds, self.seconds = self.seconds, None
        return seconds


PHASES = PhaseTimes()


class _phase:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        seconds = PHASES.seconds
        if seconds is not None:
            seconds[self.name] = seconds.get(self.name, 0.0) + time.perf_counter() - self.t0


def _adam_step(model, loss_of):
    """One Adam step of ``model`` on ``loss_of(model)``, timed by phase."""
    opt = chainer.optimizers.Adam(alpha=1e-4)
    opt.setup(model)

    def step():
        with _phase('forward'):
            loss = loss_of(model)
        with _phase('backward'):
            model.cleargrads()
            loss.backward()
        with _phase('optimizer update'):
            opt.update()
    return step


def _l2_step(model, x, t):
    """One Adam step with an L2 loss (the course's classroom_l2 recipe)."""
    return _adam_step(model, lambda m: F.mean_squared_error(m(x), t))


def unet_train_step(width, size, batch, in_ch=1):
    np.random.seed(0)
    model = UNET(in_ch=in_ch, width=width)
    rs = np.random.RandomState(1)
    x = rs.uniform(0, 1, (batch, in_ch, size, size)).astype(np.float32)
    t = rs.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
    return _l2_step(model, x, t)


def hint_train_step(width, size, batch):
    """One L2 Adam step of the shipped hint model (:class:`hint_unet.HintFillUNET`: hint
    mask + bucket-fill input + gate; its per-picture bucket fill is part of the step) on
    committed sample pictures with simulated 'informative' hints."""
    pairs = data.load_samples(size)
    lines, colors = pairs.lines[:batch], pairs.colors[:batch]
    rng = np.random.RandomState(2)
    hint_channels = hints.simulate_batch(colors, rng, hints.recipe('informative'), lines)
    x = hints.make_input(lines, hint_channels)
    t = encode_colors(colors)
    np.random.seed(0)
    return _l2_step(HintFillUNET(width=width), x, t)


def unet_inference(width, size, in_ch=4):
    np.random.seed(0)
    model = UNET(in_ch=in_ch, width=width)
    x = np.random.RandomState(1).uniform(0, 1, (1, in_ch, size, size)).astype(np.float32)

    def infer():
        with chainer.using_config('train', False), chainer.no_backprop_mode():
            return model(x)
    return infer


def dis_train_step(width, size, batch, image_size=None):
    np.random.seed(0)
    model = DIS(width=width, image_size=image_size)
    rs = np.random.RandomState(1)
    x = rs.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
    t = rs.randint(0, 2, batch).astype(np.int32)
    return _adam_step(model, lambda m: F.softmax_cross_entropy(m(x), t))


def workloads(quick):
    """(key, description, factory) of the benchmarks; --quick shrinks them.

    ``train128_full``: one Adam step (forward, L2 loss, backward, update) of the blog's
    U-Net at full width, line-only input, 128 px, batch 8; ``train128_classroom``: the same
    at the classroom width 0.25; ``infer512``: one 512 px picture through the full-width
    U-Net with the stage-2 input (4 channels), no graph; ``dis_step`` / ``dis_classroom``:
    one Adam step of the discriminator (softmax cross entropy), full and classroom width;
    ``hint_classroom``: one L2 Adam step of the shipped hint model on committed samples."""
    if quick:
        return [
            ('train128_full', 'U-Net w=1/8 in_ch=1 train step, 32 px, batch 2',
             lambda: unet_train_step(1 / 8, 32, 2)),
            ('train128_classroom', 'U-Net w=1/16 in_ch=1 train step, 32 px, batch 2',
             lambda: unet_train_step(1 / 16, 32, 2)),
            ('infer512', 'U-Net w=1/8 in_ch=4 inference, 64 px, 1 image',
             lambda: unet_inference(1 / 8, 64)),
            ('dis_step', 'DIS w=1/4 train step, 32 px, batch 2',
             lambda: dis_train_step(1 / 4, 32, 2)),
            ('dis_classroom', 'DIS w=1/16 train step, 32 px, batch 2',
             lambda: dis_train_step(1 / 16, 32, 2, image_size=32)),
            ('hint_classroom', 'HintFillUNET w=1/16 train step, 32 px, batch 2',
             lambda: hint_train_step(1 / 16, 32, 2)),
        ]
    return [
        ('train128_full', 'U-Net w=1 in_ch=1 Adam step, 128 px, batch 8',
         lambda: unet_train_step(1.0, 128, 8)),
        ('train128_classroom', 'U-Net w=0.25 in_ch=1 Adam step, 128 px, batch 8',
         lambda: unet_train_step(0.25, 128, 8)),
        ('infer512', 'U-Net w=1 in_ch=4 inference, 512 px, 1 image',
         lambda: unet_inference(1.0, 512)),
        ('dis_step', 'DIS w=1 Adam step, 128 px, batch 8',
         lambda: dis_train_step(1.0, 128, 8)),
        ('dis_classroom', 'Ad-boss DIS w=0.25 Adam step, 128 px, batch 8',
         lambda: dis_train_step(0.25, 128, 8, image_size=128)),
        ('hint_classroom', 'hint model HintFillUNET w=0.25 L2 Adam step, 128 px, batch 8',
         lambda: hint_train_step(0.25, 128, 8)),
    ]


def time_interleaved(fn, repeats, warmup=1):
    """Seconds of ``fn`` on stock and on fast Chainer, runs interleaved (stock, fast, fast,
    stock, ...) after a warm-up, so that other programs slow both alike."""
    for _ in range(warmup):
        for mode in MODES:
            with MODES[mode]():
                fn()
    times = {mode: [] for mode in MODES}
    for r in range(repeats):
        order = ('stock', 'fast') if r % 2 == 0 else ('fast', 'stock')
        for mode in order:
            gc.collect()
            with MODES[mode]():
                t0 = time.perf_counter()
                fn()
                times[mode].append(time.perf_counter() - t0)
    return times


def recolor_latency(repeats=7, device='cpu'):
    """Stroke-to-result latency of the hint canvas (:mod:`tutorial_lib.widgets`) with the
    shipped classroom checkpoints: a committed sketch at 512 px, one new stroke, then the
    canvas's own recolor (hint image, colorize, result drawn); median ms of ``repeats``
    after one warm-up. Stage 1 alone (the network sees 128 px) and stage 1 + stage 2
    (512 px)."""
    line = cv2.imread(str(REPO_ROOT / 'data' / 'samples' / 'sketches' / '1F4F2_256x192.png'),
                      cv2.IMREAD_GRAYSCALE)
    line = cv2.resize(line, (512, 384), interpolation=cv2.INTER_CUBIC)
    canvas = HintCanvas(line, colorizer=Colorizer.from_checkpoints(device=device))
    found = {}
    for key, use_stage2 in (('stage1_128', False), ('stage12_512', True)):
        canvas.stage2.value = use_stage2
        canvas.wait()
        times = []
        for r in range(repeats + 1):
            x = 100 + 30 * (r % 10)
            canvas.add_stroke(hints.Stroke([(x, 100), (x + 40, 250)], '#e03030', 4),
                              recolor=False)
            canvas.recolor()
            times.append(canvas.last_latency_ms)
        found[key] = dict(median_ms=round(statistics.median(times[1:]), 1),
                          all_ms=[round(t, 1) for t in times[1:]])
    return found
