"""tutorial_lib.infra.fastadam: the fused Adam update must leave parameters and Adam state bit for
bit equal to stock Chainer's after several steps (float32 and float64, with weight decay
and Adam's own weight_decay_rate, blocks over several threads), be switched by
fastpath.enable/disable/stock, keep snapshots loadable both ways, and leave everything it
does not handle (AMSGrad, AdaBound, post-update hooks, other optimizers) to Chainer."""
import contextlib
import copy

import numpy as np
import pytest

import tutorial_lib  # noqa: F401  (compat shim before chainer)
from tutorial_lib import extensions, training, updaters
from tutorial_lib.infra import fastadam, fastpath, threads
import chainer
import chainer.functions as F
import chainer.links as L
from chainer import serializers
from tutorial_lib.models import DIS, UNET
from call_counter import Counter


@pytest.fixture(autouse=True)
def _restore_state():
    was = fastpath._state()
    saved = fastadam.BLOCK_ELEMS, fastadam.PARALLEL_ELEMS, threads.THREADS
    yield
    fastadam.BLOCK_ELEMS, fastadam.PARALLEL_ELEMS, threads.THREADS = saved
    fastpath._restore(was)


def small_blocks(n_threads=2):
    fastadam.BLOCK_ELEMS, fastadam.PARALLEL_ELEMS, threads.THREADS = 37, 0, n_threads


class Tiny(chainer.Chain):
    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.c = L.Convolution2D(2, 5, 3, 1, 1)
            self.bn = L.BatchNormalization(5)
            self.l = L.Linear(5 * 6 * 6, 3)

    def forward(self, x):
        return self.l(F.relu(self.bn(self.c(x))))


@contextlib.contextmanager
def adam_only(mode):
    """Fast conv and batch normalization either way (so the gradients are the same
    arrays); the Adam update fused ('fast') or Chainer's ('stock')."""
    was = fastpath._state()
    fastpath.enable()
    if mode == 'stock':
        fastadam.disable()
    try:
        yield
    finally:
        fastpath._restore(was)


def train(model, make_opt, steps, mode, dtype, seed=3):
    """``steps`` Adam steps on a fixed random problem; returns the model and optimizer."""
    opt = make_opt(model)
    rs = np.random.RandomState(seed)
    with adam_only(mode):
        for _ in range(steps):
            x = rs.standard_normal((4,) + model.in_shape).astype(dtype)
            y = model(x)
            t = rs.standard_normal(y.shape).astype(dtype)
            loss = F.mean_squared_error(y, t)
            model.cleargrads()
            loss.backward()
            opt.update()
    return model, opt


def tiny(dtype):
    with chainer.using_config('dtype', dtype):
        np.random.seed(0)
        m = Tiny()
    m.in_shape = (2, 6, 6)
    return m


def assert_same(model_a, opt_a, model_b, opt_b):
    pa, pb = dict(model_a.namedparams()), dict(model_b.namedparams())
    assert pa.keys() == pb.keys()
    for name in pa:
        assert pa[name].array.dtype == pb[name].array.dtype
        np.testing.assert_array_equal(pa[name].array, pb[name].array, err_msg=name)
        ra, rb = pa[name].update_rule, pb[name].update_rule
        assert ra.t == rb.t, name
        if ra.state is None or rb.state is None:
            assert ra.state is None and rb.state is None, name
            continue
        assert ra.state.keys() == rb.state.keys(), name
        for key in ra.state:
            np.testing.assert_array_equal(ra.state[key], rb.state[key],
                                          err_msg='%s %s' % (name, key))
    assert opt_a.t == opt_b.t


def adam(**kw):
    def make(model):
        opt = chainer.optimizers.Adam(**kw)
        opt.setup(model)
        return opt
    return make


def course_adam(alpha, beta1, weight_decay):
    return lambda model: updaters.adam(alpha, beta1, weight_decay, model)


