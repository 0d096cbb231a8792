"""The PyTorch side of ``make bench-torch`` (``python -m tutorial_lib.infra.bench --torch PY``): the
blog's U-Net in PyTorch, timed one step at a time on request."""
import argparse
import json
import sys
import time

# This file is run by path with the Python of a separate environment that has PyTorch and
# numpy but not Chainer (build/bench-torch-venv), so it imports nothing from tutorial_lib.
# It builds the U-Net layer for layer as tutorial_lib.models does (same channel counts,
# kernels, strides, paddings, skip order, BatchNorm eps 2e-5 and momentum 0.1 = Chainer's
# decay 0.9, biases everywhere, linear output); tests/test_bench_torch.py checks that they
# stay equal.
ENCODER = [('c0', 32, 3, 1), ('c1', 64, 4, 2), ('c2', 64, 3, 1), ('c3', 128, 4, 2),
           ('c4', 128, 3, 1), ('c5', 256, 4, 2), ('c6', 256, 3, 1), ('c7', 512, 4, 2),
           ('c8', 512, 3, 1)]
DECODER = [('dc8', 512, 'deconv'), ('dc7', 256, 'conv'), ('dc6', 256, 'deconv'),
           ('dc5', 128, 'conv'), ('dc4', 128, 'deconv'), ('dc3', 64, 'conv'),
           ('dc2', 64, 'deconv'), ('dc1', 32, 'conv'), ('dc0', 3, 'conv')]
SKIPS = {'dc8': 'e7', 'dc6': 'e6', 'dc4': 'e4', 'dc2': 'e2', 'dc0': 'e0'}


def scaled(channels, width):
    return max(1, int(round(channels * width)))


def build_unet(torch, in_ch, width, out_ch=3):
    nn = torch.nn

    class UNET(nn.Module):
        def __init__(self):
            super().__init__()
            ch = {name: scaled(c, width) for name, c, _, _ in ENCODER}
            ch.update({name: scaled(c, width) for name, c, _ in DECODER})
            ch['dc0'] = out_ch
            prev = in_ch
            for name, _, k, s in ENCODER:
                setattr(self, name, nn.Conv2d(prev, ch[name], k, s, 1))
                setattr(self, 'bn' + name, nn.BatchNorm2d(ch[name], eps=2e-5, momentum=0.1))
                prev = ch[name]
            enc_ch = {'e%s' % name[1:]: ch[name] for name, _, _, _ in ENCODER}
            for name, _, kind in DECODER:
                skip = SKIPS.get(name)
                n_in = prev + (enc_ch[skip] if skip else 0)
                if kind == 'deconv':
                    layer = nn.ConvTranspose2d(n_in, ch[name], 4, 2, 1)
                else:
                    layer = nn.Conv2d(n_in, ch[name], 3, 1, 1)
                setattr(self, name, layer)
                if name != 'dc0':
                    setattr(self, 'bnd' + name[2:],
                            nn.BatchNorm2d(ch[name], eps=2e-5, momentum=0.1))
                prev = ch[name]

        def forward(self, x):
            e = {}
            h = x
            for name, _, _, _ in ENCODER:
                h = torch.relu(getattr(self, 'bn' + name)(getattr(self, name)(h)))
                e['e' + name[1:]] = h
            for name, _, _ in DECODER:
                skip = SKIPS.get(name)
                if skip:
                    h = torch.cat([e[skip], h], 1)
                h = getattr(self, name)(h)
                if name != 'dc0':
                    h = torch.relu(getattr(self, 'bnd' + name[2:])(h))
            return h
    return UNET()


def build(spec, stand_in):
    """(step function, parameter count) for a setup request."""
    if stand_in:
        seconds = spec['width'] * 0.01
        return (lambda: time.sleep(seconds)), -1
    import numpy as np
    import torch
    torch.manual_seed(0)
    rs = np.random.RandomState(1)
    model = build_unet(torch, spec['in_ch'], spec['width'])
    params = sum(p.numel() for p in model.parameters())
    size = spec['size']
    if spec['kind'] == 'train':
        batch = spec['batch']
        x = torch.from_numpy(rs.uniform(0, 1, (batch, spec['in_ch'], size, size))
                             .astype(np.float32))
        t = torch.from_numpy(rs.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32))
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        model.train()

        def step():
            y = model(x)
            loss = torch.nn.functional.mse_loss(y, t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step, params
    x = torch.from_numpy(rs.uniform(0, 1, (1, spec['in_ch'], size, size)).astype(np.float32))
    model.eval()

    def infer():
        with torch.no_grad():
            return model(x)
    return infer, params


def serve(stdin, stdout, stand_in=False):
    """Answer the bench's requests, one JSON object per line on stdin/stdout::

        -> {"cmd": "setup", "key": "train128_classroom", "kind": "train", "width": 0.25,
            "size": 128, "batch": 8, "in_ch": 1}
        <- {"ok": true, "params": 1167211}
        -> {"cmd": "run", "key": "train128_classroom", "times": 3}
        <- {"ok": true, "seconds": 0.16, "all_seconds": [0.19, 0.16, 0.16]}
        -> {"cmd": "quit"}

    ``kind`` is "train" (forward, mean squared error, backward, one Adam step, ``train()``
    mode) or "infer" (``eval()`` mode, no gradients, batch 1). ``stand_in``: no network, every
    step sleeps ``width * 0.01`` s (the tests check the bench's interleaving and ratio logic
    with it, without PyTorch)."""
    steps = {}
    for line in stdin:
        line = line.strip()
        if not line:
            continue
        request = json.loads(line)
        try:
            if request['cmd'] == 'quit':
                reply = {'ok': True}
            elif request['cmd'] == 'setup':
                steps[request['key']], params = build(request, stand_in)
                reply = {'ok': True, 'params': params}
            elif request['cmd'] == 'run':
                step = steps[request['key']]
                seconds = []
                for _ in range(int(request.get('times', 1))):  # back to back
                    t0 = time.perf_counter()
                    step()
                    seconds.append(time.perf_counter() - t0)
                reply = {'ok': True, 'seconds': seconds[-1], 'all_seconds': seconds}
            else:
                reply = {'ok': False, 'error': 'unknown command %r' % request['cmd']}
        except Exception as e:  # reported to the bench, which stops with one line
            reply = {'ok': False, 'error': '%s: %s' % (type(e).__name__, e)}
        stdout.write(json.dumps(reply) + '\n')
        stdout.flush()
        if request.get('cmd') == 'quit':
            return


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--stand-in', action='store_true')
    args = parser.parse_args(argv)
    if not args.stand_in:
        import torch
        if args.threads:
            torch.set_num_threads(args.threads)
        sys.stderr.write('torch %s, %d threads\n' % (torch.__version__,
                                                    torch.get_num_threads()))
    serve(sys.stdin, sys.stdout, args.stand_in)


if __name__ == '__main__':
    main()
