"""The blog's networks: names, shapes, parameter count, size errors, I/O contract."""
import numpy as np
import pytest

import tutorial_lib  # noqa: F401  (before chainer)
import chainer
from tutorial_lib import checkpoints, models

# (in, out, kh, kw) as printed in the blog; Convolution2D stores W as (out, in, kh, kw),
# Deconvolution2D as (in, out, kh, kw).
BLOG_UNET = {
    'c0': ('conv', 4, 32, 3), 'c1': ('conv', 32, 64, 4), 'c2': ('conv', 64, 64, 3),
    'c3': ('conv', 64, 128, 4), 'c4': ('conv', 128, 128, 3), 'c5': ('conv', 128, 256, 4),
    'c6': ('conv', 256, 256, 3), 'c7': ('conv', 256, 512, 4), 'c8': ('conv', 512, 512, 3),
    'dc8': ('deconv', 1024, 512, 4), 'dc7': ('conv', 512, 256, 3),
    'dc6': ('deconv', 512, 256, 4), 'dc5': ('conv', 256, 128, 3),
    'dc4': ('deconv', 256, 128, 4), 'dc3': ('conv', 128, 64, 3),
    'dc2': ('deconv', 128, 64, 4), 'dc1': ('conv', 64, 32, 3), 'dc0': ('conv', 64, 3, 3),
}
BLOG_UNET_BN = {'bnc0': 32, 'bnc1': 64, 'bnc2': 64, 'bnc3': 128, 'bnc4': 128, 'bnc5': 256,
                'bnc6': 256, 'bnc7': 512, 'bnc8': 512, 'bnd8': 512, 'bnd7': 256,
                'bnd6': 256, 'bnd5': 128, 'bnd4': 128, 'bnd3': 64, 'bnd2': 64, 'bnd1': 32}
BLOG_DIS = {'c1': (3, 32, 4), 'c2': (32, 32, 3), 'c3': (32, 64, 4), 'c4': (64, 64, 3),
            'c5': (64, 128, 4), 'c6': (128, 128, 3), 'c7': (128, 256, 4)}


def w_shape(kind, n_in, n_out, k):
    return (n_in, n_out, k, k) if kind == 'deconv' else (n_out, n_in, k, k)


@pytest.fixture(scope='module')
def blog_unet():
    return models.UNET(in_ch=4, width=1)


def test_blog_unet_parameter_count(blog_unet):
    assert models.count_params(blog_unet) == 18639619


def test_blog_unet_every_link_has_the_blogs_shape(blog_unet):
    children = {name: link for name, link in blog_unet.namedlinks(skipself=True)}
    assert set(children) == {'/' + n for n in list(BLOG_UNET) + list(BLOG_UNET_BN)}
    for name, (kind, n_in, n_out, k) in BLOG_UNET.items():
        link = getattr(blog_unet, name)
        expected_cls = chainer.links.Deconvolution2D if kind == 'deconv' else \
            chainer.links.Convolution2D
        assert type(link) is expected_cls, name
        assert link.W.shape == w_shape(kind, n_in, n_out, k), name
        assert link.b.shape == (n_out,), name
        stride = 2 if k == 4 else 1
        assert link.stride == (stride, stride) and link.pad == (1, 1), name
    for name, c in BLOG_UNET_BN.items():
        assert getattr(blog_unet, name).gamma.shape == (c,), name
    assert not hasattr(blog_unet, 'bnd0')  # dc0 is linear: no BatchNorm, no ReLU


def test_blog_dis_shapes():
    dis = models.DIS(width=1, image_size=128)
    for name, (n_in, n_out, k) in BLOG_DIS.items():
        assert getattr(dis, name).W.shape == (n_out, n_in, k, k), name
        assert getattr(dis, 'bn' + name).gamma.shape == (n_out,), name  # bnc1 included
    assert dis.l8l.W.shape == (2, 8 * 8 * 256)
    assert abs(float(dis.l8l.W.array.std()) - 0.02) < 0.002  # the blog's wscale


