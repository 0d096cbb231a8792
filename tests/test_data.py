"""Tests of tutorial_lib.data / tutorial_lib.openmoji: fast, small builds in tmp_path.

The tests marked with `needs_full_build` check the real cache (`make data`) and are
skipped when it is not built.
"""
import tutorial_lib  # noqa: F401

import collections
import json
import os
import pathlib
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from tutorial_lib import cache, data, images, openmoji
from tutorial_lib.pairs import LazyImages, Pairs

REPO = tutorial_lib.REPO_ROOT
# a small, varied set: two skin-tone families (test and train), a face, an animal,
# food, an object, an OpenMoji extra
SMALL = ['1F98A', '1F600', '1F355', '1F511', 'E000', '1F3CB', '1F3CB-1F3FB', '1F3CB-1F3FF',
         '1F64B', '1F64B-1F3FD', '1F34E', '1F697']


# ---------------------------------------------------------------- group, base and split rules

@pytest.mark.parametrize('hexcode, group', [
    ('1F98A', 'Animals & Nature'),            # fox
    ('1F600', 'Smileys & Emotion'),
    ('263A', 'Smileys & Emotion'),            # OpenMoji drops the FE0F that emoji-test has
    ('1F469-1F3FD-200D-1F3A8', 'People & Body'),
    ('1F3CB-FE0F-200D-2640-FE0F', 'People & Body'),
    ('E000', 'extras-openmoji'),              # goldfish, private use
    ('E0AC-200D-2640-FE0F', 'extras-openmoji'),
    ('1F1E9-1F1EA', 'Flags'),                 # regional-indicator pair
    ('1F1E6', 'Flags'),                       # a lone regional indicator
    ('1F3F4-E0067-E0062-E0073-E0063-E0074-E007F', 'Flags'),  # Scotland, RGI tag sequence
    ('1F3F4-E0075-E0073-E0074-E0078-E007F', 'Flags'),        # Texas: not RGI, still a flag
    ('1F3F3-FE0F-200D-1F308', 'Flags'),       # rainbow flag (from emoji-test)
    ('2764', 'Smileys & Emotion'),            # red heart: Unicode files hearts with smileys
    ('267B', 'Symbols'),                      # recycling symbol, without FE0F
    ('0023-FE0F-20E3', 'Symbols'),            # keycap
    ('1F3FB', 'Component'),                   # a bare skin-tone swatch
    ('2B21', 'extras-unicode'),               # white hexagon
    ('1F431-200D-1F4BB', 'extras-unicode'),   # hacker cat: not RGI, not private use
])
def test_group_rule(hexcode, group):
    assert hexcode in openmoji.list_svgs()
    assert openmoji.group_of(hexcode) == group
    assert openmoji.is_pictorial(hexcode) == (group in openmoji.PICTORIAL_GROUPS)


def test_skin_tone_base_ignores_modifiers_and_fe0f():
    assert openmoji.base_of('1F44B-1F3FD') == '1F44B'
    # the skin-tone variant has no FE0F where the plain one has: same base anyway
    assert openmoji.base_of('1F3CB-FE0F-200D-2640-FE0F') == openmoji.base_of(
        '1F3CB-1F3FB-200D-2640-FE0F') == '1F3CB-200D-2640'
    assert openmoji.base_of('1F9D1-1F3FB-200D-1F91D-200D-1F9D1-1F3FC') == '1F9D1-200D-1F91D-200D-1F9D1'
    assert openmoji.base_of('E000') == 'E000'


def test_catalog_counts_and_split():
    items = openmoji.catalog()
    splits = collections.Counter(it['split'] for it in items)
    # pinned: a change here changes the data set, update the docs with it
    assert len(items) == 3817
    assert splits == {'train': 3490, 'test': 327}
    assert splits['train'] >= 3400 and splits['test'] >= 300
    assert not {it['group'] for it in items} - set(openmoji.PICTORIAL_GROUPS)
    by_base = collections.defaultdict(set)
    for it in items:
        by_base[it['base']].add(it['split'])
    assert all(len(s) == 1 for s in by_base.values()), 'a base straddles the split'
    assert max(collections.Counter(it['base'] for it in items).values()) > 5  # bases do group
    # deterministic: the same answer every time, independent of PYTHONHASHSEED
    code = 'from tutorial_lib import openmoji; print(openmoji.split_of("1F98A"), openmoji.split_of("1F3CB-1F3FF"))'
    env = dict(os.environ, PYTHONHASHSEED='123')
    other = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env,
                           check=True).stdout.split()
    assert other == [openmoji.split_of('1F98A'), openmoji.split_of('1F3CB-1F3FF')]


