"""What every ``python -m tutorial_lib.<command>`` does with an expected error (a wrong path, a
picture too large, a damaged checkpoint): one line on stderr and exit status 2, no traceback."""
import functools
import sys

from .infra import backend

# errors that mean "the input is wrong", not "the code is wrong"
EXPECTED = (ValueError, OSError, backend.DeviceError)


def message(exc):
    """One line for an expected error: OSErrors as 'path: reason', newlines folded."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = '%s: %s' % (exc.filename, exc.strerror)
        if exc.filename2 is not None:
            text = '%s -> %s: %s' % (exc.filename, exc.filename2, exc.strerror)
    else:
        text = str(exc) or type(exc).__name__
    return ' '.join(text.split())


def command(main):
    """Wrap a command line's ``main(argv)``: expected errors -> one ``error: ...`` line on
    stderr and status 2 (the status ``argparse`` uses for a bad command line); bugs (anything
    else) still show their traceback::

        @cli.command
        def main(argv=None):
            ...
    """
    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except EXPECTED as exc:
            sys.stdout.flush()
            print('error: %s' % message(exc), file=sys.stderr)
            return 2
    return wrapped
