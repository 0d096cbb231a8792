"""Fail fast, lose nothing: the edges of colorize, checkpoints, training and data.

Each test puts a bad input in and expects a clear, specific error (or the correct result)
out, with nothing lost: sketches are not overwritten, builds are not aborted by one bad
picture, files are readable by others, and every command line answers an expected error
with one line on stderr and exit status 2.
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest

import tutorial_lib  # noqa: F401
from tutorial_lib.pairs import SimplePairs
from tutorial_lib import (atomic, backend, cache, colorize, configs, data, hints, images,
                          imageheader, models, stage2, stage2_cli, training,
                          checkpoints, REPO_ROOT)
from tutorial_lib.colorize import Colorizer
from tutorial_lib.widgets import canvas_to_image, image_to_canvas
from tiny_models import tiny

ENV = dict(os.environ, TUTORIAL_DEVICE='cpu', OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1')


# ------------------------------------------------------------------ crafted picture headers

def _chunk(kind, payload):
    return (struct.pack('>I', len(payload)) + kind + payload
            + struct.pack('>I', zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png_header(w, h):
    """A PNG that claims w x h RGBA pixels (header, a little data, end): what a 948 KB
    30000x30000 PNG looks like before its pixels."""
    return (b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 6, 0, 0, 0))
            + _chunk(b'IDAT', zlib.compress(b'\x00' * (4 * min(w, 4096) + 1) * 4))
            + _chunk(b'IEND', b''))


def jpeg_header(w, h):
    app0 = b'\xff\xe0' + struct.pack('>H', 16) + b'JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00'
    sof = b'\xff\xc0' + struct.pack('>HBHHB', 17, 8, h, w, 3) + b'\x01\x22\x00\x02\x11\x01\x03\x11\x01'
    return b'\xff\xd8' + app0 + sof + b'\xff\xd9'


def webp_header(w, h, kind='VP8X'):
    if kind == 'VP8X':
        body = b'VP8X' + struct.pack('<I', 10) + b'\x00\x00\x00\x00' \
            + (w - 1).to_bytes(3, 'little') + (h - 1).to_bytes(3, 'little')
    elif kind == 'VP8L':
        body = b'VP8L' + struct.pack('<I', 5) + b'\x2f' \
            + struct.pack('<I', ((w - 1) & 0x3FFF) | (((h - 1) & 0x3FFF) << 14))
    else:
        body = b'VP8 ' + struct.pack('<I', 10) + b'\x00\x00\x00\x9d\x01\x2a' \
            + struct.pack('<HH', w, h)
    body += b'\x00' * 8
    return b'RIFF' + struct.pack('<I', len(body) + 4) + b'WEBP' + body


def bmp_header(w, h):
    return b'BM' + b'\x00' * 12 + struct.pack('<Iii', 40, w, -h) + b'\x00' * 28


def gif_header(w, h):
    return b'GIF89a' + struct.pack('<HH', w, h) + b'\x00' * 8


def tiff_header(w, h):
    return (b'II*\x00' + struct.pack('<I', 8) + struct.pack('<H', 2)
            + struct.pack('<HHII', 256, 4, 1, w) + struct.pack('<HHII', 257, 4, 1, h)
            + struct.pack('<I', 0))


HEADERS = {'PNG': png_header, 'JPEG': jpeg_header, 'WebP': webp_header, 'BMP': bmp_header,
           'GIF': gif_header, 'TIFF': tiff_header}


@pytest.mark.parametrize('fmt', sorted(HEADERS))
def test_header_sizes_of_crafted_files(fmt):
    w, h = (12000, 9000) if fmt == 'WebP' else (30000, 40000)
    assert imageheader.image_size(HEADERS[fmt](w, h)) == (w, h, fmt)
    if fmt == 'WebP':
        for kind in ('VP8L', 'VP8 '):
            assert imageheader.image_size(webp_header(w, h, kind)) == (w, h, 'WebP')


@pytest.mark.parametrize('ext,params', [('.png', []), ('.jpg', []), ('.bmp', []),
                                        ('.tiff', []), ('.webp', [cv2.IMWRITE_WEBP_QUALITY, 80]),
                                        ('.webp', [cv2.IMWRITE_WEBP_QUALITY, 101])])
@pytest.mark.parametrize('shape', [(37, 91, 3), (50, 20, 4), (5, 700)])
def test_header_sizes_of_real_files(ext, params, shape):
    if ext == '.jpg' and len(shape) == 3 and shape[2] == 4:
        shape = shape[:2]
    img = np.random.RandomState(0).randint(0, 255, shape).astype(np.uint8)
    ok, buf = cv2.imencode(ext, img, params)
    assert ok
    w, h, _ = imageheader.image_size(buf.tobytes())
    assert (w, h) == (shape[1], shape[0])


def test_header_garbage_is_a_clear_error():
    for junk in (b'hello world', b'\x89PNG\r\n\x1a\n', b'\xff\xd8\xff\xe0\x00'):
        with pytest.raises(ValueError, match='not a readable picture'):
            imageheader.check_image_bytes(junk, 'x.png')


# ------------------------------------------------------------------ size limits, fast

SIZE_SCRIPT = r'''
import json, os, resource, sys, time
sys.path.insert(0, 'tests')
import tutorial_lib
from tutorial_lib import cache, colorize, data, hints, images
from tutorial_lib.widgets import HintCanvas
from tiny_models import tiny_colorizer
folder = sys.argv[1]
col = tiny_colorizer()
canvas = HintCanvas(__import__('numpy').full((32, 32), 255, 'uint8'), colorizer=col,
                    debounce_s=0)
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # MB (Linux: KB)
def run(fn):
    r0, t0 = rss(), time.perf_counter()
    try:
        fn()
        msg = None
    except (ValueError, OSError) as e:
        msg = str(e)
    return dict(seconds=time.perf_counter() - t0, mb=rss() - r0, error=msg)
out = {}
for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    if os.path.isdir(path):
        continue
    out[name] = dict(
        read_image=run(lambda: images.read_image(path)),
        colorizer=run(lambda: col.colorize(path)),
        hints=run(lambda: col.colorize(__import__('numpy').full((40, 40), 255, 'uint8'),
                                       hints=path)),
        cli=run(lambda: (_ for _ in ()).throw(ValueError('rc %s' % colorize.main(
            [path, '--no-stage2', '-o', os.path.join(folder, 'o.png')])))),
        upload=run(lambda: (canvas._on_upload({'new': [{'name': name, 'content':
                   open(path, 'rb').read()}]}), (_ for _ in ()).throw(
                   ValueError(canvas.status.value)))[0]))
src = os.path.join(folder, 'pics')
out['folder'] = run(lambda: data.pairs_from_folder(src, size=32))
out['build'] = run(lambda: print(json.dumps(cache.build_folder(src, os.path.join(folder, 'cache'),
                                                              size=32, workers=1))))
print('RESULT' + json.dumps(out))
'''


def test_huge_pictures_are_refused_from_the_header_fast_and_small(tmp_path):
    """30000x30000 (and 40000x40000) PNG, JPEG, WebP...: refused in well under a second
    without decoding, in the reader, the Colorizer, --hints, the CLI, the canvas upload and
    data folder; a 1x60000 and a 1x5000 picture are skipped, not the whole build."""
    files = {'big.png': png_header(30000, 30000), 'valid40k.png': png_header(40000, 40000),
             'big.jpg': jpeg_header(30000, 30000), 'big.webp': webp_header(16000, 16000),
             'big.bmp': bmp_header(30000, 30000), 'big.tif': tiff_header(30000, 30000)}
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
    pics = tmp_path / 'pics'
    pics.mkdir()
    cv2.imwrite(str(pics / 'strip.png'), np.full((1, 60000, 3), 200, np.uint8))
    cv2.imwrite(str(pics / 'strip5000.png'), np.full((5000, 1, 3), 200, np.uint8))
    cv2.imwrite(str(pics / 'good.png'), np.full((40, 48, 3), 90, np.uint8))
    (pics / 'huge.png').write_bytes(png_header(30000, 30000))
    r = subprocess.run([sys.executable, '-c', SIZE_SCRIPT, str(tmp_path)], cwd=str(REPO_ROOT),
                       capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.split('RESULT', 1)[1])
    for name in files:
        for where, got in res[name].items():
            assert got['seconds'] < 1.0 and got['mb'] < 100, (name, where, got)
            assert got['error'], (name, where)
            if where == 'cli':
                assert got['error'] == 'rc 2'
            else:
                assert 'corrupt' not in got['error'] and 'px' in got['error'], (name, where, got)
        assert ('30000x30000' in res[name]['read_image']['error']
                or '40000x40000' in res[name]['read_image']['error']
                or '16000x16000' in res[name]['read_image']['error'])
    for where in ('folder', 'build'):
        assert res[where]['mb'] < 300 and res[where]['seconds'] < 30, res[where]
    summary = json.loads(r.stdout.split('RESULT')[0].strip().splitlines()[-1])
    assert summary['skipped'] == 3 and sum(summary['pairs'].values()) == 1


def test_the_40000_px_png_is_called_too_large_not_corrupt(tmp_path):
    path = tmp_path / 'big.png'
    path.write_bytes(png_header(40000, 40000))
    with pytest.raises(ValueError, match='40000x40000 px') as e:
        images.read_image(path)
    assert 'corrupt' not in str(e.value)
    with pytest.raises(ValueError, match='up to 4096'):
        colorize.to_line_image(str(path))


def test_huge_hint_png_is_refused_before_decoding(tmp_path):
    path = tmp_path / 'h.png'
    path.write_bytes(png_header(30000, 30000))
    t = time.perf_counter()
    with pytest.raises(ValueError, match='30000x30000'):
        hints.load_hint_png(path)
    assert time.perf_counter() - t < 1.0


# ------------------------------------------------------------------ strokes

@pytest.mark.parametrize('radius', [2e4, 1e5, 1e6])
def test_huge_brush_covers_the_picture_quickly(radius):
    t = time.perf_counter()
    rgb, mask = hints.rasterize([hints.Stroke([(10, 10)], '#ff0000', radius)], (128, 96),
                                (512, 384))
    assert time.perf_counter() - t < 1.0
    assert mask.all() and (rgb == (255, 0, 0)).all()


def test_large_brush_is_the_same_disk_as_a_small_kernel():
    for r in (17, 25, 40):
        a = hints.rasterize([hints.Stroke([(64, 64), (80, 70)], '#00ff00', r)], (128, 128))[1]
        layer = np.zeros((128, 128), np.uint8)
        cv2.polylines(layer, [np.array([(64, 64), (80, 70)], np.int32)], False, 1, 1, cv2.LINE_8)
        b = cv2.dilate(layer, hints._disk_kernel(r)).astype(bool)
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('radius,match', [(1e9, '<= 1e\\+06'), ('3', 'number of pixels'),
                                          (None, 'number of pixels'), (True, 'number'),
                                          (float('nan'), 'finite'), (-1, '>= 0')])
def test_bad_radius_is_a_clear_error(radius, match):
    with pytest.raises(ValueError, match=match):
        hints.Stroke([(1, 2)], '#000000', radius)


def test_numpy_radius_is_fine():
    assert hints.Stroke([(1, 2)], '#000000', np.float32(2.5)).radius == 2.5


# ------------------------------------------------------------------ checkpoints

@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp('edges_ckpt')
    models.save_weights(tiny(4), str(d / 'hint' / 'gen.npz'), dict(in_ch=4, width=1 / 16))
    np.random.seed(1)
    s2 = stage2.Stage2UNET(4, 1 / 16)
    models.save_weights(s2, str(d / 'stage2' / 'gen.npz'), dict(in_ch=4, width=1 / 16,
                                                                **s2.save_meta))
    models.save_weights(tiny(4), str(d / 'fill' / 'gen.npz'),
                        dict(in_ch=4, width=1 / 16, kind='hint_fill_unknown_here'))
    dis = models.DIS(width=1 / 16, image_size=32)
    dis(np.zeros((1, 3, 32, 32), np.float32))
    models.save_weights(dis, str(d / 'dis.npz'), dict(width=1 / 16, image_size=32))
    return d


def test_stage2_checkpoint_as_stage1_is_refused(ckpts):
    with pytest.raises(ValueError, match='is a stage-2 U-Net.*as stage 1 use'):
        Colorizer(str(ckpts / 'stage2'), None, device='cpu')
    with pytest.raises(ValueError, match='is a stage-1 U-Net .*not a stage 2'):
        Colorizer(str(ckpts / 'hint'), str(ckpts / 'hint'), device='cpu')
    s2 = checkpoints.load_unet(str(ckpts / 'stage2'))
    with pytest.raises(ValueError, match='is a stage 2'):
        Colorizer(s2, None, device='cpu')
    c = Colorizer(str(ckpts / 'hint'), str(ckpts / 'stage2'), device='cpu')
    assert isinstance(c.stage2, stage2.Stage2UNET)
    assert c.colorize(np.full((40, 30), 255, np.uint8)).shape == (40, 30, 3)


def test_a_model_with_a_kind_but_not_residual_is_a_stage1(ckpts):
    assert checkpoints.check_stage(str(ckpts / 'fill'), 1)
    with pytest.raises(ValueError, match='kind hint_fill_unknown_here'):
        checkpoints.check_stage(str(ckpts / 'fill'), 2)


def test_shipped_stage2_as_stage1_by_name_on_the_command_line(capsys, tmp_path):
    sketch = tmp_path / 's.png'
    cv2.imwrite(str(sketch), np.full((30, 30), 255, np.uint8))
    rc = colorize.main([str(sketch), '--stage1', 'classroom_stage2', '--no-stage2',
                        '-o', str(tmp_path / 'o.png')])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and 'stage-2 U-Net' in err and len(err.splitlines()) == 1
    assert not (tmp_path / 'o.png').exists()
    assert isinstance(checkpoints.load_unet('classroom_stage2'), stage2.Stage2UNET)


@pytest.fixture
def shipped(tmp_path, monkeypatch, ckpts):
    """A checkpoints folder of our own with one shipped U-Net and its manifest."""
    d = tmp_path / 'checkpoints'
    (d / 'mine').mkdir(parents=True)
    shutil.copyfile(ckpts / 'hint' / 'gen.npz', d / 'mine' / 'gen.npz')
    digest = hashlib.sha256((d / 'mine' / 'gen.npz').read_bytes()).hexdigest()
    (d / 'manifest.json').write_text(json.dumps({'checkpoints': {'mine': {'files': {
        'gen.npz': {'sha256': digest}}}}}))
    monkeypatch.setattr(checkpoints, 'checkpoints_dir', lambda: d)
    return d


def test_shipped_checkpoint_sha256_is_verified(shipped, ckpts):
    assert checkpoints.load_unet('mine').in_ch == 4
    shutil.copyfile(ckpts / 'stage2' / 'gen.npz', shipped / 'mine' / 'gen.npz')   # swapped
    for load in (checkpoints.load_unet, lambda n: Colorizer(n, None, device='cpu')):
        with pytest.raises(ValueError, match='mine/gen.npz is not the file .*manifest.json.*'
                                             're-download'):
            load('mine')


def _npz_cases(tmp_path, ckpts):
    good = (ckpts / 'hint' / 'gen.npz').read_bytes()
    cases = {'empty': b'', 'truncated': good[:len(good) // 2], 'text': b'not weights\n'}
    bad = bytearray(good)
    # flip one byte inside the first member's compressed data: a CRC error
    start = 30 + struct.unpack('<HH', good[26:30])[0] + struct.unpack('<HH', good[26:30])[1]
    bad[start + 10] ^= 0xFF
    cases['bad_crc'] = bytes(bad)
    paths = {}
    for name, blob in cases.items():
        paths[name] = tmp_path / name / 'gen.npz'
        paths[name].parent.mkdir()
        paths[name].write_bytes(blob)
    np.savez(tmp_path / 'foreign.npz', a=np.zeros(3))
    np.savez(tmp_path / 'pickled.npz', a=np.array([{'x': 1}], dtype=object))
    return paths


def test_damaged_weights_name_the_file_and_say_redownload(tmp_path, ckpts):
    for name, path in _npz_cases(tmp_path, ckpts).items():
        with pytest.raises(ValueError) as e:
            checkpoints.load_unet(str(path))
        msg = str(e.value)
        assert str(path) in msg and 're-download' in msg, (name, msg)
        assert 'allow_pickle' not in msg
    with pytest.raises(ValueError, match='not a weights file of the course'):
        checkpoints.load_unet(str(tmp_path / 'foreign.npz'))
    with pytest.raises(ValueError, match='Python objects') as e:
        checkpoints.load_unet(str(tmp_path / 'pickled.npz'))
    assert 'allow_pickle' not in str(e.value)


def test_dis_and_snapshot_as_unet_are_named(ckpts, tmp_path):
    with pytest.raises(ValueError, match='Ad-boss .*dis.npz.*not a U-Net'):
        checkpoints.load_unet(str(ckpts / 'dis.npz'))
    with pytest.raises(ValueError, match='not an Ad-boss'):
        checkpoints.inspect_checkpoint(str(ckpts / 'hint' / 'gen.npz'), 'dis')
    assert checkpoints.inspect_checkpoint(str(ckpts / 'dis.npz'), 'dis') is not None
    snap = tmp_path / 'snapshot_iter_3.npz'
    np.savez(snap, **{'updater/model:gen/c0/W': np.zeros(3),
                      'updater/iteration': np.array(3)})
    with pytest.raises(ValueError, match='trainer snapshot'):
        checkpoints.load_unet(str(snap))


def test_corrupt_checkpoint_on_the_command_line_is_one_line(tmp_path, ckpts, capsys):
    paths = _npz_cases(tmp_path, ckpts)
    sketch = tmp_path / 's.png'
    cv2.imwrite(str(sketch), np.full((30, 30), 255, np.uint8))
    rc = colorize.main([str(sketch), '--stage1', str(paths['truncated']), '--no-stage2'])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and 're-download' in err


# ------------------------------------------------------------------ hint files

def test_opaque_hint_png_is_refused(tmp_path, ckpts, capsys):
    rgba = np.full((20, 20, 4), 255, np.uint8)           # white, alpha 255 everywhere
    path = tmp_path / 'h.png'
    cv2.imwrite(str(path), rgba)
    with pytest.raises(ValueError, match='opaque everywhere'):
        hints.load_hint_png(path)
    col = Colorizer(str(ckpts / 'hint'), None, device='cpu')
    with pytest.raises(ValueError, match='opaque everywhere'):
        col.colorize(np.full((20, 20), 255, np.uint8), hints=rgba)
    sketch = tmp_path / 's.png'
    cv2.imwrite(str(sketch), np.full((20, 20), 255, np.uint8))
    rc = colorize.main([str(sketch), '--hints', str(path), '--stage1', str(ckpts / 'hint'),
                        '--no-stage2'])
    assert rc == 2 and 'opaque' in capsys.readouterr().err


def test_missing_or_folder_hint_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='no such hint file'):
        hints.load_hint_png(tmp_path / 'missing.png')
    with pytest.raises(ValueError, match='is a folder'):
        hints.load_hint_png(tmp_path)


# ------------------------------------------------------------------ colorize CLI

@pytest.fixture
def sketch(tmp_path):
    path = tmp_path / 'same.png'
    img = np.full((30, 40), 255, np.uint8)
    cv2.line(img, (3, 3), (30, 20), 0, 2)
    cv2.imwrite(str(path), img)
    return path


def _cli(capsys, args):
    rc = colorize.main([str(a) for a in args])
    return rc, capsys.readouterr().err.strip()


def test_output_over_the_sketch_is_refused(sketch, ckpts, capsys, tmp_path):
    before = sketch.read_bytes()
    rc, err = _cli(capsys, [sketch, '-o', sketch, '--stage1', ckpts / 'hint', '--no-stage2'])
    assert rc == 2 and 'is the input' in err and len(err.splitlines()) == 1
    assert sketch.read_bytes() == before
    link = tmp_path / 'link.png'
    os.link(sketch, link)                                 # the same file by another name
    rc, err = _cli(capsys, [sketch, '-o', link, '--stage1', ckpts / 'hint', '--no-stage2'])
    assert rc == 2 and sketch.read_bytes() == before


@pytest.mark.parametrize('ext,magic', [('.jpg', b'\xff\xd8\xff'), ('.JPEG', b'\xff\xd8\xff'),
                                       ('.webp', b'RIFF'), ('.png', b'\x89PNG')])
def test_output_format_follows_the_extension(sketch, ckpts, capsys, tmp_path, ext, magic):
    out = tmp_path / ('x' + ext)
    rc, err = _cli(capsys, [sketch, '-o', out, '--stage1', ckpts / 'hint', '--no-stage2'])
    assert rc == 0, err
    assert out.read_bytes().startswith(magic)
    assert cv2.imread(str(out)).shape == (30, 40, 3)


def test_bad_outputs_are_refused_before_the_model_runs(sketch, ckpts, capsys, tmp_path,
                                                       monkeypatch):
    ran = []
    monkeypatch.setattr(Colorizer, 'from_checkpoints',
                        classmethod(lambda *a, **k: ran.append(1)))
    for out, words in ((tmp_path / 'x.txt', 'must end in'), (tmp_path / 'x.bmp', 'must end in'),
                       (tmp_path, 'is a folder'), (sketch / 'x.png', 'is a file')):
        rc, err = _cli(capsys, [sketch, '-o', out, '--stage1', ckpts / 'hint'])
        assert rc == 2 and words in err and len(err.splitlines()) == 1, (out, err)
        assert '.tmp' not in err
    assert not ran


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_read_only_output_folder_is_refused_before_the_model_runs(sketch, capsys, tmp_path):
    ro = tmp_path / 'ro'
    ro.mkdir()
    ro.chmod(0o500)
    try:
        rc, err = _cli(capsys, [sketch, '-o', ro / 'x.png'])
        assert rc == 2 and 'no permission' in err and str(ro / 'x.png') in err
    finally:
        ro.chmod(0o700)


def test_folder_or_missing_input_is_one_line(tmp_path, ckpts, capsys):
    rc, err = _cli(capsys, [tmp_path, '--stage1', ckpts / 'hint', '-o', tmp_path / 'o.png'])
    assert rc == 2 and 'is a folder, not a picture' in err
    rc, err = _cli(capsys, [tmp_path / 'nope.png', '-o', tmp_path / 'o.png'])
    assert rc == 2 and 'no such file' in err
    sk = tmp_path / 's.png'
    cv2.imwrite(str(sk), np.full((8, 8), 255, np.uint8))
    rc, err = _cli(capsys, [sk, '--hints', tmp_path / 'nope.png', '-o', tmp_path / 'o.png'])
    assert rc == 2 and 'no such hint file' in err


def test_colorize_command_line_subprocess_one_line(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'tutorial_lib.colorize', str(tmp_path)],
                       cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=120,
                       env=ENV)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and 'error:' in r.stderr


def _no_gpu():
    return backend._probe_gpu()[0] is None


@pytest.mark.skipif(not _no_gpu(), reason='this machine has a GPU')
def test_gpu_requested_without_a_gpu_is_one_line(sketch, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(backend, '_CURRENT', None)
    monkeypatch.setenv('TUTORIAL_DEVICE', 'gpu')
    rc, err = _cli(capsys, [sketch, '-o', tmp_path / 'o.png'])
    assert rc == 2 and 'GPU was requested' in err and len(err.splitlines()) == 1
    from tutorial_lib import train
    assert train.main(['--config', 'quick', '--out', str(tmp_path / 'run')]) == 2
    assert 'GPU was requested' in capsys.readouterr().err
    monkeypatch.setattr(backend, '_CURRENT', None)
    monkeypatch.setenv('TUTORIAL_DEVICE', 'cpu')


# ------------------------------------------------------------------ canvas

@pytest.mark.parametrize('args', [
    (float('nan'), 3, (100, 100), (50, 50)), (3, float('inf'), (100, 100), (50, 50)),
    (3, 3, (0, 100), (50, 50)), (3, 3, (100, 100), (50, 0)), (3, 3, (float('nan'), 1), (5, 5)),
    ('x', 3, (100, 100), (50, 50)), (3, 3, (100,), (50, 50))])
def test_canvas_to_image_rejects_nan_and_zero_sizes(args):
    with pytest.raises(ValueError):
        canvas_to_image(*args)


def test_canvas_mapping_still_gives_ints():
    assert canvas_to_image(99.9, 0.0, (100, 100), (50, 50)) == (49, 0)
    assert all(isinstance(v, int) for v in canvas_to_image(100, 100, (100, 100), (50, 50)))
    with pytest.raises(ValueError):
        image_to_canvas(1, 1, (0, 0), (5, 5))


# ------------------------------------------------------------------ atomic files

@pytest.mark.parametrize('umask', [0o022, 0o077, 0o002])
def test_atomic_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic.write_bytes(tmp_path / 'a.bin', b'x')
        atomic.write_json(tmp_path / 'b.json', {})
        models.save_weights(tiny(1), str(tmp_path / 'gen.npz'))
        images.write_png(tmp_path / 'c.png', np.zeros((4, 4, 3), np.uint8))
        with open(tmp_path / 'plain', 'w'):
            pass
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    assert (os.stat(tmp_path / 'plain').st_mode & 0o777) == want
    for name in ('a.bin', 'b.json', 'gen.npz', 'c.png'):
        assert (os.stat(tmp_path / name).st_mode & 0o777) == want, name


def test_temp_names_match_what_atomic_makes(tmp_path):
    seen = []
    for name in ('snapshot_iter_5.npz', 'x_color.png', 'COMPLETE', 'a.b.json'):
        with atomic.atomic_path(tmp_path / name) as tmp:
            seen.append(os.path.basename(tmp))
            open(tmp, 'w').close()
            assert atomic.is_temp_name(os.path.basename(tmp))
    for name in ('snapshot_iter_5.npz', '.hidden.tmp', '.x.png.abc.tmp.png', 'notes.tmp'):
        assert not atomic.is_temp_name(name)


def test_stale_temps_are_removed_in_runs_and_caches(tmp_path):
    run = tmp_path / 'run'
    (run / 'previews').mkdir(parents=True)
    stale = [run / '.snapshot_iter_5.npz.abcd1234.tmp.npz', run / '.gen.npz.zz9_qx01.tmp.npz',
             run / 'previews' / '.iter_000005.png.k2j3h4g5.tmp.png']
    keep = [run / '.hidden.tmp', run / 'notes.tmp']
    for p in stale + keep:
        p.write_bytes(b'x')
    cfg = configs.get('quick').replace(data='synthetic', iterations=1)
    training.build_trainer(cfg, str(run), progress=False)
    assert not any(p.exists() for p in stale)
    assert (run / '.hidden.tmp').exists()


# ------------------------------------------------------------------ data folder

@pytest.fixture
def pics(tmp_path):
    src = tmp_path / 'pics'
    src.mkdir()
    rng = np.random.RandomState(0)
    for i in range(3):
        cv2.imwrite(str(src / ('p%d.png' % i)), rng.randint(0, 255, (40, 48, 3)).astype(np.uint8))
    return src


def test_folder_out_inside_source_is_refused(pics, capsys):
    for out in (pics, pics / 'cache'):
        assert data.main(['folder', str(pics), '--out', str(out), '--size', '32']) == 2
        err = capsys.readouterr().err.strip()
        assert 'inside the picture folder' in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in pics.iterdir()) == ['p0.png', 'p1.png', 'p2.png']


def test_folder_command_line_errors(tmp_path, pics, capsys):
    cases = [(['folder', str(tmp_path / 'nope'), '--out', str(tmp_path / 'o')], 'no such folder'),
             (['folder', str(tmp_path / 'o2'), '--out', str(tmp_path / 'o')], 'no such folder'),
             (['folder', str(pics), '--out', str(tmp_path / 'o'), '--size', '100'],
              'multiple of 16')]
    (tmp_path / 'empty').mkdir()
    cases.append((['folder', str(tmp_path / 'empty'), '--out', str(tmp_path / 'o')],
                  'no pictures'))
    (tmp_path / 'afile').write_text('x')
    cases.append((['folder', str(pics), '--out', str(tmp_path / 'afile'), '--size', '32'],
                  'is a file'))
    for argv, words in cases:
        assert data.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, (argv, err)


def test_truncated_cache_png_is_redone_and_named(pics, tmp_path):
    out = tmp_path / 'cache'
    cache.build_folder(pics, out, size=32, workers=1, test_percent=0)
    pngs = sorted((out / 'png' / '32').glob('*_color.png'))
    full = pngs[0].read_bytes()
    pngs[0].write_bytes(full[:len(full) // 2])            # a copy cut short
    pairs = data.load_split('train', 32, data_dir=out, lazy=True)
    with pytest.raises(OSError, match='python -m tutorial_lib.data build --out'):
        pairs.colors[:]
    summary = cache.build_folder(pics, out, size=32, workers=1, test_percent=0)
    assert summary['rendered'] == 1 and summary['cached'] == 2
    assert pngs[0].read_bytes() == full
    stale = out / 'png' / '32' / ('.%s.abcdefgh.tmp.png' % pngs[1].name)
    stale.write_bytes(b'half')
    cache.build_folder(pics, out, size=32, workers=1, test_percent=0)
    assert not stale.exists()


# ------------------------------------------------------------------ training

def test_iterations_must_be_positive(tmp_path, capsys):
    from tutorial_lib import train
    for n in ('0', '-5'):
        assert train.main(['--config', 'quick', '--data', 'synthetic', '--iterations', n,
                           '--out', str(tmp_path / 'r'), '--no-progress']) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith('error: --iterations must be >= 1')
    with pytest.raises(ValueError, match='iterations'):
        training.train(configs.get('quick').replace(data='synthetic'), out=str(tmp_path / 'r'),
                       iterations=0, progress=False)
    assert not (tmp_path / 'r' / 'gen.npz').exists()


def test_train_command_line_errors_are_one_line(tmp_path, capsys):
    from tutorial_lib import train
    (tmp_path / 'file').write_text('x')
    cases = [(['--config', 'nope'], 'unknown config'),
             (['--config', 'quick', '--data', 'synthetic', '--out', str(tmp_path / 'file')],
              'is a file'),
             (['--config', 'quick', '--train-limit', '0'], '--train-limit must be >= 1'),
             (['--ship', str(tmp_path / 'nothing')], 'No such file')]
    for argv, words in cases:
        assert train.main(argv + ['--no-progress']) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert words in err[-1] and err[-1].startswith('error: '), (argv, err)


def test_config_mismatch_on_resume_is_one_line(tmp_path, capsys):
    from tutorial_lib import train
    out = str(tmp_path / 'run')
    base = ['--config', 'quick', '--data', 'synthetic', '--out', out, '--no-progress']
    assert train.main(base + ['--iterations', '3']) == 0
    assert train.main(base + ['--seed', '7']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert 'different config' in err[-1]


def test_no_training_pictures_says_what_to_check(tmp_path):
    empty = SimplePairs([], np.zeros((0, 32, 32), np.uint8),
                                 np.zeros((0, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match='no training pictures for config quick'):
        training.build_trainer(configs.get('quick'), str(tmp_path / 'r'), train_pairs=empty,
                               progress=False)


# ------------------------------------------------------------------ the other entry points

def test_other_entry_points_answer_expected_errors_with_one_line(tmp_path, capsys,
                                                                 monkeypatch):
    from tutorial_lib import failures, lines_cli
    monkeypatch.setenv('TUTORIAL_DATA_DIR', str(tmp_path / 'no_cache'))
    calls = [lambda: stage2_cli.main(['hints-curve', '--stage1', str(tmp_path / 'nope'),
                                  '--limit', '1']),
             lambda: failures.main(['--size', '100', '--limit', '1',
                                    '--out', str(tmp_path / 'f.json')]),
             lambda: lines_cli.main(['sweep', '--limit', '1']),
             lambda: data.main(['info'])]
    for call in calls:
        assert call() == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err and len(err[-1]) > 10 and 'Traceback' not in '\n'.join(err)
