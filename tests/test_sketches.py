"""The real-sketch test set (tutorial_lib.sketches): selection rule, aligned pairs, measure."""
import json
import shutil

import numpy as np
import pytest

from tiny_models import tiny
import tutorial_lib
from tutorial_lib import sketch_cache as C
from tutorial_lib import sketch_rule as R
from tutorial_lib import sketches as S
from tutorial_lib import viz

SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100" '
       'viewBox="0 0 100 100">%s</svg>')
OUTLINED = ('<circle cx="50" cy="50" r="35" style="fill:#ff8000;stroke:#000000;'
            'stroke-width:1.5"/>'
            '<rect x="35" y="35" width="30" height="30" fill="#2060ff" stroke="black" '
            'stroke-width="1.5"/>')


def test_parse_color():
    assert R.parse_color('#f80') == (255, 136, 0)
    assert R.parse_color('#FF8000') == (255, 128, 0)
    assert R.parse_color('rgb(0, 128, 255)') == (0, 128, 255)
    assert R.parse_color('black') == (0, 0, 0)
    assert R.parse_color('none') is None
    for bad in ('url(#grad1)', 'chartreuse-ish'):
        with pytest.raises(R.Refused):
            R.parse_color(bad)


def test_outlined_colored_drawing_is_a_pair_and_aligned():
    kind, frame, stats, color, line = R.classify(SVG % OUTLINED)
    assert kind == 'pair', stats
    assert color.shape == (R.DECIDE_SIZE, R.DECIDE_SIZE, 3) and line.shape == color.shape[:2]
    ink = line < R.INK
    # every ink pixel of the line art is dark in the picture: the two are aligned
    assert (color[ink].max(axis=1) < R.INK).mean() > 0.97
    # the colored areas are paper in the line art
    c = R.DECIDE_SIZE // 2
    assert line[c, c] == 255 and tuple(color[c, c]) == (32, 96, 255)
    # the same frame at another size gives the same picture, smaller
    small = R.render_framed(R.line_version(SVG % OUTLINED), frame, 128)
    assert small.shape == (128, 128, 3)


def test_line_art_keeps_what_a_colored_shape_hides():
    # a black-outlined circle, partly hidden under an opaque yellow square
    svg = SVG % ('<circle cx="40" cy="50" r="30" fill="none" stroke="#000" stroke-width="3"/>'
                 '<rect x="40" y="20" width="50" height="60" fill="#ffe000"/>')
    line = R.gray(R.render(R.line_version(svg), 100, 100))
    assert line[50, 70] == 255          # the circle's right edge at x=70 is under the square
    assert line[50, 10] < R.INK         # its left edge is visible


def test_plain_line_drawing_is_a_drawing():
    svg = SVG % ('<path d="M10 80 Q50 0 90 80 Z M30 60 L70 60" fill="none" stroke="#111" '
                 'stroke-width="1"/><circle cx="50" cy="50" r="8" fill="white" stroke="black"/>')
    assert R.classify(svg)[0] == 'drawing'


@pytest.mark.parametrize('body, why', [
    ('<defs><linearGradient id="g"><stop offset="0" stop-color="red"/></linearGradient>'
     '</defs><circle cx="50" cy="50" r="30" fill="url(#g)" stroke="black"/>', 'gradient'),
    ('<text x="10" y="50">hello</text><circle cx="50" cy="50" r="30" stroke="black"/>', 'text'),
    ('<circle cx="50" cy="50" r="40" fill="none" stroke="black" stroke-width="0.5"/>'
     '<circle cx="50" cy="50" r="12" fill="black"/>', 'thin lines'),    # mostly a black blob
    ('<rect x="5" y="5" width="90" height="90" fill="#3080ff"/>', 'ink covers'),  # no lines
])
def test_refused(body, why):
    with pytest.raises(R.Refused, match=why):
        R.classify(SVG % body)


def test_decide_needs_outlined_areas():
    stats = dict(ink=0.05, thin_share=0.9, paper=0.8, colored=0.3, ink_in_color=1.0,
                 diff=20.0, edge_cover=0.9)
    assert R.decide(stats) == 'pair'
    with pytest.raises(R.Refused, match='not outlined'):
        R.decide(dict(stats, edge_cover=0.3))
    with pytest.raises(R.Refused, match='neither'):
        R.decide(dict(stats, colored=0.05))


