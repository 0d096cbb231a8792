"""The held-out real-sketch cache: render what :mod:`tutorial_lib.sketch_rule` keeps, load it back.

Notebook 05 ("Real sketches") loads it with :func:`held_out`; ``make sketches`` builds it
into ``data/sketches/`` (gitignored, resumable, ``COMPLETE`` marks a finished build), and a
handful are committed in ``data/samples/real_sketches/`` so the notebook and tests work
without it.
"""
import json
import multiprocessing
import os
import pathlib
import re
import shutil
import time

import cv2
import numpy as np

from . import atomic
from . import openmoji
from .images import resize, write_png
from .pairs import Pairs
from .sketch_rule import (CREDIT, DECIDE_SIZE, DEFAULT_DIR, MAX_CONSIDERED, MAX_DRAWINGS,
                          MAX_PAIRS, RULE_VERSION, SAMPLES_DIR, SIZES, Refused, candidates,
                          classify, fetch, gray, line_version, rel, render_framed)


# ---------------------------------------------------------------- building the cache

def stem_of(relpath):
    """'food/desserts/candy_22.svg' -> 'food__desserts__candy_22' (a flat file stem)."""
    return re.sub(r'[^A-Za-z0-9._-]+', '_', relpath[:-4].replace('/', '__'))


def _png(out, size, stem, part):
    return pathlib.Path(out) / 'png' / str(size) / ('%s_%s.png' % (stem, part))


def _done(out, stem, kind, sizes):
    parts = ('color', 'line') if kind == 'pair' else ('line',)
    return all(_png(out, s, stem, p).is_file() for s in sizes for p in parts)


def _build_one(task):
    """Decide one SVG and, when kept, render it at every size. Runs in a worker process."""
    root, relpath, out, sizes = task
    stem = stem_of(relpath)
    try:
        svg = (pathlib.Path(root) / relpath).read_text(encoding='utf-8')
        kind, frame, stats, color, line = classify(svg)
        line_svg = line_version(svg)
        for size in sizes:
            if size == DECIDE_SIZE:
                c, g = color, line
            else:
                c = render_framed(svg, frame, size) if kind == 'pair' else None
                g = gray(render_framed(line_svg, frame, size))
            if kind == 'pair':
                write_png(_png(out, size, stem, 'color'), c)
            write_png(_png(out, size, stem, 'line'), g)   # written last: marks it done
        return relpath, dict(kind=kind, stats={k: round(v, 4) for k, v in stats.items()})
    except (Refused, UnicodeDecodeError) as e:
        reason = str(e) if isinstance(e, Refused) else 'not UTF-8'
        return relpath, dict(kind=None, reason=reason)


def _fingerprint(root):
    stamp = pathlib.Path(root).parents[3] / 'UNPACKED'
    return dict(rule=RULE_VERSION, resvg_py=openmoji.package_version('resvg-py'),
                deb=stamp.read_text().strip() if stamp.is_file() else None)


def _saved_decisions(out, fp, names, progress):
    """(decisions saved by an earlier run with the same fingerprint, the finished index or
    None). A finished index means there is nothing to do."""
    dec_path, complete = out / 'decisions.json', out / 'COMPLETE'
    decisions = {}
    if dec_path.is_file():
        saved = json.loads(dec_path.read_text())
        if saved.get('fingerprint') == fp:
            decisions = saved['decisions']
    if complete.is_file() and decisions and json.loads(complete.read_text()).get(
            'candidates') == len(names):
        index = json.loads((out / 'index.json').read_text())
        if progress:
            print('%s is complete: %d pairs, %d line drawings (delete its COMPLETE to redo)'
                  % (rel(out), len(index['pairs']), len(index['drawings'])))
        return decisions, index
    if complete.is_file():
        complete.unlink()
    return decisions, None


def _kept(names, decisions, kind):
    return [n for n in names if decisions.get(n, {}).get('kind') == kind]


