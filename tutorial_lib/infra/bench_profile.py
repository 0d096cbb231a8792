"""Where a step's time goes (``make bench``'s profile): the self time of every Chainer
function type, forward and backward apart, the optimizer update and the rest."""
import cProfile
import io
import pstats
import time

from . import compat  # noqa: F401  (before chainer)
import chainer

from .bench_workloads import MODES, PHASES


class TypeTimer(chainer.FunctionHook):
    """Self time of every function type, forward and backward apart: a node's time
    excludes the nodes it runs inside it (a convolution's backward runs a
    deconvolution and a weight gradient; they are listed as '... (in backward)')."""

    name = 'TypeTimer'

    def __init__(self):
        self.seconds = {}
        self.calls = {}
        self._stack = []

    def _enter(self, key):
        now = time.perf_counter()
        if self._stack:
            top = self._stack[-1]
            self.seconds[top[0]] = self.seconds.get(top[0], 0.0) + now - top[1]
            if top[2] == 'bwd':
                key = (key[0] + ' (in backward)', key[1])
        self.calls[key] = self.calls.get(key, 0) + 1
        self._stack.append([key, now, key[1]])

    def _exit(self):
        now = time.perf_counter()
        key, t0, _ = self._stack.pop()
        self.seconds[key] = self.seconds.get(key, 0.0) + now - t0
        if self._stack:
            self._stack[-1][1] = now

    def forward_preprocess(self, function, in_data):
        self._enter((function.label, 'fwd'))

    def forward_postprocess(self, function, in_data):
        self._exit()

    def backward_preprocess(self, function, in_data, out_grad):
        self._enter((function.label, 'bwd'))

    def backward_postprocess(self, function, in_data, out_grad):
        self._exit()


def _timed(fn, steps):
    """Wall seconds of ``steps`` runs of ``fn``, the type table and the phase sums."""
    timer = TypeTimer()
    PHASES.record()
    try:
        t0 = time.perf_counter()
        with timer:
            for _ in range(steps):
                fn()
        total = time.perf_counter() - t0
    finally:
        phases = PHASES.stop()
    return total, timer, phases


def _rows(timer, phases, total, steps):
    """(name, seconds per step) of every function type, the update and 'other', largest first."""
    rows = []
    for (label, kind), sec in timer.seconds.items():
        rows.append(('%s %s' % (label, 'forward' if kind == 'fwd' else 'backward')
                     if not label.endswith(' (in backward)') else label, sec / steps))
    update = phases.get('optimizer update', 0.0) / steps
    rows.append(('optimizer update (Adam, all parameters)', update))
    rows.append(('other (Python, graph, loss, cleargrads)',
                 max(0.0, total / steps - sum(r[1] for r in rows))))
    rows.sort(key=lambda r: -r[1])
    return rows


def profile_step(fn, steps=3, mode='fast', top=25):
    """Per-function-type table and cProfile summary of ``steps`` runs of ``fn`` (after
    one warm-up) on the fast path ('fast') or stock Chainer ('stock').

    Returns a dict: ``step_s`` (mean), ``rows`` [(name, ms per step, share)] -- every
    function type's self time, forward ('fwd') and backward ('bwd') apart, the optimizer
    update, and 'other' (Python, graph bookkeeping, loss, cleargrads: the step's time
    outside all of these) -- and ``cprofile`` (the top ``top`` entries by own time, text;
    cProfile sees the calling thread only, so work the fast path hands to its worker
    threads is missing there, while the table above counts wall time)."""
    with MODES[mode]():
        fn()
        total, timer, phases = _timed(fn, steps)
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(steps):
            fn()
        prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats('tottime').print_stats(top)
    rows = _rows(timer, phases, total, steps)
    step = total / steps
    return {'mode': mode, 'steps': steps, 'step_s': round(step, 4),
            'rows': [(name, round(1e3 * sec, 2), round(sec / step, 4)) for name, sec in rows],
            'phases_s': {k: round(v / steps, 4) for k, v in phases.items()},
            'cprofile': text.getvalue()}


def print_profile(key, prof, limit=14):
    print('\nprofile %s (%s path, %d steps, %.3f s per step): self time per function type'
          % (key, prof['mode'], prof['steps'], prof['step_s']))
    print('| function type | ms per step | share |')
    print('|---|---:|---:|')
    shown = prof['rows'][:limit]
    for name, ms, share in shown:
        print('| %s | %.1f | %.1f%% |' % (name, ms, 100 * share))
    rest = prof['rows'][limit:]
    if rest:
        print('| (%d more types) | %.1f | %.1f%% |' % (
            len(rest), sum(r[1] for r in rest), 100 * sum(r[2] for r in rest)))
