"""The one switch of the fast CPU path: convolutions (fastconv), batch normalization (fastbn),
ReLU (fastrelu) and the Adam update (fastadam) on or off together; ``import tutorial_lib``
turns it on. Where oneDNN is installed the first three run on it (infra/onednn.py)."""
import contextlib
import os
import threading

from . import fastadam, fastbn, fastconv, fastrelu

__all__ = ['enable', 'disable', 'is_enabled', 'stock', 'fast', 'enable_from_env']

_PARTS = (fastconv, fastbn, fastadam, fastrelu)
_lock = threading.RLock()


def enable():
    """Route Chainer's CPU conv/deconv cores, batch normalization, ReLU and Adam update to
    the fast code (idempotent)."""
    with _lock:
        for part in _PARTS:
            part.enable()


def disable():
    """Put Chainer's own methods back (idempotent)."""
    with _lock:
        for part in _PARTS:
            part.disable()


def is_enabled():
    """True only when every part is on."""
    return all(part.is_enabled() for part in _PARTS)


def _state():
    return tuple(part.is_enabled() for part in _PARTS)


def _restore(state):
    with _lock:
        for part, on in zip(_PARTS, state):
            (part.enable if on else part.disable)()


@contextlib.contextmanager
def stock():
    """Run the enclosed block on stock Chainer, then restore each part's previous state."""
    with _lock:
        was = _state()
        disable()
    try:
        yield
    finally:
        _restore(was)


@contextlib.contextmanager
def fast():
    """Run the enclosed block with the fast path, then restore each part's previous state."""
    with _lock:
        was = _state()
        enable()
    try:
        yield
    finally:
        _restore(was)


def enable_from_env(environ=None):
    """Enable unless ``TUTORIAL_FASTCONV`` is set to 0/false/no/off. Returns the state."""
    value = (os.environ if environ is None else environ).get('TUTORIAL_FASTCONV', '1')
    if value.strip().lower() in ('0', 'false', 'no', 'off'):
        disable()
    else:
        enable()
    return is_enabled()