def test_far_paper_and_lightness_by_hand():
    line = np.full((1, 20, 20), 255, np.uint8)
    line[0, :, 10] = 0                           # one vertical line at x = 10
    far = S.far_paper(line)[0]
    assert far[:, :7].all() and far[:, 14:].all()   # more than 3 px away
    assert not far[:, 7:14].any()
    image = np.full((1, 20, 20, 3), 255, np.uint8)
    image[0, :, :10] = (119, 119, 119)           # sRGB 119 gray is L* = 50
    # 7 far columns at L* 50 on the left, 6 at L* 100 on the right
    assert S.paper_lightness(image, line) == pytest.approx((7 * 50 + 6 * 100) / 13, abs=0.3)
    assert np.isnan(S.paper_lightness(image, np.zeros_like(line)))     # no paper at all


def test_measure_on_committed_samples_with_a_tiny_model(tmp_path):
    r = S.measure(stage1=tiny(4), hint_counts=(0, 2), limit=3, data_dir=tmp_path, outputs=True)
    assert 'committed samples' in r['source']          # no cache in tmp_path
    assert r['n_pairs'] == 3 and set(r['psnr']) == {0, 2}
    assert 5 < r['baseline_psnr'] < 40
    assert r['baseline_paper_lightness'] == pytest.approx(100, abs=0.01)
    assert 50 < r['truth_paper_lightness'] <= 100
    assert r['outputs'][2].shape == (3, 128, 128, 3)
    text = S.format_measure(r)
    assert 'line art on white' in text and '2 hints' in text
    fig = viz.contact_sheet(r, n=2)
    assert len([a for a in fig.axes if a.images]) == 10
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_samples_are_small_and_credited():
    files = list(R.SAMPLES_DIR.glob('*.png'))
    index = json.loads((R.SAMPLES_DIR / 'index.json').read_text())
    assert 6 <= len(index['pairs']) + len(index['drawings']) <= 12
    assert sum(f.stat().st_size for f in files) < 1 << 20
    readme = (R.SAMPLES_DIR / 'README.md').read_text()
    for it in index['pairs'] + index['drawings']:
        assert it['source'] in readme
    assert 'openclipart' in (tutorial_lib.REPO_ROOT / 'data' / 'CREDITS.md').read_text().lower()


def test_without_apt_the_build_says_why_and_skips(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, 'which', lambda tool: None)
    with pytest.raises(R.Unavailable, match='apt-get not found'):
        R.fetch(tmp_path)
    assert S.main(['build', '--out', str(tmp_path)]) == 0
    assert 'Skipping the real sketches' in capsys.readouterr().out


def test_built_cache_loads_at_every_size():
    if not C.is_built():
        pytest.skip('no real-sketch cache: `make sketches` builds it (optional)')
    for size in R.SIZES:
        pairs, (names, lines), where = C.held_out(size, limit=2, source='cache')
        assert pairs.colors.shape == (2, size, size, 3) and lines.shape == (2, size, size)


def test_measure_baselines_use_the_same_hints_and_the_ceiling_bounds_the_hybrid(tmp_path):
    r = S.measure(stage1=tiny(4), hint_counts=(0, 20), limit=3, data_dir=tmp_path,
                  baselines=True)
    b = r['baselines']
    assert set(b) == {'bucket fill', 'network + fill', 'ceiling of hybrids*'}
    assert b['bucket fill'][0] == pytest.approx(r['baseline_psnr'])   # no hint, no fill
    for n in (0, 20):
        assert b['ceiling of hybrids*'][n] >= b['network + fill'][n] - 1e-9
        assert b['ceiling of hybrids*'][n] >= r['psnr'][0] - 1e-9
    assert 'ceiling of hybrids*, 20 hints' in S.format_measure(r)
    assert 'baselines' not in S.measure(stage1=tiny(4), hint_counts=(0,), limit=1,
                                        data_dir=tmp_path)