def test_only_line_layers_keeps_just_the_line_groups():
    svg = openmoji.list_svgs()['1F98A'].read_text()
    line_svg = openmoji.only_line_layers(svg)
    assert 'id="line"' in line_svg and 'id="color"' not in line_svg
    assert '<svg' in line_svg and 'ns0:' not in line_svg
    with pytest.raises(openmoji.SkipItem):
        openmoji.only_line_layers('<svg xmlns="http://www.w3.org/2000/svg"><g id="color"/></svg>')


# ---------------------------------------------------------------- small builds

@pytest.fixture(scope='module')
def small_cache(tmp_path_factory):
    out = tmp_path_factory.mktemp('cache')
    summary = cache.build_openmoji(out, sizes=[128], names=SMALL, workers=1)
    return out, summary


def test_small_build_writes_aligned_pairs(small_cache):
    out, summary = small_cache
    assert summary['rendered'] == len(SMALL) and summary['skipped'] == 0
    assert data.is_built(out)
    index = json.loads((out / 'index.json').read_text())
    assert sorted(index['splits']['train'] + index['splits']['test']) == sorted(SMALL)
    for name in SMALL:  # the skin-tone family sits on one side of the split
        assert index['items'][name]['split'] == openmoji.split_of(name)
    train = data.load_split('train', 128, data_dir=out)
    test = data.load_split('test', 128, data_dir=out)
    assert len(train) + len(test) == len(SMALL) and len(test) > 0
    for pairs in (train, test):
        assert pairs.lines.dtype == np.uint8 and pairs.lines.shape[1:] == (128, 128)
        assert pairs.colors.dtype == np.uint8 and pairs.colors.shape[1:] == (128, 128, 3)
    for line, color in zip(train.lines, train.colors):
        ink = line < 128
        assert 0.02 < ink.mean() < 0.5                      # there are lines, on paper
        assert line[0, 0] == 255 and (color[0, 0] == 255).all()  # white background
        white = (color > 250).all(axis=2)
        assert (ink & white).mean() < 0.002                 # ink only where the picture has it
        assert color[ink].mean() < 90                       # the color render draws the lines too
        hsv = cv2.cvtColor(np.ascontiguousarray(color), cv2.COLOR_RGB2HSV)
        assert (hsv[:, :, 1] > 60).mean() > 0.01            # and it has color
    # the pack and the PNGs agree
    name = train.names[0]
    png = cv2.imread(str(out / 'png' / '128' / ('%s_line.png' % name)), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(png, train.lines[0])


def test_rerun_does_no_work(small_cache):
    out, _ = small_cache
    packed = sorted((out / 'packed').rglob('*.npy'))
    mtimes = [p.stat().st_mtime_ns for p in packed]
    summary = cache.build_openmoji(out, sizes=[128], names=SMALL, workers=1)
    assert summary['rendered'] == 0 and summary['cached'] == len(SMALL)
    assert [p.stat().st_mtime_ns for p in packed] == mtimes


def test_load_split_limit_seed_lazy(small_cache):
    out, _ = small_cache
    full = data.load_split('train', 128, data_dir=out)
    first = data.load_split('train', 128, limit=3, data_dir=out)
    assert first.names == full.names[:3]
    np.testing.assert_array_equal(first.colors, full.colors[:3])
    a = data.load_split('train', 128, limit=4, seed=1, data_dir=out)
    b = data.load_split('train', 128, limit=4, seed=1, data_dir=out)
    assert a.names == b.names and len(a) == 4
    np.testing.assert_array_equal(a.lines, b.lines)
    # the PNG path (sizes that are not packed) and lazy loading give the same pixels
    (out / 'packed' / '128' / 'train.json').rename(out / 'train.json.off')
    try:
        eager = data.load_split('train', 128, data_dir=out, lazy=False)
        lazy = data.load_split('train', 128, data_dir=out, lazy=True)
    finally:
        (out / 'train.json.off').rename(out / 'packed' / '128' / 'train.json')
    assert isinstance(lazy.lines, LazyImages) and lazy.colors.shape == full.colors.shape
    np.testing.assert_array_equal(eager.lines, full.lines)
    np.testing.assert_array_equal(lazy.colors[[2, 0]], full.colors[[2, 0]])
    np.testing.assert_array_equal(lazy.lines[1], full.lines[1])
    sub = lazy.subset([1, 2])
    assert isinstance(sub.lines, LazyImages) and sub.names == full.names[1:3]
    np.testing.assert_array_equal(np.asarray(sub.colors), full.colors[1:3])


def test_pairs_subset_and_checks():
    p = Pairs(['a', 'b', 'c'], np.zeros((3, 16, 16), np.uint8), np.zeros((3, 16, 16, 3), np.uint8))
    assert len(p.subset([2, 0])) == 2 and p.subset([2, 0]).names == ['c', 'a']
    assert p.subset(np.array([True, False, True])).names == ['a', 'c']
    assert p.subset(slice(1, None)).names == ['b', 'c']
    assert 'Pairs(3 pairs' in repr(p)
    with pytest.raises(ValueError):
        Pairs(['a'], np.zeros((2, 16, 16), np.uint8), np.zeros((2, 16, 16, 3), np.uint8))


def test_load_split_errors(tmp_path, small_cache):
    with pytest.raises(FileNotFoundError, match='make data'):
        data.load_split('train', 128, data_dir=tmp_path / 'nothing')
    with pytest.raises(ValueError, match="'train', 'test'"):
        data.load_split('validation', 128, data_dir=small_cache[0])
    with pytest.raises(ValueError, match='built sizes: 128'):
        data.load_split('train', 256, data_dir=small_cache[0])
    with pytest.raises(ValueError, match='multiple of 16'):
        data.load_split('train', 100, data_dir=small_cache[0])
    assert not data.is_built(tmp_path)


def _all_pngs_decode(out):
    pngs = list(pathlib.Path(out).rglob('*.png'))
    for p in pngs:
        assert cv2.imread(str(p), cv2.IMREAD_UNCHANGED) is not None, 'truncated %s' % p
    return len(pngs)


def test_resume_after_interruption(tmp_path):
    out = tmp_path / 'cache'
    cache.build_openmoji(out, sizes=[128], names=SMALL[:6], workers=1)
    # as a killed build leaves it: a stray half temp file, a missing pair, no COMPLETE
    folder = out / 'png' / '128'
    (folder / ('%s_line.png' % SMALL[0])).unlink()
    stray = folder / ('.%s_color.png.abc123.tmp' % SMALL[1])
    stray.write_bytes(b'\x89PNG\r\n\x1a\n half')
    (out / 'COMPLETE').unlink()
    assert not data.is_built(out)
    summary = cache.build_openmoji(out, sizes=[128], names=SMALL[:6], workers=1)
    assert summary['rendered'] == 1 and summary['cached'] == 5
    assert not stray.exists() and not list(out.rglob('*.tmp'))
    assert data.is_built(out) and _all_pngs_decode(out) == 12


def test_killed_build_leaves_no_truncated_file(tmp_path):
    out = tmp_path / 'cache'
    cmd = [sys.executable, '-m', 'tutorial_lib.data', 'build', '--out', str(out), '--limit', '30',
           '--sizes', '256', '--workers', '1', '--pack-sizes']
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline and proc.poll() is None:
        if len(list((out / 'png' / '256').glob('*.png'))) >= 6:
            break
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    killed = proc.returncode != 0  # killed mid-way (the usual case)
    if killed:
        assert not data.is_built(out)
    _all_pngs_decode(out)
    summary = cache.build_openmoji(out, sizes=[256], limit=30, workers=1, pack_sizes=())
    assert summary['rendered'] + summary['cached'] == 30 and data.is_built(out)
    assert summary['rendered'] > 0 or not killed
    assert _all_pngs_decode(out) == 60 and not list(out.rglob('*.tmp'))


# ---------------------------------------------------------------- reading user pictures

def _write(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def test_read_image_formats(tmp_path):
    bgra = np.zeros((8, 10, 4), np.uint8)
    bgra[..., 0] = 255                      # blue in OpenCV's BGR order
    bgra[:, :5, 3] = 255                    # left half opaque
    bgra[:, 5:, 3] = 0                      # right half transparent -> white
    rgb = images.read_image(_write(tmp_path / 'rgba.png', bgra))
    assert rgb.shape == (8, 10, 3) and rgb.dtype == np.uint8
    assert (rgb[:, :5] == [0, 0, 255]).all() and (rgb[:, 5:] == 255).all()
    half = bgra.copy()
    half[..., 3] = 128
    assert abs(int(images.read_image(_write(tmp_path / 'half.png', half))[0, 0, 0]) - 127) <= 1

    gray = np.tile(np.arange(0, 250, 25, dtype=np.uint8), (6, 1))
    g = images.read_image(_write(tmp_path / 'gray.png', gray))
    assert g.shape == (6, 10, 3) and (g[..., 0] == gray).all() and (g[..., 2] == gray).all()

    deep = np.zeros((4, 4, 3), np.uint16)
    deep[..., 2] = 65535                    # red at full 16-bit
    deep[..., 1] = 257 * 128
    d = images.read_image(_write(tmp_path / 'deep.png', deep))
    assert d.dtype == np.uint8 and (d[..., 0] == 255).all() and (d[..., 1] == 128).all() and (d[..., 2] == 0).all()

    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 2] = 220
    for ext in ('webp', 'jpg'):
        im = images.read_image(_write(tmp_path / ('red.' + ext), red))
        assert im.shape == (16, 16, 3) and im[..., 0].mean() > 200 and im[..., 2].mean() < 30

    for name, content in (('broken.png', b'\x89PNG\r\n\x1a\nnot really'), ('empty.jpg', b''),
                          ('notes.webp', b'hello')):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=name.replace('.', r'\.') + '.*PNG, JPEG or WebP'):
            images.read_image(tmp_path / name)


