"""Notebook 06 in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by
playwright, all cells run, a stroke painted with real mouse events on the hint canvas.

Checks that (a) Python received the stroke at the image pixels under the pointer (the
canvas writes what it received to $TUTORIAL_CANVAS_LOG/<name>.json), (b) the result
shown in the page changed, and (c) the hint model obeyed: most of the closed region the
stroke was painted in took a color near the stroke's. Leaves a screenshot in build/browser_06_canvas.png.

Needs Debian's ``chromium`` and the Python package ``playwright`` (.ci/run installs both;
never ``playwright install``, which downloads a browser). Without them the test is skipped,
except in CI (``CI=true``), where it fails: there a skip would hide a broken browser setup.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import cv2
import numpy as np
import pytest

from tutorial_lib import REPO_ROOT
from tutorial_lib.widgets import canvas_to_image

pytestmark = pytest.mark.browser

CHROMIUM = '/usr/bin/chromium'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run']
NOTEBOOK = '06_interactive_canvas.ipynb'
SCREENSHOT = REPO_ROOT / 'build' / 'browser_06_canvas.png'
GREEN = '#3cb043'                      # a palette square the test clicks
SAMPLE = REPO_ROOT / 'data' / 'samples' / 'sketches' / '1F4F2_256x192.png'   # notebook 06's


def missing():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return 'playwright is not installed (.ci/run installs it: .venv/bin/pip install playwright)'
    if not os.access(CHROMIUM, os.X_OK):
        return 'no Chromium at %s (Debian: apt-get install -y chromium)' % CHROMIUM
    return None


def skip_or_fail(reason):
    """Skip for ``reason`` on a learner's machine; fail in CI (``CI=true``)."""
    if not reason:
        return
    if os.environ.get('CI', '').lower() in ('true', '1', 'yes'):
        pytest.fail('CI=true, so the browser test must run, but ' + reason, pytrace=False)
    pytest.skip(reason)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read() or b'null')


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab serving a copy of notebook 06; stopped (kernels too) whatever happens."""
    skip_or_fail(missing())
    root, log = tmp_path / 'nb', tmp_path / 'log'
    root.mkdir()
    log.mkdir()
    shutil.copy(REPO_ROOT / 'notebooks' / NOTEBOOK, root / NOTEBOOK)
    # settings: no "get Jupyter news?" toast over the canvas, no update check; every cell
    # kept in the page (JupyterLab 4 otherwise drops cells scrolled out of view)
    for plugin, value in (('apputils-extension/notification',
                           {'fetchNews': 'false', 'checkForUpdates': False}),
                          ('notebook-extension/tracker', {'windowingMode': 'none'})):
        path = tmp_path / 'settings' / '@jupyterlab' / (plugin + '.jupyterlab-settings')
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port = free_port()
    env = dict(os.environ, QUICK='1', TUTORIAL_CANVAS_LOG=str(log),
               JUPYTER_CONFIG_DIR=str(tmp_path / 'config'),
               JUPYTER_RUNTIME_DIR=str(tmp_path / 'runtime'))
    cmd = [sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ip=127.0.0.1',
           '--port=%d' % port, '--ServerApp.token=', '--ServerApp.password=',
           '--ServerApp.root_dir=%s' % root, '--LabApp.expose_app_in_browser=True',
           '--LabApp.user_settings_dir=%s' % (tmp_path / 'settings'),
           '--LabApp.workspaces_dir=%s' % (tmp_path / 'workspaces'),
           '--LabApp.news_url=', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']
    if hasattr(os, 'geteuid') and os.geteuid() == 0:
        cmd.append('--allow-root')
    out = open(tmp_path / 'server.log', 'w')
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                            cwd=str(root))
    url = 'http://127.0.0.1:%d' % port
    try:
        deadline = time.time() + 60
        while True:
            try:
                get(url + '/api/status')
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError('JupyterLab did not start:\n'
                                       + (tmp_path / 'server.log').read_text()[-3000:])
                time.sleep(0.5)
        yield url, log
    finally:
        try:                           # kernels run in their own sessions: stop them by API
            for k in get(url + '/api/kernels'):
                req = urllib.request.Request(url + '/api/kernels/' + k['id'], method='DELETE')
                urllib.request.urlopen(req, timeout=10).close()
        except Exception:
            pass
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        out.close()


def wait_for(fn, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError('timed out after %d s waiting for %s' % (timeout, what))


# JupyterLab's own objects (the server runs with expose_app_in_browser): the kernel the
# notebook got, and, from the notebook model, how many code cells ran and which failed
READY_JS = '''async () => {
    const w = window.jupyterapp.shell.currentWidget;
    await w.sessionContext.ready;
    return w.sessionContext.session && w.sessionContext.session.kernel
        ? w.sessionContext.session.kernel.name : null; }'''
RUN_ALL_JS = '''() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return 1; }'''
PROGRESS_JS = '''() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
    let n = 0, done = 0; const errors = [];
    for (let i = 0; i < cells.length; i++) {
        const c = cells.get(i);
        if (c.type !== 'code') continue;
        n++;
        if (c.executionCount) done++;
        for (const o of c.outputs.toJSON())
            if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
    }
    return [n, done, errors]; }'''


def read_log(log, name='sample'):
    try:
        return json.loads((log / ('%s.json' % name)).read_text())
    except (OSError, ValueError):
        return None


def decode_png(data):
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def region_share_near(result_bgr, stroke, max_distance=25):
    """Share of the closed region under the stroke (``fill.regions`` of the sample's line
    art, at its own size) whose color in the result is within ``max_distance`` (CIE Lab)
    of the stroke's color."""
    from tutorial_lib import fill
    line = cv2.imread(str(SAMPLE), cv2.IMREAD_GRAYSCALE)
    h, w = line.shape
    shown = cv2.resize(result_bgr.astype(np.uint8), (w, h), interpolation=cv2.INTER_AREA)
    return fill.region_obeys(shown[..., ::-1], line, stroke['points'], stroke['color'],
                             max_distance)