OPTIMIZERS = {
    'default': adam(),
    'course': course_adam(2e-4, 0.5, 0.0),
    'course_weight_decay': course_adam(1e-3, 0.9, 1e-2),
    'weight_decay_rate_eta': adam(alpha=1e-2, weight_decay_rate=0.1, eta=0.7),
}


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
@pytest.mark.parametrize('name', sorted(OPTIMIZERS))
@pytest.mark.parametrize('threads', [1, 2])
def test_bit_identical_to_stock(name, dtype, threads):
    small_blocks(threads)  # (the convolutions' blocks follow the thread count: same on both)
    ref = train(tiny(dtype), OPTIMIZERS[name], 5, 'stock', dtype)
    got = train(tiny(dtype), OPTIMIZERS[name], 5, 'fast', dtype)
    assert_same(*ref, *got)


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_unet_and_dis_adam_trajectories(dtype):
    """The course's networks (fast conv and batch normalization on both sides, so only the
    update differs): parameters and m/v after 3 steps are bit-identical."""
    for build in (lambda: UNET(in_ch=1, width=1 / 16), lambda: DIS(width=1 / 8, image_size=32)):
        with chainer.using_config('dtype', dtype):
            np.random.seed(1)
            model = build()
        model.in_shape = (1, 32, 32) if isinstance(model, UNET) else (3, 32, 32)
        a, b = copy.deepcopy(model), copy.deepcopy(model)
        ref = _train_with(a, False, dtype)
        got = _train_with(b, True, dtype)
        assert_same(*ref, *got)


def _train_with(model, fused, dtype):
    """3 steps with fast conv/BN; Adam fused or stock."""
    fastpath.enable()
    (fastadam.enable if fused else fastadam.disable)()
    opt = updaters.adam(2e-4, 0.5, 1e-5, model)
    rs = np.random.RandomState(9)
    for _ in range(3):
        x = rs.uniform(-1, 1, (2,) + model.in_shape).astype(dtype)
        y = model(x)
        t = (rs.uniform(-1, 1, y.shape).astype(dtype) if y.ndim == 4
             else rs.randint(0, 2, len(x)).astype(np.int32))
        loss = F.mean_squared_error(y, t) if y.ndim == 4 else F.softmax_cross_entropy(y, t)
        model.cleargrads()
        loss.backward()
        opt.update()
    return model, opt


def test_update_with_loss_function():
    """opt.update(lossfun, *args) computes the gradients first, as Chainer's does."""
    results = []
    for mode in ('stock', 'fast'):
        model = tiny(np.float64)
        opt = adam(alpha=1e-2)(model)
        rs = np.random.RandomState(4)
        with adam_only(mode):
            for _ in range(3):
                x = rs.standard_normal((4, 2, 6, 6))
                t = rs.standard_normal((4, 3))
                opt.update(lambda a, b: F.mean_squared_error(model(a), b), x, t)
        results.append((model, opt))
    assert_same(*results[0], *results[1])


def test_snapshot_round_trip_between_stock_and_fast(tmp_path):
    """The optimizer state the fused update writes is Chainer's: a snapshot written on one
    path and loaded on the other continues identically."""
    dtype = np.float32
    model, opt = train(tiny(dtype), adam(alpha=1e-2), 2, 'fast', dtype)
    serializers.save_npz(str(tmp_path / 'opt.npz'), opt)
    serializers.save_npz(str(tmp_path / 'model.npz'), model)
    runs = []
    for mode in ('stock', 'fast'):
        m2 = tiny(dtype)
        serializers.load_npz(str(tmp_path / 'model.npz'), m2)
        o2 = adam(alpha=1e-2)(m2)
        serializers.load_npz(str(tmp_path / 'opt.npz'), o2)
        runs.append(train(m2, lambda _m, o=o2: o, 3, mode, dtype, seed=8))
    assert_same(*runs[0], *runs[1])


def test_switches(monkeypatch):
    fastpath.enable()
    assert fastadam.is_enabled() and fastpath.is_enabled()
    with fastpath.stock():
        assert not fastadam.is_enabled()
        assert 'update' not in chainer.optimizers.Adam.__dict__
    assert fastadam.is_enabled()
    fastadam.disable()
    assert not fastpath.is_enabled()
    with fastpath.fast():
        assert fastadam.is_enabled()
    assert not fastadam.is_enabled()
    fastpath.disable()
    assert chainer.optimizers.Adam.update is chainer.optimizer.GradientMethod.update
    counter = Counter(monkeypatch, fastadam, 'adam_blocks')
    train(tiny(np.float32), adam(), 1, 'fast', np.float32)
    train(tiny(np.float32), adam(), 1, 'stock', np.float32)
    assert counter.calls == 1


class PostHook:
    name = 'post_scale'
    timing = 'post'
    call_for_each_param = True

    def __call__(self, rule, param):
        param.array *= 0.5


