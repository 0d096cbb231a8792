"""A config's init_from starts the U-Net from a saved one (notebook 03's GAN lesson, the
fine-tuning exercise of notebook 02)."""
import numpy as np

import tutorial_lib  # noqa: F401
from tutorial_lib import checkpoints, configs, models, training


def test_init_from_copies_every_weight(tmp_path):
    config = configs.get('quick')
    np.random.seed(123)
    source = models.UNET(in_ch=1, width=config.width)
    source(np.zeros((1, 1, 32, 32), np.float32))     # BatchNorm statistics move a little
    path = str(tmp_path / 'gen.npz')
    models.save_weights(source, path, dict(in_ch=1, width=config.width))
    cold, _ = training.build_models(config)
    warm, _ = training.build_models(config.replace(init_from=path))
    stored = checkpoints.load_unet(path)                  # float16 on disk
    for (name, p), (_, q), (_, c) in zip(sorted(warm.namedparams()),
                                         sorted(stored.namedparams()),
                                         sorted(cold.namedparams())):
        np.testing.assert_array_equal(p.array, q.array, err_msg=name)
    assert any(not np.array_equal(p.array, c.array)
               for (_, p), (_, c) in zip(sorted(warm.namedparams()), sorted(cold.namedparams())))
    np.testing.assert_array_equal(warm.bnc0.avg_mean, stored.bnc0.avg_mean)


def test_gan_lesson_configs_start_from_the_l2_model():
    for name in ('classroom_gan_color', 'classroom_gan_harsh'):
        c = configs.get(name)
        assert c.init_from == 'classroom_l2' and c.rec_loss == 'l1' and c.adv_weight > 0
    assert configs.get('classroom_gan_harsh').adv_weight > configs.get('classroom_gan_color').adv_weight
