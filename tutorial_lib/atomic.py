"""Write files so that they are either complete or absent, never half-written.

Every cache, snapshot, checkpoint and figure the course writes goes through here: the
data is written to a temporary file in the same folder and then renamed over the target
with ``os.replace`` (atomic on POSIX and Windows). A build or training killed half-way
therefore leaves the old file or no file, and a rerun can trust what it finds.
"""
import contextlib
import json
import os
import re
import tempfile

# the temporary names atomic_path makes: .<name>.<8 random characters>.tmp<extension of name>
TEMP_RE = re.compile(r'^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp(?P<ext>\.[^.]*)?$')


def _umask():
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)      # elsewhere: the classic read-by-setting, restored at once
    os.umask(mask)
    return mask


def file_mode():
    """The permissions of a written file: what ``open()`` gives, 0666 minus the umask
    (``mkstemp`` alone makes 0600 files, which other accounts on a shared classroom
    machine could not read)."""
    return 0o666 & ~_umask()


def is_temp_name(name):
    """True for a file name that :func:`atomic_path` made as a temporary file."""
    m = TEMP_RE.match(name)
    return bool(m) and (m.group('ext') or '') == os.path.splitext(m.group('name'))[1]


def remove_stale_temps(folder, recursive=True):
    """Delete the temporary files of writes that never finished (a killed process) under
    ``folder``; returns how many. Only names :func:`atomic_path` makes are touched."""
    if not os.path.isdir(folder):
        return 0
    walk = os.walk(folder) if recursive else [next(os.walk(folder))]
    removed = 0
    for root, _, files in walk:
        for name in files:
            if is_temp_name(name):
                try:
                    os.remove(os.path.join(root, name))
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the target's extension, for writers that pick the format
    from it (``cv2.imwrite``, ``savefig``). On any error the temporary file is removed.
    The file gets the permissions the user's umask allows, as with ``open()``.
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
        os.chmod(tmp, file_mode())        # after writing: the writer may recreate the file
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