@pytest.mark.parametrize('case', ['amsgrad', 'adabound', 'momentum_sgd'])
def test_unsupported_rules_take_chainer_code(monkeypatch, case):
    def make(model):
        if case == 'momentum_sgd':
            opt = chainer.optimizers.MomentumSGD(lr=0.01)
        else:
            opt = chainer.optimizers.Adam(alpha=1e-2, **{case: True})
        opt.setup(model)
        return opt
    ref = train(tiny(np.float64), make, 3, 'stock', np.float64)
    counter = Counter(monkeypatch, fastadam, 'adam_blocks')
    got = train(tiny(np.float64), make, 3, 'fast', np.float64)
    assert counter.calls == 0
    assert_same(*ref, *got)


@pytest.mark.parametrize('timing', ['pre', 'post'])
def test_rule_hooks(monkeypatch, timing):
    """Hooks of one parameter's own rule: 'pre' hooks run in the fused path (as
    UpdateRule.update runs them), a parameter with a 'post' hook takes Chainer's code;
    optimizer-level 'post' hooks run after the update either way."""
    def make(model):
        opt = chainer.optimizers.Adam(alpha=1e-2)
        opt.setup(model)
        if timing == 'pre':
            model.c.W.update_rule.add_hook(chainer.optimizer_hooks.WeightDecay(0.1))
        else:
            model.c.W.update_rule.add_hook(PostHook(), timing='post')
        opt.add_hook(PostHook(), name='every_param_post')
        return opt
    ref = train(tiny(np.float64), make, 3, 'stock', np.float64)
    sizes = []
    original = fastadam.adam_blocks
    monkeypatch.setattr(fastadam, 'adam_blocks', lambda items, threads=None: (
        sizes.append(sum(i[0].size for i in items)), original(items, threads))[1])
    got = train(tiny(np.float64), make, 3, 'fast', np.float64)
    total = sum(p.size for p in got[0].params())
    assert sizes == [total - (got[0].c.W.size if timing == 'post' else 0)] * 3
    assert_same(*ref, *got)


def test_disabled_rule_and_frozen_parameters():
    """A rule switched off (update_rule.enabled = False) keeps its parameter and t."""
    results = []
    for mode in ('stock', 'fast'):
        model = tiny(np.float64)
        opt = adam(alpha=1e-2)(model)
        model.bn.gamma.update_rule.enabled = False
        results.append(train(model, lambda _m, o=opt: o, 3, mode, np.float64))
    assert_same(*results[0], *results[1])
    assert results[1][0].bn.gamma.update_rule.t == 0


def test_course_trainer_runs_and_resume_bit_identical(tmp_path, monkeypatch):
    """The course's Trainer (U-Net + Ad-boss, both optimizers from updaters.adam, weight
    decay on): 6 iterations with the fused update equal 6 with Chainer's, bit for bit, and
    a run resumed from the fused run's iteration-3 snapshot on stock Adam ends equal too."""
    from tutorial_lib import configs
    cfg = configs.get('quick').replace(data='synthetic', iterations=6, train_limit=16,
                                       adv_weight=0.5, weight_decay=1e-5)
    runs = {}
    counter = Counter(monkeypatch, fastadam, 'adam_blocks')
    for mode in ('stock', 'fast'):
        with adam_only(mode):
            runs[mode] = training.train(cfg, out=str(tmp_path / mode), progress=False,
                                        device='cpu')
        assert counter.calls == (0 if mode == 'stock' else 12)  # 6 x (U-Net + Ad-boss)
    for net in ('gen', 'dis'):
        a, b = getattr(runs['stock'], net), getattr(runs['fast'], net)
        for (name, p), (_, q) in zip(sorted(a.namedparams()), sorted(b.namedparams())):
            np.testing.assert_array_equal(p.array, q.array, err_msg=net + name)
    # resume: keep only the fused run's iteration-3 snapshot, continue on stock Adam
    import os
    import shutil
    shutil.copytree(tmp_path / 'fast', tmp_path / 'resumed')
    for it, path in extensions.list_snapshots(str(tmp_path / 'resumed')):
        if it != 3:
            os.remove(path)
    with adam_only('stock'):
        resumed = training.train(cfg, out=str(tmp_path / 'resumed'), progress=False,
                                 device='cpu')
    assert resumed.resumed_from is not None
    for (name, p), (_, q) in zip(sorted(runs['fast'].gen.namedparams()),
                                 sorted(resumed.gen.namedparams())):
        np.testing.assert_array_equal(p.array, q.array, err_msg=name)