def _decide(tasks, names, decisions, workers, save, progress, t0):
    """Run :func:`_build_one` over ``tasks`` (in ``workers`` processes), filling
    ``decisions`` and saving them every 100, until enough pairs and drawings are kept."""
    if workers > 1 and len(tasks) > 8:
        pool = multiprocessing.get_context('spawn').Pool(workers, initializer=cv2.setNumThreads,
                                                         initargs=(1,))
        results = pool.imap(_build_one, tasks, chunksize=4)
    else:
        pool, results = None, map(_build_one, tasks)
    try:
        for i, (name, decision) in enumerate(results, 1):
            decisions[name] = decision
            n_pairs, n_drawings = (len(_kept(names, decisions, k)) for k in ('pair', 'drawing'))
            if i % 100 == 0:
                save()
                if progress:
                    print('  %d/%d looked at: %d pairs, %d drawings (%.0f s)'
                          % (i, len(tasks), n_pairs, n_drawings, time.time() - t0), flush=True)
            if n_pairs >= MAX_PAIRS and n_drawings >= MAX_DRAWINGS:
                break
    finally:
        if pool is not None:
            pool.terminate()
        save()


def _index(names, decisions, sizes, fp, limit):
    pairs = _kept(names, decisions, 'pair')[:MAX_PAIRS]
    drawings = _kept(names, decisions, 'drawing')[:MAX_DRAWINGS]
    refused = {}
    for n in names:
        d = decisions.get(n)
        if d and not d['kind']:
            key = re.sub(r'[\d.]+%?', 'N', d['reason'])
            refused[key] = refused.get(key, 0) + 1
    return dict(credit=CREDIT, sizes=list(sizes), fingerprint=fp, limit=limit,
                considered=sum(n in decisions for n in names),
                pairs=[dict(name=stem_of(n), source=n, **decisions[n]['stats']) for n in pairs],
                drawings=[dict(name=stem_of(n), source=n, **decisions[n]['stats'])
                          for n in drawings],
                refused=dict(sorted(refused.items(), key=lambda kv: -kv[1])))


def build(out=None, limit=None, workers=None, sizes=SIZES, progress=True):
    """Fetch openclipart-svg, select pairs and drawings, render them into ``out``.

    Resumable: decisions are saved in ``decisions.json`` as they come, pictures are written
    atomically, and a rerun only does what is missing. ``limit``: look at only the first N
    candidate files (default :data:`MAX_CONSIDERED`). Returns the index (also written to
    ``index.json``); ``COMPLETE`` marks the end.
    """
    out = pathlib.Path(out or DEFAULT_DIR)
    t0 = time.time()
    root = fetch(out, quiet=not progress)
    names = candidates(root)[:limit or MAX_CONSIDERED]
    fp = dict(_fingerprint(root), sizes=list(sizes))
    decisions, index = _saved_decisions(out, fp, names, progress)
    if index is not None:
        return index
    todo = [n for n in names if n not in decisions or (
        decisions[n]['kind'] and not _done(out, stem_of(n), decisions[n]['kind'], sizes))]
    workers = workers or min(4, os.cpu_count() or 1)
    if progress:
        print('%d candidate SVGs, %d to look at (%d worker%s)'
              % (len(names), len(todo), workers, 's' if workers > 1 else ''))
    tasks = [(str(root), n, str(out), tuple(sizes)) for n in todo]

    def save():
        atomic.write_json(out / 'decisions.json', dict(fingerprint=fp, decisions=decisions))

    _decide(tasks, names, decisions, workers, save, progress, t0)
    index = _index(names, decisions, sizes, fp, limit)
    atomic.write_json(out / 'index.json', index)
    atomic.write_json(out / 'COMPLETE', dict(candidates=len(names),
                                             seconds=round(time.time() - t0, 1)))
    if progress:
        print('%d pairs and %d line drawings from %d SVGs in %.0f s -> %s'
              % (len(index['pairs']), len(index['drawings']), index['considered'],
                 time.time() - t0, rel(out)))
    return index


# ---------------------------------------------------------------- loading

