"""`python -m tutorial_lib.selfcheck` still works: the command lives in :mod:`tutorial_lib.infra.selfcheck`."""
import sys

from .infra.selfcheck import main

if __name__ == '__main__':
    sys.exit(main())