def test_paint_a_stroke_in_notebook_06(lab):
    from playwright.sync_api import sync_playwright
    url, log = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={'width': 1400, 'height': 1000})
            page.goto('%s/lab/tree/%s?reset' % (url, NOTEBOOK))
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=60000)
            kernel = page.evaluate(READY_JS)
            assert kernel == 'python3', kernel
            page.evaluate(RUN_ALL_JS)       # not awaited: its promise may outlive the run
            _, _, errors = wait_for(lambda: (lambda r: r if r[0] and r[0] == r[1] else None)(
                page.evaluate(PROGRESS_JS)), 150, 'every cell of notebook 06 to run')
            assert not errors, errors
            before = wait_for(lambda: read_log(log), 30, 'the canvas log')
            assert before['image_size'] == [192, 256] and before['canvas_size'] == [288, 384]

            draw = page.locator('.hint-canvas-draw').first
            draw.scroll_into_view_if_needed()
            result = page.locator('.hint-canvas-result').first

            def canvas_pixels():            # what the result <canvas> holds, exactly
                url = result.evaluate('c => c.toDataURL("image/png")')
                return decode_png(base64.b64decode(url.split(',', 1)[1])).astype(int)

            def shown_result():             # the picture Python last drew into the canvas
                return cv2.imread(str(log / 'sample_result.png'), cv2.IMREAD_COLOR).astype(int)
            # the notebook's preset strokes include one in the phone's screen: clear them, so
            # that the stroke below is the only hint in its region
            page.locator('.hint-canvas').first.locator('button:has-text("clear")').click()
            before = wait_for(lambda: (lambda r: r if r and r['n_strokes'] == 0 and
                                       r['recolors'] > before['recolors'] else None)(
                read_log(log)), 60, 'the canvas to clear and recolor')
            wait_for(lambda: np.abs(canvas_pixels() - shown_result()).max() <= 2, 30,
                     'the result canvas to show the cleared picture')
            page.locator("button[title='%s']" % GREEN).first.click()   # palette square
            shot_before = decode_png(result.screenshot()).astype(int)
            pixels_before = canvas_pixels()
            # ipycanvas draws a MultiCanvas's layers into this one <canvas>, which receives
            # the mouse events and maps them to canvas pixels with its own bounding box
            box = draw.bounding_box()
            assert abs(box['width'] - 384) < 1, box     # the pinned layout holds
            y = int(box['y'] + 0.55 * box['height'])
            # inside the phone's screen, a closed region of the sample (x 131-194, y 40-148
            # of 256 x 192 px): the stroke should color that region, up to its outline
            xs = [int(box['x'] + f * box['width']) for f in (0.57, 0.62, 0.67, 0.71)]
            hit = page.evaluate('([x, y]) => document.elementFromPoint(x, y) === '
                                'document.querySelector(".hint-canvas-draw")', [xs[0], y])
            page.mouse.move(xs[0], y)
            page.mouse.down()
            for x in xs[1:]:
                page.mouse.move(x, y, steps=3)
            page.mouse.up()

            def stroke_and_recolor():
                r = read_log(log)
                return r if r and r['n_strokes'] == before['n_strokes'] + 1 \
                    and r['recolors'] > before['recolors'] else None
            after = wait_for(stroke_and_recolor, 60, 'Python to receive the stroke and recolor')
            stroke = after['last_stroke']

            def expected(x):              # what the page and canvas_to_image must agree on
                cx = (x - box['x']) * 384 / box['width']
                cy = (y - box['y']) * 288 / box['height']
                return list(canvas_to_image(cx, cy, (288, 384), (192, 256)))
            assert hit, 'the canvas is covered by another element at the stroke start'
            assert stroke['points'][0] == expected(xs[0]), (stroke, box)
            assert stroke['points'][-1] == expected(xs[-1]), (stroke, box)
            assert all(p[1] == expected(xs[0])[1] for p in stroke['points'])
            assert stroke['color'] == [0x3c, 0xb0, 0x43] and not stroke['erase']
            assert after['result_sha1'] != before['result_sha1']

            # the page shows the new result: the canvas now holds, pixel for pixel (up to
            # the browser's rounding), the picture Python drew into it, and it differs from
            # before (how much depends on how strongly the checkpoint reacts to hints)
            wanted = shown_result()
            assert np.abs(wanted - pixels_before).max() > 2, 'the new result looks like the old'

            wait_for(lambda: np.abs(canvas_pixels() - wanted).max() <= 2, 30,
                     'the result canvas to hold the new picture')
            share = region_share_near(wanted, stroke)
            assert share >= 0.6, ('only %.0f%% of the stroked region took a color near the '
                                  'stroke (CIE Lab distance <= 25)' % (100 * share))
            shot_after = decode_png(result.screenshot()).astype(int)
            h = min(len(shot_after), len(shot_before))  # a fractional top edge: 288 or 289 rows
            assert (np.abs(shot_after[:h] - shot_before[:h]).max(axis=2) > 0).sum() > 0
            status = page.locator('.hint-canvas').first.inner_text()
            assert 'CPU' in status or 'GPU' in status
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.locator('.hint-canvas').first.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
