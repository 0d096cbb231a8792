"""Finding, checking and loading trained U-Nets: shipped checkpoints (data/checkpoints/ and
its manifest), run folders and gen.npz files. Notebooks 02-07 load their networks here."""
import hashlib
import json
import os
import zipfile
import zlib

import numpy as np

from . import REPO_ROOT
from . import atomic
from .infra import backend as backend_mod
from .hint_unet import HintFillUNET
from .models import UNET, load_weights
from .stage2 import Stage2UNET

REPAIR = ('re-download it (for a shipped one: git checkout -- <file>, or a fresh copy of '
          'the repository) or retrain it (python -m tutorial_lib.train --config <name>)')


def checkpoints_dir():
    return REPO_ROOT / 'data' / 'checkpoints'


def read_manifest():
    """data/checkpoints/manifest.json as a dict ({} when there is none)."""
    path = checkpoints_dir() / 'manifest.json'
    if not path.exists():
        return {}
    with open(path) as f:
        return json.load(f)


def update_manifest(name, changes):
    """Merge ``changes`` into the manifest entry of checkpoint ``name`` (atomic write)."""
    manifest = read_manifest()
    manifest.setdefault('checkpoints', {}).setdefault(name, {}).update(changes)
    atomic.write_json(checkpoints_dir() / 'manifest.json', manifest, sort_keys=True)


def _read_arrays(path):
    """Every member of an npz (each read once, so checksums are checked); ValueError when
    the file is no whole npz of arrays."""
    if os.path.getsize(path) == 0:
        raise ValueError('%s is an empty file: %s' % (path, REPAIR))
    if not zipfile.is_zipfile(path):
        raise ValueError('%s is not a weights file of the course (not an .npz archive; '
                         'truncated?): %s' % (path, REPAIR))
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        if 'pickle' in str(e):
            raise ValueError('%s holds Python objects, not arrays: it is no weights file of '
                             'the course (such files are never loaded)' % path) from None
        raise ValueError('%s is damaged (%s): %s' % (path, e, REPAIR)) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as e:
        raise ValueError('%s is damaged (%s): %s' % (path, e or type(e).__name__, REPAIR)) \
            from None


def inspect_checkpoint(path, want='gen'):
    """The meta of a weights file (:func:`models.save_weights`) after checking that it is
    one, whole, and of the wanted kind ('gen': a U-Net, 'dis': an Ad-boss).

    A truncated file, a bad checksum, an empty file, a trainer snapshot, a dis.npz given as
    a U-Net (or the reverse) and a foreign npz each raise a ValueError naming the file and
    what to do, instead of a traceback from deep inside numpy or Chainer. Pickled objects
    are never loaded.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError('%s is a folder, not a weights file (gen.npz)' % path)
    if not os.path.exists(path):
        raise FileNotFoundError('no such file: %s' % path)
    arrays = _read_arrays(path)
    names = list(arrays)
    if '__meta__' not in arrays:
        if any(n.startswith('updater/') for n in names):
            raise ValueError('%s is a trainer snapshot, not a U-Net: use the run\'s gen.npz '
                             '(written when the run finishes)' % path)
        raise ValueError('%s is not a weights file of the course (no __meta__ entry; saved by '
                         'something else?)' % path)
    try:
        meta = json.loads(bytes(arrays['__meta__']).decode() or '{}')
    except (ValueError, UnicodeDecodeError):
        raise ValueError('%s has a damaged __meta__ entry: %s' % (path, REPAIR)) from None
    is_dis = any(n.startswith('param/l8l/') for n in names)
    if want == 'gen' and is_dis:
        raise ValueError('%s is an Ad-boss (discriminator, dis.npz), not a U-Net; the U-Net '
                         'of a run is its gen.npz' % path)
    if want == 'dis' and not is_dis:
        raise ValueError('%s is not an Ad-boss (discriminator); that is dis.npz' % path)
    return meta


def verify_shipped(name, path=None):
    """Check a shipped checkpoint's file against the sha256 in data/checkpoints/manifest.json
    (ValueError naming the file when they differ; nothing to check without an entry)."""
    path = str(path or checkpoints_dir() / name / 'gen.npz')
    entry = read_manifest().get('checkpoints', {}).get(name, {})
    expected = entry.get('files', {}).get(os.path.basename(path), {}).get('sha256')
    if not expected:
        return
    with open(path, 'rb') as f:
        actual = hashlib.sha256(f.read()).hexdigest()
    if actual != expected:
        raise ValueError('%s is not the file data/checkpoints/manifest.json records for %r '
                         '(sha256 %s..., expected %s...): it was changed or damaged; %s'
                         % (path, name, actual[:12], expected[:12], REPAIR))


def resolve_checkpoint(spec):
    """A gen.npz path from a shipped checkpoint name, a run folder or a file path.

    Looks, in order, at: an existing path (folder with gen.npz, or a file);
    ``data/checkpoints/<spec>/gen.npz`` (checked against the manifest);
    ``runs/<spec>/gen.npz``.
    """
    spec = os.fspath(spec)
    candidates = [spec, os.path.join(spec, 'gen.npz'),
                  str(checkpoints_dir() / spec / 'gen.npz'),
                  str(REPO_ROOT / 'runs' / spec / 'gen.npz')]
    for k, c in enumerate(candidates):
        if os.path.isfile(c):
            if k == 2:      # a shipped checkpoint by name: is it the file the manifest lists?
                verify_shipped(spec, c)
            return c
    raise FileNotFoundError(
        'no U-Net found for %r: not a gen.npz file or folder, not a shipped checkpoint in %s, '
        'not a finished run in runs/%s (train it: python -m tutorial_lib.train --config %s)'
        % (spec, checkpoints_dir(), spec, spec))


def _network_for(meta):
    """An untrained network of the class and shape a weights file's meta describes."""
    if meta.get('residual'):                  # a stage 2 (refines stage-1 colors)
        return Stage2UNET(meta.get('in_ch', 4), meta.get('width', 1.0), zero_init=False)
    if meta.get('kind') == 'hint_fill':       # the beyond-the-blog hint U-Net
        return HintFillUNET(width=meta.get('width', 1.0), shade=meta.get('shade', False),
                            use_fill=meta.get('use_fill', True))
    return UNET(in_ch=meta.get('in_ch', 1), width=meta.get('width', 1.0))


