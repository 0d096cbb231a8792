"""A fused, blocked, threaded CPU path for Chainer's Adam update, bit for bit Chainer's.

How and why: docs/fast-cpu-path.md; :mod:`tutorial_lib.infra.fastpath` switches it.
"""
import threading

from . import compat  # noqa: F401  (before chainer)
import numpy

import chainer
from chainer import optimizer as _optimizer
from chainer.optimizers import adam as _adam

from .threads import run, scratch, thread_count

__all__ = ['enable', 'disable', 'is_enabled', 'adam_blocks']

_Adam = _adam.Adam
_AdamRule = _adam.AdamRule
_MISSING = object()
_ORIGINAL = _Adam.__dict__.get('update', _MISSING)  # normally inherited: nothing to save

# Elements per block: p, grad, m, v and two scratch blocks of 32 Ki float32 (768 KiB)
# stay in a core's L2 cache while the thirteen operations run over them.
BLOCK_ELEMS = 32 << 10
# Below this many elements in all, the blocks run in the calling thread.
PARALLEL_ELEMS = 1 << 18

_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
_lock = threading.RLock()


def _contiguous_numpy(a, dtype, shape):
    return (type(a) is numpy.ndarray and a.dtype == dtype and a.shape == shape
            and a.flags.c_contiguous)


def _plain_rule(rule):
    """An AdamRule whose CPU update is Chainer's own (subclasses that override it and
    the AMSGrad/AdaBound variants keep their code)."""
    cls = type(rule)
    return (isinstance(rule, _AdamRule)
            and cls.update_core_cpu is _AdamRule.update_core_cpu
            and cls.update_core is _optimizer.UpdateRule.update_core
            and cls.update is _optimizer.UpdateRule.update
            and not rule.hyperparam.amsgrad and not rule.hyperparam.adabound)


def _collectable(param, rule):
    """True when the fused code may update ``param`` (state not yet checked)."""
    if not rule.enabled or not _plain_rule(rule):
        return False
    if rule._hookable._post_update_hooks:
        return False
    data = param.array
    if type(data) is not numpy.ndarray or data.dtype not in _DTYPES or data.size == 0:
        return False
    if not data.flags.c_contiguous or param._loss_scale is not None:
        return False
    grad = param.grad
    return grad is None or _contiguous_numpy(grad, data.dtype, data.shape)


def _prepare(param, rule):
    """What ``UpdateRule.update`` does before ``update_core``, for a collectable
    parameter: returns the update's arguments, or None when there is nothing to do
    (no gradient), or False when the state is not numpy (then param.update() is used,
    with ``t`` restored)."""
    rule.t += 1
    with chainer.using_device(param.device):
        rule._init_states(param)
        data = param.array
        m, v = rule.state.get('m'), rule.state.get('v')
        if not (_contiguous_numpy(m, data.dtype, data.shape)
                and _contiguous_numpy(v, data.dtype, data.shape)):
            rule.t -= 1
            return False
        rule._hookable.call_hooks('pre', args=(rule, param))
    grad = param.grad
    if grad is None:
        return None
    if not _contiguous_numpy(grad, data.dtype, data.shape):  # a hook replaced it
        raise RuntimeError('an update hook left a gradient fastadam cannot use')
    hp = rule.hyperparam
    rule._check_eps(data.dtype.type)
    return (data.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
            1.0 - hp.beta1, 1.0 - hp.beta2, rule.alpha_t, hp.eps,
            1.0 - hp.eta * hp.weight_decay_rate, -hp.eta)


def adam_blocks(items, threads=None):
    """Run Chainer's Adam update on 1-D contiguous views in blocks.

    ``items``: tuples (p, g, m, v, one_minus_beta1, one_minus_beta2, alpha_t, eps, a, b)
    as :func:`_prepare` returns them; each block computes, in the order and with the
    scalars of ``AdamRule.update_core_cpu``::

        m += (1 - beta1) * (g - m);  v += (1 - beta2) * (g * g - v)
        step = alpha_t / (sqrt(v) + eps);  p = a * p + b * (step * m)   (p += b * ... if a == 1)
    """
    blocks = []
    total = 0
    for item in items:
        size = item[0].size
        total += size
        for s0 in range(0, size, BLOCK_ELEMS):
            blocks.append((item, s0, min(size, s0 + BLOCK_ELEMS)))

    def work(block):
        (p, g, m, v, c1, c2, alpha_t, eps, a, b), s0, s1 = block
        pb, gb, mb, vb = p[s0:s1], g[s0:s1], m[s0:s1], v[s0:s1]
        t1 = scratch('adam1', s1 - s0, p.dtype)
        t2 = scratch('adam2', s1 - s0, p.dtype)
        # m += (1 - beta1) * (grad - m)
        numpy.subtract(gb, mb, out=t1)
        numpy.multiply(c1, t1, out=t1)
        mb += t1
        # v += (1 - beta2) * (grad * grad - v)
        numpy.multiply(gb, gb, out=t1)
        numpy.subtract(t1, vb, out=t1)
        numpy.multiply(c2, t1, out=t1)
        vb += t1
        # step = alpha_t / (sqrt(v) + eps)
        numpy.sqrt(vb, out=t1)
        numpy.add(t1, eps, out=t1)
        numpy.divide(alpha_t, t1, out=t1)
        # param = a * param + b * (step * m)   (_inplace_axpby)
        numpy.multiply(t1, mb, out=t1)
        numpy.multiply(b, t1, out=t1)
        if a == 1:
            pb += t1
        else:
            numpy.multiply(a, pb, out=t2)
            numpy.add(t2, t1, out=pb)

    if threads is None:
        threads = thread_count() if total > PARALLEL_ELEMS else 1
    run(blocks, work, threads)


def _update_params(self):
    """The parameter loop of GradientMethod.update, fused for plain Adam rules."""
    items = []
    for param in self.target.params():
        rule = param.update_rule
        if rule is None:
            continue
        if _collectable(param, rule):
            item = _prepare(param, rule)
            if item is False:
                param.update()
            elif item is not None:
                items.append(item)
        else:
            param.update()
    if items:
        # two parameters sharing memory (tied weights): keep Chainer's order exactly
        starts = [item[0].__array_interface__['data'][0] for item in items]
        adam_blocks(items, 1 if len(set(starts)) < len(starts) else None)


def _fast_update(self, lossfun=None, *args, **kwds):
    """``GradientMethod.update`` with the parameter loop of :func:`_update_params`."""
    if lossfun is not None:
        use_cleargrads = getattr(self, '_use_cleargrads', True)
        loss = lossfun(*args, **kwds)
        if use_cleargrads:
            self.target.cleargrads()
        else:
            self.target.zerograds()
        loss.backward(loss_scale=self._loss_scale)
        del loss

    self.reallocate_cleared_grads()
    self.check_nan_in_grads()
    self.call_hooks('pre')

    self.t += 1
    if self.is_safe_to_update():
        _update_params(self)

    self.reallocate_cleared_grads()

    self.call_hooks('post')
    self.update_loss_scale()


def enable():
    """Route ``chainer.optimizers.Adam.update`` to the fused code (idempotent)."""
    with _lock:
        _Adam.update = _fast_update


def disable():
    """Put Chainer's own ``update`` back (idempotent)."""
    with _lock:
        if _ORIGINAL is _MISSING:
            if _Adam.__dict__.get('update') is not None:
                del _Adam.update
        else:
            _Adam.update = _ORIGINAL


def is_enabled():
    return _Adam.__dict__.get('update') is _fast_update
