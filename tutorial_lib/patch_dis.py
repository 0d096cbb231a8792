"""Beyond the blog: an Ad-boss that sees the lines beside the colors and judges every patch
(notebook 03, section 6)."""
import chainer
import chainer.functions as F
import chainer.links as L

from .models import check_size


class PatchDIS(chainer.Chain):
    """Line + colors in [-1, 1] (N, 4, H, W) -> one logit per patch (N, 1, H/8, W/8);
    positive = real. Three 4x4 stride-2 convolutions (32, 64, 128 channels, LeakyReLU 0.2,
    BatchNormalization after the second and third), then a 3x3 convolution to one map.

    The blog's Ad-boss (:class:`models.DIS`) reads the colors alone and gives one verdict
    for the whole picture. This one reads the line art too and answers "real or painted?"
    for each window of about 34 x 34 px, as pix2pix's discriminator (Isola et al. 2017)
    does, so "a sepia face where the drawing has a face" is something it can point at.
    ``in_ch=3``: the same judge on the colors alone (config ``dis='patch_colors'``).
    """

    CHANNELS = (32, 64, 128)

    def __init__(self, in_ch=4):
        super().__init__()
        self.in_ch = in_ch
        w = chainer.initializers.Normal(0.02)
        c1, c2, c3 = self.CHANNELS
        with self.init_scope():
            self.c1 = L.Convolution2D(in_ch, c1, 4, 2, 1, initialW=w)
            self.c2 = L.Convolution2D(c1, c2, 4, 2, 1, initialW=w, nobias=True)
            self.bn2 = L.BatchNormalization(c2)
            self.c3 = L.Convolution2D(c2, c3, 4, 2, 1, initialW=w, nobias=True)
            self.bn3 = L.BatchNormalization(c3)
            self.c4 = L.Convolution2D(c3, 1, 3, 1, 1, initialW=w)

    def forward(self, x):
        check_size(x, 8)
        h = F.leaky_relu(self.c1(x), 0.2)
        h = F.leaky_relu(self.bn2(self.c2(h)), 0.2)
        h = F.leaky_relu(self.bn3(self.c3(h)), 0.2)
        return self.c4(h)