def test_pairs_from_folder_skips_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    img = np.full((90, 120, 3), 255, np.uint8)
    cv2.circle(img, (60, 45), 30, (40, 120, 230), -1)
    _write(tmp_path / 'a.png', img)
    _write(tmp_path / 'sub' / 'b.jpg', rng.integers(0, 255, (64, 48, 3), dtype=np.uint8))
    (tmp_path / 'sub' / 'c.png').write_bytes(b'garbage')
    (tmp_path / 'readme.txt').write_text('not a picture')
    with pytest.warns(UserWarning, match='c.png'):
        pairs = data.pairs_from_folder(tmp_path, size=32)
    assert pairs.names == ['a.png', 'sub/b.jpg']
    assert pairs.lines.shape == (2, 32, 32) and pairs.colors.shape == (2, 32, 32, 3)
    assert pairs.lines.dtype == np.uint8 and pairs.lines[0].min() < 200  # the circle's outline
    with pytest.raises(ValueError, match='multiple of 16'):
        data.pairs_from_folder(tmp_path, size=100)
    with pytest.raises(ValueError, match='size='):
        data.pairs_from_folder(tmp_path)     # two different sizes and no size given
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no pictures'):
        data.pairs_from_folder(tmp_path / 'empty')
    only_bad = tmp_path / 'bad'
    only_bad.mkdir()
    (only_bad / 'x.png').write_bytes(b'')
    with pytest.warns(UserWarning), pytest.raises(ValueError, match='could be read'):
        data.pairs_from_folder(only_bad)


