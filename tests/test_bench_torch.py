"""The benchmark's profile table and its PyTorch comparison (make bench-torch): the worker's
U-Net mirrors tutorial_lib.models, the comparison interleaves the two sides and computes
ours / PyTorch, and the bench writes torch_ratio_* -- checked with the worker's stand-in
mode (no PyTorch needed; the real run needs build/bench-torch-venv)."""
import importlib.util
import json
import sys
import time

import pytest

import tutorial_lib  # noqa: F401
from tutorial_lib import models
from tutorial_lib.infra import bench, bench_profile, bench_torch, fastpath


def load_worker():
    spec = importlib.util.spec_from_file_location('torch_bench_worker', bench_torch.WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_worker_mirrors_the_course_unet():
    worker = load_worker()
    assert worker.ENCODER == models.ENCODER
    assert worker.DECODER == models.DECODER
    assert worker.SKIPS == models.SKIPS
    for c in (3, 32, 64, 512):
        for w in (1, 0.25, 1 / 8, 1 / 16, 0.3):
            assert worker.scaled(c, w) == models.scaled(c, w)
    assert 'chainer' not in sys.modules.get('torch_bench_worker', worker).__dict__


def test_worker_protocol_in_process():
    import io
    worker = load_worker()
    requests = [dict(cmd='setup', key='a', kind='train', width=0.5, size=32, batch=1, in_ch=1),
                dict(cmd='run', key='a'), dict(cmd='run', key='missing'), dict(cmd='quit')]
    out = io.StringIO()
    worker.serve(io.StringIO(''.join(json.dumps(r) + '\n' for r in requests)), out,
                 stand_in=True)
    replies = [json.loads(line) for line in out.getvalue().splitlines()]
    assert replies[0] == {'ok': True, 'params': -1}
    assert replies[1]['ok'] and replies[1]['seconds'] >= 0.004
    assert not replies[2]['ok'] and 'missing' in replies[2]['error']
    assert replies[3] == {'ok': True}


def test_compare_interleaves_and_divides():
    """Our side sleeps 20 ms, the stand-in 10 ms: ratio 2; the sides alternate."""
    calls = []

    def ours():
        calls.append('ours')
        time.sleep(0.02)
    worker = bench_torch.TorchWorker(sys.executable, stand_in=True)
    try:
        found = bench_torch.compare_torch(
            [('k', ours, dict(kind='train', width=1.0, size=16, batch=1, in_ch=1), 5)],
            worker, repeats=4, warmup=1, block=3)
    finally:
        worker.close()
    assert worker.proc.returncode == 0
    e = found['k']
    assert e['order'] == ['ours', 'torch', 'torch', 'ours', 'ours', 'torch', 'torch', 'ours']
    # 1 warm-up + 4 turns of 3 steps, the first of each turn not timed
    assert len(calls) == 13 and len(e['ours_all_s']) == len(e['torch_all_s']) == 8
    assert 1.4 < e['ratio'] < 3.0, e
    assert abs(e['ratio'] - e['ours_s'] / e['torch_s']) < 0.02 * e['ratio']  # (rounded)


def test_worker_errors_become_one_message():
    worker = bench_torch.TorchWorker(sys.executable, stand_in=True)
    try:
        with pytest.raises(RuntimeError, match='PyTorch benchmark: KeyError'):
            worker.request(cmd='run', key='never set up')
    finally:
        worker.close()


def test_parameter_count_mismatch_is_refused():
    class Fake:
        def request(self, **req):
            return {'ok': True, 'params': 10}
    with pytest.raises(RuntimeError, match='10 parameters, ours 11'):
        bench_torch.compare_torch([('k', lambda: None, {}, 11)], Fake(), 1)


def test_bench_writes_torch_ratios_and_profile(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    out.write_text(json.dumps({'train128_full_speedup': 3.0}))
    was = fastpath.is_enabled()
    bench.main(['--quick', '--only', 'torch', '--only', 'profile',
                '--profile', 'train128_classroom', '--torch', sys.executable,
                '--torch-stand-in', '--out', str(out)])
    assert fastpath.is_enabled() == was
    saved = json.loads(out.read_text())
    for key in ('train128_full', 'train128_classroom', 'infer512'):
        assert saved['torch_ratio_' + key] > 0, key
    assert saved['torch']['stand_in'] is True
    assert saved['train128_full_speedup'] == 3.0  # a partial run keeps the rest
    rows = saved['profile']['train128_classroom']['rows']
    names = [r[0] for r in rows]
    assert 'optimizer update (Adam, all parameters)' in names
    assert any(n.startswith('Convolution2DFunction forward') for n in names)
    assert abs(sum(r[2] for r in rows) - 1) < 0.05
    text = capsys.readouterr().out
    assert 'ratio (ours / torch)' in text and '| function type |' in text
    assert (tmp_path / 'bench-profile-quick.txt').exists()


def test_type_timer_counts_self_time():
    """A convolution's backward runs two other nodes: they are listed apart, and the
    convolution's own backward time excludes them."""
    import chainer
    import chainer.functions as F
    import numpy as np
    timer = bench_profile.TypeTimer()
    x = chainer.Variable(np.ones((1, 2, 8, 8), np.float32))
    W = chainer.Variable(np.ones((3, 2, 3, 3), np.float32))
    with timer:
        F.sum(F.convolution_2d(x, W, pad=1)).backward()
    keys = set(timer.seconds)
    assert ('Convolution2DFunction', 'fwd') in keys
    assert ('Convolution2DFunction', 'bwd') in keys
    assert ('Convolution2DGradW (in backward)', 'fwd') in keys
    assert ('Deconvolution2DFunction (in backward)', 'fwd') in keys
    assert not timer._stack
