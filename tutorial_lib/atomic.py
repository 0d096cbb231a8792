"""Write files so that they are either complete or absent, never half-written.

Every cache, snapshot, checkpoint and figure the course writes goes through here: the
data is written to a temporary file in the same folder and then renamed over the target
with ``os.replace`` (atomic on POSIX and Windows). A build or training killed half-way
therefore leaves the old file or no file, and a rerun can trust what it finds.
"""
import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the target's extension, for writers that pick the format
    from it (``cv2.imwrite``, ``savefig``). On any error the temporary file is removed.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.%s.' % name,
                               suffix='.tmp' + os.path.splitext(name)[1])
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)


def write_json(path, obj, **dump_options):
    dump_options.setdefault('indent', 1)
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(obj, f, **dump_options)
            f.write('\n')