def test_folder_cache(tmp_path):
    src = tmp_path / 'src'
    for i in range(12):
        img = np.full((40 + i, 50, 3), 255, np.uint8)
        cv2.rectangle(img, (5, 5), (30, 30), (i * 20, 100, 200), -1)
        _write(src / ('p%02d.png' % i), img)
    (src / 'bad.webp').write_bytes(b'nope')
    assert data.main(['folder', str(src), '--out', str(tmp_path / 'out'), '--size', '32',
                      '--workers', '1']) == 0
    complete = json.loads((tmp_path / 'out' / 'COMPLETE').read_text())
    assert complete['skipped_files'] == ['bad.webp'] and sum(complete['pairs'].values()) == 12
    train = data.load_split('train', 32, data_dir=tmp_path / 'out')
    assert train.lines.shape[1:] == (32, 32) and train.names[0].startswith('p')
    # other line options are part of the cache's fingerprint: changing one redoes the pairs
    summary = cache.build_folder(src, tmp_path / 'out', size=32, workers=1, threshold=40)
    assert summary['rendered'] == 12
    binary = data.load_split('train', 32, data_dir=tmp_path / 'out')
    assert set(np.unique(binary.lines)) <= {0, 255}


# ---------------------------------------------------------------- committed samples

def test_samples():
    samples_dir = REPO / 'data' / 'samples'
    assert sum(p.stat().st_size for p in samples_dir.rglob('*') if p.is_file()) < 3e6
    pairs = data.load_samples()
    assert len(pairs) == 36 and pairs.lines.shape == (36, 256, 256) and pairs.colors.shape == (36, 256, 256, 3)
    assert all(openmoji.split_of(n) == 'test' for n in pairs.names)
    assert len({openmoji.base_of(n) for n in pairs.names}) == 36
    assert sum(any(t in n for t in ('1F3FB', '1F3FC', '1F3FD', '1F3FE', '1F3FF')) for n in pairs.names) >= 5
    small = data.load_samples(128)
    assert small.lines.shape == (36, 128, 128) and small.names == pairs.names
    sketches = data.load_sample_sketches()
    assert len(sketches) >= 5
    shapes = [s.shape for _, s in sketches]
    assert sum(h != w for h, w in shapes) >= 2
    assert all(s.dtype == np.uint8 and s.ndim == 2 and s.shape[0] % 16 == 0 and s.shape[1] % 16 == 0
               for _, s in sketches)
    for name, sketch in sketches:
        source = name.rsplit('_', 1)[0]
        assert openmoji.split_of(source) == 'test'
        assert openmoji.base_of(source) not in {openmoji.base_of(n) for n in pairs.names}
        assert (sketch < 128).mean() > 0.01 and sketch[0, 0] == 255
    assert (REPO / 'data' / 'CREDITS.md').read_text().count('CC BY-SA 4.0') >= 1


