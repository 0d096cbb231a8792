"""The measuring functions: test metrics of a model, the hints curve, the stage-2 gain."""
import numpy as np
import pytest

import tutorial_lib  # noqa: F401
from tutorial_lib.pairs import synthetic_pairs
from tutorial_lib import evaluation, hints, models, viz


def test_hints_curve_runs_on_four_pictures():
    np.random.seed(0)
    g = models.UNET(in_ch=4, width=1 / 16)
    p = synthetic_pairs(4, 32)
    rows = evaluation.hints_curve(g, p, counts=(0, 1, 10))
    assert [r['hints'] for r in rows] == [0, 1, 10]
    assert np.isnan(rows[0]['hint_error']) and rows[2]['hint_error'] >= 0
    assert all(r['n'] == 4 and np.isfinite(r['psnr']) for r in rows)
    assert 'PSNR' in evaluation.format_curve(rows)
    import matplotlib
    matplotlib.use('Agg')
    ax = viz.plot_hints_curve({'tiny': rows})
    assert 'Zhang' in ' '.join(t.get_text() for t in ax.get_legend().get_texts())
    quiet = viz.plot_hints_curve({'tiny': rows}, legend=False)   # a panel of a shared legend
    assert quiet.get_legend() is None and quiet.get_legend_handles_labels()[1][0] == 'tiny'
    with pytest.raises(ValueError, match='in_ch=4'):
        evaluation.hints_curve(models.UNET(in_ch=1, width=1 / 16), p)


def test_truth_hints_are_nested_and_exact():
    p = synthetic_pairs(2, 32)
    r5, m5 = hints.truth_hints(p.colors, 5)
    r10, m10 = hints.truth_hints(p.colors, 10)
    assert (m5.sum(axis=(1, 2)) == 5).all() and (m10.sum(axis=(1, 2)) == 10).all()
    assert (m10 >= m5).all()
    np.testing.assert_array_equal(r5[m5], p.colors[m5])


def test_hint_error():
    out = np.zeros((1, 4, 4, 3), np.uint8)
    rgb = np.full((1, 4, 4, 3), 10, np.uint8)
    mask = np.zeros((1, 4, 4), bool)
    assert np.isnan(evaluation.hint_error(out, rgb, mask))
    mask[0, 1, 1] = True
    assert evaluation.hint_error(out, rgb, mask) == 10


def test_hints_curve_values_match_a_hand_computation():
    """Each row's PSNR, SSIM and hint error, recomputed without the module's helpers: hints
    drawn per picture with RandomState([seed, i]), the network run on a hand-built input,
    PSNR from its formula."""
    import chainer
    from tutorial_lib import metrics
    np.random.seed(1)
    g = models.UNET(in_ch=4, width=1 / 16)
    p = synthetic_pairs(3, 32, seed=2)
    rows = evaluation.hints_curve(g, p, counts=(0, 5, 40), seed=7, radius=1)
    for row in rows:
        n = row['hints']
        outs, errs = [], []
        for i, (line, color) in enumerate(zip(p.lines, p.colors)):
            rgb, mask = hints.truth_hints(p.colors, n, seed=7, radius=1)
            rgb, mask = rgb[i], mask[i]
            x = np.full((1, 4, 32, 32), hints.EMPTY, np.float32)
            x[0, 0] = line / 127.5 - 1
            x[0, 1:, mask] = rgb[mask] / 127.5 - 1      # (k, 3): advanced index first
            with chainer.using_config('train', False), chainer.no_backprop_mode():
                y = g(x).array[0]
            out = np.clip((y + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
            outs.append(out)
            errs.extend(np.abs(out[mask].astype(float) - rgb[mask]).ravel())
        mse = [((o.astype(float) - c) ** 2).mean() for o, c in zip(outs, p.colors)]
        psnr = [10 * np.log10(255 ** 2 / m) for m in mse]
        assert row['n'] == 3
        assert row['psnr'] == pytest.approx(np.mean(psnr), abs=1e-9)
        assert row['psnr_std'] == pytest.approx(np.std(psnr), abs=1e-9)
        assert row['ssim'] == pytest.approx(np.mean(metrics.ssim(np.stack(outs), p.colors)),
                                            abs=1e-12)
        if n == 0:
            assert np.isnan(row['hint_error'])
        else:
            assert row['hint_error'] == pytest.approx(np.mean(errs), abs=1e-9)
    # more hints really reach the network: the rows differ
    assert rows[0]['psnr'] != rows[2]['psnr']