def is_built(data_dir=None):
    return (pathlib.Path(data_dir or DEFAULT_DIR) / 'COMPLETE').is_file()


def _read(path, gray):
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError('cannot read %s' % path)
    return image if gray else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _resized(image, size):
    return image if image.shape[0] == size else resize(image, size)


def held_out(size=128, limit=None, data_dir=None, source='auto'):
    """The held-out real sketches: (pairs, drawings, where).

    ``pairs``: a :class:`pairs.Pairs` (line art + colored truth); ``drawings``: (names, lines
    uint8 (N,size,size)); ``where``: a sentence saying which source was used. ``source``:
    'cache' (``data/sketches``, built by ``make sketches``), 'samples' (the committed
    ``data/samples/real_sketches``) or 'auto' (the cache when built, else the samples).
    Cache pictures come at 128/256/512 px; the 256 px samples are resized (area/bicubic).
    """
    folder = pathlib.Path(data_dir or DEFAULT_DIR)
    if source == 'auto':
        source = 'cache' if is_built(folder) else 'samples'
    if source == 'cache':
        if not is_built(folder):
            raise FileNotFoundError('no real-sketch cache in %s: run `make sketches`'
                                    % rel(folder))
        index = json.loads((folder / 'index.json').read_text())
        stored = size if size in index['sizes'] else max(index['sizes'])

        def path(name, part):
            return _png(folder, stored, name, part)
        where = 'the real-sketch cache %s' % rel(folder)
    elif source == 'samples':
        index = json.loads((SAMPLES_DIR / 'index.json').read_text())

        def path(name, part):
            return SAMPLES_DIR / ('%s_%s.png' % (name, part))
        where = 'the committed samples %s' % rel(SAMPLES_DIR)
    else:
        raise ValueError("source must be 'auto', 'cache' or 'samples', got %r" % (source,))
    items = index['pairs'][:limit]
    pairs = Pairs([it['name'] for it in items],
                  np.stack([_resized(_read(path(it['name'], 'line'), True), size)
                            for it in items]).reshape(-1, size, size),
                  np.stack([_resized(_read(path(it['name'], 'color'), False), size)
                            for it in items]).reshape(-1, size, size, 3))
    items = index['drawings'][:limit]
    drawings = ([it['name'] for it in items],
                np.stack([_resized(_read(path(it['name'], 'line'), True), size)
                          for it in items]).reshape(-1, size, size))
    where = '%s: %d pairs, %d line drawings at %d px' % (where, len(pairs), len(drawings[0]),
                                                          size)
    return pairs, drawings, where


# ---------------------------------------------------------------- committed samples

def make_samples(out=None, data_dir=None, n_pairs=8, n_drawings=4):
    """Copy a few cached 256 px pairs and drawings into ``data/samples/real_sketches``:
    the first of each category in the cache's order, so they are varied."""
    folder = pathlib.Path(data_dir or DEFAULT_DIR)
    out = pathlib.Path(out or SAMPLES_DIR)
    index = json.loads((folder / 'index.json').read_text())
    chosen = {}
    for kind, count in (('pairs', n_pairs), ('drawings', n_drawings)):
        seen, picked = set(), []
        for it in index[kind]:
            top = it['source'].split('/')[0]
            if top not in seen and len(picked) < count:
                seen.add(top)
                picked.append(it)
        chosen[kind] = picked
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob('*.png'):
        old.unlink()
    for kind, items in chosen.items():
        for it in items:
            for part in (('line', 'color') if kind == 'pairs' else ('line',)):
                shutil.copyfile(_png(folder, 256, it['name'], part),
                                out / ('%s_%s.png' % (it['name'], part)))
    atomic.write_json(out / 'index.json', dict(
        credit=CREDIT, size=256, fingerprint=index['fingerprint'],
        about='Held-out real sketches (never used for training), made by python -m '
              'tutorial_lib.sketches samples from the cache of `make sketches`.',
        pairs=chosen['pairs'], drawings=chosen['drawings']))
    return chosen