# ---------------------------------------------------------------- the real cache (make data)

needs_full_build = pytest.mark.skipif(not data.is_built(), reason='run `make data` first')


@needs_full_build
def test_full_build():
    index = data.read_index()
    assert {128, 256, 512} <= set(index['sizes'])
    assert len(index['splits']['train']) >= 3400 and len(index['splits']['test']) >= 300
    splits_of_base = collections.defaultdict(set)
    for item in index['items'].values():
        splits_of_base[item['base']].add(item['split'])
    assert all(len(s) == 1 for s in splits_of_base.values())
    start = time.time()
    train = data.load_split('train', 128)
    assert len(train) == len(index['splits']['train']) and train.colors.shape[1:] == (128, 128, 3)
    print('load_split(train, 128): %.2f s' % (time.time() - start))
    big = data.load_split('test', 512, limit=2)
    assert big.lines.shape == (2, 512, 512)
    lazy = data.load_split('train', 512)
    assert isinstance(lazy.lines, LazyImages) and lazy.lines[0].shape == (512, 512)


def test_changed_inputs_rebuild_from_scratch(tmp_path, monkeypatch):
    out = tmp_path / 'cache'
    cache.build_openmoji(out, sizes=[128], names=SMALL[:2], workers=1)
    assert cache.build_openmoji(out, sizes=[128], names=SMALL[:2], workers=1)['rendered'] == 0
    monkeypatch.setattr(openmoji, 'RENDER_VERSION', openmoji.RENDER_VERSION + 1)
    assert cache.build_openmoji(out, sizes=[128], names=SMALL[:2], workers=1)['rendered'] == 2