def test_width_scales_channels_and_in_ch():
    u = models.UNET(in_ch=1, width=0.25)
    assert u.c0.W.shape == (8, 1, 3, 3)
    assert u.dc8.W.shape == (256, 128, 4, 4)
    assert u.dc0.W.shape == (3, 16, 3, 3)
    assert models.count_params(u) == 1167211


def test_forward_shapes_tiny():
    u = models.UNET(in_ch=1, width=1 / 16)
    d = models.DIS(width=1 / 16, image_size=32)
    x = np.zeros((2, 1, 32, 48), np.float32)
    y = u(x)
    assert y.shape == (2, 3, 32, 48)
    assert d(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, 2)
    lazy = models.DIS(width=1 / 16)
    assert lazy(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 2)


@pytest.mark.parametrize('shape', [(1, 1, 30, 32), (1, 1, 32, 40), (1, 1, 8, 8)])
def test_bad_sizes_give_a_clear_error(shape):
    u = models.UNET(in_ch=1, width=1 / 16)
    with pytest.raises(ValueError, match='multiples of 16'):
        u(np.zeros(shape, np.float32))


def test_wrong_channel_count():
    u = models.UNET(in_ch=4, width=1 / 16)
    with pytest.raises(ValueError, match='4 input channels'):
        u(np.zeros((1, 1, 32, 32), np.float32))


def test_normalization_contract():
    lines = np.array([[[0, 255]]], np.uint8)
    x = models.encode_lines(lines)
    assert x.shape == (1, 1, 1, 2) and x.dtype == np.float32
    assert x.min() == -1 and x.max() == 1
    colors = np.zeros((2, 4, 5, 3), np.uint8)
    colors[..., 0] = 255
    t = models.encode_colors(colors)
    assert t.shape == (2, 3, 4, 5)
    assert (t[:, 0] == 1).all() and (t[:, 1] == -1).all()
    # round trip, and: a network that outputs zeros paints mid gray, not a color
    assert (models.decode_colors(t) == colors).all()
    gray = models.decode_colors(np.zeros((1, 3, 2, 2), np.float32))
    assert (gray == 128).all()


def test_colorize_pads_and_crops():
    u = models.UNET(in_ch=1, width=1 / 16)
    out = models.colorize(u, np.full((3, 20, 37), 255, np.uint8), batch_size=2)
    assert out.shape == (3, 20, 37, 3) and out.dtype == np.uint8


def test_shape_table_matches_model():
    u = models.UNET(in_ch=1, width=0.25)
    rows = models.shape_table(u, 128)
    assert [r['name'] for r in rows][:2] == ['c0', 'c1']
    assert sum(r['params'] for r in rows) == models.count_params(u)
    byname = {r['name']: r for r in rows}
    assert byname['c8']['output'] == (128, 8, 8)
    assert byname['dc8']['input'] == (256, 8, 8)      # concat(e7, e8)
    assert byname['dc0']['input'] == (16, 128, 128)   # concat(e0, d1)
    assert 'dc8' in models.format_shape_table(rows)


def test_float16_weights_round_trip(tmp_path):
    np.random.seed(0)
    u = models.UNET(in_ch=1, width=1 / 8)
    u.bnc0.avg_mean[...] = 0.25
    u.bnc0.N = 7
    path = str(tmp_path / 'g.npz')
    models.save_weights(u, path, {'in_ch': 1, 'width': 1 / 8})
    v = checkpoints.load_unet(path)
    for (n, p), (_, q) in zip(sorted(u.namedparams()), sorted(v.namedparams())):
        assert q.array.dtype == np.float32
        np.testing.assert_allclose(p.array, q.array, rtol=1e-3, atol=1e-4, err_msg=n)
    assert (v.bnc0.avg_mean == 0.25).all() and v.bnc0.N == 7
    w = models.UNET(in_ch=1, width=1 / 4)
    with pytest.raises(ValueError, match='shape'):
        models.load_weights(w, path)
