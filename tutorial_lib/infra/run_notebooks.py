"""Execute the course notebooks headless (``make tutorial``), in order, into a folder:
``QUICK=1 python -m tutorial_lib.infra.run_notebooks notebooks build/notebooks``."""
# QUICK is read from the environment by each notebook's parameters cell (QUICK=1: the short
# classroom version of everything). Stops at the first failing notebook and names the cell.
import argparse
import sys
import time
from pathlib import Path

from .. import cli


def run(src, dst, timeout=1200, pattern='[0-9][0-9]_*.ipynb'):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    notebooks = sorted(src.glob(pattern))
    if not notebooks:
        raise SystemExit('No notebooks matching %s in %s' % (pattern, src))
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        start = time.time()
        print('running %-32s' % path.name, end=' ', flush=True)
        client = NotebookClient(nb, timeout=timeout, kernel_name='python3',
                                resources={'metadata': {'path': str(src)}})
        try:
            client.execute()
        except CellExecutionError as exc:
            nbformat.write(nb, dst / path.name)
            print('FAILED')
            print(str(exc)[-3000:], file=sys.stderr)
            return 1
        nbformat.write(nb, dst / path.name)
        print('%6.1f s' % (time.time() - start))
    return 0


@cli.command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', nargs='?', default='notebooks')
    parser.add_argument('dst', nargs='?', default='build/notebooks')
    parser.add_argument('--timeout', type=int, default=1200, help='seconds per cell')
    args = parser.parse_args(argv)
    return run(args.src, args.dst, args.timeout)


if __name__ == '__main__':
    sys.exit(main())