def load_unet(spec, backend=None):
    """The U-Net named by ``spec`` (a shipped checkpoint name, a run folder or a gen.npz
    path; see :func:`resolve_checkpoint`), checked, rebuilt as the class its meta names
    (plain, hint fill or residual stage 2) and put on the device (default: the current
    backend's)."""
    path = resolve_checkpoint(spec)
    meta = inspect_checkpoint(path)
    gen = _network_for(meta)
    try:
        load_weights(gen, path)
    except (KeyError, ValueError) as e:     # a weights file of another network
        raise ValueError('%s does not hold the U-Net its meta describes (%s): %s'
                         % (path, e.args[0] if e.args else e, REPAIR)) from None
    gen.hint_recipe = meta.get('hint_recipe')   # how its hints were simulated in training
    gen.to_device((backend or backend_mod.current()).chainer_device)
    return gen


def check_stage(spec, stage):
    """The gen.npz path of ``spec`` after checking it can serve as ``stage`` (1 or 2).

    Stage 2 refines stage-1 colors (its meta says ``residual: true``) and colors nothing
    alone (all black as a stage 1); any other U-Net (line only, hints, hint fill...) is a
    stage 1, and as a stage 2 it would ignore the colors it is given."""
    path = resolve_checkpoint(spec)
    meta = inspect_checkpoint(path)
    residual = bool(meta.get('residual'))
    if stage == 1 and residual:
        raise ValueError('%s is a stage-2 U-Net (residual: it refines stage-1 colors at 512 '
                         'px and colors nothing alone); as stage 1 use a line or hint U-Net '
                         'such as classroom_hints, and give this one as stage 2' % spec)
    if stage == 2 and not residual:
        raise ValueError('%s is a stage-1 U-Net (%s), not a stage 2: a stage 2 is a residual '
                         'refiner whose meta says residual: true, such as classroom_stage2'
                         % (spec, 'kind %s' % meta['kind'] if meta.get('kind')
                            else 'in_ch=%s' % meta.get('in_ch', 1)))
    return path


def load_stage(spec, stage, backend=None):
    """:func:`load_unet` for a U-Net that must serve as ``stage`` 1 or 2 (see
    :func:`check_stage`); a model object is returned as it is, unless it is a
    :class:`stage2.Stage2UNET` given as stage 1."""
    if hasattr(spec, 'in_ch'):
        if stage == 1 and getattr(spec, 'save_meta', {}).get('residual'):
            raise ValueError('this U-Net is a stage 2 (residual, %s): it refines stage-1 '
                             'colors and colors nothing alone; give it as stage 2'
                             % type(spec).__name__)
        return spec
    return load_unet(check_stage(spec, stage), backend)


def read_log(out):
    """The LogReport log (list of dicts) of a run folder; [] before the first entry."""
    path = os.path.join(out, 'log')
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)
