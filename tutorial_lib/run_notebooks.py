"""`python -m tutorial_lib.run_notebooks` still works: the command lives in :mod:`tutorial_lib.infra.run_notebooks`."""
import sys

from .infra.run_notebooks import main

if __name__ == '__main__':
    sys.exit(main())
